# -*- test-case-name: tests.unit.client.test_client -*-
"""
What governs one call of L{services.client.request}, as frozen values, so
that nothing is passed by position: L{Outgoing} (what is sent),
L{TransferPolicy} (the limits, deadline, retries and redirects it is held
to) and L{Delivery} (where the response goes); and the rules of retries and
redirects (which methods, statuses and failures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, ConnectingCancelledError
from twisted.web.client import RequestTransmissionFailed, ResponseNeverReceived

from services.client._body import Progress, Sink
from services.client._messages import ParamsType
from services.client._response import Response

__all__ = [
    "IDEMPOTENT_METHODS",
    "NO_JSON",
    "REDIRECT_STATUSES",
    "RETRY_STATUSES",
    "Delivery",
    "Outgoing",
    "TransferPolicy",
    "isRetryable",
]

#: Methods that may be sent again after a failure (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

#: Statuses that say "try again later": retried for idempotent methods.
RETRY_STATUSES = frozenset({502, 503, 504})

#: Statuses followed as redirects (when they carry a Location).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

#: The C{json} of a request that sends no JSON (L{None} is JSON's null).
NO_JSON: Any = object()


@dataclass(frozen=True)
class Outgoing:
    """
    What one request sends (see L{services.client.request} for each field).

    @ivar method: the HTTP method, upper case.
    @ivar headers: the header fields, C{User-Agent} and C{Accept-Encoding}
        included.
    """

    method: str
    url: str
    params: ParamsType | None = None
    data: Any = None
    json: Any = NO_JSON
    headers: tuple[tuple[str, str], ...] = ()
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class TransferPolicy:
    """
    The limits, deadline, retries and redirects one call is held to (see
    L{services.client.request} for each field).

    @ivar timeout: seconds for the whole call (its deadline is set when it
        starts), or L{None}.
    """

    followRedirects: bool | None = None
    maxRedirects: int = 10
    retries: int = 0
    backoff: float = 0.5
    maxBackoff: float = 30.0
    timeout: float | None = None
    maxSize: int | None = None
    compressed: bool = False


@dataclass(frozen=True)
class Delivery:
    """
    Where the final response goes (see L{services.client.request}).

    @ivar sink: takes each chunk of the body; in memory if L{None}.
    @ivar progress: told of each chunk.
    @ivar onResponse: called with the response before its body is read.
    """

    sink: Sink | None = None
    progress: Progress | None = None
    onResponse: Callable[[Response], object] | None = None


def isRetryable(error: BaseException, method: str) -> bool:
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
