# -*- test-case-name: tests.test_httplimits -*-
"""
HTTP/1.1 limits that twisted.web does not enforce by itself.

C{Site(timeout=...)} is an idle timeout: every byte received restarts it, so
a client that drips one byte a second holds a connection open for ever, and
a few hundred such clients hold as many file descriptors and buffers.
L{LimitedSite} adds:

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
HTTP/1.1 (a plain L{HTTPChannel}); on C{ssl:} listeners L{services.web._http2}
adds HTTP/2 with the same limits.

Each limit is off when set to 0.  Use it like a L{Site}::

    from twisted.internet import endpoints, reactor
    from twisted.web.resource import Resource
    from services.web._channel import HTTPLimits, LimitedSite

    site = LimitedSite(Resource(), HTTPLimits(headerTimeout=5, maxBody=65536))
    endpoints.serverFromString(reactor, "tcp:8080").listen(site)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, datetimeToString, unquote
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, _IEncodingResource
from twisted.web.server import Request, Site

from services import logs
from services.web._accesslog import AccessLogFile
from services.net.listen import describeAddress
from services.net.sendtimeout import SendTimer
from services.stats import WebStats

__all__ = [
    "HTTPLimits",
    "LimitedChannel",
    "LimitedRequest",
    "LimitedSite",
    "RejectedRequest",
    "combinedLogFormat",
    "errorBody",
    "errorResponse",
    "peerKey",
]


@dataclass(frozen=True)
class HTTPLimits:
    """
    The limits of a L{LimitedSite}; 0 turns a limit off.

    @ivar headerTimeout: seconds allowed for a request line and its headers.
    @ivar idleTimeout: seconds a connection may stay silent (between
        requests, or while sending a body).
    @ivar maxBody: the largest request body accepted, in bytes.
    @ivar maxConnections: connections open at once.
    @ivar maxConnectionsPerPeer: connections open at once from one IP address.
    @ivar sendTimeout: seconds a response may make no progress (its client
        reads none of it) before the connection is aborted.
    @ivar serverHeader: the C{Server} header of every response; empty for
        none.
    @ivar maxStreams: streams one HTTP/2 connection may have open at once
        (L{services.web._http2}).
    """

    headerTimeout: float = 10.0
    idleTimeout: float = 60.0
    maxBody: int = 1024**2
    maxConnections: int = 1024
    maxConnectionsPerPeer: int = 256
    sendTimeout: float = 60.0
    serverHeader: bytes = b"netservices"
    maxStreams: int = 100


def peerKey(address: IAddress | None) -> str | None:
    """
    The key that per-peer limits count by: the IP address of a TCP peer,
    L{None} for peers without one (UNIX sockets), which only the total cap
    limits.
    """
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else None


def _escape(value: bytes | str) -> str:
    """
    A request field as an access log shows it: printable ASCII as is,
    C{"} and C{\\} escaped with a backslash, other bytes as C{\\xNN} (as
    Apache does), so a line cannot be forged or broken.
    """
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    out = []
    for byte in value:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def combinedLogFormat(timestamp: str, request: Any) -> str:
    """
    One access log line in Apache's Combined Log Format (the client address
    unquoted, unlike Twisted's own formatter, so log tools read it)::

        127.0.0.1 - - [26/Nov/2026:16:51:27 +0000] "GET / HTTP/1.1" 200 11 "-" "curl/8.5.0"

    @param timestamp: the bracketed time, as L{HTTPFactory} keeps it.
    @param request: the finished request.
    """
    host = getattr(request.getClientAddress(), "host", None)
    client = _escape(host) if isinstance(host, str) else "-"
    if request.method is None:  # no request line: a RejectedRequest 408
        line = '"-"'
    else:
        # twisted.web names HTTP/2 "HTTP/2"; Apache and nginx log "HTTP/2.0".
        version = b"HTTP/2.0" if request.clientproto == b"HTTP/2" else request.clientproto
        line = f'"{_escape(request.method)} {_escape(request.uri)} {_escape(version)}"'
    referrer = _escape(request.getHeader(b"referer") or b"-")
    agent = _escape(request.getHeader(b"user-agent") or b"-")
    length = request.sentLength or "-"
    return f'{client} - - {timestamp} {line} {request.code} {length} "{referrer}" "{agent}"'


def errorBody(code: int, reason: bytes) -> bytes:
    """
    The plain-text body of an answer given outside any request.
    """
    return b"%d %s\n" % (code, reason)


def errorResponse(code: int, reason: bytes) -> bytes:
    """
    A complete C{HTTP/1.1} response with a short plain-text body that
    closes the connection, for answers given outside any request.
    """
    body = errorBody(code, reason)
    return (
        b"HTTP/1.1 %d %s\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n"
        b"\r\n" % (code, reason, len(body))
    ) + body


class RejectedRequest:
    """
    A request that the channel answered itself (400, 408, 413), as the access
    log formatter sees it: what was received of its request line and
    headers, and the answer.
    """

    def __init__(self, channel: HTTPChannel, code: int, sentLength: int) -> None:
        self.code = code
        self.sentLength = sentLength
        # The request line, once parsed, waits in these until the request
        # is complete; a client that never sent it has none.
        self.method: bytes | None = getattr(channel, "_command", None)
        self.uri: bytes | None = getattr(channel, "_path", None)
        self.clientproto: bytes | None = getattr(channel, "_version", None)
        self._peer = channel.transport.getPeer()  # type: ignore[union-attr]
        self._request = channel.requests[-1] if channel.requests else None

    def getClientAddress(self) -> IAddress:
        """
        The client's address.
        """
        return self._peer  # type: ignore[no-any-return]

    def getHeader(self, name: bytes) -> bytes | None:
        """
        A request header received before the answer, if any.
        """
        if self._request is None:
            return None
        header: bytes | None = self._request.getHeader(name)
        return header


def _ignore(data: bytes) -> None:
    """
    Discard bytes of a rejected request.
    """


class LimitedRequest(Request):
    """
    A request that stops taking a chunked body once it exceeds the
    channel's C{maxBody}, and takes its C{Date} header from the site's
    per-second cache.
    """

    channel: LimitedChannel
    _bodyReceived = 0

    def process(self) -> None:
        """
        Find the resource and render it, as L{Request.process} does, with
        the C{Date} header formatted once a second by the site instead of
        once per request.
        """
        self.site = site = self.channel.site
        server = site.limits.serverHeader
        if server:
            self.setHeader(b"Server", server)
        self.setHeader(b"Date", site.httpDate())
        self.prepath = []
        self.postpath = list(map(unquote, self.path[1:].split(b"/")))
        if self.path == b"*":
            self._handleStar()
            return
        try:
            resource = site.getResourceFor(self)
            if _IEncodingResource.providedBy(resource):
                encoder = resource.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(resource)
        except BaseException:
            self.processingFailed(Failure())

    def handleContentChunk(self, data: bytes) -> None:
        """
        Store a piece of the body, unless the body is now too large: then
        the channel answers 413 and this request never runs.
        """
        self._bodyReceived += len(data)
        limit = self.channel.factory.limits.maxBody
        if limit and self._bodyReceived > limit:
            self.channel.bodyTooLarge()
            return
        Request.handleContentChunk(self, data)


class LimitedChannel(HTTPChannel):
    """
    An L{HTTPChannel} with a header deadline, a body limit and counters.

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
    """

    _log = Logger(observer=logs.observer)
    factory: LimitedSite
    lingerTimeout = 2.0
    maxHeaders = 100
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
        HTTPChannel.connectionMade(self)
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
        HTTPChannel.dataReceived(self, data)
        if self._awaitingRequest and self._buffer and not self._rejected and not self.paused:
            self._startHeaderClock()

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        A request line or header line is longer than C{MAX_LENGTH} (16 KiB):
        answer 400, where L{twisted.protocols.basic.LineReceiver} would only
        close the connection.
        """
        self._respondToBadRequestAndDisconnect()

    def allHeadersReceived(self) -> None:
        """
        The headers are complete: stop their deadline, and answer 413 at
        once if the declared body is over the limit.
        """
        self._headerDeadline = None
        # RFC 9112 3.2: exactly one Host header in HTTP/1.1, at most one in
        # earlier versions (twisted.web takes the last of several).
        # Twisted private: _version, the request line's version until the
        # request is complete; verified on Twisted 26.10.
        hosts = self.requests[-1].requestHeaders.getRawHeaders(b"host")
        if (len(hosts) > 1) if hosts else self._version == b"HTTP/1.1":
            self._respondToBadRequestAndDisconnect()
            return
        limit = self.factory.limits.maxBody
        if limit and self.length is not None and self.length > limit:
            self.bodyTooLarge()
            return
        HTTPChannel.allHeadersReceived(self)

    def allContentReceived(self) -> None:
        """
        Run the request, unless it was rejected.
        """
        if not self._rejected:
            HTTPChannel.allContentReceived(self)

    def requestDone(self, request: Request) -> None:
        """
        A response is complete: on a kept-alive connection, the next byte
        starts the next header deadline.
        """
        self._awaitingRequest = bool(self.persistent)
        self.bytesOut += request.sentLength
        # Twisted private: whether the transport paused this channel (its
        # send buffer is full); verified on Twisted 26.10.
        if self._waitingForTransport:
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
            HTTPChannel.requestDone(self, request)
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

    def _respondToBadRequestAndDisconnect(self) -> None:
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
        (as twisted.web does), stop reading from the client, and start the
        send timeout.
        """
        HTTPChannel.pauseProducing(self)
        # Twisted private: the transport as a producer, and whether a request
        # is being answered; verified on Twisted 26.10.  HTTPChannel only
        # stops reading between requests: while one is answered it goes on
        # reading and (as it believes the transport paused already) buffers
        # every pipelined byte without limit.
        if self._handlingRequest:
            self._networkProducer.pauseProducing()
        self._sendTimer.paused()

    def resumeProducing(self) -> None:
        """
        The transport's send buffer drained: stop the send timeout, resume
        the response's producer and reading, and parse the pipelined
        requests held back meanwhile.
        """
        self._sendTimer.resumed()
        HTTPChannel.resumeProducing(self)
        # Twisted private: see pauseProducing; _dataBuffer holds what was read
        # while a request is answered, and HTTPChannel stops reading beyond
        # _optimisticEagerReadSize of it; verified on Twisted 26.10.
        if (
            self._handlingRequest
            and not self._waitingForTransport
            and sum(map(len, self._dataBuffer)) <= self._optimisticEagerReadSize
        ):
            self._networkProducer.resumeProducing()
        if self.paused and not self._waitingForTransport:
            self.paused = False
            if self._buffer and not self._rejected:
                self.dataReceived(b"")

    @property
    def backpressured(self) -> bool:
        """
        Whether the transport paused this channel because its send buffer
        is full.
        """
        # Twisted private: whether the transport paused this channel;
        # verified on Twisted 26.10.
        return bool(self._waitingForTransport)

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
            HTTPChannel.writeHeaders(self, version, code, reason, headers)
            return
        parts = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))  # type: ignore[union-attr]

    def getHost(self) -> IAddress:
        """
        The local address of the connection, asked of the transport once:
        twisted.web asks for it on every request, and each time cost a
        C{getsockname()} system call.
        """
        host = self._host
        if host is None:
            host = self._host = HTTPChannel.getHost(self)
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
            peer = self._peerAddress = HTTPChannel.getPeer(self)
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
        if self._waitingForTransport and self.timeOut is not None:
            # Twisted private (see pauseProducing): the send buffer is still
            # full, so the client is being answered, not idle.  Twisted's
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
        HTTPChannel.connectionLost(self, reason)
        self._idleDeadline = None
        if self._idleCall is not None:
            if self._idleCall.active():
                self._idleCall.cancel()
            self._idleCall = None
        self.factory.connectionClosed(self)

    def _checkPartialRequest(self) -> None:
        # A response that finished while the client's bytes were being
        # parsed can leave the start of the next request in the line buffer.
        if self._awaitingRequest and self._buffer and not self._rejected and not self.paused:
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
        if delay is not None and self._abortingCall is None:
            self._abortingCall = self.callLater(delay, self._abort)

    def _abort(self) -> None:
        self._abortingCall = None
        self.transport.abortConnection()  # type: ignore[union-attr]


class LimitedSite(Site):
    """
    A L{Site} that applies L{HTTPLimits}, counts into L{WebStats} and writes
    its access log (Combined Log Format) only when given a path.

    @ivar limits: the limits applied.
    @ivar stats: the counters updated.
    @ivar accessLog: the access log's path, or L{None} for none.
    """

    protocol = LimitedChannel  # type: ignore[assignment]
    displayTracebacks = False
    noisy = False
    #: Seconds between two warnings that the access log cannot be written.
    logWarningInterval = 60.0
    _log = Logger(observer=logs.observer)
    _logWarnedAt: float | None = None
    _logErrorsWarned = 0

    def __init__(
        self,
        resource: IResource,
        limits: HTTPLimits = HTTPLimits(),
        stats: WebStats | None = None,
        accessLog: str | None = None,
        reactor: Any = None,
    ) -> None:
        Site.__init__(
            self,
            resource,
            requestFactory=LimitedRequest,
            parsePOSTFormSubmission=False,
            logPath=accessLog or None,
            logFormatter=combinedLogFormat,
            timeout=limits.idleTimeout or None,
            reactor=reactor,
        )
        self.limits = limits
        self.stats = stats if stats is not None else WebStats()
        self.accessLog = accessLog or None
        self._perPeer: dict[str, int] = {}
        #: The open connections, oldest first (see L{services.net.connections}).
        self.channels: dict[Any, None] = {}
        self._refusing = False
        self._dateSecond = -1
        self._date = b""

    def httpDate(self) -> bytes:
        """
        The current time as an HTTP C{Date} header value, formatted at most
        once a second (of this site's reactor's clock).
        """
        now = self.reactor.seconds()
        second = int(now)
        if second != self._dateSecond:
            self._dateSecond = second
            self._date = datetimeToString(now)
        return self._date

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """
        Build a L{LimitedChannel}, or return L{None} (Twisted then closes the
        new socket at once) when a connection cap is reached.
        """
        host = peerKey(addr)
        limits = self.limits
        if limits.maxConnections and self.stats.current >= limits.maxConnections:
            self._refuse(
                "web: {limit} connections open, the max_connections limit: "
                "closing new connections until some close",
                limits.maxConnections,
                host,
            )
            return None
        perPeer = limits.maxConnectionsPerPeer
        if perPeer and host is not None and self._perPeer.get(host, 0) >= perPeer:
            self._refuse(
                "web: {peer} has {limit} connections open, the max_connections_per_peer "
                "limit: closing its new connections until some close",
                perPeer,
                host,
            )
            return None
        self._refusing = False
        channel = Site.buildProtocol(self, addr)
        channel.peerHost = host
        channel.peer = host if host is not None else describeAddress(addr)
        return channel

    def _refuse(self, message: str, limit: int, host: str | None) -> None:
        self.stats.refused += 1
        if not self._refusing:
            self._refusing = True
            self._log.warn(message, limit=limit, peer=host)

    def connectionOpened(self, channel: LimitedChannel) -> None:
        """
        Count a new connection.
        """
        self.stats.current += 1
        self.stats.accepted += 1
        self.channels[channel] = None
        host = channel.peerHost
        if host is not None:
            self._perPeer[host] = self._perPeer.get(host, 0) + 1
        if logs.isEnabledFor(LogLevel.debug):
            self._log.debug("web: {peer} connected", peer=channel.peer)

    def connectionClosed(self, channel: LimitedChannel) -> None:
        """
        Uncount a closed connection.
        """
        self.stats.current -= 1
        self.channels.pop(channel, None)
        host = channel.peerHost
        if host is not None:
            left = self._perPeer.get(host, 1) - 1
            if left > 0:
                self._perPeer[host] = left
            else:
                self._perPeer.pop(host, None)
        if logs.isEnabledFor(LogLevel.debug):
            self._log.debug("web: {peer} disconnected", peer=channel.peer)

    def log(self, request: Any) -> None:
        """
        Count an answered request and, when there is an access log, write
        its Combined Log Format line.
        """
        self._count(request)
        if self.accessLog is not None:
            self._writeLog(request)

    def logRejected(self, request: RejectedRequest) -> None:
        """
        Count and log a request that a channel answered itself (400, 408, 413).
        """
        self._count(request)
        if self.accessLog is not None:
            self._writeLog(request)

    def _writeLog(self, request: Any) -> None:
        # Site.log lets a failed write (ENOSPC) escape from Request.finish,
        # which then never completes the response: the client got nothing
        # and the log two tracebacks per request.
        # Twisted private: Site's open log file, line formatter and cached
        # time stamp; verified on Twisted 26.10.
        logFile = self._logFile
        if logFile is None:
            return
        try:
            logFile.write(self._logFormatter(self._logDateTime, request) + "\n")
        except (OSError, ValueError) as e:  # a full disk, an I/O error, a closed file
            self._logFailed(e)

    def _logFailed(self, error: Exception) -> None:
        stats = self.stats
        stats.accessLogErrors += 1
        now = self.reactor.seconds()
        warnedAt = self._logWarnedAt
        if warnedAt is not None and now - warnedAt < self.logWarningInterval:
            return
        reason = getattr(error, "strerror", None) or str(error)
        if warnedAt is None:
            self._log.warn(
                "web: cannot write the access log {path} ({reason}): requests are still "
                "answered, their lines are lost (counted as accessLogErrors)",
                path=self.accessLog,
                reason=reason,
            )
        else:
            self._log.warn(
                "web: cannot write the access log {path} ({reason}): {count} lines lost "
                "in the last {seconds:.0f} s",
                path=self.accessLog,
                reason=reason,
                count=stats.accessLogErrors - self._logErrorsWarned,
                seconds=now - warnedAt,
            )
        self._logWarnedAt = now
        self._logErrorsWarned = stats.accessLogErrors

    def _count(self, request: Any) -> None:
        stats = self.stats
        stats.requests += 1
        stats.bytesOut += request.sentLength
        kind = request.code // 100
        if kind == 2:
            stats.responses2xx += 1
        elif kind == 3:
            stats.responses3xx += 1
        elif kind == 4:
            stats.responses4xx += 1
        elif kind == 5:
            stats.responses5xx += 1

    def _openLogFile(self, path: Any) -> Any:
        # Not Site's LogFile: several worker processes append to one file.
        try:
            return AccessLogFile(path)
        except OSError as e:
            raise ValueError(f"cannot open the access log {path}: {e.strerror or e}") from None
