# -*- test-case-name: tests.test_client -*-
"""
HTTP requests with treq, with the policies a command-line client needs.

L{makeClient} builds a treq L{HTTPClient} over a persistent connection pool,
TLS with hostname verification, and proxies (L{services.client._agent}).
L{request} sends one request through any such client, including
L{treq.testing.StubTreq}, and adds:

  - a default C{User-Agent: netservices/<version>}, overridable;
  - redirects, followed by default for GET and HEAD, at most C{maxRedirects}
    of them, with C{Authorization} and C{Cookie} sent only to the origin of
    the first URL (as Twisted's C{RedirectAgent} does);
  - retries with exponential backoff on connection errors and on 502, 503
    and 504, for idempotent methods only;
  - a C{timeout} that covers the whole request, redirects, retries and the
    body included (treq's own C{timeout} stops at the response headers: a
    server that trickles its body would keep the caller waiting);
  - a C{maxSize} for the body, and streaming of the body to a C{sink} with a
    C{progress} callback, so memory stays bounded (L{download});
  - bounded response heads (L{ResponseHeadersTooLarge}, as curl: 300 KiB);
  - bodies passed on as they came, still compressed, unless C{compressed}
    asks for gzip or deflate; then they are decoded in bounded steps and
    C{maxSize} counts the decoded bytes (L{services.client._coding});
  - IPv6 address literals in URLs (C{http://[::1]:8080/}), which treq's
    hyperlink would refuse.

Example::

    from twisted.internet.task import react
    from services.client._api import makeClient, request

    async def main(reactor):
        client = makeClient(reactor)
        response = await request(
            client, "GET", "https://example.com/search",
            params={"q": "twisted"}, timeout=10, retries=2, clock=reactor,
        )
        print(response.status, response.text())

    react(main)
"""

from __future__ import annotations

import errno
import json as _json
import os
import secrets
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hyperlink import EncodedURL
from OpenSSL import SSL
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.error import ConnectError, ConnectingCancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import (
    HTTPConnectionPool,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IPolicyForHTTPS, IResponse

from services import __version__, logs
from services.client._agent import makeAgent
from services.client._coding import (
    ACCEPT_ENCODING,
    CodingError,
    Decoder,
    WithoutTreqEncoding,
    decoderFor,
    rawResponse,
)
from services.client._tunnel import ProxySettings
from services.client._head import MAX_HEAD_BYTES, MAX_HEAD_LINES, HeadLimits, HeadTooLarge

__all__ = [
    "DEFAULT_USER_AGENT",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "BadContentEncoding",
    "ClientError",
    "HTTPStatusError",
    "RequestTimeout",
    "Response",
    "ResponseHeadersTooLarge",
    "ResponseTooLarge",
    "TooManyRedirects",
    "download",
    "makeClient",
    "request",
]

#: The C{User-Agent} sent unless the caller gives another.
DEFAULT_USER_AGENT = f"netservices/{__version__}"

#: Methods that may be sent again after a failure (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

#: Statuses that say "try again later": retried for idempotent methods.
RETRY_STATUSES = frozenset({502, 503, 504})

#: Statuses followed as redirects (when they carry a Location).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

#: Headers sent only to the origin of the first URL, as Twisted's
#: RedirectAgent does.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "cookie2", "proxy-authorization", "www-authenticate"}
)

#: The most of a redirect's or a retried response's body that is read (to
#: keep its connection for reuse) before the connection is dropped instead.
DISCARD_LIMIT = 64 * 1024

HeadersType = Mapping[str, str] | Sequence[tuple[str, str]]
ParamsType = Mapping[str, Any] | Sequence[tuple[str, Any]]
Sink = Callable[[bytes], object]
Progress = Callable[[int, int | None], object]

_NO_JSON: Any = object()


class ClientError(Exception):
    """
    A request failed for a reason of the client's own policies.

    @ivar url: the URL being fetched.
    """

    url: str = ""


class RequestTimeout(ClientError):
    """
    The whole request took longer than its timeout.
    """

    def __init__(self, seconds: float, url: str) -> None:
        ClientError.__init__(self, f"timed out after {seconds:g} s: {url}")
        self.seconds = seconds
        self.url = url


class ResponseTooLarge(ClientError):
    """
    The response body is larger than allowed.
    """

    def __init__(self, limit: int, url: str, length: int | None = None) -> None:
        said = f" (Content-Length {length})" if length is not None else ""
        ClientError.__init__(self, f"response larger than {limit} bytes{said}: {url}")
        self.limit = limit
        self.url = url


class ResponseHeadersTooLarge(ClientError):
    """
    The response's status line and headers went over a limit (by default
    curl's 300 KiB, or 1,000 lines, or a line over 16 KiB); the connection
    was dropped as soon as they did.

    @ivar detail: which limit, in words.
    """

    def __init__(self, detail: str, url: str) -> None:
        ClientError.__init__(self, f"response headers too large ({detail}): {url}")
        self.detail = detail
        self.url = url


class BadContentEncoding(ClientError):
    """
    With C{compressed}, the body cannot be decoded (an unknown or stacked
    coding, or corrupt data).
    """

    def __init__(self, reason: str, url: str) -> None:
        ClientError.__init__(self, f"{reason}: {url}")
        self.url = url


class HTTPStatusError(ClientError):
    """
    The server answered with an error status (400 or more): raised by
    L{download} (unless C{keepError}), whose file is then not written.

    @ivar status: the HTTP status.
    @ivar phrase: its reason phrase.
    @ivar path: the file that was not written, or L{None}.
    """

    def __init__(self, status: int, phrase: str, url: str, path: str | None = None) -> None:
        said = f" (not saved to {path})" if path is not None else ""
        ClientError.__init__(self, f"HTTP error {status} {phrase}: {url}{said}")
        self.status = status
        self.phrase = phrase
        self.url = url
        self.path = path


class TooManyRedirects(ClientError):
    """
    A response redirected once more than allowed.
    """

    def __init__(self, limit: int, url: str) -> None:
        ClientError.__init__(self, f"more than {limit} redirects, the last to {url}")
        self.limit = limit
        self.url = url


@dataclass(frozen=True)
class Response:
    """
    A finished response.

    @ivar status: the HTTP status code.
    @ivar phrase: the reason phrase.
    @ivar version: the protocol, e.g. C{"HTTP/1.1"}.
    @ivar headers: the header fields as (name, value) pairs, in order.
    @ivar url: the URL that answered (after redirects, with the query).
    @ivar body: the body, unless it went to a sink (then C{b""}).
    @ivar received: the number of body bytes received.
    @ivar redirects: the URLs redirected to, in order.
    @ivar attempts: how many times the last request was sent.
    """

    status: int
    phrase: str
    version: str
    headers: tuple[tuple[str, str], ...]
    url: str
    body: bytes = b""
    received: int = 0
    redirects: tuple[str, ...] = ()
    attempts: int = 1

    def header(self, name: str, default: str | None = None) -> str | None:
        """
        The last value of header C{name} (any case), or C{default}.
        """
        values = self.headerValues(name)
        return values[-1] if values else default

    def headerValues(self, name: str) -> list[str]:
        """
        Every value of header C{name} (any case), in order.
        """
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def text(self, encoding: str | None = None) -> str:
        """
        The body decoded with C{encoding}, else the charset of its
        Content-Type, else UTF-8 (undecodable bytes replaced).
        """
        charset = encoding or _charset(self.header("content-type")) or "utf-8"
        try:
            return self.body.decode(charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """
        The body parsed as JSON.
        """
        return _json.loads(self.body)


def _charset(contentType: str | None) -> str | None:
    for part in (contentType or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = EncodedURL.from_text(url)
    return (parsed.scheme.lower(), parsed.host.lower(), parsed.port)


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _BodyReader(Protocol):
    """
    Reads a response body into a sink, counting bytes against a limit;
    with a L{Decoder}, decodes it first, in bounded steps, and counts the
    decoded bytes.

    @ivar finished: fires with the number of bytes received when the body is
        complete; fails with L{ResponseTooLarge}, the sink's exception, or
        the connection's error.  Cancelling it drops the connection.
    """

    def __init__(
        self,
        url: str,
        limit: int | None,
        sink: Sink | None,
        progress: Progress | None = None,
        total: int | None = None,
        discard: bool = False,
        decoder: Decoder | None = None,
    ) -> None:
        self._url = url
        self._limit = limit
        self._sink = sink
        self._progress = progress
        self._total = total
        self._discard = discard
        self._decoder = decoder
        self.received = 0
        self.finished: Deferred[int] = Deferred(self._cancel)

    def connectionMade(self) -> None:
        """
        Refuse at once a body whose declared length is over the limit.
        """
        if self._limit is not None and self._total is not None and self._total > self._limit:
            if self._discard:
                self._stop(self.received)
            else:
                self._stop(Failure(ResponseTooLarge(self._limit, self._url, self._total)))

    def dataReceived(self, data: bytes) -> None:
        """
        Decode C{data} (with a decoder) and deliver it.
        """
        if self.finished.called:
            return
        if self._decoder is None:
            self._deliver(data)
            return
        try:
            for piece in self._decoder.decode(data):
                self._deliver(piece)
                if self.finished.called:
                    return
        except CodingError as e:
            self._stop(Failure(BadContentEncoding(str(e), self._url)))

    def _deliver(self, data: bytes) -> None:
        """
        Count C{data}, check the limit, pass it to the sink.
        """
        self.received += len(data)
        if self._limit is not None and self.received > self._limit:
            if self._discard:
                self._stop(self.received)
            else:
                self._stop(Failure(ResponseTooLarge(self._limit, self._url)))
            return
        try:
            if self._sink is not None:
                self._sink(data)
            if self._progress is not None:
                self._progress(self.received, self._total)
        except BaseException:
            self._stop(Failure())

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        """
        The body is complete (or the connection failed).
        """
        if self.finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            if self._decoder is not None:
                self.dataReceived(b"")
                if self.finished.called:
                    return
            self.finished.callback(self.received)
        else:
            self.finished.errback(reason)

    def _stop(self, result: int | Failure) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]
        if isinstance(result, Failure):
            self.finished.errback(result)
        else:
            self.finished.callback(result)

    def _cancel(self, finished: Deferred[int]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]


def _isRetryable(error: BaseException, method: str) -> bool:
    """
    Whether C{error} is a connection failure worth another attempt: a
    failure to connect (the request was not sent, whatever its method), or
    a connection lost before the response for an idempotent method.  TLS
    failures are not retried.
    """
    if isinstance(error, ConnectError) and not isinstance(error, ConnectingCancelledError):
        return True
    if method in IDEMPOTENT_METHODS and isinstance(
        error, (ResponseNeverReceived, RequestTransmissionFailed)
    ):
        return not any(r.check(CancelledError, SSL.Error) for r in error.reasons)
    return False


def _version(response: IResponse) -> str:
    protocol, major, minor = response.version
    return f"{_text(protocol)}/{major}.{minor}"


def _ignore(failure: Failure) -> None:
    return None


def _retryAfter(response: IResponse) -> float | None:
    values = response.headers.getRawHeaders(b"retry-after")
    if not values:
        return None
    try:
        return max(0.0, float(int(values[-1].strip())))
    except ValueError:
        return None


def _withQuery(url: str, params: ParamsType | None) -> str:
    """
    C{url} with C{params} appended, as shown in logs.
    """
    if not params:
        return url
    items = params.items() if isinstance(params, Mapping) else params
    query = urlencode([(k, v) for k, v in items], doseq=True)
    return url + ("&" if "?" in url else "?") + query


def _headerPairs(headers: HeadersType | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def _redacted(name: str, value: str) -> str:
    if name.lower() in SENSITIVE_HEADERS:
        scheme = value.split(" ", 1)[0] if " " in value else ""
        return f"{scheme} (hidden)".strip()
    return value


@dataclass(frozen=True)
class _Policy:
    """
    How one call of L{request} behaves, apart from what it sends (see
    L{request} for each field).

    @ivar headers: the request's header fields, C{User-Agent} and
        C{Accept-Encoding} included.
    @ivar deadline: when the whole call must be over, on C{clock}.
    """

    headers: tuple[tuple[str, str], ...]
    auth: tuple[str, str] | None
    followRedirects: bool | None
    maxRedirects: int
    retries: int
    backoff: float
    maxBackoff: float
    maxSize: int | None
    sink: Sink | None
    progress: Progress | None
    onResponse: Callable[[Response], object] | None
    clock: IReactorTime | None
    deadline: float | None
    compressed: bool


def _requestHeaders(
    headers: HeadersType | None, userAgent: str | None, compressed: bool
) -> tuple[tuple[str, str], ...]:
    """
    C{headers} as pairs, with C{userAgent} first and, when C{compressed},
    the codings accepted, unless C{headers} has them already.
    """
    pairs = _headerPairs(headers)
    names = {name.lower() for name, _ in pairs}
    if userAgent and "user-agent" not in names:
        pairs.insert(0, ("User-Agent", userAgent))
    if compressed and "accept-encoding" not in names:
        pairs.append(("Accept-Encoding", ACCEPT_ENCODING))
    return tuple(pairs)


class _Transfer:
    """
    One call of L{request}: the redirect loop around the retry loop around
    treq's C{request}.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        client: Any,
        method: str,
        url: str,
        params: ParamsType | None,
        data: Any,
        json: Any,
        policy: _Policy,
    ) -> None:
        self._client = client
        self._method = method.upper()
        self._url = url
        self._params = params
        self._data = data
        self._json = json
        self._p = policy
        self._follow = (
            policy.followRedirects
            if policy.followRedirects is not None
            else self._method in ("GET", "HEAD")
        )
        self.stopped = False

    async def run(self) -> Response:
        """
        Send the request, follow redirects, read the final body.
        """
        method, url, params = self._method, self._url, self._params
        data, json = self._data, self._json
        origin = _origin(url)
        redirects: list[str] = []
        while True:
            response, attempts = await self._send(method, url, params, data, json, _origin(url) == origin)
            requestURL = _text(response.request.absoluteURI) if response.request else url
            location = response.headers.getRawHeaders(b"location")
            if not (self._follow and response.code in REDIRECT_STATUSES and location):
                return await self._finish(response, method, requestURL, redirects, attempts)
            await self._discard(response, requestURL)
            target = EncodedURL.from_text(requestURL).click(_text(location[0]).strip()).to_text()
            if len(redirects) >= self._p.maxRedirects:
                raise TooManyRedirects(self._p.maxRedirects, target)
            self._log.debug(
                "{status} redirect from {url} to {location}",
                status=response.code,
                url=requestURL,
                location=target,
            )
            redirects.append(target)
            url, params = target, None
            if (response.code == 303 and method != "HEAD") or (
                response.code in (301, 302) and method == "POST"
            ):
                method, data, json = "GET", None, _NO_JSON

    async def _send(
        self, method: str, url: str, params: Any, data: Any, json: Any, sameOrigin: bool
    ) -> tuple[IResponse, int]:
        """
        Send one request, again after a backoff while it fails in a way
        worth retrying.
        """
        attempt = 0
        while True:
            attempt += 1
            kwargs: dict[str, Any] = {}
            if json is not _NO_JSON:
                kwargs["json"] = json
            if sameOrigin and self._p.auth is not None:
                kwargs["auth"] = self._p.auth
            headers = Headers()
            for name, value in self._p.headers:
                if sameOrigin or name.lower() not in SENSITIVE_HEADERS:
                    headers.addRawHeader(name, value)
            shown = [(n, _redacted(n, v)) for n, v in self._p.headers if headers.hasHeader(n)]
            if "auth" in kwargs:
                shown.append(("Authorization", "Basic (hidden)"))
            self._log.debug(
                "{method} {url}",
                method=method,
                url=_withQuery(url, params),
                attempt=attempt,
                requestHeaders=shown,
            )
            try:
                response = await self._client.request(
                    method,
                    _forTreq(url),
                    params=params,
                    data=data,
                    headers=headers,
                    allow_redirects=False,
                    unbuffered=True,
                    **kwargs,
                )
            except Exception as e:
                tooLarge = _headTooLarge(e)
                if tooLarge is not None:
                    raise ResponseHeadersTooLarge(tooLarge.detail, _withQuery(url, params)) from None
                if self.stopped or not _isRetryable(e, method):
                    raise
                delay = self._delay(attempt, None)
                if delay is None:
                    raise
                reason = str(e) or e.__class__.__name__
            else:
                response = rawResponse(response)
                self._log.debug(
                    "{version} {status} {phrase}",
                    version=_version(response),
                    status=response.code,
                    phrase=_text(response.phrase),
                    responseHeaders=_responseHeaders(response),
                )
                if response.code not in RETRY_STATUSES or method not in IDEMPOTENT_METHODS:
                    return response, attempt
                delay = self._delay(attempt, _retryAfter(response))
                if delay is None:
                    return response, attempt
                await self._discard(response, url)
                reason = f"{response.code} {_text(response.phrase)}"
            self._log.info(
                "{method} {url} failed ({reason}); retry {retry} of {retries} in {delay:.2f} s",
                method=method,
                url=url,
                reason=reason,
                retry=attempt,
                retries=self._p.retries,
                delay=delay,
            )
            await deferLater(self._p.clock, delay)  # type: ignore[arg-type]

    def _delay(self, attempt: int, retryAfter: float | None) -> float | None:
        """
        How long to wait before attempt C{attempt + 1}, or L{None} when no
        attempt is left (or the wait would pass the deadline).
        """
        if attempt > self._p.retries:
            return None
        delay = min(self._p.maxBackoff, self._p.backoff * 2 ** (attempt - 1))
        if retryAfter is not None:
            delay = max(delay, min(retryAfter, self._p.maxBackoff))
        if (
            self._p.deadline is not None
            and self._p.clock is not None
            and self._p.clock.seconds() + delay >= self._p.deadline
        ):
            return None
        return delay

    async def _discard(self, response: IResponse, url: str) -> None:
        """
        Read and drop a body we do not want, up to L{DISCARD_LIMIT}.
        """
        reader = _BodyReader(url, DISCARD_LIMIT, None, discard=True, total=_length(response))
        response.deliverBody(reader)
        try:
            await reader.finished
        except Exception:
            if self.stopped:
                raise

    async def _finish(
        self, response: IResponse, method: str, url: str, redirects: list[str], attempts: int
    ) -> Response:
        """
        Read the final response's body into the sink (or memory).
        """
        result = Response(
            status=response.code,
            phrase=_text(response.phrase),
            version=_version(response),
            headers=_responseHeaders(response),
            url=url,
            redirects=tuple(redirects),
            attempts=attempts,
        )
        total = None if method == "HEAD" else _length(response)
        decoder = None
        if self._p.compressed and method != "HEAD" and response.code not in (204, 304):
            try:
                decoder = decoderFor(result.headerValues("content-encoding"))
            except CodingError as e:
                await self._discard(response, url)
                raise BadContentEncoding(str(e), url) from None
        if decoder is not None:
            total = None  # the decoded size is not known before the end
        chunks: list[bytes] = []
        reader = _BodyReader(
            url, self._p.maxSize, self._p.sink or chunks.append, self._p.progress, total,
            decoder=decoder,
        )
        if self._p.onResponse is not None:
            try:
                self._p.onResponse(result)
            except BaseException:
                dropped = _BodyReader(url, 0, None, total=_length(response), discard=True)
                response.deliverBody(dropped)
                dropped.finished.addErrback(_ignore)
                raise
        response.deliverBody(reader)
        received = await reader.finished
        return replace(result, body=b"".join(chunks), received=received)


class _LiteralHostURL(EncodedURL):
    """
    A URL whose host is an IP address literal.  hyperlink's C{to_uri()},
    which treq calls on every URL, runs IDNA over the host, and IDNA refuses
    the colons of an IPv6 address (C{Codepoint U+003A ... not allowed});
    an address needs no IDNA: this converts the rest and keeps the host.
    """

    def to_uri(self) -> EncodedURL:
        """
        The URL with its path, query and fragment percent-encoded, and its
        host as it is.
        """
        converted: EncodedURL = EncodedURL.to_uri(self.replace(host=""))
        return converted.replace(host=self.host)


def _forTreq(url: str) -> str | EncodedURL:
    """
    C{url} as treq can send it: an IPv6 literal host as a L{_LiteralHostURL}.
    """
    if "[" not in url:
        return url
    parsed = _LiteralHostURL.from_text(url)
    return parsed if ":" in parsed.host else url


def _headTooLarge(error: BaseException) -> HeadTooLarge | None:
    """
    The L{HeadTooLarge} that made a request fail, if that is why.
    """
    if isinstance(error, HeadTooLarge):
        return error
    for reason in getattr(error, "reasons", None) or ():
        if isinstance(reason, Failure) and isinstance(reason.value, HeadTooLarge):
            return reason.value
    return None


def _responseHeaders(response: IResponse) -> tuple[tuple[str, str], ...]:
    """
    The response's header fields, with its Content-Length (which Twisted
    keeps out of C{headers}) and without the empty Content-Encoding that
    Twisted's C{ContentDecoderAgent} adds to responses that had none.
    """
    fields = [
        (_text(name), _text(value))
        for name, values in response.headers.getAllRawHeaders()
        for value in values
        if value or name.lower() != b"content-encoding"
    ]
    length = _length(response)
    if length is not None and not any(n.lower() == "content-length" for n, _ in fields):
        fields.append(("Content-Length", str(length)))
    return tuple(fields)


def _length(response: IResponse) -> int | None:
    length = response.length
    return None if length is UNKNOWN_LENGTH else int(length)


def request(
    client: Any,
    method: str,
    url: str,
    *,
    params: ParamsType | None = None,
    data: Any = None,
    json: Any = _NO_JSON,
    headers: HeadersType | None = None,
    auth: tuple[str, str] | None = None,
    userAgent: str | None = DEFAULT_USER_AGENT,
    followRedirects: bool | None = None,
    maxRedirects: int = 10,
    retries: int = 0,
    backoff: float = 0.5,
    maxBackoff: float = 30.0,
    timeout: float | None = None,
    maxSize: int | None = None,
    sink: Sink | None = None,
    progress: Progress | None = None,
    onResponse: Callable[[Response], object] | None = None,
    clock: IReactorTime | None = None,
    compressed: bool = False,
) -> Deferred[Response]:
    """
    Send one HTTP request and read its response.

    @param client: a treq L{HTTPClient} (L{makeClient}) or anything with
        its C{request} method, such as L{treq.testing.StubTreq}.
    @param method: the HTTP method, any case.
    @param url: an absolute http or https URL.
    @param params: query parameters added to the URL (a mapping, or
        (name, value) pairs; a list value repeats the name).
    @param data: a form (a mapping or pairs: sent as
        C{application/x-www-form-urlencoded}) or raw C{bytes}.
    @param json: a value sent as C{application/json}.
    @param headers: extra header fields (a mapping, or pairs to repeat a
        name).  A C{User-Agent} here replaces C{userAgent}.
    @param auth: C{(user, password)} for HTTP basic authentication.
    @param userAgent: the C{User-Agent}; L{None} sends none.
    @param followRedirects: follow 301, 302, 303, 307 and 308; L{None}
        (the default) follows them for GET and HEAD only.  A 303, and a 301
        or 302 answering POST, is followed with GET and no body.
        C{Authorization}, C{Cookie} and credentials go only to the origin
        of C{url}.
    @param maxRedirects: redirects allowed; one more fails with
        L{TooManyRedirects}.
    @param retries: how many times to send an idempotent request again
        after a connection error or a 502, 503 or 504.
    @param backoff: seconds before the first retry; each next one waits
        twice as long (honouring a longer C{Retry-After}), at most
        C{maxBackoff}.
    @param timeout: seconds for the whole call, body, redirects and
        retries included; L{RequestTimeout} when it passes.  L{None}: no
        limit.
    @param maxSize: the most body bytes accepted (decoded bytes, with
        C{compressed}, counted as they are produced); L{ResponseTooLarge}
        beyond (checked against Content-Length first, when not decoding).
    @param sink: called with each chunk of the final body instead of
        keeping it in memory (the L{Response}'s C{body} is then empty).
    @param progress: called with (bytes received, total or L{None}) after
        each chunk.
    @param onResponse: called with the final L{Response} (headers, no body
        yet) before the body is read; if it raises, the body is dropped and
        the call fails with that exception.
    @param clock: the time source for C{timeout} and backoff; the global
        reactor if L{None} and one of them is needed.
    @param compressed: ask for C{gzip, deflate} (unless C{headers} has an
        C{Accept-Encoding}) and decode a gzip or deflate body; other codings
        fail with L{BadContentEncoding}.  Without it (as curl without
        C{--compressed}) no C{Accept-Encoding} is sent and a body is passed
        on as it came, whatever its C{Content-Encoding}.

    @return: fires with the L{Response}; fails with L{RequestTimeout},
        L{ResponseTooLarge}, L{ResponseHeadersTooLarge},
        L{BadContentEncoding}, L{TooManyRedirects}, or Twisted's errors
        (L{twisted.internet.error.DNSLookupError},
        L{twisted.internet.error.ConnectionRefusedError},
        L{twisted.web.client.ResponseFailed} ...).  Cancelling it stops
        the request.
    """
    if clock is None and (timeout or retries):
        from twisted.internet import reactor as clock  # type: ignore[assignment]
    deadline = clock.seconds() + timeout if (timeout and clock is not None) else None
    policy = _Policy(
        headers=_requestHeaders(headers, userAgent, compressed),
        auth=auth,
        followRedirects=followRedirects,
        maxRedirects=maxRedirects,
        retries=retries,
        backoff=backoff,
        maxBackoff=maxBackoff,
        maxSize=maxSize,
        sink=sink,
        progress=progress,
        onResponse=onResponse,
        clock=clock,
        deadline=deadline,
        compressed=compressed,
    )
    transfer = _Transfer(client, method, url, params, data, json, policy)
    expired: list[bool] = []

    def cancel(result: Deferred[Response]) -> None:
        transfer.stopped = True
        running.cancel()

    outcome: Deferred[Response] = Deferred(cancel)
    running = Deferred.fromCoroutine(transfer.run())

    def finished(result: Response | Failure) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        if outcome.called:
            return
        if isinstance(result, Failure) and transfer.stopped:
            # Cancelled, by the caller or the deadline: say which, whatever
            # Twisted wrapped the cancellation in.
            result = Failure(RequestTimeout(timeout or 0, url) if expired else CancelledError())
        if isinstance(result, Failure):
            outcome.errback(result)
        else:
            outcome.callback(result)
        return

    def expire() -> None:
        expired.append(True)
        transfer.stopped = True
        running.cancel()

    timer = clock.callLater(timeout, expire) if (timeout and clock is not None) else None
    running.addBoth(finished)
    return outcome


def download(
    client: Any,
    url: str,
    path: str | os.PathLike[str],
    *,
    method: str = "GET",
    keepError: bool = False,
    onResponse: Callable[[Response], object] | None = None,
    **kwargs: Any,
) -> Deferred[Response]:
    """
    Stream a response body to a file, with bounded memory.

    The body is written to a new file of a random name beside C{path}
    (C{path.<random>.part}, created exclusively: never through an existing
    file or symbolic link), renamed to C{path} once complete (replacing
    C{path} itself, even when it is a symbolic link); on failure it is
    removed.  A C{path} that is a character device or a pipe
    (C{/dev/null}, C{/dev/stdout}) is written to directly.  An error status (400 or more) is not saved: the call fails
    with L{HTTPStatusError} and C{path} is left as it was, unless
    C{keepError}.  Takes the keyword arguments of L{request} (C{progress},
    C{timeout}, C{maxSize}, C{compressed}...), except C{sink}.

    @return: fires with the L{Response} (its C{received} is the file size);
        fails with L{HTTPStatusError}, an L{OSError} naming C{path}, or an
        error of L{request}.
    """
    target = Path(path)
    part: Path | None
    try:
        handle = _openStream(target)
        part = None
        if handle is None:
            handle, part = _createPart(target)
    except OSError as e:
        return fail(_naming(e, target))

    def checked(response: Response) -> None:
        if onResponse is not None:
            onResponse(response)
        if response.status >= 400 and not keepError:
            raise HTTPStatusError(response.status, response.phrase, response.url, str(target))

    def write(data: bytes) -> None:
        try:
            handle.write(data)
        except OSError as e:
            raise _naming(e, target) from None

    def done(result: Response | Failure) -> Response | Failure:
        try:
            handle.close()
            if part is not None and not isinstance(result, Failure):
                os.replace(part, target)
        except OSError as e:
            result = Failure(_naming(e, target))
        if part is not None and isinstance(result, Failure):
            part.unlink(missing_ok=True)
        return result

    return request(client, method, url, sink=write, onResponse=checked, **kwargs).addBoth(done)


#: How the temporary file of L{download} is opened: created, and only if
#: nothing (not even a dangling symbolic link) has its name.
_PART_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _openStream(target: Path) -> Any:
    """
    C{target} opened for writing if it is a character device or a pipe
    (C{/dev/null}, C{/dev/stdout}), which a rename must not replace; else
    L{None}.  It is opened without creating or truncating anything, and
    checked after opening, so a link swapped in meanwhile is never written
    through.
    """
    try:
        if not _isStream(os.stat(target).st_mode):
            return None
        descriptor = os.open(target, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    if not _isStream(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return None
    return os.fdopen(descriptor, "wb")


def _isStream(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _createPart(target: Path) -> tuple[Any, Path]:
    """
    Create the temporary file of a download beside C{target}: a random
    name, opened with C{O_EXCL | O_NOFOLLOW}, so that nothing planted there
    is ever written through.  (L{tempfile.mkstemp} would do, but makes the
    file 0600 and the download keeps the mode of the temporary file;
    C{0o666} here is narrowed by the umask, as for any new file.)
    """
    for _ in range(16):
        part = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        try:
            descriptor = os.open(part, _PART_FLAGS, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(descriptor, "wb"), part
    raise FileExistsError(errno.EEXIST, "no free name for a temporary file", str(target))


def _naming(error: OSError, target: Path) -> OSError:
    """
    C{error} as raised for C{target} (not its temporary file).
    """
    return OSError(error.errno, error.strerror or str(error), str(target))


def makeClient(
    reactor: Any = None,
    *,
    pool: HTTPConnectionPool | None = None,
    proxies: ProxySettings = ProxySettings(),
    tls: IPolicyForHTTPS | None = None,
    connectTimeout: float = 30.0,
    userAgent: str = DEFAULT_USER_AGENT,
    maxHeaderBytes: int = MAX_HEAD_BYTES,
    maxHeaderLines: int = MAX_HEAD_LINES,
) -> HTTPClient:
    """
    A treq client over a persistent connection pool.

    @param reactor: the reactor; the global one if L{None}.
    @param pool: the pool to use; pass your own to close its connections
        with C{pool.closeCachedConnections()} when done.  A new persistent
        pool if L{None}.
    @param proxies: which proxy each URL goes through, e.g.
        C{ProxySettings.fromEnvironment(os.environ)}.
    @param tls: how https certificates are checked
        (L{services.client._agent.TLSPolicy}: platform trust and hostname
        verification by default).
    @param connectTimeout: seconds to wait for each TCP connection.
    @param userAgent: the C{User-Agent} sent to proxies with C{CONNECT}.
    @param maxHeaderBytes: the most bytes of a response's status line and
        headers (curl's 300 KiB by default); L{ResponseHeadersTooLarge}
        beyond.
    @param maxHeaderLines: the most lines of a response's head.
    """
    agent = makeAgent(
        reactor,
        pool=pool,
        proxies=proxies,
        tls=tls,
        connectTimeout=connectTimeout,
        userAgent=userAgent.encode("ascii", "replace"),
        headLimits=HeadLimits(maxHeaderBytes, maxHeaderLines),
    )
    # treq's HTTPClient asks for gzip and decodes it itself, unboundedly:
    # undone here and in _Transfer (services.client._coding).
    return HTTPClient(WithoutTreqEncoding(agent))

