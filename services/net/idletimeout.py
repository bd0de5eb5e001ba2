# -*- test-case-name: tests.unit.net.test_idletimeout -*-
"""
One idle timeout for all the connections of a service.

L{twisted.protocols.policies.TimeoutMixin} gives every connection a
L{DelayedCall} of its own (with its bound method, its argument dictionary,
its times), reset on every read: about 400 bytes per idle connection and
three Python calls per read.  Every connection of a service has the same
timeout, so their deadlines come in the order of their last activity:
L{IdleTimeouts} keeps them in one insertion-ordered C{dict} (a connection
moves to the end when it is active) and one timer, set for the earliest
deadline.  When the timer fires, the connections at the head whose
deadline has passed are expired, and the timer is set again for the next
head.  A read costs one C{dict} deletion, one insertion and one clock
reading; an idle connection costs one C{dict} entry and its deadline.

The semantics are those of C{TimeoutMixin}: a connection is expired once
C{timeout} seconds have passed without activity, by the service's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["IdleTimeouts", "timeoutsFor"]

# A deadline this close to the clock counts as reached: the timer is set for
# "deadline - now" seconds from now, which can round to a hair before it.
_SLACK = 1e-6


class IdleTimeouts:
    """
    Calls C{expired(connection)} for each connection of L{add} that saw no
    L{touch} for C{timeout} seconds (then forgets it).

    A connection's own data path may do what L{touch} does inline (one
    call less per read): delete the connection from C{deadlines} and insert
    it again with C{seconds() + timeout}.

    @ivar timeout: the seconds of silence allowed.
    @ivar deadlines: connection to the time it expires, earliest first.
    @ivar seconds: the clock (the reactor's C{seconds}).
    """

    def __init__(
        self, reactor: IReactorTime, timeout: float, expired: Callable[[Any], None]
    ) -> None:
        self.timeout = timeout
        self.deadlines: dict[Any, float] = {}
        self._reactor = reactor
        self.seconds = reactor.seconds
        self._expired = expired
        self._call: IDelayedCall | None = None

    def add(self, connection: Any) -> None:
        """
        Start timing C{connection}.
        """
        self.deadlines[connection] = self.seconds() + self.timeout
        if self._call is None:
            self._call = self._reactor.callLater(self.timeout, self._fire)

    def touch(self, connection: Any) -> None:
        """
        C{connection} was active: its timeout starts again.
        """
        deadlines = self.deadlines
        del deadlines[connection]
        deadlines[connection] = self.seconds() + self.timeout

    def remove(self, connection: Any) -> None:
        """
        Stop timing C{connection}; the timer stops with the last one.
        """
        deadlines = self.deadlines
        if deadlines.pop(connection, None) is not None and not deadlines:
            call, self._call = self._call, None
            if call is not None and call.active():
                call.cancel()

    def _fire(self) -> None:
        self._call = None
        deadlines = self.deadlines
        now = self.seconds() + _SLACK
        due = []
        for connection, deadline in deadlines.items():
            if deadline > now:
                break
            due.append(connection)
        for connection in due:
            if deadlines.pop(connection, None) is not None:
                self._expired(connection)
        if deadlines and self._call is None:
            head = next(iter(deadlines.values()))
            self._call = self._reactor.callLater(max(0.0, head - self.seconds()), self._fire)


def timeoutsFor(
    held: IdleTimeouts | None,
    reactor: IReactorTime,
    timeout: float | None,
    expired: Callable[[Any], None],
) -> IdleTimeouts | None:
    """
    The timer a factory's connections share for C{timeout}: C{held} (the
    one the factory made before) while its timeout is still C{timeout}, a
    new one if C{timeout} was changed, L{None} when there is no timeout.
    """
    if not timeout:
        return None
    if held is None or held.timeout != timeout:
        return IdleTimeouts(reactor, timeout, expired)
    return held
