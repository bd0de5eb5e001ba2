# -*- test-case-name: tests.test_workers -*-
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
  - a worker whose parent dies (even with SIGKILL) stops by itself: it
    watches the pipe the parent holds open as its standard input.

Because the parent keeps the listening sockets, no connection is refused
while a worker restarts: the others accept it.  Every worker writes its
counters to C{worker-N.json} in the parent's runtime directory once a second;
L{readWorkerStats} collects them (per worker, and L{totals}).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import (
    Logger,
    eventFromJSON,
    globalLogPublisher,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs
from services.config import SECTIONS, SMALL_SERVICES, Config
from services.net.listen import (
    ListenContext,
    ListenError,
    SocketOptions,
    SystemdEndpoint,
    applyBufferSizes,
    closeAtOnce,
    parseListen,
    socketEndpoint,
    socketFamily,
    tlsFiles,
)
from services.daemon.values import socketOptions
from services.web._state import PARENT_STATE, treeState
from services.net.tls import certificateOptions

__all__ = [
    "STREAM_SERVICES",
    "WorkerSpec",
    "WorkerStatsWriter",
    "WorkerSupervisor",
    "formatConfig",
    "namedSockets",
    "readWorkerStats",
    "streamListeners",
    "systemdSockets",
    "totals",
    "watchParent",
    "workerProcess",
    "workersDocument",
]

#: The sections whose C{listen} endpoints are stream listeners the workers
#: share.
STREAM_SERVICES = ("echo", "web", *SMALL_SERVICES)

#: The first file descriptor number of the sockets a worker inherits.
FIRST_INHERITED_FD = 3


def formatConfig(config: Config) -> str:
    """
    The text of a tap.conf that parses back to C{config}: how the parent
    gives its workers exactly its own settings, flags included.
    """

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, tuple):
            return " ".join(value)
        return str(value)

    lines = [f"# Written by the netservices parent from {config.source}."]
    for section in SECTIONS:
        values = getattr(config, section.replace("-", "_"))
        lines.append(f"[{section}]")
        for f in dataclasses.fields(values):
            lines.append(f"{f.name} = {text(getattr(values, f.name))}")
    return "\n".join(lines) + "\n"


def namedSockets(descriptors: Sequence[int], fdnames: str | None) -> tuple[tuple[str, int], ...]:
    """
    Pair systemd's descriptors with the names in C{LISTEN_FDNAMES}.  Without
    names (systemd before 227, other service managers), or with a count that
    does not match, every socket is named C{"unknown"}, as
    C{sd_listen_fds_with_names} does, so C{systemd:index=N} still works.
    """
    names = (fdnames or "").split(":")
    if len(names) != len(descriptors):
        names = ["unknown"] * len(descriptors)
    return tuple(zip(names, descriptors))


class _Unbound:
    """
    Stands in for a reactor while Twisted's systemd parser is asked for a
    descriptor.
    """


def systemdSockets(environ: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    """
    The sockets systemd passed to this process, as C{(name, fd)}.

    Twisted reads C{LISTEN_PID} and C{LISTEN_FDS} when
    L{twisted.internet.endpoints} is first imported, and removes them from
    the environment then (twistd imports it while it looks for plugins), so
    the descriptors come from Twisted's C{systemd:} parser; their names from
    C{LISTEN_FDNAMES}, which it leaves in place.
    """
    from twisted.internet.endpoints import serverFromString

    descriptors: list[int] = []
    while True:
        try:
            endpoint = serverFromString(_Unbound(), f"systemd:domain=INET:index={len(descriptors)}")
        except IndexError:
            break
        descriptors.append(endpoint.fileno)
    return namedSockets(descriptors, environ.get("LISTEN_FDNAMES"))


def streamListeners(config: Config) -> list[tuple[str, str, SocketOptions]]:
    """
    Every stream listener of the enabled services, as C{(service,
    description, options)}.
    """
    found: list[tuple[str, str, SocketOptions]] = []
    for name in STREAM_SERVICES:
        section = getattr(config, name, None)
        if section is None or not section.enabled:
            continue
        options = socketOptions(section)
        found.extend((name, description, options) for description in section.listen)
    return found


@dataclass(frozen=True)
class WorkerSpec:
    """
    What the parent tells a worker, as the value of C{--worker}.

    @ivar index: this worker's number, from 1.
    @ivar count: how many workers there are.
    @ivar inherited: C{(description, fd)} of every socket it inherits.
    @ivar runtime: the parent's runtime directory (for C{worker-N.json}).
    """

    index: int
    count: int
    inherited: tuple[tuple[str, int], ...]
    runtime: str

    def toArgument(self) -> str:
        """
        The JSON text passed on the worker's command line.
        """
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def fromArgument(cls, text: str) -> WorkerSpec:
        """
        Read L{toArgument}'s text.

        @raise ValueError: when it is not one.
        """
        try:
            data = json.loads(text)
            return cls(
                index=int(data["index"]),
                count=int(data["count"]),
                inherited=tuple((str(d), int(fd)) for d, fd in data["inherited"]),
                runtime=str(data["runtime"]),
            )
        except (ValueError, KeyError, TypeError):
            raise ValueError("not a worker specification from a netservices parent") from None

    @property
    def statsPath(self) -> Path:
        """
        Where this worker writes its counters.
        """
        return Path(self.runtime) / f"worker-{self.index}.json"


class _WorkerProtocol(ProcessProtocol):
    """
    The parent's end of one worker: relays its log, reports its exit.
    """

    _log = Logger(observer=logs.observer)
    _relay = Logger(observer=globalLogPublisher)

    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.system = f"worker-{index}"
        self.pid: int | None = None
        self.ended: Deferred[None] = Deferred()
        self._out = b""
        self._err = b""

    def outReceived(self, data: bytes) -> None:
        """
        Republish the worker's JSON log events, as the worker's.
        """
        self._out += data
        *records, self._out = self._out.split(b"\n")
        for record in records:
            record = record.lstrip(b"\x1e")
            if not record.strip():
                continue
            try:
                event = eventFromJSON(record.decode("utf-8"))
            except ValueError:
                self._line(record)
                continue
            event["log_system"] = self.system
            globalLogPublisher(event)

    def errReceived(self, data: bytes) -> None:
        """
        Log what the worker wrote to its standard error, line by line.
        """
        self._err += data
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        if line.strip():
            self._relay.warn(
                "{line}", line=line.decode("utf-8", "replace").rstrip(), log_system=self.system
            )

    def processEnded(self, reason: Failure) -> None:
        """
        Tell the supervisor.
        """
        for rest in (self._out, self._err):
            self._line(rest)
        self.supervisor._workerEnded(self, reason)
        self.ended.callback(None)


@implementer(IReadDescriptor)
class _ParentWatcher:
    """
    Reads a worker's standard input, which the parent holds open: end of
    file means the parent is gone.
    """

    def __init__(self, reactor: Any, fileno: int, parentGone: Callable[[], None]) -> None:
        self._reactor = reactor
        self._fileno = fileno
        self._parentGone = parentGone

    def fileno(self) -> int:
        return self._fileno

    def logPrefix(self) -> str:
        return "parent"

    def doRead(self) -> None:
        try:
            data = os.read(self._fileno, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._reactor.removeReader(self)
            self._lost()

    def connectionLost(self, reason: Failure) -> None:
        # The reactor reports a hang-up without a read (epoll's EPOLLHUP).
        self._lost()

    def _lost(self) -> None:
        callback, self._parentGone = self._parentGone, lambda: None
        callback()


class _WatchParent(Service):
    _log = Logger(observer=logs.observer)

    def __init__(self, reactor: Any, fileno: int) -> None:
        self._watcher = _ParentWatcher(reactor, fileno, self._gone)
        self._reactor = reactor

    def _gone(self) -> None:
        self._log.warn("the netservices parent is gone: stopping")
        self._reactor.stop()

    def startService(self) -> None:
        Service.startService(self)
        self._reactor.addReader(self._watcher)

    def stopService(self) -> None:
        Service.stopService(self)
        self._reactor.removeReader(self._watcher)


def watchParent(reactor: Any, fileno: int = 0) -> Service:
    """
    A service that stops the reactor when the parent process goes away
    (end of file on C{fileno}, the pipe the parent holds open).
    """
    service = _WatchParent(reactor, fileno)
    service.setName("parent-watch")
    return service


class WorkerStatsWriter(Service):
    """
    Writes a worker's counters to C{worker-N.json} every C{interval}
    seconds (write then rename, so readers never see half a file).
    """

    name = "worker-stats"

    def __init__(
        self, spec: WorkerSpec, stats: Mapping[str, Any], clock: Any, interval: float = 1.0
    ) -> None:
        self.spec = spec
        self.stats = stats
        self._call = LoopingCall(self.write)
        self._call.clock = clock
        self._interval = interval

    def write(self) -> None:
        """
        Write the counters now.
        """
        data = {
            "worker": self.spec.index,
            "pid": os.getpid(),
            "services": {name: s.snapshot() for name, s in self.stats.items()},
        }
        path = self.spec.statsPath
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(data))
            temporary.replace(path)
        except OSError:  # the parent removed the directory: it is stopping
            pass

    def startService(self) -> None:
        """
        Write the counters now and every C{interval} seconds.
        """
        Service.startService(self)
        self._call.start(self._interval, now=True)

    def stopService(self) -> None:
        """
        Stop the timer and write the final counters.
        """
        Service.stopService(self)
        if self._call.running:
            self._call.stop()
        self.write()


def readWorkerStats(runtime: str | Path) -> list[dict[str, Any]]:
    """
    The counters every worker last wrote, in worker order.
    """
    found: list[dict[str, Any]] = []
    for path in Path(runtime).glob("worker-*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda d: d.get("worker", 0))


def workersDocument(spec: WorkerSpec) -> dict[str, Any]:
    """
    What C{/status} shows about the workers, whichever of them answers:
    which one answered, each worker's last counters (at most a second old)
    and their totals.
    """
    workers = readWorkerStats(spec.runtime)
    return {
        "count": spec.count,
        "this": spec.index,
        "workers": workers,
        "totals": totals(workers),
    }


def workerProcess(root: Any, spec: WorkerSpec, reactor: Any) -> MultiService:
    """
    The service tree of a worker process: C{root} (the services), the writer
    of its counters and the watch on its parent.  These two stay outside
    C{root}, so that C{/status}, C{/health} and C{/metrics} report on
    services only.
    """
    process = MultiService()
    root.setServiceParent(process)
    WorkerStatsWriter(spec, root.stats, reactor).setServiceParent(process)
    watchParent(reactor).setServiceParent(process)
    return process


def totals(workers: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """
    The sum of each counter of each service over C{workers}.
    """
    summed: dict[str, dict[str, int]] = {}
    for worker in workers:
        for service, counters in worker.get("services", {}).items():
            into = summed.setdefault(service, {})
            for key, value in counters.items():
                into[key] = into.get(key, 0) + value
    return summed


class _Unused(Factory):
    """
    The factory of the parent's listening ports, which never accept.
    """

    noisy = False

    def logPrefix(self) -> str:
        return "shared listener"


def reactorName(reactor: Any) -> str | None:
    """
    The C{twistd --reactor} name of a running reactor, so that workers run
    the reactor their parent was given; L{None} if no plugin names it.
    """
    from twisted.application.reactors import getReactorTypes

    module = type(reactor).__module__
    for installer in getReactorTypes():
        if getattr(installer, "moduleName", None) == module:
            return str(installer.shortName)
    return None


class WorkerSupervisor(Service):
    """
    Binds every stream listener, runs C{count} workers over them and keeps
    them running.

    @ivar killTime: seconds a worker has to exit after SIGTERM before SIGKILL:
        5 more than C{[netservices] shutdown_grace}, which the worker gives
        its open connections.
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
        config: Config,
        reactor: Any,
        context: ListenContext,
        environ: Mapping[str, str],
        executable: str = sys.executable,
    ) -> None:
        self.config = config
        self.count = config.netservices.workers
        self.killTime = config.netservices.shutdown_grace + 5.0
        self._reactor = reactor
        self._context = context
        self._environ = {
            k: v for k, v in environ.items() if k not in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
        }
        self._executable = executable
        self._ports: list[Any] = []
        self.sockets: list[tuple[str, int]] = []
        self.runtime: str | None = None
        self.workers: dict[int, Any] = {}
        self._protocols: dict[int, _WorkerProtocol] = {}
        self._started: dict[int, float] = {}
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
        for service, description, options in streamListeners(self.config):
            try:
                self._checkForWorkers(description)
                self.sockets.append((description, self._bind(description, options)))
            except Exception as e:
                self.closeListeners()
                raise ListenError(service, description, e) from e
            self._log.info(
                "{service} listening on {endpoint} (shared by {count} workers)",
                service=service,
                endpoint=description,
                count=self.count,
            )

    def _checkForWorkers(self, description: str) -> None:
        """
        Check now what each worker will need to serve C{description}, so
        that a mistake stops the parent at start-up, with one line, instead
        of every worker, over and over: its certificate and key (C{ssl:}),
        and the access log of the web service.

        @raise Exception: a L{TLSError} or L{OSError} saying what is wrong.
        """
        spec = parseListen(description)
        if spec.tls is not None:
            certificateOptions(tlsFiles(spec, self._context))
        web = self.config.web
        if web.enabled and web.access_log and description in web.listen:
            from services.web._accesslog import AccessLogFile

            try:
                AccessLogFile(web.access_log).close()
            except OSError as e:
                raise ValueError(
                    f"cannot open the access log {web.access_log}: {(e.strerror or str(e)).lower()}"
                ) from None

    def _bind(self, description: str, options: SocketOptions) -> int:
        spec = parseListen(description)
        if spec.kind == "systemd":
            fileno = SystemdEndpoint(self._reactor, spec.socket, self._context.systemd).fileno()
            socketFamily(fileno)
            return fileno
        result: list[Any] = []
        socketEndpoint(self._reactor, spec, options, self._context).listen(_Unused()).addBoth(
            result.append
        )
        [port] = result
        if isinstance(port, Failure):
            port.raiseException()
        self._ports.append(port)
        if not callable(getattr(port, "fileno", None)):
            raise ValueError("workers can only share socket listeners")
        port.stopReading()  # the workers accept, not the parent
        applyBufferSizes(port, options)
        return int(port.fileno())

    def startService(self) -> None:
        """
        Write the workers' configuration and start them.
        """
        Service.startService(self)
        self.runtime = tempfile.mkdtemp(prefix="netservices-")
        (Path(self.runtime) / "tap.conf").write_text(formatConfig(self.config))
        self._stateWriter = LoopingCall(self.writeParentState)
        self._stateWriter.clock = self._reactor
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
        reactor = reactorName(self._reactor)
        return [
            self._executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "--logger=services.logs.jsonLogObserver",
            *([f"--reactor={reactor}"] if reactor else []),
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
        protocol = _WorkerProtocol(self, index)
        self._protocols[index] = protocol
        transport = self._reactor.spawnProcess(
            protocol,
            self._executable,
            self.command(index),
            env=self._environ,
            childFDs=childFDs,
        )
        self.workers[index] = transport
        protocol.pid = transport.pid
        self._started[index] = self._reactor.seconds()
        self._log.info("worker {index} started (pid {pid})", index=index, pid=transport.pid)

    def _workerEnded(self, protocol: _WorkerProtocol, reason: Failure) -> None:
        index = protocol.index
        self.workers.pop(index, None)
        self._protocols.pop(index, None)
        pid = protocol.pid
        if not self.running:
            self._log.info("worker {index} (pid {pid}) stopped", index=index, pid=pid)
            return
        ranFor = self._reactor.seconds() - self._started[index]
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
        self._restarts[index] = self._reactor.callLater(delay, self.startWorker, index)

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
        kill = self._reactor.callLater(self.killTime, self._killAll)
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
