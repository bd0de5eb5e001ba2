# -*- test-case-name: tests.unit.web.test_http2 -*-
"""
HTTP/2 over TLS with the limits of L{services.web._channel}.

twisted.web speaks HTTP/2 (its C{H2Connection}, on the C{h2} package) when
ALPN picks C{h2}, but its own switch replaces the channel with a plain
C{H2Connection}, which has none of our limits.
L{HTTP2Factory<services.web._http2factory.HTTP2Factory>} wraps a
L{LimitedSite<services.web._site.LimitedSite>} on an C{ssl:} listener: each
connection starts as the site's
L{LimitedChannel<services.web._channel.LimitedChannel>} (so the connection
caps and counters apply as they do to HTTP/1.1), and when the TLS handshake
chose C{h2} it hands over to a L{LimitedH2Connection}, which keeps:

  - the header deadline: the first request's headers complete within
    C{headerTimeout} of connecting, else GOAWAY and close (counted as
    C{headerTimeouts});
  - the idle timeout, restarted only by requests, their bodies and
    responses: PING, SETTINGS and bytes that complete no frame do not keep a
    connection open (counted as C{idleTimeouts});
  - the body limit: a declared or received body over C{maxBody} gets
    C{413} on its stream; the connection goes on.  A declared body that the
    client's flow control window lets it send in full is read and
    discarded, so that the client ends its upload and reads the answer
    (curl 7.88 fails a request whose stream is reset while it still sends,
    answered or not); any other is reset once answered (RFC 9113, 8.1);
  - the send timeout: while the transport holds the connection back (the
    client reads nothing) or a stream waits for the client to open its flow
    control window, for C{sendTimeout} seconds without progress, the
    connection is aborted (counted as C{sendTimeouts});
  - C{maxStreams} streams open at once (C{SETTINGS_MAX_CONCURRENT_STREAMS};
    h2 closes a client that opens more);
  - at most L{CONTROL_FRAMES} PING, SETTINGS, PRIORITY and unknown frames
    between two requests, against floods of them;
  - headers of at most 64 KiB decoded (h2's limit, against HPACK bombs),
    at most 64 CONTINUATION frames per header block (h2's), and Twisted's
    own token bucket against rapid reset (CVE-2023-44487) and its cap on
    control frames buffered for a client that does not read;
  - the counters, the access log (C{HTTP/2.0}) and the open-connection
    registry, as for HTTP/1.1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from services import logs
from services._twisted.http2 import H2ConnectionBase
from services.net.sendtimeout import SendTimer
from services.web._channel import LimitedChannel
from services.web._http2stream import LimitedH2Stream
from services.web._rejections import errorBody

if TYPE_CHECKING:
    from services.web._site import LimitedSite

__all__ = ["CONTROL_FRAMES", "LimitedH2Connection"]

#: PING, SETTINGS, PRIORITY and unknown frames allowed between two requests.
CONTROL_FRAMES = 1000

_PROGRESS = (h2.events.RequestReceived, h2.events.DataReceived, h2.events.StreamEnded)
_CONTROL = (
    h2.events.PingReceived,
    h2.events.RemoteSettingsChanged,
    h2.events.PriorityUpdated,
    h2.events.UnknownFrameReceived,
)


class _CountingConnection(h2.connection.H2Connection):
    """
    h2's state machine, noting whether the frames it was given made a
    request progress, and how many control frames came since one did.
    """

    progressed = False
    controlFrames = 0

    def receive_data(self, data: Any) -> list[Any]:
        events: list[Any] = super().receive_data(data)
        progressed = False
        for event in events:
            if isinstance(event, _PROGRESS):
                progressed = True
                self.controlFrames = 0
            elif isinstance(event, _CONTROL):
                self.controlFrames += 1
        self.progressed = progressed
        return events


class LimitedH2Connection(H2ConnectionBase):
    """
    A C{H2Connection} with the limits of a L{LimitedSite} (see the module
    docstring).

    @ivar peer: the peer, as logs show it.
    @ivar peerHost: the peer's IP address, which per-peer caps count by.
    @ivar connectedAt: when the connection was made, by the site's clock.
    @ivar bytesIn: bytes received on this connection (after TLS).
    @ivar bytesOut: bytes of response bodies sent.
    """

    _log = Logger(observer=logs.observer)
    factory: LimitedSite  # type: ignore[assignment]
    conn: _CountingConnection
    peer = "?"
    peerHost: str | None = None
    connectedAt = 0.0
    bytesIn = 0
    bytesOut = 0
    _receiving = False
    _closing = False
    _headerCall: IDelayedCall | None = None
    _sendTimer: SendTimer | None = None

    def __init__(self, reactor: Any) -> None:
        H2ConnectionBase.__init__(self, reactor)
        self.conn = _CountingConnection(config=self.conn.config)

    def connectionMade(self) -> None:
        """
        Announce the stream cap and start the header deadline and the send
        timer.
        """
        limits = self.factory.limits
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.maxStreams},
        )
        H2ConnectionBase.connectionMade(self)
        self._sendTimer = SendTimer(
            self.factory.reactor, limits.sendTimeout, self.transport, self.sendTimedOut
        )
        if limits.headerTimeout:
            self._headerCall = self.callLater(limits.headerTimeout, self._headerTimedOut)

    def dataReceived(self, data: bytes) -> None:
        """
        Count the bytes and handle the frames; only a request's progress
        restarts the idle timeout.  Too many control frames since the last
        request close the connection.  Once the connection is being closed
        for abuse or a timeout, what still arrives is discarded.
        """
        if self._closing:
            return
        n = len(data)
        self.bytesIn += n
        self.factory.stats.bytesIn += n
        self._receiving = True
        try:
            H2ConnectionBase.dataReceived(self, data)
        finally:
            self._receiving = False
        conn = self.conn
        if conn.progressed:
            TimeoutMixin.resetTimeout(self)
        if conn.controlFrames > CONTROL_FRAMES:
            self._log.debug(
                "web: closing {peer}: {count} control frames without a request",
                peer=self.peer,
                count=conn.controlFrames,
            )
            self._abused()
            self._goAway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    def resetTimeout(self) -> None:
        """
        Restart the idle timeout, except for whatever bytes arrive:
        L{dataReceived} decides.
        """
        if not self._receiving:
            TimeoutMixin.resetTimeout(self)

    def buildStream(self, event: h2.events.RequestReceived) -> LimitedH2Stream:
        """
        A request began: its headers are complete, so their deadline stops;
        its stream is a L{LimitedH2Stream}.
        """
        self._stopHeaderClock()
        return LimitedH2Stream(
            event.stream_id,
            self,
            event.headers,
            self.requestFactory,  # type: ignore[attr-defined]
            self.site,
            self.factory,
        )

    def streamOpened(self, stream: Any, event: h2.events.RequestReceived) -> None:
        """
        Answer 413 at once when the declared body is over the limit.
        """
        limit = self.factory.limits.maxBody
        length = _declaredLength(event.headers)
        if limit and length is not None and length > limit:
            # What the client may send before it needs a WINDOW_UPDATE: a
            # body within it is discarded as it comes (h2 holds the client
            # to its content-length, so no more than that).
            window = self.conn.remote_flow_control_window(event.stream_id)
            stream.bodyTooLarge(discard=length <= window)

    def rejectStream(self, streamID: int, code: int, reason: bytes, discard: bool = False) -> int:
        """
        Answer C{code} on a stream at once (the request is dropped), then
        reset it, or with C{discard}, leave it open for the client to finish
        sending its body, which L{discardBody} drops; return the length of
        the body sent.
        """
        body = errorBody(code, reason)
        conn = self.conn
        try:
            conn.send_headers(
                streamID,
                [
                    (b":status", b"%d" % (code,)),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % (len(body),)),
                ],
            )
            if conn.local_flow_control_window(streamID) >= len(body):
                conn.send_data(streamID, body, end_stream=True)
            else:
                body = b""
                discard = False
        except h2.exceptions.StreamClosedError:
            return 0
        if not discard:
            try:
                conn.reset_stream(streamID, h2.errors.ErrorCodes.NO_ERROR)
            except h2.exceptions.StreamClosedError:
                pass  # the client had sent all it had: the answer closed the stream
        if self.writeControlData() and not discard and streamID in self.streams:
            self.endStream(streamID)
        return len(body)

    def discardBody(self, streamID: int, flowControlledLength: int) -> None:
        """
        Drop a piece of the body of a rejected stream, and give its room in
        the flow control windows back to the client.
        """
        self.openStreamWindow(streamID, flowControlledLength)

    def pauseProducing(self) -> None:
        """
        The transport's send buffer is full: start the send timeout.
        """
        H2ConnectionBase.pauseProducing(self)
        if self._sendTimer is not None:
            self._sendTimer.paused()

    def resumeProducing(self) -> None:
        """
        The send buffer drained: stop the send timeout.
        """
        if self._sendTimer is not None:
            self._sendTimer.resumed()
        H2ConnectionBase.resumeProducing(self)

    def sendTimedOut(self) -> None:
        """
        The client took nothing for the send timeout: abort the connection.
        """
        if self._closing:
            return
        self._closing = True
        self.factory.stats.sendTimeouts += 1
        self._log.debug(
            "web: aborting {peer}: it read nothing of its responses for {timeout} seconds",
            peer=self.peer,
            timeout=self.factory.limits.sendTimeout,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def timeoutConnection(self) -> None:
        """
        No request made progress for the idle timeout: GOAWAY and close.
        """
        self.factory.stats.idleTimeouts += 1
        H2ConnectionBase.timeoutConnection(self)

    def beforeConnectionLost(self) -> None:
        """
        Stop the timers, the streams' too.
        """
        self._stopHeaderClock()
        if self._sendTimer is not None:
            self._sendTimer.stop()
        for stream in list(self.streams.values()):
            stream.stopTimer()

    def afterConnectionLost(self) -> None:
        """
        Uncount the connection (once).
        """
        if self.factory.channels.pop(self, False) is None:
            self.factory.connectionClosed(self)  # type: ignore[arg-type]

    def controlDataUnread(self) -> None:
        """
        The client reads none of the answers to its control frames: count it.
        """
        self._abused()

    def terminating(self, reason: Failure) -> None:
        """
        A protocol error or a rapid reset flood: count and log it.
        """
        self._abused()
        self._log.debug(
            "web: closing {peer}: {reason}", peer=self.peer, reason=reason.getErrorMessage()
        )

    def terminated(self) -> None:
        """
        Abort the client if it does not close soon after the GOAWAY.
        """
        self._abortLater()

    def _abused(self) -> None:
        # Counted once per connection, however many frames follow.
        if not self._closing:
            self._closing = True
            self.factory.stats.http2Errors += 1

    def _headerTimedOut(self) -> None:
        self._headerCall = None
        self.factory.stats.headerTimeouts += 1
        self._log.debug(
            "web: closing {peer}: no complete request headers after {timeout} seconds",
            peer=self.peer,
            timeout=self.factory.limits.headerTimeout,
        )
        self._goAway(h2.errors.ErrorCodes.NO_ERROR)

    def _stopHeaderClock(self) -> None:
        if self._headerCall is not None:
            if self._headerCall.active():
                self._headerCall.cancel()
            self._headerCall = None

    def _goAway(self, code: int) -> None:
        self._closing = True
        self.conn.close_connection(error_code=code)
        self.transport.write(self.conn.data_to_send())  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]
        self._abortLater()

    def _abortLater(self) -> None:
        # A client that reads nothing would hold the connection until
        # Twisted's abortTimeout (15 s): give it the HTTP/1.1 channel's linger.
        self.abortAfter(LimitedChannel.lingerTimeout)


def _declaredLength(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
