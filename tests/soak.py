"""
The soak test (C{make soak}; not part of CI): a real C{twistd -n netservices}
under mixed load for C{SOAK_SECONDS} (default 1800 s, 30 minutes).

The load cycles through every service the daemon has: echo connections
(sha256-checked), UDP echo datagrams, HTTP requests to each resource,
mutated HTTP requests, and the C{netservices} client command.  Every
C{SOAK_SAMPLE} seconds (default 10) it samples the daemon's RSS and
descriptor count.  At the end it prints the figures and fails (exit status
1) when:

  - the RSS slope, fitted over the samples after the first tenth of the run
    (warm-up), is 1 MB per 10 minutes or more;
  - the descriptor count at the end differs from the one after warm-up by
    more than 5 (the count is taken when the load pauses);
  - any request, echo or datagram failed.

Run a short one with C{SOAK_SECONDS=120 make soak}.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.config import SECTIONS

from .echoload import echoLoad
from .httpfuzz import fuzz
from .reliabilitysupport import MB, LimitedDaemon, onlyConfig
from .support import freePort, waitUntil


@dataclass
class Tally:
    """
    Counts of the soak's operations and their failures, by kind.
    """

    done: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def ok(self, kind: str, n: int = 1) -> None:
        self.done[kind] = self.done.get(kind, 0) + n

    def fail(self, kind: str, message: str) -> None:
        self.errors.setdefault(kind, []).append(message)

    @property
    def errorCount(self) -> int:
        return sum(len(v) for v in self.errors.values())


def slope(samples: list[tuple[float, float]]) -> float:
    """
    The least-squares slope of C{(t, y)} samples, in y per unit of t.
    """
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    my = sum(y for _, y in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return sum((t - mt) * (y - my) for t, y in samples) / den if den else 0.0


def httpGet(port: int, path: str) -> int:
    """
    One GET on a fresh connection; the status code (0 when none came).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0


def udpEcho(port: int, count: int, size: int) -> int:
    """
    Send C{count} datagrams of C{size} bytes to the UDP echo service, one at
    a time; how many came back intact.
    """
    good = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        for i in range(count):
            payload = hashlib.sha256(b"%d" % i).digest() * (size // 32)
            s.sendto(payload, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65536)
            except TimeoutError:
                continue
            good += data == payload
    return good


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "1800"))
    every = float(os.environ.get("SOAK_SAMPLE", "10"))
    echoPort, webPort, udpPort = freePort(), freePort(), freePort(socket.SOCK_DGRAM)
    sections = {"echo": f"listen = tcp:{echoPort}:interface=127.0.0.1\n"}
    static = Path(tempfile.mkdtemp(prefix="netservices-soak-"))
    (static / "index.html").write_text("<h1>soak</h1>\n")
    if "web" in SECTIONS:
        sections["web"] = f"listen = tcp:{webPort}:interface=127.0.0.1\nstatic_dir = {static}\n"
    if "udp-echo" in SECTIONS:
        sections["udp_echo"] = (f"enabled = yes\nlisten = udp:{udpPort}:interface=127.0.0.1\n"
                                "source_rate = 5000\nsource_burst = 5000\nglobal_rate = 5000\n")
    if "discovery" in SECTIONS:
        sections["discovery"] = f"port = {freePort(socket.SOCK_DGRAM)}\ninterval = 1\nttl = 3\n"
    daemon = LimitedDaemon([], config=onlyConfig(**sections))
    try:
        daemon.waitForTCP(echoPort)
        if "web" in sections:
            daemon.waitForTCP(webPort)
        return soak(daemon, seconds, every, echoPort, webPort if "web" in sections else None,
                    udpPort if "udp_echo" in sections else None)
    finally:
        shutil.rmtree(static, ignore_errors=True)
        status = daemon.stop()
        print(f"daemon stopped with status {status}")


def soak(daemon: LimitedDaemon, seconds: float, every: float, echoPort: int,
         webPort: int | None, udpPort: int | None) -> int:
    tally = Tally()
    loads: list[tuple[str, Callable[[int], None]]] = []

    def echo(i: int) -> None:
        result = echoLoad(("127.0.0.1", echoPort), clients=20, size=64 * 1024, timeout=30, seed=i)
        tally.ok("echo connections", result.ok)
        for error in result.errors:
            tally.fail("echo", error)

    loads.append(("echo", echo))
    if udpPort is not None:
        def udp(i: int) -> None:
            good = udpEcho(udpPort, 200, 512)
            tally.ok("udp datagrams", good)
            if good < 200:
                tally.fail("udp", f"round {i}: {200 - good} of 200 datagrams lost")

        loads.append(("udp", udp))
    if webPort is not None:
        def web(i: int) -> None:
            for path in ("/", "/status", "/health", "/metrics", "/static/", "/nope"):
                status = httpGet(webPort, path)
                tally.ok("http requests")
                if status == 0 or status >= 500 or (path != "/nope" and status >= 400):
                    tally.fail("http", f"round {i}: GET {path} -> {status}")
            result = fuzz(webPort, 200, seed=i, concurrency=16, idle=0.3)
            tally.ok("mutated http requests", result.sent)
            for index, code, request in result.serverErrors:
                tally.fail("fuzz", f"seed {i} #{index}: {code} for {request[:120]!r}")

        def client(i: int) -> None:
            command = [os.path.join(os.path.dirname(sys.executable), "netservices"), "fetch",
                       f"http://127.0.0.1:{webPort}/"]
            done = subprocess.run(command, check=False, capture_output=True, timeout=30)
            tally.ok("client fetches")
            if done.returncode != 0:
                tally.fail("client", f"round {i}: exit {done.returncode}: {done.stderr[-300:]!r}")

        loads.append(("web", web))
        if importlib.util.find_spec("services.cli.fetch") is not None:
            loads.append(("client", client))

    baseline = daemon.descriptors()

    def resting() -> int:
        # Between rounds no load runs: wait (briefly) for the daemon to
        # close the round's connections, then count.
        try:
            waitUntil(lambda: daemon.descriptors() <= baseline + 5, 5, "resting descriptors")
        except AssertionError:
            pass
        return daemon.descriptors()

    started = time.monotonic()
    samples: list[tuple[float, float, int]] = []
    nextSample = started
    round_ = 0
    while time.monotonic() - started < seconds:
        for name, load in loads:
            try:
                load(round_)
            except Exception as e:
                tally.fail(name, f"round {round_}: {type(e).__name__}: {e}")
        round_ += 1
        if time.monotonic() >= nextSample:
            daemon.assertAlive()
            samples.append((time.monotonic() - started, daemon.rss() / MB, resting()))
            t, rss, fds = samples[-1]
            print(f"  {t:7.0f} s  rss {rss:6.1f} MB  fds {fds:3d}  rounds {round_}", flush=True)
            nextSample += every

    warm = [s for s in samples if s[0] >= seconds / 10] or samples
    rssSlope = slope([(t, rss) for t, rss, _ in warm]) * 600  # MB per 10 minutes
    fdsDrift = warm[-1][2] - warm[0][2]
    print(f"soak: {seconds:.0f} s, {round_} rounds; done: {tally.done}")
    print(f"soak: RSS {warm[0][1]:.1f} -> {warm[-1][1]:.1f} MB, slope {rssSlope:+.2f} MB per 10 min "
          f"(limit 1); descriptors {warm[0][2]} -> {warm[-1][2]} (drift {fdsDrift:+d}, limit 5); "
          f"errors {tally.errorCount}")
    for kind, messages in tally.errors.items():
        for message in messages[:5]:
            print(f"  {kind}: {message}")
    failed = rssSlope >= 1.0 or abs(fdsDrift) > 5 or tally.errorCount
    print("soak: FAILED" if failed else "soak: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
