"""
Integration tests: a real C{twistd -n netservices} web service on a free
loopback port, driven by curl, urllib and plain sockets.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests import support
from tests.support import Daemon, freePort, runTwistd, temporaryDirectory, waitUntil

NUMBERS = "".join(f"{i}\n" for i in range(1000)).encode()


def webConfig(body: str) -> str:
    """
    A tap.conf that runs only the web service, configured by C{body}.
    """
    isolated = getattr(support, "isolatedConfig", None)
    if isolated is not None:  # turns the other services off
        return str(isolated(echo="enabled = no", web=body))
    return "[echo]\nenabled = no\n\n[web]\n" + body


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """
    Run curl quietly with a timeout.
    """
    executable = shutil.which("curl")
    if executable is None:
        raise SkipTest("curl is not installed: run `make system-deps` (tests/system-deps.sh)")
    return subprocess.run(
        [executable, "--silent", "--show-error", "--max-time", "10", *args],
        capture_output=True,
        timeout=20,
        check=True,
    )


class WebDaemonTestCase(SynchronousTestCase):
    """
    Starts a daemon serving a static directory with an access log.
    """

    headerTimeout = 10.0
    maxBody = "64K"

    def setUp(self) -> None:
        base = temporaryDirectory(self)
        self.www = base / "www"
        (self.www / "sub").mkdir(parents=True)
        (self.www / "numbers.txt").write_bytes(NUMBERS)
        (self.www / "index.html").write_bytes(b"<h1>static index</h1>\n")
        (base / "secret.txt").write_bytes(b"secret\n")
        self.accessLog = base / "access.log"
        self.port = freePort()
        self.daemon = Daemon(
            [],
            config=webConfig(
                f"listen = tcp:{self.port}:interface=127.0.0.1\n"
                f"static_dir = {self.www}\n"
                f"header_timeout = {self.headerTimeout}\n"
                f"max_body = {self.maxBody}\n"
                f"access_log = {self.accessLog}\n"
            ),
        )
        self.addCleanup(self.daemon.stop)
        self.daemon.waitForLog("web listening on", timeout=20)
        self.daemon.waitForTCP(self.port)
        self.base = f"http://127.0.0.1:{self.port}"

    def get(self, path: str, data: bytes | None = None, **headers: str) -> Any:
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        return urllib.request.urlopen(request, timeout=10)


class CurlTests(WebDaemonTestCase):
    """
    curl gets ranges, HEAD and ETag answers right.
    """

    def test_ranges(self) -> None:
        """
        A single range and several ranges come back as 206 with the right
        bytes.
        """
        one = curl("--range", "10-19", f"{self.base}/static/numbers.txt")
        self.assertEqual(one.stdout, NUMBERS[10:20])
        several = curl("--include", "--range", "0-4,100-109", f"{self.base}/static/numbers.txt")
        self.assertIn(b"HTTP/1.1 206 Partial Content", several.stdout)
        self.assertIn(b"multipart/byteranges", several.stdout)
        self.assertIn(b"content-range: bytes 0-4/%d" % len(NUMBERS), several.stdout.lower())
        self.assertIn(b"content-range: bytes 100-109/%d" % len(NUMBERS), several.stdout.lower())
        self.assertIn(NUMBERS[100:110], several.stdout)

    def test_headAndETag(self) -> None:
        """
        HEAD gives the length and the ETag; If-None-Match with it is a 304;
        the hello page's HEAD has its exact length.
        """
        head = curl("--head", f"{self.base}/static/numbers.txt").stdout.decode()
        self.assertIn("HTTP/1.1 200 OK", head)
        self.assertIn(f"Content-Length: {len(NUMBERS)}", head)
        match = re.search(r'^ETag: ("[^"]+")\r$', head, re.MULTILINE)
        assert match is not None, head
        etag = match.group(1)
        code = curl(
            "--output", "/dev/null", "--write-out", "%{http_code}",
            "--header", f"If-None-Match: {etag}",
            f"{self.base}/static/numbers.txt",
        )
        self.assertEqual(code.stdout, b"304")
        hello = curl("--head", f"{self.base}/").stdout.decode()
        self.assertIn("Content-Length: 11", hello)
        self.assertIn("Content-Type: text/html;charset=UTF-8", hello)

    def test_redirectAndTraversal(self) -> None:
        """
        curl follows /static to /static/; a traversal attempt (sent as is,
        not normalised by curl) is a 404.
        """
        page = curl("--location", f"{self.base}/static")
        self.assertEqual(page.stdout, b"<h1>static index</h1>\n")
        for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/a%00b"):
            code = curl(
                "--path-as-is", "--output", "/dev/null", "--write-out", "%{http_code}",
                self.base + path,
            )
            self.assertEqual(code.stdout, b"404", path)


class UrllibTests(WebDaemonTestCase):
    """
    Python's urllib gets every route; POST is refused properly.
    """

    def test_get(self) -> None:
        """
        GET on /, /static/, /status, /health and /metrics.
        """
        with self.get("/") as response:
            self.assertEqual(response.read(), b"Hello World")
            self.assertEqual(response.headers["Content-Type"], "text/html;charset=UTF-8")
        with self.get("/static/") as response:
            self.assertEqual(response.read(), b"<h1>static index</h1>\n")
        with self.get("/status") as response:
            status = json.load(response)
        self.assertEqual(status["services"]["web"]["addresses"], [f"127.0.0.1:{self.port}"])
        self.assertGreaterEqual(status["services"]["web"]["counters"]["requests"], 2)
        with self.get("/health") as response:
            self.assertEqual(json.load(response)["status"], "ok")
        with self.get("/metrics") as response:
            text = response.read().decode()
        names = {f.name for f in text_string_to_metric_families(text)}
        self.assertIn("netservices_web_requests", names)
        self.assertIn("netservices_uptime_seconds", names)

    def test_post(self) -> None:
        """
        POST / is 405 with Allow; a body over max_body is 413.
        """
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.get("/", data=b"a=1")
        self.assertEqual(cm.exception.code, 405)
        self.assertEqual(cm.exception.headers["Allow"], "GET, HEAD")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.get("/", data=b"x" * 200_000)
        self.assertEqual(cm.exception.code, 413)

    def test_accessLog(self) -> None:
        """
        Each request is one Combined Log Format line in the access log.
        """
        with self.get("/static/numbers.txt", **{"User-Agent": "itest/1"}) as response:
            response.read()

        def logged() -> str | None:
            text = self.accessLog.read_text() if self.accessLog.exists() else ""
            return text if "itest/1" in text else None

        line = waitUntil(logged, 10, "the access log line").strip().splitlines()[-1]
        self.assertRegex(
            line,
            r'^127\.0\.0\.1 - - \[[^]]+\] "GET /static/numbers\.txt HTTP/1\.1" 200 '
            + str(len(NUMBERS))
            + r' "-" "itest/1"$',
        )


class SlowlorisTests(WebDaemonTestCase):
    """
    Slow clients are closed at the header deadline while others are served.
    """

    headerTimeout = 2.0
    clients = 100

    def timedGet(self) -> float:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        elapsed = time.monotonic() - started
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer)
        return elapsed

    def test_slowloris(self) -> None:
        """
        100 connections dripping one header byte a second are all answered
        408 and closed by the header deadline (never before it, and before
        the drip would have ended), while normal GETs are answered.
        """
        drip = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        opened: dict[socket.socket, float] = {}
        closedAfter: list[float] = []
        answers: dict[socket.socket, bytes] = {}
        for _ in range(self.clients):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.setblocking(False)
            opened[s] = time.monotonic()
            answers[s] = b""
            self.addCleanup(s.close)
        start = min(opened.values())
        deadline = start + self.headerTimeout + 3
        sent = 0
        nextDrip = start
        getTimes: list[float] = []
        while opened and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= nextDrip and sent < len(drip):
                for s in list(opened):
                    try:
                        s.send(drip[sent : sent + 1])
                    except OSError:
                        pass
                sent += 1
                nextDrip += 1.0
            if len(getTimes) < 3 and now - start > 0.5 * (len(getTimes) + 1):
                getTimes.append(self.timedGet())
            readable, _, _ = select.select(list(opened), [], [], 0.05)
            for s in readable:
                try:
                    chunk = s.recv(4096)
                except ConnectionError:
                    chunk = b""
                answers[s] += chunk
                if not chunk:
                    closedAfter.append(time.monotonic() - opened.pop(s))
        self.assertEqual(len(opened), 0, f"{len(opened)} slow connections still open")
        self.assertEqual(len(closedAfter), self.clients)
        self.assertGreaterEqual(min(closedAfter), self.headerTimeout - 0.1)
        self.assertTrue(all(a.startswith(b"HTTP/1.1 408 ") for a in answers.values()))
        self.assertEqual(len(getTimes), 3)
        with self.get("/status") as response:
            counters = json.load(response)["services"]["web"]["counters"]
        self.assertEqual(counters["headerTimeouts"], self.clients)


class StartupErrorTests(SynchronousTestCase):
    """
    Web configuration mistakes stop the daemon with one line.
    """

    def test_missingStaticDir(self) -> None:
        """
        --static with a missing directory exits 1, naming the flag.
        """
        missing = str(temporaryDirectory(self) / "missing")
        result = runTwistd(["--no-echo", "--static", missing])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f"netservices: error: command line: --static '{missing}'", result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)
