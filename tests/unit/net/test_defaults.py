"""
Tests for L{services.net.defaults}: the one fallback to the global reactor.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from services.net.defaults import defaultReactor


class DefaultReactorTests(SynchronousTestCase):
    """
    L{defaultReactor} returns what it is given, else the global reactor.
    """

    def test_given(self) -> None:
        """
        A reactor (or clock) passed in is returned as it is.
        """
        clock = Clock()
        self.assertIs(defaultReactor(clock), clock)

    def test_global(self) -> None:
        """
        With C{None}, the global reactor is returned.
        """
        from twisted.internet import reactor

        self.assertIs(defaultReactor(None), reactor)
        self.assertIs(defaultReactor(), reactor)
