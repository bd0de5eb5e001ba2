"""
Tests for the backpressure of L{services.web._channel.LimitedChannel}: a
client that pipelines requests without reading the responses stops being
read from and parsed, and a response that makes no progress for
C{sendTimeout} seconds is aborted; driven through a transport with a send
buffer (L{BufferingTransport}) and a L{Clock}.
"""

from __future__ import annotations

import re

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.web import HTTPLimits, LimitedSite
from services.web._channel import LimitedChannel
from services.stats import WebStats
from services.web._pages import Hello

from tests.support import BufferingTransport

GET = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"


class Big(Resource):
    """
    Answers 4 KiB in one write: more than the transport's buffer.
    """

    isLeaf = True

    def render_GET(self, request: object) -> bytes:
        return b"x" * 4096


class ChannelMixin:
    """
    A L{LimitedSite} serving C{/} (Hello) and C{/big}, and connections to
    it over a L{BufferingTransport}.
    """

    limits = HTTPLimits(sendTimeout=60, headerTimeout=10)

    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = WebStats()
        root = Resource()
        root.putChild(b"", Hello())
        root.putChild(b"big", Big())
        self.site = LimitedSite(
            root, self.limits, self.stats, reactor=self.clock
        )

    def connect(self) -> tuple[LimitedChannel, BufferingTransport]:
        address = IPv4Address("TCP", "127.0.0.1", 5000)
        channel = self.site.buildProtocol(address)
        transport = BufferingTransport(peerAddress=address)
        channel.makeConnection(transport)
        return channel, transport


class PipeliningTests(ChannelMixin, SynchronousTestCase):
    """
    Pipelined requests are parsed only as fast as the client reads the
    responses.
    """

    def test_notParsedWhileBufferFull(self) -> None:
        """
        Of 200 pipelined requests received at once, only those answered
        before the send buffer filled are answered, and the transport stops
        reading; as the client reads, the rest are answered, in order.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"".join(b"GET /?%d HTTP/1.1\r\nHost: web\r\n\r\n" % i for i in range(200)))
        self.assertLess(transport.value().count(b"HTTP/1.1 200 OK"), 10)
        self.assertEqual(transport.producerState, "paused")
        received = b""
        for _ in range(1000):
            received += transport.peerReads()
            if received.count(b"HTTP/1.1 200 OK") == 200:
                break
        self.assertEqual(received.count(b"HTTP/1.1 200 OK"), 200)
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(self.stats.requests, 200)

    def test_headerDeadlineWaits(self) -> None:
        """
        A complete pipelined request held back because the client does not
        read is not answered 408 when the header deadline passes: the
        deadline starts once it is parsed.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n" + GET)
        self.assertEqual(transport.value().count(b"HTTP/1.1 "), 1)
        self.clock.advance(30)
        self.assertEqual(self.stats.headerTimeouts, 0)
        received = transport.peerReads() + transport.peerReads()
        self.assertEqual(re.findall(rb"HTTP/1.1 (\d+)", received), [b"200", b"200"])

    def test_notReadWhileAnswering(self) -> None:
        """
        While a response fills the send buffer, the transport stops reading
        (twisted.web goes on reading while a request is answered), and
        reads again once the client has read it.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertEqual(transport.producerState, "paused")
        transport.peerReads()
        self.assertEqual(transport.producerState, "producing")


class SendTimeoutTests(ChannelMixin, SynchronousTestCase):
    """
    A response that makes no progress for C{sendTimeout} is aborted and
    counted in C{sendTimeouts} (the idle timeout is off here).
    """

    limits = HTTPLimits(sendTimeout=60, idleTimeout=0)

    def test_unreadResponseAborted(self) -> None:
        """
        A response the client reads none of is aborted C{sendTimeout}
        seconds after it filled the buffer, and counted.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n")
        self.clock.advance(59)
        self.assertFalse(transport.aborted)
        self.clock.advance(1)
        self.assertTrue(transport.aborted)
        self.assertEqual(self.stats.sendTimeouts, 1)

    def test_slowReaderKept(self) -> None:
        """
        A client that reads some of the response in each period keeps its
        connection; the send timeout counts from its last progress.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n")
        for _ in range(5):
            self.clock.advance(59)
            transport.peerReads(10)
        self.clock.advance(60)
        self.assertFalse(transport.aborted)
        self.clock.advance(60)
        self.assertTrue(transport.aborted)

    def test_drainedStopsTimer(self) -> None:
        """
        Once the client has read everything, no send timeout is pending.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n")
        transport.peerReads()
        self.assertEqual(
            [c for c in self.clock.getDelayedCalls() if "SendTimer" in repr(c)], []
        )
        self.clock.advance(120)
        self.assertFalse(transport.aborted)
        self.assertEqual(self.stats.sendTimeouts, 0)

    def test_off(self) -> None:
        """
        With C{sendTimeout} 0, an unread response is never aborted by it.
        """
        self.site = LimitedSite(Big(), HTTPLimits(sendTimeout=0, idleTimeout=0), reactor=self.clock)
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n")
        self.clock.advance(3600)
        self.assertFalse(transport.aborted)


class IdleWhileSendingTests(ChannelMixin, SynchronousTestCase):
    """
    A client that reads its responses slowly is not idle: the idle timeout
    does not close it while the server still has bytes for it (the send
    timeout covers a client that stopped reading).
    """

    limits = HTTPLimits(sendTimeout=60, headerTimeout=10, idleTimeout=5)

    def test_slowReaderKept(self) -> None:
        """
        200 pipelined requests read back a little every 4 seconds (under the
        send timeout, but 800 s in all, far past the 5 s idle timeout) are
        all answered, and no idle timeout is counted.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"".join(b"GET /?%d HTTP/1.1\r\nHost: web\r\n\r\n" % i for i in range(200)))
        received = b""
        for _ in range(1000):
            self.clock.advance(4)
            received += transport.peerReads()
            if received.count(b"HTTP/1.1 200 OK") == 200:
                break
        self.assertEqual(received.count(b"HTTP/1.1 200 OK"), 200)
        self.assertEqual((self.stats.idleTimeouts, self.stats.sendTimeouts), (0, 0))

    def test_oneSlowResponse(self) -> None:
        """
        One response read 512 bytes every 4 seconds (32 s in all, past the
        5 s idle timeout) is read to its end.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /big HTTP/1.1\r\nHost: web\r\n\r\n")
        received = b""
        while not received.endswith(b"x" * 4096) and not transport.disconnecting:
            self.clock.advance(4)
            received += transport.peerReads(512)
        self.assertEqual(received.partition(b"\r\n\r\n")[2], b"x" * 4096)
        self.assertEqual((self.stats.idleTimeouts, transport.disconnecting), (0, False))

    def test_idleAfterwards(self) -> None:
        """
        Once every response is read, the idle timeout applies again.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET * 50)
        while transport.peerReads():
            self.clock.advance(4)
        self.clock.advance(5)
        self.assertEqual(self.stats.idleTimeouts, 1)
