# -*- test-case-name: tests.test_twisted_internals -*-
"""
twisted.web's HTTP/2 (C{twisted.web._http2}): the connection and stream
classes the limited HTTP/2 channel (L{services.web._http2}) extends, and the
per-connection state it keeps as Twisted's own methods do.
"""

from __future__ import annotations

import inspect
from typing import Any

from services._twisted import PrivateName, isA

__all__ = ["PRIVATE_NAMES"]

_USERS = ("services.web._http2",)


def _connection() -> Any:
    from twisted.internet.task import Clock
    from twisted.web._http2 import H2Connection

    return H2Connection(reactor=Clock())


def _setsInInit(*names: str) -> Any:
    def check(init: Any) -> bool:
        source = inspect.getsource(init)
        return all(f"self.{name} =" in source for name in names)

    return check


PRIVATE_NAMES = (
    PrivateName(
        "twisted.web._http2:H2Connection",
        "Twisted's HTTP/2 connection, extended with the web service's limits",
        _USERS,
        fastPaths=("http2",),
        shape=isA(type),
    ),
    PrivateName(
        "twisted.web._http2:H2Stream.__init__",
        "Twisted's HTTP/2 stream, extended; its _request and _conn are read",
        _USERS,
        fastPaths=("http2",),
        shape=_setsInInit("_request", "_conn"),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestReceived",
        "where a stream is built, replaced to build ours",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._requestDone",
        "a stream's end, when its send timeout stops",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._tryToWriteControlData",
        "the control frames' buffer check, to count a client that reads none",
        _USERS,
        fastPaths=("http2",),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._terminate",
        "the answer to a protocol error, to count and close an abusive client "
        "(new in 26.10: before, such clients are closed by Twisted uncounted)",
        _USERS,
        fastPaths=("http2",),
        verified=("26.10.0",),
        since=(26, 10, 0),
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._streamCleanupCallbacks",
        "per-stream Deferreds fired when a stream ends, kept as Twisted keeps them",
        _USERS,
        fastPaths=("http2",),
        shape=isA(dict),
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._outboundStreamQueues",
        "per-stream send queues, kept as Twisted keeps them",
        _USERS,
        fastPaths=("http2",),
        shape=isA(dict),
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._sendingDeferred",
        "the Deferred the send loop waits on, fired to resume it",
        _USERS,
        fastPaths=("http2",),
        shape=lambda value: value is None,
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._consumerBlocked",
        "set while the transport has paused the connection",
        _USERS,
        fastPaths=("http2",),
        shape=lambda value: value is None,
        instance=_connection,
    ),
    PrivateName(
        "twisted.web._http2:H2Connection._abortingCall",
        "the pending abort of a closing connection",
        _USERS,
        fastPaths=("http2",),
        shape=lambda value: value is None,
        instance=_connection,
    ),
)
