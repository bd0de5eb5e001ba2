# -*- test-case-name: tests.unit.client.test_client -*-
"""
The transfer behind L{services.client.request}: one call is a L{Transfer},
the redirect loop around the retry loop around treq's C{request}, under one
deadline, with the final body read into a sink.  What it sends and the
policy it follows are the frozen values of L{services.client._policy}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hyperlink import EncodedURL
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from services import logs
from services.client._body import BodyReader
from services.client._coding import CodingError, decoderFor, rawResponse
from services.client._errors import (
    BadContentEncoding,
    RequestTimeout,
    ResponseHeadersTooLarge,
    TooManyRedirects,
)
from services.client._head import HeadTooLarge
from services.client._messages import (
    SENSITIVE_HEADERS,
    forTreq,
    length,
    origin,
    redacted,
    responseHeaders,
    retryAfter,
    text,
    version,
    withQuery,
)
from services.client._policy import (
    IDEMPOTENT_METHODS,
    NO_JSON,
    REDIRECT_STATUSES,
    RETRY_STATUSES,
    Delivery,
    Outgoing,
    TransferPolicy,
    isRetryable,
)
from services.client._response import Response

__all__ = ["DISCARD_LIMIT", "Transfer", "headTooLarge"]

#: The most of a redirect's or a retried response's body that is read (to
#: keep its connection for reuse) before the connection is dropped instead.
DISCARD_LIMIT = 64 * 1024


def headTooLarge(error: BaseException) -> HeadTooLarge | None:
    """
    The L{HeadTooLarge} that made a request fail, if that is why.
    """
    if isinstance(error, HeadTooLarge):
        return error
    for reason in getattr(error, "reasons", None) or ():
        if isinstance(reason, Failure) and isinstance(reason.value, HeadTooLarge):
            return reason.value
    return None


def _ignore(failure: Failure) -> None:
    return None


class Transfer:
    """
    One call of L{services.client.request}: the redirect loop around the
    retry loop around treq's C{request}.

    @ivar stopped: set once the call is cancelled (by its caller or its
        deadline): no more attempts are made.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        client: Any,
        outgoing: Outgoing,
        policy: TransferPolicy,
        delivery: Delivery = Delivery(),
        reactor: IReactorTime | None = None,
    ) -> None:
        """
        @param client: a treq L{HTTPClient}, or anything with its C{request}.
        @param reactor: the time source of the deadline and of backoff:
            needed when C{policy} has a timeout or retries.
        """
        self._client = client
        self._outgoing = outgoing
        self._p = policy
        self._delivery = delivery
        self._reactor = reactor
        self._deadline: float | None = None
        self._follow = (
            policy.followRedirects
            if policy.followRedirects is not None
            else outgoing.method in ("GET", "HEAD")
        )
        self.stopped = False

    def start(self) -> Deferred[Response]:
        """
        Start the call, under its deadline.

        @return: fires with the L{Response}; cancelling it stops the call.
        """
        timeout, reactor, url = self._p.timeout, self._reactor, self._outgoing.url
        if timeout and reactor is not None:
            self._deadline = reactor.seconds() + timeout
        expired: list[bool] = []

        def cancel(result: Deferred[Response]) -> None:
            self.stopped = True
            running.cancel()

        outcome: Deferred[Response] = Deferred(cancel)
        running = Deferred.fromCoroutine(self.run())

        def finished(result: Response | Failure) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            if outcome.called:
                return
            if isinstance(result, Failure) and self.stopped:
                # Cancelled, by the caller or the deadline: say which, whatever
                # Twisted wrapped the cancellation in.
                result = Failure(RequestTimeout(timeout or 0, url) if expired else CancelledError())
            if isinstance(result, Failure):
                outcome.errback(result)
            else:
                outcome.callback(result)

        def expire() -> None:
            expired.append(True)
            self.stopped = True
            running.cancel()

        timer = reactor.callLater(timeout, expire) if (timeout and reactor is not None) else None
        running.addBoth(finished)
        return outcome

    async def run(self) -> Response:
        """
        Send the request, follow redirects, read the final body.
        """
        sending = self._outgoing
        first = origin(sending.url)
        redirects: list[str] = []
        while True:
            response, attempts = await self._send(sending, origin(sending.url) == first)
            url = sending.url
            requestURL = text(response.request.absoluteURI) if response.request else url
            location = response.headers.getRawHeaders(b"location")
            if not (self._follow and response.code in REDIRECT_STATUSES and location):
                return await self._finish(response, sending.method, requestURL, redirects, attempts)
            await self._discard(response, requestURL)
            target = EncodedURL.from_text(requestURL).click(text(location[0]).strip()).to_text()
            if len(redirects) >= self._p.maxRedirects:
                raise TooManyRedirects(self._p.maxRedirects, target)
            self._log.debug(
                "{status} redirect from {url} to {location}",
                status=response.code,
                url=requestURL,
                location=target,
            )
            redirects.append(target)
            sending = replace(sending, url=target, params=None)
            if (response.code == 303 and sending.method != "HEAD") or (
                response.code in (301, 302) and sending.method == "POST"
            ):
                sending = replace(sending, method="GET", data=None, json=NO_JSON)

    async def _send(self, sending: Outgoing, sameOrigin: bool) -> tuple[IResponse, int]:
        """
        Send one request, again after a backoff while it fails in a way
        worth retrying.
        """
        method, url, params = sending.method, sending.url, sending.params
        attempt = 0
        while True:
            attempt += 1
            kwargs: dict[str, Any] = {}
            if sending.json is not NO_JSON:
                kwargs["json"] = sending.json
            if sameOrigin and sending.auth is not None:
                kwargs["auth"] = sending.auth
            headers = Headers()
            for name, value in sending.headers:
                if sameOrigin or name.lower() not in SENSITIVE_HEADERS:
                    headers.addRawHeader(name, value)
            shown = [(n, redacted(n, v)) for n, v in sending.headers if headers.hasHeader(n)]
            if "auth" in kwargs:
                shown.append(("Authorization", "Basic (hidden)"))
            self._log.debug(
                "{method} {url}",
                method=method,
                url=withQuery(url, params),
                attempt=attempt,
                requestHeaders=shown,
            )
            try:
                response = await self._client.request(
                    method,
                    forTreq(url),
                    params=params,
                    data=sending.data,
                    headers=headers,
                    allow_redirects=False,
                    unbuffered=True,
                    **kwargs,
                )
            except Exception as e:
                tooLarge = headTooLarge(e)
                if tooLarge is not None:
                    raise ResponseHeadersTooLarge(tooLarge.detail, withQuery(url, params)) from None
                if self.stopped or not isRetryable(e, method):
                    raise
                delay = self._delay(attempt, None)
                if delay is None:
                    raise
                reason = str(e) or e.__class__.__name__
            else:
                response = rawResponse(response)
                self._log.debug(
                    "{version} {status} {phrase}",
                    version=version(response),
                    status=response.code,
                    phrase=text(response.phrase),
                    responseHeaders=responseHeaders(response),
                )
                if response.code not in RETRY_STATUSES or method not in IDEMPOTENT_METHODS:
                    return response, attempt
                delay = self._delay(attempt, retryAfter(response))
                if delay is None:
                    return response, attempt
                await self._discard(response, url)
                reason = f"{response.code} {text(response.phrase)}"
            self._log.info(
                "{method} {url} failed ({reason}); retry {retry} of {retries} in {delay:.2f} s",
                method=method,
                url=url,
                reason=reason,
                retry=attempt,
                retries=self._p.retries,
                delay=delay,
            )
            await deferLater(self._reactor, delay)  # type: ignore[arg-type]

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
            self._deadline is not None
            and self._reactor is not None
            and self._reactor.seconds() + delay >= self._deadline
        ):
            return None
        return delay

    async def _discard(self, response: IResponse, url: str) -> None:
        """
        Read and drop a body we do not want, up to L{DISCARD_LIMIT}.
        """
        reader = BodyReader(url, DISCARD_LIMIT, None, discard=True, total=length(response))
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
            phrase=text(response.phrase),
            version=version(response),
            headers=responseHeaders(response),
            url=url,
            redirects=tuple(redirects),
            attempts=attempts,
        )
        total = None if method == "HEAD" else length(response)
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
        delivery = self._delivery
        reader = BodyReader(
            url,
            self._p.maxSize,
            delivery.sink or chunks.append,
            progress=delivery.progress,
            total=total,
            decoder=decoder,
        )
        if delivery.onResponse is not None:
            try:
                delivery.onResponse(result)
            except BaseException:
                dropped = BodyReader(url, 0, None, total=length(response), discard=True)
                response.deliverBody(dropped)
                dropped.finished.addErrback(_ignore)
                raise
        response.deliverBody(reader)
        received = await reader.finished
        return replace(result, body=b"".join(chunks), received=received)
