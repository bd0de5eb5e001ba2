# -*- test-case-name: tests.unit.web.test_accesslog -*-
"""
Tests for L{services.web._accesslog}, and for the files netservices writes
being reopened on SIGHUP, with real daemons in the foreground and
daemonized, with and without workers.
"""

from __future__ import annotations

import errno
import os
import re
import signal
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SkipTest, TestCase

from services import logs
from services.web._accesslog import AccessLogFile
from services.config import replaceSection
from services.daemon.tap import Options
from services.daemon.tree import buildService

from tests.support import Daemon, DaemonizedTwistd, freePort, getEach, isolatedConfig, waitUntil

#: One Combined Log Format line of a test request (C{/?n=N}).
LINE = re.compile(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /\?n=(\d+) HTTP/1\.1" 200 11 "-" "-"')


def requested(path: Path) -> list[int]:
    """
    The request numbers in an access log, in order; fails on a line that
    is not one whole Combined Log Format line of a test request.
    """
    numbers = []
    for line in path.read_text().splitlines():
        match = LINE.fullmatch(line)
        if match is None:
            raise AssertionError(f"not a whole access log line: {line!r}")
        numbers.append(int(match.group(1)))
    return numbers


def paths(numbers: range) -> list[str]:
    return [f"/?n={n}" for n in numbers]


class AccessLogFileTests(TestCase):
    """
    L{AccessLogFile} appends whole lines, whoever else writes the file.
    """

    def test_appendsBesideAnotherWriter(self) -> None:
        """
        Two writers of one file (two worker processes) never overwrite
        each other's lines: each line is appended at the end at once.
        """
        path = self.mktemp()
        first, second = AccessLogFile(path), AccessLogFile(path)
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        for i in range(100):
            (first if i % 2 else second).write(f"line {i}\n")
        self.assertEqual(Path(path).read_text().splitlines(), [f"line {i}" for i in range(100)])

    def test_writeErrorsReachTheSite(self) -> None:
        """
        A line that cannot be written (a full disk: /dev/full) raises
        C{OSError}, for the site to count and report (C{accessLogErrors}).
        """
        if not os.path.exists("/dev/full"):
            raise SkipTest("no /dev/full here")
        log = AccessLogFile("/dev/full")
        self.addCleanup(log.close)
        with self.assertRaises(OSError) as caught:
            log.write("line\n")
        self.assertEqual(caught.exception.errno, errno.ENOSPC)

    def test_reopen(self) -> None:
        """
        After the file is moved away, reopen() writes to a new file at the
        same path.
        """
        path = Path(self.mktemp())
        log = AccessLogFile(str(path))
        self.addCleanup(log.close)
        log.write("before\n")
        path.rename(path.with_name("rotated"))
        log.reopen()
        log.write("after\n")
        self.assertEqual(path.read_text(), "after\n")
        self.assertEqual(path.with_name("rotated").read_text(), "before\n")

    def test_reopenedWithTheTree(self) -> None:
        """
        The service tree's SIGHUP handler reopens the web service's access
        log.
        """
        self.addCleanup(logs.setLevel, logs.getLevel())
        path = Path(self.mktemp()).absolute()
        options = Options()
        options.parseOptions(["--no-echo", "--no-discovery", "--web", "tcp:8"])
        config = options.settings
        root = buildService(
            replaceSection(config, "web", access_log=str(path)), MemoryReactorClock()
        )
        site = root.getServiceNamed("web").site
        site.doStart()
        self.addCleanup(site.doStop)
        path.rename(path.with_name("rotated"))
        self.assertEqual(root.reopenLogs(), 1)
        self.assertTrue(path.exists())


class ReopenOnHangupTests(TestCase):
    """
    SIGHUP reopens every file netservices writes: twistd's log file and the
    access log, in every process.
    """

    def rotate(self, *files: Path) -> list[Path]:
        rotated = []
        for path in files:
            moved = path.with_name(path.name + ".1")
            os.rename(path, moved)
            rotated.append(moved)
        return rotated

    def test_foreground(self) -> None:
        """
        In the foreground, SIGHUP reopens twistd's log file and the access
        log.
        """
        port = freePort()
        daemon = Daemon(
            [],
            config=isolatedConfig(
                web=f"listen = tcp:{port}:interface=127.0.0.1\naccess_log = access.log"
            ),
        )
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        access = daemon.directory / "access.log"
        self.assertEqual(getEach(port, paths(range(3))), [])
        oldLog, oldAccess = self.rotate(daemon.logPath, access)
        daemon.process.send_signal(signal.SIGHUP)
        waitUntil(
            lambda: daemon.logPath.exists()
            and "SIGHUP: reopened 2 log files" in daemon.logPath.read_text(),
            60,
            "the reopened log",
        )
        self.assertEqual(getEach(port, paths(range(3, 5))), [])
        self.assertEqual(sorted(requested(oldAccess)), [0, 1, 2])
        self.assertEqual(sorted(requested(access)), [3, 4])
        self.assertIn("web listening on", oldLog.read_text())

    def test_daemonizedWithWorkers(self) -> None:
        """
        Daemonized with two workers, SIGHUP to the parent reopens twistd's
        log file in the parent and the access log in each worker.
        """
        port = freePort()
        daemon = DaemonizedTwistd(
            isolatedConfig(
                web=f"listen = tcp:{port}:interface=127.0.0.1\naccess_log = access.log",
                netservices="workers = 2",
            )
        )
        self.addCleanup(daemon.stop)
        daemon.waitForLog("[worker-1] web listening on", timeout=60)
        daemon.waitForLog("[worker-2] web listening on", timeout=60)
        access = daemon.directory / "access.log"
        self.assertEqual(getEach(port, paths(range(20))), [])
        _oldLog, oldAccess = self.rotate(daemon.logPath, access)
        os.kill(daemon.pid, signal.SIGHUP)
        for worker in (1, 2):
            daemon.waitForLog(f"[worker-{worker}] SIGHUP: reopened 1 log files", timeout=60)
        self.assertIn("SIGHUP: reopened 1 log files", daemon.log())  # twistd.log
        self.assertEqual(getEach(port, paths(range(20, 40))), [])
        self.assertEqual(sorted(requested(oldAccess)), list(range(20)))
        self.assertEqual(sorted(requested(access)), list(range(20, 40)))

    def test_everyRequestOnceWithWorkers(self) -> None:
        """
        With four workers, 1,000 requests give 1,000 whole access log lines,
        one for each request, before and after a SIGHUP rotation.
        """
        port = freePort()
        daemon = Daemon(
            [],
            config=isolatedConfig(
                web=f"listen = tcp:{port}:interface=127.0.0.1\naccess_log = access.log",
                netservices="workers = 4",
            ),
        )
        self.addCleanup(daemon.stop)
        for worker in range(1, 5):
            daemon.waitForLog(f"[worker-{worker}] web listening on", timeout=60)
        access = daemon.directory / "access.log"
        self.assertEqual(getEach(port, paths(range(1000))), [])
        [rotated] = self.rotate(access)
        daemon.process.send_signal(signal.SIGHUP)
        for worker in range(1, 5):
            daemon.waitForLog(f"[worker-{worker}] SIGHUP: reopened 1 log files", timeout=60)
        self.assertEqual(getEach(port, paths(range(1000, 2000))), [])
        self.assertEqual(sorted(requested(rotated)), list(range(1000)))
        self.assertEqual(sorted(requested(access)), list(range(1000, 2000)))
