"""
Integration tests of the lean static path (L{services.web._static.RegularFile}
and L{services.web._sendfile.SendfileProducer}): a real C{twistd -n netservices}
on Twisted's epoll reactor (C{--reactor epoll}) and on nsepoll (the
default), driven by plain sockets and http.client on loopback.
"""

from __future__ import annotations

import http.client
import os
import select
import shutil
import socket
import tempfile
import time
from pathlib import Path

import psutil
from twisted.trial.unittest import SynchronousTestCase

from services.web._regularfile import entityTag

from tests.support import ReactorDaemon, freePort, isolatedConfig


class LeanStaticMixin:
    """
    A daemon serving a 1 MiB + 7 byte file, a small file and a 64 MiB
    sparse file from its static root.
    """

    reactor = "epoll"

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="netservices-lean-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)  # type: ignore[attr-defined]
        self.www = self.tmp / "www"
        self.www.mkdir()
        self.content = os.urandom((1 << 20) + 7)
        (self.www / "file.bin").write_bytes(self.content)
        (self.www / "small.txt").write_bytes(b"small\n")
        self.bigSize = 64 * 1024 * 1024
        with open(self.www / "big.bin", "wb") as f:
            f.truncate(self.bigSize)
        self.port = freePort()
        config = isolatedConfig(
            web=f"listen = tcp:{self.port}:interface=127.0.0.1\nstatic_dir = {self.www}\n"
        )
        self.daemon = ReactorDaemon(self.reactor, config)
        self.addCleanup(self.daemon.stop)  # type: ignore[attr-defined]
        self.daemon.waitForTCP(self.port, timeout=30)

    def connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.addCleanup(connection.close)  # type: ignore[attr-defined]
        return connection

    def test_wholeFileValidatedEachTime(self) -> None:
        """
        On one kept-alive connection: a 1 MiB + 7 byte file arrives byte
        for byte with the ETag of its current status, twice; its ETag gets
        a 304; once rewritten with other content, the next GET sends the
        new bytes, length and ETag (nothing stale is cached).
        """
        connection = self.connect()
        info = os.stat(self.www / "file.bin")
        for _ in range(2):
            connection.request("GET", "/static/file.bin")
            response = connection.getresponse()
            self.assertEqual(response.status, 200)  # type: ignore[attr-defined]
            self.assertEqual(response.read(), self.content)  # type: ignore[attr-defined]
            etag = response.getheader("ETag")
            self.assertEqual(etag, entityTag(info.st_size, info.st_mtime).decode())  # type: ignore[attr-defined]
        connection.request("GET", "/static/file.bin", headers={"If-None-Match": etag})
        response = connection.getresponse()
        self.assertEqual((response.status, response.read()), (304, b""))  # type: ignore[attr-defined]
        replacement = os.urandom(len(self.content) - 1001)
        (self.www / "file.bin").write_bytes(replacement)
        os.utime(self.www / "file.bin", (info.st_atime, info.st_mtime + 5))
        connection.request("GET", "/static/file.bin", headers={"If-None-Match": etag})
        response = connection.getresponse()
        self.assertEqual(response.status, 200)  # type: ignore[attr-defined]
        self.assertEqual(response.read(), replacement)  # type: ignore[attr-defined]
        self.assertNotEqual(response.getheader("ETag"), etag)  # type: ignore[attr-defined]

    def test_clientThatDoesNotReadHoldsServerBack(self) -> None:
        """
        A client that asks for 64 MiB and reads nothing does not make the
        server buffer the file (RSS grows by less than 20 MB), nor keep it
        from answering another client; then it reads every byte.
        """
        server = psutil.Process(self.daemon.process.pid)
        baseline = server.memory_info().rss
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.addCleanup(sock.close)  # type: ignore[attr-defined]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        peak = baseline
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            peak = max(peak, server.memory_info().rss)
            select.select([], [], [], 0.1)
        other = self.connect()
        other.request("GET", "/static/small.txt")
        self.assertEqual(other.getresponse().read(), b"small\n")  # type: ignore[attr-defined]
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(1)
            self.assertTrue(data, "the connection closed before the headers")  # type: ignore[attr-defined]
            head += data
        received = 0
        while received < self.bigSize:
            data = sock.recv(1 << 20)
            if not data:
                break
            if data.strip(b"\0"):
                self.fail("the body differs from the file")  # type: ignore[attr-defined]
            received += len(data)
            if received % (8 << 20) < len(data):
                peak = max(peak, server.memory_info().rss)
        self.assertEqual(received, self.bigSize)  # type: ignore[attr-defined]
        peak = max(peak, server.memory_info().rss)
        self.assertLess(peak - baseline, 20 * 1024 * 1024)  # type: ignore[attr-defined]


class LeanStaticDefaultReactorTests(LeanStaticMixin, SynchronousTestCase):
    """
    The lean static path on Twisted's epoll reactor.
    """

    reactor = "epoll"


class LeanStaticNsepollReactorTests(LeanStaticMixin, SynchronousTestCase):
    """
    The lean static path on the nsepoll reactor.
    """

    reactor = "nsepoll"
