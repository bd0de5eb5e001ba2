# -*- test-case-name: tests.integration.test_workers -*-
"""
The counters files of C{--workers}: every worker writes its services'
counters to C{worker-N.json} in its parent's runtime directory once a
second (L{WorkerStatsWriter}); any of them reads them all back
(L{readWorkerStats}) and adds them up (L{totals}) for C{/status} and
C{/metrics}.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from services.net.defaults import defaultReactor

__all__ = ["WorkerStatsWriter", "readWorkerStats", "statsPath", "totals"]


def statsPath(runtime: str | Path, index: int) -> Path:
    """
    Where worker C{index} writes its counters, in the runtime directory
    C{runtime}.
    """
    return Path(runtime) / f"worker-{index}.json"


class WorkerStatsWriter(Service):
    """
    Writes a worker's counters to its file every C{interval} seconds
    (write then rename, so readers never see half a file).
    """

    name = "worker-stats"

    def __init__(
        self,
        path: Path,
        index: int,
        stats: Mapping[str, Any],
        reactor: IReactorTime | None = None,
        interval: float = 1.0,
    ) -> None:
        """
        @param path: the file to write (L{statsPath}).
        @param index: the worker's number, written in the file.
        @param stats: each service's counters (a C{snapshot()} method), by
            service name.
        @param reactor: the clock of the timer.
        @param interval: seconds between two writes.
        """
        self.path = path
        self.index = index
        self.stats = stats
        self._call = LoopingCall(self.write)
        self._call.clock = defaultReactor(reactor)
        self._interval = interval

    def write(self) -> None:
        """
        Write the counters now.
        """
        data = {
            "worker": self.index,
            "pid": os.getpid(),
            "services": {name: s.snapshot() for name, s in self.stats.items()},
        }
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(data))
            temporary.replace(self.path)
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
