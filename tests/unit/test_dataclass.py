"""
Tests for L{services.dataclass}: its frozen dataclasses behave as the
standard library's.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from services.config import SECTIONS, Config, EchoConfig
from services import dataclass as cheap


def _pair(name: str) -> tuple[type[Any], type[Any]]:
    """
    The same class made by the standard library's decorator and by ours.
    """

    def body(ns: dict[str, Any]) -> None:
        ns["__annotations__"] = {"a": "int", "b": "tuple[int, ...]", "c": "str", "d": "list[int]"}
        ns["b"] = (1, 2)
        ns["c"] = dataclasses.field(default="x", compare=False)
        ns["d"] = dataclasses.field(default_factory=list, repr=False, hash=False)

    import types

    standard = dataclasses.dataclass(frozen=True)(types.new_class(name, (), {}, body))
    ours = cheap(frozen=True)(types.new_class(name, (), {}, body))
    return standard, ours


def _error(call: Any) -> tuple[type[BaseException], str]:
    try:
        call()
    except Exception as e:
        return type(e), str(e).split(".", 1)[-1]
    raise AssertionError("no exception")


class SameAsStandardTests(SynchronousTestCase):
    """
    A class made by L{services.dataclass} constructs, prints,
    compares, hashes, refuses assignment and answers C{dataclasses}'
    functions as the same class made by C{dataclasses.dataclass(frozen=True)}.
    """

    def test_construction(self) -> None:
        """
        Positional and keyword arguments, defaults and default factories.
        """
        standard, ours = _pair("V")
        for args, kwargs in [((1,), {}), ((1, (3,)), {"c": "y"}), ((), {"a": 2, "d": [4]})]:
            s, o = standard(*args, **kwargs), ours(*args, **kwargs)
            self.assertEqual(vars(s), vars(o))
            self.assertEqual(list(vars(s)), list(vars(o)))

    def test_constructionErrors(self) -> None:
        """
        Missing, unexpected, repeated and surplus arguments raise the same
        L{TypeError}.
        """
        standard, ours = _pair("V")
        calls = [((), {}), ((1,), {"e": 1}), ((1,), {"a": 1}), ((1, 2, 3, 4, 5), {})]
        calls.append(((), {"b": ()}))
        for args, kwargs in calls:
            self.assertEqual(
                _error(lambda: standard(*args, **kwargs)), _error(lambda: ours(*args, **kwargs))
            )

    def test_reprEqualityHash(self) -> None:
        """
        The repr shows the same fields; equality and hash use the compared
        fields; another class is never equal.
        """
        standard, ours = _pair("V")
        s, o = standard(1, c="q"), ours(1, c="q")
        self.assertEqual(repr(s), repr(o))
        self.assertEqual(ours(1, c="q"), ours(1, c="other"))
        self.assertNotEqual(ours(1), ours(2))
        self.assertNotEqual(o, s)
        self.assertEqual(hash(o), hash(standard(1, d=[9])))
        self.assertEqual(hash(ours(1, d=[5])), hash(ours(1)))

    def test_frozen(self) -> None:
        """
        Assigning or deleting any attribute raises C{FrozenInstanceError}
        with the same message.
        """
        standard, ours = _pair("V")
        s, o = standard(1), ours(1)
        for name in ("a", "z"):
            self.assertEqual(
                _error(lambda: setattr(s, name, 0)), _error(lambda: setattr(o, name, 0))
            )
            self.assertEqual(_error(lambda: delattr(s, name)), _error(lambda: delattr(o, name)))

    def test_dataclassFunctions(self) -> None:
        """
        C{fields}, C{replace}, C{asdict}, C{astuple}, copying, pickling and
        C{__match_args__} work as on the standard class.
        """
        standard, ours = _pair("V")
        s, o = standard(1), ours(1)
        self.assertTrue(dataclasses.is_dataclass(o))
        self.assertEqual(
            [f.name for f in dataclasses.fields(s)], [f.name for f in dataclasses.fields(o)]
        )
        self.assertEqual(dataclasses.replace(o, a=5), ours(5))
        self.assertEqual(dataclasses.asdict(s), dataclasses.asdict(o))
        self.assertEqual(dataclasses.astuple(s), dataclasses.astuple(o))
        self.assertEqual(copy.deepcopy(o), o)
        self.assertEqual(pickle.loads(pickle.dumps(EchoConfig(backlog=7))), EchoConfig(backlog=7))
        self.assertEqual(standard.__match_args__, ours.__match_args__)

    def test_otherUsesAreStandard(self) -> None:
        """
        A frozen class that writes one of the generated methods itself, a
        mutable dataclass and any other option are the standard
        decorator's.
        """

        class Own:
            a: int = 1

            def __repr__(self) -> str:
                return "own"

        class Mutable:
            a: int = 1

        class Slotted:
            a: int = 1

        own = cheap(frozen=True)(Own)
        self.assertEqual(repr(own()), "own")
        self.assertNotIn("__valueFields__", own.__dict__)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, own(), "a", 2)
        mutable = cheap(Mutable)
        instance = mutable()
        instance.a = 3
        self.assertEqual(instance, mutable(3))
        slotted = cheap(frozen=True, slots=True)(Slotted)
        self.assertEqual(slotted.__slots__, ("a",))

    def test_requiredFields(self) -> None:
        """
        Fields without defaults are required, and the messages for several
        missing ones, or surplus positional arguments, are Python's.
        """
        import types

        def body(ns: dict[str, Any]) -> None:
            ns["__annotations__"] = {"a": "int", "b": "int", "c": "int"}

        standard = dataclasses.dataclass(frozen=True)(types.new_class("R", (), {}, body))
        ours = cheap(frozen=True)(types.new_class("R", (), {}, body))
        for args in [(), (1,), (1, 2), (1, 2, 3, 4)]:
            self.assertEqual(_error(lambda: standard(*args)), _error(lambda: ours(*args)))
        self.assertEqual(vars(standard(1, 2, 3)), vars(ours(1, 2, 3)))

    def test_sections(self) -> None:
        """
        Every section, and L{Config}, is made this way and keeps its
        defaults.
        """
        for cls in (*SECTIONS.values(), Config):
            self.assertIn("__valueFields__", cls.__dict__)
            self.assertEqual(cls(), cls())
            self.assertEqual(dataclasses.replace(cls()), cls())
