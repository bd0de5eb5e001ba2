# -*- test-case-name: tests.unit.test_dataclass -*-
"""
netservices: Twisted network services (echo, discovery, web) and clients.

Every protocol is importable on its own; see the README for examples.

L{dataclass} is C{dataclasses.dataclass} for the package's value classes:
C{@dataclass(frozen=True)} writes the source of six methods for each class
(C{__init__}, C{__repr__}, C{__eq__}, C{__hash__}, C{__setattr__},
C{__delattr__}) and compiles it when the module is imported, which was
the largest part of the daemon's own start-up (tap.conf's sixteen
sections, the services' settings).  Here those methods are written once
and read each class's fields, which L{_collect} records as the standard
decorator would (without its per-annotation checks): the classes stay
dataclasses to C{fields()}, C{replace()} and C{asdict()}, and construct, compare, hash, print and refuse assignment as
the generated methods do.  It lives here, at the bottom of the package,
so that every layer may use it.
"""

from __future__ import annotations

import dataclasses
from reprlib import recursive_repr
from typing import TYPE_CHECKING, Any, TypeVar

__version__ = "0.1.0"

__all__ = ["__version__", "dataclass"]

_T = TypeVar("_T")

_MISSING = dataclasses.MISSING



def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    """
    Set each field from the arguments (in field order, by position or by
    name) or its default, as the generated C{__init__} does, then call
    C{__post_init__} if the class has one.
    """
    cls = type(self)
    table = cls.__valueFields__
    if len(args) > len(table):
        required = cls.__valueRequired__
        takes = f"{len(table) + 1}"
        if required < len(table):
            takes = f"from {required + 1} to {takes}"
        raise TypeError(
            f"{cls.__qualname__}.__init__() takes {takes} positional arguments "
            f"but {len(args) + 1} were given"
        )
    if kwargs:
        positions = cls.__valuePositions__
        for name in kwargs:
            index = positions.get(name)
            if index is None:
                raise TypeError(
                    f"{cls.__qualname__}.__init__() got an unexpected keyword argument {name!r}"
                )
            if index < len(args):
                raise TypeError(
                    f"{cls.__qualname__}.__init__() got multiple values for argument {name!r}"
                )
    missing = [
        name
        for name, default, factory in table[len(args) : cls.__valueRequired__]
        if name not in kwargs
    ]
    if missing:
        raise TypeError(f"{cls.__qualname__}.__init__() missing {_listed(missing)}")
    setter = object.__setattr__
    for index, (name, default, factory) in enumerate(table):
        if index < len(args):
            value = args[index]
        elif name in kwargs:
            value = kwargs[name]
        elif default is not _MISSING:
            value = default
        else:
            value = factory()
        setter(self, name, value)
    postInit = getattr(self, "__post_init__", None)
    if postInit is not None:
        postInit()


def _listed(names: list[str]) -> str:
    """
    Python's own words for missing arguments: C{1 required positional
    argument: 'a'}, C{2 required positional arguments: 'a' and 'b'}...
    """
    quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return f"1 required positional argument: {quoted[0]}"
    if len(quoted) == 2:
        joined = " and ".join(quoted)
    else:
        joined = ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    return f"{len(quoted)} required positional arguments: {joined}"


@recursive_repr()
def _repr(self: Any) -> str:
    """
    C{Name(field=value, ...)} over the fields shown in the repr.
    """
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__valueRepr__)
    return f"{type(self).__qualname__}({shown})"


def _key(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in type(self).__valueCompared__)


def _eq(self: Any, other: object) -> Any:
    """
    Equal to an instance of the same class whose compared fields are equal.
    """
    if other.__class__ is self.__class__:
        return _key(self) == _key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    """
    The hash of the compared fields' values.
    """
    return hash(tuple(getattr(self, name) for name in type(self).__valueHashed__))


def _setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


#: The methods L{_frozen} writes: a class that has one of its own is left
#: to the standard decorator.
_WRITTEN = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")


#: Words in an annotation that the standard decorator treats apart
#: (class variables, init-only variables, keyword-only fields):
#: L{_collect} leaves such a class to it.
_SPECIAL = ("ClassVar", "InitVar", "KW_ONLY", "dataclasses")


def _collect(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...] | None:
    """
    Do for C{cls} what C{dataclasses.dataclass(init=False, repr=False,
    eq=False)} does, for the plain classes of this package, and return
    its fields; C{None} (and nothing done) for a class that needs more.

    The standard decorator checks each field's annotation, a string
    under C{from __future__ import annotations}, with regular
    expressions for C{ClassVar} and C{InitVar}, and walks the whole
    MRO: about half of what the daemon's own modules cost to import.
    Fields come in the decorator's order (the bases' first, a field named
    again keeping its place).  A class with a metaclass other than
    C{type} (anywhere in its MRO), without a docstring (the decorator
    would write one from the signature), with an annotation that is not
    a string or names any of L{_SPECIAL}, or with a C{field()} that has
    no annotation (the decorator's error) goes to the standard decorator.
    """
    if not cls.__dict__.get("__doc__") or any(type(base) is not type for base in cls.__mro__):
        return None
    annotations = cls.__dict__.get("__annotations__", {})
    for annotation in annotations.values():
        if not isinstance(annotation, str) or any(word in annotation for word in _SPECIAL):
            return None
    namespace = cls.__dict__
    for name, value in namespace.items():
        if isinstance(value, dataclasses.Field) and name not in annotations:
            return None  # the decorator's TypeError
    inherited: dict[str, dataclasses.Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        inherited.update(getattr(base, "__dataclass_fields__", {}))
    made: dict[str, dataclasses.Field[Any]] = {}
    for name, annotation in annotations.items():
        default = getattr(cls, name, _MISSING)
        field = default if isinstance(default, dataclasses.Field) else dataclasses.field(default=default)
        if field.default.__class__.__hash__ is None:  # the decorator's message
            raise ValueError(
                f"mutable default {type(field.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        field.name = name
        field.type = annotation
        field._field_type = _FIELD  # type: ignore[attr-defined]
        if field.kw_only is _MISSING:
            field.kw_only = False
        made[name] = field
    for name, field in made.items():
        if isinstance(getattr(cls, name, None), dataclasses.Field):
            if field.default is _MISSING:
                type.__delattr__(cls, name)
            else:
                type.__setattr__(cls, name, field.default)
    made = {**inherited, **made}
    type.__setattr__(cls, "__dataclass_fields__", made)
    type.__setattr__(cls, "__dataclass_params__", _PARAMS_RECORD)
    if "__match_args__" not in namespace:
        type.__setattr__(
            cls, "__match_args__", tuple(f.name for f in made.values() if f.init and not f.kw_only)
        )
    return tuple(made.values())


@dataclasses.dataclass(init=False, repr=False, eq=False)
class _Reference:
    """
    One class made by the standard decorator, for what L{_collect} copies:
    its parameters record and its fields' kind.
    """

    field: int


#: What the standard decorator records on each class L{_collect} makes.
_PARAMS_RECORD = _Reference.__dataclass_params__  # type: ignore[attr-defined]
_FIELD = dataclasses.fields(_Reference)[0]._field_type  # type: ignore[attr-defined]


def _frozen(cls: type[_T]) -> type[_T]:
    """
    Make C{cls} a frozen dataclass with the methods above (or with the
    standard decorator's, if it writes one of them itself).
    """
    if any(name in cls.__dict__ for name in _WRITTEN):
        return dataclasses.dataclass(frozen=True)(cls)
    fields = _collect(cls)
    if fields is None:
        cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    table = tuple((f.name, f.default, f.default_factory) for f in fields if f.init)
    attributes: dict[str, Any] = {
        "__valueFields__": table,
        "__valueRequired__": sum(
            1 for _, default, factory in table if default is _MISSING and factory is _MISSING
        ),
        "__valuePositions__": {name: index for index, (name, _, _) in enumerate(table)},
        "__valueRepr__": tuple(f.name for f in fields if f.repr),
        "__valueCompared__": tuple(f.name for f in fields if f.compare),
        "__valueHashed__": tuple(
            f.name for f in fields if (f.compare if f.hash is None else f.hash)
        ),
        "__init__": _init,
        "__repr__": _repr,
        "__eq__": _eq,
        "__hash__": _hash,
        "__setattr__": _setattr,
        "__delattr__": _delattr,
    }
    for name, value in attributes.items():
        type.__setattr__(cls, name, value)
    return cls


if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:

    def dataclass(cls=None, /, **options):
        """
        C{dataclasses.dataclass}, the same classes: C{@dataclass(frozen=True)}
        without compiling the methods at import; any other use is the
        standard decorator's.
        """
        if options != {"frozen": True}:
            return dataclasses.dataclass(cls, **options)
        return _frozen if cls is None else _frozen(cls)
