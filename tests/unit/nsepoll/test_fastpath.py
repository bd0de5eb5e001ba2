"""
Tests for L{services.nsepoll.fastpath}: writing straight to the socket when nothing
is queued, and falling back to the transport everywhere else.

Connections are real Twisted transports over a socket pair, driven by a
MemoryReactor: nothing runs a reactor, and the tests call C{doWrite} where
the reactor would.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from services.nsepoll import _reactor as nsreactor
from services.echo._tcp import Echo, EchoFactory
from services.nsepoll.fastpath import canWriteDirectly, writeDirectly

from tests.support import RecordingProducer

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover
    unix = None  # type: ignore[assignment]


def connection(
    test: SynchronousTestCase, cls: type = tcp.Server, protocol: Any = None
) -> tuple[Any, socket.socket, MemoryReactorClock]:
    """
    A connected Twisted server transport of class C{cls} over one end of a
    socket pair, with C{protocol} (a plain L{Protocol} by default); returns
    it, the other end (blocking, with a timeout) and the fake reactor.
    """
    ours, peer = socket.socketpair()
    peer.settimeout(5)
    test.addCleanup(peer.close)
    reactor = MemoryReactorClock()
    protocol = protocol if protocol is not None else Protocol()
    transport = cls(ours, protocol, ("127.0.0.1", 4321), None, 1, reactor)
    test.addCleanup(ours.close)
    protocol.makeConnection(transport)
    return transport, peer, reactor


def readExactly(sock: socket.socket, n: int) -> bytes:
    """
    Read exactly C{n} bytes from a blocking socket.
    """
    chunks = []
    while n:
        data = sock.recv(min(n, 1 << 20))
        if not data:
            break
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


class CanWriteDirectlyTests(SynchronousTestCase):
    """
    Only Twisted's own plain TCP and UNIX server connections qualify.
    """

    def test_plainTCP(self) -> None:
        """
        A plain TCP server connection qualifies.
        """
        transport, _, _ = connection(self)
        self.assertTrue(canWriteDirectly(transport))

    def test_plainUNIX(self) -> None:
        """
        A plain UNIX server connection qualifies.
        """
        if unix is None:
            self.skipTest("no UNIX sockets here")
        transport, _, _ = connection(self, unix.Server)
        self.assertTrue(canWriteDirectly(transport))

    def test_nsepollConnections(self) -> None:
        """
        The nsepoll reactor's connections declare themselves plain.
        """
        self.assertTrue(nsreactor.Server._plainSocketTransport)
        self.assertTrue(canWriteDirectly(nsreactor.Server.__new__(nsreactor.Server)))
        self.assertTrue(canWriteDirectly(nsreactor.UNIXServer.__new__(nsreactor.UNIXServer)))

    def test_wrappersAndFakes(self) -> None:
        """
        TLS (a TLSMemoryBIOProtocol transport), the PROXY protocol and
        other ProtocolWrappers, in-memory transports and subclasses that do
        not declare themselves plain (they may change C{write}) do not
        qualify.
        """
        tlsFactory = TLSMemoryBIOFactory(
            CertificateOptions(), False, EchoFactory(reactor=MemoryReactorClock())
        )
        tlsProtocol = tlsFactory.buildProtocol(None)
        wrapper = ProtocolWrapper(WrappingFactory(EchoFactory(reactor=MemoryReactorClock())), Echo())
        haproxy = HAProxyWrappingFactory(EchoFactory(reactor=MemoryReactorClock())).buildProtocol(None)
        self.assertFalse(canWriteDirectly(tlsProtocol))
        self.assertFalse(canWriteDirectly(wrapper))
        self.assertFalse(canWriteDirectly(haproxy))
        self.assertFalse(canWriteDirectly(StringTransport()))
        class Subclass(tcp.Server):
            pass

        transport, _, _ = connection(self, Subclass)
        self.assertFalse(canWriteDirectly(transport))


class WriteDirectlyTests(SynchronousTestCase):
    """
    L{writeDirectly} sends at once when nothing is queued, and otherwise
    keeps the transport's ordering, buffering and backpressure.
    """

    def test_sendsAtOnceWhenIdle(self) -> None:
        """
        With nothing queued, the bytes reach the peer without a reactor
        turn, and the transport never registers for writability.
        """
        transport, peer, reactor = connection(self)
        writeDirectly(transport, b"hello")
        self.assertEqual(peer.recv(100), b"hello")
        self.assertEqual(reactor.getWriters(), [])
        self.assertEqual(transport._tempDataLen, 0)

    def test_queuesBehindQueuedBytes(self) -> None:
        """
        When bytes are already queued, new ones are queued behind them, so
        the peer receives everything in order.
        """
        transport, peer, reactor = connection(self)
        transport.write(b"first ")
        writeDirectly(transport, b"second")
        peer.setblocking(False)
        self.assertRaises(BlockingIOError, peer.recv, 100)
        self.assertEqual(reactor.getWriters(), [transport])
        transport.doWrite()
        peer.setblocking(True)
        self.assertEqual(readExactly(peer, 12), b"first second")

    def test_partialSendQueuesTheRestAndPauses(self) -> None:
        """
        What the kernel does not take is queued; once more than the
        transport's buffer size is queued, its streaming producer is paused,
        as with the transport's own write.  Draining delivers every byte in
        order.
        """
        transport, peer, _ = connection(self)
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        producer = RecordingProducer()
        transport.registerProducer(producer, True)
        payload = bytes(range(256)) * 4096  # 1 MiB, more than any socket buffer
        writeDirectly(transport, payload)
        self.assertGreater(transport._tempDataLen, transport.bufferSize)
        self.assertEqual(producer.calls, ["pause"])
        received = bytearray()
        for _ in range(10_000):
            if len(received) == len(payload):
                break
            transport.doWrite()
            peer.setblocking(False)
            try:
                while True:
                    received += peer.recv(1 << 20)
            except BlockingIOError:
                pass
        self.assertEqual(bytes(received), payload)
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_fallsBackWhenNotPlain(self) -> None:
        """
        TLS started on the connection, a pending close or half-close, a
        lost connection, or a non-bytes argument all go to the transport's
        own C{write}.
        """
        for state in ("TLS", "disconnecting", "_writeDisconnecting"):
            transport, _, _ = connection(self)
            calls: list[bytes] = []
            transport.write = calls.append
            setattr(transport, state, True)
            writeDirectly(transport, b"x")
            self.assertEqual(calls, [b"x"], state)
        transport, _, _ = connection(self)
        calls = []
        transport.write = calls.append
        transport.connected = False
        writeDirectly(transport, b"y")
        view = memoryview(b"z")
        writeDirectly(transport, view)  # type: ignore[arg-type]
        self.assertEqual(calls, [b"y", view])

    def test_sendErrorIsLeftToTheTransport(self) -> None:
        """
        When the peer has gone, C{send} fails: the error is not raised from
        write; the bytes are queued and the transport reports the loss on
        its next write attempt, as it always does.
        """
        transport, peer, _ = connection(self)
        peer.close()
        writeDirectly(transport, b"late")
        writeDirectly(transport, b"later")
        self.assertEqual(transport._tempDataBuffer, [b"late", b"later"])
        self.assertIsInstance(transport.doWrite(), Exception)


class EchoFastPathTests(SynchronousTestCase):
    """
    L{Echo} uses the direct path on plain connections, and keeps its
    backpressure.
    """

    def test_echoWithoutReactorTurn(self) -> None:
        """
        On a plain TCP connection the echo reaches the peer from
        C{dataReceived} itself, and is counted.
        """
        factory = EchoFactory(reactor=MemoryReactorClock())
        protocol = factory.buildProtocol(None)
        transport, peer, reactor = connection(self, protocol=protocol)
        protocol.dataReceived(b"ping")
        self.assertEqual(peer.recv(10), b"ping")
        self.assertEqual(reactor.getWriters(), [])
        self.assertEqual(factory.stats.bytesOut, 4)

    def test_readSize(self) -> None:
        """
        Plain connections read (and queue before pausing) C{readSize}
        bytes; other transports keep their own buffer size.
        """
        factory = EchoFactory(reactor=MemoryReactorClock())
        protocol = factory.buildProtocol(None)
        transport, _, _ = connection(self, protocol=protocol)
        self.assertEqual(transport.bufferSize, Echo.readSize)
        other = StringTransport()
        before = getattr(other, "bufferSize", None)
        factory.buildProtocol(None).makeConnection(other)
        self.assertEqual(getattr(other, "bufferSize", None), before)

    def test_peerThatDoesNotReadStopsReading(self) -> None:
        """
        When the peer does not read, the kernel buffers fill, the rest is
        queued, and the transport pauses the echo, which stops reading from
        the peer: memory stays bounded.
        """
        factory = EchoFactory(reactor=MemoryReactorClock())
        protocol = factory.buildProtocol(None)
        transport, _, reactor = connection(self, protocol=protocol)
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.startReading()
        self.assertIn(transport, reactor.getReaders())
        chunk = b"x" * 65536
        for _ in range(100):
            protocol.dataReceived(chunk)
            if transport not in reactor.getReaders():
                break
        self.assertNotIn(transport, reactor.getReaders())
        self.assertLess(transport._tempDataLen, 4 * transport.bufferSize)
