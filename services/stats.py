# -*- test-case-name: tests.test_stats -*-
"""
Counters that services update and that C{/status} and C{/metrics} read.

They are plain attributes so that the data path pays one integer addition
per event; readers take a L{snapshot}.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ConnectionStats"]


@dataclass(slots=True)
class ConnectionStats:
    """
    Counters of a stream service.

    @ivar current: connections open now.
    @ivar accepted: connections accepted since start.
    @ivar refused: connections closed at once because of the connection limit.
    @ivar timedOut: connections closed by the idle timeout.
    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes written back.
    @ivar proxyMalformed: connections closed for a malformed PROXY header
        (C{haproxy:} listeners).
    @ivar proxyTimedOut: connections closed for sending no PROXY header in
        time (C{haproxy:} listeners).
    """

    current: int = 0
    accepted: int = 0
    refused: int = 0
    timedOut: int = 0
    bytesIn: int = 0
    bytesOut: int = 0
    proxyMalformed: int = 0
    proxyTimedOut: int = 0

    def snapshot(self) -> dict[str, int]:
        """
        A copy of every counter, by name.
        """
        return asdict(self)
