# -*- test-case-name: tests.unit.web.test_httplimits -*-
"""
HTTP/1.1 limits that twisted.web does not enforce by itself.

C{Site(timeout=...)} is an idle timeout: every byte received restarts it, so
a client that drips one byte a second holds a connection open for ever, and
a few hundred such clients hold as many file descriptors and buffers.
L{LimitedSite<services.web._site.LimitedSite>} adds:

  - a header deadline: the request line and headers must be complete within
    C{headerTimeout} seconds of the connection opening (or, on a kept-alive
    connection, of the first byte of the next request), however slowly the
    bytes come; otherwise the client gets C{408 Request Timeout} and the
    connection is closed;
  - the idle timeout of keep-alive connections (Twisted's own timeout, which
    restarts on every byte);
  - a body limit: a request that declares a body longer than C{maxBody}
    gets C{413 Content Too Large} before a byte of the body is read (and
    before any C{100 Continue}); a chunked body gets it as soon as it goes
    over.  What the client still sends is discarded, not buffered, for at
    most L{LimitedChannel.lingerTimeout} seconds so that it can read the
    answer, then the connection is dropped;
  - connection caps, in total and per peer IP address: connections beyond
    them are closed as soon as they are accepted;
  - backpressure on pipelining: while the transport's send buffer is full,
    nothing more is read from the client and no further pipelined request
    is parsed (as nginx does), so a client that sends requests without
    reading the responses holds at most one buffer of them;
  - a send timeout (nginx's C{send_timeout}): a response whose client
    takes none of it for C{sendTimeout} seconds is aborted
    (L{services.net.sendtimeout});
  - no tracebacks in responses (C{displayTracebacks} is off) and no parsing
    of form uploads into memory;
  - the C{Server} header it is given (not Twisted's name and exact
    version), or none;
  - C{400 Bad Request} to an HTTP/1.1 request without a C{Host} header, and
    to any request with more than one (RFC 9112 3.2), as nginx answers.

The 408 and 413 answers are counted and written to the access log like any
other, in Apache's Combined Log Format.  An access log that cannot be
written (a full disk) loses its lines, never a response: each lost line is
counted, and a warning says so at most once a minute.  Connections speak
HTTP/1.1 (a plain C{HTTPChannel}); on C{ssl:} listeners L{services.web._http2}
adds HTTP/2 with the same limits.

Every limit holds on the lean path that plain requests take (on by
default, L{LimitedChannel.leanPath}): request heads complete in the bytes
received are parsed whole (L{LimitedChannelBase.parseHeads}), header lines
stored under names canonicalized once per site, and whole-body answers
written in one piece (L{services.web._request}); what that path does not
cover goes through twisted.web's code, and the answers are the same.

L{LimitedChannel} is the channel that keeps these limits;
L{services.web._site.LimitedSite} builds it, counts and logs.

Why one module: every limit of the channel hooks the same few methods of
C{HTTPChannel} (C{dataReceived}, C{allHeadersReceived}, C{requestDone},
C{pauseProducing} and C{resumeProducing}), and the header deadline, the
idle timeout, the send timeout and backpressure each read the state the
others set in them; split, each part would reach into the others' private
state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers, InvalidHeaderName
from twisted.web.server import Request

from services import logs
from services._twisted.webbase import LimitedChannelBase, canonicalHeaderName, rawHeaders
from services.net.sendtimeout import SendTimer
from services.stats import WebStats
from services.web._rejections import RejectedRequest, errorBody, errorResponse

if TYPE_CHECKING:
    from services.web._site import LimitedSite

__all__ = ["LimitedChannel"]


#: What a header value must not hold (RFC 9110 5.5).  A pattern, not three
#: C{b"..." in value}: CPython's bytes test first tries its argument as an
#: integer and formats the TypeError it then clears.
_UNSAFE = re.compile(rb"[\x00\r\n]")

#: The headers that say how long the body is: HTTPChannel reads them.
_FRAMING = frozenset((b"Content-Length", b"Transfer-Encoding"))


def _ignore(data: bytes) -> None:
    """
    Discard bytes of a rejected request.
    """


class LimitedChannel(LimitedChannelBase):
    """
    An C{HTTPChannel} with a header deadline, a body limit and counters.

    @ivar peer: the peer, as logs show it.
    @ivar peerHost: the peer's IP address, which per-peer caps count by, or
        L{None}.
    @ivar connectedAt: when the connection was made, by the site's clock.
    @ivar bytesIn: bytes received on this connection.
    @ivar bytesOut: bytes of response bodies sent on this connection.
    @cvar lingerTimeout: seconds to keep discarding what a client sends
        after it was answered 400 or 413, so that it reads the answer instead
        of a connection reset.
    @cvar maxHeaders: headers allowed in one request; one more gets 400
        (twisted.web's own default is 500).
    @cvar leanPath: whether the common case takes the lean path: the
        headers of a plain HTTP/1.1 request checked without twisted.web's
        general code, and whole answers handed to L{writeResponse}
        (L{services.web._request}); off, everything goes through
        twisted.web's code, byte for byte the same answers.
    """

    _log = Logger(observer=logs.observer)
    factory: LimitedSite
    lingerTimeout = 2.0
    maxHeaders = 100
    leanPath = True
    #: The largest body L{writeResponse} copies into the headers' write.
    joinedBodySize = 64 * 1024
    peer = "?"
    peerHost: str | None = None
    connectedAt = 0.0
    bytesIn = 0
    bytesOut = 0
    # The header deadline is a time, not a timer: a request only sets and
    # clears _headerDeadline, and the connection's one timer (_headerCall),
    # when it fires, re-arms itself for the deadline in force, if any.  A
    # timer created and cancelled per request cost a heap insertion and a
    # cancellation on every keep-alive request.
    _headerCall: IDelayedCall | None = None
    _headerDeadline: float | None = None
    # Twisted's idle timeout (TimeoutMixin) is kept the same way: HTTPChannel
    # turns it off for each request and back on after it, which cancelled a
    # timer and created one per request.
    _idleCall: IDelayedCall | None = None
    _idleDeadline: float | None = None
    _host: IAddress | None = None
    _peerAddress: IAddress | None = None
    _headerTimeout = 0.0
    _seconds: Callable[[], float]
    _stats: WebStats
    _sendTimer: SendTimer
    _awaitingRequest = False
    _replaying = False
    _rejected = False
    rejected = property(attrgetter("_rejected"), doc="Whether a request was refused.")

    def connectionMade(self) -> None:
        """
        Count the connection and start the deadline of its first request's
        headers.
        """
        factory = self.factory
        self._headerTimeout = factory.limits.headerTimeout
        self._seconds = factory.reactor.seconds
        self._stats = factory.stats
        self.connectedAt = self._seconds()
        LimitedChannelBase.connectionMade(self)
        self._sendTimer = SendTimer(
            factory.reactor, factory.limits.sendTimeout, self.transport, self._sendTimedOut
        )
        factory.connectionOpened(self)
        self._startHeaderClock()

    def dataReceived(self, data: bytes) -> None:
        """
        Parse C{data}, starting the header deadline if it is the first byte
        of a new request; once a request was rejected, discard it.
        """
        if self._rejected:
            return
        if not self._replaying:
            self._stats.bytesIn += len(data)
            self.bytesIn += len(data)
        if self._awaitingRequest and not self.paused:
            self._startHeaderClock()
        if data and self.leanPath and self.betweenRequests():
            self.resetTimeout()
            rest = self.parseHeads(data)
            if rest:
                LimitedChannelBase.dataReceived(self, rest)
        else:
            LimitedChannelBase.dataReceived(self, data)
        if self._awaitingRequest and self.unparsedBytes and not self._rejected and not self.paused:
            self._startHeaderClock()

    def headStarted(self) -> None:
        """
        A pipelined request's head starts: its header deadline does.
        """
        if self._awaitingRequest:
            self._startHeaderClock()

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        A request line or header line is longer than C{MAX_LENGTH} (16 KiB):
        answer 400, where L{twisted.protocols.basic.LineReceiver} would only
        close the connection.
        """
        self.respondToBadRequest()

    def headerReceived(self, line: bytes) -> bool:
        """
        Store one header line, as C{HTTPChannel.headerReceived} does (400 to
        a malformed line, a value with NUL, CR or LF, or one header over
        C{maxHeaders}), with the header's canonical name looked up in the
        site's table instead of canonicalized twice; the body's framing
        headers, and any line it finds wrong, go to twisted.web's code.

        @return: whether the header was valid.
        """
        name, colon, value = line.partition(b":")
        names = self.factory.headerNames
        canonical = names.get(name)
        if canonical is None and colon:
            try:
                canonical = canonicalHeaderName(name)
            except InvalidHeaderName:
                pass
            else:
                if len(names) < self.factory.maxHeaderNames:
                    names[name] = canonical
        value = value.strip(b" \t")
        if (
            canonical is None
            or canonical in _FRAMING
            or not self.leanPath
            or _UNSAFE.search(value) is not None
        ):
            ok: bool = LimitedChannelBase.headerReceived(self, line)
            return ok
        rawHeaders(self.requests[-1].requestHeaders).setdefault(canonical, []).append(value)
        count = self.receivedHeaderCount = self.receivedHeaderCount + 1
        if count > self.maxHeaders:
            self.respondToBadRequest()
            return False
        return True

    def allHeadersReceived(self) -> None:
        """
        The headers are complete: stop their deadline, and answer 413 at
        once if the declared body is over the limit.
        """
        self._headerDeadline = None
        request = self.requests[-1]
        # Canonical names: the channel stored each header as Headers does.
        headers = rawHeaders(request.requestHeaders)
        version = self.requestVersion
        # RFC 9112 3.2: exactly one Host header in HTTP/1.1, at most one in
        # earlier versions (twisted.web takes the last of several).
        hosts = headers.get(b"Host")
        if (len(hosts) > 1) if hosts else version == b"HTTP/1.1":
            self.respondToBadRequest()
            return
        limit = self.factory.limits.maxBody
        if limit and self.length is not None and self.length > limit:
            self.bodyTooLarge()
            return
        if (
            not self.leanPath
            or version != b"HTTP/1.1"
            or b"Connection" in headers
            or b"Cookie" in headers
            or b"Expect" in headers
        ):
            LimitedChannelBase.allHeadersReceived(self)
            return
        # What HTTPChannel.allHeadersReceived does for an HTTP/1.1 request
        # without cookies, Connection or Expect headers: it stays
        # persistent, and its body goes where the site says.
        self.persistent = True
        request.gotLength(self.length)

    def allContentReceived(self) -> None:
        """
        Run the request, unless it was rejected.
        """
        if not self._rejected:
            LimitedChannelBase.allContentReceived(self)

    def requestDone(self, request: Request) -> None:
        """
        A response is complete: on a kept-alive connection, the next byte
        starts the next header deadline.
        """
        self._awaitingRequest = bool(self.persistent)
        self.bytesOut += request.sentLength
        if self.backpressured:
            # Twisted parses the next pipelined request at once, and a
            # response that fits in one write (any small file, /status)
            # finishes at once too: a client that never reads had every
            # request it sent answered into our memory.  Parse no more until
            # the transport has sent what it holds (resumeProducing).
            # LineReceiver's loop stops at its "paused" flag, keeping the
            # rest in its buffer.
            self.paused = True
        self._replaying = True
        try:
            LimitedChannelBase.requestDone(self, request)
        finally:
            self._replaying = False
        self._checkPartialRequest()

    def bodyTooLarge(self) -> None:
        """
        Answer 413, stop parsing, and close once the client had time to read
        the answer.
        """
        if self._rejected:
            return
        self.factory.stats.bodyTooLarge += 1
        self._log.debug(
            "web: {peer} sent a request body over {limit} bytes: 413",
            peer=self.peer,
            limit=self.factory.limits.maxBody,
        )
        self._reject(413, b"Content Too Large")
        self._abortLater(self.lingerTimeout)

    def respondToBadRequest(self) -> None:
        """
        Answer 400 to a malformed request, or one over the header size or
        count limits.  twisted.web writes its 400 and closes at once: when
        the client is still sending (headers over the limit), the close
        with unread bytes is a reset that destroys the answer.  So, as for
        413: shut down writing (the client reads the answer, then the end),
        discard what still comes, and drop the connection after
        C{lingerTimeout}.
        """
        if self._rejected:
            return
        self._log.debug("web: {peer} sent a malformed request: 400", peer=self.peer)
        self._reject(400, b"Bad Request")
        loseWriteConnection = getattr(self.transport, "loseWriteConnection", None)
        if loseWriteConnection is not None:
            loseWriteConnection()
        else:
            self.loseConnection()
        self._abortLater(self.lingerTimeout)

    def pauseProducing(self) -> None:
        """
        The transport's send buffer is full: pause the response's producer
        and stop reading from the client (as L{LimitedChannelBase} does),
        and start the send timeout.
        """
        LimitedChannelBase.pauseProducing(self)
        self._sendTimer.paused()

    def resumeProducing(self) -> None:
        """
        The transport's send buffer drained: stop the send timeout, resume
        the response's producer and reading, and parse the pipelined
        requests held back meanwhile.
        """
        self._sendTimer.resumed()
        LimitedChannelBase.resumeProducing(self)
        if self.paused and not self.backpressured:
            self.paused = False
            if self.unparsedBytes and not self._rejected:
                self.dataReceived(b"")

    def abandon(self) -> None:
        """
        The connection goes on in another protocol (HTTP/2,
        L{services.web._http2}): stop this channel's timers, and leave the
        counting of the connection to its successor.
        """
        self._cancelHeaderClock()
        self._sendTimer.stop()
        self.setTimeout(None)
        if self._idleCall is not None:
            if self._idleCall.active():
                self._idleCall.cancel()
            self._idleCall = None

    def _sendTimedOut(self) -> None:
        self.factory.stats.sendTimeouts += 1
        self._log.debug(
            "web: aborting {peer}: it read nothing of its response for {timeout} seconds",
            peer=self.peer,
            timeout=self._sendTimer.timeout,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def timeoutConnection(self) -> None:
        """
        Nothing was received for the idle timeout: close the connection
        (and drop it if it does not close within C{abortTimeout}).
        """
        self.factory.stats.idleTimeouts += 1
        self._log.debug(
            "web: closing {peer}: idle for {timeout} seconds",
            peer=self.peer,
            timeout=self.timeOut,
        )
        self._abortLater(self.abortTimeout)
        self.loseConnection()

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        """
        Write the status line and headers as one C{bytes}: twisted.web hands
        the transport a sequence of about twenty pieces, which the transport
        checks and counts one by one in Python.  The headers were sanitized
        when they were set (L{Headers}); anything else takes twisted.web's
        path, which sanitizes it.
        """
        if not isinstance(headers, Headers):
            LimitedChannelBase.writeHeaders(self, version, code, reason, headers)
            return
        parts = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))  # type: ignore[union-attr]

    def writeResponse(
        self, version: bytes, code: bytes, reason: bytes, headers: Any, body: bytes
    ) -> None:
        """
        Write a whole response, status line, headers and body, as one
        C{bytes} (one C{send()}, one TLS record); a large body is written
        apart rather than copied.
        """
        if not isinstance(headers, Headers) or len(body) > self.joinedBodySize:
            self.writeHeaders(version, code, reason, headers)
            if body:
                self.transport.write(body)  # type: ignore[union-attr]
            return
        parts = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))  # type: ignore[union-attr]

    def getHost(self) -> IAddress:
        """
        The local address of the connection, asked of the transport once:
        twisted.web asks for it on every request, and each time cost a
        C{getsockname()} system call.
        """
        host = self._host
        if host is None:
            host = self._host = LimitedChannelBase.getHost(self)
        return host

    def getPeer(self) -> IAddress:
        """
        The address of the client, asked of the transport once: twisted.web
        asks for it on every request, and each time the transport built a
        new address object.  (Behind a PROXY-protocol listener the transport
        knows the real client before the first request is parsed.)
        """
        peer = self._peerAddress
        if peer is None:
            peer = self._peerAddress = LimitedChannelBase.getPeer(self)
        return peer

    def setTimeout(self, period: float | None) -> float | None:
        """
        Set the idle timeout to C{period} seconds from now, or turn it off
        with L{None}, as L{TimeoutMixin.setTimeout} does, without a new timer
        each time.

        @return: the previous period.
        """
        previous = self.timeOut
        self.timeOut = period  # type: ignore[assignment]  # Twisted's stub says int
        if period is None:
            self._idleDeadline = None
        else:
            self._idleDeadline = self._seconds() + period
            if self._idleCall is None:
                self._idleCall = self.callLater(period, self._idleClockFired)
        return previous

    def resetTimeout(self) -> None:
        """
        Restart the idle timeout, if it is on.
        """
        if self._idleDeadline is not None and self.timeOut is not None:
            self._idleDeadline = self._seconds() + self.timeOut

    def _idleClockFired(self) -> None:
        self._idleCall = None
        deadline = self._idleDeadline
        if deadline is None:
            return
        remaining = deadline - self._seconds()
        if remaining > 1e-6:
            self._idleCall = self.callLater(remaining, self._idleClockFired)
            return
        if self.backpressured and self.timeOut is not None:
            # The send buffer is still full, so the client is being
            # answered, not idle.  Twisted's
            # timeout would close a slow reader mid-response; the send
            # timeout is what ends a client that stopped reading.
            self._idleDeadline = self._seconds() + self.timeOut
            self._idleCall = self.callLater(self.timeOut, self._idleClockFired)
            return
        self._idleDeadline = None
        self.timeoutConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Stop every timer and uncount the connection.
        """
        self._cancelHeaderClock()
        self._sendTimer.stop()
        LimitedChannelBase.connectionLost(self, reason)
        self._idleDeadline = None
        if self._idleCall is not None:
            if self._idleCall.active():
                self._idleCall.cancel()
            self._idleCall = None
        self.factory.connectionClosed(self)

    def _checkPartialRequest(self) -> None:
        # A response that finished while the client's bytes were being
        # parsed can leave the start of the next request in the line buffer.
        if self._awaitingRequest and self.unparsedBytes and not self._rejected and not self.paused:
            self._startHeaderClock()

    def _startHeaderClock(self) -> None:
        self._awaitingRequest = False
        timeout = self._headerTimeout
        if timeout and self._headerDeadline is None:
            self._headerDeadline = self._seconds() + timeout
            if self._headerCall is None:
                self._headerCall = self.callLater(timeout, self._headerClockFired)

    def _cancelHeaderClock(self) -> None:
        self._headerDeadline = None
        if self._headerCall is not None:
            if self._headerCall.active():
                self._headerCall.cancel()
            self._headerCall = None

    def _headerClockFired(self) -> None:
        # The timer was armed for an earlier deadline: stop if the headers
        # it timed are complete, wait for the current deadline if later.
        self._headerCall = None
        deadline = self._headerDeadline
        if deadline is None:
            return
        remaining = deadline - self._seconds()
        if remaining > 1e-6:
            self._headerCall = self.callLater(remaining, self._headerClockFired)
            return
        self._headerTimedOut()

    def _headerTimedOut(self) -> None:
        self._headerDeadline = None
        self.factory.stats.headerTimeouts += 1
        self._log.debug(
            "web: closing {peer}: request headers incomplete after {timeout} seconds: 408",
            peer=self.peer,
            timeout=self.factory.limits.headerTimeout,
        )
        self._reject(408, b"Request Timeout")
        self._abortLater(self.abortTimeout)
        self.loseConnection()

    def _reject(self, code: int, reason: bytes) -> None:
        self._rejected = True
        # Nothing after a rejected request is ever parsed, not even the rest
        # of the bytes being parsed now (as twisted.web does for bytes after
        # a last request).  Instance attributes: no wrapper costs a call per
        # line of every request.
        self.lineReceived = self.rawDataReceived = _ignore  # type: ignore[method-assign]
        self._cancelHeaderClock()
        self.setTimeout(None)
        self.transport.write(errorResponse(code, reason))  # type: ignore[union-attr]
        sent = len(errorBody(code, reason))
        self.factory.logRejected(RejectedRequest(self, code, sent))

    def _abortLater(self, delay: float | None) -> None:
        if delay is not None:
            self.abortAfter(delay)

