# -*- test-case-name: tests.test_discovery_config,tests.test_mdns -*-
"""
The one place where configuration sections become the values services
take.

Services, protocols and listeners never see a section of tap.conf: the
daemon reads each section here and hands them frozen values (or keyword
arguments).  One function per kind of value, named after what it builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.config import DiscoveryConfig, MDNSConfig
    from services.discovery import DiscoverySettings, MDNSSettings

__all__ = ["discoverySettings", "mdnsSettings"]


def discoverySettings(section: DiscoveryConfig) -> DiscoverySettings:
    """
    What the discovery service takes, from C{[discovery]} (all of it but
    C{enabled}, which decides whether it runs).
    """
    # Imported here: a service's package loads only when it runs.
    from services.discovery import DiscoverySettings

    return DiscoverySettings(
        port=section.port,
        interface=section.interface,
        broadcast=section.broadcast,
        ipv6=section.ipv6,
        interval=section.interval,
        ttl=section.ttl,
        name=section.name,
        sourceRate=section.source_rate,
        sourceBurst=section.source_burst,
        globalRate=section.global_rate,
        maxPeerTtl=section.max_peer_ttl,
        maxPeersPerSource=section.max_peers_per_source,
        maxPortsPerSource=section.max_ports_per_source,
    )


def mdnsSettings(section: MDNSConfig, fallbackName: str = "") -> MDNSSettings:
    """
    What the mDNS service takes, from C{[mdns]}.

    @param fallbackName: the name when C{[mdns] name} is empty (C{[discovery]
        name}); when that is empty too, the service claims the host name.
    """
    from services.discovery import MDNSSettings

    return MDNSSettings(
        name=section.name or fallbackName,
        interfaces=tuple(section.interfaces),
        families=tuple(4 if f == "ipv4" else 6 for f in section.families),
    )
