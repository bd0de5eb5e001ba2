"""
A smoke test of the benchmark tools (the benchmarks themselves run with
C{make bench}, never in the test suite): the C load generator builds, drives
a real echo daemon for a fraction of a second in each mode, checks every
byte, and refuses targets off the loopback network; the report writer
makes its tables (targets, floors, the change since the previous report);
the pipelined and HTTPS rows check what wrk and the servers answer.
"""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

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


def benchModules(test: SynchronousTestCase) -> tuple[Any, Any, Any]:
    """
    bench/report.py, bench/run.py and bench/compare.py, imported as the
    bench imports them (from its own directory).
    """
    sys.path.insert(0, str(BENCH))
    test.addCleanup(sys.path.remove, str(BENCH))
    import compare
    import report
    import run as bench

    return report, bench, compare


def workload(bench: Any, name: str, title: str, samples: dict[str, tuple[float, ...]],
             higherIsBetter: bool = True, unit: str = "round trips/s") -> Any:
    """
    A workload of the bench with the given figures (CPU use all alike).
    """
    made = bench.Workload(name, title, unit, lambda w: [], lambda s, o: bench.Sample(0, 0, 0),
                          higherIsBetter=higherIsBetter)
    made.samples = {label: [bench.Sample(v, 90, 80, 70, 60) for v in values]
                    for label, values in samples.items()}
    return made


class ReportTests(SynchronousTestCase):
    """
    The report writer turns samples into a table and target verdicts.
    """

    def test_tableAndTargets(self) -> None:
        """
        Medians, ratios and verdicts come out of the samples, and the
        markdown and chart files are written.
        """
        report, bench, _ = benchModules(self)
        echo = workload(bench, "echo-pp100", "TCP echo", {
            "netservices": (100, 120, 110),
            "Twisted minimal": (50, 60, 55),
            "uvloop": (100, 100, 100),
        })
        rows = report.targetRows([echo])
        self.assertEqual(rows, [("TCP echo ping-pong, 100 connections >= 1.0x uvloop", "1.10x",
                                 "met", "-")])
        self.assertIn(("TCP echo: >= 0.95x minimal Twisted", "netservices", "2.00x", "met"),
                      report.floorRows([echo]))
        table = "\n".join(report.resultsTable([echo]))
        self.assertIn("| netservices | 110.0 | 100.0 - 120.0 | 70% (90%) | 60% (80%) | - |", table)
        self.assertIn("| uvloop | 100.0 | 100.0 - 100.0 | 70% (90%) | 60% (80%) | 1.10x |", table)
        summary = "\n".join(report.summaryTable([echo]))
        self.assertIn("| TCP echo (round trips/s) | 110.0 | - | Twisted minimal 55.0 (2.00x); "
                      "uvloop 100.0 (1.10x) |", summary)
        out = Path(self.mktemp()).absolute()
        options = bench.Options(1.0, 0.1, 3, 10, 0.0, out)
        markdown = report.writeReport([echo], options, out, "0.1", "0.2", False)
        text = markdown.read_text()
        self.assertIn("| TCP echo ping-pong, 100 connections >= 1.0x uvloop | 1.10x | met | - |",
                      text)
        self.assertIn("No previous report in bench/results to compare with.", text)
        self.assertTrue(markdown.with_suffix(".png").stat().st_size > 0)

    def test_targetsOfThePerformanceGoal(self) -> None:
        """
        The targets are the performance goal's, every one judged on
        netservices as it runs by default (nsepoll).
        """
        report, _, _ = benchModules(self)
        self.assertEqual(
            sorted((t.workload, t.peer, t.ratio, t.slack, t.subject) for t in report.TARGETS),
            sorted([
                ("echo-pp100", "uvloop", 1.0, None, "netservices"),
                ("echo-pp1", "uvloop", 1.0, None, "netservices"),
                ("echo-stream", "uvloop", 1.0, None, "netservices"),
                ("echo-stream", "asyncio", 1.0, None, "netservices"),
                ("http-hello", "aiohttp (uvloop)", 1.0, None, "netservices"),
                ("http-pipeline", "aiohttp (uvloop)", 1.0, None, "netservices"),
                ("udp", "uvloop", 1.1, None, "netservices"),
                ("rss", "uvloop", 1.0, None, "netservices"),
                ("startup", "Twisted minimal", 1.0, None, "netservices"),
            ]))

    def test_otherReactorForInformation(self) -> None:
        """
        The verdict is netservices' on nsepoll; netservices on Twisted's
        epoll reactor is shown beside it without a verdict of its own, and
        still has one on the floors, each variant named by what sets it
        apart.  Lower-is-better targets compare medians as ratios too (RSS
        <= uvloop's).
        """
        report, bench, _ = benchModules(self)
        udp = workload(bench, "udp", "UDP", {
            "netservices": (115, 110, 120),
            "netservices --reactor epoll": (80, 80, 80),
            "uvloop": (100, 100, 100),
            "Twisted minimal": (100, 100, 100),
        })
        rss = workload(bench, "rss", "RSS", {
            "netservices": (1.6,), "netservices --reactor epoll": (1.2,), "uvloop": (1.28,),
            "Twisted minimal": (1.7,)}, higherIsBetter=False, unit="KiB")
        self.assertEqual(report.targetRows([udp, rss]), [
            ("UDP window 32 >= 1.1x uvloop", "1.15x", "met", "0.80x [--reactor epoll]"),
            ("RSS per idle connection at 10,000 <= uvloop's", "0.80x (1.60 vs 1.28 KiB)",
             "**missed**", "1.07x (1.20 vs 1.28 KiB) [--reactor epoll]"),
        ])
        floors = report.floorRows([udp, rss])
        self.assertIn(("UDP: >= 0.95x minimal Twisted", "netservices --reactor epoll", "0.80x",
                       "**missed**"), floors)
        self.assertIn(("RSS per idle connection <= minimal Twisted + 0.5 KiB", "netservices",
                       "1.60 vs 1.70 KiB", "met"), floors)
        self.assertEqual([report.variantTag(label) for label in (
            "netservices", "netservices --reactor epoll", "netservices (echo + web)")],
            ["netservices", "--reactor epoll", "echo + web"])

    def test_borderlineRatio(self) -> None:
        """
        A ratio just short of its target shows the digit that misses it
        (0.998x, not a missed "1.00x").
        """
        report, bench, _ = benchModules(self)
        echo = workload(bench, "echo-pp1", "Echo", {"netservices": (998,), "uvloop": (1000,)})
        self.assertEqual(report.targetRows([echo]), [
            ("TCP echo ping-pong, 1 connection >= 1.0x uvloop", "0.998x", "**missed**", "-")])

    def test_missingFigures(self) -> None:
        """
        A target whose workload ran without netservices' figures (it
        failed) is reported missed, not left out.
        """
        report, bench, _ = benchModules(self)
        pipelined = workload(bench, "http-pipeline", "HTTP pipelined", {"aiohttp (uvloop)": (9,)})
        self.assertEqual(report.targetRows([pipelined]), [
            ("HTTP hello, 16 pipelined >= 1.0x aiohttp (uvloop)", "no figures", "**missed**",
             "-")])


class ComparisonTests(SynchronousTestCase):
    """
    Every netservices row against the same row of the previous report.
    """

    def test_readsTheLastReport(self) -> None:
        """
        The Results table of a report in bench/results reads back as
        medians and spreads per (workload, server).
        """
        _, _, compare = benchModules(self)
        rows = compare.parseResults((BENCH / "results" / "2026-12-03-1556.md").read_text())
        self.assertEqual(rows[("TCP echo ping-pong, 1 connection, 64 B", "netservices")],
                         compare.PreviousRow(27260, 22051, 27431, 80))
        self.assertEqual(
            rows[("Start-up to the first accepted connection", "netservices (echo + web)")],
            compare.PreviousRow(780.4, 707.5, 867.4, None))
        self.assertEqual(
            rows[("RSS per idle connection at 10,000 connections", "uvloop")].median, 1.28)

    def test_roundTrip(self) -> None:
        """
        A report's Results table reads back with its own medians, and
        the next report compares with it: a previous median inside this
        run's min - max is noise, outside it an improvement or a possible
        regression (lower-is-better rows the other way round), and one
        repetition gets no verdict; beside it, the change relative to a
        peer and the server's CPU microseconds per operation.
        """
        report, bench, compare = benchModules(self)
        out = Path(self.mktemp()).absolute()
        options = bench.Options(1.0, 0.1, 3, 10, 0.0, out)
        first = [
            workload(bench, "echo-pp1", "Echo", {"netservices": (100, 110, 105),
                                                 "netservices --reactor epoll": (80, 90, 85),
                                                 "uvloop": (100, 100, 100)}),
            workload(bench, "rss", "RSS", {"netservices": (1.5, 1.6, 1.7)},
                     higherIsBetter=False, unit="KiB"),
        ]
        out.mkdir(parents=True)
        previous = out / "2026-12-03-1556.md"
        previous.write_text("\n".join(["# Benchmarks", "", "## Results", "",
                                       *report.resultsTable(first), ""]))
        parsed = compare.parseResults(previous.read_text())
        self.assertEqual(parsed[("Echo", "netservices --reactor epoll")],
                         compare.PreviousRow(85, 80, 90, 70))
        second = [
            workload(bench, "echo-pp1", "Echo", {"netservices": (101, 108, 104),
                                                 "netservices --reactor epoll": (70, 75, 72),
                                                 "uvloop": (90, 90, 90)}),
            workload(bench, "rss", "RSS", {"netservices": (1.2, 1.3, 1.25)},
                     higherIsBetter=False, unit="KiB"),
            workload(bench, "udp", "UDP", {"netservices": (50,)}),
        ]
        self.assertEqual(compare.comparisonRows(second, parsed), [
            ("Echo", "netservices", "105.0", "104.0", "-1.0%", "+10.1% [uvloop]",
             "6666.7 -> 6730.8", "within noise"),
            ("Echo", "netservices --reactor epoll", "85.0", "72.0", "-15.3%", "-5.9% [uvloop]",
             "8235.3 -> 9722.2", "**possible regression**"),
            ("RSS", "netservices", "1.60", "1.25", "-21.9%", "-", "-", "improved"),
            ("UDP", "netservices", "-", "50.0", "-", "-", "-",
             "no such row in the previous report"),
        ])
        self.assertEqual(compare.judgeChange([50], 40, True),
                         "one repetition: no spread to judge by")
        self.patch(report, "chart", lambda workloads, path: None)  # tested above; slow
        text = report.writeReport(second, options, out / "new", "0.1", "0.2", False,
                                  previous).read_text()
        self.assertIn(f"same row of {previous.name}", text)
        self.assertIn("| Echo | netservices --reactor epoll | 85.0 | 72.0 | -15.3% | "
                      "-5.9% [uvloop] | 8235.3 -> 9722.2 | **possible regression** |", text)

    def test_referencePeer(self) -> None:
        """
        The change relative to a peer is taken against the minimal Twisted
        server when both runs measured it, else another peer both runs
        have, else none.
        """
        _, bench, compare = benchModules(self)
        row = compare.PreviousRow(10, 9, 11)
        both = workload(bench, "echo-pp1", "Echo", {
            "netservices": (1,), "uvloop": (1,), "Twisted minimal": (1,)})
        self.assertEqual(compare.referencePeer(both, {
            ("Echo", "uvloop"): row, ("Echo", "Twisted minimal"): row}), "Twisted minimal")
        self.assertEqual(compare.referencePeer(both, {("Echo", "uvloop"): row}), "uvloop")
        self.assertIsNone(compare.referencePeer(both, {("Echo", "netservices"): row}))

    def test_busierMachine(self) -> None:
        """
        The section says so when this run started on a machine busier (by
        more than 1 in the one-minute load average) than the previous one.
        """
        _, _, compare = benchModules(self)
        text = "- load average before the run: 0.97 1.59 1.71; after: 1.91 1.78 1.74\n"
        self.assertEqual(compare.loadWarning("6.23 6.74 4.36", text), [
            "", ("This run started at a load average of 6.23, the previous one at 0.97: "
                 "every rate may be lower for that alone.")])
        self.assertEqual(compare.loadWarning("1.50 1.00 1.00", text), [])
        self.assertEqual(compare.loadWarning("6.23", "no load line"), [])

    def test_newestReport(self) -> None:
        """
        The previous report is the newest by its date-stamped name, other
        than the one being written; none when there is none.
        """
        _, _, compare = benchModules(self)
        directory = Path(self.mktemp())
        directory.mkdir()
        self.assertIsNone(compare.previousReport(directory))
        for name in ("2026-11-26-2116.md", "2026-12-03-1556.md", "2026-12-03-0900.md",
                     "2026-12-03-1556.png"):
            (directory / name).write_text("")
        self.assertEqual(compare.previousReport(directory).name, "2026-12-03-1556.md")
        self.assertEqual(
            compare.previousReport(directory, directory / "2026-12-03-1556.md").name,
            "2026-12-03-0900.md")


class NewRowsTests(SynchronousTestCase):
    """
    The pipelined HTTP row and the HTTPS row: their servers, and their
    checks of what wrk and the servers report.
    """

    def test_workloads(self) -> None:
        """
        The pipelined and HTTPS rows follow HTTP hello in the table, and
        compare the servers they are meant to.
        """
        _, bench, _ = benchModules(self)
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir()
        names = [w.name for w in bench.workloads(workdir)]
        self.assertEqual(names[names.index("http-hello"):][:3],
                         ["http-hello", "http-pipeline", "https-hello"])
        self.assertEqual([s.label for s in bench.pipelineServers(workdir)], [
            "netservices", "netservices --reactor epoll", "Twisted minimal", "aiohttp",
            "aiohttp (uvloop)"])
        https = bench.httpsServers(workdir)
        self.assertEqual([s.label for s in https], [
            "netservices", "netservices --reactor epoll", "nginx", "aiohttp", "aiohttp (uvloop)"])
        for server in https[3:]:
            self.assertIn("--certificate", server.command)
        nginxConf = Path(https[2].command[https[2].command.index("-c") + 1]).read_text()
        self.assertIn("ssl_protocols TLSv1.2 TLSv1.3;", nginxConf)

    def test_pipelineKeepsDefaultLimits(self) -> None:
        """
        netservices runs the pipelined row with its default limits: its
        [web] section sets the listener and lifts the total connection cap
        only, as the other web rows do.
        """
        _, bench, _ = benchModules(self)
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir()
        server = bench.pipelineServers(workdir)[0]
        config = Path(server.command[server.command.index("--config") + 1]).read_text()
        web = config.split("[web]\n")[1].split("\n\n")[0].splitlines()
        self.assertEqual(web, [f"listen = tcp:{server.port}:interface=127.0.0.1",
                               "max_connections = 0", "enabled = yes"])

    def test_wrkProblems(self) -> None:
        """
        A pipelined run is refused when the script's summary is missing,
        reports a bad response, or was not as deep as asked; socket errors
        and non-2xx answers are refused on every run.
        """
        _, bench, _ = benchModules(self)
        good = "Requests/sec: 10.0\npipeline: depth=16 responses=320 bad=0\n"
        self.assertEqual(bench.wrkProblems(good, 16), [])
        self.assertEqual(bench.wrkProblems("Requests/sec: 10.0\n"), [])
        self.assertEqual(len(bench.wrkProblems("Requests/sec: 10.0\n", 16)), 1)
        for summary in ("depth=16 responses=320 bad=3", "depth=1 responses=320 bad=0",
                        "depth=16 responses=0 bad=0"):
            self.assertEqual(len(bench.wrkProblems(f"pipeline: {summary}\n", 16)), 1, summary)
        self.assertEqual(bench.wrkProblems(
            "  Socket errors: connect 0, read 3, write 0, timeout 0\n"
            "  Non-2xx or 3xx responses: 7\n"), [
            "Socket errors: connect 0, read 3, write 0, timeout 0",
            "Non-2xx or 3xx responses: 7"])


class NewRowsAgainstDaemonTests(SynchronousTestCase):
    """
    The pipelining script against a real netservices.
    """

    def setUp(self) -> None:
        if shutil.which("wrk") is None:
            raise SkipTest("wrk is needed (make system-deps)")
        _, self.bench, _ = benchModules(self)
        self.port = freePort()
        daemon = Daemon([], config=isolatedConfig(
            web=f"listen = tcp:{self.port}:interface=127.0.0.1\n"))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(self.port, timeout=30)

    def wrk(self, path: str) -> str:
        """
        Run the pipelining script for a second, 2 connections 16 deep.
        """
        return subprocess.run(
            ["wrk", "-t1", "-c2", "-d1s", "-s", str(BENCH / "pipeline.lua"),
             f"http://127.0.0.1:{self.port}{path}", "--", "16", "Hello World"],
            capture_output=True, text=True, timeout=30, check=True).stdout

    def test_pipelined(self) -> None:
        """
        16-deep pipelining against netservices' default limits gets only
        200s carrying "Hello World"; a path that answers 404 is counted as
        bad and refused.  The check before measuring sees no TLS over
        plain HTTP.
        """
        output = self.wrk("/")
        self.assertEqual(self.bench.wrkProblems(output, 16), [], output)
        self.assertRegex(output, r"pipeline: depth=16 responses=[1-9]\d* bad=0")
        output = self.wrk("/no-such-page")
        self.assertRegex(output, r"pipeline: depth=16 responses=([1-9]\d*) bad=\1\n")
        self.assertNotEqual(self.bench.wrkProblems(output, 16), [])
        self.assertEqual(self.bench.fetchOnce(f"http://127.0.0.1:{self.port}/"),
                         (None, b"Hello World"))


class TLSCheckTests(SynchronousTestCase):
    """
    The check before each HTTPS measurement, against small HTTPS servers
    in threads.
    """

    def serve(self, maximum: ssl.TLSVersion) -> int:
        """
        An HTTPS server answering "Hello World", with the bench's
        certificate and TLS up to C{maximum}; its port.
        """
        if shutil.which("openssl") is None:
            raise SkipTest("openssl is needed for the certificate (make system-deps)")
        _, self.bench, _ = benchModules(self)
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir(parents=True)
        cert, key = self.bench.benchCertificate(workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.maximum_version = maximum
        context.load_cert_chain(cert, key)

        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = 200 if self.path == "/" else 404
                self.send_response(status)
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b"Hello World")

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(thread.join, 10)
        self.addCleanup(server.shutdown)
        return int(server.server_address[1])

    def test_tls13(self) -> None:
        """
        The check reports the version the server picked and the body; a
        status other than 200 is an error.
        """
        port = self.serve(ssl.TLSVersion.TLSv1_3)
        self.assertEqual(self.bench.fetchOnce(f"https://127.0.0.1:{port}/"),
                         ("TLSv1.3", b"Hello World"))
        with self.assertRaises(self.bench.MeasurementError):
            self.bench.fetchOnce(f"https://127.0.0.1:{port}/no-such-page")

    def test_olderRefused(self) -> None:
        """
        A server that settles for TLS 1.2 is not measured on the TLS 1.3
        row: the check fails before wrk starts.
        """
        port = self.serve(ssl.TLSVersion.TLSv1_2)
        measure = self.bench.wrkMeasure("/", 1, expectBody=b"Hello World", tls=True)
        server = self.bench.Server("TLS 1.2 only", [], port)
        options = self.bench.Options(1.0, 0.1, 1, 10, 0.0, Path(self.mktemp()))
        error = self.assertRaises(self.bench.MeasurementError, measure, server, options)
        self.assertIn("negotiated TLSv1.2, not TLSv1.3", str(error))


class BytecodeTests(SynchronousTestCase):
    """
    The bench measures start-up as an installed package starts.
    """

    def test_bytecodeWritten(self) -> None:
        """
        The bench writes the bytecode of netservices' modules before it
        measures, so start-up is measured as installed packages start.
        """
        import importlib.util

        _, bench, _ = benchModules(self)

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
        _, bench, _ = benchModules(self)

        names = [client.label for client in bench.fetchClients()]
        self.assertEqual(names, ["netservices fetch", "Twisted minimal", "curl"])
