# -*- test-case-name: tests.unit.client.test_ping -*-
"""
ICMP echo (ping) for IPv4 and IPv6 under the reactor: L{Pinger}, one run of
requests to one address, and L{ping}, which resolves a host and runs one to
its count.

The socket (L{services.client._pingsocket}) is an ICMP datagram socket
when Linux allows it, else a raw one, on which every ICMP packet of the
host arrives: replies are matched by identifier, sequence number and
payload.  What a run measured is a L{PingResult}.

L{Pinger} is the socket's L{IReadDescriptor}: the reactor calls it when
replies are waiting; requests are sent by a L{LoopingCall} and each reply is
waited for with C{callLater}, so a L{Clock} drives it all in tests.

Why one module: sending, reading and the per-request timers are one state
machine over one socket (what a reply matches depends on what was sent and
not yet timed out); its socket set-up and statistics live apart.

Use it in your own application::

    from services.client import PingOptions, ping

    result = await ping(reactor, "127.0.0.1", PingOptions(count=3, interval=0.2))
    print(result.received, result.rttSummary())
"""

from __future__ import annotations

import ipaddress
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
from services.client._pingsocket import (
    MAX_IP_HEADER,
    configureICMPSocket,
    openICMPSocket,
    ttlFrom,
)
from services.client._pingstats import MAX_KEPT_REPLIES, PingResult, Reply, RoundTrips
from services.client._resolve import resolveTarget

__all__ = ["PingOptions", "Pinger", "ping"]

#: Packets read per call of doRead, so a flood cannot hold the reactor.
_READS_PER_EVENT = 64


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
            kernelIdentifier = configureICMPSocket(self._socket, self.family, self.socketKind, options.ttl)
        except BaseException:
            self._socket.close()
            self._socket = None
            raise
        if kernelIdentifier is not None:
            self.identifier = kernelIdentifier
        self._bufferSize = HEADER_SIZE + options.size + MAX_IP_HEADER
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
                message, ttl = data, ttlFrom(ancillary)
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

