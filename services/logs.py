# -*- test-case-name: tests.unit.test_logs -*-
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

import re
import sys
from collections.abc import Callable
from typing import Any, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    PredicateResult,
    globalLogPublisher,
    jsonFileLogObserver,
)

from services._twisted.logger import observersOf

__all__ = [
    "getLevel",
    "isEnabledFor",
    "isPortChatter",
    "jsonLogObserver",
    "observer",
    "quietPortChatter",
    "setLevel",
]

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


#: What Twisted's ports log, unconditionally, as they start and close.
_PORT_CHATTER = re.compile(r".+ starting on (\d+|b?'.*')|\((TCP|UNIX|UDP) Port \S+ Closed\)")


def isPortChatter(event: dict[str, Any]) -> bool:
    """
    Whether C{event} is one of the lines Twisted's listening ports log as
    they start and close (C{EchoFactory starting on 8007},
    C{(UDP Port 8009 Closed)}): netservices logs each listener once, in its
    own words, with the endpoint as configured.
    """
    return event.get("log_namespace") == "log_legacy" and bool(
        _PORT_CHATTER.fullmatch(str(event.get("log_text", "")))
    )


def _dropPortChatter(event: dict[str, Any]) -> PredicateResult:
    return PredicateResult.no if isPortChatter(event) else PredicateResult.maybe


def quietPortChatter(publisher: Any = globalLogPublisher) -> Callable[[], None]:
    """
    Keep L{isPortChatter} events from every observer of C{publisher} (the
    log file, or the buffer of events logged before logging began) until
    the returned function is called.
    """
    observers = observersOf(publisher)  # the ones to put a filter in front of
    predicate = cast(ILogFilterPredicate, _dropPortChatter)  # a callable is one
    filters = [FilteringLogObserver(o, [predicate]) for o in observers]
    for original, filtering in zip(observers, filters):
        publisher.removeObserver(original)
        publisher.addObserver(filtering)

    def restore() -> None:
        present = observersOf(publisher)
        for original, filtering in zip(observers, filters):
            if filtering in present:  # else its owner removed it meanwhile
                publisher.removeObserver(filtering)
                publisher.addObserver(original)

    return restore
