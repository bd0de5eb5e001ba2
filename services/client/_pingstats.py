# -*- test-case-name: tests.unit.client.test_ping -*-
"""
What a ping run measures: each L{Reply}, the round-trip statistics as
iputils keeps them (L{RoundTrips}), and the L{PingResult} of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MAX_KEPT_REPLIES", "PingResult", "Reply", "RoundTrips"]


@dataclass(frozen=True)
class Reply:
    """
    One echo reply.

    @ivar sequence: the request's sequence number (from 1; the wire carries
        it modulo 65536).
    @ivar address: who answered.
    @ivar size: bytes of the ICMP message (header and payload).
    @ivar ttl: the reply's TTL or hop limit, L{None} when unknown.
    @ivar rtt: seconds from request to reply.
    @ivar duplicate: whether this request was answered before.
    @ivar reordered: whether a later request was answered before this one.
    """

    sequence: int
    address: str
    size: int
    ttl: int | None
    rtt: float
    duplicate: bool = False
    reordered: bool = False


#: At most this many replies are kept for L{PingResult.replies}; the counts
#: and round-trip statistics cover every reply, so a run without a count (or
#: a flood of duplicate replies) keeps its memory bounded.
MAX_KEPT_REPLIES = 4096


@dataclass(frozen=True)
class PingResult:
    """
    What a run measured.

    @ivar address: the address pinged.
    @ivar family: C{AF_INET} or C{AF_INET6}.
    @ivar socketKind: C{"dgram"} or C{"raw"}.
    @ivar transmitted: requests sent.
    @ivar replies: the first L{MAX_KEPT_REPLIES} replies matched to a
        request, duplicates included, in arrival order.
    @ivar malformed: packets dropped as malformed or truncated.
    @ivar errors: requests that could not be sent, and socket errors.
    @ivar elapsed: seconds from the first request to the last request or
        reply, whichever came later (what iputils reports as C{time}).
    @ivar received: requests answered (duplicates not counted).
    @ivar duplicates: replies to requests answered before.
    @ivar reordered: replies that came after the reply to a later request.
    @ivar rtts: the round-trip statistics of every reply (L{RoundTrips}).
    """

    address: str
    family: int
    socketKind: str
    transmitted: int
    replies: tuple[Reply, ...] = ()
    malformed: int = 0
    errors: int = 0
    elapsed: float = 0.0
    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    rtts: RoundTrips | None = None

    @property
    def loss(self) -> float:
        """
        Percent of requests unanswered.
        """
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted

    def rttSummary(self) -> tuple[float, float, float, float] | None:
        """
        The minimum, average, maximum and mean deviation (C{mdev}, as
        iputils computes it) of the round-trip times in seconds, over every
        reply; L{None} without replies.
        """
        return None if self.rtts is None else self.rtts.summary()


@dataclass(frozen=True)
class RoundTrips:
    """
    Running round-trip statistics, as iputils keeps them: a count, the
    extremes, the sum and the sum of squares (for C{mdev}).
    """

    count: int
    minimum: float
    maximum: float
    total: float
    squares: float

    @classmethod
    def of(cls, rtt: float) -> RoundTrips:
        """
        The statistics of one round trip.
        """
        return cls(1, rtt, rtt, rtt, rtt * rtt)

    def add(self, rtt: float) -> RoundTrips:
        """
        These statistics and one more round trip.
        """
        return RoundTrips(
            self.count + 1,
            min(self.minimum, rtt),
            max(self.maximum, rtt),
            self.total + rtt,
            self.squares + rtt * rtt,
        )

    def summary(self) -> tuple[float, float, float, float]:
        """
        The minimum, average, maximum and mean deviation in seconds.
        """
        mean = self.total / self.count
        square = self.squares / self.count
        return self.minimum, mean, self.maximum, math.sqrt(max(0.0, square - mean * mean))
