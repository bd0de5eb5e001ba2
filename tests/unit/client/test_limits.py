"""
Unit tests of what the client bounds and refuses: response heads
(L{services.client._head}), content decoding (L{services.client._coding}),
the temporary file and error statuses of L{services.client.download}, and
IPv6 literal URLs.  Fake transports and L{treq.testing.StubTreq} only.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from pathlib import Path
from typing import Any

from treq.testing import StringStubbingResource, StubTreq
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Factory
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource, server
from twisted.web.client import HTTP11ClientProtocol, Request, ResponseFailed, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from services.client import (
    BadContentEncoding,
    HTTPStatusError,
    ResponseHeadersTooLarge,
    ResponseTooLarge,
    _download,
    download,
    makeClient,
    request,
)
from services.client._coding import STEP, WithoutTreqEncoding
from services.client._head import HeadLimitEndpoint, HeadLimits, HeadTooLarge
from tests.support import temporaryDirectory


class _Connected:
    """
    An endpoint that connects to a L{StringTransport} at once.
    """

    def __init__(self) -> None:
        self.transport = StringTransport()

    def connect(self, factory: Any) -> Deferred[Any]:
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(self.transport)
        return succeed(protocol)


class _Aborting(StringTransport):
    """
    A transport whose C{abortConnection} is recorded (StringTransport's
    only sets C{disconnecting}).
    """

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        StringTransport.abortConnection(self)


def _http(limits: HeadLimits) -> tuple[HTTP11ClientProtocol, Any, _Aborting]:
    """
    A real Twisted HTTP client protocol behind the head counter, over a
    fake transport: (the protocol, the counting wrapper, the transport).
    """
    endpoint = _Connected()
    endpoint.transport = _Aborting()
    protocols: list[HTTP11ClientProtocol] = []
    HeadLimitEndpoint(endpoint, limits).connect(
        Factory.forProtocol(HTTP11ClientProtocol)
    ).addCallback(protocols.append)
    protocol = protocols[0]
    return protocol, protocol.transport, endpoint.transport


def _get(protocol: HTTP11ClientProtocol) -> Deferred[IResponse]:
    return protocol.request(Request(b"GET", b"/", Headers({b"host": [b"h"]}), None, persistent=True))


class HeadLimitTests(SynchronousTestCase):
    """
    L{HeadLimitEndpoint} drops a connection whose response head passes a
    limit, and never counts a body.
    """

    def endless(
        self, limits: HeadLimits, line: bytes, start: bytes = b"HTTP/1.1 200 OK\r\n"
    ) -> tuple[Deferred[IResponse], int, _Aborting]:
        """
        Send a request, then C{start} and C{line} again and again until the
        wrapper stops reading (at most 10 MB); return the request, the
        bytes it took, the transport.
        """
        protocol, wrapper, transport = _http(limits)
        d = _get(protocol)
        wrapper.dataReceived(start)
        sent = 0
        while not transport.aborted and sent < 10_000_000:
            wrapper.dataReceived(line * 64)
            sent += len(line) * 64
        wrapper.connectionLost(Failure(ConnectionError("aborted")))
        return d, sent, transport

    def test_endlessHeaderLines(self) -> None:
        """
        Header lines that never end make the connection drop as soon as
        300 KiB have come, and the request fails with L{HeadTooLarge}.
        """
        d, sent, transport = self.endless(HeadLimits(maxLines=10**9), b"X-Forever: yes\r\n")
        self.assertTrue(transport.aborted)
        self.assertLess(sent, 300 * 1024 + 1024 + 1)
        failure = self.failureResultOf(d, ResponseFailed)
        reasons = [r.value for r in failure.value.reasons]
        self.assertIsInstance(reasons[0], HeadTooLarge)
        self.assertEqual(reasons[0].detail, "more than 307200 bytes")

    def test_lineCount(self) -> None:
        """
        More than 1,000 lines in a head drop the connection too.
        """
        d, _sent, transport = self.endless(HeadLimits(), b"a: b\r\n")
        self.assertTrue(transport.aborted)
        failure = self.failureResultOf(d, ResponseFailed)
        self.assertEqual(failure.value.reasons[0].value.detail, "more than 1000 lines")

    def test_longLine(self) -> None:
        """
        A line over 16 KiB is refused by name (before Twisted's own line
        limit would drop the connection with no reason given).
        """
        protocol, wrapper, transport = _http(HeadLimits())
        d = _get(protocol)
        wrapper.dataReceived(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 16000)
        self.assertFalse(transport.aborted)
        wrapper.dataReceived(b"a" * 1000)
        self.assertTrue(transport.aborted)
        wrapper.connectionLost(Failure(ConnectionError("aborted")))
        failure = self.failureResultOf(d, ResponseFailed)
        self.assertEqual(failure.value.reasons[0].value.detail, "a line longer than 16384 bytes")

    def test_informationalHeadsCount(self) -> None:
        """
        Endless informational (1xx) heads, which Twisted skips, count
        together against the limit.
        """
        d, sent, transport = self.endless(
            HeadLimits(maxBytes=4096), b"HTTP/1.1 102 Processing\r\n\r\n", start=b""
        )
        self.assertTrue(transport.aborted)
        self.assertLess(sent, 8192)
        self.failureResultOf(d, ResponseFailed)

    def test_bodyNotCounted(self) -> None:
        """
        A body larger than the head limit, in the same read as its head or
        after it, goes through whole.
        """
        protocol, wrapper, transport = _http(HeadLimits(maxBytes=200))
        d = _get(protocol)
        body = b"x" * 5000
        wrapper.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + body)
        wrapper.dataReceived(body)
        response = self.successResultOf(d)
        self.assertEqual(self.successResultOf(readBody(response)), body * 2)
        self.assertFalse(transport.aborted)

    def test_eachResponseCounted(self) -> None:
        """
        On a kept-alive connection each response's head has the whole
        limit: two heads of 150 bytes pass a limit of 200.
        """
        protocol, wrapper, transport = _http(HeadLimits(maxBytes=200))
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: " + b"p" * 103 + b"\r\n\r\n"
        self.assertEqual(len(head), 150)
        for _ in range(2):
            d = _get(protocol)
            wrapper.dataReceived(head + b"ok")
            self.assertEqual(self.successResultOf(readBody(self.successResultOf(d))), b"ok")
        self.assertFalse(transport.aborted)
        self.assertEqual(protocol.state, "QUIESCENT")


class _Failing:
    """
    A client whose every request fails as C{error} does.
    """

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.calls += 1
        return fail(self.error)


class HeadErrorTests(SynchronousTestCase):
    """
    L{request} reports heads that were too large as
    L{ResponseHeadersTooLarge}, and does not retry them.
    """

    def test_named(self) -> None:
        """
        The failure names the limit and the URL, and is not retried.
        """
        failing = _Failing(ResponseFailed([Failure(HeadTooLarge("more than 307200 bytes"))]))
        d = request(failing, "GET", "http://example.com/a", params={"q": "1"}, retries=3)
        failure = self.failureResultOf(d, ResponseHeadersTooLarge)
        self.assertEqual(
            str(failure.value),
            "response headers too large (more than 307200 bytes): http://example.com/a?q=1",
        )
        self.assertEqual(failing.calls, 1)


def _bomb(size: int) -> bytes:
    """
    C{size} zero bytes, gzip-compressed.
    """
    return gzip.compress(bytes(size), 1)


def _answer(body: bytes, headers: dict[bytes, bytes]) -> StubTreq:
    return StubTreq(StringStubbingResource(lambda *request: (200, headers, body)))


class DecodingTests(SynchronousTestCase):
    """
    Bodies are passed on as they came unless C{compressed} is given; then
    they are decoded in bounded steps, counted against C{maxSize}.
    """

    def test_rawByDefault(self) -> None:
        """
        Without C{compressed} a gzip body is the bytes that came, with its
        Content-Encoding.
        """
        body = _bomb(100_000)
        response = self.successResultOf(
            request(_answer(body, {b"content-encoding": b"gzip"}), "GET", "http://example.com/")
        )
        self.assertEqual(response.body, body)
        self.assertEqual(response.header("content-encoding"), "gzip")

    def test_decoded(self) -> None:
        """
        With C{compressed} a gzip or deflate body is decoded.
        """
        text = b"hello " * 1000
        for coding, body in ((b"gzip", gzip.compress(text)), (b"deflate", zlib.compress(text))):
            response = self.successResultOf(
                request(_answer(body, {b"content-encoding": coding}), "GET", "http://example.com/",
                        compressed=True)
            )
            self.assertEqual(response.body, text, coding)

    def test_boundedSteps(self) -> None:
        """
        A body that inflates 1000 times is decoded at most 64 KiB at a time,
        and decoding stops as soon as C{maxSize} is passed: the sink never
        gets more than the limit.
        """
        pieces: list[int] = []
        d = request(
            _answer(_bomb(20 * 1024 * 1024), {b"content-encoding": b"gzip"}),
            "GET", "http://example.com/", compressed=True, maxSize=1024 * 1024,
            sink=lambda data: pieces.append(len(data)),
        )
        self.failureResultOf(d, ResponseTooLarge)
        self.assertLessEqual(max(pieces), STEP)
        self.assertLessEqual(sum(pieces), 1024 * 1024)

    def test_unknownCoding(self) -> None:
        """
        With C{compressed}, a coding we cannot decode fails by name.
        """
        d = request(_answer(b"x", {b"content-encoding": b"br"}), "GET", "http://example.com/",
                    compressed=True)
        failure = self.failureResultOf(d, BadContentEncoding)
        self.assertIn("'br'", str(failure.value))

    def test_noBodyNoDecoding(self) -> None:
        """
        A HEAD answer has no body to decode, whatever its coding says.
        """
        d = request(_answer(b"", {b"content-encoding": b"br"}), "HEAD", "http://example.com/",
                    compressed=True)
        self.assertEqual(self.successResultOf(d).header("content-encoding"), "br")

    def test_corrupt(self) -> None:
        """
        With C{compressed}, a gzip body that is not gzip fails.
        """
        d = request(_answer(b"not gzip at all", {b"content-encoding": b"gzip"}),
                    "GET", "http://example.com/", compressed=True)
        self.failureResultOf(d, BadContentEncoding)

    def test_acceptEncodingAsked(self) -> None:
        """
        With C{compressed}, the request says which codings are accepted.
        """
        seen: list[Any] = []

        def answer(method: bytes, url: str, params: Any, headers: Any, data: bytes) -> Any:
            seen.append(headers)
            return (200, {}, b"")

        self.successResultOf(request(StubTreq(StringStubbingResource(answer)), "GET",
                                     "http://example.com/", compressed=True))
        self.assertIn(b"gzip, deflate", seen[0][b"Accept-Encoding"])


class _Recording:
    """
    An agent that records each request's headers.
    """

    def __init__(self) -> None:
        self.headers: list[Headers] = []

    def request(
        self, method: bytes, uri: bytes, headers: Headers | None = None, bodyProducer: Any = None
    ) -> Deferred[Any]:
        self.headers.append(headers or Headers())
        return Deferred()


class WithoutTreqEncodingTests(SynchronousTestCase):
    """
    The agent under treq removes the C{Accept-Encoding: gzip} that treq
    always adds, and only that.
    """

    def test_removed(self) -> None:
        """
        treq's value goes; the caller's stays.
        """
        recording = _Recording()
        agent = WithoutTreqEncoding(recording)
        agent.request(b"GET", b"http://h/", Headers({b"accept-encoding": [b"gzip"]}))
        agent.request(b"GET", b"http://h/", Headers({b"accept-encoding": [b"br", b"gzip"]}))
        agent.request(b"GET", b"http://h/", None)
        self.assertFalse(recording.headers[0].hasHeader(b"accept-encoding"))
        self.assertEqual(recording.headers[1].getRawHeaders(b"accept-encoding"), [b"br"])
        self.assertFalse(recording.headers[2].hasHeader(b"accept-encoding"))

    def test_makeClient(self) -> None:
        """
        A client from L{makeClient} sends no Accept-Encoding by
        itself.
        """
        from twisted.internet.testing import MemoryReactorClock

        reactor = MemoryReactorClock()
        made = makeClient(reactor)
        request(made, "GET", "http://127.0.0.1:1/")
        self.assertEqual(len(reactor.tcpClients), 1)
        _host, _port, factory, _timeout, _bind = reactor.tcpClients[0]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertNotIn(b"accept-encoding", transport.value().lower())
        self.assertIn(b"GET / HTTP/1.1", transport.value())


def _notFound(*request: Any) -> tuple[int, dict[bytes, bytes], bytes]:
    return (404, {}, b"no such page")


class DownloadTests(SynchronousTestCase):
    """
    L{download} writes through a file of its own, never through a link,
    and does not save an error status unless asked.
    """

    def test_plantedLinks(self) -> None:
        """
        Symbolic links planted at C{out.part}, at the first temporary name
        tried, and at C{out} are never written through: the body lands in
        a regular file C{out}, and the link targets are untouched.
        """
        directory = temporaryDirectory(self)
        victim = directory / "victim"
        victim.write_bytes(b"untouched")
        target = directory / "out"
        names = iter(["aaaaaaaa", "bbbbbbbb"])
        self.patch(_download.secrets, "token_hex", lambda n: next(names))
        for name in ("out", "out.part", "out.aaaaaaaa.part"):
            (directory / name).symlink_to(victim)
        stub = StubTreq(StringStubbingResource(lambda *r: (200, {}, b"downloaded")))
        self.successResultOf(download(stub, "http://example.com/f", target))
        self.assertEqual(victim.read_bytes(), b"untouched")
        self.assertFalse(target.is_symlink())
        self.assertEqual(target.read_bytes(), b"downloaded")
        self.assertFalse((directory / "out.bbbbbbbb.part").exists())

    def test_errorStatusNotSaved(self) -> None:
        """
        A 404 is not saved: the call fails with L{HTTPStatusError}, the
        file that was there is left as it was, nothing else is left.
        """
        directory = temporaryDirectory(self)
        target = directory / "big.iso"
        target.write_bytes(b"previous")
        d = download(StubTreq(StringStubbingResource(_notFound)), "http://example.com/big.iso", target)
        failure = self.failureResultOf(d, HTTPStatusError)
        self.assertEqual(failure.value.status, 404)
        self.assertEqual(
            str(failure.value),
            f"HTTP error 404 Not Found: http://example.com/big.iso (not saved to {target})",
        )
        self.assertEqual(target.read_bytes(), b"previous")
        self.assertEqual(sorted(p.name for p in directory.iterdir()), ["big.iso"])

    def test_keepError(self) -> None:
        """
        C{keepError=True} saves an error status's body.
        """
        target = temporaryDirectory(self) / "page.html"
        d = download(StubTreq(StringStubbingResource(_notFound)), "http://example.com/x", target,
                     keepError=True)
        self.assertEqual(self.successResultOf(d).status, 404)
        self.assertEqual(target.read_bytes(), b"no such page")

    def test_unwritableNamed(self) -> None:
        """
        A file that cannot be created fails with an L{OSError} that names
        it (not its temporary name).
        """
        target = temporaryDirectory(self) / "missing" / "file"
        stub = StubTreq(StringStubbingResource(lambda *r: (200, {}, b"x")))
        failure = self.failureResultOf(download(stub, "http://example.com/", target), OSError)
        self.assertEqual(failure.value.filename, str(target))

    def test_pipeWrittenDirectly(self) -> None:
        """
        A target that is a pipe, or a link to one (as C{/dev/stdout} is),
        is written to, not replaced by a regular file (nor is a device such
        as C{/dev/null}: a rename over it would replace it for everyone).
        """
        directory = temporaryDirectory(self)
        fifo = directory / "fifo"
        os.mkfifo(fifo)
        link = directory / "stdout"
        link.symlink_to(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        stub = StubTreq(StringStubbingResource(lambda *r: (200, {}, b"to the pipe")))
        self.successResultOf(download(stub, "http://example.com/", link))
        self.assertEqual(os.read(reader, 100), b"to the pipe")
        self.assertTrue(link.is_symlink())
        self.assertTrue(stat.S_ISFIFO(fifo.stat().st_mode))
        self.assertEqual(sorted(p.name for p in directory.iterdir()), ["fifo", "stdout"])

    def test_mode(self) -> None:
        """
        The file gets the mode of any new file (0666 less the umask), not
        a temporary file's 0600.
        """
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        target = temporaryDirectory(self) / "file"
        stub = StubTreq(StringStubbingResource(lambda *r: (200, {}, b"x")))
        self.successResultOf(download(stub, "http://example.com/", target))
        self.assertEqual(target.stat().st_mode & 0o777, 0o644)


class _Seen(resource.Resource):
    """
    Records each request's URI and Host; answers C{v6}.  (treq's
    StringStubbingResource cannot answer an IPv6 Host: twisted.web's
    C{prePathURL} leaves the address unbracketed.)
    """

    isLeaf = True

    def __init__(self) -> None:
        resource.Resource.__init__(self)
        self.seen: list[tuple[bytes, bytes | None]] = []

    def render(self, request: server.Request) -> bytes:
        self.seen.append((request.uri, request.getHeader(b"host")))
        return b"v6"


class IPv6LiteralTests(SynchronousTestCase):
    """
    URLs whose host is an IPv6 address are sent (hyperlink's IDNA refused
    them).
    """

    def test_request(self) -> None:
        """
        C{http://[::1]:8080/...} is requested with its path and query
        encoded, and the server sees a bracketed Host.
        """
        seen = _Seen()
        response = self.successResultOf(
            request(StubTreq(seen), "GET", "http://[::1]:8080/a b", params={"q": "ü"})
        )
        self.assertEqual(response.body, b"v6")
        self.assertEqual(seen.seen, [(b"/a%20b?q=%C3%BC", b"[::1]:8080")])

    def test_download(self) -> None:
        """
        L{download} takes an IPv6 literal URL too.
        """
        target: Path = temporaryDirectory(self) / "file"
        seen = _Seen()
        self.successResultOf(download(StubTreq(seen), "http://[2001:db8::1]/f", target))
        self.assertEqual(target.read_bytes(), b"v6")
        self.assertEqual(seen.seen, [(b"/f", b"[2001:db8::1]")])
