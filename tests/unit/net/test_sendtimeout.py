"""
Tests for L{services.net.sendtimeout} and the send timeouts of the echo
service (L{services.echo._tcp.Echo}), driven through a transport with a send
buffer (L{BufferingTransport}) and a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from services.echo._tcp import EchoFactory
from services.net.sendtimeout import SendTimer, queuedBytes

from tests.support import BufferingTransport


class QueuedBytesTests(SynchronousTestCase):
    """
    L{queuedBytes} reads the send buffer of a socket transport, through
    wrappers.
    """

    def test_wrapped(self) -> None:
        """
        The bytes queued in the socket transport under a wrapper (TLS, PROXY
        protocol) are found through its C{transport}.
        """
        transport = BufferingTransport()
        transport.write(b"abc")

        class Wrapper:
            pass

        wrapper = Wrapper()
        wrapper.transport = transport  # type: ignore[attr-defined]
        self.assertEqual(queuedBytes(wrapper), 3)

    def test_unknown(self) -> None:
        """
        A transport that keeps no such buffer gives L{None}.
        """
        self.assertIsNone(queuedBytes(object()))


class SendTimerTests(SynchronousTestCase):
    """
    L{SendTimer} fires only after C{timeout} seconds paused without
    progress.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = BufferingTransport()
        self.transport.write(b"x" * 100)
        self.expired: list[bool] = []
        self.timer = SendTimer(self.clock, 10, self.transport, lambda: self.expired.append(True))

    def test_noProgress(self) -> None:
        """
        Paused, with nothing taken for C{timeout} seconds: expired.
        """
        self.timer.paused()
        self.clock.advance(9.9)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.expired, [True])

    def test_unknownTransportExpires(self) -> None:
        """
        When the transport cannot say how much it holds, C{timeout} seconds
        paused expire it.
        """
        timer = SendTimer(self.clock, 10, object(), lambda: self.expired.append(True))
        timer.paused()
        self.clock.advance(10)
        self.assertEqual(self.expired, [True])

    def test_resumedCancels(self) -> None:
        """
        Resumed before C{timeout}: nothing is left scheduled.
        """
        self.timer.paused()
        self.timer.resumed()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_off(self) -> None:
        """
        A C{timeout} of 0 never schedules anything.
        """
        SendTimer(self.clock, 0, self.transport, lambda: None).paused()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class EchoSendTimeoutTests(SynchronousTestCase):
    """
    An echo peer that sends but reads none of its echo is dropped after
    C{sendTimeout} seconds and counted.
    """

    def connect(self, sendTimeout: float | None) -> BufferingTransport:
        self.clock = Clock()
        self.factory = EchoFactory(reactor=self.clock, sendTimeout=sendTimeout)
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = BufferingTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"x" * 2000)
        self.assertEqual(transport.producerState, "paused")
        return transport

    def test_unreadEchoDropped(self) -> None:
        """
        The echo paused (its peer does not read) is aborted C{sendTimeout}
        seconds later, and counted in C{sendTimeouts}.
        """
        transport = self.connect(60)
        self.clock.advance(59)
        self.assertFalse(transport.aborted)
        self.clock.advance(1)
        self.assertTrue(transport.aborted)
        self.assertEqual(self.factory.stats.sendTimeouts, 1)

    def test_readingPeerKept(self) -> None:
        """
        A peer that reads its echo in time is never dropped.
        """
        transport = self.connect(60)
        self.clock.advance(59)
        transport.peerReads()
        self.assertEqual(transport.producerState, "producing")
        self.clock.advance(120)
        self.assertFalse(transport.aborted)
        self.assertEqual(self.factory.stats.sendTimeouts, 0)

    def test_off(self) -> None:
        """
        Without a C{sendTimeout}, a paused echo waits for ever.
        """
        transport = self.connect(None)
        self.clock.advance(3600)
        self.assertFalse(transport.aborted)
