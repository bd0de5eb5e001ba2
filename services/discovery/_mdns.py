# -*- test-case-name: tests.unit.discovery.test_mdns -*-
"""
DNS-SD over multicast DNS for the services of our tree: one
L{MDNSResponder} per interface and address family served, each on a
multicast UDP port of its own (C{listenMulticast} on port 5353, shared
with other responders such as avahi through C{SO_REUSEADDR} and
C{SO_REUSEPORT}, and bound to its interface), advertising there:

  - C{_netservices._tcp}: the instance, TXT C{id=}, C{version=} and one
    C{SERVICE=PORT,...} per service;
  - C{_http._tcp} for the web service's plain listeners and C{_https._tcp}
    for its C{ssl:} ones (TXT C{path=/});
  - C{_echo._tcp} and C{_echo._udp} for the echo services;

each with the addresses that service listens on from that interface
(L{services.discovery._net.endpointsOn}).  A conflict on any link renames
the instance on every link.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

from services import __version__, logs
from services.net.datagram import SourceLimiter
from services.net.defaults import defaultReactor
from services.net.interfaces import Interface, listInterfaces
from services.stats import MDNSStats
from services.discovery._mdnslink import MDNS_GROUP4, MDNS_GROUP6, MDNS_PORT, Link
from services.discovery._mdnsrecords import INSTANCE_TYPE, Offer, Record, instanceRecords, renamed
from services.discovery._mdnsresponder import MDNSResponder
from services.discovery._net import endpointsOn, listenerAddresses, securePorts, socketOf
from services.discovery._protocol import defaultName
from services.discovery._settings import MDNSSettings
from services.discovery._wire import newInstanceId

__all__ = ["MDNSService", "linksOf", "makeMDNSService", "offersOn"]

#: Service name in our tree to its DNS-SD type and TXT strings.
TYPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "web": ("_http._tcp", ("path=/",)),
    "echo": ("_echo._tcp", ()),
    "udp-echo": ("_echo._udp", ()),
}
#: The DNS-SD type and TXT strings of a service's TLS listeners, where it
#: has a type of its own.
SECURE_TYPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "web": ("_https._tcp", ("path=/",)),
}
#: Which of our services' ports the SRV of L{INSTANCE_TYPE} names: the
#: first that listens.
_INSTANCE_PORT_ORDER = ("web", "echo", "udp-echo")


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def offersOn(
    interface: Interface, families: Sequence[int], listeners: Mapping[str, Sequence[tuple[str, int]]],
    instanceId: str, secure: Collection[tuple[str, int]] = frozenset(),
) -> list[Offer]:  # fmt: skip
    """
    The DNS-SD offers of our services on C{interface}: the addresses of
    C{families} each listens on there.  Every link of the interface
    advertises them all (A records over IPv6 too, as avahi does), so that a
    host name stands for the same addresses whichever family asks.

    @param secure: the (service name, port) of listeners that speak TLS:
        offered under the service's L{SECURE_TYPES} type (a service without
        one is offered as usual: its type says nothing of TLS).
    """
    ports, endpoints = endpointsOn(interface, listeners)
    reachable: dict[str, list[tuple[str, int]]] = {}
    for name, listed in endpoints.items():
        for host, port in map(_split, listed):
            if ipaddress.ip_address(host).version in families:
                reachable.setdefault(name, []).append((host, port))
    offers = []
    owners: dict[str, Offer] = {}
    for name, plainType in TYPES.items():
        found = reachable.get(name, [])
        tls = [hp for hp in found if (name, hp[1]) in secure] if name in SECURE_TYPES else []
        byType = [(plainType, [hp for hp in found if hp not in tls])]
        if tls:
            byType.append((SECURE_TYPES[name], tls))
        for (kind, txt), listed in byType:
            if listed:
                hosts = tuple(dict.fromkeys(h for h, _ in listed))
                offers.append(Offer(kind, listed[0][1], hosts, txt))
                owners.setdefault(name, offers[-1])
    instanceTxt = (f"id={instanceId}", f"version={__version__}") + tuple(
        f"{name}={','.join(map(str, sorted(found)))}" for name, found in sorted(ports.items())
    )
    for name in _INSTANCE_PORT_ORDER:
        if name in owners:
            main = owners[name]
            offers.insert(0, Offer(INSTANCE_TYPE, main.port, main.addresses, instanceTxt))
            break
    return offers


def _mtu(name: str) -> int:
    try:
        return int(Path(f"/sys/class/net/{name}/mtu").read_text())
    except (OSError, ValueError):
        return 1500


def _ipv6Interfaces() -> set[str]:
    # Every interface with an IPv6 address, link-local ones included (the
    # interface list leaves those out).
    try:
        with open("/proc/net/if_inet6") as table:
            return {line.split()[-1] for line in table if line.strip()}
    except OSError:
        return set()


def linksOf(
    interfaces: Sequence[Interface], wanted: Sequence[str], families: Sequence[int],
    mtu: Callable[[str], int] = _mtu, ipv6: Callable[[], set[str]] = _ipv6Interfaces,
) -> list[tuple[Interface, Link]]:  # fmt: skip
    """
    The links to serve: each interface named in C{wanted} (C{"all"}: every
    interface that is up, can multicast and is not loopback) with an
    address of each family in C{families} (for IPv6, a link-local one
    is enough: mDNS over IPv6 speaks from it).

    @param ipv6: the names of the interfaces that have an IPv6 address.
    """
    withIPv6 = ipv6() if 6 in families else set()
    found = []
    for interface in interfaces:
        if "all" in wanted:
            if interface.loopback or not (interface.up and interface.multicast):
                continue
        elif interface.name not in wanted:
            continue
        if 4 in families and interface.ipv4:
            networks = tuple(str(a.network()) for a in interface.ipv4)
            found.append((interface, Link(interface.name, 4, networks, mtu(interface.name))))
        if 6 in families and (interface.ipv6 or interface.name in withIPv6):
            networks = tuple(str(ipaddress.IPv6Network(f"{a}/64", strict=False)) for a in interface.ipv6)
            found.append((interface, Link(interface.name, 6, networks, mtu(interface.name))))
    return found


class MDNSService(Service):
    """
    Runs a responder on each link served; see the module docstring.

    @ivar port: the first responder's port once listening (so the service
        counts as listening), else L{None}.
    @ivar responders: the responders by link.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        settings: MDNSSettings,
        reactor: Any,
        stats: MDNSStats,
        interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
    ) -> None:
        """
        @param settings: what to advertise where; no name: the host name's
            first label.
        @param reactor: the reactor to listen with and time by.
        @param stats: the counters of the responders.
        @param interfaces: reads the host's interfaces (fakes in tests).
        """
        self.setName("mdns")
        if not settings.name:
            settings = replace(settings, name=defaultName().split(".")[0])
        self.settings = settings
        self.reactor = reactor
        self.stats = stats
        self.interfaces = interfaces
        self.port: Any = None
        self.responders: dict[Link, MDNSResponder] = {}
        self._ports: list[Any] = []
        self._attempt = 0
        self._offers: dict[Link, Interface] = {}
        self.instanceId = newInstanceId()
        self.limiter = SourceLimiter(reactor, 2.0, 10, 100.0)

    def statusDetails(self) -> dict[str, Any]:
        """
        C{/status}: the name claimed on each link and the responder's state.
        """
        return {
            "links": [
                {"link": str(link), "name": r.name, "state": r.state}
                for link, r in self.responders.items()
            ]
        }

    def _instanceId(self) -> str:
        discovery = getattr(self.parent, "namedServices", {}).get("discovery")
        found = getattr(getattr(discovery, "protocol", None), "instanceId", None)
        return found or self.instanceId

    def _recordsFor(self, link: Link) -> Callable[[str], list[Record]]:
        def records(name: str) -> list[Record]:
            listeners = listenerAddresses(self.parent, exclude=("mdns",))
            offers = offersOn(
                self._offers[link], self.settings.families, listeners, self._instanceId(),
                securePorts(self.parent),
            )
            return instanceRecords(name, offers)

        return records

    def startService(self) -> None:
        """
        Listen on every link and, once the other services of the tree have
        started, probe for the name.
        """
        Service.startService(self)
        try:
            found = list(self.interfaces())
        except OSError as e:
            self._log.warn("mdns: cannot read the interfaces: {reason}", reason=e)
            found = []
        links = linksOf(found, self.settings.interfaces, self.settings.families)
        if not links:
            self._log.warn(
                "mdns: no interface to serve (interfaces = {wanted})",
                wanted=" ".join(self.settings.interfaces),
            )
        for interface, link in links:
            self._listen(interface, link)
        self.reactor.callLater(0, self._probeAll)

    def _listen(self, interface: Interface, link: Link) -> None:
        responder = MDNSResponder(
            self.reactor, link, self._recordsFor(link), self.stats, self.limiter,
            onConflict=self._conflict,
        )  # fmt: skip
        try:
            port = self._multicastPort(interface, link, responder)
        except (OSError, CannotListenError) as e:
            reason = getattr(e, "socketError", None) or e
            self._log.warn(
                "mdns: cannot listen on {link}: {reason}",
                link=str(link), reason=getattr(reason, "strerror", None) or reason,
            )  # fmt: skip
            return
        self._offers[link] = interface
        self.responders[link] = responder
        self._ports.append(port)
        if self.port is None:
            self.port = port
        self._log.info(
            "mdns listening on [{group}]:{port} on {link}",
            group=link.group[0], port=MDNS_PORT, link=str(link),
        )  # fmt: skip

    def _multicastPort(self, interface: Interface, link: Link, responder: MDNSResponder) -> Any:
        family = socket.AF_INET if link.family == 4 else socket.AF_INET6
        port = self.reactor.listenMulticast(
            MDNS_PORT, responder, interface="" if link.family == 4 else "::",
            maxPacketSize=9000, listenMultiple=True,
        )  # fmt: skip
        try:
            self._socketOptions(port, family, interface)
            if link.family == 4:
                joined = port.joinGroup(MDNS_GROUP4, interface.ipv4[0].address)
                joined.addErrback(self._joinFailed, link)
                port.setOutgoingInterface(interface.ipv4[0].address).addErrback(
                    self._joinFailed, link
                )
                # RFC 6762 section 11: sent with TTL 255.
                port.setTTL(255)
            else:
                port.setOutgoingInterface(interface.index).addErrback(self._joinFailed, link)
            # Other responders of this host (avahi, another instance) hear us.
            port.setLoopbackMode(1)
        except BaseException:
            port.stopListening()
            raise
        return port

    def _joinFailed(self, failure: Failure, link: Link) -> None:
        self._log.warn(
            "mdns: cannot join {group} on {link}: {reason}",
            group=link.group[0], link=str(link), reason=failure.getErrorMessage(),
        )  # fmt: skip

    @staticmethod
    def _socketOptions(port: Any, family: int, interface: Interface) -> None:
        """
        Set the options Twisted has no method for, on a duplicate of the
        port's socket: only what arrives on this interface (and replies to
        link-local addresses leave by it); for IPv6, the group joined on
        this interface's index (Twisted's C{joinGroup} takes an address
        where IPv6 needs an index) and hop limit 255.
        """
        with socketOf(port, family) as skt:
            skt.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.name.encode())
            if family == socket.AF_INET6:
                group = socket.inet_pton(socket.AF_INET6, MDNS_GROUP6)
                request = group + struct.pack("@I", interface.index)
                skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
                skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)

    def _probeAll(self) -> None:
        if not self.running:
            return
        name = renamed(self.settings.name, self._attempt)
        for responder in self.responders.values():
            responder.probe(name)

    def _conflict(self, responder: MDNSResponder) -> None:
        old = responder.name
        self._attempt += 1
        new = renamed(self.settings.name, self._attempt)
        self._log.info("mdns: renaming {old} to {new}", old=old, new=new)
        for each in self.responders.values():
            each.probe(new)

    def stopService(self) -> Deferred[Any]:
        """
        Say goodbye on every link (TTL 0) and close the ports.
        """
        Service.stopService(self)
        for responder in self.responders.values():
            responder.goodbye()
        ports, self._ports = self._ports, []
        self.responders = {}
        self.port = None
        return DeferredList([maybeDeferred(p.stopListening) for p in ports])


def makeMDNSService(
    settings: MDNSSettings = MDNSSettings(),
    reactor: Any = None,
    interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
) -> MDNSService:
    """
    Build an mDNS service, with new counters.

    @param reactor: the reactor; the global one if L{None}.
    @param interfaces: reads the host's interfaces (fakes in tests).
    """
    return MDNSService(settings, defaultReactor(reactor), MDNSStats(), interfaces)
