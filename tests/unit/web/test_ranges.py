"""
Tests for L{services.web._ranges} and the byte ranges of
L{services.web._static.StaticFile}: every valid range set is answered with
exactly the bytes asked for (a property test against slicing), ranges are
merged and capped so they cannot amplify a response, and a producer that
fails aborts its connection instead of leaving it hanging.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.web import StaticFile
from services.web._ranges import MAX_RANGES, RangeProducer, parseRangeHeader, selectRanges

from tests.support import BufferingTransport, temporaryDirectory
from tests.webfakes import StubTestCase, header

#: The served file: large enough that parts cross the 64 KiB chunks.
DATA = os.urandom(262_144)
SIZE = len(DATA)


class ParseTests(SynchronousTestCase):
    """
    L{parseRangeHeader} accepts RFC 9110 byte range sets only.
    """

    def test_valid(self) -> None:
        """
        First-last, open-ended and suffix ranges, with spaces and empty
        list elements, in the order given.
        """
        self.assertEqual(
            parseRangeHeader(b"bytes= 0-4 , ,10-, -3"), [(0, 4), (10, None), (None, 3)]
        )

    def test_invalid(self) -> None:
        """
        Other units, missing dashes, signs, a last position before the
        first, and no range at all are errors.
        """
        for value in (b"items=0-1", b"bytes=5", b"bytes=+1-2", b"bytes=5-1", b"bytes=",
                      b"bytes=-", b"bytes=1-2-3", b"bytes 0-1", b"bytes=0x1-2"):
            self.assertRaises(ValueError, parseRangeHeader, value)


class SelectTests(SynchronousTestCase):
    """
    L{selectRanges} resolves, merges and caps ranges.
    """

    def test_merged(self) -> None:
        """
        Overlapping and adjacent ranges become one; the rest keep the
        order asked in.
        """
        self.assertEqual(
            selectRanges([(50, 59), (0, 9), (10, 19), (15, 30), (90, 95)], 100),
            [(50, 10), (0, 31), (90, 6)],
        )

    def test_resolved(self) -> None:
        """
        Open ends stop at the file's end, suffixes count from it, ranges
        past it are dropped; none left is unsatisfiable.
        """
        self.assertEqual(selectRanges([(None, 10), (0, 4)], 100), [(90, 10), (0, 5)])
        self.assertEqual(selectRanges([(0, 1000)], 100), [(0, 100)])
        self.assertEqual(selectRanges([(None, 1000)], 100), [(0, 100)])
        self.assertEqual(selectRanges([(100, None), (None, 0)], 100), [])

    def test_amplification(self) -> None:
        """
        Ranges that add up to more than the file, or more than
        C{MAX_RANGES} of them, get the whole file (L{None}).
        """
        self.assertIsNone(selectRanges([(0, None)] * 2, 100))
        self.assertIsNone(selectRanges([(i, i) for i in range(MAX_RANGES + 1)], 1000))
        self.assertEqual(len(selectRanges([(i * 2, i * 2) for i in range(MAX_RANGES)], 1000) or []),
                         MAX_RANGES)


specs = st.one_of(
    st.tuples(st.integers(0, SIZE + 100), st.integers(0, 70_000)).map(
        lambda t: (t[0], t[0] + t[1])
    ),
    st.tuples(st.integers(0, SIZE + 100), st.none()),
    st.tuples(st.none(), st.integers(0, SIZE + 100)),
)


def specText(spec: tuple[int | None, int | None]) -> str:
    first, last = spec
    return f"{'' if first is None else first}-{'' if last is None else last}"


def wanted(ranges: list[tuple[int | None, int | None]]) -> tuple[set[int], int]:
    """
    A model of what a range set asks for, from slicing: the set of byte
    positions asked and the sum of the lengths asked (not merged).
    """
    positions: set[int] = set()
    total = 0
    for first, last in ranges:
        if first is None:
            asked = range(max(0, SIZE - (last or 0)), SIZE) if last else range(0)
        else:
            asked = range(first, min(SIZE, (SIZE if last is None else last + 1)))
        positions.update(asked)
        total += len(asked)
    return positions, total


class RangeResponseTests(StubTestCase):
    """
    Range requests to a L{StaticFile} get exactly the bytes asked for.
    """

    def setUp(self) -> None:
        StubTestCase.setUp(self)
        www = temporaryDirectory(self)
        (www / "big.bin").write_bytes(DATA)
        tree = Resource()
        tree.putChild(b"static", StaticFile(str(www)))
        self.stub = StubTreq(tree)

    def get(self, value: str) -> tuple[Any, bytes]:
        return self.fetch(self.stub, "GET", "http://web/static/big.bin", headers={"Range": value})

    def parts(self, response: Any, body: bytes) -> list[tuple[int, int, bytes]]:
        """
        The parts of a 206 response: (first, last, content) each.
        """
        self.assertEqual(len(body), response.length)
        contentType = header(response, "content-type") or ""
        match = re.match(r'multipart/byteranges; boundary="([^"]+)"$', contentType)
        if match is None:
            found = re.match(r"bytes (\d+)-(\d+)/(\d+)$", header(response, "content-range") or "")
            assert found is not None
            self.assertEqual(int(found.group(3)), SIZE)
            return [(int(found.group(1)), int(found.group(2)), body)]
        delimiter = b"\r\n--" + match.group(1).encode()
        self.assertTrue(body.startswith(delimiter + b"\r\n"))
        self.assertTrue(body.endswith(delimiter + b"--\r\n"))
        result = []
        for chunk in body[: -len(delimiter) - 4].split(delimiter)[1:]:
            head, _, content = chunk.partition(b"\r\n\r\n")
            found = re.search(rb"\r\nContent-Range: bytes (\d+)-(\d+)/(\d+)\r\n", head + b"\r\n")
            assert found is not None, head
            result.append((int(found.group(1)), int(found.group(2)), content))
        self.assertGreater(len(result), 1)  # never a multipart of one part
        return result

    def check(self, ranges: list[tuple[int | None, int | None]]) -> None:
        value = "bytes=" + ",".join(map(specText, ranges))
        response, body = self.get(value)
        positions, total = wanted(ranges)
        if not positions:
            self.assertEqual(response.code, 416, value)
            self.assertEqual(header(response, "content-range"), f"bytes */{SIZE}")
            return
        if total > SIZE:
            self.assertEqual((response.code, body == DATA), (200, True), value)
            return
        self.assertEqual(response.code, 206, value)
        sent: set[int] = set()
        last = None
        for first, end, content in sorted(self.parts(response, body)):
            self.assertEqual(content, DATA[first : end + 1], value)
            if last is not None:
                self.assertGreater(first, last + 1, "overlapping or adjacent parts")
            last = end
            sent.update(range(first, end + 1))
        self.assertEqual(sent, positions, value)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(specs, min_size=1, max_size=8))
    def test_property(self, ranges: list[tuple[int | None, int | None]]) -> None:
        """
        Any set of up to 8 valid ranges (past the end, overlapping,
        suffixes, parts that cross the 64 KiB chunks) gets exactly the
        bytes asked for, each part as the file's slice, overlapping and
        adjacent ones merged; or 416 when none is satisfiable; or the whole
        file with 200 when they add up to more than it.
        """
        self.check(ranges)

    def test_partHeaderAcrossChunk(self) -> None:
        """
        C{bytes=0-65340,200000-200099}: the second part's header crosses
        the first 64 KiB chunk (where Twisted's producer read a negative
        length and hung); both parts arrive whole.
        """
        self.check([(0, 65340), (200000, 200099)])
        for cut in range(65300, 65536, 7):
            self.check([(0, cut), (200000, 200099)])

    def test_repeatedWholeFile(self) -> None:
        """
        C{bytes=0-} 200 times gets the file once, with 200.
        """
        response, body = self.get("bytes=" + ",".join(["0-"] * 200))
        self.assertEqual((response.code, len(body)), (200, SIZE))

    def test_tooMany(self) -> None:
        """
        201 small disjoint ranges get the whole file with 200; 200 get 206.
        """
        response, body = self.get("bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(201)))
        self.assertEqual((response.code, len(body)), (200, SIZE))
        response, body = self.get("bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(200)))
        self.assertEqual(response.code, 206)
        self.assertEqual(len(self.parts(response, body)), 200)


class FakeRequest:
    """
    The request side of a L{RangeProducer}: what it writes, and whether
    the response finished.
    """

    uri = b"/static/f"

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.finished = False
        self.channel = self
        self.transport = BufferingTransport()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def finish(self) -> None:
        self.finished = True

    def getClientAddress(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 5000)


class ProducerErrorTests(SynchronousTestCase):
    """
    A L{RangeProducer} that cannot go on aborts the connection.
    """

    def test_fileShrank(self) -> None:
        """
        A file cut short while it is sent: the connection is aborted (the
        client sees it end short, never waits for ever), the file closed,
        and one error logged.
        """
        path = temporaryDirectory(self) / "f"
        path.write_bytes(b"x" * 200_000)
        request = FakeRequest()
        fileObject = open(path, "rb")  # noqa: SIM115 - the producer closes it
        producer = RangeProducer(request, fileObject, [(b"", 0, 200_000)])  # type: ignore[arg-type]
        producer.start()
        producer.resumeProducing()
        os.truncate(path, 1000)
        with capturedLogs() as events:
            producer.resumeProducing()
        self.assertTrue(request.transport.aborted)
        self.assertFalse(request.finished)
        self.assertTrue(fileObject.closed)
        self.assertEqual([e["log_level"].name for e in events], ["error"])
        producer.resumeProducing()  # stopped: nothing more happens
        self.assertEqual(len(request.written), 1)
