# -*- test-case-name: tests.unit.net.test_openconns -*-
"""
The open connections of the stream services, as C{/status} lists them.

Each service keeps its open connections in an insertion-ordered registry
(a C{dict} keyed by protocol: one insertion on connect, one deletion on
close, nothing per byte), so the newest are at its end.  Reading the
registry costs nothing on the data path: a connection describes itself only
when asked, from what it keeps anyway (when it connected, the bytes it
counted) and from its transport (the client behind a PROXY header, the
bytes still queued for it).

A listing is bounded: the L{SHOWN} newest connections of all services,
plus the count of each service's open connections.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from itertools import islice
from typing import Any
from typing import Protocol as TypingProtocol

from services.net.addresses import describeAddress
from services.net.sendtimeout import queuedBytes

__all__ = [
    "PAUSED",
    "READING",
    "SENDING",
    "SHOWN",
    "OpenConnection",
    "connectionsDocument",
    "describeConnection",
    "newest",
    "stateOf",
]

#: How many connections a listing shows at most (the newest).
SHOWN = 100

#: Waiting for the client's bytes: nothing is queued for it.
READING = "reading"
#: The send buffer is full: nothing more is read until the client reads.
PAUSED = "paused"
#: Bytes are queued for the client, below the point of backpressure.
SENDING = "sending"


class OpenConnection(TypingProtocol):
    """
    What a registered connection keeps: its transport, when it connected
    (by its service's clock), its byte counts and whether its transport
    paused it (its send buffer is full).
    """

    transport: Any
    connectedAt: float
    bytesIn: int

    @property
    def bytesOut(self) -> int:
        """
        Bytes sent to the client.
        """

    @property
    def backpressured(self) -> bool:
        """
        Whether the transport paused the connection because its send buffer
        is full.
        """


def stateOf(connection: OpenConnection) -> str:
    """
    L{PAUSED} while the transport holds the connection back, L{SENDING}
    while bytes are queued for the client, else L{READING}.
    """
    if connection.backpressured:
        return PAUSED
    if queuedBytes(connection.transport):
        return SENDING
    return READING


def describeConnection(service: str, connection: OpenConnection, now: float) -> dict[str, Any]:
    """
    One connection as C{/status} shows it: the service, the client (behind a
    PROXY header, the real client), the local endpoint, the age in seconds,
    the bytes received and sent, and the state.
    """
    transport = connection.transport
    return {
        "service": service,
        "client": describeAddress(transport.getPeer()),
        "local": describeAddress(transport.getHost()),
        "age": round(max(0.0, now - connection.connectedAt), 3),
        "bytesIn": connection.bytesIn,
        "bytesOut": connection.bytesOut,
        "state": stateOf(connection),
    }


def newest(
    registry: dict[Any, Any], service: str, now: float, limit: int = SHOWN
) -> list[dict[str, Any]]:
    """
    The C{limit} newest connections of an insertion-ordered registry,
    described, newest first (the registry is not walked past them).
    """
    return [describeConnection(service, c, now) for c in islice(reversed(registry), limit)]


def connectionsDocument(
    listings: Iterable[tuple[str, int, list[dict[str, Any]]]], limit: int = SHOWN
) -> dict[str, Any]:
    """
    The C{"connections"} of C{/status}: C{open} (how many in all),
    C{byService} (how many each service has), and C{newest}, the C{limit}
    youngest of all the services' listings (each youngest first).

    @param listings: for each service, its name, how many connections it
        has open and its L{newest} ones.
    """
    byService: dict[str, int] = {}
    lists = []
    for name, count, described in listings:
        byService[name] = byService.get(name, 0) + count
        lists.append(described)
    merged = list(islice(heapq.merge(*lists, key=lambda c: c["age"]), limit))
    return {"open": sum(byService.values()), "byService": byService, "newest": merged}
