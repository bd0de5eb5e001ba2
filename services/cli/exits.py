# -*- test-case-name: tests.integration.test_client_cli -*-
"""
Exit statuses of the client commands, and the one-line messages for the
errors behind them.

The numbers are curl's, so scripts written for curl read them the same
way.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping

from OpenSSL import SSL
from twisted.internet import error
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed
from twisted.web.error import SchemeNotSupported

from services.client import (
    BadContentEncoding,
    HTTPStatusError,
    ProxyError,
    RequestTimeout,
    ResponseHeadersTooLarge,
    ResponseTooLarge,
    TooManyRedirects,
)

__all__ = ["EXIT_CODES", "HTTPError", "describe", "errnoText", "exitCodesText", "sslText"]

OK = 0
FAILURE = 1
USAGE = 2
DNS = 6
CONNECT = 7
HTTP_ERROR = 22
WRITE_ERROR = 23
TIMEOUT = 28
TLS_HANDSHAKE = 35
REDIRECTS = 47
RECEIVE = 56
TLS_VERIFY = 60
BAD_CONTENT_ENCODING = 61
TOO_LARGE = 63

#: Every exit status and what it means, for --help and the README.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (FAILURE, "any other error (an unknown service, an echo that differs ...)"),
    (USAGE, "bad command line (an unknown option, a malformed value, a bad URL)"),
    (DNS, "the host name could not be resolved"),
    (CONNECT, "the connection was refused (or could not be made)"),
    (HTTP_ERROR, "HTTP status 400 or more, with fetch -f, or with -o (nothing saved) unless --keep-error"),
    (WRITE_ERROR, "the output file could not be written"),
    (TIMEOUT, "timed out (-m, --timeout, a connection attempt), or echo probes went unanswered"),
    (TLS_HANDSHAKE, "the TLS handshake failed"),
    (REDIRECTS, "more redirects than --max-redirs"),
    (
        RECEIVE,
        (
            "the connection broke while receiving, the response headers were too large "
            "(over 300 KiB, 1,000 lines or a 16 KiB line), or the proxy refused the tunnel"
        ),
    ),
    (TLS_VERIFY, "the server's certificate could not be verified (untrusted, or another host's)"),
    (BAD_CONTENT_ENCODING, "with --compressed, the body could not be decoded"),
    (TOO_LARGE, "the response is larger than --max-size"),
)


#: The statuses each command can exit with, for its --help.
ECHO_CODES = (OK, FAILURE, USAGE, DNS, CONNECT, TIMEOUT, RECEIVE)
RESOLVE_CODES = (OK, FAILURE, USAGE, DNS)
SERVE_CODES = (OK, FAILURE, USAGE)
THROUGHPUT_CODES = (OK, FAILURE, USAGE, DNS, CONNECT, TIMEOUT, RECEIVE)


def exitCodesText(codes: Iterable[int] | None = None, meanings: Mapping[int, str] = {}) -> str:
    """
    The exit statuses as an indented table, for an epilog.

    @param codes: the statuses of one command (default: all of them).
    @param meanings: that command's own words for some of them.
    """
    wanted = set(codes) if codes is not None else {code for code, _ in EXIT_CODES}
    return "\n".join(
        f"  {code:>3}  {meanings.get(code, meaning)}"
        for code, meaning in EXIT_CODES
        if code in wanted
    )


#: The server answered with an error status (raised for C{fetch -f}).
HTTPError = HTTPStatusError


def errnoText(number: int | None) -> str:
    """
    C{errno 111 (ECONNREFUSED): Connection refused}, as C{connect_ex}
    would report it.
    """
    if not isinstance(number, int):
        return "no errno"
    name = errno.errorcode.get(number, "?")
    return f"errno {number} ({name}): {os.strerror(number)}"


def _root(exception: BaseException) -> BaseException:
    """
    The first underlying error of Twisted's wrapper exceptions.
    """
    while isinstance(exception, ResponseFailed) and exception.reasons:
        reasons = [r.value for r in exception.reasons]
        exception = next(
            (r for r in reasons if not isinstance(r, error.ConnectionDone)), reasons[0]
        )
    return exception


def _isVerification(exception: BaseException) -> bool:
    if exception.__class__.__name__ == "VerificationError":  # service_identity
        return True
    return "certificate verify failed" in str(exception)


def describe(exception: BaseException | Failure, where: str = "") -> tuple[int, str]:
    """
    The exit status and a one-line message for an error.

    @param where: what was being reached (C{host:port}, or a proxy), for
        connection errors.
    """
    if isinstance(exception, Failure):
        exception = exception.value or Exception(exception.getErrorMessage())
    e = _root(exception)
    at = f" {where}" if where else ""
    if isinstance(e, RequestTimeout):
        return TIMEOUT, str(e)
    if isinstance(e, (error.TCPTimedOutError, error.TimeoutError)):
        return TIMEOUT, f"connecting to{at} timed out"
    if isinstance(e, (error.DNSLookupError, error.UnknownHostError)):
        host = where.rsplit(":", 1)[0] if where.count(":") == 1 else where
        return DNS, f"could not resolve host {host}".rstrip()
    if isinstance(e, error.ConnectionRefusedError):
        number = e.osError if isinstance(e.osError, int) else errno.ECONNREFUSED
        return CONNECT, f"cannot connect to{at}: {errnoText(number)}"
    if isinstance(e, error.ConnectError):
        detail = errnoText(e.osError) if isinstance(e.osError, int) else str(e)
        return CONNECT, f"cannot connect to{at}: {detail}"
    if isinstance(e, ResponseTooLarge):
        return TOO_LARGE, str(e)
    if isinstance(e, TooManyRedirects):
        return REDIRECTS, str(e)
    if isinstance(e, HTTPStatusError):
        return HTTP_ERROR, str(e)
    if isinstance(e, ResponseHeadersTooLarge):
        return RECEIVE, str(e)
    if isinstance(e, BadContentEncoding):
        return BAD_CONTENT_ENCODING, str(e)
    if isinstance(e, ProxyError):
        return RECEIVE, str(e)
    if isinstance(e, SSL.Error) or e.__class__.__name__ == "VerificationError":
        if _isVerification(e):
            return TLS_VERIFY, f"TLS certificate verification failed for{at}: {sslText(e)}"
        return TLS_HANDSHAKE, f"TLS handshake with{at} failed: {sslText(e)}"
    if isinstance(e, SchemeNotSupported):
        return FAILURE, str(e)
    if isinstance(e, (error.ConnectionLost, error.ConnectionDone)) or isinstance(
        exception, ResponseFailed
    ):
        return RECEIVE, f"the connection to{at} broke while receiving"
    if isinstance(e, OSError):
        named = f" {e.filename}" if e.filename else ""
        return WRITE_ERROR, f"cannot write{named}: {e.strerror or e}"
    return FAILURE, str(e) or e.__class__.__name__


def sslText(e: BaseException) -> str:
    """
    The reasons in an OpenSSL error, joined on one line.
    """
    if isinstance(e, SSL.Error) and e.args and isinstance(e.args[0], list):
        parts = [str(item[-1]) for item in e.args[0] if item]
        if parts:
            return "; ".join(parts)
    return str(e) or e.__class__.__name__
