# -*- test-case-name: tests.unit.echo.test_smalludp -*-
"""
The protocol of discard, daytime, time and qotd over UDP, within the
reflection rules of UDP echo (L{services.echo._udp}); the services are built
by L{services.echo._smallservice.makeSmallUdpService}.

A UDP service that answers is a reflector: anyone may forge the source
address of a request and have the answer sent to a victim.  So
L{DatagramAnswer}:

  - answers at most one datagram per request, and none larger than the
    request: it amplifies nothing (a client pads its request to the size of
    the answer: 4 bytes for time, 64 for daytime, the quote's length for
    qotd);
  - answers no source port below 1024 and none of our own service ports
    (the loop guard), and keeps to a per-source and a global rate limit
    (L{services.net.datagram.SourceLimiter});
  - drops a datagram that filled the receive buffer.

Discard answers nothing, so it needs none of these rules.  Chargen is not
offered over UDP: with one forged datagram to chargen from echo, two hosts
flood each other (CERT CA-1996-01).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from services.echo._datagram import SEND_ERRORS
from services.net.datagram import MAX_UDP_PAYLOAD, SourceLimiter
from services.stats import DatagramAnswerStats

__all__ = ["DatagramAnswer"]


class DatagramAnswer(DatagramProtocol):
    """
    Answer each datagram with C{answer(now)}, within the rules of the
    module docstring; with no C{answer}, only count (discard).

    @ivar stats: the counters it updates.
    @ivar maxPacketSize: the receive buffer size of its port.
    """

    noisy = False

    def __init__(
        self,
        answer: Callable[[float], bytes] | None,
        limiter: SourceLimiter,
        ownPorts: Callable[[], Collection[int]] = frozenset,
        stats: DatagramAnswerStats | None = None,
        maxPacketSize: int = MAX_UDP_PAYLOAD + 1,
    ) -> None:
        self.answer = answer
        self.limiter = limiter
        self.ownPorts = ownPorts
        self.stats = stats if stats is not None else DatagramAnswerStats()
        self.maxPacketSize = maxPacketSize

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Count C{datagram} and answer it if the rules allow.
        """
        stats = self.stats
        stats.received += 1
        stats.bytesIn += len(datagram)
        if self.answer is None:
            return
        if len(datagram) >= self.maxPacketSize:
            stats.oversize += 1
            return
        now = self.limiter.clock.seconds()
        answer = self.answer(now)
        if len(answer) > len(datagram):
            stats.smallRequests += 1
            return
        port = addr[1]
        if port < 1024 or port in self.ownPorts():
            stats.loopGuarded += 1
            return
        if not self.limiter.allow(addr[0], now):
            stats.rateLimited += 1
            return
        try:
            self.transport.write(answer, addr)  # type: ignore[union-attr]
        except SEND_ERRORS:
            stats.sendErrors += 1
            return
        stats.answered += 1
        stats.bytesOut += len(answer)
