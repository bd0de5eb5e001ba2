# -*- test-case-name: tests.unit.client.test_limits -*-
"""
L{BodyReader}: the protocol a response body is delivered to.  It passes the
body to a sink as it arrives (so memory stays bounded), counts it against a
size limit, decodes it first when asked (in the bounded steps of
L{services.client._coding}), and reports progress.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss

from services.client._coding import CodingError, Decoder
from services.client._errors import BadContentEncoding, ResponseTooLarge

__all__ = ["BodyReader", "Progress", "Sink"]

#: What receives each chunk of a body.
Sink = Callable[[bytes], object]

#: What is told (bytes received, total or L{None}) after each chunk.
Progress = Callable[[int, int | None], object]


class BodyReader(Protocol):
    """
    Reads a response body into a sink, counting bytes against a limit;
    with a L{Decoder}, decodes it first, in bounded steps, and counts the
    decoded bytes.

    @ivar finished: fires with the number of bytes received when the body is
        complete; fails with L{ResponseTooLarge}, the sink's exception, or
        the connection's error.  Cancelling it drops the connection.
    """

    def __init__(
        self,
        url: str,
        limit: int | None,
        sink: Sink | None,
        *,
        progress: Progress | None = None,
        total: int | None = None,
        discard: bool = False,
        decoder: Decoder | None = None,
    ) -> None:
        self._url = url
        self._limit = limit
        self._sink = sink
        self._progress = progress
        self._total = total
        self._discard = discard
        self._decoder = decoder
        self.received = 0
        self.finished: Deferred[int] = Deferred(self._cancel)

    def connectionMade(self) -> None:
        """
        Refuse at once a body whose declared length is over the limit.
        """
        if self._limit is not None and self._total is not None and self._total > self._limit:
            if self._discard:
                self._stop(self.received)
            else:
                self._stop(Failure(ResponseTooLarge(self._limit, self._url, self._total)))

    def dataReceived(self, data: bytes) -> None:
        """
        Decode C{data} (with a decoder) and deliver it.
        """
        if self.finished.called:
            return
        if self._decoder is None:
            self._deliver(data)
            return
        try:
            for piece in self._decoder.decode(data):
                self._deliver(piece)
                if self.finished.called:
                    return
        except CodingError as e:
            self._stop(Failure(BadContentEncoding(str(e), self._url)))

    def _deliver(self, data: bytes) -> None:
        """
        Count C{data}, check the limit, pass it to the sink.
        """
        self.received += len(data)
        if self._limit is not None and self.received > self._limit:
            if self._discard:
                self._stop(self.received)
            else:
                self._stop(Failure(ResponseTooLarge(self._limit, self._url)))
            return
        try:
            if self._sink is not None:
                self._sink(data)
            if self._progress is not None:
                self._progress(self.received, self._total)
        except BaseException:
            self._stop(Failure())

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        """
        The body is complete (or the connection failed).
        """
        if self.finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            if self._decoder is not None:
                self.dataReceived(b"")
                if self.finished.called:
                    return
            self.finished.callback(self.received)
        else:
            self.finished.errback(reason)

    def _stop(self, result: int | Failure) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]
        if isinstance(result, Failure):
            self.finished.errback(result)
        else:
            self.finished.callback(result)

    def _cancel(self, finished: Deferred[int]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]
