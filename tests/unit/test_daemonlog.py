# -*- test-case-name: tests.unit.test_daemonlog -*-
"""
Tests for what the daemon's log says about its listeners: each once, in
netservices' words, without Twisted's own lines about ports starting and
closing.
"""

from __future__ import annotations

import signal
import socket

from twisted.logger import LogPublisher
from twisted.python import log as legacy
from twisted.trial.unittest import TestCase

from services import logs

from tests.support import Daemon, freePort, isolatedConfig


def legacyEvent(text: str) -> dict[str, object]:
    """
    An event as C{twisted.python.log.msg(text)} publishes it.
    """
    events: list[dict[str, object]] = []
    publisher = legacy.LogPublisher(events.append, events.append)
    publisher.msg(text)
    return events[0]


class PortChatterTests(TestCase):
    """
    L{logs.isPortChatter} and L{logs.quietPortChatter}.
    """

    def test_recognized(self) -> None:
        """
        The start and close lines of TCP, UNIX and UDP ports are port
        chatter; other legacy lines are not.
        """
        for text in (
            "EchoFactory starting on 8007",
            "EchoFactory starting on 'e.sock'",
            "discovery broadcasts starting on 8009",
            "(TCP Port 8007 Closed)",
            "(UNIX Port e.sock Closed)",
            "(UDP Port 8009 Closed)",
        ):
            self.assertTrue(logs.isPortChatter(legacyEvent(text)), text)
        for text in ("Server Shut Down.", "starting on a Monday", "echo listening on tcp:8007"):
            self.assertFalse(logs.isPortChatter(legacyEvent(text)), text)

    def test_quietUntilRestored(self) -> None:
        """
        Between quietPortChatter() and the call of what it returns, the
        observers of a publisher get every event but port chatter.
        """
        seen: list[dict[str, object]] = []
        publisher = LogPublisher(seen.append)
        restore = logs.quietPortChatter(publisher)
        publisher(legacyEvent("(UDP Port 8009 Closed)"))
        publisher(legacyEvent("kept"))
        restore()
        publisher(legacyEvent("(UDP Port 8009 Closed)"))
        self.assertEqual(
            [event["log_text"] for event in seen], ["kept", "(UDP Port 8009 Closed)"]
        )


class DaemonLogTests(TestCase):
    """
    A real daemon logs each listener once.
    """

    def test_eachListenerOnce(self) -> None:
        """
        From start to stop, echo (TCP and UNIX), discovery (two UDP sockets)
        and UDP echo are each logged by our own line only: no
        C{EchoFactory starting on}, no C{(UDP Port N Closed)}.
        """
        echo, udp, discovery = freePort(), freePort(), freePort()
        daemon = Daemon(
            [],
            config=isolatedConfig(
                echo=f"listen = tcp:{echo}:interface=127.0.0.1 unix:e.sock",
                discovery=f"port = {discovery}",
                udp_echo=f"enabled = yes\nlisten = udp:{udp}:interface=127.0.0.1",
            ),
        )
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(echo)
        # An echo comes back once the reactor runs (and handles SIGTERM).
        with socket.create_connection(("127.0.0.1", echo), timeout=30) as client:
            client.sendall(b"x")
            self.assertEqual(client.recv(1), b"x")
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(30)
        log = daemon.log()
        self.assertIn("Server Shut Down.", log)
        self.assertEqual(log.count(f"echo listening on tcp:{echo}:"), 1)
        self.assertEqual(log.count("echo listening on unix:e.sock"), 1)
        self.assertEqual(log.count("discovery listening on"), 1)
        self.assertEqual(log.count("udp-echo listening on"), 1)
        for chatter in ("starting on", "Port", "Closed)"):
            self.assertNotIn(chatter, log)
