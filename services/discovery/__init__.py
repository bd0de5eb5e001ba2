# -*- test-case-name: tests.unit.discovery.test_discovery -*-
"""
Finding netservices instances on the LAN: UDP announces and queries, and
DNS-SD over mDNS.

  - L{discover}: look for instances from a client, as C{netservices
    discover} does; L{browse}: browse DNS-SD over multicast DNS, as
    C{netservices discover --mdns} does.
  - L{DiscoveryProtocol} (bound with L{listenDiscovery}): announce,
    answer queries, and keep a L{PeerTable} of the L{Peer}s heard, in an
    application of your own.
  - L{makeDiscoveryService} and L{makeMDNSService}: the services the daemon
    runs, built from L{DiscoverySettings} and L{MDNSSettings}.

Everything else in the package is private.
"""

from services.discovery._client import discover
from services.discovery._mdns import MDNSService, makeMDNSService
from services.discovery._mdnsbrowse import browse, normalType
from services.discovery._mdnsrecords import INSTANCE_TYPE
from services.discovery._peers import Peer, PeerTable
from services.discovery._protocol import DiscoveryProtocol
from services.discovery._service import DiscoveryService, listenDiscovery, makeDiscoveryService
from services.discovery._settings import DiscoverySettings, MDNSSettings
from services.stats import MDNSStats

__all__ = [
    "INSTANCE_TYPE",
    "DiscoveryProtocol",
    "DiscoveryService",
    "DiscoverySettings",
    "MDNSService",
    "MDNSSettings",
    "MDNSStats",
    "Peer",
    "PeerTable",
    "browse",
    "discover",
    "listenDiscovery",
    "makeDiscoveryService",
    "makeMDNSService",
    "normalType",
]
