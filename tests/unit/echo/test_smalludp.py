"""
Tests for L{services.echo._smalludp} and L{services.echo.makeSmallUdpService}:
discard, daytime, time and qotd over UDP, within UDP echo's reflection rules.
"""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from services.echo import (
    DatagramAnswer,
    SmallServiceSettings,
    daytimeAnswer,
    makeSmallUdpService,
    timeAnswer,
)
from services.net.datagram import SourceLimiter
from services.net.listener import listeningPorts
from tests.support import freePort
from tests.udpsupport import MemoryDatagramTransport, UdpMemoryReactor

CLIENT = ("127.0.0.1", 40000)


def build(
    answer: object = timeAnswer, rate: float = 10.0, burst: int = 20, globalRate: float = 500.0
) -> tuple[DatagramAnswer, MemoryDatagramTransport, Clock]:
    """
    A connected L{DatagramAnswer} on a memory port, with its clock; port
    10037 is one of "our" service ports.
    """
    clock = Clock()
    clock.advance(1796293175)
    limiter = SourceLimiter(clock, rate, burst, globalRate)
    protocol = DatagramAnswer(answer, limiter, lambda: frozenset({10037}))  # type: ignore[arg-type]
    transport = MemoryDatagramTransport(protocol, ("127.0.0.1", 10037))
    protocol.makeConnection(transport)
    return protocol, transport, clock


class DatagramAnswerTests(SynchronousTestCase):
    """
    One answer per request, never larger than the request, never to an
    unsafe source, within the rate limits.
    """

    def test_answer(self) -> None:
        """
        A request at least as large as the answer gets one answer, for the
        clock's time, counted.
        """
        protocol, transport, _ = build()
        protocol.datagramReceived(b"\0" * 4, CLIENT)
        protocol.datagramReceived(b"\0" * 100, CLIENT)
        self.assertEqual(transport.written, [(timeAnswer(1796293175), CLIENT)] * 2)
        stats = protocol.stats
        self.assertEqual((stats.received, stats.answered, stats.bytesIn, stats.bytesOut), (2, 2, 104, 8))

    def test_neverLargerThanTheRequest(self) -> None:
        """
        A request smaller than the answer gets none: nothing is amplified.
        """
        protocol, transport, _ = build(daytimeAnswer)
        size = len(daytimeAnswer(1796293175))
        protocol.datagramReceived(b"x" * (size - 1), CLIENT)
        protocol.datagramReceived(b"", CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.smallRequests, 2)
        protocol.datagramReceived(b"x" * size, CLIENT)
        self.assertEqual(len(transport.written), 1)

    def test_loopGuard(self) -> None:
        """
        No answer to a source port below 1024 (echo, chargen, DNS...) or to
        one of our own service ports.
        """
        protocol, transport, _ = build()
        for port in (7, 19, 53, 1023, 10037):
            protocol.datagramReceived(b"\0" * 4, ("127.0.0.1", port))
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.loopGuarded, 5)

    def test_rateLimits(self) -> None:
        """
        One source gets its burst, then its rate; the refused are counted.
        """
        protocol, transport, clock = build(rate=1.0, burst=3)
        for _ in range(5):
            protocol.datagramReceived(b"\0" * 4, CLIENT)
        self.assertEqual(len(transport.written), 3)
        self.assertEqual(protocol.stats.rateLimited, 2)
        clock.advance(1)
        protocol.datagramReceived(b"\0" * 4, CLIENT)
        self.assertEqual(len(transport.written), 4)

    def test_oversize(self) -> None:
        """
        A datagram that filled the receive buffer is dropped.
        """
        protocol, transport, _ = build()
        protocol.maxPacketSize = 10
        protocol.datagramReceived(b"\0" * 10, CLIENT)
        self.assertEqual((transport.written, protocol.stats.oversize), ([], 1))

    def test_sendError(self) -> None:
        """
        An answer the system refuses to send is counted, not raised.
        """
        protocol, transport, _ = build()
        transport.error = OSError("no buffer space")
        protocol.datagramReceived(b"\0" * 4, CLIENT)
        self.assertEqual((protocol.stats.sendErrors, protocol.stats.answered), (1, 0))

    def test_discard(self) -> None:
        """
        Discard (no answer function) counts datagrams and answers none,
        from any source.
        """
        protocol, transport, _ = build(None)
        protocol.datagramReceived(b"x" * 100, ("127.0.0.1", 7))
        protocol.datagramReceived(b"x" * 50, CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual((protocol.stats.received, protocol.stats.bytesIn), (2, 150))


class MakeSmallUdpServiceTests(SynchronousTestCase):
    """
    L{makeSmallUdpService} builds C{udp-NAME} with one listener per
    endpoint of C{udp}.
    """

    def test_tree(self) -> None:
        """
        The service is named C{udp-NAME}; each endpoint is listened on, and
        the configured ports get no answers (loop guard).
        """
        reactor = UdpMemoryReactor()
        first, second = freePort(socket.SOCK_DGRAM), freePort(socket.SOCK_DGRAM)
        settings = SmallServiceSettings(udp=(f"udp:{first}:interface=127.0.0.1", str(second)))
        service = makeSmallUdpService("daytime", settings, reactor)
        self.assertEqual(service.name, "udp-daytime")
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            sorted(p.getHost().port for p in listeningPorts(service)), sorted([first, second])
        )
        protocol = reactor.datagramPorts[0].protocol
        self.assertIs(protocol.answer, daytimeAnswer)
        protocol.datagramReceived(b"x" * 100, ("127.0.0.1", second))
        self.assertEqual(protocol.stats.loopGuarded, 1)

    def test_discard(self) -> None:
        """
        Discard's UDP service answers nothing.
        """
        reactor = UdpMemoryReactor()
        port = freePort(socket.SOCK_DGRAM)
        settings = SmallServiceSettings(udp=(f"udp:{port}:interface=127.0.0.1",))
        service = makeSmallUdpService("discard", settings, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        reactor.datagramPorts[0].protocol.datagramReceived(b"abc", CLIENT)
        self.assertEqual(reactor.datagramPorts[0].written, [])

    def test_noChargen(self) -> None:
        """
        Chargen is not offered over UDP: asking for it is a L{ValueError}.
        """
        settings = SmallServiceSettings(udp=("udp:0:interface=127.0.0.1",))
        self.assertRaises(ValueError, makeSmallUdpService, "chargen", settings, UdpMemoryReactor())
