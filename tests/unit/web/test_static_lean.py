"""
Tests for the lean path of L{services.web._static}: L{RegularFile} answers a
plain whole-file GET on a real TCP connection with one C{open} and one
C{fstat}, sends the headers with C{MSG_MORE} and the body with sendfile, and
hands every other request to the full L{StaticFile}.  A real twisted.web
channel on a real loopback TCP transport, driven by a MemoryReactorClock
(see L{tests.unit.web.test_sendfile}).
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import datetimeToString
from twisted.web.resource import Resource

from services.nsepoll import _reactor as nsreactor
from services.web import StaticFile
from services.web._regularfile import RegularFile, entityTag
from services.web._sendfile import SendfileProducer

from tests.support import Connection, RecordingSocket, buildReactor, response, tcpPair


class RecordingConnection(Connection):
    """
    A L{Connection} whose transport's socket is a L{RecordingSocket}.
    """

    def __init__(self, test: SynchronousTestCase, root: Any, limit: int | None = None,
                 cls: type = tcp.Server, reactor: Any = None) -> None:
        ours, self.peer = tcpPair()
        test.addCleanup(self.peer.close)
        test.addCleanup(ours.close)
        self.socket = RecordingSocket(ours, limit)
        self.reactor = reactor if reactor is not None else MemoryReactorClock()
        from twisted.web.server import Site

        site = Site(root, reactor=self.reactor)
        site.log = lambda request: None  # type: ignore[method-assign]
        self.channel = site.buildProtocol(None)
        self.transport = cls(self.socket, self.channel, ("127.0.0.1", 4321), None, 1, self.reactor)
        self.channel.makeConnection(self.transport)
        self.http = self.channel._channel


class LeanTestCase(SynchronousTestCase):
    """
    A served directory with a 1 MiB + 7 byte file, a text file, a gzip
    file, a subdirectory and a file outside the root.
    """

    def setUp(self) -> None:
        base = Path(os.path.abspath(self.mktemp()))
        self.www = base / "www"
        (self.www / "sub").mkdir(parents=True)
        self.content = os.urandom((1 << 20) + 7)
        (self.www / "big.bin").write_bytes(self.content)
        (self.www / "small.txt").write_bytes(b"small file\n")
        (self.www / "page.html.gz").write_bytes(b"\x1f\x8b not really gzip")
        (self.www / "sub" / "a.txt").write_bytes(b"a\n")
        (base / "secret.txt").write_bytes(b"secret\n")
        self.base = base
        self.static = StaticFile(str(self.www))
        self.root = Resource()
        self.root.putChild(b"static", self.static)

    def fetch(self, connection: Connection, path: bytes,
              headers: bytes = b"") -> tuple[bytes, dict[bytes, bytes], bytes]:
        connection.request(path, headers)
        return response(connection.pump())

    def expectedHeaders(self, name: str) -> dict[bytes, bytes]:
        info = os.stat(self.www / name)
        return {  # as L{response} gives them: lower case
            b"etag": entityTag(info.st_size, info.st_mtime),
            b"last-modified": datetimeToString(math.ceil(info.st_mtime)).lower(),
            b"content-length": b"%d" % (info.st_size,),
            b"accept-ranges": b"bytes",
        }


class RegularFileTests(LeanTestCase):
    """
    What L{StaticFile.getChild} returns and what L{RegularFile} sends.
    """

    def test_getChild(self) -> None:
        """
        A plain regular file is a L{RegularFile}; a directory a
        L{StaticFile}; a missing name or a file's child a 404; a symbolic
        link takes the full resolution (a L{StaticFile}).
        """
        os.symlink("small.txt", self.www / "link.txt")
        channel = Connection(self, self.root).http
        request = channel.requestFactory(channel, False)
        self.assertIsInstance(self.static.getChild(b"big.bin", request), RegularFile)
        self.assertIsInstance(self.static.getChild(b"sub", request), StaticFile)
        self.assertIsInstance(self.static.getChild(b"link.txt", request), StaticFile)
        self.assertIs(self.static.getChild(b"missing", request), self.static.childNotFound)
        child = self.static.getChild(b"big.bin", request)
        self.assertIs(child.getChildWithDefault(b"x", request), self.static.childNotFound)
        self.assertIs(child.getChildWithDefault(b"", request), self.static.childNotFound)
        with self.assertRaises(NotImplementedError):
            child.putChild(b"x", Resource())

    def test_wholeFile(self) -> None:
        """
        A GET of a 1 MiB + 7 byte file gets every byte and the headers the
        full path sends (ETag, Last-Modified, Content-Length, Accept-Ranges,
        Content-Type).
        """
        connection = Connection(self, self.root)
        status, headers, body = self.fetch(connection, b"/static/big.bin")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(body, self.content)
        for name, value in self.expectedHeaders("big.bin").items():
            self.assertEqual(headers[name], value, name)
        self.assertEqual(headers[b"content-type"], b"application/octet-stream")
        status, headers, body = self.fetch(connection, b"/static/small.txt")
        self.assertEqual((headers[b"content-type"], body), (b"text/plain", b"small file\n"))

    def test_contentEncoding(self) -> None:
        """
        A C{.gz} file is sent with the type of the name without C{.gz} and
        C{Content-Encoding: gzip}, as L{twisted.web.static.File} sends it.
        """
        status, headers, _ = self.fetch(Connection(self, self.root), b"/static/page.html.gz")
        self.assertEqual(headers[b"content-type"], b"text/html")
        self.assertEqual(headers[b"content-encoding"], b"gzip")

    def test_fewSystemCalls(self) -> None:
        """
        The file is checked with one C{lstat()}, opened once (without
        following links and without blocking) and C{fstat()}ed once; it is
        not C{stat()}ed by path, and the descriptor is closed afterwards.
        """
        calls: dict[str, list[Any]] = {"lstat": [], "stat": [], "open": [], "fstat": [], "close": []}
        for name in calls:
            real = getattr(os, name)

            def record(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                result = _real(*args, **kwargs)
                calls[_name].append((args, result))
                return result

            self.patch(os, name, record)
        connection = Connection(self, self.root)
        connection.request(b"/static/big.bin")
        opened = [result for (path, flags, *_), result in calls["open"]
                  if str(path).endswith("big.bin")]
        (path, flags, *_), fd = calls["open"][0]
        self.assertEqual(len(opened), 1)
        self.assertTrue(flags & os.O_NOFOLLOW and flags & os.O_NONBLOCK)
        self.assertEqual([str(args[0]) for args, _ in calls["lstat"]], [str(self.www / "big.bin")])
        self.assertEqual(calls["stat"], [])
        self.assertEqual([args for args, _ in calls["fstat"]], [(fd,)])
        self.assertEqual(response(connection.pump())[2], self.content)
        self.assertIn(((fd,), None), calls["close"])

    def test_headersWithBody(self) -> None:
        """
        The status line and headers are sent in one C{send} with
        C{MSG_MORE} (so the kernel puts them in the body's first packet),
        and then the connection is not left registered for writing.
        """
        connection = RecordingConnection(self, self.root)
        status, headers, body = self.fetch(connection, b"/static/big.bin")
        self.assertEqual(body, self.content)
        data, flags = connection.socket.sends[0]
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\n"))
        self.assertEqual(flags, socket.MSG_MORE)
        self.assertNotIn(connection.transport, connection.reactor.getWriters())

    def test_headersPartlySent(self) -> None:
        """
        When the kernel takes only part of the headers, the rest is sent
        from the transport's buffer before any of the body.
        """
        connection = RecordingConnection(self, self.root, limit=10)
        status, headers, body = self.fetch(connection, b"/static/big.bin")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(body, self.content)
        self.assertEqual(len(connection.socket.sends[0][0]), 10)

    def test_emptyFile(self) -> None:
        """
        An empty file gets its headers (without C{MSG_MORE}: no body
        follows) and no body.
        """
        (self.www / "empty").write_bytes(b"")
        connection = RecordingConnection(self, self.root)
        status, headers, body = self.fetch(connection, b"/static/empty")
        self.assertEqual((status, headers[b"content-length"], body), (b"HTTP/1.1 200 OK", b"0", b""))
        self.assertFalse(any(flags for _, flags in connection.socket.sends))

    def test_nsepoll(self) -> None:
        """
        On the nsepoll reactor's connections the lean path sends the
        headers with C{MSG_MORE} and every byte of the body too.
        """
        connection = RecordingConnection(self, self.root, cls=nsreactor.Server,
                                         reactor=buildReactor(self))
        status, headers, body = self.fetch(connection, b"/static/big.bin")
        self.assertEqual(body, self.content)
        self.assertEqual(connection.socket.sends[0][1], socket.MSG_MORE)

    def test_fileChanges(self) -> None:
        """
        A file that changes between requests is sent with its new length,
        ETag and content: nothing about it is cached.
        """
        connection = Connection(self, self.root)
        _, first, _ = self.fetch(connection, b"/static/small.txt")
        (self.www / "small.txt").write_bytes(b"a longer small file\n")
        os.utime(self.www / "small.txt", (1_000_000, 1_000_000))
        _, second, body = self.fetch(connection, b"/static/small.txt")
        self.assertEqual(body, b"a longer small file\n")
        self.assertEqual(second, {**second, **self.expectedHeaders("small.txt")})
        self.assertNotEqual(first[b"etag"], second[b"etag"])


class FullPathTests(LeanTestCase):
    """
    Every request that is not a plain whole-file GET, and every file that
    changed kind since C{getChild} found it, is answered by the full
    L{StaticFile}.
    """

    def test_conditionalAndRange(self) -> None:
        """
        If-None-Match and If-Modified-Since are honoured, and a Range is
        served by Twisted's producers.
        """
        etag = self.expectedHeaders("big.bin")[b"etag"]
        status, _, body = self.fetch(Connection(self, self.root), b"/static/big.bin",
                                     b"If-None-Match: " + etag + b"\r\n")
        self.assertEqual((status, body), (b"HTTP/1.1 304 Not Modified", b""))
        later = datetimeToString(os.stat(self.www / "big.bin").st_mtime + 10)
        status, _, body = self.fetch(Connection(self, self.root), b"/static/big.bin",
                                     b"If-Modified-Since: " + later + b"\r\n")
        self.assertEqual(status, b"HTTP/1.1 304 Not Modified")
        # Twisted's range producers are pull producers, which need the
        # global reactor's cooperator: check the choice, not the bytes (the
        # integration tests check those).
        connection = Connection(self, self.root)
        connection.request(b"/static/big.bin", b"Range: bytes=5-14\r\n")
        (request,) = connection.http.requests
        self.assertEqual(request.code, 206)
        self.assertNotIsInstance(connection.http._requestProducer, SendfileProducer)

    def test_head(self) -> None:
        """
        HEAD gets the headers of a GET and no body.
        """
        connection = Connection(self, self.root)
        connection.channel.dataReceived(b"HEAD /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = connection.pump(timeout=0.5)
        status, headers, body = response(raw)
        self.assertEqual((status, body), (b"HTTP/1.1 200 OK", b""))
        self.assertEqual(headers[b"content-length"], b"%d" % (len(self.content),))
        self.assertEqual(headers[b"etag"], self.expectedHeaders("big.bin")[b"etag"])

    def test_otherMethod(self) -> None:
        """
        Other methods get 405.
        """
        connection = Connection(self, self.root)
        connection.channel.dataReceived(b"DELETE /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(response(connection.pump())[0], b"HTTP/1.1 405 Method Not Allowed")

    def swapBeforeOpen(self, name: str, swap: Any) -> None:
        """
        Call C{swap()} just before the file C{name} is opened: after
        C{getChild} found it a regular file.
        """
        realOpen = os.open

        def swapThenOpen(path: Any, *args: Any, **kwargs: Any) -> int:
            if os.path.basename(path) == name and not swapped:
                swapped.append(True)
                swap()
            return realOpen(path, *args, **kwargs)

        swapped: list[bool] = []
        self.patch(os, "open", swapThenOpen)

    def test_swappedForEscapingLink(self) -> None:
        """
        A file replaced by a link that leaves the root after C{getChild}
        found it is not followed (C{O_NOFOLLOW}): the full path refuses it.
        """

        def swap() -> None:
            os.remove(self.www / "small.txt")
            os.symlink(self.base / "secret.txt", self.www / "small.txt")

        self.swapBeforeOpen("small.txt", swap)
        status, _, body = self.fetch(Connection(self, self.root), b"/static/small.txt")
        self.assertEqual(status, b"HTTP/1.1 404 Not Found")
        self.assertNotIn(b"secret", body)

    def test_swappedForFIFO(self) -> None:
        """
        A file replaced by a FIFO after C{getChild} found it is a 404, and
        opening it does not block.
        """

        def swap() -> None:
            os.remove(self.www / "small.txt")
            os.mkfifo(self.www / "small.txt")

        self.swapBeforeOpen("small.txt", swap)
        status, _, _ = self.fetch(Connection(self, self.root), b"/static/small.txt")
        self.assertEqual(status, b"HTTP/1.1 404 Not Found")

    def test_swappedForDirectory(self) -> None:
        """
        A file replaced by a directory after C{getChild} found it is
        redirected like a directory.
        """

        def swap() -> None:
            os.remove(self.www / "small.txt")
            os.mkdir(self.www / "small.txt")

        self.swapBeforeOpen("small.txt", swap)
        status, headers, _ = self.fetch(Connection(self, self.root), b"/static/small.txt")
        self.assertEqual(status, b"HTTP/1.1 301 Moved Permanently")
        self.assertEqual(headers[b"location"], b"/static/small.txt/")


class BodyTests(LeanTestCase):
    """
    Backpressure, a client that goes away and a file that shrinks, on the
    lean path.
    """

    def slowConnection(self) -> tuple[Connection, SendfileProducer]:
        """
        A connection whose client has not read a 1 MiB response that does
        not fit its socket buffers, and the producer sending it.
        """
        connection = Connection(self, self.root)
        connection.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        connection.request(b"/static/big.bin")
        producer = connection.http._requestProducer
        self.assertIsInstance(producer, SendfileProducer)
        return connection, producer

    def test_slowClient(self) -> None:
        """
        A client that does not read holds the producer back with at most
        about two transport buffers queued in memory; then it gets every
        byte.
        """
        connection, producer = self.slowConnection()
        queued = connection.transport._tempDataLen + len(connection.transport.dataBuffer)
        self.assertLess(queued, 2 * connection.transport.bufferSize + 4096)
        self.assertLess(producer.offset, len(self.content))
        self.assertEqual(response(connection.pump())[2], self.content)

    def test_clientGoesAway(self) -> None:
        """
        A client that closes in the middle of the body releases the file.
        """
        connection, producer = self.slowConnection()
        fd = producer._fd
        connection.peer.close()
        for _ in range(10):
            if producer.request is None:
                break
            try:
                connection.transport.doWrite()
            except OSError:
                pass
            if not connection.transport.connected:
                break
        if connection.transport.connected:
            connection.transport.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(producer.fileObject)
        self.assertRaises(OSError, os.fstat, fd)

    def test_fileShrinks(self) -> None:
        """
        A file truncated while its body is being sent aborts the connection
        (the promised length cannot be kept) and is closed.
        """
        connection, producer = self.slowConnection()
        os.truncate(self.www / "big.bin", 1000)
        aborted: list[bool] = []
        connection.transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
        connection.pump(timeout=2)
        self.assertEqual(aborted, [True])
        self.assertIsNone(producer.fileObject)
