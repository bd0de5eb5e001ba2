# -*- test-case-name: tests.integration.test_workers -*-
"""
Tests for L{services.daemon.workers} and the modules beside it
(L{services.daemon.workerprocess}, L{services.daemon.workerstats},
L{services.daemon.sharedlisteners}, L{services.daemon.workerlog}): worker
processes sharing the listeners under a supervising parent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, eventAsJSON
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from services.config import Config, parseConfig, replaceSection
from services.daemon.sharedlisteners import SharedListener
from services.daemon.tap import Options
from services.daemon.tree import buildService
from services.daemon.values import streamListeners, workerPool
from services.daemon.workerprocess import WorkerSpec, _ParentWatcher, watchParent, workerProcess
from services.daemon.workers import WorkerSupervisor
from services.daemon.workerstats import WorkerStatsWriter, readWorkerStats, totals
from services.net.endpoints import ListenContext
from services.net.listener import ListenError
from services.net.sockets import SocketOptions
from services.stats import ConnectionStats
from tests.support import Daemon, freePort, isolatedConfig, roundTrip, waitUntil


class FakeProcess:
    """
    A process transport that records signals.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[int] = []

    def signalProcess(self, number: int) -> None:
        """
        Record the signal.
        """
        self.signals.append(number)


class ProcessReactor(MemoryReactorClock):
    """
    A memory reactor that records spawned processes.
    """

    def __init__(self) -> None:
        MemoryReactorClock.__init__(self)
        self.spawned: list[dict[str, Any]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], env: Any = None,
                     path: Any = None, uid: Any = None, gid: Any = None, usePTY: Any = False,
                     childFDs: Any = None) -> FakeProcess:
        """
        Record the process and connect C{protocol} to a L{FakeProcess}.
        """
        process = FakeProcess(1000 + len(self.spawned))
        self.spawned.append(
            {"protocol": protocol, "executable": executable, "args": args, "env": env,
             "childFDs": childFDs, "process": process}
        )
        protocol.makeConnection(process)
        return process


class WorkerSpecTests(SynchronousTestCase):
    """
    Tests for L{WorkerSpec}.
    """

    def test_roundTrip(self) -> None:
        """
        The command-line text gives back the same specification.
        """
        spec = WorkerSpec(2, 4, (("tcp:8007", 3), ("unix:/x", 4)), "/tmp/r")
        self.assertEqual(WorkerSpec.fromArgument(spec.toArgument()), spec)
        self.assertEqual(spec.statsPath, Path("/tmp/r/worker-2.json"))

    def test_bad(self) -> None:
        """
        Anything else is a usage error of C{--worker}.
        """
        for text in ["", "{}", "[1]", '{"index": "x", "count": 1, "inherited": [], "runtime": ""}']:
            self.assertRaises(ValueError, WorkerSpec.fromArgument, text)
        options = Options()
        self.assertRaises(SystemExit, options.parseOptions, ["--worker", "nonsense"])


class OptionsTests(SynchronousTestCase):
    """
    Tests for C{--workers} and the tree it gives.
    """

    def test_workersFlag(self) -> None:
        """
        C{--workers} overrides C{[netservices] workers}, with the same
        validation.
        """
        options = Options()
        options.parseOptions(["--workers", "3"])
        self.assertEqual(options.settings.netservices.workers, 3)
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["--workers", "0"])
        self.assertIn("--workers '0': expected a whole number from 1 to 256", str(caught.exception))

    def test_tree(self) -> None:
        """
        With workers the parent's tree is the supervisor and the datagram
        services (which run once per instance); a worker's process runs the
        stream services' tree, and beside it (so that /status and /health
        do not list them) a counters writer and a parent watcher.
        """
        reactor = ProcessReactor()
        config = replaceSection(Config(), "netservices", workers=2)
        root = buildService(config, reactor)
        self.assertEqual([s.name for s in root], ["workers", "discovery"])
        spec = WorkerSpec(1, 2, (("tcp:8007:interface=127.0.0.1", 3),), "/tmp/r")
        root = buildService(config, reactor, worker=spec)
        self.assertEqual([s.name for s in root], ["echo", "web"])
        self.assertIs(root.worker, spec)
        process = workerProcess(root, spec, reactor)
        self.assertEqual(list(process), [root, process.getServiceNamed("worker-stats"),
                                         process.getServiceNamed("parent-watch")])

    def test_streamListeners(self) -> None:
        """
        Every listener of every enabled stream service is shared, with its
        section's socket options.
        """
        config = replaceSection(Config(), "echo", listen=("tcp:1", "unix:/x"), backlog=5)
        config = replaceSection(config, "web", listen=("ssl:2",), backlog=6)
        self.assertEqual(
            streamListeners(config),
            (
                SharedListener("echo", "tcp:1", SocketOptions(backlog=5)),
                SharedListener("echo", "unix:/x", SocketOptions(backlog=5)),
                SharedListener("web", "ssl:2", SocketOptions(backlog=6)),
            ),
        )
        config = replaceSection(config, "echo", enabled=False)
        config = replaceSection(config, "web", enabled=False)
        self.assertEqual(streamListeners(config), ())


class SupervisorTests(SynchronousTestCase):
    """
    Tests for L{WorkerSupervisor} with a fake process reactor.
    """

    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        config = replaceSection(Config(), "netservices", workers=2)
        self.supervisor = WorkerSupervisor(
            workerPool(config),
            self.reactor,
            ListenContext(),
            {"PATH": "/bin", "LISTEN_FDS": "1"},
            "python",
        )
        self.supervisor.sockets = [("tcp:8007:interface=127.0.0.1", 7)]
        self.supervisor.startService()
        self.addCleanup(self.cleanRuntime)

    def cleanRuntime(self) -> None:
        """
        Remove the supervisor's runtime directory if it is still there.
        """
        if self.supervisor.runtime:
            shutil.rmtree(self.supervisor.runtime)

    def end(self, index: int, reason: type = ProcessTerminated) -> None:
        """
        Make worker C{index} exit with C{reason}.
        """
        self.supervisor._protocols[index].processEnded(Failure(reason(0)))

    def test_start(self) -> None:
        """
        Each worker gets the shared sockets from descriptor 3 on, a pipe as
        standard input, the parent's environment without systemd's
        variables, and a command line naming its tap.conf and its
        specification.
        """
        self.assertEqual(len(self.reactor.spawned), 2)
        first = self.reactor.spawned[0]
        self.assertEqual(first["childFDs"], {0: "w", 1: "r", 2: "r", 3: 7})
        self.assertEqual(first["env"], {"PATH": "/bin"})
        args = first["args"]
        self.assertEqual(args[0], "python")
        self.assertIn("--logger=services.logs.jsonLogObserver", args)
        conf = args[args.index("--config") + 1]
        self.assertEqual(parseConfig(Path(conf).read_text()).netservices.workers, 2)
        spec = WorkerSpec.fromArgument(args[args.index("--worker") + 1])
        self.assertEqual(spec, WorkerSpec(1, 2, (("tcp:8007:interface=127.0.0.1", 3),), self.supervisor.runtime))

    def test_restart(self) -> None:
        """
        A worker that dies is started again after the minimum delay; one
        that keeps dying at once waits twice as long each time; one that ran
        for a while is restarted after the minimum delay again.
        """
        minimum = self.supervisor.minRestartDelay
        with capturedLogs() as events:
            self.end(1)
        self.assertEqual(events[-1]["log_level"], LogLevel.warn)
        self.assertIn("restarting it in", events[-1]["log_format"])
        self.reactor.advance(minimum - 0.01)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.reactor.advance(0.01)
        self.assertEqual(len(self.reactor.spawned), 3)
        self.end(1)
        self.reactor.advance(minimum)
        self.assertEqual(len(self.reactor.spawned), 3)
        self.reactor.advance(minimum)
        self.assertEqual(len(self.reactor.spawned), 4)
        self.reactor.advance(60)
        self.end(1, ProcessDone)
        self.reactor.advance(minimum)
        self.assertEqual(len(self.reactor.spawned), 5)
        self.assertEqual(len(self.supervisor.workers), 2)

    def test_stop(self) -> None:
        """
        Stopping sends SIGTERM to every worker, cancels pending restarts and
        finishes once all have exited, removing the runtime directory.
        """
        self.end(2)
        runtime = self.supervisor.runtime
        d = self.supervisor.stopService()
        process = self.reactor.spawned[0]["process"]
        self.assertEqual(process.signals, [signal.SIGTERM])
        self.assertNoResult(d)
        self.end(1)
        self.successResultOf(d)
        self.reactor.advance(60)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertFalse(Path(runtime).exists())

    def test_reopen(self) -> None:
        """
        Reopening the logs (SIGHUP in the parent) sends SIGHUP to every
        worker.
        """
        self.supervisor.reopen()
        for spawned in self.reactor.spawned:
            self.assertEqual(spawned["process"].signals, [signal.SIGHUP])

    def test_killAfterTimeout(self) -> None:
        """
        A worker that has not exited C{killTime} seconds after SIGTERM (5
        more than the shutdown grace it gives its connections) gets SIGKILL.
        """
        self.assertEqual(self.supervisor.killTime, 15.0)
        d = self.supervisor.stopService()
        self.reactor.advance(self.supervisor.killTime)
        for spawned in self.reactor.spawned:
            self.assertEqual(spawned["process"].signals, [signal.SIGTERM, signal.SIGKILL])
        self.end(1)
        self.end(2)
        self.successResultOf(d)

    def test_relayLog(self) -> None:
        """
        The worker's JSON log events, even split across reads, are published
        as the worker's, at their own level; its standard error is logged
        line by line.
        """
        protocol = self.supervisor._protocols[1]
        event = {"log_format": "echo: {n} connected", "n": 5, "log_level": LogLevel.debug,
                 "log_namespace": "services.echo._tcp", "log_time": 1.0}
        record = ("\x1e" + eventAsJSON(event) + "\n").encode("utf-8")
        with capturedLogs() as events:
            protocol.outReceived(record[:10])
            protocol.outReceived(record[10:] + b"not json\n")
            protocol.errReceived(b"Traceback (most\nrecent")
        self.assertEqual(events[0]["log_system"], "worker-1")
        self.assertEqual(events[0]["log_level"], LogLevel.debug)
        self.assertEqual(events[0]["n"], 5)
        self.assertEqual([e["line"] for e in events[1:]], ["not json", "Traceback (most"])
        self.assertEqual(events[1]["log_system"], "worker-1")


class WorkerStatsTests(SynchronousTestCase):
    """
    Tests for L{WorkerStatsWriter}, L{readWorkerStats} and L{totals}.
    """

    def test_writeAndRead(self) -> None:
        """
        Each worker's counters are written every interval and read back in
        worker order; totals add them up.
        """
        runtime = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, runtime)
        clock = MemoryReactorClock()
        writers = []
        for index in (2, 1):
            stats = ConnectionStats(accepted=index * 10, current=1)
            path = WorkerSpec(index, 2, (), runtime).statsPath
            writer = WorkerStatsWriter(path, index, {"echo": stats}, clock)
            writer.startService()
            writers.append((writer, stats))
        found = readWorkerStats(runtime)
        self.assertEqual([w["worker"] for w in found], [1, 2])
        self.assertEqual(found[0]["services"]["echo"]["accepted"], 10)
        writers[0][1].accepted += 5
        clock.advance(1)
        self.assertEqual(totals(readWorkerStats(runtime))["echo"]["accepted"], 35)
        self.assertEqual(totals(readWorkerStats(runtime))["echo"]["current"], 2)
        for writer, _ in writers:
            writer.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])


class ParentWatcherTests(SynchronousTestCase):
    """
    Tests for L{_ParentWatcher}.
    """

    def test_endOfFile(self) -> None:
        """
        End of file on the pipe from the parent calls back once.
        """
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        reactor = MemoryReactorClock()
        gone = []
        watcher = _ParentWatcher(reactor, r, lambda: gone.append(True))
        reactor.addReader(watcher)
        os.close(w)
        watcher.doRead()
        self.assertEqual(gone, [True])
        self.assertNotIn(watcher, reactor.getReaders())
        watcher.connectionLost(None)
        self.assertEqual(gone, [True])

    def test_hangUp(self) -> None:
        """
        A hang-up that the reactor reports as a lost connection calls back
        too.
        """
        gone = []
        watcher = _ParentWatcher(MemoryReactorClock(), 0, lambda: gone.append(True))
        watcher.connectionLost(None)
        self.assertEqual(gone, [True])


class WatchParentTests(SynchronousTestCase):
    """
    Tests for L{watchParent}: a worker whose parent goes away stops as it
    does on SIGTERM.
    """

    def test_stopsThroughTheShutdownEvent(self) -> None:
        """
        End of file from the parent stops a running reactor by its shutdown
        event: the services stop (which is where they drain and close
        their listeners), the watch ends, and a warning says why.
        """
        from twisted.application.service import MultiService

        from tests.support import buildReactor

        reactor = buildReactor(self)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        process = MultiService()
        services = MultiService()
        services.setServiceParent(process)
        watch = watchParent(reactor, r)
        watch.setServiceParent(process)
        # What twistd does with the application.
        reactor.callWhenRunning(process.startService)
        reactor.addSystemEventTrigger("before", "shutdown", process.stopService)
        reactor.callWhenRunning(os.close, w)
        guard = reactor.callLater(10, reactor.crash)  # bounds the test if nothing stops it
        with capturedLogs() as events:
            reactor.run(installSignalHandlers=False)
        self.assertTrue(guard.active())
        guard.cancel()
        self.assertFalse(services.running)
        self.assertFalse(watch.running)
        self.assertNotIn(watch._watcher, reactor.getReaders())
        warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(
            [e["log_format"] for e in warnings], ["the netservices parent is gone: stopping"]
        )

    def test_parentGoneWhileStopping(self) -> None:
        """
        A parent that goes away while the worker is already stopping (after
        the SIGTERM it sent) does not stop the reactor a second time: no
        C{ReactorNotRunning}, one line saying so.
        """
        from tests.support import buildReactor

        reactor = buildReactor(self)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        watch = watchParent(reactor, r)
        stopped = []
        reactor.addSystemEventTrigger("before", "shutdown", stopped.append, True)

        def sigtermThenParentGone() -> None:
            reactor.stop()  # what the SIGTERM handler does
            os.close(w)
            watch._watcher.doRead()  # the parent's end of file, read in the same turn

        reactor.callWhenRunning(watch.startService)
        reactor.callWhenRunning(sigtermThenParentGone)
        reactor.callLater(10, reactor.crash)  # bounds the test
        with capturedLogs() as events:
            reactor.run(installSignalHandlers=False)
        self.assertEqual(stopped, [True])
        self.assertEqual(
            [e["log_format"] for e in events if e.get("log_namespace", "").endswith("_WatchParent")],
            ["the netservices parent is gone: already shutting down"],
        )
        self.assertEqual([e for e in events if e.get("log_failure")], [])


def echo(port: int, payload: bytes) -> bytes:
    """
    One echo round trip on a new connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return roundTrip(s, payload)


def alive(pid: int) -> bool:
    """
    Whether process C{pid} exists and is not a zombie.
    """
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class WorkersDaemonTests(TestCase):
    """
    A real daemon with two workers.
    """

    def start(
        self, extra: str = "", web: str = "", discovery: str = ""
    ) -> tuple[Daemon, int, Path]:
        """
        Start a daemon with two workers: echo on a TCP port and C{extra}
        endpoints, web on C{web} if given, discovery with C{discovery} (the
        section's text) if given.
        """
        port = freePort()
        sections = {"echo": f"listen = tcp:{port}:interface=127.0.0.1 {extra}"}
        if web:
            sections["web"] = f"listen = {web}"
        if discovery:
            sections["discovery"] = discovery
        daemon = Daemon(["--workers", "2"], isolatedConfig(**sections))
        self.addCleanup(daemon.stop)
        log = daemon.waitForLog("[worker-2] echo listening")
        daemon.waitForLog("[worker-1] echo listening")
        runtime = Path(re.search(r"runtime directory (\S+)\)", log).group(1))
        return daemon, port, runtime

    def workerStats(
        self, runtime: Path, accepted: int, workers: int = 2
    ) -> dict[int, dict[str, Any]]:
        """
        Wait until C{workers} workers have written their counters and these
        add up to C{accepted} connections.
        """

        def check() -> dict[int, dict[str, Any]] | None:
            found = {w["worker"]: w for w in readWorkerStats(runtime)}
            total = sum(w["services"]["echo"]["accepted"] for w in found.values())
            return found if total >= accepted and len(found) >= workers else None

        return waitUntil(check, 10, f"{accepted} connections in the workers' counters")

    def test_spreadAndRestart(self) -> None:
        """
        200 connections are spread over both workers (a UNIX listener is
        shared too); a killed worker is started again while the other keeps
        serving, and no connection fails; SIGTERM stops the parent and every
        worker, and the UNIX socket's file goes.
        """
        unixPath = Path(tempfile.mkdtemp()) / "echo.sock"
        self.addCleanup(shutil.rmtree, unixPath.parent, True)
        webPort = freePort()
        daemon, port, runtime = self.start(
            f"unix:{unixPath}", web=f"tcp:{webPort}:interface=127.0.0.1"
        )
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(unixPath))
            s.sendall(b"shared unix socket")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(100), b"shared unix socket")
        failures = []

        def client(k: int) -> None:
            # 64 KiB each: connections that keep a worker busy for a moment,
            # as real ones do, so an idle worker takes the next one.
            for i in range(k, 200, 4):
                payload = (b"%04d" % i) * 16384
                try:
                    if echo(port, payload) != payload:
                        failures.append(i)
                except OSError as e:
                    failures.append(e)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(failures, [])
        workers = self.workerStats(runtime, 201)
        counts = {i: w["services"]["echo"]["accepted"] for i, w in workers.items()}
        self.assertEqual(sorted(counts), [1, 2])
        self.assertEqual(sum(counts.values()), 201)
        self.assertTrue(all(n >= 20 for n in counts.values()), counts)

        def status() -> dict[str, Any] | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{webPort}/status", timeout=10) as r:
                document: dict[str, Any] = json.load(r)["workers"]
            return document if document["totals"]["echo"]["accepted"] == 201 else None

        document = waitUntil(status, 10, "/status to show the 201 connections")
        self.assertEqual(document["count"], 2)
        self.assertIn(document["this"], (1, 2))
        self.assertEqual(
            {w["worker"]: w["services"]["echo"]["accepted"] for w in document["workers"]}, counts
        )
        self.assertIn("web", document["totals"])

        killed = workers[1]["pid"]
        os.kill(killed, signal.SIGKILL)
        for i in range(30):  # served by worker 2 meanwhile
            self.assertEqual(echo(port, b"during %d" % i), b"during %d" % i)
        log = daemon.waitForLog(f"worker 1 (pid {killed}) ")
        self.assertIn("restarting it in", log)
        restarted = waitUntil(
            lambda: (w := {w["worker"]: w for w in readWorkerStats(runtime)}.get(1))
            and w["pid"] != killed and w["pid"],
            15,
            "worker 1 to come back",
        )
        self.assertIn(f"worker 1 started (pid {restarted})", daemon.log())
        waitUntil(lambda: not alive(killed), 5, "the killed worker to be reaped")

        pids = [restarted, workers[2]["pid"]]
        self.assertIn(daemon.stop(), (0, -15))
        self.assertFalse([pid for pid in pids if alive(pid)])
        self.assertFalse(unixPath.exists())  # the parent's listener, removed

    def test_parentServicesShown(self) -> None:
        """
        With workers, discovery runs in the parent, and every worker's
        C{/status} and C{/health} still show it: listening, with its
        counters and peers.
        """
        webPort, discoveryPort = freePort(), freePort(socket.SOCK_DGRAM)
        self.start(
            web=f"tcp:{webPort}:interface=127.0.0.1",
            discovery=f"port = {discoveryPort}\ninterval = 0.5\nttl = 2\n",
        )

        def get(path: str) -> dict[str, Any]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{webPort}{path}", timeout=10) as r:
                    document: dict[str, Any] = json.load(r)
            except urllib.error.HTTPError as e:
                document = json.load(e)
            return document

        entry = waitUntil(
            lambda: get("/status")["services"].get("discovery"), 10, "discovery in /status"
        )
        self.assertTrue(entry["listening"])
        self.assertEqual(entry["addresses"], [f"127.0.0.1:{discoveryPort}"])
        self.assertIn("announcesSent", entry["counters"])
        self.assertEqual(entry["peers"], [])
        health = get("/health")
        self.assertEqual(health["services"]["discovery"], "listening")
        self.assertEqual(health["status"], "ok")

    def test_orphanedWorkersStop(self) -> None:
        """
        Workers whose parent is killed outright stop by themselves.
        """
        daemon, port, runtime = self.start()
        self.addCleanup(shutil.rmtree, runtime, True)  # its parent cannot remove it
        workers = self.workerStats(runtime, 0)
        pids = [w["pid"] for w in workers.values()]
        self.assertEqual(len(pids), 2)
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(10)
        waitUntil(lambda: not any(alive(pid) for pid in pids), 10, "the orphaned workers to stop")


class ReactorNameTests(SynchronousTestCase):
    """
    Workers run the reactor their parent was given.
    """

    def test_names(self) -> None:
        """
        A reactor is named by the twistd plugin that installs its module;
        an unknown one has no name.
        """
        from twisted.internet import epollreactor

        from services.nsepoll._reactor import NetservicesReactor
        from services.daemon.workers import reactorName

        self.assertEqual(reactorName(NetservicesReactor.__new__(NetservicesReactor)), "nsepoll")
        self.assertEqual(
            reactorName(epollreactor.EPollReactor.__new__(epollreactor.EPollReactor)), "epoll"
        )
        self.assertIsNone(reactorName(object()))


class ParentChecksTests(SynchronousTestCase):
    """
    The parent checks, before it starts any worker, what the workers will
    need and that it does not bind itself.
    """

    def bind(self, **web: Any) -> None:
        config = replaceSection(Config(), "netservices", workers=2)
        config = replaceSection(config, "echo", enabled=False)
        config = replaceSection(config, "web", **web)
        supervisor = WorkerSupervisor(
            workerPool(config), MemoryReactorClock(), ListenContext(), {}, "python"
        )
        supervisor.privilegedStartService()

    def test_certificate(self) -> None:
        """
        An C{ssl:} listener whose certificate is not PEM: one error naming
        the listener and the file.
        """
        path = Path(self.mktemp())
        path.write_text("not a certificate\n")
        description = f"ssl:8443:interface=127.0.0.1:privateKey={path}"
        with self.assertRaises(ListenError) as caught:
            self.bind(listen=(description,))
        self.assertEqual(
            str(caught.exception), f"web: cannot listen on {description}: no PEM certificate in {path}"
        )

    def test_accessLog(self) -> None:
        """
        An access log that cannot be opened: one error naming it.
        """
        missing = os.path.join(self.mktemp(), "access.log")
        with self.assertRaises(ListenError) as caught:
            self.bind(listen=("tcp:8080:interface=127.0.0.1",), access_log=missing)
        self.assertEqual(
            str(caught.exception),
            f"web: cannot listen on tcp:8080:interface=127.0.0.1: cannot open the access log "
            f"{missing}: no such file or directory",
        )
