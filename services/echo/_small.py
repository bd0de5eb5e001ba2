# -*- test-case-name: tests.test_smallservices -*-
"""
The classic small services over stream sockets: discard (RFC 863), chargen
(RFC 864), daytime (RFC 867), time (RFC 868) and quote of the day (RFC 865).

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
    L{services.echo._tcp.EchoFactory}.

Use them in your own application::

    from twisted.internet import endpoints, reactor
    from services.echo._small import Chargen, SmallServiceFactory

    factory = SmallServiceFactory("chargen", Chargen, timeout=60, rate=1024**2)
    endpoints.serverFromString(reactor, "tcp:10019:interface=127.0.0.1").listen(factory)
    reactor.run()
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from services.echo._tcp import EchoFactory, EchoService
from services.nsepoll.fastpath import canWriteDirectly
from services.net.endpoints import ListenContext, endpointFor
from services.net.listener import ListenerService
from services.net.sockets import SocketOptions
from services.stats import ConnectionStats

__all__ = [
    "Answer",
    "Chargen",
    "Discard",
    "SmallServiceFactory",
    "chargenPattern",
    "daytimeAnswer",
    "makeSmallService",
    "protocolFor",
    "quoteAnswer",
    "timeAnswer",
]

#: Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01 (the Unix epoch).
EPOCH_1900 = 2208988800

#: RFC 864 on TCP: lines of 72 characters from the 95 printable ASCII ones,
#: each line starting one character further on, ending in CRLF.
_PRINTABLE = bytes(range(32, 127))
_CYCLE = b"".join(
    (_PRINTABLE * 2)[start : start + 72] + b"\r\n" for start in range(len(_PRINTABLE))
)

#: Bytes written per call while the transport wants data.
CHUNK = 64 * 1024

# The pattern, repeated so that any CHUNK bytes of it from any offset in
# the first cycle are one slice.
_RING = _CYCLE * (CHUNK // len(_CYCLE) + 2)


def chargenPattern(offset: int, size: int) -> bytes:
    """
    C{size} bytes (at most L{CHUNK}) of the RFC 864 pattern, from byte
    C{offset} of its cycle of 95 lines.
    """
    start = offset % len(_CYCLE)
    return _RING[start : start + size]


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip


def daytimeAnswer(now: float) -> bytes:
    """
    RFC 867: the date and time in the form the RFC suggests, in UTC, in
    English whatever the locale: C{Thursday, December 3, 2026 10:19:35-UTC}.
    """
    t = time.gmtime(now)
    text = (
        f"{_DAYS[t.tm_wday]}, {_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}-UTC\r\n"
    )
    return text.encode("ascii")


def timeAnswer(now: float) -> bytes:
    """
    RFC 868: the seconds since 1900-01-01 00:00 UTC as a 32-bit big-endian
    number.  It wraps to 0 on 2036-02-07 06:28:16 UTC and counts on from
    there, modulo 2**32 (as NTP's era 1 does).
    """
    return struct.pack("!I", (int(now) + EPOCH_1900) % 2**32)


def quoteAnswer(quotes: tuple[str, ...]) -> Callable[[float], bytes]:
    """
    RFC 865: the answer function for C{quotes}, one a day (UTC) in turn.
    """
    encoded = tuple(q.encode("utf-8") + b"\r\n" for q in quotes)

    def answer(now: float) -> bytes:
        return encoded[int(now // 86400) % len(encoded)]

    return answer


#: The quote of L{quoteAnswer} when none is configured.
BUILTIN_QUOTE = "Simple things should be simple, complex things should be possible. (Alan Kay)"


class _SmallProtocol(Protocol, TimeoutMixin):
    """
    What every small service's connection does: count itself, take part in
    the shutdown drain, time out on the factory's clock.
    """

    factory: SmallServiceFactory
    #: What C{/status} lists of an open connection (L{services.net.connections}):
    #: when it connected, by the factory's clock, the bytes it received and
    #: sent, and whether its transport paused it.
    connectedAt = 0.0
    bytesIn = 0
    bytesOut = 0
    backpressured = False

    def callLater(self, period: float, func: Any) -> IDelayedCall:
        """
        Schedule the timeout on the factory's clock.
        """
        return self.factory.clock.callLater(period, func)

    def connectionMade(self) -> None:
        """
        Count the connection.
        """
        stats = self.factory.stats
        stats.current += 1
        stats.accepted += 1
        self.connectedAt = self.factory.clock.seconds()
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
        self.setTimeout(None)
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
        if self.factory.timeout:
            self.setTimeout(self.factory.timeout)

    def dataReceived(self, data: bytes) -> None:
        """
        Count C{data} and restart the idle timer.
        """
        self.bytesIn += len(data)
        self.factory.stats.bytesIn += len(data)
        if self.timeOut:
            self.resetTimeout()

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
        self._filledAt = self.factory.clock.seconds()
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
        if self.factory.timeout:
            self.setTimeout(self.factory.timeout)

    def resumeProducing(self) -> None:
        """
        The transport wants data: write (unless the rate limit makes us
        wait already).
        """
        self._paused = self.backpressured = False
        self.setTimeout(None)
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
                self._delayed = self.factory.clock.callLater(wait, self._produce)
                return
            self.transport.write(chargenPattern(self.offset, quantum))  # type: ignore[union-attr]
            self.offset = (self.offset + quantum) % len(_CYCLE)
            self.bytesOut += quantum
            self.factory.stats.bytesOut += quantum
        self._delayed = self.factory.clock.callLater(0, self._produce)

    def _allowance(self, quantum: int) -> float:
        """
        Spend C{quantum} bytes of the rate limit; return 0 if they were
        there, else the seconds until they are.
        """
        rate = self.factory.rate
        if not rate:
            return 0.0
        now = self.factory.clock.seconds()
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
        if factory.timeout:
            self.setTimeout(factory.timeout)
        answer = factory.answer(factory.clock.seconds())
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
        clock: IReactorTime | None = None,
        stats: ConnectionStats | None = None,
        rate: int = 0,
        answer: Callable[[float], bytes] | None = None,
    ) -> None:
        EchoFactory.__init__(
            self,
            idleTimeout=timeout,
            maxConnections=maxConnections,
            clock=clock,
            stats=stats,
            noDelay=False,
            name=name,
        )
        self.protocol = protocol  # type: ignore[assignment]
        self.timeout = timeout or None
        self.rate = rate
        self.answer = answer or (lambda now: b"")


def protocolFor(name: str, section: Any) -> tuple[type[Protocol], dict[str, Any]]:
    """
    The protocol of service C{name} and the factory arguments its section
    gives.
    """
    from services.config import readQuotes

    if name == "discard":
        return Discard, {"timeout": section.idle_timeout}
    if name == "chargen":
        return Chargen, {"timeout": section.send_timeout, "rate": section.rate}
    answers = {
        "daytime": lambda: daytimeAnswer,
        "time": lambda: timeAnswer,
        "qotd": lambda: quoteAnswer(
            readQuotes(section.quotes) if section.quotes else (BUILTIN_QUOTE,)
        ),
    }
    return Answer, {"timeout": section.send_timeout, "answer": answers[name]()}


def makeSmallService(
    name: str,
    section: Any,
    reactor: Any = None,
    stats: ConnectionStats | None = None,
    grace: float = 10.0,
    context: ListenContext | None = None,
) -> EchoService:
    """
    Build small service C{name} (C{"discard"}, C{"chargen"}, C{"daytime"},
    C{"time"} or C{"qotd"}): one listener per endpoint of C{section.listen},
    sharing one L{SmallServiceFactory}.

    @param section: the service's section of the configuration.
    @param reactor: the reactor to listen with; the global one if L{None}.
    @param stats: counters to update; new L{ConnectionStats} if L{None}.
    @param grace: seconds open connections get to finish when the service
        stops.
    @param context: the process's TLS files and inherited sockets.
    """
    if reactor is None:
        from twisted.internet import reactor
    protocol, arguments = protocolFor(name, section)
    factory = SmallServiceFactory(
        name, protocol, maxConnections=section.max_connections, clock=reactor, stats=stats, **arguments
    )
    options = SocketOptions(
        backlog=section.backlog,
        sndbuf=section.sndbuf,
        rcvbuf=section.rcvbuf,
        reuseport=section.reuseport,
    )
    service = EchoService(factory, grace)
    for description in section.listen:
        endpoint = endpointFor(reactor, description, options, context or ListenContext(), factory.stats)
        ListenerService(name, description, endpoint, factory, options).setServiceParent(service)
    return service
