"""
HTTP/2 against a live daemon: C{curl --http2} and C{h2load} on an C{ssl:}
listener, every resource as over HTTP/1.1, and the known HTTP/2 attacks
(built with the h2 library, bounded in count and time), each of which ends
with the connection closed and the daemon's memory bounded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.settings
import psutil
from hyperframe.frame import ContinuationFrame, HeadersFrame
from twisted.trial.unittest import SkipTest, TestCase

from tests.support import (
    Daemon,
    closedByPeer,
    freePort,
    h2Socket,
    isolatedConfig,
    makeCertificate,
    waitUntil,
)

#: How much the daemon may grow in one attack.
GROWTH = 48 * 1024 * 1024


def clientConnection(sock: Any) -> h2.connection.H2Connection:
    """
    An h2 client state machine whose preface was sent on C{sock}.
    """
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return conn


def requestHeaders(path: bytes = b"/", method: bytes = b"GET") -> list[tuple[bytes, bytes]]:
    """
    The pseudo-headers of a request.
    """
    return [(b":method", method), (b":path", path), (b":scheme", b"https"),
            (b":authority", b"127.0.0.1")]


def sendUntilClosed(sock: Any, frames: Any, limit: int) -> int:
    """
    Send the byte strings of C{frames} until the peer closes (a send
    fails) or C{limit} were sent; return how many were sent.
    """
    sent = 0
    for data in frames:
        if sent >= limit:
            break
        try:
            sock.sendall(data)
        except OSError:
            break
        sent += 1
    return sent


class HTTP2Tests(TestCase):
    """
    One daemon with an C{ssl:} and a C{tcp:} web listener, small limits and
    a static directory.
    """

    def setUp(self) -> None:
        from services import _twisted

        lacking = _twisted.missing("http2")
        if lacking:
            raise SkipTest(
                f"HTTP/2 is off on Twisted {_twisted.TWISTED_VERSION}: it lacks {', '.join(lacking)}"
            )
        cls = self
        cls.directory = Path(tempfile.mkdtemp(prefix="netservices-h2-"))  # type: ignore[misc]
        cert, key = makeCertificate(cls.directory)
        www = cls.directory / "www"
        www.mkdir()
        (www / "a.txt").write_bytes(b"0123456789abcdef\n")
        (www / "big.bin").write_bytes(b"x" * 1_000_000)
        cls.accessLog = cls.directory / "access.log"
        cls.port, cls.plainPort = freePort(), freePort()
        cls.daemon = Daemon(
            ["--log-level", "debug"],
            isolatedConfig(
                web=(
                    f"listen = ssl:{cls.port}:interface=127.0.0.1:privateKey={key}:certKey={cert}\n"
                    f"    tcp:{cls.plainPort}:interface=127.0.0.1\n"
                    f"static_dir = {www}\naccess_log = {cls.accessLog}\n"
                    "max_body = 1000\nheader_timeout = 3\nidle_timeout = 6\n"
                    "send_timeout = 3\nmax_streams = 10\n"
                )
            ),
        )
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.addCleanup(self.daemon.stop)
        self.daemon.waitForLog(f"web listening on ssl:{self.port}")
        self.process = psutil.Process(self.daemon.process.pid)

    def curl(self, *args: str, path: str = "/") -> subprocess.CompletedProcess[str]:
        """
        Run curl against the TLS listener.
        """
        if shutil.which("curl") is None:
            raise SkipTest("curl is not installed")
        return subprocess.run(
            ["curl", "-sk", "--max-time", "20", *args, f"https://127.0.0.1:{self.port}{path}"],
            capture_output=True, text=True, timeout=30, check=False,
        )

    def counters(self) -> dict[str, int]:
        """
        The web counters, from /status over HTTP/1.1.
        """
        import json
        import urllib.request

        url = f"http://127.0.0.1:{self.plainPort}/status"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)["services"]["web"]["counters"]  # type: ignore[no-any-return]

    def test_curl(self) -> None:
        """
        curl negotiates h2 and gets every resource as over HTTP/1.1: the
        page, /status, /health, /metrics, a static file, a byte range, 304
        for its ETag, and 413 for a body over max_body; the access log says
        HTTP/2.0.  HTTP/1.1 still works on the same listener.
        """
        for path in ("/", "/status", "/health", "/metrics", "/static/a.txt"):
            out = self.curl("--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                            path=path)
            self.assertEqual(out.stdout, "2 200", path)
        out = self.curl("--http2", "-r", "2-5", "-D", "-", path="/static/a.txt")
        self.assertIn("HTTP/2 206", out.stdout)
        self.assertIn("content-range: bytes 2-5/17", out.stdout.lower())
        self.assertTrue(out.stdout.endswith("\n2345"), out.stdout)
        etag = re.search(r'(?im)^etag: (".*?")', out.stdout).group(1)  # type: ignore[union-attr]
        out = self.curl("--http2", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                        f"If-None-Match: {etag}", path="/static/a.txt")
        self.assertEqual(out.stdout, "304")
        before = self.counters()["bodyTooLarge"]
        out = self.curl("--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                        "--data-binary", "x" * 5000, path="/")
        self.assertEqual(out.stdout, "2 413")
        self.assertEqual(self.counters()["bodyTooLarge"], before + 1)
        out = self.curl("--http1.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}")
        self.assertEqual(out.stdout, "1.1 200")
        waitUntil(lambda: '"GET /static/a.txt HTTP/2.0" 304' in self.accessLog.read_text(),
                  10, "the 304 in the access log")
        self.assertIn('"GET /metrics HTTP/2.0" 200', self.accessLog.read_text())

    def test_h2load(self) -> None:
        """
        h2load's 200 requests on 4 connections, 4 streams each, all succeed.
        """
        h2load = shutil.which("h2load")
        if h2load is None:
            raise SkipTest("h2load is not installed (tests/system-deps.sh installs nghttp2-client)")
        out = subprocess.run(
            [h2load, "-n", "200", "-c", "4", "-m", "4", f"https://127.0.0.1:{self.port}/"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        self.assertIn("200 succeeded, 0 failed, 0 errored", out.stdout, out.stdout)
        self.assertIn("Application protocol: h2", out.stdout)

    def attack(self, sock: Any, frames: Any, limit: int, counter: str = "http2Errors") -> int:
        """
        Send C{frames} on C{sock} until it is closed or C{limit} were sent;
        check that the daemon closed it, counted it in C{counter}, and grew
        by less than L{GROWTH}.  Return how many were sent.
        """
        before = self.counters()[counter]
        memory = self.process.memory_info().rss
        try:
            sent = sendUntilClosed(sock, frames, limit)
            self.assertTrue(closedByPeer(sock), "the daemon kept the connection open")
        finally:
            sock.close()
        self.assertLess(self.process.memory_info().rss - memory, GROWTH)
        self.assertEqual(self.counters()[counter], before + 1)
        return sent

    def test_rapidReset(self) -> None:
        """
        CVE-2023-44487: streams opened and reset at once, as fast as the
        client can, get the connection closed.
        """
        sock = h2Socket(self.port)
        conn = clientConnection(sock)

        def frames() -> Any:
            while True:
                stream = conn.get_next_available_stream_id()
                conn.send_headers(stream, requestHeaders(), end_stream=True)
                conn.reset_stream(stream)
                yield conn.data_to_send()

        before = self.counters()["requests"]
        self.attack(sock, frames(), 5_000)
        # Twisted's token bucket allows bursts of 1000 resets.
        self.assertLess(self.counters()["requests"] - before, 2_000)

    def test_continuationFlood(self) -> None:
        """
        CVE-2024-27316: a header block that never ends (CONTINUATION frames
        without END_HEADERS) gets the connection closed.
        """
        sock = h2Socket(self.port)
        clientConnection(sock)

        def frames() -> Any:
            headers = HeadersFrame(1)
            headers.data = b"\x82"  # :method GET, and no END_HEADERS
            yield headers.serialize()
            while True:
                continuation = ContinuationFrame(1)
                continuation.data = b"\x40\x01a\x01b" * 1000
                yield continuation.serialize()

        self.attack(sock, frames(), 2_000)

    def test_hpackBomb(self) -> None:
        """
        A header block of a few kilobytes that decodes to megabytes (one
        large header in the dynamic table, referenced again and again) gets
        the connection closed.
        """
        from hpack import Encoder

        sock = h2Socket(self.port)
        clientConnection(sock)
        encoder = Encoder()
        block = encoder.encode(requestHeaders() + [(b"x-bomb", b"a" * 4000)])
        block += bytes([0x80 | 62]) * 2000  # the dynamic table's newest entry, 2000 times
        headers = HeadersFrame(1)
        headers.flags.add("END_HEADERS")
        headers.flags.add("END_STREAM")
        headers.data = block
        self.attack(sock, iter([headers.serialize()]), 1)

    def test_settingsFlood(self) -> None:
        """
        SETTINGS frames without end (each asking for an acknowledgement)
        get the connection closed.
        """
        sock = h2Socket(self.port)
        conn = clientConnection(sock)

        def frames() -> Any:
            while True:
                conn.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
                yield conn.data_to_send()

        self.attack(sock, frames(), 20_000)

    def test_pingFlood(self) -> None:
        """
        PING frames without end, from a client that reads none of the
        answers, get the connection closed (and counted, after
        L{CONTROL_FRAMES}, or aborted at once by Twisted's cap on answers
        buffered for a client that does not read).
        """
        sock = h2Socket(self.port)
        conn = clientConnection(sock)

        def frames() -> Any:
            n = 0
            while True:
                n += 1
                conn.ping(n.to_bytes(8, "big"))
                yield conn.data_to_send()

        self.attack(sock, frames(), 20_000)

    def test_zeroWindow(self) -> None:
        """
        A client that asks for the largest file on every stream it may open
        and keeps its flow control windows shut is aborted after
        send_timeout, and counted.
        """
        sock = h2Socket(self.port)
        conn = clientConnection(sock)
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        for _ in range(10):
            conn.send_headers(conn.get_next_available_stream_id(),
                              requestHeaders(b"/static/big.bin"), end_stream=True)
        self.attack(sock, iter([conn.data_to_send()]), 1, "sendTimeouts")

    def test_headerDeadline(self) -> None:
        """
        A connection that sends its preface and then never a request is
        closed (after header_timeout) and counted.
        """
        before = self.counters()["headerTimeouts"]
        sock = h2Socket(self.port)
        clientConnection(sock)
        self.assertTrue(closedByPeer(sock))
        sock.close()
        self.assertEqual(self.counters()["headerTimeouts"], before + 1)
