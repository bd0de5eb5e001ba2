# -*- test-case-name: tests.test_twisted_internals -*-
"""
Twisted's epoll reactor: what the nsepoll reactor (L{services.nsepoll._reactor})
reuses of it to run its own poll loop.
"""

from __future__ import annotations

from typing import Any

from services._twisted import PrivateName, isA

__all__ = ["PRIVATE_NAMES"]

_reactor: Any = None


def _epollReactor() -> Any:
    # One reactor (an epoll descriptor and a waker pipe) per process is
    # enough to look its attributes up; it is never run.
    global _reactor
    if _reactor is None:
        from twisted.internet.epollreactor import EPollReactor

        _reactor = EPollReactor()
    return _reactor


PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet.posixbase:_NO_FILEDESC",
        "the reason a selectable whose descriptor is closed is disconnected",
        ("services.nsepoll._reactor",),
        shape=lambda value: value is not None,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._poller",
        "the epoll object the poll loop waits on",
        ("services.nsepoll._reactor",),
        shape=lambda value: callable(getattr(value, "poll", None)),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._selectables",
        "descriptor to selectable, to dispatch the poll's events",
        ("services.nsepoll._reactor",),
        shape=isA(dict),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._doReadOrWrite",
        "Twisted's handling of the events the poll loop does not inline",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._disconnectSelectable",
        "disconnecting a selectable whose read or write failed",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._supportedAddressFamilies",
        "the address families adoptStreamPort/adoptStreamConnection accept",
        ("services.nsepoll._reactor",),
        shape=isA(list, tuple, set, frozenset),
        fastPaths=('nsepoll',),
    ),
)
