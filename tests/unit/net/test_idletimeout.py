# -*- test-case-name: tests.unit.net.test_idletimeout -*-
"""
Tests for L{services.net.idletimeout}: one timer for the idle timeouts of
many connections.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from services.net.idletimeout import IdleTimeouts, timeoutsFor


class IdleTimeoutsTests(SynchronousTestCase):
    """
    L{IdleTimeouts} expires each connection C{timeout} seconds after it was
    last active, with one timer.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.expired: list[str] = []
        self.timeouts = IdleTimeouts(self.clock, 10, self.expired.append)

    def test_expiresAfterTimeout(self) -> None:
        """
        A connection added and never touched expires at its timeout, not
        before, and is forgotten.
        """
        self.timeouts.add("a")
        self.clock.advance(9.9)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.expired, ["a"])
        self.assertEqual(self.timeouts.deadlines, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_touchRestarts(self) -> None:
        """
        Each touch gives the connection C{timeout} more seconds.
        """
        self.timeouts.add("a")
        for _ in range(5):
            self.clock.advance(8)
            self.timeouts.touch("a")
        self.clock.advance(9.9)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.2)
        self.assertEqual(self.expired, ["a"])

    def test_oneTimerForAll(self) -> None:
        """
        Many connections share one timer, which fires for the earliest
        deadline and expires exactly the connections whose deadline passed.
        """
        self.timeouts.add("a")
        self.clock.advance(3)
        self.timeouts.add("b")
        self.clock.advance(3)
        self.timeouts.add("c")
        self.timeouts.touch("a")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(4)
        self.assertEqual(self.expired, [])
        self.clock.advance(3)
        self.assertEqual(self.expired, ["b"])
        self.clock.advance(3)
        self.assertEqual(self.expired, ["b", "c", "a"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_removeLastStopsTimer(self) -> None:
        """
        Removing the last connection cancels the timer; removing one that
        is not timed does nothing.
        """
        self.timeouts.add("a")
        self.timeouts.add("b")
        self.timeouts.remove("a")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.timeouts.remove("b")
        self.timeouts.remove("b")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(20)
        self.assertEqual(self.expired, [])

    def test_expiryMayRemoveOthers(self) -> None:
        """
        A connection whose expiry closes another (which then removes
        itself) leaves the timer consistent.
        """
        timeouts = IdleTimeouts(self.clock, 10, lambda c: (self.expired.append(c),
                                                            timeouts.remove("b")))
        timeouts.add("a")
        timeouts.add("b")
        self.clock.advance(10)
        self.assertEqual(self.expired, ["a"])
        self.assertEqual(timeouts.deadlines, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])
        timeouts.add("c")
        self.clock.advance(10)
        self.assertEqual(self.expired, ["a", "c"])


class TimeoutsForTests(SynchronousTestCase):
    """
    L{timeoutsFor} keeps a factory's timer while its timeout stays the same.
    """

    def test_keptMadeAgainOrNone(self) -> None:
        """
        The timer held is returned while the timeout is unchanged, a new one
        for another timeout, and L{None} for no timeout.
        """
        clock = Clock()
        first = timeoutsFor(None, clock, 5.0, lambda c: None)
        assert first is not None
        self.assertEqual(first.timeout, 5.0)
        self.assertIs(timeoutsFor(first, clock, 5.0, lambda c: None), first)
        other = timeoutsFor(first, clock, 7.0, lambda c: None)
        assert other is not None
        self.assertIsNot(other, first)
        self.assertEqual(other.timeout, 7.0)
        self.assertIsNone(timeoutsFor(first, clock, None, lambda c: None))
        self.assertIsNone(timeoutsFor(first, clock, 0, lambda c: None))
