"""
Tests for the one-frame echo of the nsepoll reactor's TCP connections
(L{services._twisted.reactor.LeanTCPServerMixin.echoInOneFrame}): an
L{services.echo.Echo} on such a connection is read, counted, echoed and
its idle timer touched within C{doRead}, and every other state falls back
to the path through the echo's C{dataReceived}.

Connections are the nsepoll reactor's real TCP transports over a socket
pair, driven by a fake reactor: the tests call C{doRead}, C{doWrite} and
the flush where the reactor would.
"""

from __future__ import annotations

import socket
from typing import Any
from unittest import mock

from twisted.internet import main, tcp
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from services.echo._tcp import Echo, EchoFactory
from services.nsepoll import _reactor as nsreactor


class FlushingReactor(MemoryReactorClock):
    """
    A fake reactor that records the connections the nsepoll flush is asked
    for, as L{services._twisted.reactor.LeanEPollReactor.flushLater}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.toFlush: list[Any] = []

    def flushLater(self, connection: Any) -> None:
        self.toFlush.append(connection)


def connect(
    test: SynchronousTestCase, factory: EchoFactory, cls: type = nsreactor.Server,
    oneFrame: bool = True,
) -> tuple[Any, Echo, socket.socket]:
    """
    An echo of C{factory} over one end of a socket pair, on a transport of
    class C{cls}; returns the transport, the echo and the other end
    (blocking, with a timeout).
    """
    ours, peer = socket.socketpair()
    peer.settimeout(5)
    test.addCleanup(peer.close)
    test.addCleanup(ours.close)
    protocol = factory.buildProtocol(None)
    assert protocol is not None
    protocol.oneFrame = oneFrame
    transport = cls(ours, protocol, ("127.0.0.1", 4321), None, 1, factory.reactor)
    protocol.makeConnection(transport)
    return transport, protocol, peer


def countCalls(test: SynchronousTestCase, protocol: Echo) -> list[bytes]:
    """
    Record the calls of C{protocol}'s C{dataReceived} (still echoing).
    """
    calls: list[bytes] = []
    original = protocol.dataReceived

    def dataReceived(data: bytes) -> None:
        calls.append(data)
        original(data)

    protocol.dataReceived = dataReceived  # type: ignore[method-assign]
    return calls


class OneFrameTests(SynchronousTestCase):
    """
    The echo in one frame, and its fallbacks.
    """

    def test_takenWhenIdle(self) -> None:
        """
        With nothing queued, a read is echoed and counted without calling
        the echo's C{dataReceived}, and nothing waits for a flush.
        """
        factory = EchoFactory(reactor=FlushingReactor())
        transport, protocol, peer = connect(self, factory)
        self.assertTrue(transport._oneFrameEcho)
        calls = countCalls(self, protocol)
        peer.sendall(b"ping")
        self.assertIsNone(transport.doRead())
        self.assertEqual(peer.recv(10), b"ping")
        self.assertEqual(calls, [])
        self.assertEqual(factory.reactor.toFlush, [])
        self.assertEqual((protocol.bytesIn, protocol.bytesOut), (4, 4))

    def test_notTakenElsewhere(self) -> None:
        """
        Twisted's own TCP transport (the other reactors), an echo whose
        C{oneFrame} is false and a subclass that overrides C{dataReceived}
        keep the path through C{dataReceived}.
        """
        factory = EchoFactory(reactor=FlushingReactor())
        transport, _, _ = connect(self, factory, cls=tcp.Server)
        self.assertFalse(hasattr(transport, "_oneFrameEcho"))
        transport, _, _ = connect(self, factory, oneFrame=False)
        self.assertFalse(transport._oneFrameEcho)

        class Loud(Echo):
            def dataReceived(self, data: bytes) -> None:
                Echo.dataReceived(self, data)

        factory.protocol = Loud
        transport, _, _ = connect(self, factory)
        self.assertFalse(transport._oneFrameEcho)

    def test_countersAsTheFullPath(self) -> None:
        """
        The same traffic through one frame and through C{dataReceived}
        leaves the same counters.
        """
        totals = []
        for oneFrame in (True, False):
            factory = EchoFactory(reactor=FlushingReactor())
            transport, protocol, peer = connect(self, factory, oneFrame=oneFrame)
            for size in (1, 64, 1000, 4096):
                peer.sendall(b"y" * size)
                transport.doRead()
                self.assertEqual(len(peer.recv(size, socket.MSG_WAITALL)), size)
            stats = factory.stats
            totals.append((protocol.bytesIn, protocol.bytesOut, stats.bytesIn, stats.bytesOut))
        self.assertEqual(totals[0], totals[1])
        self.assertEqual(totals[0], (5161,) * 4)

    def test_partialSendQueuesAndPauses(self) -> None:
        """
        When the peer does not read, what the kernel does not take is
        queued behind the flush, the next reads queue behind it, and the
        transport pauses the echo (it stops reading, its send timer runs):
        memory stays bounded, and draining delivers every byte in order.
        """
        factory = EchoFactory(reactor=FlushingReactor(), sendTimeout=30)
        transport, protocol, peer = connect(self, factory)
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport.startReading()
        calls = countCalls(self, protocol)
        sent = bytearray()
        peer.setblocking(False)
        for i in range(400):
            if transport not in factory.reactor.getReaders():
                break
            chunk = bytes([i % 256]) * 8192
            try:
                n = peer.send(chunk)
            except BlockingIOError:
                n = 0
            sent += chunk[:n]
            transport.doRead()
        self.assertNotIn(transport, factory.reactor.getReaders())
        self.assertTrue(protocol.backpressured)
        self.assertIsNotNone(protocol._sendTimer)
        self.assertEqual(calls, [])
        self.assertIn(transport, factory.reactor.toFlush)
        self.assertLess(transport._tempDataLen, 4 * transport.bufferSize)
        # Drain: the kernel buffers, then the queue, then what is still unread.
        received = bytearray()
        for _ in range(100_000):
            try:
                while True:
                    data = peer.recv(1 << 20)
                    if not data:
                        break
                    received += data
            except BlockingIOError:
                pass
            if transport._tempDataLen or transport.dataBuffer[transport.offset:]:
                transport.doWrite()
            else:
                transport.doRead()
            if len(received) == len(sent) == protocol.bytesIn:
                break
        self.assertEqual(bytes(received), bytes(sent))
        self.assertEqual(factory.stats.bytesIn, len(sent))
        self.assertEqual(protocol.bytesOut, len(sent))

    def test_queuedBytesGoFirst(self) -> None:
        """
        When bytes are queued, the read's echo is queued behind them.
        """
        factory = EchoFactory(reactor=FlushingReactor())
        transport, _, peer = connect(self, factory)
        transport.write(b"first ")
        peer.sendall(b"second")
        transport.doRead()
        self.assertEqual(transport._tempDataBuffer, [b"first ", b"second"])
        transport.doWrite()
        self.assertEqual(peer.recv(100, socket.MSG_WAITALL), b"first second")

    def test_tlsFallsBack(self) -> None:
        """
        Once TLS is started, the bytes go to the protocol (the TLS layer).
        """
        factory = EchoFactory(reactor=FlushingReactor())
        transport, protocol, peer = connect(self, factory)
        calls: list[bytes] = []
        protocol.dataReceived = calls.append  # type: ignore[method-assign]
        transport.TLS = True
        peer.sendall(b"hello")
        transport.doRead()
        self.assertEqual(calls, [b"hello"])

    def test_idleTimeoutStillFires(self) -> None:
        """
        A read in one frame restarts the idle timeout; silence for that
        long afterwards closes the connection.
        """
        reactor = FlushingReactor()
        factory = EchoFactory(reactor=reactor, idleTimeout=10)
        transport, protocol, peer = connect(self, factory)
        reactor.advance(5)
        peer.sendall(b"x")
        transport.doRead()
        reactor.advance(6)  # 11 s after connecting, 6 s after the read
        self.assertEqual(factory.stats.timedOut, 0)
        self.assertTrue(transport.connected)
        reactor.advance(5)
        self.assertEqual(factory.stats.timedOut, 1)
        self.assertTrue(transport.disconnected or transport.disconnecting)

    def test_endAndErrors(self) -> None:
        """
        Nothing to read is nothing done; the peer's end is
        C{CONNECTION_DONE}, a failed read C{CONNECTION_LOST}, and
        the loss reaches the echo, which uncounts the connection.
        """
        factory = EchoFactory(reactor=FlushingReactor())
        transport, protocol, peer = connect(self, factory)
        self.assertIsNone(transport.doRead())
        peer.close()
        why = transport.doRead()
        self.assertIs(why, main.CONNECTION_DONE)
        transport.connectionLost(Failure(why))
        self.assertEqual(factory.stats.current, 0)
        transport, protocol, peer = connect(self, factory)
        with mock.patch.object(transport, "socket") as sock:
            sock.recv.side_effect = ConnectionResetError(104, "reset")
            self.assertIs(transport.doRead(), main.CONNECTION_LOST)

    def test_sendErrorIsLeftToTheTransport(self) -> None:
        """
        A failing send queues the echo; the transport reports the loss on
        its next write attempt, as with the path through C{dataReceived}.
        """
        factory = EchoFactory(reactor=FlushingReactor())
        transport, protocol, peer = connect(self, factory)
        peer.sendall(b"late")
        with mock.patch.object(transport, "socket", wraps=transport.socket) as sock:
            sock.send.side_effect = BrokenPipeError(32, "broken pipe")
            transport.doRead()
        self.assertEqual(transport._tempDataBuffer, [b"late"])
        self.assertEqual(factory.stats.bytesIn, 4)
