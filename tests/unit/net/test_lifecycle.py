"""
Tests for L{services.net.drain}, L{services.daemon.signals} and the
graceful shutdown of the echo service: draining connections, the grace
period, reopening logs, and SIGTERM before the reactor runs.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import FileLogObserver, LogPublisher, capturedLogs, formatEvent
from twisted.python.logfile import LogFile
from twisted.trial.unittest import SynchronousTestCase

from services import logs
from services.echo import EchoSettings, makeEchoService
from services.daemon.signals import reopenLogFiles, stopOnEarlyTerm
from services.daemon.tap import Options
from services.daemon.tree import buildService
from services.net.drain import ConnectionTracker

from tests.support import Daemon, DaemonizedTwistd, freePort, isolatedConfig, processGone, waitUntil


class FakeConnection:
    def __init__(self) -> None:
        self.transport = StringTransport()
        self.aborted = False
        self.transport.abortConnection = self.abort  # type: ignore[method-assign]

    def abort(self) -> None:
        self.aborted = True


class TrackerTests(SynchronousTestCase):
    """
    L{ConnectionTracker.drain} waits for connections, then aborts them.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.tracker = ConnectionTracker("test")

    def test_nothingOpen(self) -> None:
        """
        With no connection open, the drain is over at once.
        """
        self.successResultOf(self.tracker.drain(self.clock, 10))

    def test_waitsForLastConnection(self) -> None:
        """
        The drain fires when the last open connection closes, and cancels
        its timer.
        """
        a, b = FakeConnection(), FakeConnection()
        self.tracker.add(a)
        self.tracker.add(b)
        d = self.tracker.drain(self.clock, 10)
        self.tracker.remove(a)
        self.assertNoResult(d)
        self.tracker.remove(b)
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(a.aborted or b.aborted)

    def test_graceOver(self) -> None:
        """
        After the grace period, connections still open are aborted.
        """
        a = FakeConnection()
        self.tracker.add(a)
        d = self.tracker.drain(self.clock, 10)
        self.clock.advance(9)
        self.assertFalse(a.aborted)
        self.clock.advance(1)
        self.assertTrue(a.aborted)
        self.tracker.remove(a)  # as connectionLost does after the abort
        self.successResultOf(d)


class EchoShutdownTests(SynchronousTestCase):
    """
    Stopping the echo service stops listening first, then drains.
    """

    def test_stopDrains(self) -> None:
        """
        stopService stops the listeners at once and fires when the open
        connections have closed.
        """
        reactor = MemoryReactorClock()
        service = makeEchoService(EchoSettings(listen=("tcp:7",)), reactor, grace=5)
        service.privilegedStartService()
        service.startService()
        protocol = service.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        protocol.makeConnection(StringTransport())
        d = service.stopService()
        self.assertEqual([s.port for s in service], [None])
        self.assertNoResult(d)
        protocol.connectionLost(None)  # type: ignore[arg-type]
        self.successResultOf(d)


class ReopenTests(SynchronousTestCase):
    """
    SIGHUP reopens log files moved away by logrotate.
    """

    def test_reopenFileObservers(self) -> None:
        """
        A LogFile behind a file observer, and extra reopenables, are
        reopened: after the file was moved, writing goes to a new file at
        the original path.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        logFile = LogFile("twistd.log", str(directory))
        self.addCleanup(logFile.close)
        publisher = LogPublisher()
        publisher.addObserver(FileLogObserver(logFile, lambda e: formatEvent(e) + "\n"))
        publisher({"log_format": "before", "log_time": 0})
        os.rename(directory / "twistd.log", directory / "twistd.log.1")

        class Extra:
            reopened = 0

            def reopen(self) -> None:
                self.reopened += 1

        extra = Extra()
        self.assertEqual(reopenLogFiles([extra], publisher), 2)
        publisher({"log_format": "after", "log_time": 0})
        self.assertEqual((directory / "twistd.log").read_text(), "after\n")
        self.assertEqual((directory / "twistd.log.1").read_text(), "before\n")
        self.assertEqual(extra.reopened, 1)


class DaemonLifecycleTests(SynchronousTestCase):
    """
    A real daemon drains on SIGTERM and reopens its log on SIGHUP.
    """

    def test_sigtermDrains(self) -> None:
        """
        Item 12: on SIGTERM the listener closes at once, an open connection keeps
        echoing until its client closes it, and then the daemon exits
        cleanly with no traceback.
        """
        port = freePort()
        daemon = Daemon([], config=isolatedConfig(
            echo=f"listen = tcp:{port}:interface=127.0.0.1\n",
            netservices="shutdown_grace = 20\n",
        ))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"before")
        self.assertEqual(client.recv(100), b"before")
        daemon.process.send_signal(signal.SIGTERM)
        daemon.waitForLog("open connections to finish")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        client.sendall(b"during")
        self.assertEqual(client.recv(100), b"during")
        self.assertIsNone(daemon.process.poll())
        client.close()
        status = daemon.process.wait(10)
        self.assertIn(status, (0, -signal.SIGTERM))
        self.assertNotIn("Traceback", daemon.log())

    def test_graceOver(self) -> None:
        """
        Item 12: a client that never closes is aborted when the grace period
        ends.
        """
        port = freePort()
        daemon = Daemon([], config=isolatedConfig(
            echo=f"listen = tcp:{port}:interface=127.0.0.1\n",
            netservices="shutdown_grace = 0.5\n",
        ))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"x")
        self.assertEqual(client.recv(1), b"x")
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(10)
        self.assertIn("grace period over, aborting 1 connections", daemon.log())
        try:
            self.assertEqual(client.recv(1), b"")
        except ConnectionResetError:
            pass  # an aborted connection may be reset rather than closed

    def test_secondSigtermDuringDrain(self) -> None:
        """
        A second SIGTERM while open connections drain is logged in one line
        and ignored: no C{ReactorNotRunning} traceback, and the daemon
        still waits for the connection, then exits as on one SIGTERM.
        """
        port = freePort()
        daemon = Daemon([], config=isolatedConfig(
            echo=f"listen = tcp:{port}:interface=127.0.0.1\n",
            netservices="shutdown_grace = 60\n",
        ))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"x")
        self.assertEqual(client.recv(1), b"x")
        daemon.process.send_signal(signal.SIGTERM)
        daemon.waitForLog("open connections to finish")
        daemon.process.send_signal(signal.SIGTERM)
        daemon.waitForLog("Received SIGTERM: already shutting down")
        client.sendall(b"y")
        self.assertEqual(client.recv(1), b"y")
        client.close()
        self.assertIn(daemon.process.wait(10), (0, -signal.SIGTERM))
        log = daemon.log()
        self.assertNotIn("Traceback", log)
        self.assertEqual(log.count("Received SIGTERM, shutting down."), 1)

    def test_daemonizedRemovesSocketLock(self) -> None:
        """
        A daemonized twistd removes its UNIX socket's lock file at
        shutdown, along with the socket: the lock was taken before
        twistd forked, and it is moved to the daemon's process id.
        """
        daemon = DaemonizedTwistd(isolatedConfig(echo="listen = unix:echo.sock\n"))
        self.addCleanup(daemon.stop)
        daemon.waitForLog("echo listening on")
        lock = daemon.directory / "echo.sock.lock"
        self.assertEqual(os.readlink(lock), str(daemon.pid))
        os.kill(daemon.pid, signal.SIGTERM)
        waitUntil(lambda: processGone(daemon.pid), 15, "the daemon to exit")
        self.assertFalse((daemon.directory / "echo.sock").exists())
        self.assertFalse(os.path.lexists(lock))
        self.assertNotIn("Traceback", daemon.log())

    def test_sighupReopensLog(self) -> None:
        """
        Item 12: after logrotate moves twistd's log file away, SIGHUP makes the
        daemon write to a new file at the same path.
        """
        port = freePort()
        daemon = Daemon([], config=isolatedConfig(echo=f"listen = tcp:{port}:interface=127.0.0.1\n"))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        rotated = daemon.logPath.with_name("twistd.log.1")
        os.rename(daemon.logPath, rotated)
        daemon.process.send_signal(signal.SIGHUP)
        waitUntil(lambda: daemon.logPath.exists() and "reopened" in daemon.logPath.read_text(), 10,
                  "a new log file after SIGHUP")
        self.assertIsNone(daemon.process.poll())
        self.assertIn("echo listening on", rotated.read_text())


class EarlyTermTests(SynchronousTestCase):
    """
    A SIGTERM between binding and the reactor's start stops the daemon in
    order once the reactor runs.
    """

    def test_stopsOnceRunning(self) -> None:
        """
        While the tree of a twistd process is bound but the reactor has not
        run, SIGTERM asks the reactor to stop (from the reactor's thread),
        instead of killing the process; the handler goes when the start
        fails.
        """
        class Reactor(MemoryReactorClock):
            def callFromThread(self, f, *args, **kwargs):  # type: ignore[no-untyped-def]
                self.fromThread.append(f)

        self.addCleanup(logs.setLevel, logs.getLevel())
        self.addCleanup(signal.signal, signal.SIGTERM, signal.getsignal(signal.SIGTERM))
        self.addCleanup(signal.signal, signal.SIGHUP, signal.getsignal(signal.SIGHUP))
        before = signal.getsignal(signal.SIGTERM)
        reactor = Reactor()
        reactor.fromThread = []
        options = Options()
        options.parseOptions(["--no-web", "--no-discovery", "--echo", "tcp:7007"])
        root = buildService(options.settings, reactor, handleSignals=True)
        root.privilegedStartService()
        handler = signal.getsignal(signal.SIGTERM)
        self.assertTrue(callable(handler))
        handler(signal.SIGTERM, None)  # type: ignore[operator]
        self.assertEqual(reactor.fromThread, [reactor.stop])
        root._closeListeners()
        self.assertEqual(signal.getsignal(signal.SIGTERM), before)

    def test_earlyTermTwice(self) -> None:
        """
        Two SIGTERMs before the reactor runs ask it to stop once (a second
        C{reactor.stop} would raise C{ReactorNotRunning}), and the second
        is logged as already shutting down.
        """
        class Reactor(MemoryReactorClock):
            def callFromThread(self, f, *args, **kwargs):  # type: ignore[no-untyped-def]
                self.fromThread.append(f)

        self.addCleanup(signal.signal, signal.SIGTERM, signal.getsignal(signal.SIGTERM))
        reactor = Reactor()
        reactor.fromThread = []
        with capturedLogs() as events:
            restore = stopOnEarlyTerm(reactor)
            self.addCleanup(restore)
            handler = signal.getsignal(signal.SIGTERM)
            handler(signal.SIGTERM, None)  # type: ignore[operator]
            handler(signal.SIGTERM, None)  # type: ignore[operator]
        self.assertEqual(reactor.fromThread, [reactor.stop])
        self.assertEqual(
            [formatEvent(e) for e in events], ["Received SIGTERM: already shutting down"]
        )

    def test_reactorHandlerOnce(self) -> None:
        """
        Once the reactor runs, its SIGTERM and SIGINT handlers are called
        for the first of these signals only, and not at all once the
        reactor is shutting down for another reason.
        """
        self.addCleanup(signal.signal, signal.SIGTERM, signal.getsignal(signal.SIGTERM))
        self.addCleanup(signal.signal, signal.SIGINT, signal.getsignal(signal.SIGINT))
        reactor = MemoryReactorClock()
        calls: list[int] = []
        self.addCleanup(stopOnEarlyTerm(reactor))
        signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
        signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
        for hook, args, kwargs in reactor.whenRunningHooks:
            hook(*args, **kwargs)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[operator]
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
        self.assertEqual(calls, [signal.SIGTERM])
        other = MemoryReactorClock()
        self.addCleanup(stopOnEarlyTerm(other))
        signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
        for hook, args, kwargs in other.whenRunningHooks:
            hook(*args, **kwargs)
        for trigger, args, kwargs in other.triggers["before"]["shutdown"]:
            trigger(*args, **kwargs)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
        self.assertEqual(calls, [signal.SIGTERM])
