"""
Tests for L{services.net.connections}: the registries of open echo and web
connections, and what C{/status} lists of them.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.echo._tcp import EchoFactory, EchoService
from services.web import HTTPLimits, LimitedSite
from services.net.connections import PAUSED, READING, SENDING, connectionsDocument
from services.web._service import WebService
from services.web._pages import HELLO, Hello

from tests.support import BufferingTransport
from tests.webfakes import FakeRoot


def connect(factory, clock: Clock, port: int, transport=None):
    """
    Connect a protocol of C{factory} from 127.0.0.2:C{port} over a
    L{BufferingTransport}.
    """
    peer = IPv4Address("TCP", "127.0.0.2", port)
    protocol = factory.buildProtocol(peer)
    transport = transport or BufferingTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 7007), peerAddress=peer
    )
    protocol.makeConnection(transport)
    return protocol, transport


class EchoConnectionsTests(SynchronousTestCase):
    """
    The echo service lists its open connections.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoFactory(reactor=self.clock)
        self.service = EchoService(self.factory, 1)

    def test_listing(self) -> None:
        """
        Each open connection shows its client, local endpoint, age, bytes
        and state; the newest come first and closed ones are gone.
        """
        first, t1 = connect(self.factory, self.clock, 1001)
        self.clock.advance(5)
        second, _ = connect(self.factory, self.clock, 1002)
        first.dataReceived(b"x" * 10)
        t1.peerReads()
        self.clock.advance(1)
        count, listed = self.service.connectionListing()
        self.assertEqual(count, 2)
        self.assertEqual(
            listed,
            [
                {
                    "service": "echo",
                    "client": "127.0.0.2:1002",
                    "local": "127.0.0.1:7007",
                    "age": 1.0,
                    "bytesIn": 0,
                    "bytesOut": 0,
                    "state": READING,
                },
                {
                    "service": "echo",
                    "client": "127.0.0.2:1001",
                    "local": "127.0.0.1:7007",
                    "age": 6.0,
                    "bytesIn": 10,
                    "bytesOut": 10,
                    "state": READING,
                },
            ],
        )
        second.transport.loseConnection()
        second.connectionLost(None)
        count, listed = self.service.connectionListing()
        self.assertEqual((count, [c["client"] for c in listed]), (1, ["127.0.0.2:1001"]))

    def test_states(self) -> None:
        """
        A connection with bytes queued is sending; one whose transport
        paused it (send buffer full) is paused, and its bytes out leave out
        what is still queued.
        """
        echo, transport = connect(self.factory, self.clock, 1001)
        echo.dataReceived(b"x" * 100)
        self.assertEqual(self.service.connectionListing()[1][0]["state"], SENDING)
        echo.dataReceived(b"x" * transport.bufferSize)
        [entry] = self.service.connectionListing()[1]
        self.assertEqual(entry["state"], PAUSED)
        self.assertEqual(entry["bytesIn"], 100 + transport.bufferSize)
        self.assertEqual(entry["bytesOut"], 0)
        transport.peerReads()
        [entry] = self.service.connectionListing()[1]
        self.assertEqual((entry["state"], entry["bytesOut"]), (READING, entry["bytesIn"]))


class WebConnectionsTests(SynchronousTestCase):
    """
    The web service lists its open connections.
    """

    def test_listing(self) -> None:
        """
        A web connection shows the bytes of its requests and of the response
        bodies sent; closing it removes it.
        """
        clock = Clock()
        service = WebService(clock)
        tree = Resource()
        tree.putChild(b"", Hello())
        service.site = site = LimitedSite(tree, HTTPLimits(), reactor=clock)
        channel, _ = connect(site, clock, 2001)
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        channel.dataReceived(request)
        clock.advance(2)
        count, [entry] = service.connectionListing()
        self.assertEqual(count, 1)
        self.assertEqual(entry["client"], "127.0.0.2:2001")
        self.assertEqual(entry["service"], "web")
        self.assertEqual(entry["age"], 2.0)
        self.assertEqual(entry["bytesIn"], len(request))
        self.assertEqual(entry["bytesOut"], len(HELLO))
        channel.connectionLost(None)
        self.assertEqual(service.connectionListing(), (0, []))


class DocumentTests(SynchronousTestCase):
    """
    The C{connections} of C{/status} are bounded.
    """

    def test_bounded(self) -> None:
        """
        Of the listings of several services only the C{limit} youngest are
        kept, youngest first, and the counts are of all open connections.
        """
        echo = [{"service": "echo", "age": float(a)} for a in range(0, 300, 2)]
        web = [{"service": "web", "age": float(a)} for a in range(1, 300, 2)]
        document = connectionsDocument([("echo", 1000, echo), ("web", 5, web)], limit=100)
        self.assertEqual(document["open"], 1005)
        self.assertEqual(document["byService"], {"echo": 1000, "web": 5})
        self.assertEqual([c["age"] for c in document["newest"]], [float(a) for a in range(100)])

    def test_status(self) -> None:
        """
        C{/status} lists the connections of the services that keep them,
        and has no C{connections} when none does.
        """
        from services.web._service import statusDocument

        root = FakeRoot()
        root.addListeners("udp-echo")
        self.assertNotIn("connections", statusDocument(root, 1.0))
        clock = Clock()
        factory = EchoFactory(reactor=clock)
        EchoService(factory, 1).setServiceParent(root)
        connect(factory, clock, 1001)
        document = statusDocument(root, 1.0)
        self.assertEqual(document["connections"]["open"], 1)
        self.assertEqual(document["connections"]["newest"][0]["client"], "127.0.0.2:1001")

