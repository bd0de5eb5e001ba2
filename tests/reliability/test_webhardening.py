"""
Reliability battery, web hardening: pipelined requests whose responses are
never read, responses and echoes that make no progress (C{send_timeout}),
multiple-range requests, an access log on a full device, and PROXY headers
from untrusted sources, against real C{twistd -n netservices} daemons on
loopback.

Every test is skipped when this netservices lacks the service it attacks.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.reliabilitysupport import (
    MB,
    LimitedDaemon,
    assertNoTraceback,
    onlyConfig,
    readResponses,
    requireServices,
    staticWebDaemon,
    unreadPipeline,
)
from tests.support import freePort, waitUntil


def httpGet(port: int, path: str) -> bytes:
    """
    The body of C{GET path} on loopback C{port}.
    """
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def webCounters(port: int) -> dict[str, int]:
    """
    The web service's counters, from C{/status}.
    """
    return json.loads(httpGet(port, "/status"))["services"]["web"]["counters"]  # type: ignore[no-any-return]


class SlowReaderDaemonMixin:
    """
    Start a daemon running only the web service, with a static root that
    holds C{64k.bin} (64 KiB) and C{big.bin} (1 MiB), random bytes.
    """

    def startWeb(self, extra: str = "") -> tuple[LimitedDaemon, int]:
        requireServices("web")
        test: SynchronousTestCase = self  # type: ignore[assignment]
        base = Path(tempfile.mkdtemp(prefix="netservices-slow-"))
        test.addCleanup(shutil.rmtree, base, True)
        self.root = base / "www"
        self.root.mkdir()
        self.small = os.urandom(64 * 1024)
        self.big = os.urandom(1024 * 1024)
        (self.root / "64k.bin").write_bytes(self.small)
        (self.root / "big.bin").write_bytes(self.big)
        return staticWebDaemon(test, self.root, extra)


class PipelineTests(SlowReaderDaemonMixin, SynchronousTestCase):
    """
    A client that pipelines requests and does not read its responses stops
    being read from: the daemon's memory stays within a few MB.
    """

    def assertBounded(self, path: bytes, count: int) -> None:
        daemon, port = self.startWeb()
        before = daemon.rss()
        one = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % (path,)
        pipeline = one * count
        s, sent = unreadPipeline(port, pipeline)
        self.addCleanup(s.close)
        daemon.waitIdle()
        grown = (daemon.rss() - before) / MB
        answered, received = readResponses(s, count, pipeline[sent:])
        print(f"\n{path.decode()}: {count} pipelined requests ({len(one) * count} bytes), "
              f"{sent} sent before the daemon stopped reading; daemon grew {grown:.1f} MB; "
              f"then {answered} responses ({received} bytes) read")
        self.assertLess(grown, 4)
        self.assertEqual(answered, count)
        daemon.assertAlive()
        assertNoTraceback(daemon)

    def test_static(self) -> None:
        """
        4,000 pipelined GETs of a 64 KiB file (each finished in one
        buffered write) that the client does not read grow the daemon by
        less than 4 MB, and are all answered once the client reads.
        """
        self.assertBounded(b"/static/64k.bin", 4000)

    def test_hello(self) -> None:
        """
        100,000 pipelined GETs of / that the client does not read grow the
        daemon by less than 4 MB, and are all answered once it reads.
        """
        self.assertBounded(b"/", 100_000)

    def test_status(self) -> None:
        """
        10,000 pipelined GETs of /status that the client does not read grow
        the daemon by less than 4 MB, and are all answered once it reads.
        """
        self.assertBounded(b"/status", 10_000)


class SendTimeoutTests(SlowReaderDaemonMixin, SynchronousTestCase):
    """
    Connections whose responses (or echoes) are never read are dropped
    after C{send_timeout}, and counted.
    """

    def test_webUnreadResponses(self) -> None:
        """
        With C{max_connections = 5}, 5 connections that each GET a 64 MiB
        file and read nothing are aborted after C{send_timeout} (counted in
        C{sendTimeouts}), and a new client is served after them.
        """
        daemon, port = self.startWeb("send_timeout = 1\nmax_connections = 5\n")
        with open(self.root / "huge.bin", "wb") as f:
            f.truncate(64 * MB)
        one = b"GET /static/huge.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        waitUntil(lambda: webCounters(port)["current"] == 1, 30, "earlier connections to close")
        started = time.monotonic()
        sockets = []
        for _ in range(5):
            s, _sent = unreadPipeline(port, one, stalled=0.1)
            self.addCleanup(s.close)
            sockets.append(s)

        def aborted() -> dict[str, int] | None:
            try:
                counters = webCounters(port)
            except OSError:  # refused while the 5 hold every place
                return None
            return counters if counters.get("sendTimeouts", 0) >= 5 else None

        counters = waitUntil(aborted, 60, "the 5 unread responses to be aborted")
        seconds = time.monotonic() - started
        waitUntil(lambda: daemon.established(port) == 0, 30, "the aborted connections to close")
        self.assertEqual(httpGet(port, "/")[:5], b"Hello")
        print(f"\n5 unread 64 MiB responses: all aborted {seconds:.1f} s after they started "
              f"(send_timeout 1 s); sendTimeouts = {counters['sendTimeouts']}")
        self.assertEqual(counters["sendTimeouts"], 5)
        daemon.assertAlive()
        assertNoTraceback(daemon)

    def test_echoUnread(self) -> None:
        """
        An echo client that sends 8 MB and reads none of its echo is
        dropped after C{[echo] send_timeout}, and counted.
        """
        requireServices("echo")
        port, webPort = freePort(), freePort()
        daemon = LimitedDaemon([], config=onlyConfig(
            echo=f"listen = tcp:{port}:interface=127.0.0.1\nsend_timeout = 1\n",
            web=f"listen = tcp:{webPort}:interface=127.0.0.1\n",
        ))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        daemon.waitForTCP(webPort)
        started = time.monotonic()
        s, sent = unreadPipeline(port, b"x" * (8 * MB), stalled=0.5)
        self.addCleanup(s.close)
        waitUntil(lambda: daemon.established(port) == 1, 30, "the connection to be accepted")
        waitUntil(lambda: daemon.established(port) == 0, 60, "the unread echo to be dropped")
        seconds = time.monotonic() - started
        counters = json.loads(httpGet(webPort, "/status"))["services"]["echo"]["counters"]
        print(f"\necho: {sent} bytes sent, none read: dropped {seconds:.1f} s after it started "
              f"(send_timeout 1 s); sendTimeouts = {counters['sendTimeouts']}")
        self.assertLess(sent, 8 * MB)
        self.assertEqual(counters["sendTimeouts"], 1)
        daemon.assertAlive()
        assertNoTraceback(daemon)


class MultiRangeTests(SlowReaderDaemonMixin, SynchronousTestCase):
    """
    Multiple-range requests are answered whole, and ranges cannot amplify
    a response.
    """

    def test_partHeaderAcrossBuffer(self) -> None:
        """
        C{Range: bytes=0-65340,200000-200099} on a 1 MiB file (a part
        header crossing the 64 KiB buffer, where Twisted's producer hung the
        connection) gets both parts whole, and the connection then answers
        another request.
        """
        daemon, port = self.startWeb()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.addCleanup(connection.close)
        started = time.monotonic()
        connection.request("GET", "/static/big.bin", headers={"Range": "bytes=0-65340,200000-200099"})
        response = connection.getresponse()
        body = response.read()
        seconds = time.monotonic() - started
        self.assertEqual(response.status, 206)
        boundary = response.getheader("content-type").split('boundary="')[1].rstrip('"')
        parts = body.split(b"\r\n--" + boundary.encode())
        self.assertEqual(len(parts), 4)  # before the first, two parts, the end
        self.assertTrue(parts[1].endswith(b"\r\n\r\n" + self.big[0:65341]))
        self.assertTrue(parts[2].endswith(b"\r\n\r\n" + self.big[200000:200100]))
        connection.request("GET", "/")
        self.assertEqual(connection.getresponse().read(), b"Hello World")
        print(f"\nbytes=0-65340,200000-200099: 206, {len(body)} bytes in {seconds:.2f} s")
        daemon.assertAlive()
        assertNoTraceback(daemon)

    def test_amplification(self) -> None:
        """
        C{Range: bytes=0-} 200 times (a 1 MiB file) is answered with the
        file once, 200 OK.
        """
        daemon, port = self.startWeb()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.addCleanup(connection.close)
        connection.request("GET", "/static/big.bin", headers={"Range": "bytes=" + ",".join(["0-"] * 200)})
        response = connection.getresponse()
        body = response.read()
        print(f"\nbytes=0- x 200 on a 1 MiB file: {response.status}, {len(body)} bytes")
        self.assertEqual((response.status, body == self.big), (200, True))
        assertNoTraceback(daemon)


class FullDiskTests(SlowReaderDaemonMixin, SynchronousTestCase):
    """
    An access log on a full device loses its lines, never a response.
    """

    def test_devFull(self) -> None:
        """
        With C{access_log = /dev/full}, 20 requests are all answered, the
        lost lines counted in C{accessLogErrors}, one warning logged and no
        traceback.
        """
        if not os.path.exists("/dev/full"):
            raise SkipTest("no /dev/full on this system")
        daemon, port = self.startWeb("access_log = /dev/full\n")
        bodies = [httpGet(port, "/") for _ in range(20)]
        counters = webCounters(port)
        print(f"\naccess_log = /dev/full: {bodies.count(b'Hello World')} of 20 requests answered, "
              f"accessLogErrors = {counters['accessLogErrors']}")
        self.assertEqual(bodies, [b"Hello World"] * 20)
        self.assertGreaterEqual(counters["accessLogErrors"], 20)
        self.assertEqual(daemon.log().count("cannot write the access log /dev/full"), 1)
        daemon.assertAlive()
        assertNoTraceback(daemon)


class ProxyTrustTests(SlowReaderDaemonMixin, SynchronousTestCase):
    """
    Only C{trusted_proxies} may send a PROXY header.
    """

    def proxied(self, port: int, source: str) -> bytes:
        header = b"PROXY TCP4 203.0.113.9 127.0.0.1 56324 %d\r\n" % (port,)
        with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
            s.sendall(header + b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            try:
                while chunk := s.recv(65536):
                    received += chunk
            except ConnectionResetError:
                pass
        return received

    def test_untrustedSourceRefused(self) -> None:
        """
        With C{trusted_proxies = 127.0.0.2}, a PROXY header claiming
        203.0.113.9 from 127.0.0.1 gets no answer and is counted in
        C{proxyUntrusted}; the same from 127.0.0.2 is served as 203.0.113.9.
        """
        requireServices("web")
        port, proxyPort = freePort(), freePort()
        daemon = LimitedDaemon([], config=onlyConfig(web=(
            f"listen = tcp:{port}:interface=127.0.0.1 haproxy:tcp:{proxyPort}:interface=127.0.0.1\n"
            "trusted_proxies = 127.0.0.2\n"
        )))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        refused = self.proxied(proxyPort, "127.0.0.1")
        served = self.proxied(proxyPort, "127.0.0.2")
        counters = webCounters(port)
        print(f"\nPROXY header from 127.0.0.1 (untrusted): {len(refused)} bytes back; from "
              f"127.0.0.2 (trusted): {served.split(b' ')[1].decode()}; "
              f"proxyUntrusted = {counters['proxyUntrusted']}")
        self.assertEqual(refused, b"")
        self.assertIn(b'"client": "203.0.113.9:56324"', served)
        self.assertEqual(counters["proxyUntrusted"], 1)
        assertNoTraceback(daemon)
