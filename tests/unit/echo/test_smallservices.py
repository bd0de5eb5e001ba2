"""
Tests for L{services.echo._small}, L{services.echo._smallanswers} and
L{services.echo._smallservice}: discard, chargen, daytime, time and qotd over
StringTransport with a Clock, and the service builder over MemoryReactor.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from services.echo import (
    Answer,
    Chargen,
    Discard,
    SmallServiceFactory,
    SmallServiceSettings,
    daytimeAnswer,
    makeSmallService,
    quoteAnswer,
    timeAnswer,
)
from services.echo._smallanswers import BUILTIN_QUOTE, CHUNK, chargenPattern
from services.net.sockets import SocketOptions

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class PausingTransport(StringTransport):
    """
    A StringTransport that, like Twisted's socket transports, pauses its
    streaming producer once it holds more than C{bufferSize} bytes, and
    records C{abortConnection}.  C{drain()} stands for the socket sending
    everything: it empties the buffer and resumes the producer.
    """

    bufferSize = 64 * 1024
    aborted = False

    def write(self, data: bytes) -> None:
        StringTransport.write(self, data)
        full = len(self.value()) > self.bufferSize
        producing = self.producer is not None and self.producerState == "producing"
        if self.streaming and full and producing:
            self.producerState = "paused"
            self.producer.pauseProducing()

    def drain(self) -> int:
        sent = len(self.value())
        self.clear()
        if self.producer is not None and self.producerState == "paused":
            self.producerState = "producing"
            self.producer.resumeProducing()
        return sent

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()


def connect(factory: SmallServiceFactory) -> tuple[Any, PausingTransport]:
    """
    Build a protocol from C{factory} and connect it to a fresh transport.
    """
    protocol = factory.buildProtocol(PEER)
    transport = PausingTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


class DiscardTests(SynchronousTestCase):
    """
    L{Discard} counts and keeps nothing, and closes on half-close or idle.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.factory = SmallServiceFactory("discard", Discard, timeout=30, reactor=self.clock)

    def test_countsAndWritesNothing(self) -> None:
        """
        Every byte received is counted in the service's counters; nothing
        is written back and nothing is kept.
        """
        protocol, transport = connect(self.factory)
        verifyObject(IHalfCloseableProtocol, protocol)
        for chunk in (b"a" * 1000, b"", b"b" * 70000):
            protocol.dataReceived(chunk)
        self.assertEqual(self.factory.stats.bytesIn, 71000)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.factory.stats.current, 1)

    def test_halfCloseCloses(self) -> None:
        """
        When the client has sent everything (half-close), discard closes:
        the client learns that all it sent was read.
        """
        protocol, transport = connect(self.factory)
        protocol.readConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_idleTimeout(self) -> None:
        """
        Data restarts the idle timer; silence for C{timeout} seconds aborts
        the connection and counts it.
        """
        protocol, transport = connect(self.factory)
        self.clock.advance(29)
        protocol.dataReceived(b"x")
        self.clock.advance(29)
        self.assertFalse(transport.aborted)
        self.clock.advance(1)
        self.assertTrue(transport.aborted)
        self.assertEqual(self.factory.stats.timedOut, 1)

    def test_connectionLostUncounts(self) -> None:
        """
        A closed connection is uncounted and leaves no timer behind.
        """
        protocol, _ = connect(self.factory)
        protocol.connectionLost()
        self.assertEqual(self.factory.stats.current, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.factory.tracker.connections), 0)


    def test_listedAsOpenConnection(self) -> None:
        """
        An open discard connection is described for C{/status} like an echo
        connection: its age and the bytes it received.
        """
        from services.net.connections import describeConnection

        protocol, _ = connect(self.factory)
        protocol.dataReceived(b"x" * 10)
        self.clock.advance(2)
        described = describeConnection("discard", protocol, self.clock.seconds())
        self.assertEqual(
            (described["service"], described["age"], described["bytesIn"], described["bytesOut"]),
            ("discard", 2.0, 10, 0),
        )


class ChargenPatternTests(SynchronousTestCase):
    """
    L{chargenPattern} is the RFC 864 TCP pattern.
    """

    def test_lines(self) -> None:
        """
        Lines are 72 printable characters and CRLF; each starts one
        character further along the 95 printable ASCII characters, and the
        96th line is the first again.
        """
        text = chargenPattern(0, 96 * 74)
        lines = text.split(b"\r\n")[:96]
        printable = bytes(range(32, 127))
        self.assertEqual(lines[0], printable[:72])
        self.assertEqual(lines[1], printable[1:73])
        self.assertEqual(lines[94], printable[94:] + printable[:71])
        self.assertEqual(lines[95], lines[0])
        self.assertEqual({len(line) for line in lines}, {72})

    def test_offsets(self) -> None:
        """
        A piece from any offset is the same bytes as that stretch of one
        long pattern, across the cycle's end.
        """
        whole = chargenPattern(0, CHUNK) + chargenPattern(CHUNK, CHUNK)
        for offset in (0, 1, 7029, 7030, 50000):
            self.assertEqual(chargenPattern(offset, 1000), whole[offset : offset + 1000])


class ChargenTests(SynchronousTestCase):
    """
    L{Chargen} writes only while the transport wants data.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()

    def factory(self, **kwargs: Any) -> SmallServiceFactory:
        return SmallServiceFactory("chargen", Chargen, reactor=self.clock, **kwargs)

    def test_producer(self) -> None:
        """
        Chargen registers itself as its transport's streaming producer.
        """
        protocol, transport = connect(self.factory())
        verifyObject(IPushProducer, protocol)
        verifyObject(IHalfCloseableProtocol, protocol)
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)

    def test_clientThatDoesNotReadCostsABoundedBuffer(self) -> None:
        """
        A client that reads nothing: chargen writes until the transport
        pauses it, then writes nothing more however long it waits, so the
        buffered bytes stay below two chunks past the transport's limit.
        """
        factory = self.factory()
        _, transport = connect(factory)
        held = len(transport.value())
        self.assertGreater(held, transport.bufferSize)
        self.assertLessEqual(held, transport.bufferSize + CHUNK)
        self.assertEqual(transport.producerState, "paused")
        for _ in range(100):
            self.clock.advance(0.5)
        self.assertEqual(len(transport.value()), held)
        self.assertEqual(factory.stats.bytesOut, held)

    def test_streamsThePatternAsTheClientReads(self) -> None:
        """
        Each time the transport drains it, chargen writes on where it
        stopped: what the client reads is one unbroken pattern.
        """
        _, transport = connect(self.factory())
        received = b""
        for _ in range(5):
            received += transport.value()
            transport.drain()
        self.assertEqual(received, _pattern(len(received)))
        self.assertGreater(len(received), 4 * transport.bufferSize)

    def test_sendTimeout(self) -> None:
        """
        A connection paused for C{timeout} seconds is aborted and counted;
        one that the client reads from is not.
        """
        factory = self.factory(timeout=60)
        _, transport = connect(factory)
        self.clock.advance(59)
        transport.drain()
        self.clock.advance(59)
        self.assertFalse(transport.aborted)
        self.clock.advance(1)
        self.assertTrue(transport.aborted)
        self.assertEqual(factory.stats.timedOut, 1)

    def test_rateLimit(self) -> None:
        """
        With C{rate}, chargen writes a tenth of a second's worth at a time
        and, over 10 seconds of a client that reads everything, sends the
        rate's worth (plus the first piece).
        """
        factory = self.factory(rate=10_000)
        _, transport = connect(factory)
        self.assertEqual(len(transport.value()), 1000)
        sent = transport.drain()
        for _ in range(100):
            self.clock.advance(0.1)
            sent += transport.drain()
        self.assertEqual(sent, 1000 + 10 * 10_000)
        self.assertEqual(factory.stats.bytesOut, sent)

    def test_rateLimitPaused(self) -> None:
        """
        A paused rate-limited chargen writes nothing when its timer fires.
        """
        factory = self.factory(rate=10_000)
        protocol, transport = connect(factory)
        protocol.pauseProducing()
        self.clock.advance(5)
        self.assertEqual(len(transport.value()), 1000)

    def test_transportThatNeverPauses(self) -> None:
        """
        On a transport that never pauses it, chargen writes a bounded burst
        and leaves the rest to a later reactor turn (which a pause in
        between cancels), instead of looping for ever.
        """
        factory = self.factory()
        protocol = factory.buildProtocol(PEER)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(len(transport.value()), protocol.burst * CHUNK)
        [later] = self.clock.getDelayedCalls()
        self.assertEqual(later.getTime(), self.clock.seconds())
        protocol.pauseProducing()
        self.clock.advance(0)
        self.assertEqual(len(transport.value()), protocol.burst * CHUNK)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        protocol.resumeProducing()
        self.assertEqual(len(transport.value()), 2 * protocol.burst * CHUNK)
        protocol.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_halfClose(self) -> None:
        """
        A client that half-closes still reads the pattern; one that stops
        reading (our write side shut) is closed.
        """
        protocol, transport = connect(self.factory())
        protocol.readConnectionLost()
        self.assertFalse(transport.disconnecting)
        protocol.writeConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_inputDiscarded(self) -> None:
        """
        What a chargen client sends is counted and thrown away.
        """
        factory = self.factory()
        protocol, _ = connect(factory)
        protocol.dataReceived(b"x" * 10)
        self.assertEqual(factory.stats.bytesIn, 10)


def _pattern(size: int) -> bytes:
    out = b""
    while len(out) < size:
        out += chargenPattern(len(out), min(CHUNK, size - len(out)))
    return out


class AnswerTests(SynchronousTestCase):
    """
    Daytime, time and qotd answer once and close.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        # 2026-12-03 10:19:35 UTC
        self.clock.advance(1796293175)

    def test_daytime(self) -> None:
        """
        Daytime is one line in RFC 867's suggested form, in UTC.
        """
        self.assertEqual(daytimeAnswer(1796293175), b"Thursday, December 3, 2026 10:19:35-UTC\r\n")

    def test_time(self) -> None:
        """
        Time is the seconds since 1900 as 4 bytes, big-endian.
        """
        self.assertEqual(struct.unpack("!I", timeAnswer(0)), (2208988800,))
        self.assertEqual(struct.unpack("!I", timeAnswer(1796293175)), (1796293175 + 2208988800,))

    def test_timeWraps(self) -> None:
        """
        On 2036-02-07 06:28:16 UTC the 32-bit count wraps to 0 and goes on.
        """
        wrap = 2**32 - 2208988800
        self.assertEqual(timeAnswer(wrap - 1), b"\xff\xff\xff\xff")
        self.assertEqual(timeAnswer(wrap), b"\x00\x00\x00\x00")
        self.assertEqual(timeAnswer(wrap + 10), b"\x00\x00\x00\x0a")

    def test_quoteOfTheDay(self) -> None:
        """
        The quotes take turns, one per UTC day, each ended by CRLF.
        """
        answer = quoteAnswer(("one", "two\r\nlines"))
        self.assertEqual(answer(0), b"one\r\n")
        self.assertEqual(answer(86399), b"one\r\n")
        self.assertEqual(answer(86400), b"two\r\nlines\r\n")
        self.assertEqual(answer(2 * 86400), b"one\r\n")

    def test_answerAndClose(self) -> None:
        """
        The connection gets the answer for the factory's clock, counted,
        and is closed.
        """
        factory = SmallServiceFactory(
            "time", Answer, timeout=10, reactor=self.clock, answer=timeAnswer
        )
        protocol, transport = connect(factory)
        self.assertEqual(transport.value(), timeAnswer(1796293175))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.stats.bytesOut, 4)
        protocol.connectionLost()
        self.assertEqual(factory.stats.current, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sendTimeout(self) -> None:
        """
        A connection still open C{timeout} seconds after its answer (a
        handshake that never completes) is aborted and counted.
        """
        factory = SmallServiceFactory(
            "daytime", Answer, timeout=10, reactor=self.clock, answer=daytimeAnswer
        )
        _, transport = connect(factory)
        self.clock.advance(9.9)
        self.assertFalse(transport.aborted)
        self.clock.advance(0.1)
        self.assertTrue(transport.aborted)
        self.assertEqual(factory.stats.timedOut, 1)


class SharedTimeoutTests(SynchronousTestCase):
    """
    The connections of a small service share one timer for their timeouts
    (L{services.net.idletimeout}), with the semantics each service had with
    one timer per connection.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()

    def test_discardConnectionsShareOneTimer(self) -> None:
        """
        Many idle discard connections hold one delayed call; each still
        expires C{timeout} seconds after its own last read, the others
        staying open, and the last one gone leaves no timer.
        """
        factory = SmallServiceFactory("discard", Discard, timeout=30, reactor=self.clock)
        first, firstTransport = connect(factory)
        self.clock.advance(10)
        second, secondTransport = connect(factory)
        third, thirdTransport = connect(factory)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(15)
        third.dataReceived(b"x")  # now 25: third's deadline is 55
        self.clock.advance(5)  # 30: the first expires
        self.assertEqual(
            (firstTransport.aborted, secondTransport.aborted, thirdTransport.aborted),
            (True, False, False),
        )
        first.connectionLost()
        self.clock.advance(10)  # 40: the second expires
        self.assertEqual((secondTransport.aborted, thirdTransport.aborted), (True, False))
        second.connectionLost()
        self.clock.advance(14.9)
        self.assertFalse(thirdTransport.aborted)
        third.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual((factory.stats.timedOut, factory.stats.current), (2, 0))

    def test_noTimeoutNoTimer(self) -> None:
        """
        Without a timeout, no connection is ever timed.
        """
        factory = SmallServiceFactory("discard", Discard, reactor=self.clock)
        protocol, transport = connect(factory)
        protocol.dataReceived(b"x")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10**6)
        self.assertFalse(transport.aborted)

    def test_chargenTimedOnlyWhilePaused(self) -> None:
        """
        A chargen connection is timed only while paused: resuming stops the
        timer (none is left), pausing again starts it from zero, and a
        connection lost while paused leaves none either.
        """
        factory = SmallServiceFactory("chargen", Chargen, timeout=60, reactor=self.clock)
        protocol, transport = connect(factory)  # paused at once: the client reads nothing
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(50)
        transport.drain()  # resumed, then paused again by the next writes
        self.clock.advance(59)
        self.assertFalse(transport.aborted)
        protocol.resumeProducing()
        protocol.stopProducing()  # stays unpaused and silent
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(600)
        self.assertFalse(transport.aborted)
        protocol.pauseProducing()
        protocol.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(factory.stats.timedOut, 0)

    def test_chargenPauseAgainRestarts(self) -> None:
        """
        A second pause while paused restarts the timeout, as
        C{TimeoutMixin.setTimeout} did.
        """
        factory = SmallServiceFactory("chargen", Chargen, timeout=60, reactor=self.clock)
        protocol, transport = connect(factory)
        self.clock.advance(30)
        protocol.pauseProducing()
        self.clock.advance(59)
        self.assertFalse(transport.aborted)
        self.clock.advance(1)
        self.assertTrue(transport.aborted)
        self.assertEqual(factory.stats.timedOut, 1)

    def test_manyPausedChargensOneTimer(self) -> None:
        """
        Paused chargen connections share one timer and expire in the order
        they were paused.
        """
        factory = SmallServiceFactory("chargen", Chargen, timeout=60, reactor=self.clock)
        transports = []
        for _ in range(3):
            transports.append(connect(factory)[1])
            self.clock.advance(1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(57)  # 60: the first was paused at 0
        self.assertEqual([t.aborted for t in transports], [True, False, False])
        self.clock.advance(1)
        self.assertEqual([t.aborted for t in transports], [True, True, False])

    def test_answerTimeoutNotRestartedByData(self) -> None:
        """
        What a daytime client sends does not give it more time: the answer
        must be sent within C{timeout} seconds of connecting.
        """
        factory = SmallServiceFactory(
            "daytime", Answer, timeout=10, reactor=self.clock, answer=daytimeAnswer
        )
        protocol, transport = connect(factory)
        self.clock.advance(5)
        protocol.dataReceived(b"hello")
        self.clock.advance(5)
        self.assertTrue(transport.aborted)
        self.assertEqual(factory.stats.timedOut, 1)

    def test_changedTimeout(self) -> None:
        """
        A changed C{timeout} applies to the connections made after it.
        """
        factory = SmallServiceFactory("discard", Discard, timeout=30, reactor=self.clock)
        _, before = connect(factory)
        factory.timeout = 5
        _, after = connect(factory)
        self.clock.advance(5)
        self.assertEqual((before.aborted, after.aborted), (False, True))
        self.clock.advance(25)
        self.assertTrue(before.aborted)


class FactoryTests(SynchronousTestCase):
    """
    The factory caps connections as echo's does.
    """

    def test_maxConnections(self) -> None:
        """
        Beyond C{maxConnections} open, new connections are refused and
        counted.
        """
        factory = SmallServiceFactory("discard", Discard, maxConnections=2, reactor=MemoryReactorClock())
        connect(factory)
        connect(factory)
        self.assertIsNone(factory.buildProtocol(PEER))
        self.assertEqual(factory.stats.refused, 1)


class MakeSmallServiceTests(SynchronousTestCase):
    """
    L{makeSmallService} builds one listener per endpoint, named after the
    service.
    """

    def test_listeners(self) -> None:
        """
        Each endpoint of C{listen} gets a listener with the settings'
        backlog, and the factory the settings' values.
        """
        reactor = MemoryReactorClock()
        settings = SmallServiceSettings(
            listen=("tcp:10019", "tcp:10020"),
            socketOptions=SocketOptions(backlog=7),
            rate=5,
            timeout=3,
        )
        service = makeSmallService("chargen", settings, reactor)
        self.assertEqual(service.name, "chargen")
        service.privilegedStartService()
        self.assertEqual([(p[0], p[2]) for p in reactor.tcpServers], [(10019, 7), (10020, 7)])
        factory = reactor.tcpServers[0][1]
        self.assertIs(factory.protocol, Chargen)
        self.assertEqual((factory.rate, factory.timeout), (5, 3))

    def test_answers(self) -> None:
        """
        Daytime, time and qotd get their answers; qotd the built-in quote
        without quotes, or its own, one a day.
        """
        reactor = MemoryReactorClock()
        settings = SmallServiceSettings(listen=("tcp:10013",))
        for name, expected in [
            ("daytime", daytimeAnswer(0)),
            ("time", timeAnswer(0)),
            ("qotd", BUILTIN_QUOTE.encode() + b"\r\n"),
        ]:
            service = makeSmallService(name, settings, reactor)
            factory = next(iter(service)).factory
            self.assertEqual(factory.answer(0), expected, name)
        quoting = SmallServiceSettings(listen=("tcp:10017",), quotes=("first", "second"))
        service = makeSmallService("qotd", quoting, reactor)
        self.assertEqual(next(iter(service)).factory.answer(86400), b"second\r\n")
