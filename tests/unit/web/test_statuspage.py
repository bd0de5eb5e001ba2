"""
Tests for L{services.web._statuspage}: C{/status} as HTML to browsers, JSON to
everyone else, and the page's escaping and links.
"""

from __future__ import annotations

import re
from typing import Any

from services.config import WebConfig
from services.daemon.values import webSettings
from services.web import buildResource
from services.web._statuspage import peerLink, renderPage

from tests.webfakes import StubTestCase, SynchronousThreads, fullRoot, header

#: What Firefox and Chromium send for a page.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class NegotiationTests(StubTestCase):
    """
    C{/status} answers HTML only to clients that prefer it.
    """

    def get(self, url: str = "http://web/status", accept: str | None = None) -> tuple[Any, bytes]:
        from treq.testing import StubTreq

        stub = StubTreq(buildResource(webSettings(WebConfig()), fullRoot(), lambda: 12.5, SynchronousThreads()))
        headers = {"Accept": [accept]} if accept is not None else {}
        return self.fetch(stub, "GET", url, headers=headers)

    def test_browserGetsThePage(self) -> None:
        """
        A browser's C{Accept} gets the page, as UTF-8 HTML that is never
        cached, with a policy that allows only its own inline style and
        script, and C{Vary: Accept}.
        """
        response, body = self.get(accept=BROWSER)
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "content-type"), "text/html; charset=utf-8")
        self.assertEqual(header(response, "cache-control"), "no-store")
        self.assertEqual(header(response, "vary"), "Accept")
        self.assertEqual(response.length, len(body))
        policy = header(response, "content-security-policy") or ""
        self.assertIn("default-src 'none'", policy)
        self.assertRegex(policy, r"script-src 'sha256-[A-Za-z0-9+/=]+'")
        self.assertNotIn("unsafe-inline", policy)
        self.assertTrue(body.startswith(b"<!DOCTYPE html>"))

    def test_jsonUnchanged(self) -> None:
        """
        No C{Accept}, C{*/*}, C{application/json}, and C{?format=json} even
        with a browser's C{Accept} all get the same JSON bytes.
        """
        bodies = []
        for url, accept in [
            ("http://web/status", None),
            ("http://web/status", "*/*"),
            ("http://web/status", "application/json"),
            ("http://web/status", "text/html;q=0.5, application/json"),
            ("http://web/status?format=json", BROWSER),
        ]:
            response, body = self.get(url, accept)
            self.assertEqual(header(response, "content-type"), "application/json", (url, accept))
            bodies.append(body)
        self.assertEqual(len(set(bodies)), 1)
        self.assertTrue(bodies[0].startswith(b"{\n  "))

    def test_formatHTML(self) -> None:
        """
        C{?format=html} gets the page whatever the C{Accept}.
        """
        response, _ = self.get("http://web/status?format=html", "application/json")
        self.assertEqual(header(response, "content-type"), "text/html; charset=utf-8")


class PageTests(StubTestCase):
    """
    The page shows every section of the document, with everything escaped.
    """

    def document(self, **extra: Any) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": "netservices",
            "version": "1.2.3",
            "uptime": 3723.5,
            "client": "127.0.0.1:5555",
            "services": {
                "echo": {
                    "listening": True,
                    "addresses": ["127.0.0.1:7007"],
                    "counters": {"current": 1, "accepted": 7},
                },
                "discovery": {
                    "listening": False,
                    "addresses": [],
                    "peers": [
                        {
                            "name": "<script>alert(1)</script>",
                            "id": "a&b",
                            "address": "127.0.0.2",
                            "services": {"web": [8081], "echo": [7007]},
                            "age": 1.5,
                            "ttl": 30,
                        }
                    ],
                },
            },
        }
        document.update(extra)
        return document

    def test_sections(self) -> None:
        """
        The page has the version, the uptime, each service's state and
        listeners, counters with a rate column, the peers with their web
        endpoints as links, and the open connections.
        """
        page = renderPage(
            self.document(
                connections={
                    "open": 1,
                    "byService": {"echo": 1},
                    "newest": [
                        {
                            "service": "echo",
                            "client": "127.0.0.9:4444",
                            "local": "127.0.0.1:7007",
                            "age": 2.0,
                            "bytesIn": 10,
                            "bytesOut": 8,
                            "state": "paused",
                        }
                    ],
                }
            )
        ).decode("utf-8")
        self.assertIn('<span id="version">1.2.3</span>', page)
        self.assertIn('<span id="uptime">1h 2m 3s</span>', page)
        self.assertIn('<td>echo</td><td><span class="up">listening</span></td>', page)
        self.assertIn('<span class="down">not listening</span>', page)
        self.assertIn('<td>accepted</td><td class="n">7</td><td class="n">\u2013</td>', page)
        self.assertIn('<a href="http://127.0.0.2:8081/">web 127.0.0.2:8081</a>', page)
        self.assertIn("echo 127.0.0.2:7007", page)
        self.assertNotIn('href="http://127.0.0.2:7007/"', page)
        self.assertIn("1 open (echo: 1)", page)
        self.assertIn("<td>127.0.0.9:4444</td><td>127.0.0.1:7007</td>", page)
        self.assertIn("<td>paused</td>", page)

    def test_escaped(self) -> None:
        """
        A peer name with markup is shown as text: no tag from the document
        reaches the page.
        """
        page = renderPage(self.document()).decode("utf-8")
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("<td>a&amp;b</td>", page)
        # The only script is the page's own.
        self.assertEqual(len(re.findall("<script>", page)), 1)

    def test_workers(self) -> None:
        """
        With workers, the page shows which answered, each one's counters and
        the totals.
        """
        page = renderPage(
            self.document(
                workers={
                    "count": 2,
                    "this": 1,
                    "workers": [
                        {"worker": 0, "services": {"echo": {"accepted": 3}}},
                        {"worker": 1, "services": {"echo": {"accepted": 4}}},
                    ],
                    "totals": {"echo": {"accepted": 7}},
                }
            )
        ).decode("utf-8")
        self.assertIn("worker 1 of 2 answered", page)
        self.assertIn("<caption>worker 0: echo</caption>", page)
        self.assertIn("<caption>totals: echo</caption>", page)
        self.assertNotIn('<p class="muted">one process', page)

    def test_peerLink(self) -> None:
        """
        Only an IP address and a port number make a link; IPv6 addresses get
        brackets.
        """
        self.assertEqual(peerLink("::1", 80), ("[::1]:80", "http://[::1]:80/"))
        self.assertEqual(peerLink("127.0.0.1", 80), ("127.0.0.1:80", "http://127.0.0.1:80/"))
        self.assertEqual(peerLink("evil.example/x", 80), ("evil.example/x:80", None))
        self.assertEqual(peerLink("127.0.0.1", "80/x"), ("127.0.0.1:80/x", None))
        self.assertEqual(peerLink("127.0.0.1", 70000), ("127.0.0.1:70000", None))
