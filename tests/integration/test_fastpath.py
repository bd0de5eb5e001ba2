"""
Integration tests of the fast data paths: a real C{twistd -n netservices}
on Twisted's epoll reactor (C{--reactor epoll}) and on nsepoll (the
default), with plain TCP, UNIX, TLS and PROXY-protocol echo listeners at
once, and static files over plain TCP (sendfile) and TLS, driven by plain
sockets and urllib.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import select
import shutil
import socket
import ssl
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from twisted.trial.unittest import SynchronousTestCase

from tests.echoload import echoLoad
from tests.support import ReactorDaemon, freePort, isolatedConfig, makeCertificate


def echoOnce(sock: socket.socket, payload: bytes) -> bytes:
    """
    Send C{payload} while reading the echo; return the echo.
    """
    received = bytearray()
    sent = 0
    sock.setblocking(False)
    deadline = time.monotonic() + 30
    while len(received) < len(payload) and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock] if sent < len(payload) else [], [], 0.5)
        if writable:
            try:
                sent += sock.send(payload[sent:sent + 65536])
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        if readable or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            try:
                data = sock.recv(1 << 20)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            if not data:
                break
            received += data
    return bytes(received)


class FastPathDaemonMixin:
    """
    The same checks for each reactor: every kind of listener echoes every
    byte in order, and a client that does not read is held back.
    """

    reactor = "epoll"

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="netservices-fastpath-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)  # type: ignore[attr-defined]
        certPath, keyPath = makeCertificate(self.tmp)
        self.certPath = certPath
        self.tcp, self.tls, self.proxied = freePort(), freePort(), freePort()
        self.unix = self.tmp / "echo.sock"
        listen = " ".join([
            f"tcp:{self.tcp}:interface=127.0.0.1",
            f"unix:{self.unix}",
            f"ssl:{self.tls}:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}",
            f"haproxy:tcp:{self.proxied}:interface=127.0.0.1",
        ])
        self.daemon = ReactorDaemon(self.reactor, isolatedConfig(echo=f"listen = {listen}\n"))
        self.addCleanup(self.daemon.stop)  # type: ignore[attr-defined]
        self.daemon.waitForTCP(self.tcp, timeout=30)
        for port in (self.tls, self.proxied):
            self.daemon.waitForTCP(port)

    def test_plainTCPUnderLoad(self) -> None:
        """
        20 concurrent clients each send 300 kB in random chunk sizes while
        reading: every echo is byte-identical.
        """
        result = echoLoad(("127.0.0.1", self.tcp), clients=20, size=300_000, timeout=60)
        self.assertEqual(result.errors, ())  # type: ignore[attr-defined]

    def test_unix(self) -> None:
        """
        The UNIX listener echoes 1 MB intact.
        """
        payload = os.urandom(1_000_000)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.unix))
            self.assertEqual(echoOnce(sock, payload), payload)  # type: ignore[attr-defined]

    def test_tls(self) -> None:
        """
        A TLS client gets 1 MB back intact (the echo writes through the TLS
        layer, not to the socket).
        """
        context = ssl.create_default_context(cafile=str(self.certPath))
        payload = os.urandom(1_000_000)
        with socket.create_connection(("127.0.0.1", self.tls), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                self.assertEqual(echoOnce(sock, payload), payload)  # type: ignore[attr-defined]

    def test_proxyProtocol(self) -> None:
        """
        Behind a PROXY protocol v1 header, 1 MB comes back intact and the
        header is not echoed.
        """
        payload = os.urandom(1_000_000)
        with socket.create_connection(("127.0.0.1", self.proxied), timeout=10) as sock:
            sock.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 443\r\n")
            self.assertEqual(echoOnce(sock, payload), payload)  # type: ignore[attr-defined]

    def test_unreadUploadBounded(self) -> None:
        """
        A client that sends 64 MB without reading is held back by TCP flow
        control (server RSS grows by less than 20 MB), and then gets every
        byte back in order.
        """
        server = psutil.Process(self.daemon.process.pid)
        baseline = server.memory_info().rss
        total = 64 * 1024 * 1024
        block = os.urandom(1 << 20)
        sock = socket.create_connection(("127.0.0.1", self.tcp), timeout=10)
        self.addCleanup(sock.close)  # type: ignore[attr-defined]
        sock.setblocking(False)
        sent = 0
        sentDigest, receivedDigest = hashlib.sha256(), hashlib.sha256()
        lastProgress = time.monotonic()
        while sent < total and time.monotonic() - lastProgress < 1.0:
            select.select([], [sock], [], 0.1)
            try:
                n = sock.send(block[sent % len(block):][: total - sent])
            except BlockingIOError:
                continue
            sentDigest.update(block[sent % len(block):][:n])
            sent += n
            lastProgress = time.monotonic()
        self.assertLess(sent, total, "the sender was never held back")  # type: ignore[attr-defined]
        peak = server.memory_info().rss
        received = 0
        deadline = time.monotonic() + 60
        while received < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 0.5)
            if writable:
                piece = block[sent % len(block):][: total - sent]
                try:
                    n = sock.send(piece)
                    sentDigest.update(piece[:n])
                    sent += n
                except BlockingIOError:
                    pass
            if readable:
                data = sock.recv(1 << 20)
                if not data:
                    break
                receivedDigest.update(data)
                received += len(data)
        peak = max(peak, server.memory_info().rss)
        self.assertEqual(received, total)  # type: ignore[attr-defined]
        self.assertEqual(receivedDigest.hexdigest(), sentDigest.hexdigest())  # type: ignore[attr-defined]
        self.assertLess(peak - baseline, 20 * 1024 * 1024)  # type: ignore[attr-defined]


class DefaultReactorTests(FastPathDaemonMixin, SynchronousTestCase):
    """
    The echo's own write-through, on Twisted's epoll reactor.
    """

    reactor = "epoll"


class NsepollReactorTests(FastPathDaemonMixin, SynchronousTestCase):
    """
    The nsepoll reactor's write-through connections.
    """

    reactor = "nsepoll"


class StaticSendfileMixin:
    """
    Static files from a real daemon: whole files by sendfile on plain TCP,
    Twisted's producers for ranges and TLS, with every byte intact.  (A
    client that does not read holding the server back is in
    L{tests.integration.test_static_lean}.)
    """

    reactor = "epoll"

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="netservices-sendfile-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)  # type: ignore[attr-defined]
        self.certPath, keyPath = makeCertificate(self.tmp)
        static = self.tmp / "www"
        static.mkdir()
        self.content = os.urandom(3 * 1024 * 1024 + 5)
        (static / "file.bin").write_bytes(self.content)
        self.http, self.https = freePort(), freePort()
        listen = (f"tcp:{self.http}:interface=127.0.0.1 "
                  f"ssl:{self.https}:interface=127.0.0.1:privateKey={keyPath}:certKey={self.certPath}")
        config = isolatedConfig(web=f"listen = {listen}\nstatic_dir = {static}\n")
        self.daemon = ReactorDaemon(self.reactor, config)
        self.addCleanup(self.daemon.stop)  # type: ignore[attr-defined]
        self.daemon.waitForTCP(self.http, timeout=30)
        self.daemon.waitForTCP(self.https)

    def get(self, url: str, headers: dict[str, str] | None = None, context: Any = None) -> Any:
        request = urllib.request.Request(url, headers=headers or {})
        return urllib.request.urlopen(request, timeout=30, context=context)

    def test_wholeFileKeepAlive(self) -> None:
        """
        Three whole-file GETs on one kept-alive connection each return every
        byte.
        """
        connection = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        self.addCleanup(connection.close)  # type: ignore[attr-defined]
        for _ in range(3):
            connection.request("GET", "/static/file.bin")
            response = connection.getresponse()
            self.assertEqual(response.status, 200)  # type: ignore[attr-defined]
            self.assertEqual(response.read(), self.content)  # type: ignore[attr-defined]

    def test_rangeAndTLS(self) -> None:
        """
        A Range request and a GET over TLS (both on Twisted's producers)
        return the right bytes.
        """
        with self.get(f"http://127.0.0.1:{self.http}/static/file.bin",
                      {"Range": "bytes=1000-1999"}) as response:
            self.assertEqual(response.status, 206)  # type: ignore[attr-defined]
            self.assertEqual(response.read(), self.content[1000:2000])  # type: ignore[attr-defined]
        context = ssl.create_default_context(cafile=str(self.certPath))
        with self.get(f"https://127.0.0.1:{self.https}/static/file.bin", context=context) as response:
            self.assertEqual(response.read(), self.content)  # type: ignore[attr-defined]


class StaticDefaultReactorTests(StaticSendfileMixin, SynchronousTestCase):
    """
    Static files with sendfile on Twisted's epoll reactor.
    """

    reactor = "epoll"


class StaticNsepollReactorTests(StaticSendfileMixin, SynchronousTestCase):
    """
    Static files with sendfile on the nsepoll reactor.
    """

    reactor = "nsepoll"
