# -*- test-case-name: tests.unit.client.test_client -*-
"""
The client side: treq-based requests and downloads, proxies, name resolution and ping.

This package is the client library's public API; its modules are private.

  - HTTP: L{request} and L{download} through a treq client from
    L{makeClient} (over a connection pool from L{makePool}), giving a
    L{Response}; L{TLSPolicy} says how https certificates are checked,
    L{ProxySettings} which L{Proxy} each URL goes through (https in a
    C{CONNECT} tunnel, L{TunnelEndpoint}).
  - Errors: every failure of the client's own policies is a L{ClientError}
    (L{RequestTimeout}, L{ResponseTooLarge}, L{ResponseHeadersTooLarge},
    L{BadContentEncoding}, L{HTTPStatusError}, L{TooManyRedirects}); an
    unusable proxy is a L{ProxyError}; the rest are Twisted's own.
  - Names: L{resolve} (a L{Resolution}, or L{UnknownService}),
    L{resolveAddresses} and L{resolveTarget}, without blocking the reactor.
  - Ping: L{ping} a host with L{PingOptions} for a L{PingResult} of
    L{Reply}s, or run a L{Pinger} until stopped; L{PingUnavailable} when no
    ICMP socket is permitted.
"""

from services.client._agent import TLSPolicy, makePool
from services.client._api import DEFAULT_USER_AGENT, makeClient, request
from services.client._download import download
from services.client._errors import (
    BadContentEncoding,
    ClientError,
    HTTPStatusError,
    RequestTimeout,
    ResponseHeadersTooLarge,
    ResponseTooLarge,
    TooManyRedirects,
)
from services.client._ping import Pinger, PingOptions, ping
from services.client._pingsocket import PingUnavailable
from services.client._pingstats import PingResult, Reply
from services.client._resolve import (
    Resolution,
    UnknownService,
    resolve,
    resolveAddresses,
    resolveTarget,
)
from services.client._response import Response
from services.client._tunnel import Proxy, ProxyError, ProxySettings, TunnelEndpoint

__all__ = [
    "DEFAULT_USER_AGENT",
    "BadContentEncoding",
    "ClientError",
    "HTTPStatusError",
    "PingOptions",
    "PingResult",
    "PingUnavailable",
    "Pinger",
    "Proxy",
    "ProxyError",
    "ProxySettings",
    "Reply",
    "RequestTimeout",
    "Resolution",
    "Response",
    "ResponseHeadersTooLarge",
    "ResponseTooLarge",
    "TLSPolicy",
    "TooManyRedirects",
    "TunnelEndpoint",
    "UnknownService",
    "download",
    "makeClient",
    "makePool",
    "ping",
    "request",
    "resolve",
    "resolveAddresses",
    "resolveTarget",
]
