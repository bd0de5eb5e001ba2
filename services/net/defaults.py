# -*- test-case-name: tests.unit.net.test_defaults -*-
"""
The one place that falls back to the global reactor.

Every protocol, service and client of netservices takes an optional
C{reactor} argument (tests pass a L{twisted.internet.testing.MemoryReactorClock}
or a L{twisted.internet.task.Clock}); when it is left out,
L{defaultReactor} imports the global one then, not at import time, so that
importing a module of ours never installs a reactor (C{twistd} and
C{nsepoll.install()} must be able to choose one first).  This is what
C{twisted.application.strports} does with its C{_getReactor()}.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["defaultReactor"]

_R = TypeVar("_R")


def defaultReactor(reactor: _R | None = None) -> _R:
    """
    C{reactor}, or the global reactor when it is C{None}.

    @param reactor: the reactor (or clock) a caller passed, if any.
    @return: the reactor to use.
    """
    if reactor is not None:
        return reactor
    from twisted.internet import reactor as globalReactor

    found: Any = globalReactor
    return found
