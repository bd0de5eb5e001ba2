# -*- test-case-name: tests.integration.test_workers -*-
"""
The parent's end of one worker process of C{--workers}: the worker's log
events come as JSON on its standard output (L{services.logs.jsonLogObserver})
and are published in the parent's log with C{worker-N} as their system, at
the level the worker logged them; what it writes to its standard error is
logged line by line; its exit is reported.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, eventFromJSON, globalLogPublisher
from twisted.python.failure import Failure

__all__ = ["WorkerProtocol"]


class WorkerProtocol(ProcessProtocol):
    """
    Relays one worker's log, reports its exit.

    @ivar index: the worker's number.
    @ivar pid: its process id, once it is started.
    @ivar ended: fires (with L{None}) once it has exited.
    """

    _relay = Logger(observer=globalLogPublisher)

    def __init__(self, index: int, exited: Callable[[WorkerProtocol, Failure], None]) -> None:
        """
        @param index: the worker's number.
        @param exited: called with this protocol and the reason when the
            worker has exited, before L{ended} fires.
        """
        self.index = index
        self.system = f"worker-{index}"
        self.pid: int | None = None
        self.ended: Deferred[None] = Deferred()
        self._exited = exited
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
        Log what is left of its output, and tell the supervisor.
        """
        for rest in (self._out, self._err):
            self._line(rest)
        self._exited(self, reason)
        self.ended.callback(None)
