"""
Tests for L{services.logs}: the level filter of netservices' events.
"""

from __future__ import annotations

from twisted.logger import Logger, LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from services import logs


class Emitter:
    _log = Logger(observer=logs.observer)


class LevelTests(SynchronousTestCase):
    """
    Events below the level are dropped; the rest keep their fields.
    """

    def setUp(self) -> None:
        self.addCleanup(logs.setLevel, logs.getLevel())

    def test_filter(self) -> None:
        """
        At warn, info and debug events are dropped; warn passes with its
        format fields and namespace.
        """
        logs.setLevel("warn")
        with capturedLogs() as events:
            Emitter()._log.debug("d {x}", x=1)
            Emitter()._log.info("i {x}", x=2)
            Emitter()._log.warn("w {x}", x=3)
        self.assertEqual([e["x"] for e in events], [3])
        self.assertEqual(events[0]["log_namespace"], "tests.unit.test_logs.Emitter")

    def test_isEnabledFor(self) -> None:
        """
        isEnabledFor answers for the current level.
        """
        logs.setLevel(LogLevel.debug)
        self.assertTrue(logs.isEnabledFor(LogLevel.debug))
        logs.setLevel("error")
        self.assertFalse(logs.isEnabledFor(LogLevel.warn))
        self.assertTrue(logs.isEnabledFor(LogLevel.critical))


class JSONLogTests(SynchronousTestCase):
    """
    twistd --logger services.logs.jsonLogObserver writes JSON lines that
    keep the values of format fields.
    """

    def test_jsonLines(self) -> None:
        """
        The daemon's start-up event carries the endpoint and the address as
        fields of a JSON object.
        """
        import json
        import signal
        import subprocess

        from tests.support import freePort, isolatedConfig, twistdCommand, waitUntil

        config = self.mktemp()
        with open(config, "w") as f:
            f.write(isolatedConfig())

        port = freePort()
        path = self.mktemp()
        # The daemon writes through its own open file: reading through the
        # same one would move the offset it writes at.
        with open(path, "wb") as out:
            process = subprocess.Popen(
                twistdCommand() + ["--pidfile=", "-n", "--logger", "services.logs.jsonLogObserver",
                                   "netservices", "--config", config,
                                   "--echo", f"tcp:{port}:interface=127.0.0.1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.addCleanup(process.wait)
        self.addCleanup(process.send_signal, signal.SIGTERM)

        def listening() -> dict | None:
            with open(path) as log:
                text = log.read()
            # Only whole lines: the last one may still be being written.
            for line in text.split("\n")[:-1]:
                event = json.loads(line)
                if event.get("endpoint") == f"tcp:{port}:interface=127.0.0.1":
                    return event
            return None

        event = waitUntil(listening, 15, "the listening event in JSON")
        self.assertEqual(event["address"], f"127.0.0.1:{port}")
        self.assertEqual(event["service"], "echo")
        self.assertEqual(event["log_level"]["name"], "info")
