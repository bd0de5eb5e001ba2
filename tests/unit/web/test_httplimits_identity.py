"""
Tests for what L{services.web._site.LimitedSite} says of itself and asks
of a request's identity: the configured C{Server} header (never Twisted's
name and version), and C{400} to HTTP/1.1 requests without exactly one
C{Host} header (RFC 9112 3.2); driven through L{StringTransport}.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.web import HTTPLimits, LimitedSite
from services.stats import WebStats
from services.web._pages import Hello


class IdentityTests(SynchronousTestCase):
    """
    The C{Server} header and the C{Host} rules.
    """

    def answer(self, data: bytes, limits: HTTPLimits | None = None) -> bytes:
        self.stats = WebStats()
        root = Resource()
        root.putChild(b"", Hello())
        site = LimitedSite(root, limits or HTTPLimits(), self.stats, reactor=Clock())
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(data)
        return transport.value()

    def test_serverHeader(self) -> None:
        """
        Responses carry C{Server: netservices} by default, the configured
        value otherwise, and no C{Server} header when it is empty; never
        Twisted's name and version.
        """
        get = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"
        self.assertIn(b"\r\nServer: netservices\r\n", self.answer(get))
        self.assertIn(b"\r\nServer: edge\r\n", self.answer(get, HTTPLimits(serverHeader=b"edge")))
        for answer in (self.answer(get), self.answer(get, HTTPLimits(serverHeader=b""))):
            self.assertNotIn(b"Twisted", answer)
        self.assertNotIn(b"\r\nServer:", self.answer(get, HTTPLimits(serverHeader=b"")))

    def test_missingHost(self) -> None:
        """
        An HTTP/1.1 request without C{Host} gets 400, counted as a 4xx; an
        HTTP/1.0 one is served.
        """
        self.assertTrue(self.answer(b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertEqual(self.stats.responses4xx, 1)
        self.assertTrue(self.answer(b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 "))

    def test_twoHosts(self) -> None:
        """
        Two C{Host} header lines get 400, in HTTP/1.1 and in HTTP/1.0, and
        nothing pipelined after them is answered.
        """
        for version in (b"1.1", b"1.0"):
            answer = self.answer(
                b"GET / HTTP/%s\r\nHost: a\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
                % (version,)
            )
            self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer)
            self.assertEqual(answer.count(b"HTTP/1."), 1)
