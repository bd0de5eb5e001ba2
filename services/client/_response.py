# -*- test-case-name: tests.unit.client.test_client -*-
"""
L{Response}: what a finished request gives its caller, a frozen value with
the status, the headers as pairs, the URL that answered and the body.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any

__all__ = ["Response"]


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
