"""
Tests of the SOCK_SEQPACKET transport, port and endpoints
(L{services.net.seqpacket}) with the echo protocol, on real UNIX sockets.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from typing import Any

from twisted.internet import error, reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IConsumer,
    IListeningPort,
    IPushProducer,
    IReadDescriptor,
    ITransport,
    IWriteDescriptor,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from services.config import ConfigError, parseConfig
from services.echo._tcp import EchoFactory
from services.net.seqpacket import (
    SeqpacketClientEndpoint,
    SeqpacketConnection,
    SeqpacketServerEndpoint,
    parseSeqpacketDescription,
)
from tests.support import turnUntil


class Records(Protocol):
    """
    Collects every record received; C{closed} fires when the connection
    ends.
    """

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.reason: Failure | None = None
        self.closed: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.records.append(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.reason = reason
        self.closed.callback(None)


class ParseTests(SynchronousTestCase):
    """
    C{unixseq:PATH[:mode=...][:backlog=...]}.
    """

    def test_parse(self) -> None:
        """
        The path, an octal mode and a backlog.
        """
        self.assertEqual(parseSeqpacketDescription("unixseq:/run/x.seq"), ("/run/x.seq", None, None))
        self.assertEqual(
            parseSeqpacketDescription("unixseq:/run/x.seq:mode=660:backlog=5"), ("/run/x.seq", 0o660, 5)
        )

    def test_errors(self) -> None:
        """
        No path, an unknown option or a bad value say what is allowed.
        """
        for text, words in (
            ("unixseq:", "needs a path"),
            ("unixseq:/x:lockfile=1", "mode= and backlog="),
            ("unixseq:/x:mode=9", "octal"),
            ("unixseq:/x:backlog=0", ">= 1"),
        ):
            e = self.assertRaises(ValueError, parseSeqpacketDescription, text)
            self.assertIn(words, str(e))


class ConfigTests(SynchronousTestCase):
    """
    C{unixseq:} in C{[echo] listen}.
    """

    def test_accepted(self) -> None:
        """
        A C{unixseq:} endpoint is accepted next to the others.
        """
        config = parseConfig("[echo]\nlisten = unixseq:/run/e.seq:mode=660 tcp:7007\n")
        self.assertEqual(config.echo.listen, ("unixseq:/run/e.seq:mode=660", "tcp:7007"))

    def test_error(self) -> None:
        """
        A bad one is a one-line error naming the section, the key and what
        the endpoint takes.
        """
        e = self.assertRaises(ConfigError, parseConfig, "[echo]\nlisten = unixseq:/x:mode=9\n")
        self.assertIn("[echo] listen", str(e))
        self.assertIn("octal", str(e))
        self.assertEqual(len(str(e).splitlines()), 1)


class SeqpacketEchoTests(TestCase):
    """
    The echo protocol over a C{unixseq:} listener.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, self.directory)
        self.path = os.path.join(self.directory, "echo.seq")

    async def listen(self, factory: Any, mode: int | None = None) -> Any:
        """
        Listen at C{self.path} with C{factory}, stopping at clean-up.
        """
        port = await SeqpacketServerEndpoint(reactor, self.path, mode=mode).listen(factory)
        self.addCleanup(port.stopListening)
        return port

    async def connect(self) -> Records:
        """
        A client that collects records, disconnected at clean-up.
        """
        client = Records()
        await SeqpacketClientEndpoint(reactor, self.path).connect(Factory.forProtocol(lambda: client))
        self.addCleanup(lambda: client.closed if client.transport.connected else None)  # type: ignore[union-attr]
        self.addCleanup(client.transport.loseConnection)  # type: ignore[union-attr]
        return client

    async def test_interfaces(self) -> None:
        """
        The transport provides what the reactor and the echo protocol need.
        """
        port = await self.listen(EchoFactory(reactor=reactor))
        verifyObject(IListeningPort, port)
        verifyObject(IReadDescriptor, port)
        client = await self.connect()
        for interface in (ITransport, IConsumer, IPushProducer, IReadDescriptor, IWriteDescriptor):
            verifyObject(interface, client.transport)

    async def test_recordBoundaries(self) -> None:
        """
        Records of 1 B, 4 KiB and 200 KiB each come back as one whole
        record, in order.
        """
        await self.listen(EchoFactory(reactor=reactor))
        client = await self.connect()
        sent = [b"x", os.urandom(4096), os.urandom(200 * 1024), b"y"]
        for record in sent:
            client.transport.write(record)  # type: ignore[union-attr]
        await turnUntil(reactor, lambda: len(client.records) >= len(sent), what="the echoes")
        self.assertEqual([len(r) for r in client.records], [len(r) for r in sent])
        self.assertEqual(client.records, sent)

    async def test_unreadPeerPausesEcho(self) -> None:
        """
        A peer that sends without reading fills the echo's queue; the echo
        then stops reading from it (the kernel holds the peer back), and
        reads again once the peer reads its echoes, all of which are whole.
        """
        factory = EchoFactory(reactor=reactor)
        await self.listen(factory)
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(peer.close)
        peer.connect(self.path)
        peer.setblocking(False)
        await turnUntil(reactor, lambda: factory.tracker.connections, what="the connection")
        [echo] = factory.tracker.connections
        transport = echo.transport
        record = bytes(range(256)) * 256  # 64 KiB
        sent = 0

        def fill() -> bool:
            nonlocal sent
            try:
                while True:
                    peer.send(record)
                    sent += 1
            except BlockingIOError:
                pass
            return transport.paused  # type: ignore[no-any-return]

        await turnUntil(reactor, fill, what="the echo to pause")
        self.assertNotIn(transport, reactor.getReaders())  # paused: reads nothing
        self.assertLessEqual(transport._queued, transport.bufferSize + len(record))
        self.assertRaises(BlockingIOError, peer.send, record)  # the kernel holds the peer
        echoed: list[bytes] = []

        def drain() -> bool:
            try:
                while True:
                    echoed.append(peer.recv(len(record) + 1))
            except BlockingIOError:
                pass
            return len(echoed) >= sent

        await turnUntil(reactor, drain, what="every echo")
        self.assertEqual(len(echoed), sent)
        self.assertEqual(set(echoed), {record})
        self.assertFalse(transport.paused)

    async def test_halfClose(self) -> None:
        """
        A peer that shuts down its sending side gets its echoes, then the
        end of the connection.
        """
        await self.listen(EchoFactory(reactor=reactor))
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(peer.close)
        peer.connect(self.path)
        peer.sendall(b"one")
        peer.sendall(b"two")
        peer.shutdown(socket.SHUT_WR)
        peer.setblocking(False)
        got: list[bytes] = []

        def read() -> bool:
            try:
                while True:
                    data = peer.recv(100)
                    got.append(data)
                    if not data:
                        return True
            except BlockingIOError:
                return False

        await turnUntil(reactor, read, what="the end of the connection")
        self.assertEqual(got, [b"one", b"two", b""])

    async def test_connectionLimit(self) -> None:
        """
        Past C{maxConnections}, a new connection is closed at once and
        counted as refused.
        """
        factory = EchoFactory(maxConnections=1, reactor=reactor)
        await self.listen(factory)
        await self.connect()
        await turnUntil(reactor, lambda: factory.stats.current == 1, what="the first connection")
        second = Records()
        await SeqpacketClientEndpoint(reactor, self.path).connect(Factory.forProtocol(lambda: second))
        await second.closed
        self.assertEqual((factory.stats.refused, factory.stats.current), (1, 1))

    async def test_idleTimeout(self) -> None:
        """
        A connection silent for C{idleTimeout} seconds (on the factory's
        clock) is closed.
        """
        clock = Clock()
        factory = EchoFactory(idleTimeout=30, reactor=clock)
        await self.listen(factory)
        client = await self.connect()
        await turnUntil(reactor, lambda: factory.stats.current == 1, what="the connection")
        clock.advance(29)
        self.assertFalse(client.closed.called)
        clock.advance(1)
        await client.closed
        self.assertEqual(factory.stats.timedOut, 1)

    async def test_fileMode(self) -> None:
        """
        The socket file gets C{mode=}, and is removed when the port stops.
        """
        port = await self.listen(EchoFactory(reactor=reactor), mode=0o640)
        info = os.stat(self.path)
        self.assertTrue(stat.S_ISSOCK(info.st_mode))
        self.assertEqual(stat.S_IMODE(info.st_mode), 0o640)
        await port.stopListening()
        self.assertFalse(os.path.exists(self.path))

    async def test_defaultFileMode(self) -> None:
        """
        Without C{mode=} the socket file is 666, as Twisted's C{unix:} and
        our C{unixgram:} sockets are, whatever the umask (a daemonized
        twistd's is 077): anyone who can reach the directory can connect.
        """
        self.addCleanup(os.umask, os.umask(0o077))
        await self.listen(EchoFactory(reactor=reactor))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o666)

    async def test_staleFile(self) -> None:
        """
        A socket file nobody listens on (a crashed process's) is replaced;
        one with a listener is not, and binding fails.
        """
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stale.bind(self.path)
        stale.close()
        port = await self.listen(EchoFactory(reactor=reactor))
        failures: list[Failure] = []
        SeqpacketServerEndpoint(reactor, self.path).listen(EchoFactory(reactor=reactor)).addErrback(
            failures.append
        )
        failures[0].trap(OSError)
        await port.stopListening()

    async def test_fileReplaced(self) -> None:
        """
        A port leaves a file at its path that is not its own (another
        listener's, bound after it).
        """
        port = await self.listen(EchoFactory(reactor=reactor))
        os.unlink(self.path)
        other = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(other.close)
        self.addCleanup(os.unlink, self.path)
        other.bind(self.path)
        await port.stopListening()
        self.assertTrue(os.path.exists(self.path))

    async def test_adopted(self) -> None:
        """
        A socket bound by a parent process (workers) is adopted, echoes,
        and its file stays when the adopting port stops: it is the
        parent's.
        """
        parent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(parent.close)
        self.addCleanup(os.unlink, self.path)
        parent.bind(self.path)
        parent.listen(5)
        endpoint = SeqpacketServerEndpoint(reactor, self.path, fileno=parent.fileno())
        port = await endpoint.listen(EchoFactory(reactor=reactor))
        client = await self.connect()
        client.transport.write(b"adopted")  # type: ignore[union-attr]
        await turnUntil(reactor, lambda: client.records, what="the echo")
        self.assertEqual(client.records, [b"adopted"])
        await port.stopListening()
        self.assertTrue(os.path.exists(self.path))

    async def test_oversize(self) -> None:
        """
        A record larger than the largest read whole is dropped and counted;
        the connection carries on.
        """
        factory = EchoFactory(reactor=reactor)
        await self.listen(factory)
        client = await self.connect()
        await turnUntil(reactor, lambda: factory.tracker.connections, what="the connection")
        [echo] = factory.tracker.connections
        echo.transport.maxRecord = 1000
        client.transport.write(b"a" * 1001)  # type: ignore[union-attr]
        client.transport.write(b"b" * 1000)  # type: ignore[union-attr]
        await turnUntil(reactor, lambda: client.records, what="the echo")
        self.assertEqual(client.records, [b"b" * 1000])
        self.assertEqual(factory.stats.oversize, 1)


class ConnectionTests(SynchronousTestCase):
    """
    The transport on a socket pair, without a listener.
    """

    def test_abort(self) -> None:
        """
        C{abortConnection} drops what is queued and closes at once.
        """
        from twisted.internet.testing import MemoryReactorClock

        fake = MemoryReactorClock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(theirs.close)
        protocol = Records()
        transport = SeqpacketConnection(ours, protocol, fake)
        protocol.makeConnection(transport)
        transport.write(b"queued")
        transport.abortConnection()
        fake.advance(0)
        self.assertFalse(transport.connected)
        self.assertEqual(ours.fileno(), -1)
        self.assertTrue(protocol.closed.called)
        self.assertTrue(protocol.reason.check(error.ConnectionAborted))  # type: ignore[union-attr]
