# -*- test-case-name: tests.unit.client.test_client -*-
"""
The details of HTTP messages the transfer needs: the request's header
fields as pairs (and how they are shown in logs, credentials hidden), URLs
in the form treq can send, and a response's head read back as text.

All of it works on one message at a time and keeps no state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from hyperlink import EncodedURL
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse

from services.client._coding import ACCEPT_ENCODING

__all__ = [
    "SENSITIVE_HEADERS",
    "HeadersType",
    "ParamsType",
    "forTreq",
    "headerPairs",
    "length",
    "origin",
    "redacted",
    "requestHeaders",
    "responseHeaders",
    "retryAfter",
    "text",
    "version",
    "withQuery",
]

#: Headers sent only to the origin of the first URL, as Twisted's
#: RedirectAgent does.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "cookie2", "proxy-authorization", "www-authenticate"}
)

#: Request header fields: a mapping, or (name, value) pairs to repeat a name.
HeadersType = Mapping[str, str] | Sequence[tuple[str, str]]

#: Query parameters: a mapping, or (name, value) pairs.
ParamsType = Mapping[str, Any] | Sequence[tuple[str, Any]]


def text(value: bytes | str) -> str:
    """
    A header name or value (or a URL) as text: bytes are Latin-1, as HTTP
    heads are.
    """
    return value.decode("latin-1") if isinstance(value, bytes) else value


def origin(url: str) -> tuple[str, str, int | None]:
    """
    The scheme, host and port of C{url}, the parts credentials are bound to.
    """
    parsed = EncodedURL.from_text(url)
    return (parsed.scheme.lower(), parsed.host.lower(), parsed.port)


def version(response: IResponse) -> str:
    """
    The response's protocol, e.g. C{"HTTP/1.1"}.
    """
    protocol, major, minor = response.version
    return f"{text(protocol)}/{major}.{minor}"


def length(response: IResponse) -> int | None:
    """
    The response's declared body length, or L{None} when it did not say.
    """
    declared = response.length
    return None if declared is UNKNOWN_LENGTH else int(declared)


def responseHeaders(response: IResponse) -> tuple[tuple[str, str], ...]:
    """
    The response's header fields, with its Content-Length (which Twisted
    keeps out of C{headers}) and without the empty Content-Encoding that
    Twisted's C{ContentDecoderAgent} adds to responses that had none.
    """
    fields = [
        (text(name), text(value))
        for name, values in response.headers.getAllRawHeaders()
        for value in values
        if value or name.lower() != b"content-encoding"
    ]
    declared = length(response)
    if declared is not None and not any(n.lower() == "content-length" for n, _ in fields):
        fields.append(("Content-Length", str(declared)))
    return tuple(fields)


def retryAfter(response: IResponse) -> float | None:
    """
    The seconds a C{Retry-After} of the response asks to wait, or L{None}
    (none, or a date, which is not honoured).
    """
    values = response.headers.getRawHeaders(b"retry-after")
    if not values:
        return None
    try:
        return max(0.0, float(int(values[-1].strip())))
    except ValueError:
        return None


def withQuery(url: str, params: ParamsType | None) -> str:
    """
    C{url} with C{params} appended, as shown in logs.
    """
    if not params:
        return url
    items = params.items() if isinstance(params, Mapping) else params
    query = urlencode([(k, v) for k, v in items], doseq=True)
    return url + ("&" if "?" in url else "?") + query


def headerPairs(headers: HeadersType | None) -> list[tuple[str, str]]:
    """
    C{headers} as a list of (name, value) pairs of text.
    """
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def redacted(name: str, value: str) -> str:
    """
    The value of header C{name} as logs show it: a credential's scheme
    only (C{"Basic (hidden)"}).
    """
    if name.lower() in SENSITIVE_HEADERS:
        scheme = value.split(" ", 1)[0] if " " in value else ""
        return f"{scheme} (hidden)".strip()
    return value


def requestHeaders(
    headers: HeadersType | None, userAgent: str | None, compressed: bool
) -> tuple[tuple[str, str], ...]:
    """
    C{headers} as pairs, with C{userAgent} first and, when C{compressed},
    the codings accepted, unless C{headers} has them already.
    """
    pairs = headerPairs(headers)
    names = {name.lower() for name, _ in pairs}
    if userAgent and "user-agent" not in names:
        pairs.insert(0, ("User-Agent", userAgent))
    if compressed and "accept-encoding" not in names:
        pairs.append(("Accept-Encoding", ACCEPT_ENCODING))
    return tuple(pairs)


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


def forTreq(url: str) -> str | EncodedURL:
    """
    C{url} as treq can send it: an IPv6 literal host as a L{_LiteralHostURL}.
    """
    if "[" not in url:
        return url
    parsed = _LiteralHostURL.from_text(url)
    return parsed if ":" in parsed.host else url
