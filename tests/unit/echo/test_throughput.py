"""
Tests for L{services.echo._throughput} and C{netservices throughput}: the
streams over StringTransport with a Clock, the formatting, and real runs
against a daemon on loopback next to iperf3.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
from typing import Any

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from services.cli import buildParser
from services.cli.throughputreport import formatBits, formatBytes, jitter
from services.echo._throughput import CHUNK, Download, Intervals, Upload

from tests.clientservers import cliCommand, cliEnvironment
from tests.support import Daemon, HalfClosingTransport, freePort, isolatedConfig, waitUntil


def connected(stream: Any) -> HalfClosingTransport:
    transport = HalfClosingTransport()
    stream.makeConnection(transport)
    return transport


class UploadTests(SynchronousTestCase):
    """
    L{Upload} writes only when its transport wants more, and counts only
    what the peer read.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()

    def test_pullProducer(self) -> None:
        """
        It registers as a pull producer and writes one chunk each time the
        transport asks, none otherwise.
        """
        upload = Upload(self.clock)
        transport = connected(upload)
        self.assertIs(transport.producer, upload)
        self.assertFalse(transport.streaming)
        self.assertEqual(len(transport.value()), 0)
        upload.resumeProducing()
        upload.resumeProducing()
        self.assertEqual((len(transport.value()), upload.written), (2 * CHUNK, 2 * CHUNK))

    def test_countsWhatThePeerReadOnItsClose(self) -> None:
        """
        C{finish} stops writing and half-closes; the peer's clean close
        then gives everything written, over the time until that close.
        """
        upload = Upload(self.clock)
        transport = connected(upload)
        upload.resumeProducing()
        self.clock.advance(2)
        upload.finish()
        self.assertTrue(transport.writeClosed)
        self.assertIsNone(transport.producer)
        upload.resumeProducing()
        self.assertEqual(upload.written, CHUNK)
        self.clock.advance(0.5)
        upload.connectionLost(Failure(ConnectionDone()))
        result = self.successResultOf(upload.done)
        self.assertEqual((result.bytes, result.seconds, result.error), (CHUNK, 2.5, None))

    def test_brokenConnectionCountsOnlyWhatWasAcknowledged(self) -> None:
        """
        A connection that breaks counts only what was in the kernel, and
        says why.
        """
        upload = Upload(self.clock)
        connected(upload)
        upload.resumeProducing()
        upload.resumeProducing()
        upload.connectionLost(Failure(ConnectionLost("reset")))
        result = self.successResultOf(upload.done)
        self.assertEqual(result.bytes, CHUNK)
        self.assertIn("reset", str(result.error))


class DownloadTests(SynchronousTestCase):
    """
    L{Download} counts what arrived until C{finish}.
    """

    def test_counts(self) -> None:
        """
        Bytes that arrive before C{finish} count; C{finish} closes and
        gives the total over the time until then.
        """
        clock = MemoryReactorClock()
        download = Download(clock)
        transport = connected(download)
        download.dataReceived(b"x" * 1000)
        clock.advance(4)
        download.finish()
        download.dataReceived(b"x" * 1000)
        download.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(transport.aborted)
        result = self.successResultOf(download.done)
        self.assertEqual((result.bytes, result.seconds, result.bitsPerSecond), (1000, 4.0, 2000.0))

    def test_serverStopped(self) -> None:
        """
        A server that closes before the end is an error.
        """
        download = Download(MemoryReactorClock())
        connected(download)
        download.connectionLost(Failure(ConnectionLost("gone")))
        self.assertIn("gone", str(self.successResultOf(download.done).error))


class IntervalsTests(SynchronousTestCase):
    """
    L{Intervals} gives each stream's bytes since the last reading.
    """

    def test_deltas(self) -> None:
        """
        Each reading is the difference from the one before.
        """

        class Counter:
            n = 0

            def acknowledged(self) -> int:
                return self.n

        a, b = Counter(), Counter()
        intervals = Intervals([a, b], startedAt=10.0)
        a.n, b.n = 100, 5
        self.assertEqual(intervals.read(11.0), (0.0, 1.0, [100, 5]))
        a.n, b.n = 150, 5
        self.assertEqual(intervals.read(12.5), (1.0, 2.5, [50, 0]))


class FormatTests(SynchronousTestCase):
    """
    iperf3's units: bytes in powers of 1024, bits in powers of 1000.
    """

    def test_units(self) -> None:
        """
        Transfers and rates read as iperf3 prints them.
        """
        self.assertEqual(formatBytes(512 * 1024), "512 KBytes")
        self.assertEqual(formatBytes(1.1 * 1024**3), "1.10 GBytes")
        self.assertEqual(formatBits(9.45e9), "9.45 Gbits/sec")
        self.assertEqual(formatBits(500), "500 bits/sec")

    def test_jitter(self) -> None:
        """
        Jitter is RFC 3550's smoothed mean of successive differences: none
        for steady round trips.
        """
        self.assertEqual(jitter([0.001] * 10), 0.0)
        self.assertAlmostEqual(jitter([0.001, 0.002]), 0.001 / 16)


class ArgumentsTests(SynchronousTestCase):
    """
    Bad values on the command line say what is allowed.
    """

    def test_badParallel(self) -> None:
        """
        C{-P} takes a whole number >= 1, and says so for 0 and 1.5 (not
        "a number > 0", which 1.5 is).
        """
        for value in ("0", "1.5"):
            err = io.StringIO()
            self.patch(sys, "stderr", err)
            with self.assertRaises(SystemExit) as caught:
                buildParser().parse_args(["throughput", "127.0.0.1", "-P", value])
            self.assertEqual(caught.exception.code, 2)
            self.assertIn(f"'{value}' is not a whole number >= 1", err.getvalue())


def _command(*argv: str) -> dict[str, Any]:
    done = subprocess.run(
        cliCommand() + ["throughput", *argv, "--json"],
        capture_output=True, text=True, timeout=120, env=cliEnvironment(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


class RealThroughputTests(SynchronousTestCase):
    """
    C{netservices throughput} against a real daemon on loopback, with
    iperf3 (its own server and client) on the same path in the same test.
    """

    #: How far apart ours and iperf3's figures may be on loopback: iperf3 is
    #: C with zero-copy tricks, ours one Python process per end.
    RATIO = 100

    def test_againstDaemonAndIperf3(self) -> None:
        """
        An upload counts exactly the bytes the discard server read (its
        counter); a download at most what chargen sent; UDP round trips to
        UDP echo on loopback lose nothing; and the upload's rate is within
        L{RATIO} of iperf3's on the same path.
        """
        iperf3 = shutil.which("iperf3")
        if iperf3 is None:
            raise SkipTest("iperf3 is not installed (tests/system-deps.sh installs it)")
        web, discard, chargen = freePort(), freePort(), freePort()
        udp = freePort(socket.SOCK_DGRAM)
        daemon = Daemon([], config=isolatedConfig(
            web=f"listen = tcp:{web}:interface=127.0.0.1",
            discard=f"enabled = yes\nlisten = tcp:{discard}:interface=127.0.0.1",
            chargen=f"enabled = yes\nlisten = tcp:{chargen}:interface=127.0.0.1",
            udp_echo=f"enabled = yes\nlisten = udp:{udp}:interface=127.0.0.1",
        ))  # fmt: skip
        self.addCleanup(daemon.stop)
        daemon.waitForLog("web listening on", timeout=30)
        ports = ["--discard-port", str(discard), "--chargen-port", str(chargen)]

        upload = _command("127.0.0.1", "-t", "1", "-P", "2", *ports)
        download = _command("127.0.0.1", "-t", "1", "-R", *ports)
        udpRun = _command("127.0.0.1", "--udp", "-t", "1", "--rate", "40", "--wait", "20",
                          "--echo-port", str(udp))  # fmt: skip

        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{web}/status", timeout=10) as r:
            counters = json.load(r)["services"]
        sent = upload["end"]["sum_sent"]
        self.assertGreater(sent["bytes"], 0)
        self.assertEqual(sent["bytes"], counters["discard"]["counters"]["bytesIn"])
        received = download["end"]["sum_received"]["bytes"]
        self.assertGreater(received, 0)
        self.assertLessEqual(received, counters["chargen"]["counters"]["bytesOut"])
        self.assertEqual(
            (udpRun["end"]["udp"]["sent"], udpRun["end"]["udp"]["lost"]), (40, 0)
        )

        iperfPort = freePort()
        serverLog = daemon.directory / "iperf3-server.log"
        with open(serverLog, "w") as out:
            server = subprocess.Popen(
                [iperf3, "-s", "-1", "--forceflush", "-B", "127.0.0.1", "-p", str(iperfPort)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.addCleanup(lambda: server.poll() is None and server.kill())
        # Not a probe connection: the one-off server would take it for its client.
        waitUntil(lambda: "Server listening" in serverLog.read_text(), 15, "the iperf3 server")
        client = subprocess.run(
            [iperf3, "-c", "127.0.0.1", "-p", str(iperfPort), "-t", "1", "-P", "2", "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        server.wait(30)
        theirs = json.loads(client.stdout)["end"]["sum_received"]["bits_per_second"]
        ours = sent["bits_per_second"]
        self.assertTrue(theirs / self.RATIO <= ours <= theirs * self.RATIO, (ours, theirs))
