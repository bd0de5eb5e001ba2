# -*- test-case-name: tests.integration.test_workers -*-
"""
Worker processes: C{workers = N} in C{[netservices]} (or C{--workers N}).

The parent binds every stream listener once, before privileges are dropped,
and starts N workers, each a C{twistd -n netservices} that adopts those
sockets (Twisted's C{adoptStreamPort}) and accepts connections on them: the
kernel hands each new connection to one of the workers.  The parent itself
serves nothing; it supervises:

  - a worker that exits is started again (at once if it ran for a while,
    with a growing delay if it keeps dying at start-up);
  - SIGTERM (or Ctrl-C) stops every worker with SIGTERM, waits for them,
    and kills any that has not exited after L{WorkerSupervisor.killTime};
  - the workers' log events come to the parent as JSON on their standard
    output (L{services.logs.jsonLogObserver}) and are written to the
    parent's log with C{[worker-N]} as their system, at the level the worker
    logged them; SIGHUP is passed on to the workers (log reopening);
  - a worker whose parent dies (even with SIGKILL) stops by itself
    (L{services.daemon.workerprocess}).

Because the parent keeps the listening sockets, no connection is refused
while a worker restarts: the others accept it.  Every worker writes its
counters to C{worker-N.json} in the parent's runtime directory once a second
(L{services.daemon.workerstats}).

The supervisor takes values (L{WorkerPool}: how many workers, the listeners
to bind and hand down, the workers' tap.conf); the daemon builds them from
the configuration (L{services.daemon.values.workerPool}).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.error import ProcessDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from services import logs
from services.daemon.sharedlisteners import SharedListener, bindShared, checkForWorkers
from services.daemon.workerlog import WorkerProtocol
from services.daemon.workerprocess import WorkerSpec
from services.net.defaults import defaultReactor
from services.net.endpoints import ListenContext
from services.net.listener import ListenError, closeAtOnce
from services.net.systemd import FIRST_INHERITED_FD
from services.web._state import PARENT_STATE, treeState

__all__ = ["WorkerPool", "WorkerSupervisor", "reactorName"]


@dataclass(frozen=True)
class WorkerPool:
    """
    The workers a L{WorkerSupervisor} runs.

    @ivar count: how many.
    @ivar listeners: every listener they share.
    @ivar tapConf: the text of their tap.conf (the parent's settings, flags
        included).
    @ivar shutdownGrace: seconds a worker gives its open connections when
        it stops.
    """

    count: int
    listeners: tuple[SharedListener, ...]
    tapConf: str
    shutdownGrace: float


def reactorName(reactor: Any) -> str | None:
    """
    The C{twistd --reactor} name of a running reactor, so that workers run
    the reactor their parent was given; L{None} if no plugin names it.
    """
    from twisted.application.reactors import getReactorTypes

    module = type(reactor).__module__
    for installer in getReactorTypes():
        # A dropin names the module that installs the reactor: the reactor's
        # own module or the package it lives in (services.nsepoll).
        named = getattr(installer, "moduleName", None)
        if named == module or (named and module.startswith(named + ".")):
            return str(installer.shortName)
    return None


class WorkerSupervisor(Service):
    """
    Binds every stream listener of a L{WorkerPool}, runs its workers over
    them and keeps them running.

    @ivar count: how many workers run.
    @ivar killTime: seconds a worker has to exit after SIGTERM before SIGKILL:
        5 more than the shutdown grace it gives its open connections.
    @ivar runtime: the runtime directory (the workers' tap.conf and
        counters), while running.
    @ivar workers: the running workers' process transports, by number.
    """

    name = "workers"
    #: Seconds between two writes of the parent's services' state.
    stateInterval = 1.0
    minRestartDelay = 0.5
    maxRestartDelay = 30.0
    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        pool: WorkerPool,
        reactor: Any = None,
        context: ListenContext | None = None,
        environ: Mapping[str, str] | None = None,
        executable: str = sys.executable,
    ) -> None:
        """
        @param pool: the workers to run.
        @param reactor: the reactor to bind with, to spawn the workers
            with and to time their restarts (an L{IReactorProcess},
            L{IReactorTime} and the listening interfaces).
        @param context: the process's TLS files and the sockets systemd
            passed.
        @param environ: the workers' environment (without systemd's
            variables, which name this process).
        @param executable: the Python interpreter the workers run.
        """
        self.pool = pool
        self.count = pool.count
        self.killTime = pool.shutdownGrace + 5.0
        self.reactor = defaultReactor(reactor)
        self._context = ListenContext() if context is None else context
        self._environ = {
            k: v
            for k, v in (environ or {}).items()
            if k not in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
        }
        self._executable = executable
        self._ports: list[Any] = []
        self.sockets: list[tuple[str, int]] = []
        self.runtime: str | None = None
        self.workers: dict[int, Any] = {}
        self._protocols: dict[int, WorkerProtocol] = {}
        self._startedAt: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self._restarts: dict[int, Any] = {}
        self._stateWriter: LoopingCall | None = None

    def privilegedStartService(self) -> None:
        """
        Bind every stream listener (before twistd drops privileges).

        @raise ListenError: naming the listener that cannot be bound or
            shared.
        """
        Service.privilegedStartService(self)
        for listener in self.pool.listeners:
            description = listener.description
            try:
                checkForWorkers(listener, self._context)
                fileno, port = bindShared(listener, self.reactor, self._context)
            except Exception as e:
                self.closeListeners()
                raise ListenError(listener.service, description, e) from e
            if port is not None:
                self._ports.append(port)
            self.sockets.append((description, fileno))
            self._log.info(
                "{service} listening on {endpoint} (shared by {count} workers)",
                service=listener.service,
                endpoint=description,
                count=self.count,
            )

    def startService(self) -> None:
        """
        Write the workers' configuration and start them.
        """
        Service.startService(self)
        self.runtime = tempfile.mkdtemp(prefix="netservices-")
        (Path(self.runtime) / "tap.conf").write_text(self.pool.tapConf)
        self._stateWriter = LoopingCall(self.writeParentState)
        self._stateWriter.clock = self.reactor
        self._stateWriter.start(self.stateInterval, now=True)
        self._log.info(
            "starting {count} workers (runtime directory {runtime})",
            count=self.count,
            runtime=self.runtime,
        )
        for index in range(1, self.count + 1):
            self._delay[index] = self.minRestartDelay
            self.startWorker(index)

    def writeParentState(self) -> None:
        """
        Write the state of the services that run here, beside the workers
        (discovery, UDP echo), to the runtime directory, where the workers'
        C{/status} and C{/health} read it (write then rename: readers never
        see half a file).
        """
        if self.runtime is None or self.parent is None:
            return
        services = [s for s in self.parent if s is not self]
        data = json.dumps(treeState(services, getattr(self.parent, "stats", {})))
        path = Path(self.runtime) / PARENT_STATE
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_text(data)
            temporary.replace(path)
        except OSError as e:
            self._log.debug("cannot write {path}: {reason}", path=str(path), reason=e)

    def command(self, index: int) -> list[str]:
        """
        The command line of worker C{index}.
        """
        assert self.runtime is not None
        spec = WorkerSpec(
            index=index,
            count=self.count,
            inherited=tuple(
                (description, FIRST_INHERITED_FD + i)
                for i, (description, _) in enumerate(self.sockets)
            ),
            runtime=self.runtime,
        )
        reactorOption = reactorName(self.reactor)
        return [
            self._executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "--logger=services.logs.jsonLogObserver",
            *([f"--reactor={reactorOption}"] if reactorOption else []),
            "netservices",
            "--config",
            str(Path(self.runtime) / "tap.conf"),
            "--worker",
            spec.toArgument(),
        ]

    def startWorker(self, index: int) -> None:
        """
        Start worker C{index} with the shared sockets as its descriptors 3,
        4...
        """
        self._restarts.pop(index, None)
        childFDs: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        for i, (_, fileno) in enumerate(self.sockets):
            childFDs[FIRST_INHERITED_FD + i] = fileno
        protocol = WorkerProtocol(index, self._workerEnded)
        self._protocols[index] = protocol
        transport = self.reactor.spawnProcess(
            protocol,
            self._executable,
            self.command(index),
            env=self._environ,
            childFDs=childFDs,
        )
        self.workers[index] = transport
        protocol.pid = transport.pid
        self._startedAt[index] = self.reactor.seconds()
        self._log.info("worker {index} started (pid {pid})", index=index, pid=transport.pid)

    def _workerEnded(self, protocol: WorkerProtocol, reason: Failure) -> None:
        index = protocol.index
        self.workers.pop(index, None)
        self._protocols.pop(index, None)
        pid = protocol.pid
        if not self.running:
            self._log.info("worker {index} (pid {pid}) stopped", index=index, pid=pid)
            return
        ranFor = self.reactor.seconds() - self._startedAt[index]
        if ranFor >= 10 * self.minRestartDelay:
            delay = self._delay[index] = self.minRestartDelay
        else:
            delay = self._delay[index]
            self._delay[index] = min(delay * 2, self.maxRestartDelay)
        why = "exited" if reason.check(ProcessDone) else reason.getErrorMessage()
        self._log.warn(
            "worker {index} (pid {pid}) {why}; restarting it in {delay} s",
            index=index,
            pid=pid,
            why=why,
            delay=delay,
        )
        self._restarts[index] = self.reactor.callLater(delay, self.startWorker, index)

    def stopService(self) -> Deferred[None]:
        """
        Stop every worker with SIGTERM (SIGKILL after C{killTime}), then
        close the listeners.
        """
        Service.stopService(self)
        if self._stateWriter is not None and self._stateWriter.running:
            self._stateWriter.stop()
        self._stateWriter = None
        for call in self._restarts.values():
            if call.active():
                call.cancel()
        self._restarts.clear()
        waits = []
        for index, transport in list(self.workers.items()):
            waits.append(self._protocols[index].ended)
            self._signal(transport, signal.SIGTERM)
        kill = self.reactor.callLater(self.killTime, self._killAll)
        done: Deferred[Any] = DeferredList(waits) if waits else succeed(None)

        def finished(_: object) -> Deferred[Any]:
            if kill.active():
                kill.cancel()
            if self.runtime is not None:
                shutil.rmtree(self.runtime, ignore_errors=True)
                self.runtime = None
            self._log.info("all workers stopped")
            return self._closePorts()

        return done.addCallback(finished)

    def reopen(self) -> int:
        """
        Pass SIGHUP on to every worker, so that each reopens its log files
        (for C{logrotate}); the parent's own log is reopened by its caller.

        @return: 0, the files reopened in this process (each worker logs
            its own).
        """
        for transport in list(self.workers.values()):
            self._signal(transport, signal.SIGHUP)
        return 0

    def _killAll(self) -> None:
        for index, transport in list(self.workers.items()):
            self._log.warn("worker {index} did not stop in time: killing it", index=index)
            self._signal(transport, signal.SIGKILL)

    @staticmethod
    def _signal(transport: Any, number: int) -> None:
        try:
            transport.signalProcess(number)
        except Exception:  # already gone
            pass

    def closeListeners(self) -> None:
        """
        Close the listeners bound so far at once, before the reactor runs
        (a start-up that failed).
        """
        ports, self._ports = self._ports, []
        self.sockets = []
        for port in ports:
            closeAtOnce(port)

    def _closePorts(self) -> Deferred[Any]:
        """
        Close the listeners (a UNIX socket's file goes with its port).
        """
        ports, self._ports = self._ports, []
        return DeferredList([maybeDeferred(port.stopListening) for port in ports])
