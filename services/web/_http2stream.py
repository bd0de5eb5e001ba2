# -*- test-case-name: tests.unit.web.test_http2 -*-
"""
L{LimitedH2Stream}: one request of a limited HTTP/2 connection
(L{services.web._http2}), answered 413 when its body is over the limit and
bounded by the send timeout while its client keeps its flow control window
shut; and L{StreamRejection}, a 413 as the access log sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IAddress, IDelayedCall

from services._twisted.http2 import H2StreamBase

if TYPE_CHECKING:
    from services.web._http2 import LimitedH2Connection
    from services.web._site import LimitedSite

__all__ = ["LimitedH2Stream", "StreamRejection"]


class StreamRejection:
    """
    A request that the connection answered itself (413), as the access log
    formatter sees it.
    """

    clientproto = b"HTTP/2"

    def __init__(self, stream: LimitedH2Stream, code: int, sentLength: int) -> None:
        self.code = code
        self.sentLength = sentLength
        self.method: bytes | None = stream.command
        self.uri: bytes | None = stream.path
        self._stream = stream

    def getClientAddress(self) -> IAddress:
        """
        The client's address.
        """
        return self._stream.getPeer()  # type: ignore[no-any-return]

    def getHeader(self, name: bytes) -> bytes | None:
        """
        A request header, if any.
        """
        value: bytes | None = self._stream.request.getHeader(name)
        return value


class LimitedH2Stream(H2StreamBase):
    """
    A stream that answers 413 to a body over the limit, and aborts its
    connection when its client keeps its flow control window shut for the
    send timeout.
    """

    _rejected = False
    _discarding = False
    _blockedCall: IDelayedCall | None = None

    def bodyTooLarge(self, discard: bool = False) -> None:
        """
        Answer 413 on this stream: the request never runs.  The stream is
        reset, and what the client still sends for it is dropped by h2; or,
        with C{discard} (the client declared a body its window lets it send
        in full), the stream stays open until the client has sent its body,
        which is dropped here.
        """
        if self._rejected:
            return
        self._rejected = True
        self._discarding = discard
        connection: LimitedH2Connection = self.connection
        site: LimitedSite = connection.factory
        site.stats.bodyTooLarge += 1
        sent = connection.rejectStream(self.streamID, 413, b"Content Too Large", discard)
        site.logRejected(StreamRejection(self, 413, sent))  # type: ignore[arg-type]

    def requestDone(self, request: Any) -> None:
        """
        A response is complete: count its body on the connection.
        """
        self.connection.bytesOut += request.sentLength
        H2StreamBase.requestDone(self, request)

    def receiveDataChunk(self, data: bytes, flowControlledLength: int) -> None:
        """
        Pass on a piece of the body; drop it if the request was rejected.
        """
        if not self._rejected:
            H2StreamBase.receiveDataChunk(self, data, flowControlledLength)
        elif self._discarding:
            self.connection.discardBody(self.streamID, flowControlledLength)

    def requestComplete(self) -> None:
        """
        Run the request, unless it was rejected: then the stream is over.
        """
        if not self._rejected:
            H2StreamBase.requestComplete(self)
        elif self._discarding:
            self._discarding = False
            self.connection.endStream(self.streamID)

    def flowControlBlocked(self) -> None:
        """
        The client's window for this stream may be shut.  When it is, take
        the stream out of the send loop (Twisted's loop would otherwise
        spin, a call per reactor iteration, until the window opens) and
        start the send timeout.
        """
        H2StreamBase.flowControlBlocked(self)
        connection: LimitedH2Connection = self.connection
        if connection.conn.local_flow_control_window(self.streamID) > 0:
            return  # what is queued is over the window, but some can go
        # The connection's priority tree, which its send loop takes
        # streams from.
        connection.priority.block(self.streamID)
        timeout = connection.factory.limits.sendTimeout
        if timeout and self._blockedCall is None:
            self._blockedCall = connection.callLater(timeout, self._windowTimedOut)

    def windowUpdated(self) -> None:
        """
        The client opened a window: stop the send timeout.
        """
        H2StreamBase.windowUpdated(self)
        if self.connection.conn.local_flow_control_window(self.streamID) > 0:
            self.stopTimer()

    def streamEnded(self) -> None:
        """
        The stream is over: stop its send timeout.
        """
        self.stopTimer()

    def stopTimer(self) -> None:
        """
        The stream is done, or may send again.
        """
        if self._blockedCall is not None:
            if self._blockedCall.active():
                self._blockedCall.cancel()
            self._blockedCall = None

    def _windowTimedOut(self) -> None:
        self._blockedCall = None
        self.connection.sendTimedOut()
