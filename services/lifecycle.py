# -*- test-case-name: tests.test_lifecycle -*-
"""
A graceful life: connections drain on shutdown, log files reopen on SIGHUP.

On SIGTERM twistd stops the service tree.  Each stream service first stops
listening (new connections are refused at once), then waits for its open
connections to finish, up to C{[netservices] shutdown_grace} seconds, and
aborts whatever is left.  L{ConnectionTracker} does the waiting.

On SIGHUP, L{reopenLogFiles} reopens twistd's log file and every other
reopenable file registered with it (access logs), so that C{logrotate} can
move the files away without C{copytruncate}.
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Iterable, Protocol as TypingProtocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, globalLogPublisher

from services import logs

__all__ = ["ConnectionTracker", "installHangupHandler", "reopenLogFiles", "stopOnEarlyTerm"]


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

    def drain(self, clock: IReactorTime, grace: float) -> Deferred[None]:
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
        timer: IDelayedCall = clock.callLater(grace, self._abortAll)

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


def _reopenables(publisher: Any) -> Iterable[Any]:
    """
    The files behind the file observers of a log publisher that can be
    reopened (twistd's C{--logfile} is a L{twisted.python.logfile.LogFile}).
    """
    # Twisted private: LogPublisher._observers, the observers twistd added;
    # verified on Twisted 26.10
    for observer in getattr(publisher, "_observers", ()):
        # Twisted private: a wrapper's _observer and FileLogObserver's
        # _outFile, the file it writes; verified on Twisted 26.10
        for candidate in (observer, getattr(observer, "_observer", None)):
            outFile = getattr(candidate, "_outFile", None)
            if callable(getattr(outFile, "reopen", None)):
                yield outFile


def reopenLogFiles(extra: Iterable[Any] = (), publisher: Any = globalLogPublisher) -> int:
    """
    Reopen twistd's log file and the C{extra} files (anything with a
    C{reopen()} method, which may return how many files it reopened).

    @return: how many files were reopened.
    """
    count = 0
    for logFile in [*_reopenables(publisher), *extra]:
        reopened = logFile.reopen()
        count += 1 if reopened is None else reopened
    Logger(observer=logs.observer, namespace="services.lifecycle").info(
        "SIGHUP: reopened {count} log files", count=count
    )
    return count


def installHangupHandler(reactor: Any, reopen: Callable[[], object]) -> Callable[[], None]:
    """
    Call C{reopen} in the reactor thread on every SIGHUP.

    @return: a function that restores the previous handler.
    """
    previous = signal.getsignal(signal.SIGHUP)

    def onHangup(signum: int, frame: object) -> None:
        reactor.callFromThread(reopen)

    signal.signal(signal.SIGHUP, onHangup)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous)

    return restore


def stopOnEarlyTerm(reactor: Any) -> Callable[[], None]:
    """
    Make a SIGTERM that comes before the reactor runs stop the daemon in
    order once it does, instead of killing it at once (leaving its pidfile
    and UNIX socket files behind): the listeners accept connections from
    the moment they are bound, before twistd has daemonized and run the
    reactor, which then installs its own SIGTERM handler in place of this
    one.

    @return: a function that restores the previous handler, unless the
        reactor has replaced this one.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def onTerm(signum: int, frame: object) -> None:
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGTERM, onTerm)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is onTerm:  # not the reactor's yet
            signal.signal(signal.SIGTERM, previous)

    return restore
