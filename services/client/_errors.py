# -*- test-case-name: tests.unit.client.test_client -*-
"""
The errors of the client's own policies: each a L{ClientError} that names
the URL it was fetching, with a one-line message (the C{netservices fetch}
command prints it as it is).

Failures that are not ours (a refused connection, a name that does not
resolve, a broken connection) stay Twisted's own exceptions.
"""

from __future__ import annotations

__all__ = [
    "BadContentEncoding",
    "ClientError",
    "HTTPStatusError",
    "RequestTimeout",
    "ResponseHeadersTooLarge",
    "ResponseTooLarge",
    "TooManyRedirects",
]


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
