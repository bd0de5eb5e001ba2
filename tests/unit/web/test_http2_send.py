"""
Tests for the direct send path of L{services._twisted.http2}: a response
that may go at once is written while the frames that asked for it are
handled, without waiting for Twisted's send loop; anything else (a body
larger than a frame, a transport that holds the connection back) still goes
through the loop, in order; and a RST_STREAM that h2 reads along with its
request still finds its stream open and counts against rapid reset.
"""

from __future__ import annotations

from typing import Any

import h2.errors
import twisted
import h2.events
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from services.web import LimitedSite
from services.web._pages import Hello
from tests.unit.web.test_http2 import Client, H2TestCase

#: A body larger than HTTP/2's default frame size (16 KiB).
LARGE = 40_000


class Sized(Resource):
    """
    A body of C{?n=} bytes.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"x" * int(request.args[b"n"][0])


class Pieces(Resource):
    """
    A body written in two pieces: one larger than a frame, then a small one.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.write(b"a" * LARGE)
        request.write(b"b" * 10)
        return b""


class Later(Resource):
    """
    A body written one clock second after the request.
    """

    isLeaf = True

    def __init__(self, clock: Clock) -> None:
        Resource.__init__(self)
        self.clock = clock

    def render_GET(self, request: Any) -> object:
        def finish() -> None:
            request.write(b"later")
            request.finish()

        self.clock.callLater(1, finish)
        return NOT_DONE_YET


class SendTests(H2TestCase):
    """
    Responses on the direct send path and on Twisted's send loop.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        tree = Resource()
        tree.putChild(b"", Hello())
        tree.putChild(b"sized", Sized())
        tree.putChild(b"later", Later(self.clock))
        tree.putChild(b"pieces", Pieces())
        self.site = LimitedSite(tree, self.limits, reactor=self.clock)
        self.stats = self.site.stats

    def deliver(self, client: Client) -> None:
        """
        Hand the server what the client has to send, in one read, without
        letting the clock (and so Twisted's send loop) run.
        """
        client.channel.dataReceived(client.h2.data_to_send())

    def openRequest(self, client: Client, path: bytes = b"/") -> int:
        stream = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            stream,
            [(b":method", b"GET"), (b":path", path), (b":scheme", b"https"),
             (b":authority", b"web")],
            end_stream=True,
        )
        return stream

    def ended(self, client: Client, stream: int) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in client.events
        )

    def test_answeredInTheRead(self) -> None:
        """
        A small response is complete, and its stream forgotten, as soon as
        the read that brought its request is handled: no reactor iteration
        is needed.
        """
        client = Client(self)
        stream = self.openRequest(client)
        self.deliver(client)
        client.read()
        self.assertEqual(client.response(stream)[1], b"Hello World")
        self.assertTrue(self.ended(client, stream))
        self.assertNotIn(stream, client.server.streams)
        self.assertEqual(self.stats.requests, 1)

    def test_batchAnsweredInTheRead(self) -> None:
        """
        Every request of a read is answered within it, and the ends of all
        their streams go out in one write after the last frame is handled.
        """
        client = Client(self)
        streams = [self.openRequest(client) for _ in range(4)]
        writes: list[bytes] = []
        write = client.transport.write

        def counting(data: bytes) -> None:
            writes.append(data)
            write(data)

        client.transport.write = counting  # type: ignore[method-assign]
        self.deliver(client)
        client.read()
        for stream in streams:
            self.assertEqual(client.response(stream)[1], b"Hello World")
            self.assertTrue(self.ended(client, stream))
        self.assertEqual(client.server.streams, {})
        # Headers and body per stream, then one write for every end.
        self.assertEqual(len(writes), 2 * len(streams) + 1)

    def test_answeredLater(self) -> None:
        """
        A response written after the read is sent and ended at once too.
        """
        client = Client(self)
        stream = self.openRequest(client, b"/later")
        self.deliver(client)
        self.assertIn(stream, client.server.streams)
        self.clock.advance(1)
        client.read()
        self.assertEqual(client.response(stream)[1], b"later")
        self.assertTrue(self.ended(client, stream))
        self.assertNotIn(stream, client.server.streams)

    def test_largeBodyThroughTheLoop(self) -> None:
        """
        A body larger than a frame goes through Twisted's send loop, whole,
        and its stream ends after it, while a small response on the same
        connection goes at once.
        """
        client = Client(self)
        client.transport.bufferSize = 1 << 20  # never full
        large = self.openRequest(client, b"/sized?n=%d" % (LARGE,))
        small = self.openRequest(client)
        self.deliver(client)
        client.read()
        self.assertEqual(client.response(small)[1], b"Hello World")
        self.assertFalse(self.ended(client, large))
        for _ in range(10):
            self.clock.advance(0)
            client.read()
        self.assertEqual(client.response(large)[1], b"x" * LARGE)
        self.assertTrue(self.ended(client, large))
        self.assertEqual(client.server.streams, {})

    def test_orderWithinAStream(self) -> None:
        """
        A small piece written after a large one on the same stream waits
        behind it in the stream's queue: the body arrives in order.
        """
        client = Client(self)
        client.transport.bufferSize = 1 << 20
        stream = self.openRequest(client, b"/pieces")
        self.deliver(client)
        for _ in range(10):
            self.clock.advance(0)
            client.read()
        self.assertEqual(client.response(stream)[1], b"a" * LARGE + b"b" * 10)
        self.assertTrue(self.ended(client, stream))

    def test_backpressure(self) -> None:
        """
        While the transport holds the connection back (its buffer is full),
        responses wait in Twisted's queue, and go out, whole and ended, once
        the client reads.
        """
        client = Client(self)
        first = self.openRequest(client, b"/sized?n=2000")
        self.deliver(client)
        self.assertTrue(client.server.backpressured)
        second = self.openRequest(client)
        self.deliver(client)
        self.assertIn(second, client.server.streams)
        for _ in range(10):
            client.read()
            self.clock.advance(0)
        client.read()
        self.assertEqual(client.response(first)[1], b"x" * 2000)
        self.assertEqual(client.response(second)[1], b"Hello World")
        self.assertTrue(self.ended(client, first) and self.ended(client, second))
        self.assertEqual(client.server.streams, {})

    def test_resetInTheSameRead(self) -> None:
        """
        A request reset in the same read as it was made is answered into
        nothing: its stream is dropped, without an error, and the reset is
        counted against rapid reset.
        """
        client = Client(self)
        stream = self.openRequest(client)
        client.h2.reset_stream(stream)
        self.deliver(client)
        client.read()
        self.assertNotIn(stream, client.server.streams)
        self.assertFalse(self.ended(client, stream))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertFalse(client.transport.disconnecting)

    def test_rapidReset(self) -> None:
        """
        Requests reset as they are made, each pair in its own read, get the
        connection closed (ENHANCE_YOUR_CALM) once Twisted's token bucket is
        empty, and counted: no more than its burst of resets is allowed on
        a clock that does not move.
        """
        if (twisted.version.major, twisted.version.minor) < (26, 10):
            raise SkipTest("Twisted's token bucket against rapid reset came in 26.10")
        client = Client(self)
        for sent in range(1, 1100):
            stream = self.openRequest(client)
            client.h2.reset_stream(stream)
            self.deliver(client)
            if client.transport.disconnecting:
                break
        self.assertLessEqual(sent, 1001)
        client.read()
        self.assertTrue(client.goneAway())
        self.assertEqual(client.events[-1].error_code, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertEqual(self.stats.http2Errors, 1)
