"""
Unit tests of L{services.client.request}: requests through L{treq.testing.StubTreq},
time from a L{Clock}.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from treq.testing import (
    HasHeaders,
    RequestSequence,
    StringStubbingResource,
    StubTreq,
)
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource, server
from twisted.web.client import ResponseNeverReceived

from services import __version__
from services.client import (
    DEFAULT_USER_AGENT,
    RequestTimeout,
    Response,
    ResponseTooLarge,
    TooManyRedirects,
    download,
    request,
)
from tests.support import temporaryDirectory


def result(testCase: SynchronousTestCase, d: Deferred[Any]) -> Any:
    """
    The result of a Deferred that has fired (failing the test otherwise).
    """
    return testCase.successResultOf(d)


class Recorder:
    """
    A stub responder that records each request and answers from a list.
    """

    def __init__(self, *answers: tuple[int, dict[bytes, bytes], bytes]) -> None:
        self.requests: list[dict[str, Any]] = []
        self._answers = list(answers) or [(200, {}, b"ok")]

    def __call__(self, method: bytes, url: str, params: Any, headers: Any, data: bytes) -> Any:
        self.requests.append(
            {"method": method, "url": url, "params": params, "headers": headers, "data": data}
        )
        if len(self._answers) > 1:
            return self._answers.pop(0)
        return self._answers[0]

    def header(self, index: int, name: bytes) -> list[bytes] | None:
        """
        The values of header C{name} in request C{index}, or L{None}.
        """
        for key, values in self.requests[index]["headers"].items():
            if key.lower() == name.lower():
                return values
        return None


class Raw(resource.Resource):
    """
    Records the raw request line, headers and body; answers C{ok}.
    """

    isLeaf = True

    def __init__(self) -> None:
        resource.Resource.__init__(self)
        self.seen: list[server.Request] = []
        self.bodies: list[bytes] = []

    def render(self, request: server.Request) -> bytes:
        """
        Record the request.
        """
        self.seen.append(request)
        self.bodies.append(request.content.read())
        return b"ok"


class EncodingTests(SynchronousTestCase):
    """
    Query parameters, forms and JSON are encoded as servers expect.
    """

    def test_queryParameters(self) -> None:
        """
        C{params} are URL-encoded (UTF-8, space as +) after any query
        already in the URL; a list repeats the name.
        """
        raw = Raw()
        stub = StubTreq(raw)
        request(stub, "GET", "http://example.com/s?a=1", params=[("q", "café & co"), ("n", [1, 2])])
        self.assertEqual(raw.seen[0].uri, b"/s?a=1&q=caf%C3%A9+%26+co&n=1&n=2")

    def test_querySequence(self) -> None:
        """
        The server decodes the parameters back to what was given.
        """
        sequence = RequestSequence(
            [((b"get", "http://example.com/", {b"q": [b"a b"], b"x": [b"1"]}, HasHeaders({}), b""),
              (200, {}, b"found"))]
        )
        stub = StubTreq(StringStubbingResource(sequence))
        with sequence.consume(self.fail):
            response = result(self, request(stub, "GET", "http://example.com/", params={"q": "a b", "x": 1}))
        self.assertEqual(response.body, b"found")

    def test_form(self) -> None:
        """
        C{data} as a mapping is sent as an urlencoded form.
        """
        raw = Raw()
        stub = StubTreq(raw)
        request(stub, "POST", "http://example.com/f", data={"name": "Ada Lovelace", "x": "1&2"})
        self.assertEqual(raw.bodies[0], b"name=Ada+Lovelace&x=1%262")
        self.assertEqual(
            raw.seen[0].requestHeaders.getRawHeaders(b"content-type"),
            [b"application/x-www-form-urlencoded"],
        )
        self.assertEqual(raw.seen[0].method, b"POST")

    def test_json(self) -> None:
        """
        C{json} is serialised and sent as application/json.
        """
        raw = Raw()
        stub = StubTreq(raw)
        request(stub, "PUT", "http://example.com/j", json={"n": 1, "s": "é"})
        self.assertEqual(json.loads(raw.bodies[0]), {"n": 1, "s": "é"})
        contentType = raw.seen[0].requestHeaders.getRawHeaders(b"content-type")[0]
        self.assertTrue(contentType.startswith(b"application/json"))

    def test_jsonNull(self) -> None:
        """
        C{json=None} sends the JSON C{null}, not an empty body.
        """
        raw = Raw()
        request(StubTreq(raw), "POST", "http://example.com/j", json=None)
        self.assertEqual(raw.bodies[0], b"null")


class HeaderTests(SynchronousTestCase):
    """
    Headers, the default User-Agent and basic authentication.
    """

    def test_defaultUserAgent(self) -> None:
        """
        Requests carry C{User-Agent: netservices/<version>}.
        """
        recorder = Recorder()
        request(StubTreq(StringStubbingResource(recorder)), "GET", "http://example.com/")
        self.assertEqual(DEFAULT_USER_AGENT, f"netservices/{__version__}")
        self.assertEqual(recorder.header(0, b"user-agent"), [DEFAULT_USER_AGENT.encode()])

    def test_userAgentArgument(self) -> None:
        """
        C{userAgent} replaces the default; L{None} sends none.
        """
        recorder = Recorder()
        stub = StubTreq(StringStubbingResource(recorder))
        request(stub, "GET", "http://example.com/", userAgent="probe/1.0")
        request(stub, "GET", "http://example.com/", userAgent=None)
        self.assertEqual(recorder.header(0, b"user-agent"), [b"probe/1.0"])
        self.assertIsNone(recorder.header(1, b"user-agent"))

    def test_userAgentHeader(self) -> None:
        """
        A User-Agent among C{headers} (any case) wins over the default.
        """
        recorder = Recorder()
        stub = StubTreq(StringStubbingResource(recorder))
        request(stub, "GET", "http://example.com/", headers={"user-agent": "mine/2"})
        self.assertEqual(recorder.header(0, b"user-agent"), [b"mine/2"])

    def test_headers(self) -> None:
        """
        C{headers} as pairs may repeat a name; every value is sent.
        """
        recorder = Recorder()
        stub = StubTreq(StringStubbingResource(recorder))
        request(stub, "GET", "http://example.com/", headers=[("X-Tag", "a"), ("X-Tag", "b"), ("Accept", "text/plain")])
        self.assertEqual(recorder.header(0, b"x-tag"), [b"a", b"b"])
        self.assertEqual(recorder.header(0, b"accept"), [b"text/plain"])

    def test_basicAuth(self) -> None:
        """
        C{auth} sends HTTP basic credentials.
        """
        recorder = Recorder()
        stub = StubTreq(StringStubbingResource(recorder))
        request(stub, "GET", "http://example.com/", auth=("ada", "s3cr:t"))
        expected = b"Basic " + base64.b64encode(b"ada:s3cr:t")
        self.assertEqual(recorder.header(0, b"authorization"), [expected])


class Lacks:
    """
    Matches request headers (in a L{RequestSequence}) that have none of
    the given names.
    """

    def __init__(self, *names: bytes) -> None:
        self._names = {n.lower() for n in names}

    def __eq__(self, headers: object) -> bool:
        assert isinstance(headers, dict)
        return not any(name.lower() in self._names for name in headers)

    def __repr__(self) -> str:
        return f"Lacks({sorted(self._names)!r})"


def redirect(to: str, code: int = 302) -> tuple[int, dict[bytes, bytes], bytes]:
    """
    A stub response redirecting to C{to}.
    """
    return (code, {b"location": to.encode()}, b"moved")


class RedirectTests(SynchronousTestCase):
    """
    Redirects: which are followed, how many, and where credentials go.
    """

    def test_crossOriginDropsCredentials(self) -> None:
        """
        A redirect to another origin does not carry Authorization (from
        C{auth} or C{headers}) or Cookie; the first request had them.
        """
        recorder = Recorder(redirect("http://other.example/landing"), (200, {}, b"there"))
        stub = StubTreq(StringStubbingResource(recorder))
        response = result(
            self,
            request(
                stub, "GET", "http://example.com/start", auth=("ada", "pw"),
                headers={"Cookie": "session=1", "X-Keep": "yes"},
            ),
        )
        self.assertEqual(response.body, b"there")
        self.assertEqual(response.url, "http://other.example/landing")
        self.assertEqual(response.redirects, ("http://other.example/landing",))
        self.assertIsNotNone(recorder.header(0, b"authorization"))
        self.assertEqual(recorder.header(0, b"cookie"), [b"session=1"])
        self.assertIsNone(recorder.header(1, b"authorization"))
        self.assertIsNone(recorder.header(1, b"cookie"))
        self.assertEqual(recorder.header(1, b"x-keep"), [b"yes"])

    def test_crossOriginSequence(self) -> None:
        """
        The same, as a L{RequestSequence}: the first request carries the
        credentials, the one after the cross-origin redirect lacks them.
        """
        credentials = {"Authorization": [b"Basic " + base64.b64encode(b"ada:pw")], "Cookie": [b"s=1"]}
        sequence = RequestSequence(
            [
                ((b"get", "http://example.com/start", {}, HasHeaders(credentials), b""),
                 redirect("http://other.example/landing")),
                ((b"get", "http://other.example/landing", {}, Lacks(b"authorization", b"cookie"), b""),
                 (200, {}, b"there")),
            ]
        )
        stub = StubTreq(StringStubbingResource(sequence))
        with sequence.consume(self.fail):
            response = result(
                self,
                request(stub, "GET", "http://example.com/start", auth=("ada", "pw"), headers={"Cookie": "s=1"}),
            )
        self.assertEqual(response.body, b"there")

    def test_explicitAuthorizationHeaderDropped(self) -> None:
        """
        An Authorization given as a header is dropped across origins too.
        """
        recorder = Recorder(redirect("http://other.example/"), (200, {}, b""))
        stub = StubTreq(StringStubbingResource(recorder))
        request(stub, "GET", "http://example.com/", headers={"Authorization": "Bearer t"})
        self.assertEqual(recorder.header(0, b"authorization"), [b"Bearer t"])
        self.assertIsNone(recorder.header(1, b"authorization"))

    def test_schemeChangeIsCrossOrigin(self) -> None:
        """
        The same host on another scheme or port is another origin.
        """
        recorder = Recorder(
            redirect("https://example.com/secure"),
            redirect("https://example.com:8443/other"),
            (200, {}, b""),
        )
        stub = StubTreq(StringStubbingResource(recorder))
        request(stub, "GET", "http://example.com/", auth=("u", "p"))
        self.assertIsNotNone(recorder.header(0, b"authorization"))
        self.assertIsNone(recorder.header(1, b"authorization"))
        self.assertIsNone(recorder.header(2, b"authorization"))

    def test_sameOriginKeepsCredentials(self) -> None:
        """
        A redirect within the origin keeps Authorization and Cookie, and a
        relative Location resolves against the request URL.
        """
        recorder = Recorder(redirect("/next?x=1"), (200, {}, b""))
        stub = StubTreq(StringStubbingResource(recorder))
        response = result(
            self,
            request(stub, "GET", "http://example.com/a/b", auth=("u", "p"), headers={"Cookie": "c=1"}),
        )
        self.assertEqual(response.url, "http://example.com/next?x=1")
        self.assertIsNotNone(recorder.header(1, b"authorization"))
        self.assertEqual(recorder.header(1, b"cookie"), [b"c=1"])

    def test_postNotFollowedByDefault(self) -> None:
        """
        By default only GET and HEAD follow redirects: a POST gets the
        redirect itself.
        """
        recorder = Recorder(redirect("http://example.com/done"))
        stub = StubTreq(StringStubbingResource(recorder))
        response = result(self, request(stub, "POST", "http://example.com/", data={"a": "1"}))
        self.assertEqual(response.status, 302)
        self.assertEqual(response.header("Location"), "http://example.com/done")
        self.assertEqual(len(recorder.requests), 1)

    def test_followedPostBecomesGet(self) -> None:
        """
        With C{followRedirects=True}, a 303 (or 301/302) after POST is
        followed with a GET without body.
        """
        recorder = Recorder(redirect("http://example.com/done", 303), (200, {}, b"done"))
        stub = StubTreq(StringStubbingResource(recorder))
        result(self, request(stub, "POST", "http://example.com/", data={"a": "1"}, followRedirects=True))
        self.assertEqual(recorder.requests[1]["method"], b"GET")
        self.assertEqual(recorder.requests[1]["data"], b"")

    def test_307KeepsMethodAndBody(self) -> None:
        """
        A 307 is followed with the same method and body.
        """
        recorder = Recorder(redirect("http://example.com/again", 307), (200, {}, b""))
        stub = StubTreq(StringStubbingResource(recorder))
        result(self, request(stub, "PUT", "http://example.com/", data=b"payload", followRedirects=True))
        self.assertEqual(recorder.requests[1]["method"], b"PUT")
        self.assertEqual(recorder.requests[1]["data"], b"payload")

    def test_maximum(self) -> None:
        """
        One redirect more than C{maxRedirects} fails with
        L{TooManyRedirects}.
        """
        recorder = Recorder(redirect("http://example.com/loop"))
        stub = StubTreq(StringStubbingResource(recorder))
        failure = self.failureResultOf(
            request(stub, "GET", "http://example.com/", maxRedirects=3), TooManyRedirects
        )
        self.assertEqual(failure.value.limit, 3)
        self.assertEqual(len(recorder.requests), 4)

    def test_notFollowed(self) -> None:
        """
        C{followRedirects=False} returns the redirect.
        """
        recorder = Recorder(redirect("http://example.com/x", 301))
        stub = StubTreq(StringStubbingResource(recorder))
        response = result(self, request(stub, "GET", "http://example.com/", followRedirects=False))
        self.assertEqual(response.status, 301)


class FlakyClient:
    """
    A client that fails its first calls with given errors, then passes the
    rest to a real (stub) client.
    """

    def __init__(self, client: Any, *errors: Exception) -> None:
        self._client = client
        self._errors = list(errors)
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """
        Fail with the next error, or pass the call on.
        """
        self.calls += 1
        if self._errors:
            return fail(self._errors.pop(0))
        return self._client.request(*args, **kwargs)


class RetryTests(SynchronousTestCase):
    """
    Retries with exponential backoff, timed by a L{Clock}.
    """

    def test_backoffOnServiceUnavailable(self) -> None:
        """
        A 503 is retried after C{backoff}, then twice as long, until it
        succeeds.
        """
        clock = Clock()
        recorder = Recorder((503, {}, b"busy"), (502, {}, b"bad"), (200, {}, b"fine"))
        stub = StubTreq(StringStubbingResource(recorder))
        d = request(stub, "GET", "http://example.com/", retries=3, backoff=1.0, reactor=clock)
        self.assertEqual(len(recorder.requests), 1)
        clock.advance(0.99)
        self.assertEqual(len(recorder.requests), 1)
        clock.advance(0.01)
        self.assertEqual(len(recorder.requests), 2)
        clock.advance(1.99)
        self.assertEqual(len(recorder.requests), 2)
        self.assertNoResult(d)
        clock.advance(0.01)
        response = result(self, d)
        self.assertEqual((response.status, response.body, response.attempts), (200, b"fine", 3))

    def test_retriesExhausted(self) -> None:
        """
        When the retries run out, the last 5xx response is returned.
        """
        clock = Clock()
        recorder = Recorder((504, {}, b"slow"))
        stub = StubTreq(StringStubbingResource(recorder))
        d = request(stub, "GET", "http://example.com/", retries=2, backoff=0.5, reactor=clock)
        clock.pump([0.5, 1.0])
        response = result(self, d)
        self.assertEqual((response.status, response.attempts), (504, 3))
        self.assertEqual(len(recorder.requests), 3)

    def test_noRetryForPost(self) -> None:
        """
        A POST that got a 503 is not sent again: it may have been acted on.
        """
        clock = Clock()
        recorder = Recorder((503, {}, b"busy"), (200, {}, b""))
        stub = StubTreq(StringStubbingResource(recorder))
        response = result(self, request(stub, "POST", "http://example.com/", retries=3, reactor=clock))
        self.assertEqual(response.status, 503)
        self.assertEqual(len(recorder.requests), 1)

    def test_notOtherStatuses(self) -> None:
        """
        A 500 or 404 is an answer, not retried.
        """
        clock = Clock()
        recorder = Recorder((500, {}, b"broken"), (200, {}, b""))
        stub = StubTreq(StringStubbingResource(recorder))
        response = result(self, request(stub, "GET", "http://example.com/", retries=3, reactor=clock))
        self.assertEqual(response.status, 500)

    def test_retryAfter(self) -> None:
        """
        A longer C{Retry-After} is honoured (up to C{maxBackoff}).
        """
        clock = Clock()
        recorder = Recorder((503, {b"retry-after": b"5"}, b""), (200, {}, b"ok"))
        stub = StubTreq(StringStubbingResource(recorder))
        d = request(stub, "GET", "http://example.com/", retries=1, backoff=1.0, reactor=clock)
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.assertEqual(result(self, d).status, 200)

    def test_connectionRefused(self) -> None:
        """
        Connection errors are retried with backoff (0.5 s, then 1 s).
        """
        clock = Clock()
        stub = StubTreq(StringStubbingResource(Recorder()))
        flaky = FlakyClient(stub, ConnectionRefusedError(), ConnectionRefusedError())
        d = request(flaky, "GET", "http://example.com/", retries=2, backoff=0.5, reactor=clock)
        self.assertEqual(flaky.calls, 1)
        clock.advance(0.5)
        self.assertEqual(flaky.calls, 2)
        clock.advance(0.9)
        self.assertEqual(flaky.calls, 2)
        clock.advance(0.1)
        self.assertEqual(result(self, d).status, 200)

    def test_connectionRefusedForPost(self) -> None:
        """
        A refused connection is retried even for POST: nothing was sent.
        """
        clock = Clock()
        stub = StubTreq(StringStubbingResource(Recorder()))
        flaky = FlakyClient(stub, ConnectionRefusedError())
        d = request(flaky, "POST", "http://example.com/", retries=1, reactor=clock)
        clock.advance(0.5)
        self.assertEqual(result(self, d).status, 200)

    def test_lostBeforeResponseForPost(self) -> None:
        """
        A POST whose connection broke before the response is not sent again.
        """
        clock = Clock()
        stub = StubTreq(StringStubbingResource(Recorder()))
        lost = ResponseNeverReceived([Failure(ConnectionRefusedError())])
        flaky = FlakyClient(stub, lost)
        self.failureResultOf(
            request(flaky, "POST", "http://example.com/", retries=3, reactor=clock),
            ResponseNeverReceived,
        )
        self.assertEqual(flaky.calls, 1)

    def test_lastErrorRaised(self) -> None:
        """
        When every attempt fails to connect, the last error is raised.
        """
        clock = Clock()
        flaky = FlakyClient(None, *[ConnectionRefusedError() for _ in range(3)])
        d = request(flaky, "GET", "http://example.com/", retries=2, reactor=clock)
        clock.pump([0.5, 1.0])
        self.failureResultOf(d, ConnectionRefusedError)
        self.assertEqual(flaky.calls, 3)


class Dribble(resource.Resource):
    """
    Sends the headers and C{first}, then nothing until told.
    """

    isLeaf = True

    def __init__(self, first: bytes = b"x", length: int | None = 1000) -> None:
        resource.Resource.__init__(self)
        self.first = first
        self.length = length
        self.requests: list[server.Request] = []

    def render_GET(self, request: server.Request) -> int:
        """
        Send the headers and the first bytes, then wait.
        """
        if self.length is not None:
            request.setHeader(b"content-length", str(self.length).encode())
        request.write(self.first)
        self.requests.append(request)
        return server.NOT_DONE_YET


class Silent(resource.Resource):
    """
    Never answers.
    """

    isLeaf = True

    def render_GET(self, request: server.Request) -> int:
        """
        Never answer.
        """
        return server.NOT_DONE_YET


class DeadlineTests(SynchronousTestCase):
    """
    C{timeout} bounds the whole request, body included.
    """

    def test_bodyTrickle(self) -> None:
        """
        A server that sent the headers but trickles the body is cut off at
        the deadline with L{RequestTimeout}.
        """
        clock = Clock()
        dribble = Dribble()
        stub = StubTreq(dribble)
        d = request(stub, "GET", "http://example.com/slow", timeout=2.0, reactor=clock)
        stub.flush()
        clock.advance(1.0)
        dribble.requests[0].write(b"y")
        stub.flush()
        self.assertNoResult(d)
        clock.advance(1.0)
        failure = self.failureResultOf(d, RequestTimeout)
        self.assertEqual(failure.value.seconds, 2.0)
        self.assertIn("timed out after 2 s", str(failure.value))

    def test_noHeaders(self) -> None:
        """
        A server that never answers times out too.
        """
        clock = Clock()
        d = request(StubTreq(Silent()), "GET", "http://example.com/", timeout=5, reactor=clock)
        clock.advance(5)
        self.failureResultOf(d, RequestTimeout)

    def test_coversRetries(self) -> None:
        """
        No retry starts past the deadline: the last answer is returned
        when the next backoff would end after it.
        """
        clock = Clock()
        recorder = Recorder((503, {}, b"busy"))
        stub = StubTreq(StringStubbingResource(recorder))
        d = request(stub, "GET", "http://example.com/", retries=5, backoff=1.0, timeout=2.5, reactor=clock)
        clock.advance(1.0)
        response = result(self, d)
        self.assertEqual(response.status, 503)
        self.assertEqual(len(recorder.requests), 2)

    def test_inTime(self) -> None:
        """
        A response that completes in time is returned, and the deadline's
        timer is cancelled.
        """
        clock = Clock()
        stub = StubTreq(StringStubbingResource(Recorder((200, {}, b"quick"))))
        response = result(self, request(stub, "GET", "http://example.com/", timeout=1, reactor=clock))
        self.assertEqual(response.body, b"quick")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancel(self) -> None:
        """
        Cancelling the request fails it with L{CancelledError}, not a
        timeout.
        """
        clock = Clock()
        d = request(StubTreq(Silent()), "GET", "http://example.com/", timeout=5, reactor=clock)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(clock.getDelayedCalls(), [])


class SizeTests(SynchronousTestCase):
    """
    C{maxSize} bounds the body.
    """

    def test_contentLength(self) -> None:
        """
        A Content-Length over the limit fails at once.
        """
        stub = StubTreq(StringStubbingResource(Recorder((200, {}, b"x" * 100))))
        failure = self.failureResultOf(
            request(stub, "GET", "http://example.com/", maxSize=99), ResponseTooLarge
        )
        self.assertIn("Content-Length 100", str(failure.value))

    def test_streamed(self) -> None:
        """
        A body of unknown length fails as soon as it passes the limit.
        """
        dribble = Dribble(b"a" * 60, length=None)
        stub = StubTreq(dribble)
        d = request(stub, "GET", "http://example.com/", maxSize=100)
        stub.flush()
        self.assertNoResult(d)
        dribble.requests[0].write(b"b" * 60)
        stub.flush()
        self.failureResultOf(d, ResponseTooLarge)

    def test_atLimit(self) -> None:
        """
        A body exactly at the limit is accepted.
        """
        stub = StubTreq(StringStubbingResource(Recorder((200, {}, b"x" * 100))))
        self.assertEqual(result(self, request(stub, "GET", "http://example.com/", maxSize=100)).received, 100)


class StreamingTests(SynchronousTestCase):
    """
    Bodies go to a sink, with progress, instead of memory.
    """

    def test_sinkAndProgress(self) -> None:
        """
        The body goes to C{sink}; C{progress} sees the count and the total.
        """
        stub = StubTreq(StringStubbingResource(Recorder((200, {}, b"0123456789"))))
        chunks: list[bytes] = []
        progress: list[tuple[int, int | None]] = []
        response = result(
            self,
            request(stub, "GET", "http://example.com/", sink=chunks.append,
                    progress=lambda n, total: progress.append((n, total))),
        )
        self.assertEqual(b"".join(chunks), b"0123456789")
        self.assertEqual(response.body, b"")
        self.assertEqual(response.received, 10)
        self.assertEqual(progress[-1], (10, 10))

    def test_onResponseStops(self) -> None:
        """
        An exception from C{onResponse} fails the request before any of the
        body reaches the sink.
        """
        stub = StubTreq(StringStubbingResource(Recorder((404, {}, b"missing"))))
        chunks: list[bytes] = []

        def check(response: Response) -> None:
            if response.status >= 400:
                raise ValueError(response.status)

        d = request(stub, "GET", "http://example.com/", sink=chunks.append, onResponse=check)
        self.failureResultOf(d, ValueError)
        self.assertEqual(chunks, [])

    def test_download(self) -> None:
        """
        L{download} writes the body to the file, through a C{.part} file
        that is renamed at the end.
        """
        target = temporaryDirectory(self) / "file"
        stub = StubTreq(StringStubbingResource(Recorder((200, {}, b"file body"))))
        response = result(self, download(stub, "http://example.com/f", target))
        self.assertEqual(target.read_bytes(), b"file body")
        self.assertEqual(response.received, 9)
        self.assertFalse(target.with_name(target.name + ".part").exists())

    def test_downloadFailure(self) -> None:
        """
        A failed download leaves no file behind.
        """
        target = temporaryDirectory(self) / "file"
        stub = StubTreq(StringStubbingResource(Recorder((200, {}, b"x" * 50))))
        self.failureResultOf(download(stub, "http://example.com/f", target, maxSize=10), ResponseTooLarge)
        self.assertEqual(list(target.parent.iterdir()), [])


class ResponseTests(SynchronousTestCase):
    """
    The L{Response} value.
    """

    def test_headers(self) -> None:
        """
        Header look-ups ignore case; Content-Length is included and
        Twisted's empty Content-Encoding is not.
        """
        stub = StubTreq(StringStubbingResource(Recorder((200, {b"X-A": b"1"}, b"abc"))))
        response = result(self, request(stub, "GET", "http://example.com/"))
        self.assertEqual(response.header("x-a"), "1")
        self.assertEqual(response.header("content-length"), "3")
        self.assertIsNone(response.header("content-encoding"))
        self.assertEqual(response.version, "HTTP/1.1")

    def test_textAndJSON(self) -> None:
        """
        C{text} decodes with the charset of the Content-Type; C{json}
        parses.
        """
        body = "{\"k\": \"é\"}".encode("latin-1")
        r = Response(200, "OK", "HTTP/1.1", (("Content-Type", "application/json; charset=latin-1"),), "u", body)
        self.assertEqual(r.text(), "{\"k\": \"é\"}")
        self.assertEqual(Response(200, "OK", "HTTP/1.1", (), "u", b'{"a": [1]}').json(), {"a": [1]})
