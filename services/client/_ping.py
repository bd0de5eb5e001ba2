# -*- test-case-name: tests.test_ping -*-
"""
ICMP echo (ping) for IPv4 and IPv6 under the reactor.

The socket is, in order of preference:

  - an unprivileged ICMP datagram socket (C{SOCK_DGRAM} with
    C{IPPROTO_ICMP}/C{IPPROTO_ICMPV6}), which Linux allows to the groups in
    C{net.ipv4.ping_group_range} (the kernel sets the echo identifier and
    hands over only the replies to this socket);
  - a raw socket (C{SOCK_RAW} with C{getprotobyname('icmp')}), for root or
    C{CAP_NET_RAW}: every ICMP packet of the host arrives on it, so replies
    are matched by identifier, sequence number and payload;
  - else L{PingUnavailable}, saying which of the two to enable.

L{Pinger} is the socket's L{IReadDescriptor}: the reactor calls it when
replies are waiting; requests are sent by a L{LoopingCall} and each reply is
waited for with C{callLater}, so a L{Clock} drives it all in tests.

Use it in your own application::

    from services.client._ping import PingOptions, ping

    result = await ping(reactor, "127.0.0.1", PingOptions(count=3, interval=0.2))
    print(result.received, result.rttSummary())
"""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IDelayedCall, IReadDescriptor
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs
from services.client._icmp import (
    ECHO_REPLY,
    HEADER_SIZE,
    Malformed,
    decodeEcho,
    encodeEcho,
    stripIPv4Header,
)

__all__ = [
    "PingOptions",
    "PingResult",
    "PingUnavailable",
    "Pinger",
    "Reply",
    "openICMPSocket",
    "ping",
    "resolveTarget",
]

#: Socket options that Python's socket module does not name (Linux values).
_IP_RECVTTL = 12
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1

#: The most an IPv4 header adds in front of the ICMP message on a raw socket.
_MAX_IP_HEADER = 60

#: Packets read per call of doRead, so a flood cannot hold the reactor.
_READS_PER_EVENT = 64

_ENABLE_DGRAM = (
    "enable unprivileged ICMP sockets for your group "
    "(sysctl -w net.ipv4.ping_group_range='0 2147483647'; it covers IPv6 too)"
)
_ENABLE_RAW = "run as root or with CAP_NET_RAW for raw ICMP sockets (setcap cap_net_raw+ep)"


class PingUnavailable(Exception):
    """
    No ICMP socket may be opened: the message says what to enable.
    """


@dataclass(frozen=True)
class PingOptions:
    """
    How to ping, as iputils C{ping}'s options.

    @ivar count: requests to send (C{-c}); L{None} for until stopped.
    @ivar interval: seconds between requests (C{-i}).
    @ivar timeout: seconds to wait for each reply (C{-W}).
    @ivar size: payload bytes of each request (C{-s}).
    @ivar ttl: the IPv4 TTL or IPv6 hop limit of requests (C{-t}); L{None}
        for the system's default.
    @ivar socketKind: C{"auto"} (datagram socket, else raw), C{"dgram"} or
        C{"raw"}.
    """

    count: int | None = None
    interval: float = 1.0
    timeout: float = 10.0
    size: int = 56
    ttl: int | None = None
    socketKind: str = "auto"


@dataclass(frozen=True)
class Reply:
    """
    One echo reply.

    @ivar sequence: the request's sequence number (from 1; the wire carries
        it modulo 65536).
    @ivar address: who answered.
    @ivar size: bytes of the ICMP message (header and payload).
    @ivar ttl: the reply's TTL or hop limit, L{None} when unknown.
    @ivar rtt: seconds from request to reply.
    @ivar duplicate: whether this request was answered before.
    @ivar reordered: whether a later request was answered before this one.
    """

    sequence: int
    address: str
    size: int
    ttl: int | None
    rtt: float
    duplicate: bool = False
    reordered: bool = False


#: At most this many replies are kept for L{PingResult.replies}; the counts
#: and round-trip statistics cover every reply, so a run without a count (or
#: a flood of duplicate replies) keeps its memory bounded.
MAX_KEPT_REPLIES = 4096


@dataclass(frozen=True)
class PingResult:
    """
    What a run measured.

    @ivar address: the address pinged.
    @ivar family: C{AF_INET} or C{AF_INET6}.
    @ivar socketKind: C{"dgram"} or C{"raw"}.
    @ivar transmitted: requests sent.
    @ivar replies: the first L{MAX_KEPT_REPLIES} replies matched to a
        request, duplicates included, in arrival order.
    @ivar malformed: packets dropped as malformed or truncated.
    @ivar errors: requests that could not be sent, and socket errors.
    @ivar elapsed: seconds from the first request to the last request or
        reply, whichever came later (what iputils reports as C{time}).
    @ivar received: requests answered (duplicates not counted).
    @ivar duplicates: replies to requests answered before.
    @ivar reordered: replies that came after the reply to a later request.
    @ivar rtts: the round-trip statistics of every reply (L{RoundTrips}).
    """

    address: str
    family: int
    socketKind: str
    transmitted: int
    replies: tuple[Reply, ...] = ()
    malformed: int = 0
    errors: int = 0
    elapsed: float = 0.0
    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    rtts: "RoundTrips | None" = None

    @property
    def loss(self) -> float:
        """
        Percent of requests unanswered.
        """
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted

    def rttSummary(self) -> tuple[float, float, float, float] | None:
        """
        The minimum, average, maximum and mean deviation (C{mdev}, as
        iputils computes it) of the round-trip times in seconds, over every
        reply; L{None} without replies.
        """
        return None if self.rtts is None else self.rtts.summary()


@dataclass(frozen=True)
class RoundTrips:
    """
    Running round-trip statistics, as iputils keeps them: a count, the
    extremes, the sum and the sum of squares (for C{mdev}).
    """

    count: int
    minimum: float
    maximum: float
    total: float
    squares: float

    @classmethod
    def of(cls, rtt: float) -> "RoundTrips":
        """
        The statistics of one round trip.
        """
        return cls(1, rtt, rtt, rtt, rtt * rtt)

    def add(self, rtt: float) -> "RoundTrips":
        """
        These statistics and one more round trip.
        """
        return RoundTrips(
            self.count + 1,
            min(self.minimum, rtt),
            max(self.maximum, rtt),
            self.total + rtt,
            self.squares + rtt * rtt,
        )

    def summary(self) -> tuple[float, float, float, float]:
        """
        The minimum, average, maximum and mean deviation in seconds.
        """
        mean = self.total / self.count
        square = self.squares / self.count
        return self.minimum, mean, self.maximum, math.sqrt(max(0.0, square - mean * mean))


def _rawProtocol(family: int) -> int:
    # The protocols database names them; a system without /etc/protocols
    # still has the numbers.
    name, number = (
        ("icmp", socket.IPPROTO_ICMP)
        if family == socket.AF_INET
        else ("ipv6-icmp", socket.IPPROTO_ICMPV6)
    )
    try:
        return socket.getprotobyname(name)
    except OSError:
        return number


def openICMPSocket(
    family: int, kind: str = "auto", socketFactory: Callable[..., Any] = socket.socket
) -> tuple[Any, str]:
    """
    Open an ICMP socket of C{family}: with C{kind="auto"} an ICMP datagram
    socket, else a raw one.

    @return: the socket and its kind, C{"dgram"} or C{"raw"}.
    @raise PingUnavailable: when neither kind asked for is permitted.
    @raise OSError: for any other reason (no IPv6 in the kernel...).
    """
    kinds = ("dgram", "raw") if kind == "auto" else (kind,)
    dgramProtocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    for each in kinds:
        try:
            if each == "dgram":
                return socketFactory(family, socket.SOCK_DGRAM, dgramProtocol), each
            return socketFactory(family, socket.SOCK_RAW, _rawProtocol(family)), each
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM):
                raise
    if kind == "dgram":
        raise PingUnavailable(f"ICMP datagram sockets are not permitted: {_ENABLE_DGRAM}")
    if kind == "raw":
        raise PingUnavailable(f"raw ICMP sockets are not permitted: {_ENABLE_RAW}")
    raise PingUnavailable(f"no ICMP socket is permitted: {_ENABLE_DGRAM}, or {_ENABLE_RAW}")


def _configure(skt: Any, family: int, kind: str, ttl: int | None) -> int | None:
    """
    Make C{skt} non-blocking, ask for the TTL of replies, set the TTL of
    requests and, on raw sockets, let only echo replies through.

    @return: the identifier the kernel gives a datagram socket's echoes
        (its local port), or L{None} for a raw socket.
    """
    skt.setblocking(False)
    if family == socket.AF_INET:
        if ttl is not None:
            skt.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if kind == "dgram":
            skt.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
        else:
            # ICMP_FILTER: a mask of the types to drop; all but echo reply.
            _optional(skt, _SOL_RAW, _ICMP_FILTER, struct.pack("I", ~1 & 0xFFFFFFFF))
    else:
        if ttl is not None:
            skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        if kind == "raw":
            # ICMP6_FILTER: eight words of "block" bits; pass echo replies.
            words = [0xFFFFFFFF] * 8
            reply = ECHO_REPLY[socket.AF_INET6]
            words[reply >> 5] &= ~(1 << (reply & 31)) & 0xFFFFFFFF
            _optional(skt, socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))
    if kind != "dgram":
        return None
    skt.bind(("0.0.0.0", 0) if family == socket.AF_INET else ("::", 0))
    return int(skt.getsockname()[1])


def _optional(skt: Any, level: int, option: int, value: bytes) -> None:
    # A filter only saves work: matching replies does the same job.
    try:
        skt.setsockopt(level, option, value)
    except OSError:
        pass


def _ttlFrom(ancillary: Sequence[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ) and len(data) >= 4:
            return int(struct.unpack("i", data[:4])[0])
    return None


@dataclass
class _Probe:
    sequence: int
    sentAt: float
    timer: IDelayedCall | None = None
    answered: bool = False


@implementer(IReadDescriptor)
class Pinger:
    """
    One run of echo requests to one address, and the replies.

    @ivar identifier: the echo identifier of this run.
    @ivar transmitted: requests sent so far.
    @ivar replies: replies so far (see L{PingResult.replies}).
    @ivar malformed: packets dropped as malformed or truncated so far.
    @ivar errors: send and receive errors so far.
    @ivar ignored: echo replies for someone else (another process's
        identifier, another address, a sequence not sent).

    C{onReply} is called with each L{Reply} as it comes; C{onError} with
    the sequence number and the error of a request that could not be sent,
    or L{None} and the error the socket reported when reading (an ICMP
    error queued for it, such as "no route to host").
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        reactor: Any,
        address: str,
        family: int,
        options: PingOptions = PingOptions(),
        onReply: Callable[[Reply], object] | None = None,
        onError: Callable[[int | None, OSError], object] | None = None,
        socketFactory: Callable[..., Any] = socket.socket,
    ) -> None:
        self.reactor = reactor
        self.address = address
        self.family = family
        self.options = options
        self._onReply = onReply
        self._onError = onError
        self._socketFactory = socketFactory
        self.transmitted = 0
        self.replies: list[Reply] = []
        self._duplicates = 0
        self._reordered = 0
        self._rtts: RoundTrips | None = None
        self.malformed = 0
        self.errors = 0
        self.ignored = 0
        self.identifier = struct.unpack("!H", os.urandom(2))[0]
        self._cookie = os.urandom(4)
        self._pattern = bytes(i & 0xFF for i in range(options.size))
        self._probes: dict[int, _Probe] = {}
        self._pending: set[int] = set()
        self._highest = 0
        self._answered = 0
        self._socket: Any = None
        self.socketKind = ""
        self._loop = LoopingCall(self._send)
        self._loop.clock = reactor
        self._startedAt = self._lastActivity = 0.0
        self._done: Deferred[PingResult] = Deferred()

    def start(self) -> Deferred[PingResult]:
        """
        Open the socket and start sending.

        @return: fires with the L{PingResult} once C{count} requests are
            answered or waited for, or L{stop} is called.
        @raise PingUnavailable: when no ICMP socket may be opened.
        @raise OSError: when the socket cannot be set up.
        """
        options = self.options
        self._socket, self.socketKind = openICMPSocket(
            self.family, options.socketKind, self._socketFactory
        )
        try:
            kernelIdentifier = _configure(self._socket, self.family, self.socketKind, options.ttl)
        except BaseException:
            self._socket.close()
            self._socket = None
            raise
        if kernelIdentifier is not None:
            self.identifier = kernelIdentifier
        self._bufferSize = HEADER_SIZE + options.size + _MAX_IP_HEADER
        self._startedAt = self._lastActivity = self.reactor.seconds()
        self.reactor.addReader(self)
        self._loop.start(options.interval, now=True)
        return self._done

    def stop(self) -> None:
        """
        Stop now and fire the result with what was seen so far.
        """
        if self._done.called:
            return
        if self._loop.running:
            self._loop.stop()
        for probe in self._probes.values():
            if probe.timer is not None and probe.timer.active():
                probe.timer.cancel()
        if self._socket is not None:
            self.reactor.removeReader(self)
            self._socket.close()
        self._done.callback(self.result())

    def result(self) -> PingResult:
        """
        What was seen so far.
        """
        return PingResult(
            self.address,
            self.family,
            self.socketKind,
            self.transmitted,
            tuple(self.replies),
            self.malformed,
            self.errors,
            self._lastActivity - self._startedAt,
            self._answered,
            self._duplicates,
            self._reordered,
            self._rtts,
        )

    def payload(self, sequence: int) -> bytes:
        """
        The payload of request C{sequence}: this run's random cookie, the
        sequence number, then a counting pattern, cut to C{options.size}.
        """
        head = self._cookie + struct.pack("!I", sequence & 0xFFFFFFFF)
        return (head + self._pattern[len(head) :])[: self.options.size]

    def _send(self) -> None:
        count = self.options.count
        if count is not None and self.transmitted >= count:
            self._loop.stop()
            return
        self.transmitted += 1
        sequence = self.transmitted
        packet = encodeEcho(self.family, self.identifier, sequence, self.payload(sequence))
        probe = _Probe(sequence, self.reactor.seconds())
        self._lastActivity = probe.sentAt
        self._probes[sequence & 0xFFFF] = probe
        try:
            self._socket.sendto(packet, (self.address, 0))
        except OSError as e:
            self.errors += 1
            if self._onError is not None:
                self._onError(sequence, e)
        else:
            self._pending.add(sequence)
            probe.timer = self.reactor.callLater(self.options.timeout, self._expire, sequence)
        if count is not None and self.transmitted >= count:
            self._loop.stop()
        self._check()

    def _expire(self, sequence: int) -> None:
        self._pending.discard(sequence)
        self._check()

    def _check(self) -> None:
        count = self.options.count
        if count is None or self._done.called:
            return
        waited = self.transmitted >= count and not self._pending
        if waited or self._answered >= count:
            self.stop()

    # IReadDescriptor

    def fileno(self) -> int:
        """
        The socket's file descriptor, for the reactor.
        """
        return int(self._socket.fileno()) if self._socket is not None else -1

    def logPrefix(self) -> str:
        """
        How Twisted's log lines name this reader.
        """
        return "ping"

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped the socket (it is shutting down): stop.
        """
        self.stop()

    def doRead(self) -> None:
        """
        Read the packets waiting on the socket (a bounded number at once).
        """
        ancillary = socket.CMSG_SPACE(4)
        for _ in range(_READS_PER_EVENT):
            if self._done.called:
                return
            try:
                data, anc, flags, source = self._socket.recvmsg(self._bufferSize, ancillary)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # An ICMP error queued for the socket (host unreachable...).
                self.errors += 1
                if self._onError is not None:
                    self._onError(None, e)
                continue
            self.packetReceived(data, anc, flags, source[0])

    def packetReceived(
        self, data: bytes, ancillary: Sequence[tuple[int, int, bytes]], flags: int, source: str
    ) -> None:
        """
        Match one packet from C{source} to a request, or count and drop it.
        """
        try:
            if flags & socket.MSG_TRUNC:
                raise Malformed("truncated by the receive buffer")
            ttl: int | None
            if self.family == socket.AF_INET and self.socketKind == "raw":
                message, ttl = stripIPv4Header(data)
            else:
                message, ttl = data, _ttlFrom(ancillary)
            echo = decodeEcho(self.family, message)
        except Malformed as e:
            return self._dropMalformed(source, e)
        if (
            echo.type != ECHO_REPLY[self.family]
            or echo.identifier != self.identifier
            or _canonical(source) != _canonical(self.address)
        ):
            self.ignored += 1
            return None
        probe = self._probes.get(echo.sequence)
        if probe is None:
            self.ignored += 1
            return None
        expected = self.payload(probe.sequence)
        if echo.payload != expected:
            if expected.startswith(echo.payload):
                return self._dropMalformed(source, Malformed("truncated payload"))
            if echo.payload[:4] != self._cookie:
                self.ignored += 1  # an earlier run's identifier, reused
                return None
            return self._dropMalformed(source, Malformed("payload differs from the request's"))
        self._pending.discard(probe.sequence)
        if probe.timer is not None and probe.timer.active():
            probe.timer.cancel()
        reply = Reply(
            sequence=probe.sequence,
            address=source,
            size=len(message),
            ttl=ttl,
            rtt=self.reactor.seconds() - probe.sentAt,
            duplicate=probe.answered,
            reordered=not probe.answered and probe.sequence < self._highest,
        )
        if not probe.answered:
            self._answered += 1
        self._duplicates += reply.duplicate
        self._reordered += reply.reordered
        self._rtts = RoundTrips.of(reply.rtt) if self._rtts is None else self._rtts.add(reply.rtt)
        probe.answered = True
        self._lastActivity = probe.sentAt + reply.rtt
        self._highest = max(self._highest, probe.sequence)
        if len(self.replies) < MAX_KEPT_REPLIES:
            self.replies.append(reply)
        if self._onReply is not None:
            self._onReply(reply)
        self._check()
        return None

    def _dropMalformed(self, source: str, reason: Malformed) -> None:
        self.malformed += 1
        self._log.debug("ping: dropped a packet from {source}: {reason}", source=source, reason=reason)


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.partition("%")[0]))
    except ValueError:
        return address


def resolveTarget(reactor: Any, host: str, family: int | None = None) -> Deferred[tuple[str, int]]:
    """
    The address to ping for C{host} (an address, or a name looked up
    through the reactor's resolver) and its family.

    @param family: C{AF_INET} or C{AF_INET6} to insist on one (C{-4}, C{-6}).
    @raise ValueError: (in the Deferred) when C{host} is an address of the
        other family, or has no address of C{family}.
    """
    return ensureDeferred(_resolve(reactor, host, family))


async def _resolve(reactor: Any, host: str, family: int | None) -> tuple[str, int]:
    from services.client._resolve import resolveAddresses

    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = socket.AF_INET if literal.version == 4 else socket.AF_INET6
        if family is not None and family != found:
            raise ValueError(f"{host} is an IPv{literal.version} address")
        return str(literal), found
    for address in await resolveAddresses(reactor, host):
        found = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        if family is None or family == found:
            return address.host, found
    raise ValueError(f"{host} has no IPv{4 if family == socket.AF_INET else 6} address")


def ping(
    reactor: Any,
    host: str,
    options: PingOptions = PingOptions(count=4),
    family: int | None = None,
    socketFactory: Callable[..., Any] = socket.socket,
) -> Deferred[PingResult]:
    """
    Ping C{host} and fire with the round-trip results.

    @param options: the count (which must be set), interval, timeout, size,
        TTL and socket kind.
    @param family: C{AF_INET} or C{AF_INET6} to insist on one.
    @raise PingUnavailable: (in the Deferred) when no ICMP socket may be
        opened.
    """
    if options.count is None:
        raise ValueError("ping() needs options.count; use Pinger to ping until stopped")

    async def run() -> PingResult:
        address, found = await resolveTarget(reactor, host, family)
        return await Pinger(reactor, address, found, options, socketFactory=socketFactory).start()

    return ensureDeferred(run())

