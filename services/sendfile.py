# -*- test-case-name: tests.test_sendfile -*-
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
    meanwhile aborts the connection instead of sending a short body;
  - the socket is corked (C{TCP_CORK}) from the headers to the end of the
    body, so that the headers share a packet with the body, as nginx's
    C{tcp_nopush} does; it is uncorked when the body is done or stopped.

The producer speaks Twisted's L{twisted.web.static.StaticProducer} protocol
(C{start}, C{stopProducing}), so a C{File.makeProducer} can return it.
"""

from __future__ import annotations

import os
import socket
from typing import IO, Any

from twisted.internet import interfaces, tcp
from twisted.web.iweb import IRequest
from zope.interface import implementer

__all__ = ["SendfileProducer", "canSendfile"]

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    _SOCKETS: tuple[type, ...] = (tcp.Server,)
else:
    _SOCKETS = (tcp.Server, unix.Server)


def canSendfile(request: IRequest) -> bool:
    """
    Whether C{request} arrived on a plain socket connection (Twisted's TCP or
    UNIX server transport, without TLS) that L{SendfileProducer} can write
    to, on a system with C{os.sendfile}.
    """
    channel = getattr(request, "channel", None)
    transport = getattr(channel, "transport", None)
    return (
        hasattr(os, "sendfile")
        and isinstance(transport, _SOCKETS)
        and not getattr(transport, "TLS", False)
    )


def _queued(transport: Any) -> bool:
    """
    Whether C{transport} holds bytes it has not handed to the kernel yet.
    """
    return bool(transport.dataBuffer or transport._tempDataLen)


@implementer(interfaces.IPushProducer)
class SendfileProducer:
    """
    Send C{size} bytes of an open file as a response body, with
    C{os.sendfile} whenever the connection is idle.

    @ivar request: the request being answered; L{None} once stopped.
    @ivar offset: how many bytes of the file were sent so far.
    @ivar size: the length of the body (the C{Content-Length} sent).
    """

    #: Bytes per call to C{os.sendfile}.
    chunkSize = 1 << 20

    def __init__(self, request: IRequest, fileObject: IO[bytes], size: int) -> None:
        self.request: Any = request
        self.fileObject: IO[bytes] | None = fileObject
        self.offset = 0
        self.size = size
        self._paused = False
        self._direct = True
        self._socket: Any = None

    def start(self) -> None:
        """
        Send the status line and headers, then as much of the body as the
        socket takes now.
        """
        self.request.registerProducer(self, True)
        self._socket = getattr(self.request.channel.transport, "socket", None)
        self._cork(True)
        self.request.write(b"")
        if self.request is not None and getattr(self.request, "chunked", False):
            self._direct = False  # the framing is Twisted's: let it write every piece
        self.resumeProducing()

    def resumeProducing(self) -> None:
        """
        Send more of the body: with C{os.sendfile} while the connection is
        idle, else one piece through C{request.write}.
        """
        self._paused = False
        while self.request is not None and not self._paused and self.offset < self.size:
            transport = self.request.channel.transport
            if not transport.connected:
                self.stopProducing()
                return
            if self._direct and _queued(transport) and not transport.disconnecting:
                # Usually just the status line and headers: hand them to the
                # kernel now, as the reactor would on the next writability
                # event (errors stay for the transport to report).
                transport.doWrite()
            if not self._direct or _queued(transport):
                self._writePiece(transport)
                continue
            try:
                sent = os.sendfile(
                    transport.socket.fileno(),
                    self.fileObject.fileno(),  # type: ignore[union-attr]
                    self.offset,
                    min(self.chunkSize, self.size - self.offset),
                )
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
        if self.request is not None and self.offset >= self.size:
            request = self.request
            request.unregisterProducer()
            request.finish()
            self.stopProducing()

    def _cork(self, on: bool) -> None:
        """
        Set or clear C{TCP_CORK} (Linux; a no-op where it is missing).
        """
        if self._socket is None:
            return
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))
        except (OSError, AttributeError):  # closed socket, or no TCP_CORK here
            pass

    def _writePiece(self, transport: Any) -> None:
        """
        Write the next piece through the transport, large enough to fill its
        buffer, so that it pauses us until the client reads.
        """
        length = min(transport.bufferSize + 1, self.size - self.offset)
        data = os.pread(self.fileObject.fileno(), length, self.offset)  # type: ignore[union-attr]
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
        if self.fileObject is not None:
            self.fileObject.close()
            self._cork(False)
        self.fileObject = None
        self.request = None
