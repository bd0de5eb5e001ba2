"""
Tests for an access log that cannot be written (a full disk): requests
are still answered, each lost line is counted in C{accessLogErrors}, and a
warning says so at most once a minute; driven through L{StringTransport},
a L{Clock} and a log file that raises C{ENOSPC}.
"""

from __future__ import annotations

import errno

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.web import HTTPLimits, LimitedSite
from services.stats import WebStats
from services.web._pages import Hello

from tests.support import temporaryDirectory

GET = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"


class FullDisk:
    """
    A log file on a full device: every write raises C{ENOSPC}.
    """

    def write(self, line: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        pass


class FullDiskTests(SynchronousTestCase):
    """
    Requests are answered whatever happens to their access log lines.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = WebStats()
        root = Resource()
        root.putChild(b"", Hello())
        path = temporaryDirectory(self) / "access.log"
        self.site = LimitedSite(root, HTTPLimits(), self.stats, str(path), reactor=self.clock)
        self.site.startFactory()
        self.addCleanup(self.site.stopFactory)
        self.site._logFile = FullDisk()

    def requests(self, data: bytes) -> bytes:
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(data)
        return transport.value()

    def test_answered(self) -> None:
        """
        Pipelined requests are all answered in full, and the lost lines
        counted.
        """
        answer = self.requests(GET * 3)
        self.assertEqual(answer.count(b"HTTP/1.1 200 OK"), 3)
        self.assertEqual(answer.count(b"Hello World"), 3)
        self.assertEqual(self.stats.accessLogErrors, 3)

    def test_rejectedAnswered(self) -> None:
        """
        A 400 the channel answers itself is sent too, its line counted as
        lost.
        """
        self.assertTrue(self.requests(b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertEqual(self.stats.accessLogErrors, 1)

    def test_warnedOnceAMinute(self) -> None:
        """
        100 lost lines within a minute give one warning, at once; the next
        one a minute later counts what was lost meanwhile.
        """
        with capturedLogs() as events:
            for _ in range(100):
                self.requests(GET)
                self.clock.advance(0.5)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["reason"], "No space left on device")
        with capturedLogs() as events:
            self.clock.advance(10)
            self.requests(GET)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual([w["count"] for w in warnings], [100])
