# -*- test-case-name: tests.unit.web.test_sendfile -*-
"""
Static file bodies sent by the kernel with C{os.sendfile}.

L{twisted.web.static.File} reads each 64 KiB of a file into Python and
writes it through the transport, which copies it into the socket on a later
reactor turn.  L{SendfileProducer} has the kernel copy the file straight
into the socket instead, whenever that cannot change what the client sees:

  - only on a plain TCP or UNIX connection (L{canSendfile}); a TLS or
    PROXY-protocol connection, or any other transport, gets Twisted's own
    producer;
  - only when the transport has nothing queued, so the body never overtakes
    the status line and headers or anything else written before it (the
    producer first hands what is queued to the kernel, as the transport
    would on its next writability event);
  - when the socket is full, one piece a little larger than the transport's
    buffer goes through the normal C{request.write}: the transport then
    pauses this producer exactly as it would pause Twisted's, and resumes it
    when the client has read, so a slow client holds back the server as
    usual (backpressure) and no other bytes are ever in flight out of order;
  - it sends exactly the promised C{Content-Length}: a file that shrank
    meanwhile aborts the connection instead of sending a short body, and so
    does any other error while producing (a read that fails), with one log
    line: the client never waits for bytes that will not come;
  - the status line and headers share a packet with the start of the body:
    when nothing else is queued, the producer sends them itself with
    C{MSG_MORE}, so that the kernel holds them for the C{sendfile} that
    follows (what nginx's C{tcp_nopush} gets with C{TCP_CORK}); C{sendfile}
    is asked for the whole rest of the file, and the kernel sends what the
    socket takes in one call.  No C{TCP_CORK}: besides two C{setsockopt}
    calls per response, uncorking had the server push the whole body at
    once, which measured about twice the server CPU per 1 MiB response on
    loopback (430 instead of 230 us).

The producer speaks Twisted's L{twisted.web.static.StaticProducer} protocol
(C{start}, C{stopProducing}), so a C{File.makeProducer} can return it.
"""

from __future__ import annotations

import os
import socket
from typing import IO, Any

from twisted.internet import interfaces, tcp
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from zope.interface import implementer

from services import logs
from services._twisted import fastPath
from services._twisted.webbase import hasQueuedBytes, sendQueuedWrites

__all__ = ["SendfileProducer", "abortResponse", "canSendfile"]

_log = Logger(observer=logs.observer)

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    _SOCKETS: tuple[type, ...] = (tcp.Server,)
else:
    _SOCKETS = (tcp.Server, unix.Server)


#: Linux's flag for "more bytes follow": hold a partial packet for them.
_MSG_MORE = getattr(socket, "MSG_MORE", 0)


def canSendfile(request: IRequest) -> bool:
    """
    Whether C{request} arrived on a plain socket connection (Twisted's TCP or
    UNIX server transport, without TLS) that L{SendfileProducer} can write
    to, on a system with C{os.sendfile}, with a Twisted that has the
    transport internals it flushes (L{services._twisted.fastPath}).
    """
    channel = getattr(request, "channel", None)
    transport = getattr(channel, "transport", None)
    return (
        hasattr(os, "sendfile")
        and isinstance(transport, _SOCKETS)
        and not getattr(transport, "TLS", False)
        and fastPath("sendfile")
    )


def abortResponse(request: Any, error: BaseException) -> None:
    """
    A body could not be produced to the end (a failed read, a file that
    shrank): say so in one log line and abort the connection, so that the
    client sees it end instead of waiting for the promised bytes.
    """
    _log.error(
        "web: cannot send {uri} to {client}: {error}; connection aborted",
        uri=getattr(request, "uri", b"?").decode("ascii", "replace"),
        client=getattr(request.getClientAddress(), "host", "?"),
        error=getattr(error, "strerror", None) or error,
    )
    request.channel.transport.abortConnection()


#: Whether a transport holds bytes it has not handed to the kernel yet.
_queued = hasQueuedBytes


@implementer(interfaces.IPushProducer)
class SendfileProducer:
    """
    Send C{size} bytes of an open file as a response body, with
    C{os.sendfile} whenever the connection is idle.

    @ivar request: the request being answered; L{None} once stopped.
    @ivar fileObject: the open file (a file object or a descriptor), which
        the producer closes when it stops; L{None} once stopped.
    @ivar offset: how many bytes of the file were sent so far.
    @ivar size: the length of the body (the C{Content-Length} sent).
    """

    def __init__(self, request: IRequest, fileObject: IO[bytes] | int, size: int) -> None:
        self.request: Any = request
        self.fileObject: IO[bytes] | int | None = fileObject
        self._fd = fileObject if isinstance(fileObject, int) else fileObject.fileno()
        self.offset = 0
        self.size = size
        self._paused = False
        self._direct = True

    def start(self) -> None:
        """
        Send the status line and headers, then as much of the body as the
        socket takes now.
        """
        request = self.request
        request.registerProducer(self, True)
        transport = request.channel.transport
        idle = not _queued(transport)
        request.write(b"")
        if getattr(request, "chunked", False):
            self._direct = False  # the framing is Twisted's: let it write every piece
        elif idle and self.size and self.request is not None:
            # Send what the transport queued (the status line and headers,
            # written on an idle connection) with MSG_MORE, so that the kernel
            # sends it with the first bytes of the body.
            sendQueuedWrites(transport, self._more(transport))
        self.resumeProducing()

    @staticmethod
    def _more(transport: Any) -> int:
        """
        The flags for a send that more bytes follow at once: C{MSG_MORE} on
        a TCP socket where the system has it, else none.
        """
        if getattr(transport.socket, "family", None) in (socket.AF_INET, socket.AF_INET6):
            return _MSG_MORE
        return 0

    def resumeProducing(self) -> None:
        """
        Send more of the body: with C{os.sendfile} while the connection is
        idle, else one piece through C{request.write}.  Any error aborts
        the connection.
        """
        try:
            self._produce()
        except Exception as e:  # whatever fails, the connection must not hang
            request = self.request
            if request is None:
                raise
            self.stopProducing()
            abortResponse(request, e)

    def _produce(self) -> None:
        self._paused = False
        while self.request is not None and not self._paused and self.offset < self.size:
            transport = self.request.channel.transport
            if not transport.connected:
                self.stopProducing()
                return
            if self._direct and _queued(transport) and not transport.disconnecting:
                # Bytes written before the body (headers the kernel did not
                # all take): hand them to the kernel now, as the reactor
                # would on the next writability event (errors stay for the
                # transport to report).
                transport.doWrite()
            if not self._direct or _queued(transport):
                self._writePiece(transport)
                continue
            remaining = self.size - self.offset
            try:
                sent = os.sendfile(transport.socket.fileno(), self._fd, self.offset, remaining)
            except (BlockingIOError, InterruptedError):
                self._writePiece(transport)
                continue
            except OSError:
                # The connection is broken: let the transport find out and
                # report it; the request's finish notification stops us.
                transport.loseConnection()
                self._paused = True
                return
            if sent == 0:
                self._fileShrank(transport)
                return
            self.offset += sent
            self.request.sentLength += sent
            if sent < remaining and self.request is not None:
                # The socket is full: the next piece goes through the
                # transport, which pauses us until the client has read.
                self._writePiece(transport)
        if self.request is not None and self.offset >= self.size:
            request = self.request
            request.unregisterProducer()
            request.finish()
            self.stopProducing()

    def _writePiece(self, transport: Any) -> None:
        """
        Write the next piece through the transport, large enough to fill its
        buffer, so that it pauses us until the client reads.
        """
        length = min(transport.bufferSize + 1, self.size - self.offset)
        data = os.pread(self._fd, length, self.offset)
        if not data:
            self._fileShrank(transport)
            return
        self.offset += len(data)
        self.request.write(data)

    def _fileShrank(self, transport: Any) -> None:
        """
        The file ended before C{size} bytes: the promised length cannot be
        kept, so the connection is aborted.
        """
        self.stopProducing()
        transport.abortConnection()

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: wait for L{resumeProducing}.
        """
        self._paused = True

    def stopProducing(self) -> None:
        """
        Stop for good and close the file.
        """
        fileObject, self.fileObject = self.fileObject, None
        self.request = None
        if isinstance(fileObject, int):
            os.close(fileObject)
        elif fileObject is not None:
            fileObject.close()
