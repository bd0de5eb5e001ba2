# -*- test-case-name: tests.unit.net.test_lifecycle -*-
"""
Connections drain on shutdown.

On SIGTERM twistd stops the service tree.  Each stream service first stops
listening (new connections are refused at once), then waits for its open
connections to finish, up to C{[netservices] shutdown_grace} seconds, and
aborts whatever is left.  L{ConnectionTracker} does the waiting.  (The
daemon's signal handling is L{services.daemon.signals}.)
"""

from __future__ import annotations

from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from services import logs

__all__ = ["ConnectionTracker"]


class _Abortable(TypingProtocol):
    transport: Any


class ConnectionTracker:
    """
    Keeps the open connections of a service, so that shutdown can wait for
    them to finish.

    @ivar connections: the protocols connected now, oldest first (a
        C{dict} of protocol to L{None}: insertion-ordered, so that C{/status}
        can list the newest without walking them all).
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections: dict[_Abortable, None] = {}
        self._waiting: list[Deferred[None]] = []

    def add(self, protocol: _Abortable) -> None:
        """
        A connection was made.
        """
        self.connections[protocol] = None

    def remove(self, protocol: _Abortable) -> None:
        """
        A connection was lost; wake the drain when it was the last one.
        """
        self.connections.pop(protocol, None)
        if not self.connections and self._waiting:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def drain(self, reactor: IReactorTime, grace: float) -> Deferred[None]:
        """
        Wait until every connection has closed, or C{grace} seconds have
        passed; then abort the connections that are left.

        @return: fires when no connection is left.
        """
        if not self.connections:
            return succeed(None)
        self._log.info(
            "{service}: waiting up to {grace} s for {count} open connections to finish",
            service=self.name,
            grace=grace,
            count=len(self.connections),
        )
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        timer: IDelayedCall = reactor.callLater(grace, self._abortAll)

        def cancelTimer(result: None) -> None:
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(cancelTimer)

    def _abortAll(self) -> None:
        left = list(self.connections)
        self._log.warn(
            "{service}: grace period over, aborting {count} connections",
            service=self.name,
            count=len(left),
        )
        for protocol in left:
            protocol.transport.abortConnection()
