# -*- test-case-name: tests.test_logs -*-
"""
One filter for netservices' own log events.

twistd's observers write every event they are given, debug included.  Our
loggers publish through L{observer}, which drops events below the level set
from C{[log] level} and hands the rest to Twisted's global publisher, so
C{twistd --logger}, JSON observers and C{capturedLogs()} all see them with
their format fields intact.

Use it as::

    from twisted.logger import Logger
    from services import logs

    class Thing:
        _log = Logger(observer=logs.observer)
"""

from __future__ import annotations

import sys

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    jsonFileLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

__all__ = ["observer", "setLevel", "getLevel", "isEnabledFor", "jsonLogObserver"]

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)

#: The observer every netservices logger publishes to.
observer = FilteringLogObserver(globalLogPublisher, [_predicate])


def setLevel(level: LogLevel | str) -> None:
    """
    Set the lowest level of netservices events that reach the log.
    """
    if isinstance(level, str):
        level = LogLevel.levelWithName(level)
    _predicate.setLogLevelForNamespace("", level)


def getLevel() -> LogLevel:
    """
    The lowest level of netservices events that currently reach the log.
    """
    level: LogLevel = _predicate.logLevelForNamespace("")
    return level


def isEnabledFor(level: LogLevel) -> bool:
    """
    Whether events at C{level} reach the log: lets a hot path skip building
    an event nobody will see.
    """
    return level >= getLevel()


def jsonLogObserver() -> ILogObserver:
    """
    A log observer factory for C{twistd --logger}: one JSON object per
    line on standard output, with every format field kept as a value::

        twistd -n --logger services.logs.jsonLogObserver netservices
    """
    return jsonFileLogObserver(sys.stdout, recordSeparator="")
