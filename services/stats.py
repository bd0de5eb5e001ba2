# -*- test-case-name: tests.test_stats -*-
"""
Counters that services update and that C{/status} and C{/metrics} read.

They are plain attributes so that the data path pays one integer addition
per event; readers take a L{snapshot}.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ConnectionStats", "WebStats"]


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
    """

    current: int = 0
    accepted: int = 0
    refused: int = 0
    timedOut: int = 0
    bytesIn: int = 0
    bytesOut: int = 0

    def snapshot(self) -> dict[str, int]:
        """
        A copy of every counter, by name.
        """
        return asdict(self)


@dataclass(slots=True)
class WebStats:
    """
    Counters of the web service.

    @ivar current: connections open now.
    @ivar accepted: connections accepted since start.
    @ivar refused: connections closed at once because of a connection limit
        (total or per peer).
    @ivar requests: responses sent, one per line of the access log (408
        and 413 answers included).
    @ivar responses2xx: successful responses.
    @ivar responses3xx: redirects and C{304 Not Modified}.
    @ivar responses4xx: client errors.
    @ivar responses5xx: server errors.
    @ivar headerTimeouts: connections answered C{408} and closed because the
        request headers did not arrive within C{header_timeout}.
    @ivar bodyTooLarge: requests answered C{413} because the body was larger
        than C{max_body}.
    @ivar idleTimeouts: connections closed after C{idle_timeout} of silence.
    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes of response bodies sent.
    """

    current: int = 0
    accepted: int = 0
    refused: int = 0
    requests: int = 0
    responses2xx: int = 0
    responses3xx: int = 0
    responses4xx: int = 0
    responses5xx: int = 0
    headerTimeouts: int = 0
    bodyTooLarge: int = 0
    idleTimeouts: int = 0
    bytesIn: int = 0
    bytesOut: int = 0

    def snapshot(self) -> dict[str, int]:
        """
        A copy of every counter, by name.
        """
        return asdict(self)
