"""
Unit tests for the changes the reliability battery made to the web modules
(items 6 and 8), driven through L{StringTransport} and a L{Clock}:

  - L{services.web._channel.LimitedChannel} answers 400 to more than 100
    headers, to a line over 16 KiB, and to headers over 16 KiB, and lingers
    after a 400 like after a 413 so that the client reads the answer;
  - L{services.web._static.StaticFile} ignores a Range header it cannot use,
    where L{twisted.web.static.File} answers 500 with a traceback.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from services.web import HTTPLimits, LimitedSite, StaticFile
from services.web._channel import LimitedChannel
from services.stats import WebStats
from services.web._pages import Hello

from tests.support import HalfClosingTransport

GET = b"GET / HTTP/1.1\r\nHost: web\r\n"


class BadRequestTests(SynchronousTestCase):
    """
    Item 6: header limits answer 400, and the client gets to read it.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = WebStats()
        root = Resource()
        root.putChild(b"", Hello())
        self.site = LimitedSite(root, HTTPLimits(headerTimeout=10), self.stats, reactor=self.clock)

    def connect(self) -> tuple[LimitedChannel, HalfClosingTransport]:
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = HalfClosingTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000))
        channel.makeConnection(transport)
        return channel, transport

    def assertBadRequest(self, data: bytes) -> HalfClosingTransport:
        channel, transport = self.connect()
        channel.dataReceived(data)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 Bad Request\r\n"),
                        transport.value()[:100])
        return transport

    def test_hundredHeadersServed(self) -> None:
        """
        Item 6: a request with 100 headers is served.
        """
        channel, transport = self.connect()
        headers = b"".join(b"X-%d: v\r\n" % i for i in range(99))
        channel.dataReceived(GET + headers + b"\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"))

    def test_hundredAndOneHeaders(self) -> None:
        """
        Item 6: a request with 101 headers gets 400 (twisted.web allows 500).
        """
        headers = b"".join(b"X-%d: v\r\n" % i for i in range(100))
        self.assertBadRequest(GET + headers + b"\r\n")

    def test_longLine(self) -> None:
        """
        Item 6: a header line over 16 KiB gets 400, where Twisted's line
        receiver would close without an answer.
        """
        self.assertBadRequest(GET + b"X-Big: " + b"a" * 17000 + b"\r\n\r\n")
        self.assertBadRequest(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")

    def test_lingersAfterBadRequest(self) -> None:
        """
        Item 6: after a 400 the channel shuts down writing, discards what
        the client still sends (nothing after it is parsed or answered), and
        drops the connection after C{lingerTimeout}.
        """
        channel, transport = self.connect()
        channel.dataReceived(GET + b"X-Big: " + b"a" * 17000 + b"\r\n\r\n")
        answer = transport.value()
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"))
        self.assertTrue(transport.writeClosed)
        channel.dataReceived(b"a" * 1000 + b"\r\n\r\n" + GET + b"\r\n")
        self.assertEqual(transport.value(), answer)
        self.clock.advance(channel.lingerTimeout - 0.1)
        self.assertFalse(transport.aborted)
        self.clock.advance(0.2)
        self.assertTrue(transport.aborted)

    def test_pipelinedAfterBadRequestIgnored(self) -> None:
        """
        Item 6: a request pipelined behind a malformed one in the same
        bytes is never run (no smuggling past a 400).
        """
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: web\r\nContent-Length: +3\r\n\r\nabc" + GET + b"\r\n")
        self.assertEqual(transport.value().count(b"HTTP/1.1 "), 1)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))

    def test_counted(self) -> None:
        """
        Item 6: a 400 the channel answers itself is counted as a 4xx
        response.
        """
        self.assertBadRequest(GET + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n")
        self.assertEqual(self.stats.responses4xx, 1)


class RangeTests(SynchronousTestCase):
    """
    Item 8: a Range header that cannot be used is ignored, never a 500.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "f.txt").write_bytes(b"0123456789")
        self.file = StaticFile(str(directory)).getChild(b"f.txt", DummyRequest([b"f.txt"]))

    def get(self, byteRange: bytes) -> DummyRequest:
        request = DummyRequest([b"f.txt"])
        request.requestHeaders.setRawHeaders(b"range", [byteRange])
        result = self.file.render(request)
        if isinstance(result, bytes):
            request.write(result)
        return request

    def test_unusableRangesIgnored(self) -> None:
        """
        Item 8: non-ASCII, empty and malformed ranges get the whole file
        with 200, as without a Range header.
        """
        for byteRange in (b"bytes=0-3\xf95-", b"\xc3ytes=0-3", b"bytes=", b"bytes= , ",
                          b"bytes=x", b"bytes=5-1", b"items=0-1"):
            request = self.get(byteRange)
            self.assertEqual(request.responseCode or 200, 200, byteRange)
            self.assertEqual(b"".join(request.written), b"0123456789", byteRange)

    def test_usableRangeServed(self) -> None:
        """
        Item 8: a valid range is still served as 206 Partial Content.
        """
        request = self.get(b"bytes=2-4")
        self.assertEqual(request.responseCode, 206)
        self.assertEqual(b"".join(request.written), b"234")
