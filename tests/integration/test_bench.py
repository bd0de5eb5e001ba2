"""
A smoke test of the benchmark tools (the benchmarks themselves run with
C{make bench}, never in the test suite): the C load generator builds, drives
a real echo daemon for a fraction of a second in each mode, checks every
byte, and refuses targets off the loopback network; the report writer
makes its table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support import ROOT, Daemon, freePort, isolatedConfig

BENCH = ROOT / "bench"


def buildLoadgen(test: SynchronousTestCase) -> Path:
    """
    Compile bench/loadgen.c into a temporary directory, or skip the test
    when there is no gcc.
    """
    if shutil.which("gcc") is None:
        raise SkipTest("gcc is not installed: the benchmark's C load generator cannot be built")
    out = Path(test.mktemp()).absolute()
    out.mkdir(parents=True)
    binary = out / "loadgen"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(BENCH / "loadgen.c")],
                   check=True, capture_output=True, timeout=120)
    return binary


def run(binary: Path, *args: str) -> tuple[int, list[str], str]:
    """
    Run the generator; return its status, its output lines and its errors.
    """
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)
    return result.returncode, result.stdout.splitlines(), result.stderr


class LoadgenTests(SynchronousTestCase):
    """
    The load generator against a real netservices echo.
    """

    def setUp(self) -> None:
        self.binary = buildLoadgen(self)

    def test_modesAgainstEcho(self) -> None:
        """
        Ping-pong, streaming and holding connections each run for a
        fraction of a second against twistd -n netservices, with no
        verification error, and report what they measured.
        """
        port = freePort()
        daemon = Daemon([], config=isolatedConfig(echo=f"listen = tcp:{port}:interface=127.0.0.1\n"))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port, timeout=30)
        for mode, extra in (("pingpong", ["-c", "4"]), ("stream", ["-c", "2"])):
            status, lines, errors = run(self.binary, mode, "-p", str(port), "-w", "0.05",
                                        "-d", "0.2", *extra)
            self.assertEqual(status, 0, errors)
            self.assertEqual(lines[0], "measuring")
            report = json.loads(lines[1])
            self.assertEqual(report["mode"], mode)
            self.assertGreater(report["ops"], 0)
            self.assertGreater(report["bytes"], 0)
        status, lines, errors = run(self.binary, "hold", "-p", str(port), "-c", "50", "-d", "0.3")
        self.assertEqual((status, lines), (0, ["ready 50"]), errors)

    def test_udpWindow(self) -> None:
        """
        UDP mode keeps its window of datagrams in flight against a small
        loopback UDP echo and checks every echoed datagram.
        """
        import socket
        import threading

        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.2)
        self.addCleanup(server.close)
        done = threading.Event()

        def echo() -> None:
            while not done.is_set():
                try:
                    data, peer = server.recvfrom(65536)
                except OSError:
                    continue
                server.sendto(data, peer)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 5)
        self.addCleanup(done.set)
        status, lines, errors = run(self.binary, "udp", "-p", str(server.getsockname()[1]),
                                    "-W", "8", "-w", "0.05", "-d", "0.3")
        self.assertEqual(status, 0, errors)
        report = json.loads(lines[1])
        self.assertGreater(report["ops"], 0)
        self.assertEqual(report["bytes"], 64 * report["ops"])

    def test_detectsWrongEcho(self) -> None:
        """
        A server that answers with other bytes than it got is reported as an
        error (exit status 1), not measured.
        """
        import socket
        import threading

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        self.addCleanup(listener.close)

        def corrupt() -> None:
            conn, _ = listener.accept()
            with conn:
                data = conn.recv(64)
                conn.sendall(bytes(b ^ 1 for b in data))
                conn.recv(64)

        thread = threading.Thread(target=corrupt, daemon=True)
        thread.start()
        status, lines, errors = run(self.binary, "pingpong", "-p", str(listener.getsockname()[1]),
                                    "-w", "0", "-d", "2")
        thread.join(10)
        self.assertEqual(status, 1)
        self.assertIn("differ", errors)

    def test_loopbackOnly(self) -> None:
        """
        Any target outside 127.0.0.0/8 is refused before a packet is sent.
        """
        status, _, errors = run(self.binary, "pingpong", "-H", "192.0.2.1", "-p", "7", "-d", "0.1")
        self.assertEqual(status, 1)
        self.assertIn("loopback", errors)


class ReportTests(SynchronousTestCase):
    """
    The report writer turns samples into a table and target verdicts.
    """

    def test_tableAndTargets(self) -> None:
        """
        Medians, ratios and verdicts come out of the samples, and the
        markdown and chart files are written.
        """
        sys.path.insert(0, str(BENCH))
        self.addCleanup(sys.path.remove, str(BENCH))
        import report
        import run as bench

        workload = bench.Workload("echo-pp100", "TCP echo", "round trips/s", lambda w: [],
                                  lambda s, o: bench.Sample(0, 0, 0))
        workload.samples = {
            "netservices": [bench.Sample(v, 90, 80, 70, 60) for v in (100, 120, 110)],
            "Twisted minimal": [bench.Sample(v, 90, 80, 70, 60) for v in (50, 60, 55)],
            "asyncio": [bench.Sample(v, 90, 80, 70, 60) for v in (100, 100, 100)],
        }
        rows = report.targetRows([workload])
        self.assertIn(("TCP echo, 100 connections >= 1.0x asyncio", "netservices", "1.10x", "met"),
                      rows)
        self.assertIn(("TCP echo: >= 0.95x minimal Twisted", "netservices", "2.00x", "met"), rows)
        table = "\n".join(report.resultsTable([workload]))
        self.assertIn("| netservices | 110.0 | 100.0 - 120.0 | 70% (90%) | 60% (80%) | - |", table)
        self.assertIn("| asyncio | 100.0 | 100.0 - 100.0 | 70% (90%) | 60% (80%) | 1.10x |", table)
        summary = "\n".join(report.summaryTable([workload]))
        self.assertIn("| TCP echo (round trips/s) | 110.0 | - | Twisted minimal 55.0 (2.00x); "
                      "asyncio 100.0 (1.10x) |", summary)
        out = Path(self.mktemp()).absolute()
        options = bench.Options(1.0, 0.1, 3, 10, 0.0, out)
        markdown = report.writeReport([workload], options, out, "0.1", "0.2", False)
        self.assertIn("1.10x", markdown.read_text())
        self.assertTrue(markdown.with_suffix(".png").stat().st_size > 0)

    def test_bytecodeWritten(self) -> None:
        """
        The bench writes the bytecode of netservices' modules before it
        measures, so start-up is measured as installed packages start.
        """
        import importlib.util

        sys.path.insert(0, str(BENCH))
        self.addCleanup(sys.path.remove, str(BENCH))
        import run as bench

        bench.compileBytecode()
        for module in ("config/__init__.py", "daemon/tap.py", "web/_service.py"):
            cached = Path(importlib.util.cache_from_source(str(ROOT / "services" / module)))
            self.assertTrue(cached.exists(), cached)
            self.assertGreaterEqual(
                cached.stat().st_mtime, (ROOT / "services" / module).stat().st_mtime
            )


class FetchClientsTests(SynchronousTestCase):
    """
    The download workload measures netservices' own client.
    """

    def test_netservicesFetchMeasured(self) -> None:
        """
        L{fetchClients} includes C{netservices fetch}: it looks for the
        command's module where the package keeps it.
        """
        sys.path.insert(0, str(BENCH))
        self.addCleanup(sys.path.remove, str(BENCH))
        import run as bench

        names = [client.label for client in bench.fetchClients()]
        self.assertEqual(names, ["netservices fetch", "Twisted minimal", "curl"])
