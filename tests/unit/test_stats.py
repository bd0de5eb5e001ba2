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


class SlottedTests(SynchronousTestCase):
    """
    The counters classes are made without the standard decorator, and
    record what C{dataclasses.dataclass(init=False, repr=False, eq=False,
    slots=True)} records for them.
    """

    def test_sameRecord(self) -> None:
        """
        The fields (C{ClassVar}s among them), their class attributes,
        slots, C{__match_args__} and the parameters record are the
        standard decorator's.
        """
        import types

        from services.stats import Counters, _slotted

        def fieldsOf(cls: Any) -> list[tuple[Any, ...]]:
            return [
                (f.name, f.type, f.default, f.kw_only, f._field_type, f.init, f.repr, f.compare)
                for f in cls.__dataclass_fields__.values()
            ]

        def make() -> type[Any]:
            def body(ns: dict[str, Any]) -> None:
                ns["__doc__"] = "Counters."
                ns["__module__"] = "services.stats"  # where ClassVar names typing's
                ns["__annotations__"] = {"a": "int", "b": "int", "gauges": "ClassVar[frozenset[str]]"}
                ns.update(a=0, b=2, gauges=frozenset({"b"}))

            return types.new_class("Sample", (Counters,), {}, body)

        standard = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(make())
        ours = _slotted(make())
        self.assertIsNotNone(ours)
        for made in (standard, ours):
            self.assertEqual(made.__slots__, ("a", "b"))
        self.assertEqual(fieldsOf(standard), fieldsOf(ours))
        self.assertEqual(standard.__match_args__, ours.__match_args__)
        self.assertEqual(repr(standard.__dataclass_params__), repr(ours.__dataclass_params__))
        self.assertEqual(ours.gauges, frozenset({"b"}))
        self.assertEqual(ours.__qualname__, standard.__qualname__)
        for cls in ALL:
            self.assertIn("__slots__", cls.__dict__)
            self.assertNotIn("__dict__", cls.__dict__)

    def test_otherClasses(self) -> None:
        """
        A class with a field that is not an C{int} with an C{int} default
        is left to the standard decorator.
        """
        from services.stats import Counters, _slotted

        class Other(Counters):
            """Other."""

            a: str = "x"

        self.assertIsNone(_slotted(Other))
