"""
Tests for L{services.echo._tcp}: the protocol over StringTransport, the
factory's limits, and the service builder over MemoryReactor.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionDone
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from services import logs
from services.echo import Echo, EchoFactory, EchoSettings, makeEchoService
from services.net.listener import ListenerService
from services.net.sockets import ReusePortEndpoint, SocketOptions
from services.stats import ConnectionStats

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class AbortableStringTransport(StringTransport):
    """
    A StringTransport that records abortConnection.
    """

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()


def connect(factory: EchoFactory) -> tuple[Echo, AbortableStringTransport]:
    """
    Build a protocol from C{factory} and connect it to a fresh transport.
    """
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, Echo)
    transport = AbortableStringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


class EchoProtocolTests(SynchronousTestCase):
    """
    L{Echo} writes back what it receives, in order.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.factory = EchoFactory(reactor=self.clock)

    def test_interfaces(self) -> None:
        """
        Echo is a push producer and a half-closeable protocol.
        """
        protocol, _ = connect(self.factory)
        verifyObject(IPushProducer, protocol)
        verifyObject(IHalfCloseableProtocol, protocol)

    def test_echoesInOrder(self) -> None:
        """
        Every chunk is written back, in the order received.
        """
        protocol, transport = connect(self.factory)
        for chunk in (b"hello", b"", b"\x00\xff", b"world" * 1000):
            protocol.dataReceived(chunk)
        self.assertEqual(transport.value(), b"hello\x00\xff" + b"world" * 1000)

    def test_countsBytes(self) -> None:
        """
        Bytes in and out are counted on the connection and in the stats.
        """
        protocol, _ = connect(self.factory)
        protocol.dataReceived(b"abc")
        protocol.dataReceived(b"defg")
        self.assertEqual(protocol.bytesIn, 7)
        stats = self.factory.stats
        self.assertEqual((stats.bytesIn, stats.bytesOut), (7, 7))

    def test_registersAsStreamingProducer(self) -> None:
        """
        On connection the protocol becomes the transport's streaming
        producer, so the transport can pause it when its buffer fills.
        """
        protocol, transport = connect(self.factory)
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)

    def test_pauseStopsReading(self) -> None:
        """
        When the transport pauses the protocol (send buffer full), the
        protocol pauses reading from the peer; resuming resumes it.
        """
        protocol, transport = connect(self.factory)
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "producing")

    def test_halfCloseFinishesThenCloses(self) -> None:
        """
        When the peer stops sending, the echo closes after writing what it
        holds (loseConnection, not abort).
        """
        protocol, transport = connect(self.factory)
        protocol.dataReceived(b"last words")
        protocol.readConnectionLost()
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        self.assertEqual(transport.value(), b"last words")

    def test_writeSideClosed(self) -> None:
        """
        When our write side is shut, there is nothing left to do: close.
        """
        protocol, transport = connect(self.factory)
        protocol.writeConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_connectionCounts(self) -> None:
        """
        Connections are counted while open and in total.
        """
        first, _ = connect(self.factory)
        second, _ = connect(self.factory)
        stats = self.factory.stats
        self.assertEqual((stats.current, stats.accepted), (2, 2))
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((stats.current, stats.accepted), (1, 2))

    def test_debugLogsConnectAndDisconnect(self) -> None:
        """
        At debug level, connect and disconnect are logged with the peer, the
        bytes echoed and the duration, as format fields.
        """
        previous = logs.getLevel()
        self.addCleanup(logs.setLevel, previous)
        logs.setLevel("debug")
        with capturedLogs() as events:
            protocol, _ = connect(self.factory)
            protocol.dataReceived(b"12345")
            self.clock.advance(2.5)
            protocol.connectionLost(Failure(ConnectionDone()))
        ours = [e for e in events if e.get("log_namespace", "").startswith("services.echo._tcp")]
        self.assertEqual([e["log_level"] for e in ours], [LogLevel.debug, LogLevel.debug])
        self.assertEqual(ours[0]["peer"], "127.0.0.1:40000")
        self.assertEqual(ours[1]["bytes"], 5)
        self.assertEqual(ours[1]["duration"], 2.5)

    def test_noConnectionLogsAtInfo(self) -> None:
        """
        At info level, connections are not logged at all.
        """
        previous = logs.getLevel()
        self.addCleanup(logs.setLevel, previous)
        logs.setLevel("info")
        with capturedLogs() as events:
            protocol, _ = connect(self.factory)
            protocol.dataReceived(b"x")
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(
            [e for e in events if e.get("log_namespace", "").startswith("services.")], []
        )


class IdleTimeoutTests(SynchronousTestCase):
    """
    The idle timeout runs on the factory's clock.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.factory = EchoFactory(idleTimeout=10, reactor=self.clock)

    def test_silentConnectionAborted(self) -> None:
        """
        A connection that sends nothing for idleTimeout seconds is aborted
        (not merely closed: a peer that does not read would keep it open)
        and counted.
        """
        _, transport = connect(self.factory)
        self.clock.advance(9.9)
        self.assertFalse(transport.aborted)
        self.clock.advance(0.2)
        self.assertTrue(transport.aborted)
        self.assertEqual(self.factory.stats.timedOut, 1)

    def test_dataResetsTimer(self) -> None:
        """
        Every chunk received restarts the timer.
        """
        protocol, transport = connect(self.factory)
        for _ in range(5):
            self.clock.advance(8)
            protocol.dataReceived(b"x")
        self.assertFalse(transport.aborted)
        self.clock.advance(10.1)
        self.assertTrue(transport.aborted)

    def test_closedConnectionCancelsTimer(self) -> None:
        """
        A closed connection leaves no timer behind.
        """
        protocol, _ = connect(self.factory)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_oneTimerForAllConnections(self) -> None:
        """
        The connections of a factory share one timer, and each still times
        out C{idleTimeout} seconds after it last received something.
        """
        first, firstTransport = connect(self.factory)
        self.clock.advance(4)
        second, secondTransport = connect(self.factory)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(4)
        first.dataReceived(b"x")
        self.clock.advance(6.1)
        self.assertEqual((firstTransport.aborted, secondTransport.aborted), (False, True))
        self.clock.advance(4)
        self.assertTrue(firstTransport.aborted)
        self.assertEqual(self.factory.stats.timedOut, 2)

    def test_dataAfterTimeout(self) -> None:
        """
        Bytes handed to a connection the timeout has aborted (an in-memory
        transport does not stop reading) are echoed without restarting a
        timer.
        """
        protocol, transport = connect(self.factory)
        self.clock.advance(10)
        protocol.dataReceived(b"late")
        self.assertEqual(transport.value(), b"late")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_zeroDisables(self) -> None:
        """
        An idle timeout of 0 schedules nothing.
        """
        factory = EchoFactory(idleTimeout=0, reactor=self.clock)
        connect(factory)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ConnectionLimitTests(SynchronousTestCase):
    """
    The factory refuses connections beyond maxConnections.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.factory = EchoFactory(maxConnections=2, reactor=self.clock)

    def test_refusesBeyondLimit(self) -> None:
        """
        With the limit reached, buildProtocol returns None (Twisted closes
        the socket at once) and the refusal is counted.
        """
        connect(self.factory)
        connect(self.factory)
        self.assertIsNone(self.factory.buildProtocol(PEER))
        self.assertIsNone(self.factory.buildProtocol(PEER))
        self.assertEqual(self.factory.stats.refused, 2)
        self.assertEqual(self.factory.stats.current, 2)

    def test_acceptsAgainAfterClose(self) -> None:
        """
        When a connection closes, a new one is accepted again.
        """
        first, _ = connect(self.factory)
        connect(self.factory)
        self.assertIsNone(self.factory.buildProtocol(PEER))
        first.connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(self.factory.buildProtocol(PEER))

    def test_warnsOncePerEpisode(self) -> None:
        """
        Reaching the limit logs one warning, not one per refusal; a new
        episode after recovering warns again.
        """
        with capturedLogs() as events:
            first, _ = connect(self.factory)
            connect(self.factory)
            for _ in range(5):
                self.factory.buildProtocol(PEER)
            first.connectionLost(Failure(ConnectionDone()))
            connect(self.factory)
            self.factory.buildProtocol(PEER)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 2)
        self.assertEqual(warnings[0]["limit"], 2)

    def test_noLimit(self) -> None:
        """
        maxConnections None or 0 means no limit.
        """
        factory = EchoFactory(maxConnections=0, reactor=self.clock)
        for _ in range(50):
            connect(factory)
        self.assertEqual(factory.stats.refused, 0)


class ServiceTests(SynchronousTestCase):
    """
    L{makeEchoService} builds one listener per endpoint, sharing a factory.
    """

    def test_listenersOnMemoryReactor(self) -> None:
        """
        Starting the service listens on every endpoint with the configured
        backlog, and the shared stats object is the one given.
        """
        reactor = MemoryReactorClock()
        stats = ConnectionStats()
        settings = EchoSettings(
            listen=("tcp:8007:interface=127.0.0.1", "tcp:9007:backlog=5", "unix:/tmp/e.sock"),
            socketOptions=SocketOptions(backlog=77),
            idleTimeout=5,
            maxConnections=9,
        )
        service = makeEchoService(settings, reactor, stats)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            [(port, backlog, interface) for port, _f, backlog, interface in reactor.tcpServers],
            [(8007, 77, "127.0.0.1"), (9007, 5, "")],
        )
        self.assertEqual(reactor.unixServers[0][0], "/tmp/e.sock")
        self.assertEqual(reactor.unixServers[0][2], 77)
        factory = reactor.tcpServers[0][1]
        self.assertIsInstance(factory, EchoFactory)
        self.assertIs(factory.stats, stats)
        self.assertEqual((factory.idleTimeout, factory.maxConnections), (5, 9))
        self.assertIs(factory.reactor, reactor)
        self.assertEqual(len([s for s in service if isinstance(s, ListenerService)]), 3)

    def test_reusePortEndpoint(self) -> None:
        """
        With reuseport, TCP listeners bind through a reuse-port binding.
        """
        reactor = MemoryReactorClock()
        service = makeEchoService(
            EchoSettings(
                listen=("tcp:8007:interface=127.0.0.1", "unix:/tmp/x"),
                socketOptions=SocketOptions(reuseport=True),
            ),
            reactor,
        )
        endpoints = [s.endpoint for s in service]
        self.assertIsInstance(endpoints[0], ReusePortEndpoint)
        self.assertNotIsInstance(endpoints[1], ReusePortEndpoint)


class RecordingNoDelayTransport(AbortableStringTransport):
    """
    A transport with C{setTcpNoDelay}, which records its calls, over a
    socket of address family C{family}.
    """

    def __init__(self, family: int = socket.AF_INET) -> None:
        AbortableStringTransport.__init__(self, peerAddress=PEER)
        self.calls: list[bool] = []
        self.handle = socket.socket(family, socket.SOCK_STREAM)

    def getHandle(self) -> socket.socket:
        return self.handle

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.calls.append(enabled)


class NoDelayTests(SynchronousTestCase):
    """
    Echo connections get C{TCP_NODELAY} unless C{[echo] nodelay = no}.
    """

    def connectWith(self, transport: StringTransport, **kwargs: Any) -> Echo:
        factory = EchoFactory(reactor=MemoryReactorClock(), **kwargs)
        protocol = factory.buildProtocol(PEER)
        assert isinstance(protocol, Echo)
        protocol.makeConnection(transport)
        return protocol

    def test_setOnTCP(self) -> None:
        """
        A TCP transport is asked for C{TCP_NODELAY} once, when the
        connection is made.
        """
        transport = RecordingNoDelayTransport()
        self.addCleanup(transport.handle.close)
        self.connectWith(transport)
        self.assertEqual(transport.calls, [True])

    def test_off(self) -> None:
        """
        With C{noDelay=False} (C{nodelay = no}) the transport is left as it
        is.
        """
        transport = RecordingNoDelayTransport()
        self.addCleanup(transport.handle.close)
        self.connectWith(transport, noDelay=False)
        self.assertEqual(transport.calls, [])

    def test_unixSocketsLeftAlone(self) -> None:
        """
        A UNIX socket's transport (a TCP one in Twisted, which logs an error
        when the option is refused) is not asked, and keeps echoing; IPv6
        TCP is.
        """
        unixTransport = RecordingNoDelayTransport(socket.AF_UNIX)
        self.addCleanup(unixTransport.handle.close)
        protocol = self.connectWith(unixTransport)
        protocol.dataReceived(b"still here")
        self.assertEqual(unixTransport.calls, [])
        self.assertEqual(unixTransport.value(), b"still here")
        tcp6 = RecordingNoDelayTransport(socket.AF_INET6)
        self.addCleanup(tcp6.handle.close)
        self.connectWith(tcp6)
        self.assertEqual(tcp6.calls, [True])

    def test_transportWithout(self) -> None:
        """
        Transports without the method (in-memory ones) are left alone.
        """
        transport = AbortableStringTransport(peerAddress=PEER)
        self.connectWith(transport).dataReceived(b"x")
        self.assertEqual(transport.value(), b"x")

    def test_realSocket(self) -> None:
        """
        On a real accepted TCP socket the option is what C{[echo] nodelay}
        says.
        """
        import select

        from tests.support import buildReactor

        for nodelay in (True, False):
            reactor = buildReactor(self)
            factory = EchoFactory(reactor=reactor, noDelay=nodelay)
            port = reactor.listenTCP(0, factory, interface="127.0.0.1")
            client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
            self.addCleanup(client.close)
            select.select([port.socket], [], [], 5)
            port.doRead()
            (connection,) = [s for s in reactor.getReaders() if isinstance(getattr(s, "protocol", None), Echo)]
            value = connection.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.assertEqual(bool(value), nodelay)
