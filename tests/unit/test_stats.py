"""
Tests for L{services.stats}: the counters classes behave as the
C{@dataclass(slots=True)} classes they are declared as.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from services.stats import (
    ConnectionStats,
    Counters,
    DatagramAnswerStats,
    DiscoveryStats,
    MDNSStats,
    UdpEchoStats,
    WebStats,
)

from tests.support import ROOT

ALL = (ConnectionStats, WebStats, DiscoveryStats, MDNSStats, UdpEchoStats, DatagramAnswerStats)


def _standard(cls: type[Counters]) -> Any:
    """
    The same fields, made by the standard library's decorator.
    """
    fields = [(f.name, int, dataclasses.field(default=f.default)) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, slots=True)


def _error(call: Any) -> tuple[type[BaseException], str]:
    try:
        call()
    except Exception as e:
        return type(e), str(e).split(".", 1)[-1]
    raise AssertionError("no exception")


class CountersTests(SynchronousTestCase):
    """
    Construction, repr, equality, hashing, slots and snapshots.
    """

    def test_sameAsDataclass(self) -> None:
        """
        Each class constructs, prints and compares as the standard
        C{@dataclass(slots=True)} of its fields, and is unhashable.
        """
        for cls in ALL:
            standard = _standard(cls)
            names = [f.name for f in dataclasses.fields(cls)]
            self.assertEqual(cls.__slots__, tuple(names))
            ours, theirs = cls(1, **{names[2]: 5}), standard(1, **{names[2]: 5})
            self.assertEqual(repr(ours), repr(theirs))
            self.assertEqual(ours, cls(1, **{names[2]: 5}))
            self.assertNotEqual(ours, cls())
            self.assertNotEqual(ours, theirs)
            self.assertRaises(TypeError, hash, ours)
            self.assertRaises(AttributeError, setattr, ours, "unknown", 1)
            self.assertEqual(ours.snapshot(), dataclasses.asdict(theirs))
            for args, kwargs in [((), {"nope": 1}), ((1,), {names[0]: 1}), ((0,) * 40, {})]:
                self.assertEqual(
                    _error(lambda: cls(*args, **kwargs)), _error(lambda: standard(*args, **kwargs))
                )

    def test_counting(self) -> None:
        """
        Counters start at zero and are plain attributes.
        """
        stats = ConnectionStats()
        stats.accepted += 2
        self.assertEqual(stats.snapshot()["accepted"], 2)
        self.assertEqual(ConnectionStats.gauges, frozenset({"current"}))
        self.assertEqual(DiscoveryStats.gauges, frozenset({"peers"}))


class PlaceTests(SynchronousTestCase):
    """
    Every service's counters are declared in L{services.stats}, the one
    module C{/status} and C{/metrics} read them from.
    """

    def test_countersOnlyInStats(self) -> None:
        """
        No module of the package but C{services/stats.py} declares a
        subclass of L{Counters}; the classes it declares are those tested
        here.
        """
        elsewhere = []
        declared = set()
        for path in sorted((ROOT / "services").rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Name) and base.id == "Counters" for base in node.bases
                ):
                    relative = path.relative_to(ROOT).as_posix()
                    if relative == "services/stats.py":
                        declared.add(node.name)
                    else:
                        elsewhere.append(f"{relative}: {node.name}")
        self.assertEqual(elsewhere, [])
        self.assertEqual(declared, {cls.__name__ for cls in ALL})
