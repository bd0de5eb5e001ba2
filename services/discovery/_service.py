# -*- test-case-name: tests.unit.discovery.test_discovery -*-
"""
The discovery service of the daemon: L{DiscoveryService} announces on each
interface it serves, every C{interval} seconds, the endpoints the other
services of its tree are reachable at there (see
L{services.discovery._net}); answers queries with what is reachable where
they came from; and forgets a peer not heard for its ttl.  It is careful
not to become a loop or an amplifier, on every transport (see
L{services.discovery._protocol}).  The IPv6 sockets, one per interface,
and the IPv4 group's
memberships are L{services.discovery._multicast}'s.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort, IReactorSocket
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from services import logs
from services.net.datagram import MAX_UDP_PAYLOAD, SourceLimiter, listenDatagram
from services.net.ownports import OwnPorts, portsByService
from services.net.defaults import defaultReactor
from services.net.interfaces import Interface, holding, listInterfaces, localAddressTowards
from services.net.addresses import describeAddress
from services.net.listener import ListenError
from services.discovery._multicast import IPv4Group, IPv6Links
from services.discovery._net import (
    AUTO,
    GROUP6,
    LIMITED_BROADCAST,
    LIMITED_BROADCAST_ADDRESS,
    Target,
    endpointsOn,
    interfaceNamed,
    ipv4Targets,
    isMulticast,
    listenerAddresses,
    multicastOptions4,
    receiverAddresses,
    sendFrom4,
    socketOf,
)
from services.discovery._peers import PeerTable
from services.discovery._peers import describe as _describe
from services.discovery._protocol import BroadcastReceiver, DiscoveryProtocol
from services.discovery._settings import DiscoverySettings
from services.stats import DiscoveryStats

__all__ = ["DiscoveryService", "listenDiscovery", "makeDiscoveryService"]


def listenDiscovery(
    reactor: IReactorSocket, protocol: DatagramProtocol, interface: str, port: int
) -> IListeningPort:
    """
    Bind a discovery protocol as the service does: on a port other
    instances of this host share (C{SO_REUSEADDR}), with room for any
    datagram (so that oversized ones are counted, not cut).

    @param reactor: the reactor to listen with.
    @param interface: the local address (C{""}: every one).
    @raise OSError: if the port cannot be bound.
    """
    return listenDatagram(
        reactor, protocol, interface, port, reuse=True, maxPacketSize=MAX_UDP_PAYLOAD + 1
    )


class DiscoveryService(Service):
    """
    Runs discovery on the port of its settings, sharing it with other
    instances (C{SO_REUSEADDR}): a L{DiscoveryProtocol} over IPv4 broadcast and, with
    C{ipv6}, one over IPv6 multicast on each interface, sharing one peer
    table.

    At each announce the interfaces are read again (L{listInterfaces}), so
    announces follow interfaces and addresses as they come and go; each
    announce lists what is reachable on the interface it goes out on (see
    L{services.discovery._net}).  When C{interface} is a single address,
    more sockets bound to the broadcast addresses (the interface's subnet
    broadcast and 255.255.255.255) receive the broadcasts; everything is
    sent from the first.

    With C{ipv6}, each IPv6 interface that can multicast gets a socket of
    its own, bound to it, with a protocol of its own (see L{IPv6Links}).

    @ivar port: the listening IPv4 UDP port once listening, else L{None}.
    @ivar protocol: the IPv4 L{DiscoveryProtocol}.
    @ivar stats: the L{DiscoveryStats} of every protocol.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        settings: DiscoverySettings,
        reactor: Any,
        stats: DiscoveryStats,
        interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
    ) -> None:
        """
        @param reactor: the reactor to listen with and time by.
        @param stats: the counters every protocol counts into.
        @param interfaces: reads the host's interfaces (fakes in tests).
        """
        self.setName("discovery")
        self.settings = settings
        self.reactor = reactor
        self.stats = stats
        self.interfaces = interfaces
        self.port: IListeningPort | None = None
        self._v6 = IPv6Links(reactor, settings.port, self._protocol6)
        self._receivers: list[IListeningPort] = []
        self._known: list[Interface] = []
        self._group4 = IPv4Group(settings.broadcast, settings.interface)
        self._receiveProblems: list[str] = []
        self._routes: dict[str, Interface | None] = {}
        self.description = f"udp:{settings.port}:interface={settings.interface}"
        shared: dict[str, Any] = {
            "name": settings.name or None,
            "interval": settings.interval,
            "ttl": settings.ttl,
            "services": self.advertisedPorts,
            "limiter": SourceLimiter(
                reactor, settings.sourceRate, settings.sourceBurst, settings.globalRate
            ),
            "ownPorts": OwnPorts(self, reactor, fixed=(settings.port,)),
            "stats": stats,
            "peers": PeerTable(
                reactor,
                stats=stats,
                maxPerSource=settings.maxPeersPerSource,
                maxPortsPerSource=settings.maxPortsPerSource,
                # Never forget peers configured as we are before their time.
                maxTtl=max(settings.maxPeerTtl, settings.ttl),
            ),
        }
        self._shared = shared
        broadcast = settings.broadcast
        self.protocol = DiscoveryProtocol(
            reactor,
            broadcast=(LIMITED_BROADCAST_ADDRESS if broadcast == LIMITED_BROADCAST else broadcast,
                       settings.port),
            targets=self._targets4,
            replyFor=self._replyFor4,
            viaFor=self._via4,
            beforeSend=self._beforeSend4,
            **shared,
        )

    # What is announced where.

    def _read(self) -> list[Interface]:
        self._routes.clear()
        try:
            self._known = list(self.interfaces())
        except OSError as e:
            self._log.warn("discovery: cannot read the interfaces: {reason}", reason=e)
        return self._known

    def _listeners(self) -> dict[str, list[tuple[str, int]]]:
        if self.parent is None:
            return {}
        return listenerAddresses(self.parent, exclude=("discovery",))

    def _targets4(self) -> tuple[list[Target], list[str]]:
        settings = self.settings
        interfaces = self._read()
        if settings.ipv6 and self.running:
            self._v6.sync(interfaces)
        targets, problems = ipv4Targets(
            interfaces, settings.interface, settings.broadcast, settings.port, self._listeners()
        )
        return targets, problems + self._group4.join(interfaces)

    def _beforeSend4(self, target: Target) -> None:
        if target.source and self.port is not None:
            with socketOf(self.port, socket.AF_INET) as skt:
                sendFrom4(skt, target.source)

    def _interfaceFor4(self, addr: tuple[Any, ...]) -> Interface | None:
        """
        The interface the kernel would answer C{addr} by; remembered (for
        at most 1024 sources, until the interfaces are read again), since
        every announce and query asks.
        """
        host = str(addr[0])
        if host in self._routes:
            return self._routes[host]
        local = localAddressTowards((host, int(addr[1])), socket.AF_INET)
        found = holding(self._known, local) if local is not None else None
        if len(self._routes) >= 1024:
            self._routes.clear()
        self._routes[host] = found
        return found

    def _via4(self, addr: tuple[Any, ...]) -> str:
        interface = self._interfaceFor4(addr)
        return interface.name if interface is not None else ""

    def _replyFor4(self, addr: tuple[Any, ...]) -> Target:
        interface = self._interfaceFor4(addr)
        return self._targetOn(interface, tuple(addr[:2]))

    def _targetOn(self, interface: Interface | None, address: tuple[str, int]) -> Target:
        services, endpoints = endpointsOn(interface, self._listeners())
        name = interface.name if interface is not None else ""
        index = interface.index if interface is not None else 0
        return Target(address, name, services, endpoints, index)

    # IPv6: one socket per interface, bound to it (see IPv6Links).

    def _protocol6(self, interface: Interface) -> DiscoveryProtocol:
        index = interface.index
        group = (GROUP6, self.settings.port)
        protocol = DiscoveryProtocol(
            self.reactor,
            broadcast=group,
            instanceId=self.protocol.instanceId,
            targets=lambda: ([self._targetOn(self._byIndex(index), group)], []),
            replyFor=lambda addr: self._targetOn(self._byIndex(index), tuple(addr[:2])),
            viaFor=interfaceNamed(interface.name),
            **self._shared,
        )
        protocol.name = self.protocol.name
        return protocol

    def _byIndex(self, index: int) -> Interface | None:
        return next((i for i in self._known if i.index == index), None)

    def advertisedPorts(self) -> dict[str, list[int]]:
        """
        The ports the other services of our tree listen on now, by name.
        """
        if self.parent is None:
            return {}
        return portsByService(self.parent, exclude=("discovery",))

    def peerSnapshot(self) -> list[dict[str, Any]]:
        """
        The peers heard and not expired, as JSON-serializable dictionaries
        (see L{Peer.asDict}).
        """
        return self.protocol.peers.snapshot()

    def statusDetails(self) -> dict[str, Any]:
        """
        What C{/status} adds for this service: the peers, at most
        C{STATUS_PEERS} of them listed (see L{PeerTable.summary}); with
        C{ipv6}, the interfaces it multicasts on (C{"ipv6"}).
        """
        details = self.protocol.peers.summary()
        if self.settings.ipv6:
            names = {i.index: i.name for i in self._known}
            details["ipv6"] = sorted(names.get(index, str(index)) for index in self._v6.indexes())
        return details

    def healthProblems(self) -> list[str]:
        """
        Why this service cannot do its job now (for C{/health}), if it
        cannot: see L{DiscoveryProtocol.problems}.
        """
        found = self.protocol.problems()
        for protocol in self._v6.protocols():
            found += protocol.problems()
        return found + self._receiveProblems + self._v6.problems()

    def guardedPorts(self) -> frozenset[int]:
        """
        The ports peers announced that the loop guards of the tree refuse
        to answer (a bounded set: L{PeerTable.guardedPorts}).
        """
        return self.protocol.peers.guardedPorts()

    # Listening.

    def privilegedStartService(self) -> None:
        """
        Bind the sockets now (the port may be privileged).

        @raise ListenError: if the discovery port cannot be bound.
        """
        Service.privilegedStartService(self)
        self._listen()

    def startService(self) -> None:
        """
        Start the service, binding the sockets if not done yet.
        """
        Service.startService(self)
        if self.port is None:
            self._listen()

    def _listen(self) -> None:
        settings = self.settings
        try:
            self.port = listenDiscovery(
                self.reactor, self.protocol, settings.interface, settings.port
            )
        except OSError as e:
            raise ListenError("discovery", self.description, e) from e
        for address in receiverAddresses(settings.interface, settings.broadcast, self._read()):
            try:
                receiver = listenDatagram(
                    self.reactor,
                    BroadcastReceiver(self.protocol),
                    address,
                    settings.port,
                    reuse=True,
                )
                self._receivers.append(receiver)
                if address == settings.broadcast and isMulticast(address):
                    self._group4.socket = socketOf(receiver, socket.AF_INET)
            except OSError as e:
                self._log.warn(
                    "discovery: cannot receive broadcasts to {address}:{port} ({reason}); "
                    "announcing anyway",
                    address=address,
                    port=settings.port,
                    reason=e.strerror or e,
                )
                self._receiveProblems.append(
                    f"cannot receive broadcasts to {address}:{settings.port}: {e.strerror or e}"
                )
        if isMulticast(settings.broadcast):
            with socketOf(self.port, socket.AF_INET) as skt:
                multicastOptions4(skt)
            if settings.interface in ("", "0.0.0.0"):
                self._group4.socket = socketOf(self.port, socket.AF_INET)
        if settings.ipv6:
            self._v6.sync(self._known)
        self._log.info(
            "discovery listening on {endpoint} ({address}), announcing to {broadcast} "
            "every {interval} s as {name} ({id})",
            endpoint=self.description,
            address=describeAddress(self.port.getHost()),
            broadcast=self._where(),
            interval=settings.interval,
            name=self.protocol.name,
            id=self.protocol.instanceId,
        )

    def _where(self) -> str:
        settings = self.settings
        if settings.broadcast != AUTO:
            where = _describe(self.protocol.broadcast)
        elif settings.interface in ("", "0.0.0.0"):
            where = "the broadcast address of each interface"
        else:
            where = f"the broadcast address of {settings.interface}'s interface"
        if settings.ipv6:
            where += f" and [{GROUP6}]:{settings.port} on each IPv6 interface"
        return where

    def stopService(self) -> Deferred[Any]:
        """
        Stop announcing and close the sockets.
        """
        Service.stopService(self)
        ports = [p for p in (self.port, *self._receivers) if p is not None]
        ports += self._v6.close()
        self._group4.close()
        self.port = None
        self._receivers = []
        self._receiveProblems = []
        return DeferredList([maybeDeferred(p.stopListening) for p in ports])


def makeDiscoveryService(
    settings: DiscoverySettings = DiscoverySettings(),
    reactor: Any = None,
    stats: DiscoveryStats | None = None,
    interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
) -> DiscoveryService:
    """
    Build a discovery service.

    @param reactor: the reactor to listen with; the global one if L{None}.
    @param stats: counters to update; new L{DiscoveryStats} if L{None}.
    @param interfaces: reads the host's interfaces (fakes in tests).
    """
    stats = stats if stats is not None else DiscoveryStats()
    return DiscoveryService(settings, defaultReactor(reactor), stats, interfaces)
