"""
Tests for L{services.dataclass}: its frozen dataclasses behave as the
standard library's.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from services.config import SECTIONS, Config, EchoConfig
from services import _collect, dataclass as cheap


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


def _described(cls: type[Any]) -> tuple[Any, ...]:
    """
    What C{dataclasses} records of C{cls}: each field's every attribute,
    the class attributes of the fields, C{__match_args__} and the
    parameters record.
    """
    fields = tuple(
        (f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare,
         f.kw_only, f._field_type, dict(f.metadata))  # type: ignore[attr-defined]
        for f in dataclasses.fields(cls)
    )
    attributes = {f.name: cls.__dict__.get(f.name, "<absent>") for f in dataclasses.fields(cls)}
    return fields, attributes, cls.__match_args__, repr(cls.__dataclass_params__)


class FieldsTests(SynchronousTestCase):
    """
    L{services.dataclass} collects a plain class's fields itself, and
    records exactly what C{dataclasses.dataclass(init=False, repr=False,
    eq=False)} records (the methods are its own); other classes go to
    the standard decorator.
    """

    def _both(self, make: Any) -> tuple[type[Any], type[Any]]:
        standard = dataclasses.dataclass(init=False, repr=False, eq=False)(make())
        ours = cheap(frozen=True)(make())
        return standard, ours

    def test_plain(self) -> None:
        """
        Plain defaults, C{field()} with a default, a factory, options and
        metadata, and required fields.
        """

        def make() -> type[Any]:
            class P:
                """P."""

                a: int
                b: str = "x"
                c: tuple[int, ...] = dataclasses.field(default=(1,), compare=False)
                d: list[int] = dataclasses.field(default_factory=list, repr=False)
                e: int = dataclasses.field(default=3, metadata={"doc": "e"}, hash=False)
                f: int = dataclasses.field(default=0, init=False)

            return P

        standard, ours = self._both(make)
        self.assertEqual(_described(standard), _described(ours))
        self.assertIn("__valueFields__", ours.__dict__)
        self.assertIsNotNone(_collect(make()))

    def test_inherited(self) -> None:
        """
        A subclass has its bases' fields first, a field named again keeps
        its place, and an inherited default counts as the field's default.
        """

        def make() -> type[Any]:
            class Base:
                """Base."""

                a: int = 1
                b: str = "b"

            made = cheap(frozen=True)(Base)

            class Sub(made):  # type: ignore[valid-type, misc]
                """Sub."""

                c: int = 3
                a: int = dataclasses.field(default=5, compare=False)
                b: str

            return Sub

        standard, ours = self._both(make)
        self.assertEqual(_described(standard), _described(ours))
        self.assertEqual(ours().b, "b")
        self.assertIsNotNone(_collect(make()))

    def test_mutableDefault(self) -> None:
        """
        A mutable default is refused with the standard decorator's message.
        """

        def make(default: Any) -> Any:
            def made() -> type[Any]:
                class M:
                    """M."""

                    a: list[int] = default

                return M

            return made

        for default in ([], dataclasses.field(default={})):
            with self.assertRaises(ValueError) as standard:
                dataclasses.dataclass(make(default)())
            with self.assertRaises(ValueError) as ours:
                cheap(frozen=True)(make(default)())
            self.assertEqual(str(standard.exception), str(ours.exception))

    def test_standardClasses(self) -> None:
        """
        A class without a docstring, with a C{ClassVar} or C{InitVar}
        annotation, or with a C{field()} that has no annotation, is made by
        the standard decorator (its docstring, its field kinds, its error).
        """
        class NoDoc:
            a: int = 1

        class WithClassVar:
            """C."""

            a: ClassVar[int] = 1
            b: int = 2

        self.assertTrue(cheap(frozen=True)(NoDoc).__doc__.startswith("NoDoc("))
        made = cheap(frozen=True)(WithClassVar)
        self.assertEqual([f.name for f in dataclasses.fields(made)], ["b"])
        self.assertEqual(made.a, 1)

        class Unannotated:
            """U."""

            a = dataclasses.field(default=1)

        self.assertRaises(TypeError, cheap(frozen=True), Unannotated)
