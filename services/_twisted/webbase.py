# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
twisted.web's private hooks and state, under public names: the base classes
the limited channel (L{services.web._channel}) and site
(L{services.web._site}) extend, and the functions the request, the static
files and their sendfile producer (which flushes the socket transport's
write buffer itself, L{services._twisted.transports} registers those names)
call.

Each private name used here is registered in L{services._twisted.web}, with
what it is for and the releases it is verified on.  The registry is a module
of its own because the fast-path checks read it at start-up, when a daemon
without a web service must not import twisted.web; this module is imported
only with the web service.

A base class overrides a private hook and calls a public-named method the
subclass implements (L{LimitedChannelBase._respondToBadRequestAndDisconnect}
calls L{LimitedChannelBase.respondToBadRequest}), or reads private state in a
property of its own.  Nothing here adds work to a request that the code
reading Twisted's attributes in place did not do, but for one attribute
lookup through a property (an C{attrgetter}, no Python call) where the
state is read.

Why one module: the base channel's whole-head parser
(L{LimitedChannelBase.parseHeads}) and its hooks read and set the same
private parser state as the properties and hooks beside it; split, each
half would reach into the other's names of Twisted.
"""

from __future__ import annotations

import re
from operator import attrgetter
from typing import Any

from twisted.web.http import HTTPChannel, _parseRequestLine
from twisted.web.http_headers import Headers
from twisted.web.iweb import INonQueuedRequestFactory
from twisted.web.resource import _IEncodingResource
from twisted.web.server import Site

__all__ = [
    "IEncodingResource",
    "LimitedChannelBase",
    "LoggingSiteBase",
    "answerStar",
    "canonicalHeaderName",
    "hasQueuedBytes",
    "hasPlainAnswer",
    "rawHeaders",
    "sendQueuedWrites",
    "setContentHeaders",
    "setEncoder",
    "setStatInfo",
]

#: A folded header line (one that starts with a space or a tab).  A
#: pattern, not C{b"..." in head}: CPython's bytes test first tries its
#: argument as an integer and formats the TypeError it then clears.
_FOLDED = re.compile(rb"\r\n[ \t]")

#: twisted.web's interface of resources that encode (compress) their answer
#: (L{twisted.web.resource.EncodingResourceWrapper}), which Request.process
#: asks for an encoder.
IEncodingResource = _IEncodingResource


def rawHeaders(headers: Any) -> dict[bytes, list[bytes]]:
    """
    The dict that a L{Headers} keeps its headers in: canonical name (as
    L{Headers} capitalizes it, C{b"Content-Length"}) to the list of values.
    Reading it, or setting a canonical name to a fresh list of sanitized
    values, is what L{Headers.getRawHeaders} and L{Headers.setRawHeaders}
    do, without canonicalizing and sanitizing again what the caller knows
    to be canonical and clean.
    """
    raw: dict[bytes, list[bytes]] = headers._rawHeaders
    return raw


def canonicalHeaderName(name: bytes) -> bytes:
    """
    The name under which L{Headers} stores a header named C{name}
    (C{b"content-length"}: C{b"Content-Length"}).

    @raise InvalidHeaderName: when C{name} is not a token.
    """
    headers = Headers()
    headers.addRawHeader(name, b"")
    ((canonical, _),) = headers.getAllRawHeaders()
    return canonical


def hasPlainAnswer(request: Any) -> bool:
    """
    Whether C{request}'s answer goes out as its resource gave it: no
    encoder (gzip) transforms it, twisted.web is not rendering a GET for a
    HEAD, and the connection is not lost.
    """
    return not (request._encoder or request._inFakeHead or request._disconnected)


def answerStar(request: Any) -> None:
    """
    Answer C{OPTIONS *} as L{twisted.web.server.Request.process} does.
    """
    request._handleStar()


def setEncoder(request: Any, encoder: Any) -> None:
    """
    Encode C{request}'s response with C{encoder}, as Request.process does
    for a resource that provides L{IEncodingResource}.
    """
    request._encoder = encoder


def setContentHeaders(file: Any, request: Any, size: int) -> None:
    """
    Set the content type, encoding and length of a C{static.File} answer of
    C{size} bytes, as C{File} sets them.
    """
    file._setContentHeaders(request, size)


def setStatInfo(path: Any, info: Any) -> None:
    """
    Give a C{FilePath} the C{stat()} result its caller already has, so that
    it does not stat the file again.
    """
    path._statinfo = info


def hasQueuedBytes(transport: Any) -> bool:
    """
    Whether a socket transport (a C{FileDescriptor}) holds bytes it has not
    handed to the kernel yet, the small writes not joined into its
    C{dataBuffer} included.
    """
    return bool(transport.dataBuffer or transport._tempDataLen)


def sendQueuedWrites(transport: Any, flags: int) -> None:
    """
    Send the small writes a socket transport queued (and nothing else is
    queued) with one C{send(data, flags)}; whatever the kernel does not take
    stays queued in the transport, which sends it as usual.  Nothing is
    sent while the transport closes, nor on an error (the transport's own
    send reports it).
    """
    if (
        transport.dataBuffer
        or not transport._tempDataLen
        or not transport.connected
        or transport.disconnecting
        or transport._writeDisconnecting
    ):
        return
    queued = transport._tempDataBuffer
    data = queued[0] if len(queued) == 1 else b"".join(queued)
    try:
        sent = transport.socket.send(data, flags)
    except OSError:
        return
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    if sent < len(data):
        # The rest goes out from the transport's buffer; the transport is
        # registered for writability since the data was written.
        transport.dataBuffer = data
        transport.offset = sent
    else:
        transport.stopWriting()


class LimitedChannelBase(HTTPChannel):
    """
    An L{HTTPChannel} whose private hooks and state its subclass reaches by
    public names, and which stops reading from the client while its
    transport is paused, even in the middle of a request.
    """

    def _respondToBadRequestAndDisconnect(self) -> None:
        # The hook twisted.web calls for a malformed request (and for too
        # many or too long headers).
        self.respondToBadRequest()

    def respondToBadRequest(self) -> None:
        """
        Answer 400 and close, as twisted.web does; override to answer
        otherwise.
        """
        HTTPChannel._respondToBadRequestAndDisconnect(self)

    #: Set by the subclass once it refused a request: nothing more is
    #: parsed.
    rejected = False

    def betweenRequests(self) -> bool:
        """
        Whether the next byte received starts a new request line: no
        request is being read or answered, nothing is held unparsed, the
        connection stays open for more, and parsing is neither paused nor
        in progress.
        """
        return bool(
            self.line_mode
            and self.persistent
            and not self._handlingRequest
            and not self._receivedHeaderSize
            and not self._buffer
            and not self._busyReceiving
            and not self.paused
        )

    def headStarted(self) -> None:
        """
        L{parseHeads} starts parsing a request head after another request
        in the same bytes; override to time it.
        """

    def parseHeads(self, data: bytes) -> bytes | None:
        """
        Parse the request heads complete in C{data} (when L{betweenRequests})
        whole: each head is split into lines at once, and each line goes
        where C{HTTPChannel.lineReceived} would send it (the request line
        as it handles it, then C{headerReceived}, C{allHeadersReceived} and
        C{allContentReceived}), in the same order, without a call of the
        line parser and of C{lineReceived} per line.

        Stops at whatever the line parser must see: a head not complete yet
        or longer than C{totalHeadersSize}, folded header lines, a blank
        line before the request line, a body, an answer not finished at
        once, a pause, a connection not kept alive.

        @return: the bytes from there, for C{dataReceived}; L{None} when
            nothing more is to be parsed (a rejected request; a closing
            connection, whose rest the line parser keeps, as it does).
        """
        limit = min(self.totalHeadersSize, self.MAX_LENGTH)
        first = True
        # Bytes received meanwhile are queued, as the line parser does.
        self._busyReceiving = True
        try:
            while (
                data
                and self.line_mode
                and self.persistent
                and not self._handlingRequest
                and not self.paused
            ):
                end = data.find(b"\r\n\r\n", 0, limit + 4)
                if end <= 0 or data.startswith(b"\r\n"):
                    break
                head = data[:end]
                if _FOLDED.search(head) is not None:
                    break
                if not first:
                    self.headStarted()
                first = False
                data = data[end + 4 :]
                lines = head.split(b"\r\n")
                factory = self.requestFactory
                if INonQueuedRequestFactory.providedBy(factory):
                    request = factory(self)
                else:
                    request = factory(self, len(self.requests))
                self.requests.append(request)
                self._receivedHeaderSize = len(head) - 2 * (len(lines) - 1)
                try:
                    self._command, self._path, self._version = _parseRequestLine(lines[0])
                except ValueError:
                    self._respondToBadRequestAndDisconnect()
                    return None
                for line in lines[1:]:
                    self.headerReceived(line)
                    if self.rejected:
                        return None
                self.allHeadersReceived()
                if self.rejected:
                    return None
                if self.length != 0:
                    self.setRawMode()
                    break
                self.allContentReceived()
                if self._buffer:  # received while the request was answered
                    data += self._buffer
                    self._buffer = b""
                if self.rejected:
                    return None
                if self.transport.disconnecting:  # type: ignore[union-attr]
                    self._buffer += data
                    return None
        finally:
            self._busyReceiving = False
        return data

    # The properties read on every request are attrgetters: no Python call.

    unparsedBytes = property(
        attrgetter("_buffer"),
        doc="""
        The bytes received that the line parser holds, not parsed yet (while
        the channel is paused, or the start of the next request); empty
        when there are none.
        """,
    )

    receivedHeaderCount = property(
        attrgetter("_receivedHeaderCount"),
        lambda self, count: setattr(self, "_receivedHeaderCount", count),
        doc="""
        The headers of the request being parsed so far, which C{maxHeaders}
        limits (reset for each request).
        """,
    )

    requestVersion = property(
        attrgetter("_version"),
        doc="""
        The HTTP version of the request line being parsed, until the
        request is complete (set once a request line was parsed).
        """,
    )

    def requestLine(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """
        The method, path and version of the request line received so far
        (each L{None} when no request line was received).
        """
        return (
            getattr(self, "_command", None),
            getattr(self, "_path", None),
            getattr(self, "_version", None),
        )

    backpressured = property(
        attrgetter("_waitingForTransport"),
        doc="""
        Whether the transport paused this channel because its send buffer
        is full.
        """,
    )

    @property
    def networkProducer(self) -> Any:
        """
        The transport as the producer this channel registered with it.
        """
        return self._networkProducer

    def abortAfter(self, delay: float) -> None:
        """
        Abort the connection in C{delay} seconds, unless an abort is pending
        already (which Twisted's own close then finds, and adds none).
        """
        if self._abortingCall is None:
            self._abortingCall = self.callLater(delay, self._abortNow)

    def _abortNow(self) -> None:
        self._abortingCall = None
        self.transport.abortConnection()  # type: ignore[union-attr]

    def pauseProducing(self) -> None:
        """
        The transport's send buffer is full: pause as twisted.web does, and
        stop reading from the client even while a request is answered
        (HTTPChannel only stops between requests: while one is answered it
        goes on reading and buffers every pipelined byte without limit).
        """
        HTTPChannel.pauseProducing(self)
        if self._handlingRequest:
            self._networkProducer.pauseProducing()

    def resumeProducing(self) -> None:
        """
        The transport's send buffer drained: resume as twisted.web does, and
        read again, unless HTTPChannel holds as much as it reads ahead.
        """
        HTTPChannel.resumeProducing(self)
        if (
            self._handlingRequest
            and not self._waitingForTransport
            and sum(map(len, self._dataBuffer)) <= self._optimisticEagerReadSize
        ):
            self._networkProducer.resumeProducing()


class LoggingSiteBase(Site):
    """
    A L{Site} whose access log file its subclass opens (L{openLogFile}) and
    writes (L{writeLogLine}) by public names.
    """

    def _openLogFile(self, path: Any) -> Any:
        # The hook HTTPFactory.startFactory opens logPath with.
        return self.openLogFile(path)

    def openLogFile(self, path: Any) -> Any:
        """
        Open the access log at C{path} (called when the site starts);
        override to open another kind of file, or a stream.
        """
        return Site._openLogFile(self, path)

    def writeLogLine(self, request: Any) -> None:
        """
        Write C{request}'s access log line, as the site's formatter makes it
        with its cached time stamp, to the open log, if any.  Errors of the
        write are the caller's.
        """
        logFile = self._logFile
        if logFile is not None:
            logFile.write(self._logFormatter(self._logDateTime, request) + "\n")
