# -*- test-case-name: tests.unit.net.test_proxyprotocol -*-
"""
Tests for L{services.net.proxyheader}: the PROXY header is read in full, in
any number of pieces, before the wrapped protocol exists.
"""

from __future__ import annotations

import socket
import struct

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from services import logs
from services.echo._tcp import EchoFactory
from services.net.proxyheader import (
    HEADER_TIMEOUT,
    MalformedHeader,
    ProxyHeaderEndpoint,
    ProxyHeaderFactory,
    parseHeader,
)
from services.stats import ConnectionStats

BALANCER = IPv4Address("TCP", "127.0.0.9", 40000)
LISTENER = IPv4Address("TCP", "127.0.0.1", 8007)
V1 = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n"
V1_IPV6 = b"PROXY TCP6 2001:db8::10 2001:db8::1 56324 443\r\n"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(
    source: str = "192.0.2.10",
    destination: str = "198.51.100.1",
    sport: int = 56324,
    dport: int = 443,
    tlv: bytes = b"",
) -> bytes:
    """
    A version 2 PROXY header for a TCP over IPv4 connection, with optional
    trailing TLV bytes.
    """
    body = socket.inet_aton(source) + socket.inet_aton(destination)
    body += struct.pack("!HH", sport, dport) + tlv
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


V2 = v2()
V2_LOCAL = V2_SIGNATURE + b"\x20\x00\x00\x00"


class Recorder(Protocol):
    """
    Records what the wrapper hands it, including the peer it saw when it was
    connected.
    """

    def __init__(self) -> None:
        self.received = b""
        self.peerAtConnect = None
        self.hostAtConnect = None
        self.lost = None

    def connectionMade(self) -> None:
        """
        Note the addresses the transport gives now.
        """
        self.peerAtConnect = self.transport.getPeer()
        self.hostAtConnect = self.transport.getHost()

    def dataReceived(self, data: bytes) -> None:
        """
        Keep C{data}.
        """
        self.received += data

    def connectionLost(self, reason: object) -> None:
        """
        Keep the reason.
        """
        self.lost = reason


class RecorderFactory(Factory):
    """
    Builds L{Recorder}s and remembers the addresses C{buildProtocol} got.
    """

    protocol = Recorder

    def __init__(self) -> None:
        self.built: list[Recorder] = []
        self.addresses: list[object] = []

    def buildProtocol(self, addr: object) -> Recorder:
        """
        Build a L{Recorder}, noting C{addr}.
        """
        self.addresses.append(addr)
        protocol = Factory.buildProtocol(self, addr)
        self.built.append(protocol)
        return protocol


class ParseHeaderTests(SynchronousTestCase):
    """
    Tests for L{parseHeader}.
    """

    def test_v1(self) -> None:
        """
        A version 1 header gives the source and destination addresses and the
        bytes after the CRLF.
        """
        info, rest = parseHeader(V1 + b"hello")
        self.assertEqual(info.source, IPv4Address("TCP", "192.0.2.10", 56324))
        self.assertEqual(info.destination, IPv4Address("TCP", "198.51.100.1", 443))
        self.assertEqual(rest, b"hello")

    def test_v1IPv6(self) -> None:
        """
        A version 1 TCP6 header gives IPv6 addresses.
        """
        info, rest = parseHeader(V1_IPV6)
        self.assertEqual(info.source, IPv6Address("TCP", "2001:db8::10", 56324))
        self.assertEqual(rest, b"")

    def test_v1Unknown(self) -> None:
        """
        C{PROXY UNKNOWN} is valid and names no address.
        """
        info, rest = parseHeader(b"PROXY UNKNOWN\r\nx")
        self.assertIsNone(info.source)
        self.assertEqual(rest, b"x")

    def test_v2(self) -> None:
        """
        A version 2 header, TLVs included, gives the addresses and the bytes
        after its announced length.
        """
        info, rest = parseHeader(v2(tlv=b"\x04\x00\x01X") + b"data")
        self.assertEqual(info.source, IPv4Address("TCP", "192.0.2.10", 56324))
        self.assertEqual(rest, b"data")

    def test_v2Local(self) -> None:
        """
        A version 2 C{LOCAL} header (a balancer's health check) names no
        address.
        """
        info, rest = parseHeader(V2_LOCAL)
        self.assertIsNone(info.source)

    def test_incompleteIsNone(self) -> None:
        """
        Every proper prefix of a valid header is incomplete, not malformed.
        """
        for header in (V1, V1_IPV6, V2):
            for n in range(len(header)):
                self.assertIsNone(parseHeader(header[:n]), header[:n])

    def test_malformed(self) -> None:
        """
        Bytes that cannot begin a header, or a header with bad fields, raise
        L{MalformedHeader}.
        """
        for data in [
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 x 2\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY " + b"1" * 200,
            V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,
            V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,
            V2_SIGNATURE + b"\x21\x51\x00\x0c" + b"\x00" * 12,
        ]:
            self.assertRaises(MalformedHeader, parseHeader, data)


class ProxyHeaderProtocolTests(SynchronousTestCase):
    """
    Tests for L{ProxyHeaderFactory} and its protocol.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.stats = ConnectionStats()
        self.wrapped = RecorderFactory()
        self.factory = ProxyHeaderFactory(self.wrapped, self.clock, self.stats)

    def connect(self) -> tuple[object, StringTransport]:
        """
        A new wrapped connection from the balancer, on a L{StringTransport}.
        """
        protocol = self.factory.buildProtocol(BALANCER)
        transport = StringTransport(hostAddress=LISTENER, peerAddress=BALANCER)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_connectionMadeSeesRealClient(self) -> None:
        """
        The wrapped protocol is built with the real client's address and,
        from C{connectionMade} on, its transport's C{getPeer} and C{getHost}
        return the header's addresses.
        """
        protocol, transport = self.connect()
        self.assertEqual(self.wrapped.built, [])
        protocol.dataReceived(V1 + b"payload")
        [recorder] = self.wrapped.built
        real = IPv4Address("TCP", "192.0.2.10", 56324)
        self.assertEqual(self.wrapped.addresses, [real])
        self.assertEqual(recorder.peerAtConnect, real)
        self.assertEqual(recorder.hostAtConnect, IPv4Address("TCP", "198.51.100.1", 443))
        self.assertEqual(recorder.received, b"payload")

    def test_splitByteByByte(self) -> None:
        """
        A header that arrives one byte per read (v1 and v2), followed by data
        in the same read as its last byte, is reassembled.
        """
        for header in (V1, V1_IPV6, V2, v2(tlv=b"\x04\x00\x02AB")):
            self.wrapped.built.clear()
            protocol, transport = self.connect()
            for i in range(len(header) - 1):
                protocol.dataReceived(header[i : i + 1])
                self.assertEqual(self.wrapped.built, [])
            protocol.dataReceived(header[-1:] + b"abc")
            protocol.dataReceived(b"def")
            [recorder] = self.wrapped.built
            self.assertEqual(recorder.received, b"abcdef")
            self.assertFalse(transport.disconnecting)
            self.assertIsNotNone(recorder.peerAtConnect.host)

    def test_v2RealClient(self) -> None:
        """
        A version 2 header sets the peer too.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(v2(source="203.0.113.7", sport=1234))
        [recorder] = self.wrapped.built
        self.assertEqual(recorder.peerAtConnect, IPv4Address("TCP", "203.0.113.7", 1234))

    def test_localKeepsConnectionPeer(self) -> None:
        """
        A header that names no address (a health check) leaves the
        connection's own peer in place.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(V2_LOCAL)
        [recorder] = self.wrapped.built
        self.assertEqual(recorder.peerAtConnect, BALANCER)

    def test_malformedClosesQuietly(self) -> None:
        """
        A malformed header closes the connection, counts it, logs only at
        debug level, and never builds the wrapped protocol.
        """
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, "info")
        protocol, transport = self.connect()
        with capturedLogs() as events:
            protocol.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
            protocol.dataReceived(b"more")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.stats.proxyMalformed, 1)
        self.assertEqual(self.wrapped.built, [])
        self.assertEqual([e["log_level"] for e in events], [LogLevel.debug])
        self.assertNotIn("log_failure", events[0])
        protocol.connectionLost(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout(self) -> None:
        """
        A connection that sends no complete header within the timeout is
        closed and counted; a complete header cancels the timer.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(V1[:10])
        self.clock.advance(HEADER_TIMEOUT - 0.01)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.01)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.stats.proxyTimedOut, 1)

        protocol, transport = self.connect()
        protocol.dataReceived(V1)
        self.clock.advance(HEADER_TIMEOUT * 2)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.stats.proxyTimedOut, 1)

    def test_lostBeforeHeader(self) -> None:
        """
        A connection lost before its header cancels the timer and tells no
        wrapped protocol.
        """
        protocol, transport = self.connect()
        protocol.connectionLost(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.factory.protocols, {})

    def test_lostAfterHeader(self) -> None:
        """
        Losing the connection after the header tells the wrapped protocol.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(V1)
        protocol.connectionLost("reason")
        self.assertEqual(self.wrapped.built[0].lost, "reason")
        self.assertEqual(self.factory.protocols, {})

    def test_refusedByWrappedFactory(self) -> None:
        """
        When the wrapped factory refuses the connection (returns L{None}),
        the connection is closed.
        """
        self.wrapped.buildProtocol = lambda addr: None
        protocol, transport = self.connect()
        protocol.dataReceived(V1)
        self.assertTrue(transport.disconnecting)

    def test_halfClose(self) -> None:
        """
        The wrapper relays half-close to a wrapped protocol that supports
        it: the echo service finishes its echo after the peer's EOF.
        """
        factory = ProxyHeaderFactory(EchoFactory(reactor=self.clock), self.clock, self.stats)
        protocol = factory.buildProtocol(BALANCER)
        transport = StringTransport(hostAddress=LISTENER, peerAddress=BALANCER)
        protocol.makeConnection(transport)
        self.assertFalse(IHalfCloseableProtocol.providedBy(protocol))
        protocol.dataReceived(V1 + b"ping")
        self.assertTrue(IHalfCloseableProtocol.providedBy(protocol))
        self.assertEqual(transport.value(), b"ping")
        protocol.readConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_echoSeesRealClient(self) -> None:
        """
        The echo service logs the real client's address at connect time.
        """
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, "info")
        factory = ProxyHeaderFactory(EchoFactory(reactor=self.clock), self.clock, self.stats)
        protocol = factory.buildProtocol(BALANCER)
        with capturedLogs() as events:
            protocol.makeConnection(StringTransport(hostAddress=LISTENER, peerAddress=BALANCER))
            protocol.dataReceived(V1)
        self.assertEqual([e.get("peer") for e in events], ["192.0.2.10:56324"])

    def test_logPrefix(self) -> None:
        """
        The log prefix names the wrapped factory and the PROXY protocol.
        """
        self.assertEqual(self.factory.logPrefix(), "RecorderFactory (PROXY)")


class ProxyHeaderEndpointTests(SynchronousTestCase):
    """
    Tests for L{ProxyHeaderEndpoint}.
    """

    def test_listenWraps(self) -> None:
        """
        Listening wraps the factory in a L{ProxyHeaderFactory} with the
        endpoint's clock, stats and timeout.
        """
        from twisted.internet.endpoints import TCP4ServerEndpoint

        reactor = MemoryReactorClock()
        stats = ConnectionStats()
        endpoint = ProxyHeaderEndpoint(TCP4ServerEndpoint(reactor, 8007), reactor, stats, 1.5)
        wrapped = RecorderFactory()
        endpoint.listen(wrapped)
        factory = reactor.tcpServers[0][1]
        self.assertIsInstance(factory, ProxyHeaderFactory)
        self.assertIs(factory.wrappedFactory, wrapped)
        self.assertIs(factory.stats, stats)
        self.assertIs(factory.reactor, reactor)
        self.assertEqual(factory.headerTimeout, 1.5)
