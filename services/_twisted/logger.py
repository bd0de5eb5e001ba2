# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
twisted.logger: the observers of a log publisher (L{observersOf}), and the
files behind them (L{reopenableLogFiles}), to reopen them on SIGHUP (log
rotation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from services._twisted import PrivateName, isA

__all__ = ["PRIVATE_NAMES", "observersOf", "reopenableLogFiles"]


def observersOf(publisher: Any) -> list[Any]:
    """
    The observers of a L{twisted.logger.LogPublisher}, in order (none for
    anything else).
    """
    return list(getattr(publisher, "_observers", ()))


def reopenableLogFiles(publisher: Any) -> Iterator[Any]:
    """
    The files behind the file observers of a log publisher that can be
    reopened (twistd's C{--logfile} is a L{twisted.python.logfile.LogFile}),
    directly or behind a filter (twistd filters its log file's observer).
    """
    for observer in observersOf(publisher):
        for candidate in (observer, getattr(observer, "_observer", None)):
            outFile = getattr(candidate, "_outFile", None)
            if callable(getattr(outFile, "reopen", None)):
                yield outFile


def _fileObserver() -> Any:
    import io

    from twisted.logger import FileLogObserver

    return FileLogObserver(io.StringIO(), str)


def _filteringObserver() -> Any:
    from twisted.logger import FilteringLogObserver

    return FilteringLogObserver(_fileObserver(), [])


PRIVATE_NAMES = (
    PrivateName(
        "twisted.logger:globalLogPublisher._observers",
        "the observers of the global log publisher: searched for the log file, and "
        "put behind a filter while the listeners start",
        ("services.daemon.signals", "services.logs"),
        shape=isA(list),
    ),
    PrivateName(
        "twisted.logger:FileLogObserver._outFile",
        "the file a file observer writes to, reopened on SIGHUP",
        ("services.daemon.signals",),
        shape=lambda value: callable(getattr(value, "write", None)),
        instance=_fileObserver,
    ),
    PrivateName(
        "twisted.logger:FilteringLogObserver._observer",
        "the observer a filter passes events to (twistd filters its log file's)",
        ("services.daemon.signals",),
        instance=_filteringObserver,
    ),
)
