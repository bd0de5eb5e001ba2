"""
Tests for L{services.web._http2}: the limits of HTTP/1.1 on HTTP/2 connections,
driven by h2's own client state machine over an in-memory transport and a
clock.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.web import HTTPLimits, LimitedSite
from services.web._http2 import CONTROL_FRAMES, LimitedH2Connection
from services.web._http2factory import NegotiatingChannel
from services.web._pages import Hello

from tests.support import BufferingTransport


class ALPNTransport(BufferingTransport):
    """
    A transport whose TLS handshake chose C{h2}.
    """

    negotiatedProtocol = b"h2"


class Client:
    """
    An HTTP/2 client (h2's state machine) talking to a connection of a
    L{LimitedSite} through an in-memory transport.
    """

    def __init__(self, test: H2TestCase) -> None:
        self.test = test
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        self.events: list[Any] = []
        peer = IPv4Address("TCP", "127.0.0.2", 4000)
        self.transport = ALPNTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8443), peerAddress=peer
        )
        self.channel = NegotiatingChannel(test.site.buildProtocol(peer))
        self.channel.makeConnection(self.transport)
        self.send()

    @property
    def server(self) -> LimitedH2Connection:
        """
        The HTTP/2 connection the channel switched to.
        """
        connection: LimitedH2Connection = self.channel._channel
        return connection

    def send(self) -> None:
        """
        Deliver what the client has to send, let the server's send loop run,
        and read its answer.
        """
        data = self.h2.data_to_send()
        if data:
            self.channel.dataReceived(data)
        self.test.clock.advance(0)
        self.read()

    def read(self) -> None:
        """
        Take what the server wrote, as a client that reads.
        """
        if self.transport.disconnecting and not self.transport.value():
            return
        received = self.transport.peerReads()
        if received:
            self.events += self.h2.receive_data(received)
            self.h2_flush()

    def h2_flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.transport.disconnecting:
            self.channel.dataReceived(data)
            self.test.clock.advance(0)

    def request(
        self, path: bytes = b"/", method: bytes = b"GET", body: bytes | None = None,
        headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    ) -> int:
        """
        Send a request; return its stream id.
        """
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(
            stream,
            [
                (b":method", method),
                (b":path", path),
                (b":scheme", b"https"),
                (b":authority", b"web"),
                *headers,
            ],
            end_stream=body is None,
        )
        if body is not None:
            self.h2.send_data(stream, body, end_stream=True)
        self.send()
        return stream

    def response(self, stream: int) -> tuple[dict[bytes, bytes], bytes]:
        """
        The headers and body received on C{stream}.
        """
        headers: dict[bytes, bytes] = {}
        body = b""
        for event in self.events:
            if getattr(event, "stream_id", None) != stream:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                headers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
        return headers, body

    def goneAway(self) -> bool:
        """
        Whether the server sent GOAWAY and closed.
        """
        return self.transport.disconnecting and any(
            isinstance(e, h2.events.ConnectionTerminated) for e in self.events
        )


class H2TestCase(SynchronousTestCase):
    """
    A L{LimitedSite} with small limits on a clock.
    """

    limits = HTTPLimits(
        headerTimeout=5, idleTimeout=30, maxBody=100, sendTimeout=20, maxStreams=4
    )

    def setUp(self) -> None:
        self.clock = Clock()
        tree = Resource()
        tree.putChild(b"", Hello())
        self.site = LimitedSite(tree, self.limits, reactor=self.clock)
        self.stats = self.site.stats


class RequestTests(H2TestCase):
    """
    Requests over HTTP/2 are answered, counted and registered like HTTP/1.1.
    """

    def test_get(self) -> None:
        """
        A GET is answered with the site's headers; the connection is counted
        once, listed in the site's registry with its bytes, and uncounted
        when it closes.
        """
        client = Client(self)
        stream = client.request()
        headers, body = client.response(stream)
        self.assertEqual((headers[b":status"], body), (b"200", b"Hello World"))
        self.assertEqual(headers[b"server"], b"netservices")
        self.assertEqual((self.stats.current, self.stats.accepted), (1, 1))
        self.assertEqual((self.stats.requests, self.stats.responses2xx), (1, 1))
        self.assertEqual(list(self.site.channels), [client.server])
        self.assertEqual(client.server.bytesOut, 11)
        self.assertEqual(client.server.bytesIn, self.stats.bytesIn)
        client.server.connectionLost(None)
        self.assertEqual((self.stats.current, list(self.site.channels)), (0, []))

    def postHeaders(self, client: Client, length: int) -> int:
        """
        Open a POST stream declaring a body of C{length} bytes.
        """
        stream = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            stream,
            [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"https"),
             (b":authority", b"web"), (b"content-length", b"%d" % (length,))],
        )
        client.send()
        return stream

    def resets(self, client: Client, stream: int) -> list[Any]:
        """
        The server's resets of C{stream}.
        """
        return [e for e in client.events
                if isinstance(e, h2.events.StreamReset) and e.stream_id == stream]

    def test_bodyTooLarge(self) -> None:
        """
        A declared body over C{maxBody} that the client's window lets it
        send in full gets 413 at once, without a reset: the body is read
        and dropped, its room in the flow control windows given back, and
        the stream is over when the client has sent it.  It is counted; the
        next request on the connection is answered.
        """
        client = Client(self)
        stream = self.postHeaders(client, 40000)
        headers, body = client.response(stream)
        self.assertEqual((headers[b":status"], body), (b"413", b"413 Content Too Large\n"))
        self.assertEqual((self.stats.bodyTooLarge, self.stats.responses4xx), (1, 1))
        self.assertEqual(self.resets(client, stream), [])
        self.assertIn(stream, client.server.streams)
        for _ in range(4):
            client.h2.send_data(stream, b"x" * 10000)
            client.send()
        client.h2.end_stream(stream)
        client.send()
        self.assertEqual(self.resets(client, stream), [])
        self.assertNotIn(stream, client.server.streams)
        self.assertEqual(client.h2.outbound_flow_control_window, 65535)
        headers, body = client.response(client.request())
        self.assertEqual(body, b"Hello World")

    def test_bodyTooLargeForWindow(self) -> None:
        """
        A declared body over C{maxBody} that is larger than the client may
        send without a window update gets 413, and its stream is reset
        (NO_ERROR, RFC 9113 8.1): nothing of it is read.
        """
        client = Client(self)
        stream = self.postHeaders(client, 100000)
        headers, body = client.response(stream)
        self.assertEqual((headers[b":status"], body), (b"413", b"413 Content Too Large\n"))
        self.assertEqual([e.error_code for e in self.resets(client, stream)], [0])
        self.assertNotIn(stream, client.server.streams)
        self.assertEqual(self.stats.bodyTooLarge, 1)
        headers, body = client.response(client.request())
        self.assertEqual(body, b"Hello World")

    def test_bodyGrowsTooLarge(self) -> None:
        """
        A body without a length gets 413 as soon as it goes over the limit;
        the stream is reset if the client is still sending, and forgotten.
        """
        client = Client(self)
        stream = client.request(method=b"POST", body=b"x" * 101)
        headers, body = client.response(stream)
        self.assertEqual((headers[b":status"], body), (b"413", b"413 Content Too Large\n"))
        self.assertEqual(self.resets(client, stream), [])
        self.assertNotIn(stream, client.server.streams)
        self.assertEqual(self.stats.bodyTooLarge, 1)
        stream = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            stream,
            [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"https"),
             (b":authority", b"web")],
        )
        client.h2.send_data(stream, b"x" * 101)
        client.send()
        headers, _ = client.response(stream)
        self.assertEqual(headers[b":status"], b"413")
        self.assertEqual([e.error_code for e in self.resets(client, stream)], [0])
        self.assertNotIn(stream, client.server.streams)
        self.assertEqual(self.stats.bodyTooLarge, 2)

    def test_streamCap(self) -> None:
        """
        The server announces C{maxStreams}; a client that opens more
        concurrent streams is closed.
        """
        client = Client(self)
        self.assertEqual(client.h2.remote_settings.max_concurrent_streams, 4)
        # Ignore the cap, as an attacker would.
        client.h2.remote_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}
        )
        for _ in range(5):
            stream = client.h2.get_next_available_stream_id()
            client.h2.send_headers(
                stream,
                [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"https"),
                 (b":authority", b"web")],
            )
        client.send()
        self.assertTrue(client.transport.disconnecting)


class TimeoutTests(H2TestCase):
    """
    The header deadline, the idle timeout and the send timeout hold on
    HTTP/2.
    """

    def pingUntilClosed(self, client: Client, seconds: int) -> None:
        """
        PING once a second for C{seconds} seconds, with the connection open;
        then check that it goes away within 1.5 seconds more.
        """
        for _ in range(seconds):
            self.clock.advance(1)
            client.h2.ping(b"12345678")
            client.send()
        self.assertFalse(client.transport.disconnecting)
        self.clock.advance(1.5)
        client.read()
        self.assertTrue(client.goneAway())

    def test_headerDeadline(self) -> None:
        """
        A connection that completes no request headers within
        C{headerTimeout} gets GOAWAY and is closed, whatever else it sends.
        """
        self.pingUntilClosed(Client(self), 4)
        self.assertEqual(self.stats.headerTimeouts, 1)

    def test_pingDoesNotKeepAlive(self) -> None:
        """
        After a request, PINGs do not restart the idle timeout: the
        connection closes C{idleTimeout} after the last request.
        """
        client = Client(self)
        client.request()
        self.pingUntilClosed(client, 29)
        self.assertEqual(self.stats.idleTimeouts, 1)

    def test_zeroWindow(self) -> None:
        """
        A client that keeps its flow control window shut is aborted after
        C{sendTimeout}.
        """
        client = Client(self)
        client.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        client.send()
        stream = client.request()
        headers, body = client.response(stream)
        self.assertEqual((headers[b":status"], body), (b"200", b""))
        self.clock.advance(19)
        self.assertFalse(client.transport.aborted)
        self.clock.advance(2)
        self.assertTrue(client.transport.aborted)
        self.assertEqual(self.stats.sendTimeouts, 1)

    def test_windowOpened(self) -> None:
        """
        A client that opens its window in time gets its response, and the
        send timeout stops.
        """
        client = Client(self)
        client.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        client.send()
        stream = client.request()
        self.clock.advance(10)
        client.h2.increment_flow_control_window(100, stream_id=stream)
        client.send()
        self.assertEqual(client.response(stream)[1], b"Hello World")
        self.clock.advance(30)
        self.assertFalse(client.transport.aborted)
        self.assertEqual(self.stats.sendTimeouts, 0)


class FloodTests(H2TestCase):
    """
    Floods of control frames close the connection.
    """

    def test_pingFlood(self) -> None:
        """
        More than L{CONTROL_FRAMES} PINGs without a request: GOAWAY and
        close.
        """
        client = Client(self)
        for i in range(CONTROL_FRAMES + 1):
            client.h2.ping(b"%08d" % (i,))
        client.send()
        self.assertTrue(client.goneAway())
        self.assertEqual(client.events[-1].error_code, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        # What still arrives is discarded, and the connection counted once.
        from hyperframe.frame import PingFrame

        client.channel.dataReceived(PingFrame(0, opaque_data=b"87654321").serialize() * 10)
        self.assertEqual(self.stats.http2Errors, 1)

    def test_controlFramesBetweenRequests(self) -> None:
        """
        A request between control frames starts their count again.
        """
        client = Client(self)
        for _ in range(3):
            for i in range(CONTROL_FRAMES // 2):
                client.h2.ping(b"%08d" % (i,))
            client.send()
            client.request()
        self.assertFalse(client.transport.disconnecting)


class NegotiationTests(H2TestCase):
    """
    Only a connection whose handshake chose C{h2} switches.
    """

    def test_http11(self) -> None:
        """
        Without ALPN C{h2} the site's own HTTP/1.1 channel answers.
        """
        peer = IPv4Address("TCP", "127.0.0.2", 4000)
        transport = BufferingTransport(peerAddress=peer)
        channel = NegotiatingChannel(self.site.buildProtocol(peer))
        channel.makeConnection(transport)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertEqual(list(self.site.channels), [channel._channel])

    def test_accessLog(self) -> None:
        """
        The access log line of an HTTP/2 request names C{HTTP/2.0}, as
        Apache's and nginx's do.
        """
        lines = []
        self.site._logFile = type("Log", (), {"write": lambda self, line: lines.append(line)})()
        self.site.accessLog = "access.log"
        client = Client(self)
        client.request(b"/x")
        [line] = lines
        self.assertIn('"GET /x HTTP/2.0" 404 ', line)
        self.assertTrue(line.startswith("127.0.0.2 - - "), line)


class FactoryTests(SynchronousTestCase):
    """
    L{HTTP2Factory} is the site's factory for an C{ssl:} listener.
    """

    def test_caps(self) -> None:
        """
        The site's connection caps apply before any protocol is chosen: a
        connection over C{maxConnectionsPerPeer} gets no protocol, and is
        counted as refused.
        """
        from services.web import HTTP2Factory

        site = LimitedSite(Hello(), HTTPLimits(maxConnectionsPerPeer=1), reactor=Clock())
        factory = HTTP2Factory(site)
        peer = IPv4Address("TCP", "127.0.0.2", 4000)
        first = factory.buildProtocol(peer)
        self.assertIsInstance(first, NegotiatingChannel)
        first.makeConnection(ALPNTransport(peerAddress=peer))
        self.assertIsNone(factory.buildProtocol(peer))
        self.assertEqual(site.stats.refused, 1)

    def test_startsTheSite(self) -> None:
        """
        Starting and stopping the factory starts and stops the site (which
        opens and closes its access log).
        """
        from services.web import HTTP2Factory

        site = LimitedSite(Hello(), HTTPLimits(), reactor=Clock())
        factory = HTTP2Factory(site)
        factory.doStart()
        self.assertEqual(site.numPorts, 1)
        factory.doStop()
        self.assertEqual(site.numPorts, 0)
