"""
Tests for L{services.web._channel} and L{services.web._site}: the header deadline, the body limit, the
connection caps, the counters and the access log, driven through
L{StringTransport} and a L{Clock}.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import HTTPChannel
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from services.stats import WebStats
from services.web import HTTPLimits, LimitedSite
from services.web._channel import LimitedChannel
from services.web._pages import Hello
from services.web._rejections import errorResponse
from services.web._service import Branch

from tests.support import temporaryDirectory

GET = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"


class Upload(Resource):
    """
    Accepts a POST and answers with the size of its body.
    """

    isLeaf = True

    def __init__(self) -> None:
        Resource.__init__(self)
        self.bodies: list[bytes] = []

    def render_POST(self, request: IRequest) -> bytes:
        body = request.content.read()  # type: ignore[attr-defined]
        self.bodies.append(body)
        return b"got %d" % (len(body),)


class Slow(Resource):
    """
    Answers only when the test says so.
    """

    isLeaf = True

    def __init__(self) -> None:
        Resource.__init__(self)
        self.waiting: list[Any] = []

    def render_GET(self, request: IRequest) -> object:
        self.waiting.append(request)
        return NOT_DONE_YET


class Boom(Resource):
    """
    Fails while rendering.
    """

    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes:
        raise ZeroDivisionError("secret detail")


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that records aborts.
    """

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        StringTransport.abortConnection(self)


class LimitsTestCase(SynchronousTestCase):
    """
    A L{LimitedSite} on a L{Clock}, and connections to it.
    """

    def makeSite(self, **limits: Any) -> LimitedSite:
        defaults: dict[str, Any] = {"headerTimeout": 10.0, "idleTimeout": 60.0, "maxBody": 100}
        defaults.update(limits)
        self.clock = Clock()
        self.upload = Upload()
        self.slow = Slow()
        tree = Branch()
        tree.putChild(b"", Hello())
        tree.putChild(b"upload", self.upload)
        tree.putChild(b"slow", self.slow)
        tree.putChild(b"boom", Boom())
        self.stats = WebStats()
        self.site = LimitedSite(tree, HTTPLimits(**defaults), self.stats, reactor=self.clock)
        return self.site

    def connect(self, address: Any = None) -> tuple[LimitedChannel, RecordingTransport]:
        if not hasattr(self, "site"):
            self.makeSite()
        address = address or IPv4Address("TCP", "127.0.0.1", 40000)
        channel = self.site.buildProtocol(address)
        self.assertIsNotNone(channel, "connection refused")
        transport = RecordingTransport(peerAddress=address)
        channel.makeConnection(transport)
        self.addCleanup(self.close, channel, transport)
        return channel, transport

    def close(self, channel: LimitedChannel, transport: StringTransport) -> None:
        if transport.connected:
            transport.connected = False
            channel.connectionLost(Failure(ConnectionError("closed by the test")))

    def drip(self, channel: LimitedChannel, data: bytes, interval: float = 1.0) -> None:
        """
        Send C{data} one byte at a time, C{interval} seconds apart.
        """
        for i in range(len(data)):
            channel.dataReceived(data[i : i + 1])
            self.clock.advance(interval)


class HeaderTimeoutTests(LimitsTestCase):
    """
    Request headers must be complete within C{headerTimeout}, however
    slowly the bytes come.
    """

    def test_dripping(self) -> None:
        """
        A client that drips a byte a second (which resets Twisted's own
        timeout each time) gets 408 and is closed at exactly headerTimeout.
        """
        channel, transport = self.connect()
        self.drip(channel, b"GET / HTT")
        channel.dataReceived(b"P")
        self.clock.advance(0.999)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"/")
        self.clock.advance(0.001)
        self.assertEqual(transport.value(), errorResponse(408, b"Request Timeout"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.stats.headerTimeouts, 1)

    def test_dripsLongerThanTheDeadline(self) -> None:
        """
        With a byte every 0.5 s the deadline still falls at headerTimeout.
        """
        channel, transport = self.connect()
        self.drip(channel, b"GET / HTTP/1.1\r\nHost: web\r\n" + b"X-Slow: " + b"a" * 100, interval=0.5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n"))
        self.assertIn(b"Connection: close\r\n", transport.value())

    def test_silent(self) -> None:
        """
        A connection that sends nothing gets 408 after headerTimeout.
        """
        _, transport = self.connect()
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))
        self.assertTrue(transport.disconnecting)

    def test_inTime(self) -> None:
        """
        Headers complete within the deadline are answered; the deadline
        does not fire later.
        """
        channel, transport = self.connect()
        self.drip(channel, GET, interval=9.0 / len(GET))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(transport.value().endswith(b"Hello World"))
        self.clock.advance(30)
        self.assertNotIn(b"408", transport.value())
        self.assertEqual(self.stats.headerTimeouts, 0)

    def test_keepAliveIdleIsNotSlow(self) -> None:
        """
        A kept-alive connection that waits between requests is not timed
        out by the header deadline, only by the idle timeout.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET)
        transport.clear()
        self.clock.advance(59)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.stats.idleTimeouts, 1)
        self.assertEqual(self.stats.headerTimeouts, 0)

    def test_keepAliveNextRequestDrips(self) -> None:
        """
        On a kept-alive connection, the deadline of the next request starts
        with its first byte.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET)
        transport.clear()
        self.clock.advance(30)
        channel.dataReceived(b"G")
        self.clock.advance(9.5)
        channel.dataReceived(b"E")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))
        self.assertTrue(transport.disconnecting)

    def test_keepAliveSecondRequestInTime(self) -> None:
        """
        Several requests on one connection, each in time, are all answered.
        """
        channel, transport = self.connect()
        for _ in range(3):
            self.drip(channel, GET, interval=0.1)
            self.clock.advance(20)
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 OK"), 3)
        self.assertEqual(self.stats.headerTimeouts, 0)

    def test_pipelinedPartialRequest(self) -> None:
        """
        The start of a request that arrives with the previous one is under
        the deadline too.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET + b"GET / HT")
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 OK"), 1)
        self.clock.advance(10)
        self.assertIn(b"HTTP/1.1 408 ", transport.value())

    def test_pipelinedDuringSlowResponse(self) -> None:
        """
        A request sent while a slow response is being prepared is not timed
        out during that time; its deadline starts when its turn comes.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: web\r\n\r\nGET / HT")
        self.clock.advance(100)
        self.assertEqual(transport.value(), b"")
        request = self.slow.waiting[0]
        request.write(b"late")
        request.finish()
        self.assertIn(b"late", transport.value())
        self.assertNotIn(b"408", transport.value())
        self.clock.advance(10)
        self.assertIn(b"HTTP/1.1 408 ", transport.value())

    def test_slowResponse(self) -> None:
        """
        A response that takes long to prepare is not a header timeout.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: web\r\n\r\n")
        self.clock.advance(500)
        self.assertFalse(transport.disconnecting)
        self.slow.waiting[0].finish()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"))

    def test_dataAfterTimeoutIgnored(self) -> None:
        """
        After the 408, what the client still sends is ignored.
        """
        channel, transport = self.connect()
        self.clock.advance(10)
        answered = transport.value()
        channel.dataReceived(GET)
        self.assertEqual(transport.value(), answered)

    def test_abortsIfNotClosed(self) -> None:
        """
        A connection that does not close after the 408 (a peer that does not
        read) is aborted after Twisted's abortTimeout.
        """
        channel, transport = self.connect()
        self.clock.advance(10)
        self.assertFalse(transport.aborted)
        self.clock.advance(channel.abortTimeout)
        self.assertTrue(transport.aborted)

    def test_disabled(self) -> None:
        """
        headerTimeout 0 turns the deadline off.
        """
        self.makeSite(headerTimeout=0, idleTimeout=0)
        channel, transport = self.connect()
        self.drip(channel, b"GET / HTTP/1.1\r\nHost: web\r\nX: " + b"a" * 50, interval=1)
        self.clock.advance(1000)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timersCancelledOnClose(self) -> None:
        """
        A connection that closes leaves no timer behind.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HT")
        self.close(channel, transport)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class TimerTests(LimitsTestCase):
    """
    A connection keeps one header timer and one idle timer for its life,
    however many requests it carries, and they still fire on time.
    """

    def test_noTimerPerRequest(self) -> None:
        """
        Many keep-alive requests leave the same two timers pending: no timer
        is created or cancelled per request.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET)
        calls = list(self.clock.getDelayedCalls())
        self.assertEqual(len(calls), 2)
        for _ in range(100):
            channel.dataReceived(GET)
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 OK"), 101)
        self.assertEqual(self.clock.getDelayedCalls(), calls)

    def test_hostAskedOnce(self) -> None:
        """
        The connection's local address is asked of the transport once, not
        once per request, and requests still see it.
        """
        channel, transport = self.connect()
        asked = []
        getHost = transport.getHost
        transport.getHost = lambda: asked.append(1) or getHost()  # type: ignore[method-assign]
        for _ in range(3):
            channel.dataReceived(GET)
        self.assertEqual(asked, [1])
        self.assertEqual(channel.requests, [])
        self.assertEqual(channel.getHost(), getHost())

    def test_peerAskedOnce(self) -> None:
        """
        The client's address is asked of the transport once, not once per
        request, and requests still see it.
        """
        channel, transport = self.connect()
        asked = []
        getPeer = transport.getPeer
        transport.getPeer = lambda: asked.append(1) or getPeer()  # type: ignore[method-assign]
        seen = []
        self.site.resource.putChild(b"who", type("Who", (Resource,), {  # type: ignore[attr-defined]
            "isLeaf": True,
            "render_GET": lambda self, request: seen.append(request.getClientAddress()) or b"",
        })())
        for _ in range(3):
            channel.dataReceived(b"GET /who HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertEqual(asked, [1])
        self.assertEqual(seen, [getPeer()] * 3)

    def test_headerDeadlineAfterEarlierRequest(self) -> None:
        """
        When the timer armed for an earlier request's deadline fires during
        a later request, the later request still gets its full
        headerTimeout, and its 408 comes exactly at its deadline.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET)
        self.clock.advance(5)
        channel.dataReceived(b"GET / HT")
        self.clock.advance(9.99)
        self.assertNotIn(b"408", transport.value())
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.01)
        self.assertIn(b"HTTP/1.1 408 ", transport.value())
        self.assertTrue(transport.disconnecting)

    def test_idleDeadlineMovesWithTraffic(self) -> None:
        """
        The idle timeout counts from the end of the last response, though
        its timer was armed for the first one.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET)
        self.clock.advance(30)
        channel.dataReceived(GET)
        self.clock.advance(59.99)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.01)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.stats.idleTimeouts, 1)

    def test_idleOffWhileHandling(self) -> None:
        """
        A slow response is not cut by the idle timeout, and the idle timeout
        starts again once it is sent.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: web\r\n\r\n")
        self.clock.advance(200)
        self.assertFalse(transport.disconnecting)
        self.slow.waiting[0].finish()
        self.clock.advance(59.99)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.01)
        self.assertTrue(transport.disconnecting)


class BodyLimitTests(LimitsTestCase):
    """
    Bodies larger than maxBody are refused with 413 without being read.
    """

    def post(self, channel: LimitedChannel, length: int, extra: bytes = b"") -> None:
        channel.dataReceived(
            b"POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: %d\r\n%s\r\n" % (length, extra)
        )

    def test_declaredTooLarge(self) -> None:
        """
        A Content-Length over the limit is answered 413 as soon as the
        headers end, before any body byte; the resource never runs.
        """
        channel, transport = self.connect()
        self.post(channel, 101)
        self.assertEqual(transport.value(), errorResponse(413, b"Content Too Large"))
        self.assertEqual(self.upload.bodies, [])
        self.assertEqual(self.stats.bodyTooLarge, 1)
        self.assertFalse(transport.disconnecting, "closed before the client could read")

    def test_hugeDeclaredBody(self) -> None:
        """
        A body of 10 GiB is refused just the same, at once.
        """
        channel, transport = self.connect()
        self.post(channel, 10 * 1024**3)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))

    def test_noContinue(self) -> None:
        """
        A client that asks C{Expect: 100-continue} gets the 413 instead of
        C{100 Continue}, so it never sends the body.
        """
        channel, transport = self.connect()
        self.post(channel, 5000, b"Expect: 100-continue\r\n")
        self.assertNotIn(b"100 Continue", transport.value())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))

    def test_restDiscardedThenDropped(self) -> None:
        """
        What the client still sends is discarded, and the connection is
        dropped after lingerTimeout.
        """
        channel, transport = self.connect()
        self.post(channel, 1000)
        answered = transport.value()
        channel.dataReceived(b"x" * 1000 + GET)
        self.assertEqual(transport.value(), answered)
        self.assertEqual(self.upload.bodies, [])
        self.clock.advance(channel.lingerTimeout - 0.01)
        self.assertFalse(transport.aborted)
        self.clock.advance(0.01)
        self.assertTrue(transport.aborted)

    def test_atTheLimit(self) -> None:
        """
        A body of exactly maxBody bytes is accepted.
        """
        channel, transport = self.connect()
        self.post(channel, 100)
        channel.dataReceived(b"y" * 100)
        self.assertEqual(self.upload.bodies, [b"y" * 100])
        self.assertTrue(transport.value().endswith(b"got 100"))

    def test_chunkedTooLarge(self) -> None:
        """
        A chunked body is refused as soon as it goes over the limit; the
        resource never runs.
        """
        channel, transport = self.connect()
        channel.dataReceived(
            b"POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        channel.dataReceived(b"40\r\n" + b"a" * 64 + b"\r\n")
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"40\r\n" + b"a" * 64 + b"\r\n0\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        self.assertEqual(self.upload.bodies, [])
        self.assertEqual(self.stats.bodyTooLarge, 1)

    def test_chunkedWithinLimit(self) -> None:
        """
        A chunked body within the limit is received whole.
        """
        channel, _ = self.connect()
        channel.dataReceived(
            b"POST /upload HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"20\r\n" + b"a" * 32 + b"\r\n0\r\n\r\n"
        )
        self.assertEqual(self.upload.bodies, [b"a" * 32])

    def test_noLimit(self) -> None:
        """
        maxBody 0 accepts any size.
        """
        self.makeSite(maxBody=0)
        channel, _ = self.connect()
        self.post(channel, 200_000)
        channel.dataReceived(b"z" * 200_000)
        self.assertEqual(len(self.upload.bodies[0]), 200_000)


class ConnectionCapTests(LimitsTestCase):
    """
    Connections beyond the caps are closed at once and counted.
    """

    def test_total(self) -> None:
        """
        Past maxConnections, buildProtocol refuses; once one closes, a new
        one is accepted.
        """
        self.makeSite(maxConnections=2, maxConnectionsPerPeer=0)
        first, transport = self.connect()
        self.connect(IPv4Address("TCP", "127.0.0.2", 1))
        self.assertIsNone(self.site.buildProtocol(IPv4Address("TCP", "127.0.0.3", 1)))
        self.assertEqual((self.stats.current, self.stats.accepted, self.stats.refused), (2, 2, 1))
        self.close(first, transport)
        self.connect(IPv4Address("TCP", "127.0.0.3", 1))
        self.assertEqual(self.stats.current, 2)

    def test_perPeer(self) -> None:
        """
        Past maxConnectionsPerPeer from one address, that address is
        refused; other addresses are not.
        """
        self.makeSite(maxConnections=0, maxConnectionsPerPeer=2)
        peer = IPv4Address("TCP", "10.0.0.1", 1)
        first, transport = self.connect(peer)
        self.connect(peer)
        self.assertIsNone(self.site.buildProtocol(peer))
        self.connect(IPv4Address("TCP", "10.0.0.2", 1))
        self.assertEqual(self.stats.refused, 1)
        self.close(first, transport)
        self.connect(peer)

    def test_unixPeersOnlyTotal(self) -> None:
        """
        UNIX socket peers have no address to count by: only the total cap
        applies to them.
        """
        self.makeSite(maxConnections=3, maxConnectionsPerPeer=1)
        for _ in range(3):
            self.connect(UNIXAddress(None))
        self.assertIsNone(self.site.buildProtocol(UNIXAddress(None)))

    def test_warnsOnce(self) -> None:
        """
        Refusals log one warning until connections drop below the cap.
        """
        self.makeSite(maxConnections=1)
        self.connect()
        with capturedLogs() as events:
            for _ in range(5):
                self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2))
        warnings = [e for e in events if e["log_level"].name == "warn"]
        self.assertEqual(len(warnings), 1)
        self.assertIn("max_connections", warnings[0]["log_format"])
        self.assertEqual(self.stats.refused, 5)


class CountersTests(LimitsTestCase):
    """
    Every answered request is counted by status class, with bytes.
    """

    def test_counters(self) -> None:
        """
        Requests, response classes, and bytes in and out are counted.
        """
        channel, _ = self.connect()
        channel.dataReceived(GET)
        channel.dataReceived(b"GET /nope HTTP/1.1\r\nHost: web\r\n\r\n")
        channel.dataReceived(b"DELETE / HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertEqual(self.stats.requests, 3)
        self.assertEqual(self.stats.responses2xx, 1)
        self.assertEqual(self.stats.responses4xx, 2)
        self.assertEqual(self.stats.bytesIn, len(GET) + 33 + 32)
        self.assertGreater(self.stats.bytesOut, len(b"Hello World"))

    def test_noTraceback(self) -> None:
        """
        A resource that fails gives a 500 without traceback or detail; the
        failure goes to the log.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /boom HTTP/1.1\r\nHost: web\r\n\r\n")
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 500 "))
        for secret in (b"Traceback", b"ZeroDivisionError", b"secret detail", b".py"):
            self.assertNotIn(secret, response)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(self.stats.responses5xx, 1)
        self.assertFalse(self.site.displayTracebacks)


class MalformedRequestTests(LimitsTestCase):
    """
    Malformed requests get 4xx answers, never a 500.
    """

    def assertAnswered(self, request: bytes, codes: tuple[int, ...]) -> None:
        channel, transport = self.connect()
        channel.dataReceived(request)
        match = re.match(rb"HTTP/1.1 (\d+) ", transport.value())
        assert match is not None, transport.value()
        self.assertIn(int(match.group(1)), codes, request)

    def test_rawNul(self) -> None:
        """
        A NUL byte in the request line or a header is a 400 or 404.
        """
        self.assertAnswered(b"GET /a\x00b HTTP/1.1\r\nHost: web\r\n\r\n", (400, 404))
        self.assertAnswered(b"GET / HTTP/1.1\r\nHost: web\r\nX: a\x00b\r\n\r\n", (400,))

    def test_garbage(self) -> None:
        """
        A request line that is not HTTP is a 400.
        """
        self.assertAnswered(b"\x16\x03\x01 hello\r\n\r\n", (400,))

    def test_unknownMethod(self) -> None:
        """
        A method twisted.web does not know gets 405 at /, not 501.
        """
        self.assertAnswered(b"BREW / HTTP/1.1\r\nHost: web\r\n\r\n", (405,))

    def test_tooManyHeaderBytes(self) -> None:
        """
        Headers larger than Twisted's limit are a 400.
        """
        headers = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 1000) for i in range(20))
        self.assertAnswered(b"GET / HTTP/1.1\r\nHost: web\r\n" + headers + b"\r\n", (400,))

    def test_overlongLine(self) -> None:
        """
        A single line longer than Twisted's limit closes the connection.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertNotIn(b" 500 ", transport.value())


class RequestProcessingTests(LimitsTestCase):
    """
    L{services.web._request.LimitedRequest.process} finds and renders the
    resource as twisted.web's does, with a C{Date} header formatted once a
    second.
    """

    def responses(self, transport: StringTransport) -> list[dict[bytes, bytes]]:
        """
        The headers of each response in C{transport}, by lower-case name.
        """
        found = []
        for head in re.findall(rb"HTTP/1.1 \d+ [^\r]*\r\n(.*?)\r\n\r\n", transport.value(), re.S):
            found.append(dict((name.lower(), value) for name, value in
                              (line.split(b": ", 1) for line in head.split(b"\r\n"))))
        return found

    def test_headers(self) -> None:
        """
        A response carries twisted.web's C{Server} header, the C{Date} of the
        site's clock in HTTP format, and a C{Content-Length} set once.
        """
        self.makeSite()
        self.clock.advance(1_800_000_000.25)
        channel, transport = self.connect()
        channel.dataReceived(GET)
        (headers,) = self.responses(transport)
        self.assertEqual(headers[b"date"], b"Fri, 15 Jan 2027 08:00:00 GMT")
        self.assertEqual(headers[b"server"], b"netservices")
        self.assertEqual(headers[b"content-length"], b"11")
        self.assertEqual(transport.value().lower().count(b"content-length"), 1)
        self.assertTrue(transport.value().endswith(b"\r\n\r\nHello World"))

    def test_headersInOneWrite(self) -> None:
        """
        The status line, headers and body of a whole-body answer reach the
        transport as one write.
        """
        channel, transport = self.connect()
        writes: list[bytes] = []
        transport.write = writes.append  # type: ignore[method-assign]
        transport.writeSequence = lambda seq: self.fail(seq)  # type: ignore[method-assign]
        channel.dataReceived(GET)
        self.assertEqual(len(writes), 1, writes)
        (response,) = writes
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\nServer: netservices\r\n"), response)
        self.assertTrue(response.endswith(b"\r\nContent-Length: 11\r\n\r\nHello World"), response)

    def test_headersAsTwistedWebWritesThem(self) -> None:
        """
        The bytes are those twisted.web's own C{writeHeaders} writes,
        repeated headers included.
        """
        headers = Headers({b"content-type": [b"text/plain"], b"set-cookie": [b"a=1", b"b=2"]})
        ours, oursTransport = self.connect()
        theirs, theirsTransport = self.connect(IPv4Address("TCP", "127.0.0.1", 40001))
        ours.writeHeaders(b"HTTP/1.1", b"404", b"Not Found", headers)
        HTTPChannel.writeHeaders(theirs, b"HTTP/1.1", b"404", b"Not Found", headers)
        self.assertEqual(oursTransport.value(), theirsTransport.value())
        self.assertIn(b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n", oursTransport.value())

    def test_otherHeaderIterables(self) -> None:
        """
        Headers given as pairs (twisted.web's older interface) take
        twisted.web's path, which sanitizes them.
        """
        channel, transport = self.connect()
        channel.writeHeaders(b"HTTP/1.1", b"200", b"OK", [(b"X-A", b"1\r\nInjected: yes")])
        self.assertEqual(transport.value(), b"HTTP/1.1 200 OK\r\nX-A: 1 Injected: yes\r\n\r\n")

    def test_dateFollowsTheClock(self) -> None:
        """
        Requests within one second share its C{Date}; the next second's
        requests get the next.
        """
        self.makeSite()
        self.clock.advance(1_800_000_000.25)
        channel, transport = self.connect()
        channel.dataReceived(GET)
        self.clock.advance(0.5)
        channel.dataReceived(GET)
        self.clock.advance(0.5)
        channel.dataReceived(GET)
        dates = [headers[b"date"] for headers in self.responses(transport)]
        self.assertEqual(dates, [b"Fri, 15 Jan 2027 08:00:00 GMT"] * 2
                         + [b"Fri, 15 Jan 2027 08:00:01 GMT"])

    def test_starAndErrors(self) -> None:
        """
        C{OPTIONS *} is answered as twisted.web does, and a resource that
        raises gives a 500 without a traceback in the page.
        """
        channel, transport = self.connect()
        channel.dataReceived(b"OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"), transport.value())
        transport.clear()
        channel.dataReceived(b"GET /boom HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 500"), transport.value())
        self.assertNotIn(b"Traceback", transport.value())
        self.flushLoggedErrors()


class AccessLogTests(LimitsTestCase):
    """
    The access log is in Combined Log Format, and only when configured.
    """

    def test_combinedLogFormat(self) -> None:
        """
        Each request is one Combined Log Format line in the file.
        """
        path = temporaryDirectory(self) / "access.log"
        self.makeSite()
        site = LimitedSite(
            self.site.resource, self.site.limits, self.stats, str(path), reactor=self.clock
        )
        site.startFactory()
        self.addCleanup(site.stopFactory)
        self.site = site
        channel, _ = self.connect()
        channel.dataReceived(
            b"GET /?q=1 HTTP/1.1\r\nHost: web\r\nUser-Agent: tester/1.0\r\n"
            b"Referer: http://example.invalid/\r\n\r\n"
        )
        line = path.read_text()
        self.assertRegex(
            line,
            r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
            r'"GET /\?q=1 HTTP/1\.1" 200 11 "http://example\.invalid/" "tester/1\.0"\n$',
        )

    def test_fieldsEscaped(self) -> None:
        """
        Quotes, backslashes and control bytes in logged fields are escaped,
        so a client cannot forge or split log lines.
        """
        path = temporaryDirectory(self) / "access.log"
        self.makeSite()
        site = LimitedSite(self.site.resource, accessLog=str(path), reactor=self.clock)
        site.startFactory()
        self.addCleanup(site.stopFactory)
        self.site = site
        channel, _ = self.connect()
        channel.dataReceived(b'GET /a"b\\c\x7f HTTP/1.1\r\nHost: web\r\nUser-Agent: x" 200 0 "\x01\r\n\r\n')
        line = path.read_text()
        self.assertEqual(line.count("\n"), 1)
        self.assertIn(r'"GET /a\"b\\c\x7f HTTP/1.1" 404', line)
        self.assertIn(r'"x\" 200 0 \"\x01"', line)

    def test_rejectedLogged(self) -> None:
        """
        408 and 413 answers are logged and counted too: with the request
        line when it arrived, C{"-"} when it did not.
        """
        path = temporaryDirectory(self) / "access.log"
        self.makeSite()
        site = LimitedSite(self.site.resource, self.site.limits, self.stats, str(path), self.clock)
        site.startFactory()
        self.addCleanup(site.stopFactory)
        self.site = site
        channel, _ = self.connect()
        channel.dataReceived(
            b"POST /upload HTTP/1.1\r\nHost: web\r\nUser-Agent: big/1\r\nContent-Length: 1000\r\n\r\n"
        )
        self.connect(IPv4Address("TCP", "127.0.0.1", 40001))
        slow, _ = self.connect(IPv4Address("TCP", "127.0.0.1", 40002))
        slow.dataReceived(b"GET /slowly HTTP/1.1\r\nHost: web\r\nUser-Agent: slow/1\r\nX-A: 1\r\nX-")
        self.clock.advance(10)
        lines = path.read_text().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(lines[0].endswith('"POST /upload HTTP/1.1" 413 22 "-" "big/1"'), lines[0])
        self.assertRegex(lines[1], r'^127\.0\.0\.1 - - \[[^]]+\] "-" 408 20 "-" "-"$')
        self.assertTrue(lines[2].endswith('"GET /slowly HTTP/1.1" 408 20 "-" "slow/1"'), lines[2])
        self.assertEqual((self.stats.requests, self.stats.responses4xx), (3, 3))

    def test_off(self) -> None:
        """
        Without a path nothing is formatted or written, not even to the
        twistd log.
        """
        self.makeSite()
        self.site.startFactory()
        self.addCleanup(self.site.stopFactory)

        def formatter(*args: object) -> str:
            self.fail("an access log line was formatted")

        self.site._logFormatter = formatter
        channel, _ = self.connect()
        channel.dataReceived(GET)
        self.assertEqual(self.stats.requests, 1)

    def test_cannotOpen(self) -> None:
        """
        An access log that cannot be opened is an error naming the file.
        """
        path = temporaryDirectory(self) / "missing-directory" / "access.log"
        self.makeSite()
        site = LimitedSite(self.site.resource, accessLog=str(path), reactor=self.clock)
        with self.assertRaises(ValueError) as cm:
            site.startFactory()
        self.assertIn(str(path), str(cm.exception))
        self.assertIn("No such file or directory", str(cm.exception))
