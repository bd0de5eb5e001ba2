# -*- test-case-name: tests.unit.net.test_lifecycle -*-
"""
The daemon's signals: log files reopen on SIGHUP, and a SIGTERM that comes
early, or twice, still stops the daemon once and in order.

On SIGHUP, L{reopenLogFiles} reopens twistd's log file and every other
reopenable file registered with it (access logs), so that C{logrotate} can
move the files away without C{copytruncate}.  (The drain of connections on
SIGTERM is L{services.net.drain}.)
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from typing import Any

from twisted.logger import Logger, globalLogPublisher

from services import logs
from services._twisted.logger import reopenableLogFiles

__all__ = ["installHangupHandler", "reopenLogFiles", "stopOnEarlyTerm"]


def reopenLogFiles(extra: Iterable[Any] = (), publisher: Any = globalLogPublisher) -> int:
    """
    Reopen twistd's log file and the C{extra} files (anything with a
    C{reopen()} method, which may return how many files it reopened).

    @return: how many files were reopened.
    """
    count = 0
    for logFile in [*reopenableLogFiles(publisher), *extra]:
        reopened = logFile.reopen()
        count += 1 if reopened is None else reopened
    Logger(observer=logs.observer, namespace=__name__).info(
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

    Stop only once: a second SIGTERM (or SIGINT), before or after the
    reactor runs, while the daemon is already stopping is logged and
    otherwise ignored, where the reactor's own handler would call
    C{reactor.stop} again and log a C{ReactorNotRunning} traceback.

    @return: a function that restores the previous handler, unless the
        reactor has replaced this one.
    """
    return _StopOnce(reactor).install()


class _StopOnce:
    """
    The SIGTERM and SIGINT handlers of a daemon that stops once.

    @ivar stopping: whether the reactor was asked to stop (by a signal or
        by anything else: its shutdown has begun).
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self.stopping = False

    def install(self) -> Callable[[], None]:
        """
        Handle SIGTERM now; wrap the reactor's handlers once it runs.

        @return: see L{stopOnEarlyTerm}.
        """
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._early)
        # After the "during startup" phase, in which the reactor installs
        # its own handlers.
        self._reactor.callWhenRunning(self._wrapReactorHandlers)
        self._reactor.addSystemEventTrigger("before", "shutdown", self._shuttingDown)

        def restore() -> None:
            if signal.getsignal(signal.SIGTERM) == self._early:  # not the reactor's yet
                signal.signal(signal.SIGTERM, previous)

        return restore

    def _shuttingDown(self) -> None:
        self.stopping = True

    def _again(self, signum: int) -> bool:
        if not self.stopping:
            self.stopping = True
            return False
        self._log.info(
            "Received {signal}: already shutting down",
            signal=signal.Signals(signum).name,
        )
        return True

    def _early(self, signum: int, frame: object) -> None:
        if not self._again(signum):
            self._reactor.callFromThread(self._reactor.stop)

    def _wrapReactorHandlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(signum)
            if callable(handler) and handler != self._early:
                signal.signal(signum, self._wrap(handler))

    def _wrap(self, handler: Callable[[int, Any], object]) -> Callable[[int, Any], None]:
        def onSignal(signum: int, frame: Any) -> None:
            if not self._again(signum):
                handler(signum, frame)  # the reactor's: it logs, and sets the exit status

        return onSignal
