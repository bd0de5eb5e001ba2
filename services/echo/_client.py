# -*- test-case-name: tests.unit.echo.test_client_echo -*-
"""
Clients of echo servers (RFC 862) over TCP and UDP.

  - L{TCPProber} and L{UDPProber} send numbered probes and measure how long
    each takes to come back, as C{ping} does.
  - L{TCPPipe} and L{UDPPipe} send whatever a source gives them (standard
    input, for C{netservices echo}) and pass the echo to a sink.

Use them with any endpoint or port::

    from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
    from services.echo import TCPProber

    prober = TCPProber(reactor, size=64, timeout=2)
    await connectProtocol(HostnameEndpoint(reactor, "127.0.0.1", 8007), prober)
    rtt = await prober.probe(1)

Why one module: the four clients are two pairs over one wire format (the
numbered probe) and two shared pieces (a probe's waiter, the connected UDP
port that turns an ICMP refusal into an error); apart, each would import
the others' private parts.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.python.failure import Failure

__all__ = [
    "MIN_PROBE_SIZE",
    "EchoMismatch",
    "ProbeTimeout",
    "Summary",
    "TCPPipe",
    "TCPProber",
    "UDPPipe",
    "UDPProber",
    "payload",
]

#: The smallest probe: 4 bytes of sequence number and 4 of marker.
MIN_PROBE_SIZE = 8
_MARKER = b"NSEP"


class ProbeTimeout(Exception):
    """
    A probe's echo did not come back in time.
    """


class EchoMismatch(Exception):
    """
    What came back is not what was sent.
    """


def refused() -> error.ConnectionRefusedError:
    """
    The error of a refused connection, with its errno, as C{connect_ex}
    would return it.
    """
    return error.ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))


def payload(seq: int, size: int) -> bytes:
    """
    The bytes of probe C{seq}: its number, a marker, then a repeating
    pattern up to C{size} bytes.
    """
    head = struct.pack("!I", seq & 0xFFFFFFFF) + _MARKER
    pattern = bytes(range(32, 127))
    body = (pattern * (size // len(pattern) + 1))[: max(0, size - len(head))]
    return (head + body)[:size]


@dataclass(frozen=True)
class Summary:
    """
    What a run of probes measured.

    @ivar sent: probes sent.
    @ivar rtts: the round-trip time in seconds of each probe that came back.
    """

    sent: int
    rtts: tuple[float, ...]

    @property
    def received(self) -> int:
        """
        Probes that came back.
        """
        return len(self.rtts)

    @property
    def lost(self) -> int:
        """
        Probes that did not come back.
        """
        return self.sent - self.received

    def minAvgMax(self) -> tuple[float, float, float] | None:
        """
        The minimum, average and maximum round-trip times, or L{None} when
        nothing came back.
        """
        if not self.rtts:
            return None
        return min(self.rtts), sum(self.rtts) / len(self.rtts), max(self.rtts)


class _Waiter:
    """
    One outstanding probe: its Deferred and its timeout.
    """

    def __init__(self, reactor: IReactorTime, timeout: float, expected: bytes) -> None:
        self.reactor = reactor
        self.started = reactor.seconds()
        self.expected = expected
        self.deferred: Deferred[float] = Deferred()
        self.timer: IDelayedCall | None = reactor.callLater(timeout, self.fail, ProbeTimeout())

    def succeed(self) -> None:
        self._stopTimer()
        if not self.deferred.called:
            self.deferred.callback(self.reactor.seconds() - self.started)

    def fail(self, reason: BaseException | Failure) -> None:
        self._stopTimer()
        if not self.deferred.called:
            self.deferred.errback(reason)

    def _stopTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


class TCPProber(Protocol):
    """
    Probes an echo server over one stream connection, one probe at a time:
    each probe waits for all of its bytes to come back.
    """

    def __init__(self, reactor: IReactorTime, size: int = 64, timeout: float = 2.0) -> None:
        self._reactor = reactor
        self._size = size
        self._timeout = timeout
        self._echoed = b""
        self._waiter: _Waiter | None = None
        self._lost: Failure | None = None

    def probe(self, seq: int) -> Deferred[float]:
        """
        Send probe C{seq}; fires with its round-trip time in seconds, or
        fails with L{ProbeTimeout}, L{EchoMismatch} or the connection's
        error.
        """
        if self._lost is not None:
            return fail(self._lost)
        data = payload(seq, self._size)
        self._echoed = b""
        self._waiter = _Waiter(self._reactor, self._timeout, data)
        self.transport.write(data)  # type: ignore[union-attr]
        return self._waiter.deferred

    def dataReceived(self, data: bytes) -> None:
        """
        Collect the echo of the current probe.
        """
        waiter = self._waiter
        self._echoed += data
        if waiter is None:
            return
        n = len(waiter.expected)
        if len(self._echoed) < n:
            return
        echo, self._echoed = self._echoed[:n], self._echoed[n:]
        self._waiter = None
        if echo == waiter.expected:
            waiter.succeed()
        else:
            waiter.fail(EchoMismatch(f"sent {n} bytes, got different bytes back"))

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:
        """
        Fail the probe in flight.
        """
        self._lost = reason
        if self._waiter is not None:
            self._waiter.fail(reason)
            self._waiter = None


class _ConnectedUDP(DatagramProtocol):
    """
    A protocol on a connected UDP port, for which a refused connection
    shows the same on every reactor.

    The select reactor calls C{connectionRefused} when an ICMP "port
    unreachable" comes back; the poll and epoll reactors instead close the
    port (Twisted issues 5377, 6287, 6467), which only calls
    C{stopProtocol}.  A stop that L{close} did not ask for is therefore
    taken as a refusal.
    """

    _closing = False
    _closed = False

    def close(self) -> Deferred[None]:
        """
        Stop listening; fires when the port is closed.
        """
        self._closing = True
        if self.transport is None:
            return succeed(None)
        stop: Any = self.transport.stopListening  # type: ignore[attr-defined]
        stopping: Deferred[None] = maybeDeferred(stop)
        return stopping

    def stopProtocol(self) -> None:
        """
        The port closed: by L{close}, or by the reactor after a refusal.
        """
        self._closed = True
        if not self._closing:
            self.connectionRefused()

    def _write(self, data: bytes) -> None:
        """
        Send C{data}, raising a refused connection if the port is closed.
        """
        if self._closed or self.transport is None:
            raise refused()
        try:
            self.transport.write(data)  # type: ignore[call-arg]  # a connected port
        except OSError as e:
            raise error.ConnectionRefusedError(e.errno, e.strerror) from None


class UDPProber(_ConnectedUDP):
    """
    Probes an echo server over UDP, on a connected UDP port (so that an
    ICMP "port unreachable" shows as a refused connection).  Probes may be
    in flight together; replies are matched by sequence number.
    """

    def __init__(self, reactor: IReactorTime, size: int = 64, timeout: float = 2.0) -> None:
        self._reactor = reactor
        self._size = max(size, MIN_PROBE_SIZE)
        self._timeout = timeout
        self._waiting: dict[int, _Waiter] = {}

    def probe(self, seq: int) -> Deferred[float]:
        """
        Send probe C{seq}; fires with its round-trip time in seconds, or
        fails with L{ProbeTimeout} or a refused connection.
        """
        data = payload(seq, self._size)
        waiter = self._waiting[seq] = _Waiter(self._reactor, self._timeout, data)
        waiter.deferred.addBoth(self._forget, seq)
        try:
            self._write(data)
        except error.ConnectionRefusedError as e:
            waiter.fail(e)
        return waiter.deferred

    def _forget(self, result: Any, seq: int) -> Any:
        self._waiting.pop(seq, None)
        return result

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Match a reply to its probe; ignore anything else.
        """
        if len(datagram) < MIN_PROBE_SIZE or datagram[4:8] != _MARKER:
            return
        (seq,) = struct.unpack("!I", datagram[:4])
        waiter = self._waiting.get(seq)
        if waiter is None:
            return
        if datagram == waiter.expected:
            waiter.succeed()
        else:
            waiter.fail(EchoMismatch(f"probe {seq}: the echo differs from what was sent"))

    def connectionRefused(self) -> None:
        """
        The server's host said nothing listens there: fail every probe.
        """
        for waiter in list(self._waiting.values()):
            waiter.fail(refused())


class _Pipe:
    """
    What both pipes share: the sink, the counts and the end.

    @ivar sent: what was sent (bytes, or datagrams).
    @ivar received: what came back, in the same unit.
    """

    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self._sink = sink
        self.sent = 0
        self.received = 0
        self._finishing = False
        self.done: Deferred[int] = Deferred()

    def finish(self) -> None:
        """
        Nothing more to send: complete once the echo is all back.
        """
        self._finishing = True
        self._check()

    def _check(self) -> None:
        raise NotImplementedError()


class TCPPipe(_Pipe, Protocol):
    """
    Sends what it is given to an echo server and passes what comes back to
    a sink.

    @ivar done: fires with the number of bytes echoed once L{finish} was
        called and everything sent came back (or the server closed).
    """

    def send(self, data: bytes) -> None:
        """
        Send C{data} to be echoed.
        """
        self.sent += len(data)
        self.transport.write(data)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        """
        Pass the echo on.
        """
        self.received += len(data)
        self._sink(data)
        self._check()

    def _check(self) -> None:
        if self._finishing and self.received >= self.sent and not self.done.called:
            self.transport.loseConnection()  # type: ignore[union-attr]
            self.done.callback(self.received)

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:
        """
        The server closed: done, with whatever came back.
        """
        if not self.done.called:
            if reason.check(error.ConnectionDone):
                self.done.callback(self.received)
            else:
                self.done.errback(reason)


class UDPPipe(_Pipe, _ConnectedUDP):
    """
    Sends each chunk it is given as one datagram to an echo server, on a
    connected UDP port, and passes the replies to a sink.

    @ivar done: fires with the number of datagrams echoed once L{finish}
        was called and every datagram came back; fails with a refused
        connection.
    """

    def send(self, data: bytes) -> None:
        """
        Send C{data} as one datagram.
        """
        self.sent += 1
        try:
            self._write(data)
        except error.ConnectionRefusedError as e:
            if not self.done.called:
                self.done.errback(e)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Pass a reply on.
        """
        self.received += 1
        self._sink(datagram)
        self._check()

    def connectionRefused(self) -> None:
        """
        Nothing listens at the server's port.
        """
        if not self.done.called:
            self.done.errback(refused())

    def _check(self) -> None:
        if self._finishing and self.received >= self.sent and not self.done.called:
            self.done.callback(self.received)
