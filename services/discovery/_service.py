# -*- test-case-name: tests.test_discovery -*-
"""
Discovery over UDP broadcast and multicast: every instance announces
itself, answers queries, and keeps a table of the instances it hears.
L{DiscoveryService} runs it in the daemon (see L{services.discovery._net}
for what is announced where); the protocol is
L{services.discovery._protocol}, the peer table L{services.discovery._peers},
the client L{services.discovery._client}, all exported here.

A discovery service announces on each interface it serves, every
C{interval} seconds, the endpoints its services are reachable at there;
answers queries with what is reachable where they came from; and forgets
a peer not heard for its ttl.  It is careful not to become a loop or an
amplifier, on every transport (see L{services.discovery._protocol}).

To use the protocol in your own application, see
L{services.discovery._protocol}.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

from services import logs
from services.config import LIMITED_BROADCAST, LIMITED_BROADCAST_ADDRESS, DiscoveryConfig
from services.net.datagram import MAX_UDP_PAYLOAD, SourceLimiter, listenDatagram
from services.net.ownports import OwnPorts, portsByService
from services.discovery._client import announceListenAddress, chooseInterface, discover
from services.discovery._net import (
    AUTO,
    GROUP6,
    Target,
    endpointsOn,
    interfaceNamed,
    ipv4GroupInterfaces,
    ipv4Targets,
    ipv6Interfaces,
    isMulticast,
    joinGroup4,
    listenerAddresses,
    multicastOptions4,
    multicastSocket6,
    sendFrom4,
    socketOf,
)
from services.discovery._peers import STATUS_PEERS, Peer, PeerTable
from services.discovery._peers import describe as _describe
from services.discovery._protocol import (
    NONCE_LIFETIME,
    BroadcastReceiver,
    DiscoveryProtocol,
    defaultName,
)
from services.net.interfaces import Interface, holding, listInterfaces, localAddressTowards
from services.net.addresses import describeAddress
from services.net.listener import ListenError
from services.stats import DiscoveryStats

__all__ = [
    "GROUP6",
    "NONCE_LIFETIME",
    "STATUS_PEERS",
    "DiscoveryProtocol",
    "DiscoveryService",
    "Peer",
    "PeerTable",
    "announceListenAddress",
    "chooseInterface",
    "defaultName",
    "discover",
    "makeDiscoveryService",
    "receiverAddresses",
]


class DiscoveryService(Service):
    """
    Runs discovery on the configured port, sharing it with other instances
    (C{SO_REUSEADDR}): a L{DiscoveryProtocol} over IPv4 broadcast and, with
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
    its own, bound to it (see L{multicastSocket6}), with a protocol of its
    own; interfaces that come later get theirs at the next announce.

    @ivar port: the listening IPv4 UDP port once listening, else L{None}.
    @ivar protocol: the IPv4 L{DiscoveryProtocol}.
    @ivar stats: the L{DiscoveryStats} of every protocol.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        config: DiscoveryConfig,
        reactor: Any,
        stats: DiscoveryStats,
        interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
    ) -> None:
        self.setName("discovery")
        self.config = config
        self.reactor = reactor
        self.stats = stats
        self.interfaces = interfaces
        self.port: IListeningPort | None = None
        # IPv6: a socket, its port and its protocol for each interface.
        self._v6: dict[int, tuple[socket.socket, IListeningPort, DiscoveryProtocol]] = {}
        self._v6Problems: dict[str, str] = {}
        self._receivers: list[IListeningPort] = []
        self._known: list[Interface] = []
        # IPv4 multicast: our handle on the socket that joins the group, and
        # the interface addresses it has joined on.
        self._group4: socket.socket | None = None
        self._joined4: set[str] = set()
        self._receiveProblems: list[str] = []
        self._routes: dict[str, Interface | None] = {}
        self.description = f"udp:{config.port}:interface={config.interface}"
        shared: dict[str, Any] = {
            "name": config.name or None,
            "interval": config.interval,
            "ttl": config.ttl,
            "services": self.advertisedPorts,
            "limiter": SourceLimiter(
                reactor, config.source_rate, config.source_burst, config.global_rate
            ),
            "ownPorts": OwnPorts(self, reactor, fixed=(config.port,)),
            "stats": stats,
            "peers": PeerTable(
                reactor,
                stats=stats,
                maxPerSource=config.max_peers_per_source,
                maxPortsPerSource=config.max_ports_per_source,
                # Never forget peers configured as we are before their time.
                maxTtl=max(config.max_peer_ttl, config.ttl),
            ),
        }
        self._shared = shared
        broadcast = config.broadcast
        self.protocol = DiscoveryProtocol(
            reactor,
            broadcast=(LIMITED_BROADCAST_ADDRESS if broadcast == LIMITED_BROADCAST else broadcast,
                       config.port),
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
        config = self.config
        interfaces = self._read()
        if config.ipv6 and self.running:
            self._sync6(interfaces)
        targets, problems = ipv4Targets(
            interfaces, config.interface, config.broadcast, config.port, self._listeners()
        )
        return targets, problems + self._join4(interfaces)

    # IPv4 multicast (broadcast = a group).

    def _join4(self, interfaces: Sequence[Interface]) -> list[str]:
        """
        Join the group on every IPv4 interface not joined yet; what could
        not be joined.
        """
        if self._group4 is None:
            return []
        problems = []
        group = self.config.broadcast
        present = {source for _, source in ipv4GroupInterfaces(interfaces, self.config.interface)}
        self._joined4 &= present
        for interface, source in ipv4GroupInterfaces(interfaces, self.config.interface):
            if source in self._joined4:
                continue
            try:
                joinGroup4(self._group4, group, source)
            except OSError as e:
                if e.errno != errno.EADDRINUSE:  # a member already
                    problems.append(f"cannot join {group} on {interface.name}: {e.strerror or e}")
                    continue
            self._joined4.add(source)
        return problems

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

    # IPv6: one socket per interface, bound to it.

    def _sync6(self, interfaces: Sequence[Interface]) -> None:
        """
        Listen on every IPv6 interface that can multicast and is not
        listened on yet; stop on those that have gone.
        """
        wanted = {i.index: i for i in ipv6Interfaces(interfaces)}
        for index in set(self._v6) - set(wanted):
            skt, port, _ = self._v6.pop(index)
            port.stopListening()
            skt.close()
        self._v6Problems = {k: v for k, v in self._v6Problems.items() if k in
                            {i.name for i in wanted.values()}}
        for index, interface in wanted.items():
            if index not in self._v6:
                self._listen6(interface)
        if not wanted:
            self._v6Problems[""] = "ipv6 = yes: no IPv6 interface that can multicast"
        else:
            self._v6Problems.pop("", None)

    def _listen6(self, interface: Interface) -> None:
        name = interface.name
        protocol = DiscoveryProtocol(
            self.reactor,
            broadcast=(GROUP6, self.config.port),
            instanceId=self.protocol.instanceId,
            targets=lambda: ([self._targetOn(self._byIndex(interface.index), (GROUP6, self.config.port))], []),
            replyFor=lambda addr: self._targetOn(self._byIndex(interface.index), tuple(addr[:2])),
            viaFor=interfaceNamed(name),
            **self._shared,
        )
        protocol.name = self.protocol.name
        try:
            skt = multicastSocket6(self.config.port, interface)
        except OSError as e:
            reason = f"cannot listen on [{GROUP6}]:{self.config.port} on {name}: {e.strerror or e}"
            if self._v6Problems.get(name) != reason:
                self._log.warn("discovery: {reason}", reason=reason)
            self._v6Problems[name] = reason
            return
        try:
            port = self.reactor.adoptDatagramPort(
                skt.fileno(), socket.AF_INET6, protocol, MAX_UDP_PAYLOAD + 1
            )
        except BaseException:
            skt.close()
            raise
        self._v6Problems.pop(name, None)
        self._v6[interface.index] = (skt, port, protocol)
        self._log.info(
            "discovery listening on [{group}]:{port} on {interface}",
            group=GROUP6,
            port=self.config.port,
            interface=name,
        )

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
        L{STATUS_PEERS} of them listed (see L{PeerTable.summary}); with
        C{ipv6}, the interfaces it multicasts on (C{"ipv6"}).
        """
        details = self.protocol.peers.summary()
        if self.config.ipv6:
            names = {i.index: i.name for i in self._known}
            details["ipv6"] = sorted(names.get(index, str(index)) for index in self._v6)
        return details

    def healthProblems(self) -> list[str]:
        """
        Why this service cannot do its job now (for C{/health}), if it
        cannot: see L{DiscoveryProtocol.problems}.
        """
        found = self.protocol.problems()
        for _, _, protocol in self._v6.values():
            found += protocol.problems()
        return found + self._receiveProblems + sorted(self._v6Problems.values())

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
        config = self.config
        try:
            self.port = listenDatagram(
                self.reactor,
                self.protocol,
                config.interface,
                config.port,
                reuse=True,
                maxPacketSize=MAX_UDP_PAYLOAD + 1,
            )
        except OSError as e:
            raise ListenError("discovery", self.description, e) from e
        for address in receiverAddresses(config.interface, config.broadcast, self._read()):
            try:
                receiver = listenDatagram(
                    self.reactor,
                    BroadcastReceiver(self.protocol),
                    address,
                    config.port,
                    reuse=True,
                )
                self._receivers.append(receiver)
                if address == config.broadcast and isMulticast(address):
                    self._group4 = socketOf(receiver, socket.AF_INET)
            except OSError as e:
                self._log.warn(
                    "discovery: cannot receive broadcasts to {address}:{port} ({reason}); "
                    "announcing anyway",
                    address=address,
                    port=config.port,
                    reason=e.strerror or e,
                )
                self._receiveProblems.append(
                    f"cannot receive broadcasts to {address}:{config.port}: {e.strerror or e}"
                )
        if isMulticast(config.broadcast):
            with socketOf(self.port, socket.AF_INET) as skt:
                multicastOptions4(skt)
            if config.interface in ("", "0.0.0.0"):
                self._group4 = socketOf(self.port, socket.AF_INET)
        if config.ipv6:
            self._sync6(self._known)
        self._log.info(
            "discovery listening on {endpoint} ({address}), announcing to {broadcast} "
            "every {interval} s as {name} ({id})",
            endpoint=self.description,
            address=describeAddress(self.port.getHost()),
            broadcast=self._where(),
            interval=config.interval,
            name=self.protocol.name,
            id=self.protocol.instanceId,
        )

    def _where(self) -> str:
        config = self.config
        if config.broadcast != AUTO:
            where = _describe(self.protocol.broadcast)
        elif config.interface in ("", "0.0.0.0"):
            where = "the broadcast address of each interface"
        else:
            where = f"the broadcast address of {config.interface}'s interface"
        if config.ipv6:
            where += f" and [{GROUP6}]:{config.port} on each IPv6 interface"
        return where

    def stopService(self) -> Deferred[Any]:
        """
        Stop announcing and close the sockets.
        """
        Service.stopService(self)
        ports = [p for p in (self.port, *self._receivers) if p is not None]
        for skt, port, _ in self._v6.values():
            ports.append(port)
            skt.close()  # the reactor holds its own duplicate
        self._v6.clear()
        if self._group4 is not None:
            self._group4.close()
            self._group4 = None
        self._joined4.clear()
        self.port = None
        self._receivers = []
        self._receiveProblems = []
        return DeferredList([maybeDeferred(p.stopListening) for p in ports])


def receiverAddresses(
    interface: str, broadcast: str, interfaces: Sequence[Interface]
) -> list[str]:
    """
    The addresses more sockets bind so that the broadcasts meant for an
    instance bound to C{interface} arrive: none for a wildcard
    C{interface}, which receives them all; else the configured broadcast
    address, the subnet broadcast addresses of C{interface}, and
    255.255.255.255.
    """
    if interface in ("", "0.0.0.0"):
        return []
    found = []
    if broadcast not in (AUTO, LIMITED_BROADCAST):
        found.append(broadcast)
    for each in interfaces:
        for entry in each.ipv4:
            if entry.address == interface and entry.broadcast:
                found.append(entry.broadcast)
    found.append(LIMITED_BROADCAST_ADDRESS)
    unique = []
    for address in found:
        if address != interface and address not in unique:
            unique.append(address)
    return unique


def makeDiscoveryService(
    config: DiscoveryConfig,
    reactor: Any = None,
    stats: DiscoveryStats | None = None,
    interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
) -> DiscoveryService:
    """
    Build the discovery service for the C{[discovery]} section.

    @param reactor: the reactor to listen with; the global one if L{None}.
    @param stats: counters to update; new L{DiscoveryStats} if L{None}.
    @param interfaces: reads the host's interfaces (fakes in tests).
    """
    if reactor is None:
        from twisted.internet import reactor
    stats = stats if stats is not None else DiscoveryStats()
    return DiscoveryService(config, reactor, stats, interfaces)
