# -*- test-case-name: tests.unit.echo.test_throughput -*-
"""
The measuring side of C{netservices throughput}: upload streams to a
discard server, download streams from a chargen server, and the
bookkeeping of their intervals.

The figures count what the peer took, not what was handed to the kernel:

  - an L{Upload} writes only while its transport wants data (it is the
    transport's pull producer), ends with a half-close, and its total counts
    once the peer has closed in return, which a discard server does after
    reading everything: every byte counted was read.  While it runs, an
    interval counts the bytes the peer's TCP acknowledged (Linux
    C{TCP_INFO}), which run ahead of what the peer read by at most its
    receive buffer;
  - a L{Download} counts the bytes that arrived.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPullProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["Download", "Intervals", "StreamResult", "Upload", "bytesAcknowledged"]

#: Bytes written each time the transport wants more.
CHUNK = 128 * 1024
_DATA = b"\0" * CHUNK


#: Where Linux's C{struct tcp_info} keeps C{tcpi_bytes_acked} (since 4.1).
_BYTES_ACKED = 120


def bytesAcknowledged(transport: Any) -> int | None:
    """
    The bytes of C{transport}'s TCP socket that the peer has acknowledged
    (Linux C{TCP_INFO}'s C{tcpi_bytes_acked}), or L{None} where that cannot
    be asked.
    """
    getHandle = getattr(transport, "getHandle", None)
    option = getattr(socket, "TCP_INFO", None)
    if getHandle is None or option is None:
        return None
    try:
        info = getHandle().getsockopt(socket.IPPROTO_TCP, option, 256)
    except (OSError, AttributeError):
        return None
    if len(info) < _BYTES_ACKED + 8:
        return None
    return int(struct.unpack_from("Q", info, _BYTES_ACKED)[0])


@dataclass
class StreamResult:
    """
    What one stream moved.

    @ivar bytes: the bytes the peer took (read, for an upload whose peer
        closed; arrived, for a download).
    @ivar seconds: from the connection to the peer's close (upload) or to
        the end of the test (download).
    @ivar error: why the stream ended badly, or L{None}.
    """

    bytes: int
    seconds: float
    error: str | None = None

    @property
    def bitsPerSecond(self) -> float:
        """
        The stream's rate.
        """
        return 8 * self.bytes / self.seconds if self.seconds > 0 else 0.0


class _Stream(Protocol):
    """
    What both directions share: the start time and the end.

    @ivar done: fires with a L{StreamResult} when the stream is over.
    """

    startedAt = 0.0
    _finishing = False

    def __init__(self, reactor: IReactorTime) -> None:
        self.reactor = reactor
        self.done: Deferred[StreamResult] = Deferred()
        self._endedAt: float | None = None

    def connectionMade(self) -> None:
        """
        Note when the stream started.
        """
        self.startedAt = self.reactor.seconds()

    def _end(self, count: int, error: str | None = None) -> None:
        if not self.done.called:
            end = self._endedAt if self._endedAt is not None else self.reactor.seconds()
            self.done.callback(StreamResult(count, end - self.startedAt, error))


@implementer(IPullProducer)
class Upload(_Stream):
    """
    Sends zeros as fast as the peer takes them, until L{finish}.

    @ivar written: bytes handed to the transport.
    """

    written = 0
    _inKernel = 0

    def connectionMade(self) -> None:
        """
        Start writing, as the transport's pull producer.
        """
        _Stream.connectionMade(self)
        self.transport.registerProducer(self, False)  # type: ignore[union-attr]

    def resumeProducing(self) -> None:
        """
        The transport sent everything it held: write one more chunk.
        """
        self._inKernel = self.written
        if self._finishing:
            return
        self.transport.write(_DATA)  # type: ignore[union-attr]
        self.written += CHUNK

    def stopProducing(self) -> None:
        """
        The connection is going away.
        """
        self._finishing = True

    def acknowledged(self) -> int:
        """
        The bytes the peer's TCP has acknowledged so far; where the system
        cannot say, those the transport wanted more after (within a chunk).
        """
        acked = bytesAcknowledged(self.transport)
        if acked is None:
            return self._inKernel
        # The count includes the SYN's sequence number.
        return max(0, min(acked - 1, self.written))

    def finish(self) -> None:
        """
        Write no more, half-close, and wait for the peer to close.
        """
        self._finishing = True
        self.transport.unregisterProducer()  # type: ignore[union-attr]
        self.transport.loseWriteConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        """
        The peer closed: after a half-close and a clean close, everything
        written was read.
        """
        if self._finishing and reason.check(ConnectionDone):
            self._end(self.written)
        else:
            self._end(self.acknowledged(), reason.getErrorMessage())


class Download(_Stream):
    """
    Counts what arrives, until L{finish}.

    @ivar received: bytes that arrived.
    """

    received = 0

    def dataReceived(self, data: bytes) -> None:
        """
        Count C{data}.
        """
        if not self._finishing:
            self.received += len(data)

    def acknowledged(self) -> int:
        """
        The bytes that arrived so far.
        """
        return self.received

    def finish(self) -> None:
        """
        Stop counting and close.
        """
        self._finishing = True
        self._endedAt = self.reactor.seconds()
        self._end(self.received)
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        """
        The connection ended: before L{finish}, the server stopped sending.
        """
        self._end(self.received, None if self._finishing else reason.getErrorMessage())


@dataclass
class Intervals:
    """
    The per-interval figures of a set of streams: each stream's bytes
    since the last reading.

    @ivar rows: C{(start, end, [bytes per stream])} for every interval.
    """

    streams: list[Any]
    startedAt: float
    rows: list[tuple[float, float, list[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last = [0] * len(self.streams)
        self._lastAt = self.startedAt

    def read(self, now: float) -> tuple[float, float, list[int]]:
        """
        Close the interval that ends C{now}.
        """
        counts = [s.acknowledged() for s in self.streams]
        row = (self._lastAt - self.startedAt, now - self.startedAt,
               [max(0, c - last) for c, last in zip(counts, self._last)])  # fmt: skip
        self._last, self._lastAt = counts, now
        self.rows.append(row)
        return row
