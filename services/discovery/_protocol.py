# -*- test-case-name: tests.unit.discovery.test_discovery -*-
"""
The discovery protocol: every instance announces itself, answers queries,
and keeps a table of the instances it hears.

L{DiscoveryProtocol} speaks the wire format of L{services.discovery._wire}.
It allows broadcasting when it starts and, every C{interval} seconds,
broadcasts an announce (its instance id, name, ttl and the ports of its
services), or one to each of the targets it is given (each with the
endpoints reachable there: see L{services.discovery._net}).  A query
gets a unicast reply that echoes the query's nonce.
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

Use it in your own application: see the README's discovery section
(L{services.discovery.listenDiscovery} binds it as the service does, on
a port other instances share).

Why one module: L{DiscoveryProtocol} is one datagram protocol whose
announces, replies and the peers it hears share one instance id, one set
of query nonces, one rate limiter and one peer table; what is announced
where lives in L{services.discovery._net} and the datagrams themselves in
L{services.discovery._wire}, so what is left here is the protocol's own
state machine, which a split would cut in half.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from services import logs
from services.net.datagram import SourceLimiter, unsafeSource
from services.discovery._net import Target
from services.discovery._peers import Peer, PeerTable
from services.discovery._peers import describe as _describe
from services.discovery._wire import (
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
from services.stats import DiscoveryStats

__all__ = ["NONCE_LIFETIME", "BroadcastReceiver", "DiscoveryProtocol", "defaultName"]

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
        reactor: IReactorTime,
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
        @param reactor: time for the announces, the ttls and the limits.
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
        self.reactor = reactor
        self.name = name or defaultName()
        self.instanceId = instanceId or newInstanceId()
        self.broadcast = broadcast
        self.interval = interval
        self.ttl = ttl
        self.services = services
        self.answer = answer
        self.limiter = limiter if limiter is not None else SourceLimiter(reactor, 1.0, 5, 50.0)
        self.ownPorts = ownPorts
        self.stats = stats if stats is not None else DiscoveryStats()
        self.peers = peers if peers is not None else PeerTable(reactor, stats=self.stats)
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
            self._starting = self.reactor.callLater(0, self._startAnnouncing)

    def _startAnnouncing(self) -> None:
        assert self.interval
        self._starting = None
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.reactor
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
        now = self.reactor.seconds()
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
        if expires is None or expires <= self.reactor.seconds():
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


class BroadcastReceiver(DatagramProtocol):
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
