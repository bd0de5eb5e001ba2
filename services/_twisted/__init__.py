# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
The one place where netservices depends on Twisted's internals.

Each module covers one area of Twisted and holds two things: the small
fallbacks that let netservices run on the older releases it declares (a
feature check decides at import which path is taken), and the registry of
every private Twisted name the code base relies on (L{PrivateName}), with
what it is for and the Twisted releases it is verified on.
C{tests.unit._twisted.test_internals} asserts that each registered name exists,
with the expected shape, on the running Twisted.

The registry is gathered from all area modules by L{privateNames}.

A fast path that needs private names asks L{fastPath} before it is used:
when the running Twisted lacks one of them, the fast path is off for the
life of the process, the stock Twisted path is used instead, and one
warning names what is missing.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from twisted.copyright import version as _version
from twisted.logger import Logger

__all__ = [
    "AREAS",
    "FAST_PATHS",
    "TWISTED_VERSION",
    "PrivateName",
    "fastPath",
    "isA",
    "missing",
    "privateNames",
    "resolve",
]

#: The fast paths that rest on private names, and the stock path used
#: instead when one is missing.
FAST_PATHS = {
    "nsepoll": "Twisted's own epoll reactor",
    "sendfile": "Twisted's producer for file bodies",
    "static": "plain twisted.web.static.File",
    "http2": "HTTP/1.1 only on ssl: web listeners (HTTP/2's limits could not all hold)",
}

_log = Logger()
_decided: dict[str, bool] = {}

#: The running Twisted's release as (year, month, micro).
TWISTED_VERSION: tuple[int, ...] = tuple(int(n) for n in re.findall(r"\d+", _version)[:3])

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
    @ivar fastPaths: the fast paths (keys of L{FAST_PATHS}) that are off
        when it is missing.
    @ivar since: the first Twisted release that has it, when that is newer
        than the floor (the code that uses it does nothing before).
    """

    path: str
    purpose: str
    users: tuple[str, ...]
    shape: Callable[[Any], bool] = callable
    instance: Callable[[], Any] | None = None
    verified: tuple[str, ...] = VERIFIED
    fastPaths: tuple[str, ...] = ()
    since: tuple[int, ...] = ()


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
        with warnings.catch_warnings():
            # twisted.web.static deprecates its own error pages on import.
            warnings.simplefilter("ignore", DeprecationWarning)
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


#: Every area module of the registry.
AREAS = ("endpoints", "transports", "reactor", "web", "http2", "haproxy", "tls", "logger")

#: The areas whose names fast paths need: all that L{missing} imports, so
#: that a check at start-up loads neither TLS nor the web.
_FAST_PATH_AREAS = ("transports", "reactor", "web")


def privateNames(areas: tuple[str, ...] = AREAS) -> list[PrivateName]:
    """
    Every registered private Twisted name, from the area modules C{areas}
    (all of them by default).
    """
    names: list[PrivateName] = []
    for area in areas:
        names.extend(import_module(f"{__name__}.{area}").PRIVATE_NAMES)
    return names


def missing(name: str) -> list[str]:
    """
    The private names fast path C{name} needs that the running Twisted
    lacks (or has in another shape).
    """
    absent = []
    areas = _FAST_PATH_AREAS + (("http2",) if name == "http2" else ())
    for private in privateNames(areas):
        if name not in private.fastPaths:
            continue
        try:
            present = private.shape(resolve(private))
        except Exception:  # noqa: BLE001 (an unknown Twisted may fail in any way)
            present = False
        if not present:
            absent.append(private.path)
    return absent


def fastPath(name: str) -> bool:
    """
    Whether fast path C{name} may be used on the running Twisted: decided
    on the first call, with one warning naming what is missing when not.
    """
    decided = _decided.get(name)
    if decided is None:
        absent = missing(name)
        decided = _decided[name] = not absent
        if absent:
            _log.warn(
                "Twisted {version} lacks {missing}: {fastPath} is off, using {stock}",
                version=_version,
                missing=", ".join(absent),
                fastPath=name,
                stock=FAST_PATHS[name],
            )
    return decided
