# -*- test-case-name: tests.unit.client.test_limits -*-
"""
Bounds on the head (status line and header fields) of each HTTP response a
client connection receives.

Twisted's HTTP client keeps every header line it is sent until the blank
line that ends the head: a server that sends header lines for ever grows the
client's memory for ever (several GB in 20 s on loopback).  curl gives up
after 300 KiB of headers; L{HeadLimitEndpoint} does the same, between the
transport and Twisted's C{HTTP11ClientProtocol}: it counts the bytes and
lines of each response head as they arrive and, past a limit, drops the
connection with L{HeadTooLarge} as the reason, so the request fails at once
with that error (the client turns it into
L{services.client.ResponseHeadersTooLarge}).

A head starts when the connection opens, and again each time the HTTP
protocol goes back to its C{QUIESCENT} state (the previous response is
complete and the connection is idle in the pool: Twisted never pipelines);
it ends at the first empty line that does not close an informational (1xx)
head.  Body bytes are passed through without being looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_HEAD_LINES",
    "MAX_LINE",
    "HeadLimitEndpoint",
    "HeadLimits",
    "HeadTooLarge",
]

#: The most bytes of one response head (informational heads before it
#: included): curl's limit, 300 KiB.
MAX_HEAD_BYTES = 300 * 1024

#: The most lines of one response head (status line and fields).
MAX_HEAD_LINES = 1000

#: The longest line of a head: Twisted's own line limit (its
#: C{LineReceiver.MAX_LENGTH}), checked here first for a clear error.
MAX_LINE = 16384


class HeadTooLarge(Exception):
    """
    A response head went over a limit; the connection was dropped.

    @ivar detail: which limit, in words (C{"more than 307200 bytes"}).
    """

    def __init__(self, detail: str) -> None:
        Exception.__init__(self, f"response headers too large ({detail})")
        self.detail = detail


@dataclass(frozen=True)
class HeadLimits:
    """
    The limits a connection's response heads are held to.

    @ivar maxBytes: bytes per head.
    @ivar maxLines: lines per head.
    @ivar maxLine: bytes per line (its end of line not counted).
    """

    maxBytes: int = MAX_HEAD_BYTES
    maxLines: int = MAX_HEAD_LINES
    maxLine: int = MAX_LINE


class _HeadCounter:
    """
    Follows response heads through the bytes of a connection.
    """

    def __init__(self, limits: HeadLimits) -> None:
        self._limits = limits
        self.inHead = True
        self._restart()

    def _restart(self) -> None:
        self._bytes = 0
        self._lines = 0
        self._startHead()

    def _startHead(self) -> None:
        self._firstLine = True
        self._informational = False
        self._line = 0
        self._lineStart = b""

    def restart(self) -> None:
        """
        A new response is expected: count a new head.
        """
        self.inHead = True
        self._restart()

    def feed(self, data: bytes) -> None:
        """
        Count the head bytes of C{data}.

        @raise HeadTooLarge: when a limit is passed.
        """
        position = 0
        limits = self._limits
        while self.inHead and position < len(data):
            end = data.find(b"\n", position)
            stop = len(data) if end < 0 else end
            if len(self._lineStart) < 16:
                self._lineStart += data[position : min(stop, position + 16)]
            self._line += stop - position
            self._bytes += stop - position + (0 if end < 0 else 1)
            if self._line > limits.maxLine:
                raise HeadTooLarge(f"a line longer than {limits.maxLine} bytes")
            if self._bytes > limits.maxBytes:
                raise HeadTooLarge(f"more than {limits.maxBytes} bytes")
            if end < 0:
                return
            self._lines += 1
            if self._lines > limits.maxLines:
                raise HeadTooLarge(f"more than {limits.maxLines} lines")
            self._endOfLine()
            position = end + 1

    def _endOfLine(self) -> None:
        line = self._lineStart.rstrip(b"\r") if self._line <= 1 else self._lineStart
        if self._firstLine:
            parts = self._lineStart.split(None, 2)
            self._informational = len(parts) > 1 and parts[1][:1] == b"1" and len(parts[1]) == 3
            self._firstLine = False
        elif not line:
            if self._informational:
                self._startHead()  # Twisted skips a 1xx head: another one follows
                return
            self.inHead = False
            return
        self._line = 0
        self._lineStart = b""


class _HeadLimitProtocol(ProtocolWrapper):
    """
    Counts each response head and drops the connection past a limit.
    """

    factory: _HeadLimitFactory

    def __init__(self, factory: _HeadLimitFactory, wrappedProtocol: IProtocol) -> None:
        ProtocolWrapper.__init__(self, factory, wrappedProtocol)
        self._counter = _HeadCounter(factory.limits)
        self._exceeded: HeadTooLarge | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Count head bytes, then pass C{data} on.
        """
        if self._exceeded is not None:
            return
        if self._counter.inHead:
            try:
                self._counter.feed(data)
            except HeadTooLarge as e:
                self._exceeded = e
                self.transport.abortConnection()  # type: ignore[union-attr]
                return
        self.wrappedProtocol.dataReceived(data)
        # The response is complete and the connection is back in the pool:
        # the next bytes are the head of the next response.
        if not self._counter.inHead and getattr(self.wrappedProtocol, "state", None) == "QUIESCENT":
            self._counter.restart()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Pass the loss on, with L{HeadTooLarge} as its reason if a limit
        was passed.
        """
        if self._exceeded is not None:
            reason = Failure(self._exceeded)
        ProtocolWrapper.connectionLost(self, reason)


# Factory is generic from Twisted 26.4 on: subscripted for the type checker only.
if TYPE_CHECKING:
    _HeadLimitFactoryBase = WrappingFactory[_HeadLimitProtocol]
else:
    _HeadLimitFactoryBase = WrappingFactory


class _HeadLimitFactory(_HeadLimitFactoryBase):
    protocol = _HeadLimitProtocol
    noisy = False

    def __init__(self, wrappedFactory: IProtocolFactory, limits: HeadLimits) -> None:
        super().__init__(wrappedFactory)
        self.limits = limits


def _unwrap(wrapper: Any) -> IProtocol:
    protocol: IProtocol = wrapper.wrappedProtocol
    return protocol


@implementer(IStreamClientEndpoint)
class HeadLimitEndpoint:
    """
    Connects through another endpoint, with the response heads of the
    connection held to L{HeadLimits}.  Fires with the protocol that was
    asked for (as the connection pool wants it), whose transport is the
    counting wrapper.
    """

    def __init__(self, wrapped: IStreamClientEndpoint, limits: HeadLimits | None = None) -> None:
        self._wrapped = wrapped
        self._limits = limits or HeadLimits()

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect a protocol of C{protocolFactory}; fires with it.
        """
        factory = _HeadLimitFactory(protocolFactory, self._limits)
        return self._wrapped.connect(factory).addCallback(_unwrap)
