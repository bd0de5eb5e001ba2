# -*- test-case-name: tests.unit.client.test_client -*-
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
    C{progress} callback, so memory stays bounded
    (L{services.client._download.download} writes it to a file);
  - bounded response heads (L{ResponseHeadersTooLarge}, as curl: 300 KiB);
  - bodies passed on as they came, still compressed, unless C{compressed}
    asks for gzip or deflate; then they are decoded in bounded steps and
    C{maxSize} counts the decoded bytes (L{services.client._coding});
  - IPv6 address literals in URLs (C{http://[::1]:8080/}), which treq's
    hyperlink would refuse.

The work of each call is done by L{services.client._transfer.Transfer};
this module turns the keyword arguments into its values.

Example::

    from twisted.internet.task import react
    from services.client import makeClient, request

    async def main(reactor):
        client = makeClient(reactor)
        response = await request(
            client, "GET", "https://example.com/search",
            params={"q": "twisted"}, timeout=10, retries=2, reactor=reactor,
        )
        print(response.status, response.text())

    react(main)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.client import HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS

from services import __version__
from services.client._agent import makeAgent
from services.client._body import Progress, Sink
from services.client._coding import WithoutTreqEncoding
from services.client._head import MAX_HEAD_BYTES, MAX_HEAD_LINES, HeadLimits
from services.client._messages import HeadersType, ParamsType, requestHeaders
from services.client._policy import NO_JSON, Delivery, Outgoing, TransferPolicy
from services.client._response import Response
from services.client._transfer import Transfer
from services.client._tunnel import ProxySettings
from services.net.defaults import defaultReactor

__all__ = ["DEFAULT_USER_AGENT", "makeClient", "request"]

#: The C{User-Agent} sent unless the caller gives another.
DEFAULT_USER_AGENT = f"netservices/{__version__}"


def request(
    client: Any,
    method: str,
    url: str,
    *,
    params: ParamsType | None = None,
    data: Any = None,
    json: Any = NO_JSON,
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
    reactor: IReactorTime | None = None,
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
    @param reactor: the time source for C{timeout} and backoff (a
        L{twisted.internet.task.Clock} in tests); the global reactor if
        L{None} and one of them is needed.
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
    if timeout or retries:
        reactor = defaultReactor(reactor)
    outgoing = Outgoing(
        method=method.upper(),
        url=url,
        params=params,
        data=data,
        json=json,
        headers=requestHeaders(headers, userAgent, compressed),
        auth=auth,
    )
    policy = TransferPolicy(
        followRedirects=followRedirects,
        maxRedirects=maxRedirects,
        retries=retries,
        backoff=backoff,
        maxBackoff=maxBackoff,
        timeout=timeout,
        maxSize=maxSize,
        compressed=compressed,
    )
    delivery = Delivery(sink=sink, progress=progress, onResponse=onResponse)
    return Transfer(client, outgoing, policy, delivery, reactor).start()


def makeClient(
    reactor: IReactorTime | None = None,
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

    @param reactor: the reactor, which also connects TCP and resolves names
        (L{services.client._agent.makeAgent}); the global one if L{None}.
    @param pool: the pool to use; pass your own to close its connections
        with C{pool.closeCachedConnections()} when done.  A new persistent
        pool if L{None}.
    @param proxies: which proxy each URL goes through, e.g.
        C{ProxySettings.fromEnvironment(os.environ)}.
    @param tls: how https certificates are checked
        (L{services.client.TLSPolicy}: platform trust and hostname
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
    # undone here and in services.client._transfer (services.client._coding).
    return HTTPClient(WithoutTreqEncoding(agent))
