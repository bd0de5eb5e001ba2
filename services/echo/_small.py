# -*- test-case-name: tests.unit.echo.test_smallservices -*-
"""
The protocols of the classic small services over stream sockets: discard
(RFC 863), chargen (RFC 864), daytime (RFC 867), time (RFC 868) and quote of
the day (RFC 865).  What they send is in L{services.echo._smallanswers}; the
services are built from their settings by L{services.echo._smallservice}.

They are the protocols of L{twisted.protocols.wire}, with what a daemon on
a network needs besides:

  - L{Chargen} is its transport's push producer: it writes only while the
    transport wants data, so a client that stops reading holds the service
    to one paused connection and a bounded buffer, and is closed after
    C{sendTimeout} seconds; an optional rate limit paces it;
  - L{Discard} counts every byte, keeps none, and closes when the client
    has finished sending (a half-close), so a client can tell that all it
    sent was read;
  - L{Answer} (daytime, time, qotd) writes one short answer and closes,
    and aborts a connection whose answer cannot be sent in time (a TLS
    handshake or a PROXY header that never completes);
  - every service has the connection cap, counters and shutdown drain of
    L{services.echo.EchoFactory}, and, as echo, one timer for the timeouts
    of all its connections (L{services.net.idletimeout}) rather than one
    L{DelayedCall} per connection: an open connection costs a C{dict}
    entry, not a timer object, and a read no timer reset.

Use them in your own application::

    from twisted.internet import endpoints, reactor
    from services.echo import Chargen, SmallServiceFactory

    factory = SmallServiceFactory("chargen", Chargen, timeout=60, rate=1024**2)
    endpoints.serverFromString(reactor, "tcp:10019:interface=127.0.0.1").listen(factory)
    reactor.run()
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from services.echo._smallanswers import CHUNK, PATTERN_CYCLE, chargenPattern
from services.echo._tcp import EchoFactory
from services.net.idletimeout import IdleTimeouts, timeoutsFor
from services.nsepoll.fastpath import canWriteDirectly
from services.stats import ConnectionStats

__all__ = ["Answer", "Chargen", "Discard", "SmallServiceFactory"]


class _SmallProtocol(Protocol):
    """
    What every small service's connection does: count itself, take part in
    the shutdown drain, time out on the factory's one timer.

    Each service says when its timeout runs (L{_startTimeout},
    L{_stopTimeout}); as with L{twisted.protocols.policies.TimeoutMixin},
    starting it again restarts it, and C{factory.timeout} seconds after the
    last start the connection is aborted (L{timeoutConnection}).
    """

    factory: SmallServiceFactory
    #: What C{/status} lists of an open connection (L{services.net.connections}):
    #: when it connected, by the factory's reactor, the bytes it received and
    #: sent, and whether its transport paused it.
    connectedAt = 0.0
    bytesIn = 0
    bytesOut = 0
    backpressured = False
    #: The factory's timer while this connection's timeout runs.
    _idle: IdleTimeouts | None = None

    def _startTimeout(self) -> None:
        """
        Start the timeout, or restart it if it runs; nothing when the
        factory has no timeout.
        """
        idle = self._idle
        if idle is not None:
            idle.touch(self)
            return
        idle = self.factory.idleTimeouts()
        if idle is not None:
            self._idle = idle
            idle.add(self)

    def _stopTimeout(self) -> None:
        """
        Stop the timeout, if it runs.
        """
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.remove(self)

    def _idleExpired(self) -> None:
        # The factory's timer forgot this connection: no more touching.
        self._idle = None
        self.timeoutConnection()

    def connectionMade(self) -> None:
        """
        Count the connection.
        """
        stats = self.factory.stats
        stats.current += 1
        stats.accepted += 1
        self.connectedAt = self.factory.reactor.seconds()
        self.factory.tracker.add(self)

    def dataReceived(self, data: bytes) -> None:
        """
        Count what the client sent, and keep none of it.
        """
        self.bytesIn += len(data)
        self.factory.stats.bytesIn += len(data)

    def timeoutConnection(self) -> None:
        """
        The timeout passed: drop the connection and whatever it still holds.
        """
        self.factory.stats.timedOut += 1
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        """
        Stop the timer and uncount the connection.
        """
        self._stopTimeout()
        self.factory.stats.current -= 1
        self.factory.tracker.remove(self)


@implementer(IHalfCloseableProtocol)
class Discard(_SmallProtocol):
    """
    RFC 863: count every byte received and keep none.  Closes after
    C{timeout} seconds of silence, and as soon as the client half-closes:
    the close tells the client that everything it sent was read.
    """

    readSize = 256 * 1024

    def connectionMade(self) -> None:
        """
        Count the connection and start the idle timer.  Plain TCP and UNIX
        connections read C{readSize} bytes at a time.
        """
        _SmallProtocol.connectionMade(self)
        if canWriteDirectly(self.transport):
            self.transport.bufferSize = self.readSize  # type: ignore[union-attr]
        self._startTimeout()

    def dataReceived(self, data: bytes) -> None:
        """
        Count C{data} and restart the idle timer.
        """
        self.bytesIn += len(data)
        self.factory.stats.bytesIn += len(data)
        idle = self._idle
        if idle is not None:
            idle.touch(self)

    def readConnectionLost(self) -> None:
        """
        The client sent everything: close.
        """
        self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        """
        Nothing is ever written: nothing to do.
        """


@implementer(IPushProducer, IHalfCloseableProtocol)
class Chargen(_SmallProtocol):
    """
    RFC 864: the character pattern, for as long as the client reads it.

    The protocol is its transport's push producer.  It writes L{CHUNK}
    bytes at a time while the transport wants data; when the transport's
    buffer fills, the transport pauses it and it writes nothing more until
    resumed, so a client that does not read costs one paused connection.
    A connection paused for C{factory.timeout} seconds is closed.

    With C{factory.rate}, at most that many bytes a second are written, in
    pieces of a tenth of a second's worth.

    @ivar offset: where in the pattern's cycle the next byte is.
    """

    offset = 0
    _paused = True
    _delayed: IDelayedCall | None = None
    _tokens = 0.0
    _filledAt = 0.0
    #: Writes in one go before yielding to the other connections, for a
    #: transport that never pauses (one that does pauses after two).
    burst = 16

    def connectionMade(self) -> None:
        """
        Count the connection and start producing.
        """
        _SmallProtocol.connectionMade(self)
        self._filledAt = self.factory.reactor.seconds()
        self._tokens = self._quantum()
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        self.resumeProducing()

    def _quantum(self) -> int:
        rate = self.factory.rate
        return max(1, min(CHUNK, rate // 10)) if rate else CHUNK

    def pauseProducing(self) -> None:
        """
        The transport holds enough: stop writing, and start the send timer.
        """
        self._paused = self.backpressured = True
        self._startTimeout()

    def resumeProducing(self) -> None:
        """
        The transport wants data: write (unless the rate limit makes us
        wait already).
        """
        self._paused = self.backpressured = False
        self._stopTimeout()
        if self._delayed is None:
            self._produce()

    def stopProducing(self) -> None:
        """
        The connection is going away: write nothing more.
        """
        self._paused = True
        self._cancel()

    def _produce(self) -> None:
        self._delayed = None
        quantum = self._quantum()
        for _ in range(self.burst):
            if self._paused:
                return
            wait = self._allowance(quantum)
            if wait:
                self._delayed = self.factory.reactor.callLater(wait, self._produce)
                return
            self.transport.write(chargenPattern(self.offset, quantum))  # type: ignore[union-attr]
            self.offset = (self.offset + quantum) % PATTERN_CYCLE
            self.bytesOut += quantum
            self.factory.stats.bytesOut += quantum
        self._delayed = self.factory.reactor.callLater(0, self._produce)

    def _allowance(self, quantum: int) -> float:
        """
        Spend C{quantum} bytes of the rate limit; return 0 if they were
        there, else the seconds until they are.
        """
        rate = self.factory.rate
        if not rate:
            return 0.0
        now = self.factory.reactor.seconds()
        # The bucket holds two pieces, so that a timer that fires late
        # does not lose its share of the rate.
        self._tokens = min(2.0 * quantum, self._tokens + (now - self._filledAt) * rate)
        self._filledAt = now
        # The slack keeps float rounding from asking for a wait too short
        # for the clock to tell apart from now.
        if self._tokens + 1e-6 >= quantum:
            self._tokens = max(0.0, self._tokens - quantum)
            return 0.0
        return max(0.001, (quantum - self._tokens) / rate)

    def _cancel(self) -> None:
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()
        self._delayed = None

    def readConnectionLost(self) -> None:
        """
        The client will send no more; it may still read: go on.
        """

    def writeConnectionLost(self) -> None:
        """
        The client stopped reading: close.
        """
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        """
        Stop writing, then uncount the connection.
        """
        self.stopProducing()
        _SmallProtocol.connectionLost(self, reason)


class Answer(_SmallProtocol):
    """
    Daytime, time and qotd: write C{factory.answer(now)} and close.  A
    connection whose answer is not sent within C{factory.timeout} seconds
    (a TLS handshake or PROXY header that never completes, a client that
    reads nothing of a long quote) is aborted.
    """

    def connectionMade(self) -> None:
        """
        Count the connection, write the answer, close once it is sent.
        """
        _SmallProtocol.connectionMade(self)
        factory = self.factory
        self._startTimeout()
        answer = factory.answer(factory.reactor.seconds())
        self.bytesOut = len(answer)
        factory.stats.bytesOut += len(answer)
        self.transport.write(answer)  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]


class SmallServiceFactory(EchoFactory):
    """
    Builds the connections of one small service, with the connection cap,
    counters and tracker of L{EchoFactory}.

    @ivar timeout: the protocol's timeout in seconds (discard: idle;
        chargen: paused; daytime, time, qotd: answer not sent), or L{None}.
    @ivar rate: chargen's bytes per second per connection, 0 for no limit.
    @ivar answer: the answer of an L{Answer} service, from the time now.
    """

    def __init__(
        self,
        name: str,
        protocol: type[Protocol],
        timeout: float | None = None,
        maxConnections: int | None = None,
        reactor: IReactorTime | None = None,
        stats: ConnectionStats | None = None,
        rate: int = 0,
        answer: Callable[[float], bytes] | None = None,
    ) -> None:
        EchoFactory.__init__(
            self,
            idleTimeout=timeout,
            maxConnections=maxConnections,
            reactor=reactor,
            stats=stats,
            noDelay=False,
            name=name,
        )
        self.protocol = protocol  # type: ignore[assignment]
        self.timeout = timeout or None
        self.rate = rate
        self.answer = answer or (lambda now: b"")
        self._timeouts: IdleTimeouts | None = None

    def idleTimeouts(self) -> IdleTimeouts | None:
        """
        The one timer of this factory's connections for C{timeout} (made
        again if C{timeout} was changed), or L{None} when there is no
        timeout.
        """
        idle = timeoutsFor(self._timeouts, self.reactor, self.timeout, _SmallProtocol._idleExpired)
        if idle is not None:
            self._timeouts = idle
        return idle
