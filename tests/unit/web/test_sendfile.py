"""
Tests for L{services.web._sendfile}: static bodies sent with os.sendfile over a
real twisted.web channel on a real TCP transport
on loopback, driven by a MemoryReactorClock: the tests call C{doWrite} where
a reactor would.
"""

from __future__ import annotations

import errno
import os
import socket
import warnings
from pathlib import Path
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http
from twisted.web.test.requesthelper import DummyRequest

from services.nsepoll import _reactor as nsreactor
from services.web._sendfile import SendfileProducer, canSendfile

from tests.support import Connection, buildReactor, response

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from twisted.web.static import File


class SendfileFile(File):
    """
    static.File with the sendfile producer for whole-file GETs, as the web
    service's StaticFile uses it.
    """

    def makeProducer(self, request: Any, fileForReading: Any) -> Any:
        if request.getHeader(b"range") is None and canSendfile(request):
            self._setContentHeaders(request)
            request.setResponseCode(http.OK)
            return SendfileProducer(request, fileForReading, self.getFileSize())
        return File.makeProducer(self, request, fileForReading)


class SendfileTests(SynchronousTestCase):
    """
    Whole files go out with sendfile after the headers, byte for byte.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir(parents=True)
        self.content = os.urandom(3 * 1024 * 1024 + 17)
        (directory / "big.bin").write_bytes(self.content)
        (directory / "small.txt").write_bytes(b"small file\n")
        self.root = SendfileFile(str(directory))
        self.sendfileCalls = 0
        real = os.sendfile

        def counting(*args: Any) -> int:
            self.sendfileCalls += 1
            return real(*args)

        self.patch(os, "sendfile", counting)

    def test_wholeFileAfterHeaders(self) -> None:
        """
        A GET of a 3 MiB file gets the headers then every byte, in order,
        with the body sent by sendfile, and the request's sentLength counts
        it (the access log reports it); the socket is never left corked
        (the headers go out with C{MSG_MORE} instead of C{TCP_CORK}).
        """
        connection = Connection(self, self.root)
        requests = []
        connection.channel.requestFactory = _recording(connection.channel.requestFactory, requests)
        connection.request(b"/big.bin")
        raw = connection.pump()
        status, headers, body = response(raw)
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(int(headers[b"content-length"]), len(self.content))
        self.assertEqual(body, self.content)
        self.assertGreater(self.sendfileCalls, 0)
        self.assertEqual(requests[0].sentLength, len(self.content))
        self.assertTrue(requests[0].finished)
        cork = connection.transport.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)
        self.assertEqual(cork, 0, "the socket was left corked")

    def test_keepAliveThenNextRequest(self) -> None:
        """
        After a sendfile body, the same connection serves the next request.
        """
        connection = Connection(self, self.root)
        connection.request(b"/small.txt")
        first = connection.pump()
        self.assertEqual(response(first)[2], b"small file\n")
        connection.request(b"/small.txt")
        second = connection.pump()
        self.assertEqual(response(second)[2], b"small file\n")

    def test_slowClientPausesProducer(self) -> None:
        """
        A client that does not read fills the socket; the rest goes through
        the transport, which pauses the producer with at most about one
        buffer queued; reading resumes it and the body completes intact.
        """
        connection = Connection(self, self.root)
        connection.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        connection.request(b"/big.bin")
        queued = connection.transport._tempDataLen + len(connection.transport.dataBuffer)
        self.assertLess(queued, 2 * connection.transport.bufferSize + 4096)
        self.assertIn(connection.transport, connection.reactor.getWriters())
        raw = connection.pump()
        self.assertEqual(response(raw)[2], self.content)

    def test_rangeUsesTwistedsProducer(self) -> None:
        """
        A Range request is served by Twisted's own producer.
        """
        connection = Connection(self, self.root)
        request = connection.http.requestFactory(connection.http, False)
        request.requestHeaders.setRawHeaders(b"range", [b"bytes=10-19"])
        child = self.root.getChild(b"big.bin", request)
        child.type, child.encoding = "application/octet-stream", None
        with open(child.path, "rb") as f:
            producer = child.makeProducer(request, f)
        self.assertNotIsInstance(producer, SendfileProducer)
        self.assertEqual(request.code, http.PARTIAL_CONTENT)

    def test_nsepollConnection(self) -> None:
        """
        On the nsepoll reactor's flushed connections the body follows the
        headers by sendfile too.
        """
        connection = Connection(self, self.root, nsreactor.Server, buildReactor(self))
        connection.request(b"/big.bin")
        raw = connection.pump()
        self.assertEqual(response(raw)[2], self.content)
        self.assertGreater(self.sendfileCalls, 0)

    def test_fileShrankAborts(self) -> None:
        """
        If the file is shorter than the Content-Length already sent, the
        connection is aborted rather than left hanging or mis-framed.
        """
        connection = Connection(self, self.root)
        empty = Path(self.mktemp())
        empty.write_bytes(b"")
        producer = SendfileProducer(_FakeRequest(connection), open(empty, "rb"), 100)
        aborted = []
        connection.transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
        producer.start()
        self.assertEqual(aborted, [True])
        self.assertIsNone(producer.fileObject)

    def test_readErrorAborts(self) -> None:
        """
        A read that fails while the body is sent (an I/O error) aborts the
        connection, closes the file and logs one error, instead of leaving
        the client waiting for the rest.
        """
        connection = Connection(self, self.root)
        path = Path(self.mktemp())
        path.write_bytes(b"x" * 100)

        def full(*args: Any) -> int:
            raise BlockingIOError()

        def failing(*args: Any) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

        self.patch(os, "sendfile", full)
        self.patch(os, "pread", failing)
        producer = SendfileProducer(_FakeRequest(connection), open(path, "rb"), 100)
        aborted = []
        connection.transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
        with capturedLogs() as events:
            producer.start()
        self.assertEqual(aborted, [True])
        self.assertIsNone(producer.fileObject)
        self.assertEqual([e["error"] for e in events], ["Input/output error"])


class CanSendfileTests(SynchronousTestCase):
    """
    Only plain socket connections qualify.
    """

    def test_transports(self) -> None:
        """
        TCP and nsepoll connections qualify; one with TLS started, a
        StringTransport (or any wrapper) and a request without a channel do
        not.
        """
        tcpConnection = Connection(self, File("."))
        self.assertTrue(canSendfile(_FakeRequest(tcpConnection)))
        nsepoll = Connection(self, File("."), nsreactor.Server, buildReactor(self))
        self.assertTrue(canSendfile(_FakeRequest(nsepoll)))
        tcpConnection.transport.TLS = True
        self.assertFalse(canSendfile(_FakeRequest(tcpConnection)))
        request = DummyRequest([b""])
        self.assertFalse(canSendfile(request))
        request.channel = type("Channel", (), {"transport": StringTransport()})()
        self.assertFalse(canSendfile(request))


class _FakeRequest:
    """
    Just enough of a request for the producer: a channel with a transport,
    and the calls the producer makes.
    """

    def __init__(self, connection: Connection) -> None:
        self.channel = connection.http
        self.sentLength = 0
        self.chunked = False

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def finish(self) -> None:
        pass

    def getClientAddress(self) -> Any:
        return self.channel.transport.getPeer()


def _recording(factory: Any, requests: list[Any]) -> Any:
    """
    A request factory that keeps the requests it makes.
    """

    def make(*args: Any, **kwargs: Any) -> Any:
        request = factory(*args, **kwargs)
        requests.append(request)
        return request

    return make
