# -*- test-case-name: tests.integration.test_workers -*-
"""
The worker's side of C{--workers}: what its parent tells it
(L{WorkerSpec}, the value of C{--worker}), the service tree of a worker
process (L{workerProcess}: its services, the writer of its counters and the
watch on its parent), and what C{/status} shows about the workers
(L{workersDocument}).

A worker whose parent dies (even with SIGKILL) stops by itself: it watches
the pipe the parent holds open as its standard input.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IReactorCore, IReactorFDSet, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs
from services.daemon.workerstats import WorkerStatsWriter, readWorkerStats, statsPath, totals
from services.net.defaults import defaultReactor

__all__ = ["WorkerSpec", "watchParent", "workerProcess", "workersDocument"]


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
        return statsPath(self.runtime, self.index)


@implementer(IReadDescriptor)
class _ParentWatcher:
    """
    Reads a worker's standard input, which the parent holds open: end of
    file means the parent is gone.
    """

    def __init__(self, reactor: IReactorFDSet, fileno: int, parentGone: Callable[[], None]) -> None:
        self.reactor = reactor
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
            self.reactor.removeReader(self)
            self._lost()

    def connectionLost(self, reason: Failure) -> None:
        # The reactor reports a hang-up without a read (epoll's EPOLLHUP).
        self._lost()

    def _lost(self) -> None:
        callback, self._parentGone = self._parentGone, lambda: None
        callback()


class _WatchParent(Service):
    """
    Stops the worker when its parent goes away, as SIGTERM does.

    The reactor's SIGTERM handler only asks the reactor to stop: the drain
    of open connections, the closing of listeners and the last log lines
    all hang on the reactor's "before shutdown" event (twistd stops the
    service tree then), which C{reactor.stop} fires whoever calls it.  The
    one difference to take care of is the one L{services.daemon.signals}
    takes care of for signals: the worker may already be stopping (its
    parent sent SIGTERM, then died), and a second C{reactor.stop} would
    raise L{ReactorNotRunning} out of the read, logged as an unhandled
    error.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, reactor: Any, fileno: int) -> None:
        self._watcher = _ParentWatcher(reactor, fileno, self._gone)
        self.reactor = reactor

    def _gone(self) -> None:
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            self._log.info("the netservices parent is gone: already shutting down")
        else:
            self._log.warn("the netservices parent is gone: stopping")

    def startService(self) -> None:
        Service.startService(self)
        self.reactor.addReader(self._watcher)

    def stopService(self) -> None:
        Service.stopService(self)
        self.reactor.removeReader(self._watcher)


def watchParent(reactor: IReactorCore | None = None, fileno: int = 0) -> Service:
    """
    A service that stops the reactor when the parent process goes away
    (end of file on C{fileno}, the pipe the parent holds open).

    @param reactor: the reactor to watch with and stop (an
        L{IReactorFDSet} too).
    """
    service = _WatchParent(defaultReactor(reactor), fileno)
    service.setName("parent-watch")
    return service


def workerProcess(root: Any, spec: WorkerSpec, reactor: Any = None) -> MultiService:
    """
    The service tree of a worker process: C{root} (the services), the writer
    of its counters and the watch on its parent.  These two stay outside
    C{root}, so that C{/status}, C{/health} and C{/metrics} report on
    services only.

    @param root: the worker's services (a
        L{services.daemon.tree.NetservicesService}, with its C{stats}).
    @param reactor: the reactor to time the writes with, to watch the
        parent with and to stop when it is gone.
    """
    reactor = defaultReactor(reactor)
    process = MultiService()
    root.setServiceParent(process)
    WorkerStatsWriter(spec.statsPath, spec.index, root.stats, reactor).setServiceParent(process)
    watchParent(reactor).setServiceParent(process)
    return process


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
