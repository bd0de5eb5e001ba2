# -*- test-case-name: tests.test_discovery -*-
"""
Discovery over UDP broadcast: every instance announces itself, answers
queries, and keeps a table of the instances it hears.

L{DiscoveryProtocol} speaks the wire format of L{services.discovery_wire}.
It allows broadcasting when it starts and, every C{interval} seconds,
broadcasts an announce (its instance id, name, ttl and the ports of its
services).  A query gets a unicast reply that echoes the query's nonce.
Every announce, and every reply to one of its own queries, adds or
refreshes a peer in its L{PeerTable}; a peer not heard for its ttl is
forgotten.

It is careful not to become a loop or an amplifier:

  - only queries are answered, never announces, replies or anything
    malformed, and no reply is larger than the query it answers (clients
    pad their queries);
  - no answer goes to a source port below 1024 or to one of our own
    service ports;
  - each source address, and all sources together, are rate-limited;
  - its own datagrams, heard back, are ignored;
  - bad datagrams are counted and logged at debug level, never raised.

Use it in your own application::

    from twisted.internet import reactor
    from services.datagram import listenDatagram
    from services.discovery import DiscoveryProtocol

    protocol = DiscoveryProtocol(reactor, name="builder-1",
                                 broadcast=("127.255.255.255", 8009),
                                 services=lambda: {"web": [8080]})
    listenDatagram(reactor, protocol, "", 8009, reuse=True)
    reactor.run()       # protocol.peers.snapshot() lists who was heard
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from services import logs
from services.config import LIMITED_BROADCAST, LIMITED_BROADCAST_ADDRESS, DiscoveryConfig
from services.datagram import (
    MAX_UDP_PAYLOAD,
    OwnPorts,
    SourceLimiter,
    listenDatagram,
    portsByService,
    unsafeSource,
)
from services.discovery_net import (
    AUTO,
    GROUP6,
    Target,
    endpointsOn,
    ipv4GroupInterfaces,
    ipv4Targets,
    ipv6Interfaces,
    isMulticast,
    joinGroup4,
    listenerAddresses,
    multicastOptions4,
    multicastSocket6,
    sendFrom4,
)
from services.discovery_peers import Peer, PeerTable
from services.discovery_peers import describe as _describe
from services.discovery_wire import (
    ANNOUNCE,
    MAX_DATAGRAM,
    MAX_PORTS,
    MAX_SERVICES,
    QUERY,
    REPLY,
    ForeignDatagram,
    MalformedDatagram,
    Message,
    decode,
    encode,
    isServiceName,
    newInstanceId,
    newNonce,
    query,
)
from services.interfaces import Interface, holding, listInterfaces, localAddressTowards
from services.listen import ListenError, describeAddress
from services.stats import DiscoveryStats

__all__ = [
    "GROUP6",
    "DiscoveryProtocol",
    "DiscoveryService",
    "Peer",
    "PeerTable",
    "chooseInterface",
    "defaultName",
    "discover",
    "makeDiscoveryService",
]

#: How long a query's nonce is accepted in replies.
NONCE_LIFETIME = 60.0

_SEND_ERRORS = (OSError, MessageLengthError, InvalidAddressError)


def defaultName() -> str:
    """
    The name an instance announces when none is configured: the host name.
    """
    name = socket.gethostname()[:64]
    return name if name and name.isprintable() else "netservices"


class DiscoveryProtocol(DatagramProtocol):
    """
    Announce, answer queries, and track peers (see the module docstring).

    @ivar instanceId: this instance's id, fixed for the protocol's life.
    @ivar peers: the L{PeerTable} of the instances heard.
    @ivar stats: the L{DiscoveryStats} it counts into.
    """

    _log = Logger(observer=logs.observer)
    noisy = False

    def logPrefix(self) -> str:
        """
        How Twisted's own log lines name this protocol's port.
        """
        return "discovery"

    def __init__(
        self,
        clock: IReactorTime,
        *,
        name: str | None = None,
        instanceId: str | None = None,
        broadcast: tuple[str, int] = ("127.255.255.255", 8009),
        interval: float | None = 5.0,
        ttl: int = 15,
        services: Callable[[], Mapping[str, Sequence[int]]] = dict,
        answer: bool = True,
        limiter: SourceLimiter | None = None,
        ownPorts: Callable[[], Collection[int]] = frozenset,
        stats: DiscoveryStats | None = None,
        peers: PeerTable | None = None,
        targets: Callable[[], tuple[Sequence[Target], Sequence[str]]] | None = None,
        replyFor: Callable[[tuple[Any, ...]], Target | None] | None = None,
        viaFor: Callable[[tuple[Any, ...]], str] | None = None,
        beforeSend: Callable[[Target], None] | None = None,
    ) -> None:
        """
        @param clock: time for the announces, the ttls and the limits.
        @param name: the name announced (the host name if L{None}).
        @param instanceId: 32 hex digits; a random one if L{None}.
        @param broadcast: where announces (and default queries) go.
        @param interval: seconds between announces; L{None} announces
            nothing (a client that only queries and listens).
        @param ttl: how long peers may remember this instance.
        @param services: called at each announce and reply for the ports
            to advertise, by service name.
        @param answer: whether to answer queries.
        @param limiter: the rate limits on replies; one reply a second per
            source (bursts of 5) and 50 a second in all if L{None}.
        @param ownPorts: called for the ports that no reply may go to.
        @param targets: called at each announce for where announces go, each
            with what is reachable there, and why some cannot go; if
            L{None}, one announce of C{services} goes to C{broadcast}.
        @param replyFor: called with a query's source for what to reply
            (the L{Target} of the interface it came by); if L{None}, or when
            it returns L{None}, C{services}.
        @param viaFor: called with a datagram's source for the local
            interface it came by.
        @param beforeSend: called with each target before its announce
            goes (to choose the interface IPv4 multicast leaves by).
        """
        self.clock = clock
        self.name = name or defaultName()
        self.instanceId = instanceId or newInstanceId()
        self.broadcast = broadcast
        self.interval = interval
        self.ttl = ttl
        self.services = services
        self.answer = answer
        self.limiter = limiter if limiter is not None else SourceLimiter(clock, 1.0, 5, 50.0)
        self.ownPorts = ownPorts
        self.stats = stats if stats is not None else DiscoveryStats()
        self.peers = peers if peers is not None else PeerTable(clock, stats=self.stats)
        if self.peers.onExpired is None and interval:  # a client keeps quiet
            self.peers.onExpired = self._forgotten
        self._nonces: dict[str, float] = {}
        self._starting: IDelayedCall | None = None
        self._loop: LoopingCall | None = None
        self._failing: dict[str, str] = {}
        self._trimming = False
        self.targets = targets
        self.replyFor = replyFor
        self.viaFor = viaFor
        self.beforeSend = beforeSend
        self._targetProblems: list[str] = []

    # Starting and stopping.

    def startProtocol(self) -> None:
        """
        Allow broadcasting; start announcing on the next turn of the
        reactor (once the other services are listening).
        """
        self.transport.setBroadcastAllowed(True)  # type: ignore[union-attr]
        if self.interval:
            self._starting = self.clock.callLater(0, self._startAnnouncing)

    def _startAnnouncing(self) -> None:
        assert self.interval
        self._starting = None
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopProtocol(self) -> None:
        """
        Stop announcing.
        """
        if self._starting is not None and self._starting.active():
            self._starting.cancel()
        self._starting = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    # Sending.

    def _tick(self) -> None:
        try:
            self.expire()
            self.announce()
        except Exception:  # noqa: BLE001 - keep announcing whatever one tick met
            self._log.failure("discovery: announce failed")

    def expire(self) -> None:
        """
        Forget the peers whose ttl has passed (the table logs each through
        L{_forgotten}).
        """
        self.peers.expire()

    def _forgotten(self, peer: Peer) -> None:
        self._log.info(
            "discovery: {name} ({id}) at {address} not heard for {ttl} s, forgotten",
            name=peer.name,
            id=peer.id,
            address=peer.address,
            ttl=peer.ttl,
        )

    def _advertised(self) -> dict[str, list[int]]:
        # Only what receivers accept: one bad entry would void the datagram.
        found: dict[str, list[int]] = {}
        for name, ports in sorted(self.services().items()):
            valid = sorted(p for p in ports if type(p) is int and 1 <= p <= 65535)
            if isServiceName(name) and len(found) < MAX_SERVICES:
                found[name] = valid[:MAX_PORTS]
        return found

    def _message(
        self,
        kind: str,
        nonce: str = "",
        target: Target | None = None,
    ) -> bytes:
        if target is None:
            services: dict[str, Any] = self._advertised()
            endpoints: dict[str, Any] | None = None
        else:
            services = dict(target.services)
            endpoints = dict(target.endpoints)
        while True:
            message = Message(
                kind, self.instanceId, self.name, self.ttl, services, nonce, endpoints
            )
            try:
                return encode(message)
            except ValueError as e:
                # Too large: leave services out, last first, rather than go silent.
                if not self._trimming:
                    self._trimming = True
                    self._log.warn(
                        "discovery: {reason}: leaving services out of announces and replies",
                        reason=e,
                    )
                last = list(services)[-1]
                del services[last]
                if endpoints is not None:
                    endpoints.pop(last, None)

    def _send(self, data: bytes, address: tuple[str, int]) -> str | None:
        """
        Send C{data}; L{None} if it went, else why not.
        """
        try:
            self.transport.write(data, address)  # type: ignore[union-attr]
        except _SEND_ERRORS as e:
            self.stats.sendErrors += 1
            reason = str(getattr(e, "strerror", None) or e)
            self._log.debug(
                "discovery: cannot send to {address}: {reason}",
                address=_describe(address),
                reason=reason,
            )
            return reason
        return None

    def announce(self) -> None:
        """
        Announce now: to C{broadcast}, or to each of C{targets()}.
        """
        if self.targets is None:
            self._announceTo(self._message(ANNOUNCE), self.broadcast)
            return
        targets, problems = self.targets()
        for problem in problems:
            if problem not in self._targetProblems:
                self._log.warn("discovery: {problem}", problem=problem)
        self._targetProblems = list(problems)
        current = set()
        for target in targets:
            current.add(_describe(target.address) + target.via)
            if self.beforeSend is not None:
                self.beforeSend(target)
            self._announceTo(self._message(ANNOUNCE, target=target), target.address, target.via)
        for gone in set(self._failing) - current:
            del self._failing[gone]

    def _announceTo(self, data: bytes, address: tuple[str, int], via: str = "") -> None:
        """
        Send one announce.  A destination that fails is logged as a warning
        once and listed by L{problems} until an announce goes out to it
        again.
        """
        where = _describe(address)
        key = where + via
        reason = self._send(data, address)
        if reason is None:
            self.stats.announcesSent += 1
            if self._failing.pop(key, None) is not None:
                self._log.info("discovery: announces to {address} go out again", address=where)
            return
        if key not in self._failing:
            self._log.warn(
                "discovery: cannot broadcast announces to {address}: {reason} "
                "(check [discovery] interface and broadcast)",
                address=where,
                reason=reason,
            )
        on = f" on {via}" if via else ""
        self._failing[key] = f"cannot send announces to {where}{on}: {reason}"

    def problems(self) -> list[str]:
        """
        Why this instance cannot do its job now, if it cannot: one line per
        destination its announces do not reach.
        """
        return self._targetProblems + sorted(self._failing.values())

    def query(self, address: tuple[str, int] | None = None, size: int = MAX_DATAGRAM) -> str:
        """
        Send a query padded to C{size} bytes to C{address} (the broadcast
        address if L{None}); replies echoing its nonce are accepted for
        L{NONCE_LIFETIME} seconds.

        @return: the query's nonce.
        @raise OSError: if the system refuses to send it.
        """
        now = self.clock.seconds()
        self._nonces = {n: t for n, t in self._nonces.items() if t > now}
        nonce = newNonce()
        self._nonces[nonce] = now + NONCE_LIFETIME
        destination = address or self.broadcast
        self.transport.write(query(nonce, size), destination)  # type: ignore[union-attr]
        return nonce

    # Receiving.

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """
        Handle one datagram; nothing it holds can make this raise.
        """
        self.stats.received += 1
        try:
            self._received(datagram, addr)
        except Exception:  # noqa: BLE001 - a bug here must not stop the port reading
            self.stats.errors += 1
            self._log.failure("discovery: failed on a datagram from {source}", source=addr)

    def _drop(self, datagram: bytes, addr: tuple[str, int], reason: str) -> None:
        self._log.debug(
            "discovery: dropped {size} bytes from {source}: {reason}",
            size=len(datagram),
            source=_describe(addr),
            reason=reason,
        )

    def _received(self, datagram: bytes, addr: tuple[str, int]) -> None:
        if len(datagram) > MAX_DATAGRAM:
            self.stats.oversize += 1
            return self._drop(datagram, addr, f"larger than {MAX_DATAGRAM} bytes")
        try:
            message = decode(datagram)
        except ForeignDatagram as e:
            self.stats.foreign += 1
            return self._drop(datagram, addr, f"foreign ({e})")
        except MalformedDatagram as e:
            self.stats.malformed += 1
            return self._drop(datagram, addr, f"malformed ({e})")
        if (
            message.type == QUERY
            and message.nonce in self._nonces
            or (message.type != QUERY and message.id == self.instanceId)
        ):
            self.stats.own += 1
            return None
        self._log.debug(
            "discovery: {type} from {source} ({size} bytes)",
            type=message.type,
            source=_describe(addr),
            size=len(datagram),
        )
        if message.type == QUERY:
            self._answer(message, datagram, addr)
        elif message.type == REPLY:
            self._reply(message, addr)
        else:
            self.stats.announcesHeard += 1
            self._heard(message, addr)
        return None

    def _answer(self, message: Message, datagram: bytes, addr: tuple[str, int]) -> None:
        self.stats.queriesHeard += 1
        if not self.answer:
            return
        reason = unsafeSource(addr[1], self.ownPorts())
        if reason is not None:
            self.stats.loopGuarded += 1
            return self._drop(datagram, addr, f"query not answered: {reason}")
        target = self.replyFor(addr) if self.replyFor is not None else None
        reply = self._message(REPLY, message.nonce, target)
        if len(reply) > len(datagram):
            self.stats.smallQueries += 1
            return self._drop(
                datagram, addr, f"query not answered: the reply needs {len(reply)} bytes"
            )
        if not self.limiter.allow(addr[0]):
            self.stats.rateLimited += 1
            return self._drop(datagram, addr, "query not answered: rate limit")
        if self._send(reply, addr) is None:
            self.stats.repliesSent += 1
        return None

    def _reply(self, message: Message, addr: tuple[str, int]) -> None:
        expires = self._nonces.get(message.nonce)
        if expires is None or expires <= self.clock.seconds():
            self.stats.unsolicited += 1
            self._log.debug("discovery: unsolicited reply from {source}", source=_describe(addr))
            return
        self.stats.repliesHeard += 1
        self._heard(message, addr)

    def _heard(self, message: Message, addr: tuple[str, int]) -> None:
        via = self.viaFor(addr) if self.viaFor is not None else ""
        peer = self.peers.heard(message, addr, message.endpoints, via)
        if peer is not None and self.interval:  # a client, announcing nothing, keeps quiet
            self._log.info(
                "discovery: found {name} ({id}) at {address}: {services}",
                name=peer.name,
                id=peer.id,
                address=peer.address,
                services=_servicesText(peer.services),
            )


def _servicesText(services: Mapping[str, Sequence[int]]) -> str:
    return " ".join(f"{n}:{','.join(map(str, p))}" for n, p in services.items()) or "no services"


class _BroadcastReceiver(DatagramProtocol):
    """
    Hands the datagrams of a second port (the one bound to the broadcast
    address) to the discovery protocol, which answers from its own port.
    """

    noisy = False

    def __init__(self, target: DatagramProtocol) -> None:
        self.target = target

    def logPrefix(self) -> str:
        """
        How Twisted's own log lines name this port.
        """
        return "discovery broadcasts"

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Pass the datagram on to the discovery protocol.
        """
        self.target.datagramReceived(datagram, addr)


class DiscoveryService(Service):
    """
    Runs discovery on the configured port, sharing it with other instances
    (C{SO_REUSEADDR}): a L{DiscoveryProtocol} over IPv4 broadcast and, with
    C{ipv6}, one over IPv6 multicast on each interface, sharing one peer
    table.

    At each announce the interfaces are read again (L{listInterfaces}), so
    announces follow interfaces and addresses as they come and go; each
    announce lists what is reachable on the interface it goes out on (see
    L{services.discovery_net}).  When C{interface} is a single address,
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
            with _socketOf(self.port, socket.AF_INET) as skt:
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
            viaFor=_constant(name),
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
                    _BroadcastReceiver(self.protocol),
                    address,
                    config.port,
                    reuse=True,
                )
                self._receivers.append(receiver)
                if address == config.broadcast and isMulticast(address):
                    self._group4 = _socketOf(receiver, socket.AF_INET)
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
            with _socketOf(self.port, socket.AF_INET) as skt:
                multicastOptions4(skt)
            if config.interface in ("", "0.0.0.0"):
                self._group4 = _socketOf(self.port, socket.AF_INET)
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
        where = (
            "the broadcast address of each interface"
            if config.broadcast == AUTO
            else _describe(self.protocol.broadcast)
        )
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


def _socketOf(port: Any, family: int) -> socket.socket:
    """
    A socket object for the descriptor of a listening UDP port (a duplicate:
    closing it leaves the port open), for the socket options Twisted has no
    method for.
    """
    return socket.fromfd(port.fileno(), family, socket.SOCK_DGRAM)


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


def announceListenAddress(broadcast: str) -> str | None:
    """
    The address a client binds (with C{SO_REUSEADDR}) to hear the announces
    sent to C{broadcast}, or L{None} when C{broadcast} looks like a single
    host's address, which a client must not bind: it would take unicast
    queries meant for the instances there.  Broadcast addresses are
    C{<broadcast>}, C{255.255.255.255} and those ending in C{.255}
    (C{127.255.255.255}, C{192.168.1.255}...).
    """
    if broadcast in (LIMITED_BROADCAST, LIMITED_BROADCAST_ADDRESS):
        return LIMITED_BROADCAST_ADDRESS
    return broadcast if broadcast.endswith(".255") else None


def chooseInterface(interfaces: Sequence[Interface], wanted: str) -> Interface:
    """
    The interface named C{wanted}, or holding the address C{wanted}.

    @raise ValueError: naming the interfaces there are, if none is.
    """
    for interface in interfaces:
        if wanted == interface.name or wanted in interface.addresses():
            return interface
    names = ", ".join(i.name for i in interfaces) or "none"
    raise ValueError(f"no interface is named {wanted} or has that address (there are: {names})")


def _queryPlan(
    broadcast: tuple[str, int],
    family: str,
    chosen: Interface | None,
    interfaces: Sequence[Interface],
) -> tuple[list[str], str, list[Interface]]:
    """
    Where a client's queries go: the IPv4 destinations (a multicast group
    once for each interface it is sent on: see L{_groupSources}), the IPv4
    address to send from, and the interfaces to multicast to over IPv6.
    """
    destinations: list[str] = []
    bind = ""
    if family in ("4", "any"):
        if broadcast[0] == AUTO:
            for interface in [chosen] if chosen else interfaces:
                if interface.up:
                    destinations += [a.broadcast for a in interface.ipv4 if a.broadcast]
        else:
            destinations = [broadcast[0]]
        if chosen is not None:
            bind = chosen.ipv4[0].address if chosen.ipv4 else ""
            if isMulticast(broadcast[0]):
                bind = ""  # sent from the interface of IP_MULTICAST_IF
            if not chosen.ipv4:
                destinations = []
        elif destinations and all(d.startswith("127.") for d in destinations):
            bind = "127.0.0.1"
    over6: list[Interface] = []
    if family in ("6", "any"):
        if chosen is not None:
            over6 = [chosen] if chosen in ipv6Interfaces(interfaces) else []
        elif broadcast[0] == AUTO:
            over6 = ipv6Interfaces(interfaces)
    return list(dict.fromkeys(destinations)), bind, over6


async def discover(
    reactor: Any,
    broadcast: tuple[str, int] = ("127.255.255.255", 8009),
    timeout: float = 2.0,
    family: str = "any",
    interface: str | None = None,
    interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
) -> list[dict[str, Any]]:
    """
    Find the instances around: send a padded query to C{broadcast} over
    IPv4 and, over IPv6, to L{GROUP6} on each interface chosen (again
    halfway through, in case a datagram was lost), listen for replies and
    for announces until C{timeout} seconds have passed, and return the
    instances heard as L{Peer.asDict} dictionaries, by name.

    @param broadcast: the IPv4 destination and the port; C{auto} for the
        broadcast address of every interface (and then IPv6 multicast on
        every IPv6 interface too).
    @param family: C{"4"}, C{"6"} or C{"any"}.
    @param interface: query only by this interface (a name or one of its
        addresses), over both families unless C{family} says otherwise.
    @raise ValueError: if C{interface} is not one of the host's, or there
        is nothing to query with C{family}.
    @raise OSError: if no query can be sent.
    """
    known = list(interfaces())
    chosen = chooseInterface(known, interface) if interface else None
    destinations, bind, over6 = _queryPlan(broadcast, family, chosen, known)
    sources = _groupSources(destinations, chosen, known)
    if not sources and any(isMulticast(d) for d in destinations):
        raise ValueError(f"no IPv4 interface that can multicast to {broadcast[0]}")
    if not destinations and not over6:
        over = f" over IPv{family}" if family != "any" else ""
        hint = "" if interface else ": use --broadcast auto, or --interface NAME"
        raise ValueError(f"nothing to query{over} by {interface or 'the interfaces chosen'}{hint}")
    peers = PeerTable(reactor)

    def via(addr: tuple[Any, ...]) -> str:
        local = localAddressTowards(addr[:2], socket.AF_INET)
        found = holding(known, local) if local is not None else None
        return found.name if found is not None else ""

    protocol = DiscoveryProtocol(
        reactor, broadcast=broadcast, interval=None, answer=False, peers=peers, viaFor=via
    )
    ports = []
    sockets: list[socket.socket] = []
    try:
        if destinations:
            ports.append(listenDatagram(reactor, protocol, bind, 0))
            _listenForAnnounces(reactor, protocol, destinations, broadcast[1], ports)
        protocols6 = []
        for each in over6:
            skt = multicastSocket6(0, each)
            sockets.append(skt)
            protocol6 = DiscoveryProtocol(
                reactor,
                broadcast=(GROUP6, broadcast[1]),
                interval=None,
                answer=False,
                peers=peers,
                viaFor=_constant(each.name),
            )
            ports.append(reactor.adoptDatagramPort(skt.fileno(), socket.AF_INET6, protocol6))
            protocols6.append(protocol6)
        for _ in range(2):
            _queryAll(protocol, destinations, broadcast[1], protocols6, sources)
            await deferLater(reactor, timeout / 2)
    finally:
        for port in ports:
            await maybeDeferred(port.stopListening)
        for skt in sockets:
            skt.close()
    return peers.snapshot()


def _constant(name: str) -> Callable[[tuple[Any, ...]], str]:
    """
    A C{viaFor} for a socket bound to one interface: always its name.
    """
    return lambda addr: name


def _listenForAnnounces(
    reactor: Any, protocol: DiscoveryProtocol, destinations: Sequence[str], port: int, ports: list[Any]
) -> None:
    for destination in destinations:
        address = announceListenAddress(destination)
        if address is None:
            continue
        try:
            ports.append(
                listenDatagram(reactor, _BroadcastReceiver(protocol), address, port, reuse=True)
            )
        except OSError:
            pass  # replies are enough; announces are a bonus


def _groupSources(
    destinations: Sequence[str], chosen: Interface | None, known: Sequence[Interface]
) -> list[str]:
    """
    The interface addresses a query to a multicast group among
    C{destinations} is sent from: C{chosen}'s, or every interface's that
    can multicast.
    """
    if not any(isMulticast(d) for d in destinations):
        return []
    return [source for _, source in ipv4GroupInterfaces([chosen] if chosen else known, "")]


def _queryAll(
    protocol: DiscoveryProtocol,
    destinations: Sequence[str],
    port: int,
    protocols6: Sequence[DiscoveryProtocol],
    sources: Sequence[str] = (),
) -> None:
    """
    Send one query to each destination (to a multicast group, once from
    each of C{sources}); raise the first error if none went.
    """
    sent, errors = 0, []
    for destination in destinations:
        for source in sources if isMulticast(destination) else [""]:
            try:
                if source:
                    with _socketOf(protocol.transport, socket.AF_INET) as skt:
                        sendFrom4(skt, source)
                protocol.query((destination, port))
                sent += 1
            except OSError as e:
                errors.append(e)
    for protocol6 in protocols6:
        try:
            protocol6.query((GROUP6, port))
            sent += 1
        except OSError as e:
            errors.append(e)
    if not sent and errors:
        raise errors[0]
