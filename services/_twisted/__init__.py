# -*- test-case-name: tests.test_twisted_internals -*-
"""
The one place where netservices depends on Twisted's internals.

Each module covers one area of Twisted and holds two things: the small
fallbacks that let netservices run on the older releases it declares (a
feature check decides at import which path is taken), and the registry of
every private Twisted name the code base relies on (L{PrivateName}), with
what it is for and the Twisted releases it is verified on.
C{tests.test_twisted_internals} asserts that each registered name exists,
with the expected shape, on the running Twisted.

The registry is gathered from all area modules by L{privateNames}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import twisted

__all__ = ["TWISTED_VERSION", "PrivateName", "isA", "privateNames", "resolve"]

#: The running Twisted's release as (year, month, micro).
TWISTED_VERSION: tuple[int, int, int] = (
    int(twisted.version.major),
    twisted.version.minor,
    twisted.version.micro,
)

#: The releases every registered name is verified on (the suite's matrix:
#: the declared floor and the newest release).
VERIFIED = ("25.5.0", "26.4.0", "26.10.0")


@dataclass(frozen=True)
class PrivateName:
    """
    One private Twisted name netservices relies on.

    @ivar path: where it is, C{"module:Attr.attr"} (the part after the colon
        is looked up with C{getattr}, dot by dot).
    @ivar purpose: what netservices uses it for.
    @ivar users: the netservices modules that use it.
    @ivar shape: a predicate the found object satisfies (a callable, a
        class, a list...), checked by the test.
    @ivar instance: for an attribute set in C{__init__}, a callable that
        builds an instance of the owner class to look it up on.
    @ivar verified: the Twisted releases it is verified on.
    """

    path: str
    purpose: str
    users: tuple[str, ...]
    shape: Callable[[Any], bool] = callable
    instance: Callable[[], Any] | None = None
    verified: tuple[str, ...] = VERIFIED


def isA(*types: type) -> Callable[[Any], bool]:
    """
    A shape predicate: the found object is an instance of one of C{types}.
    """

    def check(value: Any) -> bool:
        return isinstance(value, types)

    return check


def resolve(name: PrivateName) -> Any:
    """
    Look C{name} up on the running Twisted.

    @raise AttributeError: when the module or one of the attributes is
        missing (an C{ImportError} is turned into one).
    """
    module, _, attributes = name.path.partition(":")
    try:
        found: Any = import_module(module)
    except ImportError as e:
        raise AttributeError(f"{module}: {e}") from None
    parts = attributes.split(".") if attributes else []
    if name.instance is not None:
        found = name.instance()
        parts = parts[-1:]
    for part in parts:
        found = getattr(found, part)
    return found


def privateNames() -> list[PrivateName]:
    """
    Every registered private Twisted name, from all the area modules.
    """
    names: list[PrivateName] = []
    for area in ("endpoints", "transports", "reactor", "web", "haproxy", "tls", "logger"):
        names.extend(import_module(f"{__name__}.{area}").PRIVATE_NAMES)
    return names
