# -*- test-case-name: tests.test_twisted_internals -*-
"""
twisted.logger: finding the files behind the global log publisher's
observers, to reopen them on SIGUSR1 (log rotation).
"""

from __future__ import annotations

from typing import Any

from services._twisted import PrivateName, isA

__all__ = ["PRIVATE_NAMES"]


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
        ("services.net.drain", "services.logs"),
        shape=isA(list),
    ),
    PrivateName(
        "twisted.logger:FileLogObserver._outFile",
        "the file a file observer writes to, reopened on SIGUSR1",
        ("services.net.drain",),
        shape=lambda value: callable(getattr(value, "write", None)),
        instance=_fileObserver,
    ),
    PrivateName(
        "twisted.logger:FilteringLogObserver._observer",
        "the observer a filter passes events to (twistd filters its log file's)",
        ("services.net.drain",),
        instance=_filteringObserver,
    ),
)
