# -*- test-case-name: tests.unit.web.test_ranges -*-
"""
Byte ranges of static files (RFC 9110 section 14), as nginx and Apache
answer them, and the producer that sends them.

L{twisted.web.static.File} answers every range as asked, so that repeated or
overlapping ranges multiply the response (C{Range: bytes=0-} 200 times, a
674-byte request, asks for 200 copies of the file), and its multiple-range
producer (C{MultipleRangeStaticProducer.resumeProducing}, Twisted 26.10)
computes a negative read length when a part's header crosses its 64 KiB
buffer: the read then returns the rest of the file, the part never ends, and
the connection hangs after a critical traceback.  Here:

  - L{parseRangeHeader} parses C{bytes=...}; anything else is not a usable
    range (and is ignored, RFC 9110 14.2: the whole file, 200);
  - L{selectRanges} resolves the ranges against the file: more than
    L{MAX_RANGES} (200, Apache's C{MaxRanges}) or ranges that add up to
    more than the file (nginx) get the whole file once, with 200;
    overlapping and adjacent ranges are merged (RFC 9110 15.3.7.2 allows
    it), the others keep the order they were asked in;
  - L{RangeProducer} writes the parts with reads that never exceed what is
    left of a part, and any error while producing (a read that fails, a
    file that shrank) aborts the connection with one log line instead of
    leaving it waiting for bytes that never come.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Any

from twisted.internet import interfaces
from twisted.web.iweb import IRequest
from zope.interface import implementer

from services.web._sendfile import abortResponse

__all__ = [
    "MAX_RANGES",
    "Part",
    "RangeProducer",
    "multipartBody",
    "parseRangeHeader",
    "selectRanges",
]

#: The most ranges one request may ask for; more get the whole file.
MAX_RANGES = 200

#: How much of the file L{RangeProducer} reads and writes at a time.
CHUNK = 64 * 1024

#: One range as asked: C{(first, last)} with C{last} inclusive or L{None}
#: (to the end), or C{(None, n)}: the last C{n} bytes.
Spec = tuple[int | None, int | None]

#: One part to send: the bytes written before it (a multipart boundary and
#: headers, or nothing), then C{size} bytes of the file from C{offset}.
Part = tuple[bytes, int, int]


def _position(text: bytes) -> int:
    text = text.strip()
    if not text.isdigit():  # no sign, no spaces inside, ASCII digits only
        raise ValueError("not a byte position")
    return int(text)


def parseRangeHeader(value: bytes) -> list[Spec]:
    """
    Parse a C{Range} header value such as C{bytes=0-99,200-,-50}.

    @return: the ranges, in the order given (at least one).
    @raise ValueError: if it is not a valid C{bytes} range set.
    """
    unit, equals, specs = value.partition(b"=")
    if not equals or unit.strip().lower() != b"bytes":
        raise ValueError("not a bytes range")
    ranges: list[Spec] = []
    for spec in specs.split(b","):
        if not spec.strip():
            continue  # RFC 9110 5.6.1: empty list elements are ignored
        first, dash, last = spec.partition(b"-")
        if not dash:
            raise ValueError("no dash")
        if not first.strip():
            ranges.append((None, _position(last)))
            continue
        start = _position(first)
        end = _position(last) if last.strip() else None
        if end is not None and end < start:
            raise ValueError("last position before first")
        ranges.append((start, end))
    if not ranges:
        raise ValueError("no ranges")
    return ranges


def selectRanges(
    specs: Sequence[Spec], size: int, maxRanges: int = MAX_RANGES
) -> list[tuple[int, int]] | None:
    """
    What to send of a file of C{size} bytes for these ranges.

    @return: L{None} to send the whole file with 200 (more than
        C{maxRanges} ranges, or ranges that add up to more than the file);
        an empty list when none is satisfiable (416); else the
        C{(offset, length)} of each part, overlapping and adjacent ranges
        merged, the others in the order asked.
    """
    if len(specs) > maxRanges:
        return None
    spans: list[tuple[int, int, int]] = []  # start, end (exclusive), order asked
    total = 0
    for order, (first, last) in enumerate(specs):
        if first is None:
            if not last:
                continue  # a suffix of 0 bytes is not satisfiable
            start, end = max(0, size - last), size  # type: ignore[operator]
        else:
            if first >= size:
                continue
            start, end = first, size if last is None else min(last + 1, size)
        spans.append((start, end, order))
        total += end - start
    if total > size:
        return None
    spans.sort()
    merged: list[list[int]] = []
    for start, end, order in spans:
        if merged and start <= merged[-1][1]:
            group = merged[-1]
            group[1] = max(group[1], end)
            group[2] = min(group[2], order)
        else:
            merged.append([start, end, order])
    merged.sort(key=lambda group: group[2])
    return [(start, end - start) for start, end, _ in merged]


def multipartBody(
    ranges: Sequence[tuple[int, int]], size: int, contentType: bytes, boundary: bytes
) -> tuple[list[Part], bytes, int]:
    """
    The parts of a C{multipart/byteranges} body (RFC 9110 14.6) for
    C{ranges} of a file of C{size} bytes.

    @return: the parts, the closing delimiter, and the body's length.
    """
    parts = []
    length = 0
    for offset, partSize in ranges:
        header = (
            b"\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
            % (boundary, contentType, offset, offset + partSize - 1, size)
        )
        parts.append((header, offset, partSize))
        length += len(header) + partSize
    trailer = b"\r\n--%s--\r\n" % (boundary,)
    return parts, trailer, length + len(trailer)


@implementer(interfaces.IPullProducer)
class RangeProducer:
    """
    Writes C{parts} of an open file, then C{trailer}, as a response body;
    speaks the protocol of L{twisted.web.static.StaticProducer} (C{start},
    C{stopProducing}), so that a C{File.makeProducer} can return it.

    @ivar request: the request answered; L{None} once stopped.
    @ivar fileObject: the open file, closed when the producer stops.
    """

    def __init__(
        self, request: IRequest, fileObject: IO[bytes], parts: Sequence[Part], trailer: bytes = b""
    ) -> None:
        self.request: Any = request
        self.fileObject: IO[bytes] | None = fileObject
        self._parts = list(parts)
        self._trailer = trailer
        self._index = 0
        self._sent = 0  # of the current part's file bytes
        self._partBegun = False  # whether the current part's header was written
        self._fd = fileObject.fileno()

    def start(self) -> None:
        """
        Register with the request, which then asks for each chunk.
        """
        self.request.registerProducer(self, False)

    def resumeProducing(self) -> None:
        """
        Write the next chunk (at most L{CHUNK} bytes of the file, with the
        part headers before it), or finish the response.
        """
        if self.request is None:
            return
        try:
            data = self._nextChunk()
        except Exception as e:  # noqa: BLE001 - whatever fails, the connection must not hang
            request = self.request
            self.stopProducing()
            abortResponse(request, e)
            return
        if data:
            self.request.write(data)
            return
        request = self.request
        request.unregisterProducer()
        request.finish()
        self.stopProducing()

    def _nextChunk(self) -> bytes:
        # Each read is at most what is left of the chunk and of the part;
        # when a part's header fills the chunk, its bytes start the next one
        # (where Twisted's producer asked for a negative length).
        pieces = []
        room = CHUNK
        parts = self._parts
        while self._index < len(parts) and room > 0:
            header, offset, size = parts[self._index]
            if not self._partBegun:
                self._partBegun = True
                pieces.append(header)
                room -= len(header)
            want = min(room, size - self._sent)
            if want <= 0:
                break
            data = os.pread(self._fd, want, offset + self._sent)
            if not data:
                raise OSError("the file is shorter than when the response started")
            pieces.append(data)
            self._sent += len(data)
            room -= len(data)
            if self._sent == size:
                self._index += 1
                self._sent = 0
                self._partBegun = False
        if self._index == len(parts) and self._trailer:
            pieces.append(self._trailer)
            self._trailer = b""
        return b"".join(pieces)

    def stopProducing(self) -> None:
        """
        Stop for good and close the file.
        """
        fileObject, self.fileObject = self.fileObject, None
        self.request = None
        if fileObject is not None:
            fileObject.close()
