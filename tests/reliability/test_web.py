"""
Reliability battery, web items (5 to 9): slowloris, HTTP limits and request
smuggling, static path attacks, fuzzing and wrk, against a real
C{twistd -n netservices} web service on loopback.

Every test is skipped when this netservices has no web service.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.httpfuzz import fuzz, statuses
from tests.reliabilitysupport import (
    MB,
    LimitedDaemon,
    assertNoTraceback,
    requireServices,
    staticWebDaemon,
)
from tests.slowloris import slowloris

#: What the file outside the static root contains: it must never be served.
SECRET = b"netservices-secret-outside-the-root"


def request(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """
    Send C{data} on a new connection and read until the server closes it
    (or C{timeout}); what came back, even if the connection was reset
    after the answer.
    """
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
    return received


def status(response: bytes) -> int:
    """
    The status code of the first response in C{response}, 0 for none.
    """
    codes = statuses(response)
    return codes[0] if codes else 0


class WebDaemonMixin:
    """
    Start a daemon running only the web service, with a static root that
    has a secret file next to it (outside) and a symlink pointing at it.
    """

    def startWeb(self, extra: str = "") -> tuple[LimitedDaemon, int]:
        requireServices("web")
        test: SynchronousTestCase = self  # type: ignore[assignment]
        base = Path(tempfile.mkdtemp(prefix="netservices-web-"))
        test.addCleanup(shutil.rmtree, base, True)
        self.root = base / "www"
        (self.root / "sub").mkdir(parents=True)
        (self.root / "index.html").write_bytes(b"<h1>index</h1>\n")
        (self.root / "sub" / "a.txt").write_bytes(b"a\n")
        (base / "secret.txt").write_bytes(SECRET)
        (base / "outside").mkdir()
        (base / "outside" / "index.html").write_bytes(SECRET)
        os.symlink(base / "secret.txt", self.root / "link")
        os.symlink(base / "outside", self.root / "linkdir")
        return staticWebDaemon(test, self.root, extra)


class SlowlorisTests(WebDaemonMixin, SynchronousTestCase):
    """
    Item 5: slow clients cannot hold the web service.
    """

    def test_slowloris(self) -> None:
        """
        Item 5: 500 connections that drip one header byte a second (from
        two loopback addresses, 250 each, under the per-peer cap) are each
        closed by the header deadline before the attack ends (the daemon
        counts 500 header timeouts; each byte would restart twisted.web's
        own timeout), and every ordinary GET during the attack is answered.
        The slowest lifetime and answer are printed, not asserted: they are
        wall-clock figures.
        """
        headerTimeout = 2.0
        daemon, port = self.startWeb(f"header_timeout = {headerTimeout}\n")
        result = slowloris(port, 500, interval=1.0, duration=headerTimeout + 4, probeEvery=0.25,
                           sources=("127.0.0.2", "127.0.0.3"))
        lifetimes = [t for t in result.lifetimes if t is not None]
        stillOpen = len(result.lifetimes) - len(lifetimes)
        answered = [t for t in result.answered if t is not None]
        print(
            f"\nitem 5: 500 slow connections: {len(lifetimes)} closed, longest after "
            f"{max(lifetimes, default=0):.2f} s (limit {headerTimeout + 1:.1f}), {stillOpen} still "
            f"open; {len(answered)} of {len(result.answered)} GETs answered during the attack, "
            f"slowest {max(answered, default=0) * 1000:.0f} ms"
        )
        self.assertEqual(result.failedToConnect, 0)
        self.assertEqual(stillOpen, 0)
        self.assertGreater(len(result.answered), 5)
        self.assertEqual(len(answered), len(result.answered), "a GET got no answer during the attack")
        counters = json.loads(request(port, b"GET /status?format=json HTTP/1.0\r\n\r\n").partition(b"\r\n\r\n")[2])
        self.assertEqual(counters["services"]["web"]["counters"]["headerTimeouts"], 500)
        daemon.assertAlive()
        assertNoTraceback(daemon)


class LimitsTests(WebDaemonMixin, SynchronousTestCase):
    """
    Item 6: header and body limits, ambiguous framing, pipelining.
    """

    def setUp(self) -> None:
        self.daemon, self.port = self.startWeb("max_body = 1K\n")
        # Runs before the daemon is stopped (cleanups run last in, first out).
        self.addCleanup(assertNoTraceback, self.daemon)
        self.addCleanup(self.daemon.assertAlive)

    def assertStatus(self, expected: int, data: bytes, timeout: float = 5.0) -> bytes:
        response = request(self.port, data, timeout)
        self.assertEqual(status(response), expected, f"{data[:200]!r} got {response[:200]!r}")
        return response

    def test_headerCount(self) -> None:
        """
        Item 6: a request with 100 headers is served; one with 101 headers
        gets 400.
        """
        def withHeaders(n: int) -> bytes:
            headers = [b"Host: 127.0.0.1", b"Connection: close"]
            headers += [b"X-H%d: v" % i for i in range(n - len(headers))]
            return b"GET / HTTP/1.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"

        self.assertStatus(200, withHeaders(100))
        self.assertStatus(400, withHeaders(101))
        self.assertStatus(400, withHeaders(1000))

    def test_headerSize(self) -> None:
        """
        Item 6: headers of more than 16 KiB get 400 (sent in one piece, or
        trickled in small pieces); 15 KiB of headers are served.
        """
        def withSize(size: int) -> bytes:
            # size bytes of header lines, CRLFs included, after the request line
            start = b"Host: 127.0.0.1\r\nConnection: close\r\nX-Big: "
            return (b"GET / HTTP/1.1\r\n" + start + b"a" * (size - len(start) - 2)
                    + b"\r\n\r\n")

        self.assertStatus(200, withSize(15 * 1024))
        self.assertStatus(400, withSize(16 * 1024 + 1))
        self.assertStatus(400, withSize(64 * 1024))
        many = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
            b"X-%d: %s\r\n" % (i, b"b" * 300) for i in range(60)) + b"\r\n"
        self.assertStatus(400, many)

    def test_bodyTooLarge(self) -> None:
        """
        Item 6: a declared body over max_body gets 413 at once, before a
        byte of it is sent (and without a 100 Continue); a chunked body gets
        413 once it goes over.
        """
        for extra in (b"", b"Expect: 100-continue\r\n"):
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1025\r\n"
                          + extra + b"\r\n")
                answer = s.recv(65536)
            self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer)
        chunked = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + b"400\r\n" + b"x" * 1024 + b"\r\n" + b"400\r\n" + b"x" * 1024 + b"\r\n")
        self.assertStatus(413, chunked)

    def test_smuggling(self) -> None:
        """
        Item 6: ambiguous framing gets 400: duplicate Content-Length (equal
        or not, or as a list), Content-Length with Transfer-Encoding,
        C{Content-Length: +3} and other non-digits, and transfer codings
        that do not end in a lone chunked.
        """
        start = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        cases = [
            b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"Content-Length: 3, 3\r\n\r\nabc",
            b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"Content-Length: +3\r\n\r\nabc",
            b"Content-Length: -3\r\n\r\nabc",
            b"Content-Length: 0x3\r\n\r\nabc",
            b"Content-Length: 3.0\r\n\r\nabc",
            b"Content-Length: \xd9\xa3\r\n\r\nabc",
            b"Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"Transfer-Encoding: \x0bchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
            b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
        ]
        for case in cases:
            self.assertStatus(400, start + case)

    def test_pipelining(self) -> None:
        """
        Item 6: 101 requests sent at once on one connection get 101
        responses, in order.
        """
        for i in range(101):
            (self.root / f"n{i}.txt").write_bytes(b"file %d\n" % i)
        pipeline = b"".join(
            b"GET /static/n%d.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % i for i in range(100)
        ) + b"GET /static/n100.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        response = request(self.port, pipeline, timeout=20)
        self.assertEqual(statuses(response), [200] * 101)
        bodies = re.findall(rb"file (\d+)\n", response)
        self.assertEqual([int(b) for b in bodies], list(range(101)))
        print(f"\nitem 6: 101 pipelined requests, {len(bodies)} responses in order")


#: Paths that try to leave the static root (mounted at /static/): at least
#: 40 traversal, encoding, NUL and overlong UTF-8 variants.
ATTACKS = [
    "/static/../secret.txt", "/static/../../secret.txt", "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2E/secret.txt",
    "/static/%2e%2e%2fsecret.txt", "/static/.%2e/secret.txt", "/static/%2e./secret.txt",
    "/static/%252e%252e/secret.txt", "/static/%252e%252e%252fsecret.txt",
    "/static/..%5csecret.txt", "/static/..\\secret.txt", "/static/%5c..%5csecret.txt",
    "/static/sub/../../secret.txt", "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static/./../secret.txt", "/static/sub/./../../secret.txt", "/static/..;/secret.txt",
    "/static/.../secret.txt", "/static/....//secret.txt", "/static/..././secret.txt",
    "/static/%c0%ae%c0%ae/secret.txt", "/static/%c0%ae%c0%ae%c0%afsecret.txt",
    "/static/%e0%80%ae%e0%80%ae/secret.txt", "/static/%f0%80%80%ae%f0%80%80%ae/secret.txt",
    "/static/..%c0%afsecret.txt", "/static/..%c1%9csecret.txt", "/static/%c0%2e%c0%2e/secret.txt",
    "/static/%ef%bc%8e%ef%bc%8e/secret.txt", "/static/%e2%80%a5/secret.txt",
    "/static/index.html%00", "/static/%00../secret.txt", "/static/..%00/secret.txt",
    "/static/secret.txt%00.html", "/static/%00", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/%2F..%2F..%2Fetc%2Fpasswd", "/static/../../../../../../etc/passwd",
    "/static/..%252f..%252f..%252fetc%252fpasswd", "/static/%u002e%u002e/secret.txt",
    "/static/link", "/static/linkdir/", "/static/linkdir/index.html", "/static/sub/..%2f..%2flink",
    "/static/../www/../secret.txt", "/static/%ff%fe/../secret.txt", "/static/\x7f/../secret.txt",
    "/static/..%09/secret.txt", "/static/..%20/secret.txt", "/static/.. /secret.txt",
    "/../secret.txt", "/%2e%2e/secret.txt", "//secret.txt",
]


class StaticPathTests(WebDaemonMixin, SynchronousTestCase):
    """
    Item 7: nothing outside the static root is served.
    """

    def test_pathAttacks(self) -> None:
        """
        Item 7: over 40 traversal, encoding, NUL and overlong UTF-8 paths,
        and symlinks out of the root (to a file and to a directory), never
        serve anything from outside the root, never answer 5xx, and leave
        no traceback in the log; the root itself is still served.
        """
        daemon, port = self.startWeb()
        self.assertGreaterEqual(len(ATTACKS), 40)
        codes = {}
        for path in ATTACKS:
            for version in (b"HTTP/1.1", b"HTTP/1.0"):
                raw = path.encode("latin-1")
                response = request(port, b"GET " + raw + b" " + version
                                   + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                code = status(response)
                codes[path] = code
                self.assertNotIn(SECRET, response, path)
                self.assertNotIn(b"root:x:0:0", response, path)
                self.assertTrue(100 <= code < 500, f"{path!r} got {response[:200]!r}")
        self.assertIn(b"<h1>index</h1>", request(
            port, b"GET /static/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
        print(f"\nitem 7: {len(ATTACKS)} attack paths x 2 HTTP versions, nothing outside the root "
              f"served; status codes seen: {sorted(set(codes.values()))}")
        daemon.assertAlive()
        assertNoTraceback(daemon)


class FuzzTests(WebDaemonMixin, SynchronousTestCase):
    """
    Item 8: mutated requests never break the web service.
    """

    def test_fuzz(self) -> None:
        """
        Item 8: 50,000 seeded mutated requests (the seed is
        C{NETSERVICES_FUZZ_SEED}, default 8) get no 5xx and show no traceback
        in any response or in the log, and the server's RSS stays under
        100 MB throughout.
        """
        daemon, port = self.startWeb("max_body = 64K\n")
        seed = int(os.environ.get("NETSERVICES_FUZZ_SEED", "8"))
        count = 50_000
        peak = [daemon.rss()]

        def sample(sent: int) -> None:
            if sent % 5000 == 0:
                daemon.assertAlive()
                peak[0] = max(peak[0], daemon.rss())

        result = fuzz(port, count, seed, concurrency=64, idle=0.5, timeout=300, onProgress=sample)
        peak[0] = max(peak[0], daemon.rss())
        print(
            f"\nitem 8: {result.sent} mutated requests (seed {seed}) in {result.seconds:.1f} s: "
            f"codes {dict(sorted(result.codes.items()))}, {result.silent} unanswered (incomplete), "
            f"{len(result.serverErrors)} 5xx, peak RSS {peak[0] / MB:.1f} MB"
        )
        self.assertEqual(result.sent, count)
        self.assertEqual(
            result.serverErrors[:5], [],
            f"{len(result.serverErrors)} 5xx answers (seed {seed}); reproduce with "
            f"tests.httpfuzz.mutatedRequests({seed}, {count})",
        )
        self.assertEqual(result.tracebacks, [])
        self.assertLess(peak[0], 100 * MB)
        daemon.assertAlive()
        assertNoTraceback(daemon)


def wrkSeconds() -> int:
    """
    How long each wrk run lasts: C{NETSERVICES_WRK_SECONDS}, default 5 (CI);
    C{make soak} runs the full 30 s.
    """
    return int(os.environ.get("NETSERVICES_WRK_SECONDS", "5"))


def parseWrk(output: str) -> tuple[float, int, int]:
    """
    The p99 latency (seconds), the socket errors and the requests of wrk's
    C{--latency} output.
    """
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    match = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if match is None:
        raise AssertionError(f"no 99% latency in wrk's output:\n{output}")
    p99 = float(match.group(1)) * units[match.group(2)]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socketErrors = sum(int(n) for n in errors.groups()) if errors else 0
    requests = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    return p99, socketErrors, int(requests.group(1)) if requests else 0


class WrkTests(WebDaemonMixin, SynchronousTestCase):
    """
    Item 9: sustained load on the hello resource.
    """

    def test_wrk(self) -> None:
        """
        Item 9: three wrk runs against the hello resource (each
        C{NETSERVICES_WRK_SECONDS} long: 5 s in CI, 30 s under C{make
        soak}): 0 socket errors, every run served requests, and the
        server's RSS after each run within 10 MB of the others.  The p99
        latency is printed, not asserted: it is a wall-clock figure of a
        shared machine (C{make bench} measures speed).
        """
        wrk = shutil.which("wrk")
        if wrk is None:
            raise SkipTest("wrk is not installed (tests/system-deps.sh installs it)")
        daemon, port = self.startWeb()
        seconds = wrkSeconds()
        # Warm up, so the first run's RSS is not the interpreter growing.
        subprocess.run([wrk, "-t1", "-c8", "-d1s", f"http://127.0.0.1:{port}/"],
                       capture_output=True, check=True, timeout=30)
        runs = []
        while len(runs) < 3:
            done = subprocess.run(
                [wrk, "-t1", "-c8", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
                capture_output=True, text=True, timeout=seconds + 60, check=False,
            )
            self.assertEqual(done.returncode, 0, done.stderr)
            p99, errors, requests = parseWrk(done.stdout)
            runs.append((p99, errors, requests, daemon.rss()))
        rss = [r[3] for r in runs]
        drift = max(rss) - min(rss)
        print(
            f"\nitem 9: 3 wrk runs of {seconds} s: "
            + "; ".join(f"{r[2]} requests, p99 {r[0] * 1000:.1f} ms, {r[1]} socket errors, "
                        f"RSS {r[3] / MB:.1f} MB" for r in runs)
            + f"; RSS drift {drift / MB:.2f} MB"
        )
        for p99, errors, requests, _ in runs:
            self.assertEqual(errors, 0)
            self.assertGreater(requests, 0)
        self.assertLess(drift, 10 * MB)
        daemon.assertAlive()
        assertNoTraceback(daemon)

