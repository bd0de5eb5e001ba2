# -*- test-case-name: tests.unit.net.test_sendtimeout -*-
"""
A send timeout, like nginx's C{send_timeout}: a connection whose peer takes
nothing of what is queued for it for that long is aborted.

Twisted's transports pause their producer when their send buffer fills and
resume it once the buffer has drained; nothing ever closes a connection
whose peer has stopped reading, so it holds its buffers and its place under
the connection caps for ever (an idle timeout does not help: it only counts
what the peer sends).  A L{SendTimer} runs only while the transport has
paused its producer: L{SendTimer.paused} arms it and L{SendTimer.resumed}
disarms it, so a connection whose peer keeps up pays nothing.  When the
timer fires it checks how much is still queued: if the peer took some of it
(slowly, but it reads), the timer is armed again; if it took nothing, the
connection is aborted (its queued bytes are dropped with it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from services._twisted.transports import unsentBytes

__all__ = ["SendTimer", "queuedBytes"]


def queuedBytes(transport: Any) -> int | None:
    """
    How many bytes C{transport} (or, for a TLS or PROXY-protocol wrapper,
    the socket transport under it) holds that the kernel has not taken yet;
    L{None} for a transport that does not say.
    """
    for _ in range(4):
        buffer = getattr(transport, "dataBuffer", None)
        if isinstance(buffer, bytes):  # a FileDescriptor: a socket's transport
            return unsentBytes(transport)
        transport = getattr(transport, "transport", None)
        if transport is None:
            break
    return None


class SendTimer:
    """
    Calls C{expired} when the peer of C{transport} took none of the bytes
    queued for it for C{timeout} seconds while the transport kept its
    producer paused.

    @ivar timeout: the seconds allowed without progress; 0 turns it off.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: float,
        transport: Any,
        expired: Callable[[], None],
    ) -> None:
        self.timeout = timeout
        self._reactor = reactor
        self._transport = transport
        self._expired = expired
        self._call: IDelayedCall | None = None
        self._queued: int | None = None

    def paused(self) -> None:
        """
        The transport paused its producer (its buffer is full): start
        timing, unless already timing.
        """
        if self.timeout and self._call is None:
            self._queued = queuedBytes(self._transport)
            self._call = self._reactor.callLater(self.timeout, self._check)

    def resumed(self) -> None:
        """
        The transport's buffer drained: stop timing.
        """
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    stop = resumed

    def _check(self) -> None:
        self._call = None
        queued = queuedBytes(self._transport)
        if queued is not None and self._queued is not None and queued < self._queued:
            self._queued = queued  # the peer reads, slowly: time the next period
            self._call = self._reactor.callLater(self.timeout, self._check)
            return
        self._expired()
