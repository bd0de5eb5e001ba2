# -*- test-case-name: tests.unit.client.test_limits -*-
"""
Content codings for the client, the way curl does them: a body is passed on
as it came (still compressed, with its C{Content-Encoding}) unless the caller
asks for decoding (C{netservices fetch --compressed}, C{compressed=True});
then gzip and deflate are decoded in steps of at most L{STEP} bytes, so a
size limit is checked against the decoded bytes as they are produced and
memory stays bounded whatever the compression ratio.

treq's C{HTTPClient} always wraps its agent in Twisted's
C{ContentDecoderAgent}, which asks every server for gzip and inflates each
read of a gzip body with no bound on its output (one 256 KiB read of a
"decompression bomb" becomes about 260 MB at once).  L{WithoutTreqEncoding}
(the agent under treq, see L{services.client.makeClient}) removes the
C{Accept-Encoding} that wrapper adds, and L{rawResponse} takes its decoder
off a response, putting the C{Content-Encoding} back.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.client import GzipDecoder
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

__all__ = [
    "ACCEPT_ENCODING",
    "STEP",
    "CodingError",
    "Decoder",
    "WithoutTreqEncoding",
    "decoderFor",
    "rawResponse",
]

#: What C{compressed=True} asks for.
ACCEPT_ENCODING = "gzip, deflate"

#: The most decoded bytes produced at once.
STEP = 64 * 1024

#: zlib's window bits for each coding: 47 reads a zlib or a gzip header, so
#: deflate sent as gzip (or the reverse) is decoded too.
_WBITS = {"gzip": 47, "x-gzip": 47, "deflate": 47}


class CodingError(Exception):
    """
    The body cannot be decoded: a coding we do not know, several codings,
    or data that is not what its coding says.
    """


class Decoder:
    """
    Decodes one gzip or deflate body in bounded steps.
    """

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding])

    def decode(self, data: bytes) -> Iterator[bytes]:
        """
        The decoded bytes of C{data}, in pieces of at most L{STEP} bytes,
        each produced only when the one before was taken; C{b""} once the
        body is complete gives what the decoder still holds.

        @raise CodingError: for data that is not valid for the coding.
        """
        pending = data
        while True:
            try:
                piece = self._zlib.decompress(pending, STEP)
            except zlib.error as e:
                raise CodingError(f"the {self.coding} body is corrupt ({e})") from None
            if piece:
                yield piece
            pending = self._zlib.unconsumed_tail
            if not pending and len(piece) < STEP:
                return


def decoderFor(codings: list[str]) -> Decoder | None:
    """
    The decoder for a response's C{Content-Encoding} values, or L{None}
    when it has none (or only C{identity}).

    @raise CodingError: for a coding we cannot decode, or more than one.
    """
    names = [n.strip().lower() for value in codings for n in value.split(",")]
    names = [n for n in names if n and n != "identity"]
    if not names:
        return None
    if len(names) > 1:
        raise CodingError(f"cannot decode several content codings ({', '.join(names)})")
    if names[0] not in _WBITS:
        raise CodingError(f"cannot decode content coding {names[0]!r} (gzip and deflate only)")
    return Decoder(names[0])


def rawResponse(response: IResponse) -> IResponse:
    """
    C{response} without the gzip decoder that treq's C{ContentDecoderAgent}
    put on it, and with the C{Content-Encoding} it took off put back (it
    leaves an empty one on a response that had none: removed).
    """
    # treq's response wrapper and Twisted's GzipDecoder are proxies
    # (proxyForInterface) that keep what they wrap as "original".
    inner: Any = getattr(response, "original", None)
    layers = 0
    while isinstance(inner, GzipDecoder):
        layers += 1
        inner = inner.original
    raw: IResponse = inner if layers else response
    headers = raw.headers
    left = [v for v in headers.getRawHeaders(b"content-encoding", []) if v.strip()]
    codings = left + [b"gzip"] * layers
    if codings:
        headers.setRawHeaders(b"content-encoding", [b", ".join(codings)])
    else:
        headers.removeHeader(b"content-encoding")
    return raw


@implementer(IAgent)
class WithoutTreqEncoding:
    """
    The agent under treq's C{HTTPClient}: removes the C{Accept-Encoding:
    gzip} that treq's C{ContentDecoderAgent} always adds (it adds it last),
    so a request carries only what its caller asked for.
    """

    def __init__(self, agent: IAgent) -> None:
        self._agent = agent

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        Send the request with treq's C{Accept-Encoding} value removed.
        """
        if headers is not None:
            values = headers.getRawHeaders(b"accept-encoding", [])
            if values and values[-1] == b"gzip":
                headers = headers.copy()
                if values[:-1]:
                    headers.setRawHeaders(b"accept-encoding", values[:-1])
                else:
                    headers.removeHeader(b"accept-encoding")
        return self._agent.request(method, uri, headers, bodyProducer)
