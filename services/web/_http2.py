# -*- test-case-name: tests.test_http2 -*-
"""
HTTP/2 over TLS with the limits of L{services.web._channel}.

twisted.web speaks HTTP/2 (L{twisted.web._http2.H2Connection}, on the C{h2}
package) when ALPN picks C{h2}, but its own switch
(C{_GenericHTTPChannelProtocol}) replaces the channel with a plain
L{H2Connection}, which has none of our limits.  L{HTTP2Factory} wraps a
L{LimitedSite} on an C{ssl:} listener: each connection starts as the site's
L{LimitedChannel} (so the connection caps and counters apply as they do to
HTTP/1.1), and when the TLS handshake chose C{h2} it hands over to a
L{LimitedH2Connection}, which keeps:

  - the header deadline: the first request's headers complete within
    C{headerTimeout} of connecting, else GOAWAY and close (counted as
    C{headerTimeouts});
  - the idle timeout, restarted only by requests, their bodies and
    responses: PING, SETTINGS and bytes that complete no frame do not keep a
    connection open (counted as C{idleTimeouts});
  - the body limit: a declared or received body over C{maxBody} gets
    C{413} on its stream, which is then reset; the connection goes on;
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

from collections import deque
from typing import Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import priority
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.components import proxyForInterface
from twisted.python.failure import Failure
from twisted.web._http2 import H2Connection, H2Stream

from services import logs
from services.web._channel import LimitedChannel, LimitedSite, errorBody
from services.net.sendtimeout import SendTimer

__all__ = [
    "CONTROL_FRAMES",
    "HTTP2Factory",
    "LimitedH2Connection",
    "LimitedH2Stream",
    "NegotiatingChannel",
    "StreamRejection",
]

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
        # Twisted private: the stream's request; verified on Twisted 26.10.
        value: bytes | None = self._stream._request.getHeader(name)
        return value


class LimitedH2Stream(H2Stream):
    """
    A stream that answers 413 to a body over the limit, and aborts its
    connection when its client keeps its flow control window shut for the
    send timeout.
    """

    _rejected = False
    _blockedCall: IDelayedCall | None = None

    def bodyTooLarge(self) -> None:
        """
        Answer 413 on this stream and reset it: the request never runs, and
        what the client still sends for it is discarded by h2.
        """
        if self._rejected:
            return
        self._rejected = True
        # Twisted private: the stream's connection; verified on Twisted 26.10.
        connection: LimitedH2Connection = self._conn
        site: LimitedSite = connection.factory
        site.stats.bodyTooLarge += 1
        sent = connection.rejectStream(self.streamID, 413, b"Content Too Large")
        site.logRejected(StreamRejection(self, 413, sent))  # type: ignore[arg-type]

    def requestDone(self, request: Any) -> None:
        """
        A response is complete: count its body on the connection.
        """
        self._conn.bytesOut += request.sentLength
        H2Stream.requestDone(self, request)

    def receiveDataChunk(self, data: bytes, flowControlledLength: int) -> None:
        """
        Pass on a piece of the body, unless the request was rejected.
        """
        if not self._rejected:
            H2Stream.receiveDataChunk(self, data, flowControlledLength)

    def requestComplete(self) -> None:
        """
        Run the request, unless it was rejected.
        """
        if not self._rejected:
            H2Stream.requestComplete(self)

    def flowControlBlocked(self) -> None:
        """
        The client's window for this stream may be shut.  When it is, take
        the stream out of the send loop (Twisted's loop would otherwise
        spin, a call per reactor iteration, until the window opens) and
        start the send timeout.
        """
        H2Stream.flowControlBlocked(self)
        connection: LimitedH2Connection = self._conn
        if connection.conn.local_flow_control_window(self.streamID) > 0:
            return  # what is queued is over the window, but some can go
        # Twisted private: the connection's priority tree, which its send
        # loop takes streams from; verified on Twisted 26.10.
        connection.priority.block(self.streamID)
        timeout = connection.factory.limits.sendTimeout
        if timeout and self._blockedCall is None:
            self._blockedCall = connection.callLater(timeout, self._windowTimedOut)

    def windowUpdated(self) -> None:
        """
        The client opened a window: stop the send timeout.
        """
        H2Stream.windowUpdated(self)
        if self._conn.conn.local_flow_control_window(self.streamID) > 0:
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
        self._conn.sendTimedOut()


class LimitedH2Connection(H2Connection):
    """
    An L{H2Connection} with the limits of a L{LimitedSite} (see the module
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
        H2Connection.__init__(self, reactor)
        self.conn = _CountingConnection(config=self.conn.config)

    @property
    def backpressured(self) -> bool:
        """
        Whether the transport paused this connection (its send buffer is
        full).
        """
        # Twisted private: set while the transport has paused the
        # connection; verified on Twisted 26.10.
        return self._consumerBlocked is not None

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
        H2Connection.connectionMade(self)
        self._sendTimer = SendTimer(
            self._reactor, limits.sendTimeout, self.transport, self.sendTimedOut
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
            H2Connection.dataReceived(self, data)
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

    def _requestReceived(self, event: h2.events.RequestReceived) -> None:
        # Twisted's own builds an H2Stream; this one is the same with ours.
        # Twisted private: the per-stream state H2Connection keeps; verified
        # on Twisted 26.10.
        self._stopHeaderClock()
        stream = LimitedH2Stream(
            event.stream_id,
            self,
            event.headers,
            self.requestFactory,  # type: ignore[attr-defined]
            self.site,
            self.factory,
        )
        streamID = event.stream_id
        self.streams[streamID] = stream
        cleanup = self._streamCleanupCallbacks[streamID] = Deferred()
        cleanup.addCallback(lambda result: stream.stopTimer())
        self._outboundStreamQueues[streamID] = deque()
        try:
            self.priority.insert_stream(streamID)
        except priority.DuplicateStreamError:
            pass
        else:
            self.priority.block(streamID)
        limit = self.factory.limits.maxBody
        length = _declaredLength(event.headers)
        if limit and length is not None and length > limit:
            stream.bodyTooLarge()

    def _requestDataReceived(self, event: h2.events.DataReceived) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestDataReceived(self, event)

    def _requestEnded(self, event: h2.events.StreamEnded) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestEnded(self, event)

    def _requestAborted(self, event: h2.events.StreamReset) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestAborted(self, event)

    def _handleWindowUpdate(self, event: h2.events.WindowUpdated) -> None:
        # Twisted's unblocks the streams that have data but does not wake its
        # send loop, which (streams shut by flow control being out of it, see
        # LimitedH2Stream.flowControlBlocked) may be waiting.
        H2Connection._handleWindowUpdate(self, event)
        # Twisted private: the send loop waits on this Deferred; verified on
        # Twisted 26.10.
        waiting = self._sendingDeferred
        if waiting is not None:
            self._sendingDeferred = None
            waiting.callback(None)

    def rejectStream(self, streamID: int, code: int, reason: bytes) -> int:
        """
        Answer C{code} on a stream at once, then reset it (the request is
        dropped); return the length of the body sent.
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
            conn.reset_stream(streamID, h2.errors.ErrorCodes.NO_ERROR)
        except h2.exceptions.StreamClosedError:
            return 0
        if self._tryToWriteControlData() and streamID in self.streams:
            self._requestDone(streamID)
        return len(body)

    def pauseProducing(self) -> None:
        """
        The transport's send buffer is full: start the send timeout.
        """
        H2Connection.pauseProducing(self)
        if self._sendTimer is not None:
            self._sendTimer.paused()

    def resumeProducing(self) -> None:
        """
        The send buffer drained: stop the send timeout.
        """
        if self._sendTimer is not None:
            self._sendTimer.resumed()
        H2Connection.resumeProducing(self)

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
        H2Connection.timeoutConnection(self)

    def connectionLost(self, reason: Failure = connectionDone, _cancelTimeouts: bool = True) -> None:
        """
        Stop the timers and uncount the connection (once).
        """
        self._stopHeaderClock()
        if self._sendTimer is not None:
            self._sendTimer.stop()
        for stream in list(self.streams.values()):
            stream.stopTimer()
        H2Connection.connectionLost(self, reason, _cancelTimeouts)
        if self.factory.channels.pop(self, False) is None:
            self.factory.connectionClosed(self)  # type: ignore[arg-type]

    def _tryToWriteControlData(self) -> bool:
        # Twisted aborts a client that reads none of the answers to its
        # control frames (PING, SETTINGS) once 17 KiB of them are buffered.
        # Twisted private: _tryToWriteControlData; verified on Twisted 26.10.
        written: bool = H2Connection._tryToWriteControlData(self)
        if not written:
            self._abused()
        return written

    def _terminate(self, reason: Failure) -> None:
        # Twisted's answer to a protocol error (h2 raised: a CONTINUATION
        # flood, an HPACK bomb, too many streams) and to a rapid reset flood;
        # it leaves the connection to close only once the client has read
        # the GOAWAY.  Twisted private: _terminate; verified on Twisted 26.10.
        self._abused()
        self._log.debug(
            "web: closing {peer}: {reason}", peer=self.peer, reason=reason.getErrorMessage()
        )
        H2Connection._terminate(self, reason)
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
        if self._abortingCall is None:
            self._abortingCall = self.callLater(LimitedChannel.lingerTimeout, self.forceAbortClient)


def _declaredLength(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class NegotiatingChannel(proxyForInterface(IProtocol, "_channel")):  # type: ignore[misc]
    """
    A connection of an C{ssl:} listener: the site's L{LimitedChannel} until
    the first bytes after the handshake show that ALPN chose C{h2}; then a
    L{LimitedH2Connection} takes over the connection, its place in the
    site's counters and registry, and the transport.
    """

    _negotiated = False

    def __init__(self, channel: LimitedChannel) -> None:
        self._channel = channel

    def dataReceived(self, data: bytes) -> None:
        """
        On the first bytes, switch to HTTP/2 if ALPN chose it.
        """
        if not self._negotiated:
            self._negotiated = True
            if getattr(self._channel.transport, "negotiatedProtocol", None) == b"h2":
                self._switch()
        self._channel.dataReceived(data)

    def _switch(self) -> None:
        old: LimitedChannel = self._channel
        site = old.factory
        transport = old.transport
        # Twisted private: the producer HTTPChannel registered with its
        # transport, which the new connection takes over (as Twisted's own
        # switch does); verified on Twisted 26.10.
        networkProducer: Any = old._networkProducer
        networkProducer.unregisterProducer()
        old.abandon()
        new: Any = LimitedH2Connection(site.reactor)
        new.requestFactory = old.requestFactory
        new.site = site
        new.factory = site
        new.timeOut = site.timeOut
        new.callLater = site.reactor.callLater
        new.peer, new.peerHost = old.peer, old.peerHost
        new.connectedAt, new.bytesIn = old.connectedAt, old.bytesIn
        site.channels.pop(old, None)
        site.channels[new] = None  # type: ignore[index]
        self._channel = new
        new.makeConnection(transport)
        networkProducer.registerProducer(new, True)


class HTTP2Factory(Factory):
    """
    The factory of an C{ssl:} listener that offers HTTP/2: the site's
    channels, each ready to switch to L{LimitedH2Connection} (see
    L{NegotiatingChannel}).

    @ivar site: the L{LimitedSite} that counts, limits and serves.
    """

    noisy = False

    def __init__(self, site: LimitedSite) -> None:
        self.site = site

    def doStart(self) -> None:
        """
        Start the site (its access log) with this listener.
        """
        self.site.doStart()

    def doStop(self) -> None:
        """
        Stop the site with this listener.
        """
        self.site.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """
        A site's channel behind a L{NegotiatingChannel}, or L{None} when a
        connection cap is reached.
        """
        channel = self.site.buildProtocol(addr)
        if channel is None:
            return None
        return NegotiatingChannel(channel)

