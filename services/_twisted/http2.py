# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
twisted.web's HTTP/2 (C{twisted.web._http2}): the connection and stream
classes the limited HTTP/2 channel (L{services.web._http2}) extends, as
L{H2ConnectionBase} and L{H2StreamBase}, which give the private hooks and
per-connection state it relies on public names, and the registry of those
names.

L{H2ConnectionBase} also sends small responses at once, where Twisted's
send loop sends one frame per reactor iteration (see its
L{writeDataToStream<H2ConnectionBase.writeDataToStream>}).

Why one module: every private name the registry lists is read by the two
classes here and nowhere else, and the registry's checks are what keep
those classes honest on a new Twisted; split, the names and their users
would drift apart.

This module is read only when an C{ssl:} web listener may offer HTTP/2
(the fast path C{"http2"}); without the h2 package, or on a Twisted without
C{twisted.web._http2}, the base classes are inert and that fast path is off.
"""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from services._twisted import PrivateName, isA

try:
    import h2.exceptions
    import priority
    from twisted.web._http2 import H2Connection, H2Stream
except ImportError:  # no h2: HTTP/2 is off (missing() reports the names)
    H2Connection = H2Stream = object  # type: ignore[assignment,misc]

__all__ = ["PRIVATE_NAMES", "H2ConnectionBase", "H2StreamBase"]

_USERS = ("services.web._http2",)


def _connection() -> Any:
    from twisted.internet.task import Clock
    from twisted.web._http2 import H2Connection

    return H2Connection(reactor=Clock())


def _setsInInit(*names: str) -> Any:
    def check(init: Any) -> bool:
        source = inspect.getsource(init)
        return all(f"self.{name} =" in source for name in names)

    return check


PRIVATE_NAMES = (
    PrivateName(
        "twisted.web._http2:H2Connection",
        "Twisted's HTTP/2 connection, extended with the web service's limits",
        _USERS,
        fastPaths=("http2",),
        shape=isA(type),
    ),
    PrivateName(
        "twisted.web._http2:H2Stream.__init__",
        "Twisted's HTTP/2 stream, extended; its _request and _conn are read",
        _USERS,
        fastPaths=("http2",),
        shape=_setsInInit("_request", "_conn"),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestReceived",
        "where a stream is built, replaced to build ours",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestDataReceived",
        "a request body's frame, ignored for a stream dropped after its 413",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestEnded",
        "a request's end, ignored for a stream dropped after its 413",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestAborted",
        "a stream reset by the client, ignored for a stream dropped after its 413",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._handleWindowUpdate",
        "a flow control window opened, after which the send loop is woken",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestDone",
        "forgetting a stream the connection answered (413) and reset itself",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._tryToWriteControlData",
        "the control frames' buffer check, to count a client that reads none",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._terminate",
        "the answer to a protocol error, to count and close an abusive client "
        "(new in 26.10: before, such clients are closed by Twisted uncounted)",
        _USERS,
        fastPaths=("http2",),
        verified=("26.10.0",),
        since=(26, 10, 0),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._streamCleanupCallbacks",
        "per-stream Deferreds fired when a stream ends, kept as Twisted keeps them",
        _USERS,
        fastPaths=("http2",),
        shape=isA(dict),
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._outboundStreamQueues",
        "per-stream send queues, kept as Twisted keeps them",
        _USERS,
        fastPaths=("http2",),
        shape=isA(dict),
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._bufferedControlFrames",
        "control frames held back, which a frame sent at once must not overtake",
        _USERS,
        fastPaths=("http2",),
        shape=isA(deque),
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._sendingDeferred",
        "the Deferred the send loop waits on, fired to resume it",
        _USERS,
        fastPaths=("http2",),
        shape=lambda value: value is None,
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._consumerBlocked",
        "set while the transport has paused the connection",
        _USERS,
        fastPaths=("http2",),
        shape=lambda value: value is None,
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._abortingCall",
        "the pending abort of a closing connection",
        _USERS,
        fastPaths=("http2",),
        shape=lambda value: value is None,
        instance=_connection,
    ),
)


class H2StreamBase(H2Stream):  # type: ignore[misc,valid-type]
    """
    Twisted's HTTP/2 stream, with its connection and request by public
    names, and a hook for its end.
    """

    @property
    def connection(self) -> Any:
        """
        The connection this stream belongs to.
        """
        return self._conn

    @property
    def request(self) -> Any:
        """
        The request this stream carries.
        """
        return self._request

    def streamEnded(self) -> None:
        """
        The stream is over (answered, reset or its connection lost);
        override to stop what the stream started.
        """


class H2ConnectionBase(H2Connection):  # type: ignore[misc,valid-type]
    """
    Twisted's HTTP/2 connection, whose private hooks its subclass reaches by
    public names: it builds each stream with L{buildStream} (and tells
    L{streamOpened}), lets L{controlDataUnread} and L{terminating} count an
    abusive client, and ignores frames for streams it has dropped.  Small
    responses skip Twisted's send loop (see L{writeDataToStream}).
    """

    _pendingEnds: list[int] | None = None

    @property
    def backpressured(self) -> bool:
        """
        Whether the transport paused this connection (its send buffer is
        full).
        """
        return self._consumerBlocked is not None

    def abortAfter(self, delay: float) -> None:
        """
        Abort the connection in C{delay} seconds (Twisted's C{forceAbortClient}),
        unless an abort is pending already.
        """
        if self._abortingCall is None:
            self._abortingCall = self.callLater(delay, self.forceAbortClient)

    def buildStream(self, event: Any) -> H2StreamBase:
        """
        The stream for a request that just began (an h2 C{RequestReceived}
        event); override to build another kind.
        """
        return H2StreamBase(
            event.stream_id,
            self,
            event.headers,
            self.requestFactory,  # type: ignore[attr-defined]
            self.site,
            self.factory,
        )

    def streamOpened(self, stream: H2StreamBase, event: Any) -> None:
        """
        A stream was built and registered with the connection; override to
        look at its request's headers.
        """

    def _requestReceived(self, event: Any) -> None:
        # Twisted's own builds an H2Stream; this is the same with the
        # subclass's, and the per-stream state kept as Twisted keeps it.
        stream = self.buildStream(event)
        streamID = event.stream_id
        self.streams[streamID] = stream
        cleanup = self._streamCleanupCallbacks[streamID] = Deferred()
        cleanup.addCallback(lambda result: stream.streamEnded())
        self._outboundStreamQueues[streamID] = deque()
        try:
            self.priority.insert_stream(streamID)
        except priority.DuplicateStreamError:
            pass
        else:
            self.priority.block(streamID)
        self.streamOpened(stream, event)

    # Frames for a stream the connection dropped (reset after a 413) are
    # ignored, where Twisted's handlers would fail on the missing stream.

    def _requestDataReceived(self, event: Any) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestDataReceived(self, event)

    def _requestEnded(self, event: Any) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestEnded(self, event)

    def _requestAborted(self, event: Any) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestAborted(self, event)

    def _handleWindowUpdate(self, event: Any) -> None:
        # Twisted's unblocks the streams that have data but does not wake its
        # send loop, which (streams shut by flow control being taken out of
        # it) may be waiting on this Deferred.
        H2Connection._handleWindowUpdate(self, event)
        waiting = self._sendingDeferred
        if waiting is not None:
            self._sendingDeferred = None
            waiting.callback(None)

    # The direct send path.  Twisted queues every DATA frame and the end of
    # every stream for its send loop, which sends one frame per reactor
    # iteration (a callLater(0) each, the priority tree consulted each
    # time): a small response costs three iterations and three TLS
    # writes, and the streams of a batch of requests are answered one
    # frame at a time.  When the stream has nothing queued, the transport
    # is not holding the connection back, and the frame fits the flow
    # control windows and the frame size, sending it at once is what the
    # loop would do next for that stream; anything else (a write larger
    # than a frame, a shut window, a paused transport, a stream with
    # frames waiting, control frames buffered, which the frame must not
    # overtake) goes to Twisted's queue and loop, so priority and
    # backpressure still order bulk data.

    def writeDataToStream(self, streamID: int, data: bytes) -> None:
        """
        Send C{data} on stream C{streamID}: at once as one DATA frame when
        nothing is queued for the stream and it may go (see above), else
        through Twisted's send queue.
        """
        queue = self._outboundStreamQueues.get(streamID)
        conn = self.conn
        if (
            queue
            or queue is None
            or self._consumerBlocked is not None
            or self._bufferedControlFrames
            or len(data) > conn.max_outbound_frame_size
        ):
            H2Connection.writeDataToStream(self, streamID, data)
            return
        window = conn.local_flow_control_window(streamID)
        if len(data) > window:
            H2Connection.writeDataToStream(self, streamID, data)
            return
        if data:
            self.resetTimeout()
            try:
                conn.send_data(streamID, data)
            except h2.exceptions.StreamClosedError:
                # h2 read the whole of what came before any of it is
                # handled: the client reset this stream further on, and
                # that event will drop it (Twisted swallows the error the
                # same way for the headers).
                return
            self.transport.write(conn.data_to_send())  # type: ignore[union-attr]
        if window - len(data) <= 0:
            # As Twisted's loop tells a stream whose window it exhausted.
            self.streams[streamID].flowControlBlocked()

    def _mayEndAtOnce(self, streamID: int) -> bool:
        queue = self._outboundStreamQueues.get(streamID)
        return not (
            queue
            or queue is None
            or self._consumerBlocked is not None
            or self._bufferedControlFrames
        )

    def endRequest(self, streamID: int) -> None:
        """
        End stream C{streamID}'s response: at once when nothing is queued
        for it and the transport is not holding the connection back, else
        after its queued frames, through Twisted's send loop.  A response
        that ends while the frames that asked for it are being handled ends
        once they all are: a RST_STREAM among them still finds its stream
        open, as it does behind Twisted's loop, and is counted against
        rapid reset; and the ends of a batch of requests go out as one write.
        """
        if not self._mayEndAtOnce(streamID):
            H2Connection.endRequest(self, streamID)
        elif self._pendingEnds is not None:
            self._pendingEnds.append(streamID)
        else:
            self._endStreams([streamID])

    def _endStreams(self, streamIDs: list[int]) -> None:
        conn = self.conn
        ended = []
        for streamID in streamIDs:
            if streamID not in self._outboundStreamQueues:
                continue  # reset by the client, or the connection is gone
            if not self._mayEndAtOnce(streamID):
                H2Connection.endRequest(self, streamID)
                continue
            try:
                conn.end_stream(streamID)
            except h2.exceptions.StreamClosedError:
                continue  # reset further on in what h2 read (see above)
            ended.append(streamID)
        if ended:
            self.resetTimeout()
            self.transport.write(conn.data_to_send())  # type: ignore[union-attr]
            for streamID in ended:
                self._requestDone(streamID)

    def dataReceived(self, data: bytes) -> None:
        """
        Handle the frames in C{data} (Twisted's C{dataReceived}), then end
        the responses that were completed meanwhile (see L{endRequest}).
        """
        pending: list[int] = []
        self._pendingEnds = pending
        try:
            H2Connection.dataReceived(self, data)
        finally:
            self._pendingEnds = None
        if pending:
            self._endStreams(pending)

    def writeControlData(self) -> bool:
        """
        Send the control frames h2 has queued, as Twisted does after its own
        frames.

        @return: whether the connection is still open (Twisted aborts a
            client that reads none of its control frames).
        """
        return self._tryToWriteControlData()  # type: ignore[no-any-return]

    def endStream(self, streamID: int) -> None:
        """
        Forget stream C{streamID}, answered and reset by the subclass
        itself, as Twisted forgets a finished one.
        """
        self._requestDone(streamID)

    def _tryToWriteControlData(self) -> bool:
        # Twisted aborts a client that reads none of the answers to its
        # control frames (PING, SETTINGS) once 17 KiB of them are buffered.
        written: bool = H2Connection._tryToWriteControlData(self)
        if not written:
            self.controlDataUnread()
        return written

    def controlDataUnread(self) -> None:
        """
        The client read none of the answers to its control frames, and is
        being aborted; override to count it.
        """

    def _terminate(self, reason: Failure) -> None:
        # Twisted's answer to a protocol error (h2 raised: a CONTINUATION
        # flood, an HPACK bomb, too many streams) and to a rapid reset flood
        # (Twisted 26.10 and later); it leaves the connection to close only
        # once the client has read the GOAWAY.
        self.terminating(reason)
        H2Connection._terminate(self, reason)
        self.terminated()

    def terminating(self, reason: Failure) -> None:
        """
        The connection is being closed for a protocol error or abuse
        (C{reason}); override to count and log it.
        """

    def terminated(self) -> None:
        """
        Twisted sent GOAWAY for a protocol error and waits for the client to
        close; override to bound that wait.
        """

    def connectionLost(
        self, reason: Failure = connectionDone, _cancelTimeouts: bool = True
    ) -> None:
        """
        The connection is gone: L{beforeConnectionLost}, Twisted's own
        clean-up, then L{afterConnectionLost}.
        """
        # _cancelTimeouts: Twisted's own flag, False when it calls this
        # itself after a protocol error.
        self.beforeConnectionLost()
        H2Connection.connectionLost(self, reason, _cancelTimeouts)
        self.afterConnectionLost()

    def beforeConnectionLost(self) -> None:
        """
        Override to stop timers before Twisted cleans the streams up.
        """

    def afterConnectionLost(self) -> None:
        """
        Override to uncount the connection once Twisted cleaned up.
        """
