"""
Tests for the lean request path of L{services.web._request} and
L{services.web._channel}: every answer is byte for byte the one twisted.web's
own code gives (the same site with the lean path off), for the common case
it covers and for each case it leaves to twisted.web.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IRequest
from twisted.web.resource import EncodingResourceWrapper, Resource
from twisted.web.server import GzipEncoderFactory

from services.stats import WebStats
from services.web import HTTPLimits, LimitedSite
from services.web._pages import Hello
from services.web._service import Branch


class Varied(Resource):
    """
    A resource whose answer the query string picks, one for each case the
    lean path either covers or leaves to twisted.web.
    """

    isLeaf = True

    def render_GET(self, request: IRequest) -> Any:
        kind = request.args.get(b"kind", [b"plain"])[0]
        if kind == b"cookie":
            request.addCookie(b"k", b"v")
        elif kind == b"etag":
            request.setETag(b'"abc"')
        elif kind == b"modified":
            request.setLastModified(1_000_000)
        elif kind == b"nocontent":
            request.setResponseCode(204)
            return b""
        elif kind == b"notbytes":
            return "text"
        elif kind == b"empty":
            return b""
        elif kind == b"typed":
            request.setHeader(b"content-type", b"text/plain")
        elif kind == b"repeated":
            request.responseHeaders.addRawHeader(b"x-a", b"1")
            request.responseHeaders.addRawHeader(b"x-a", b"2")
        elif kind == b"big":
            return b"x" * (100 * 1024)
        elif kind == b"status":
            request.setResponseCode(418)
        return b"body of " + kind


class LeanPathTests(SynchronousTestCase):
    """
    The lean path answers as twisted.web does.
    """

    def answer(self, data: bytes | list[bytes], lean: bool) -> tuple[bytes, WebStats, bool]:
        """
        What a connection to a fresh site, with the lean path on or off,
        writes for C{data}; the site's counters; whether it stays open.
        """
        clock = Clock()
        clock.advance(1_800_000_000)
        tree = Branch()
        tree.putChild(b"", Hello())
        tree.putChild(b"varied", Varied())
        tree.putChild(b"gzip", EncodingResourceWrapper(Varied(), [GzipEncoderFactory()]))
        tree.putChild(b"upload", Resource())
        stats = WebStats()
        site = LimitedSite(tree, HTTPLimits(maxBody=1000), stats, reactor=clock)
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        channel = site.buildProtocol(address)
        channel.leanPath = lean
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        for chunk in [data] if isinstance(data, bytes) else data:
            channel.dataReceived(chunk)
        open_ = not transport.disconnecting
        channel.connectionLost(Failure(ConnectionError("closed by the test")))
        return transport.value(), stats, open_

    def assertSameAnswer(self, data: bytes | list[bytes]) -> bytes:
        """
        The lean path and twisted.web write the same bytes, count the same
        and leave the connection in the same state; return the bytes.
        """
        lean, leanStats, leanOpen = self.answer(data, True)
        plain, plainStats, plainOpen = self.answer(data, False)
        # Error pages show object addresses (the request's repr).
        self.assertEqual(re.sub(rb"0x[0-9a-f]+", b"0x", lean), re.sub(rb"0x[0-9a-f]+", b"0x", plain))
        self.assertEqual(asdict(leanStats), asdict(plainStats))
        self.assertEqual(leanOpen, plainOpen)
        return lean

    def get(self, path: bytes, *headers: bytes, method: bytes = b"GET",
            version: bytes = b"HTTP/1.1") -> bytes:
        lines = [method + b" " + path + b" " + version, b"Host: web", *headers]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def test_hello(self) -> None:
        """
        The hello page is written as one response with its length.
        """
        value = self.assertSameAnswer(self.get(b"/"))
        self.assertTrue(value.endswith(b"Content-Length: 11\r\n\r\nHello World"), value)

    def test_cases(self) -> None:
        """
        Each case of L{Varied}, covered or left to twisted.web, answers the
        same.
        """
        for kind in (b"plain", b"cookie", b"etag", b"modified", b"nocontent", b"notbytes",
                     b"empty", b"typed", b"repeated", b"big", b"status"):
            with self.subTest(kind=kind):
                self.assertSameAnswer(self.get(b"/varied?kind=" + kind))

    def test_defaultContentType(self) -> None:
        """
        A body without a C{Content-Type} gets twisted.web's default one; an
        empty body gets none.
        """
        value = self.assertSameAnswer(self.get(b"/varied"))
        self.assertIn(b"\r\nContent-Type: text/html\r\n", value)
        value = self.assertSameAnswer(self.get(b"/varied?kind=empty"))
        self.assertNotIn(b"Content-Type", value)

    def test_head(self) -> None:
        """
        HEAD gets the headers alone.
        """
        self.assertSameAnswer(self.get(b"/", method=b"HEAD"))
        self.assertSameAnswer(self.get(b"/varied", method=b"HEAD"))

    def test_unsupportedMethod(self) -> None:
        """
        A method a twisted.web resource does not serve gets twisted.web's
        answer (405 with Allow, or 501).
        """
        value = self.assertSameAnswer(self.get(b"/varied", method=b"POST"))
        self.assertTrue(value.startswith(b"HTTP/1.1 405 "), value)
        value = self.assertSameAnswer(self.get(b"/varied", method=b"DELETE"))
        self.assertTrue(value.startswith(b"HTTP/1.1 501 "), value)

    def test_encoder(self) -> None:
        """
        A resource with an encoder (gzip) is answered by twisted.web.
        """
        value = self.assertSameAnswer(self.get(b"/gzip", b"Accept-Encoding: gzip"))
        self.assertIn(b"Content-Encoding: gzip", value)

    def test_requestHeaders(self) -> None:
        """
        Requests with cookies, C{Connection}, C{Expect}, or of HTTP/1.0 are
        read as twisted.web reads them: the connection closes when asked,
        C{100 Continue} is sent.
        """
        self.assertSameAnswer(self.get(b"/", b"Cookie: a=b"))
        self.assertSameAnswer(self.get(b"/", b"Connection: keep-alive"))
        _, _, open_ = self.answer(self.get(b"/", b"Connection: close"), True)
        self.assertFalse(open_)
        self.assertSameAnswer(self.get(b"/", b"Connection: close"))
        self.assertSameAnswer(self.get(b"/", version=b"HTTP/1.0"))
        upload = self.get(b"/upload", b"Content-Length: 3", b"Expect: 100-continue",
                          method=b"POST") + b"abc"
        value = self.assertSameAnswer(upload)
        self.assertTrue(value.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), value)

    def test_pipelined(self) -> None:
        """
        Pipelined requests are answered in order, each as twisted.web
        answers it, and counted.
        """
        data = self.get(b"/") + self.get(b"/varied?kind=cookie") + self.get(b"/nothing")
        value = self.assertSameAnswer(data * 3)
        self.assertEqual(value.count(b"HTTP/1.1 "), 9)
        _, stats, open_ = self.answer(data * 3, True)
        self.assertEqual((stats.requests, stats.responses2xx, stats.responses4xx), (9, 6, 3))
        self.assertTrue(open_)

    def test_body(self) -> None:
        """
        A request body within the limit is read and the request answered;
        one over it gets 413, as without the lean path.
        """
        self.assertSameAnswer(self.get(b"/varied", b"Content-Length: 5") + b"12345")
        value = self.assertSameAnswer(self.get(b"/varied", b"Content-Length: 5000"))
        self.assertTrue(value.startswith(b"HTTP/1.1 413 "), value)

    def test_headerLines(self) -> None:
        """
        Header lines are read as twisted.web reads them: names in any case,
        repeated names, folded lines, framing headers, and the malformed
        ones answered 400.
        """
        for headers in (
            (b"HOST: web2",),
            (b"X-A: 1", b"x-a: 2", b"X-a:3  "),
            (b"X-A: 1", b" folded"),
            (b"X-Odd-Name_1: v",),
            (b"Bad Name: v",),
            (b"NoColon",),
            (b"X-A: a\x00b",),
            (b": empty name",),
            (b"Transfer-Encoding: chunked",),
            (b"Content-Length: 2", b"Content-Length: 2"),
            (b"Content-Length: x",),
        ):
            with self.subTest(headers=headers):
                self.assertSameAnswer(self.get(b"/varied", *headers))

    def test_tooManyHeaders(self) -> None:
        """
        One header over C{maxHeaders} gets 400, as without the lean path;
        C{maxHeaders} headers are accepted.
        """
        fits = [b"X-%d: v" % (i,) for i in range(99)]
        value = self.assertSameAnswer(self.get(b"/", *fits))
        self.assertTrue(value.startswith(b"HTTP/1.1 200 "), value)
        value = self.assertSameAnswer(self.get(b"/", *fits, b"X-Last: v"))
        self.assertTrue(value.startswith(b"HTTP/1.1 400 "), value)

    def test_headerNamesBounded(self) -> None:
        """
        The site remembers at most C{maxHeaderNames} header names, however
        many different ones clients send.
        """
        clock = Clock()
        tree = Branch()
        tree.putChild(b"", Hello())
        site = LimitedSite(tree, HTTPLimits(), reactor=clock)
        site.maxHeaderNames = 5
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        for i in range(4):
            channel = site.buildProtocol(address)
            transport = StringTransport(peerAddress=address)
            channel.makeConnection(transport)
            channel.dataReceived(self.get(b"/", *(b"X-%d-%d: v" % (i, j) for j in range(5))))
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
            channel.connectionLost(Failure(ConnectionError("closed by the test")))
        self.assertEqual(len(site.headerNames), 5)


class WholeHeadTests(LeanPathTests):
    """
    Request heads parsed whole (L{LimitedChannelBase.parseHeads}) are read
    as twisted.web's line parser reads them, however the bytes are split
    and whatever follows them.
    """

    def test_splits(self) -> None:
        """
        Pipelined requests split anywhere across reads answer the same.
        """
        data = self.get(b"/") + self.get(b"/varied?kind=cookie", b"X-A: 1") + self.get(b"/")
        for size in (1, 2, 7, 40, len(data) - 1):
            with self.subTest(size=size):
                chunks = [data[i : i + size] for i in range(0, len(data), size)]
                value = self.assertSameAnswer(chunks)
                self.assertEqual(value.count(b"HTTP/1.1 200 "), 3)

    def test_whatFollows(self) -> None:
        """
        A head followed by what only the line parser handles (a folded
        line, a blank line before a request line, a body, a chunked body, a
        request that closes, HTTP/1.0, a malformed request line, a head over
        the size limit) answers the same.
        """
        plain = self.get(b"/")
        for following in (
            self.get(b"/varied", b"X-A: 1", b" folded"),
            b"\r\n" + plain,
            self.get(b"/varied", b"Content-Length: 3") + b"abc",
            self.get(b"/varied", b"Transfer-Encoding: chunked") + b"3\r\nabc\r\n0\r\n\r\n",
            self.get(b"/", b"Connection: close"),
            self.get(b"/", version=b"HTTP/1.0"),
            b"GET /\r\nHost: web\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: web\r\n" + b"X-Long: " + b"x" * 20000 + b"\r\n\r\n",
            self.get(b"/", b"X-%d: v" % (1,), *(b"X-%d: v" % (i,) for i in range(2, 120))),
            b"GET / HTTP/1.1\r\n\r\n",
        ):
            with self.subTest(following=following[:60]):
                self.assertSameAnswer(plain + following + plain)
                self.assertSameAnswer([plain, following + plain])

    def test_headerDeadlineOfPipelined(self) -> None:
        """
        A pipelined request whose head is incomplete after answered ones
        gets its header deadline: 408 after C{headerTimeout}.
        """
        clock = Clock()
        tree = Branch()
        tree.putChild(b"", Hello())
        stats = WebStats()
        site = LimitedSite(tree, HTTPLimits(headerTimeout=5), stats, reactor=clock)
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        channel = site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(self.get(b"/") * 3 + b"GET / HTTP/1.1\r\nHo")
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 "), 3)
        clock.advance(5)
        self.assertIn(b"HTTP/1.1 408 ", transport.value())
        self.assertEqual(stats.headerTimeouts, 1)
        channel.connectionLost(Failure(ConnectionError("closed by the test")))

    def test_queries(self) -> None:
        """
        Query strings (none, empty, repeated keys, a second C{?}, escapes)
        reach the resource as twisted.web parses them, for every method.
        """
        for path in (b"/varied", b"/varied?", b"/varied?kind=typed&kind=x",
                     b"/varied?a=1?b=2", b"/varied?kind=%65tag", b"/var%69ed?kind=etag"):
            for method in (b"GET", b"POST", b"HEAD"):
                with self.subTest(path=path, method=method):
                    self.assertSameAnswer(self.get(path, method=method))


class ALPNTests(SynchronousTestCase):
    """
    What a L{LimitedSite} offers by ALPN.
    """

    def test_http11Only(self) -> None:
        """
        A site offers HTTP/1.1 alone, the one protocol its channels speak,
        so that a TLS listener without HTTP/2 never negotiates C{h2}.
        """
        site = LimitedSite(Hello(), HTTPLimits(), reactor=Clock())
        self.assertEqual(IProtocolNegotiationFactory(site).acceptableProtocols(), [b"http/1.1"])
