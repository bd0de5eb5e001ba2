"""
Tests for L{services.echo._udp}: RFC 862 echo over UDP, with its safety
rules.
"""

from __future__ import annotations

import errno
import gc
import socket
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.application.service import MultiService, Service
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from services import logs
from services.net.datagram import SourceLimiter
from services.net.listener import ListenError, isListening, listeningPorts
from services.net.ownports import OwnPorts
from services.stats import UdpEchoStats
from services.echo import UdpEcho, UdpEchoSettings, makeUdpEchoService
from services.echo._udp import UdpEchoListener
from tests.support import freePort
from tests.udpsupport import MemoryDatagramTransport, UdpMemoryReactor

CLIENT = ("127.0.0.1", 40000)


def build(
    rate: float = 100.0,
    burst: int = 200,
    globalRate: float = 1000.0,
    ownPorts: frozenset[int] = frozenset({7007}),
) -> tuple[UdpEcho, MemoryDatagramTransport, Clock]:
    """
    A connected L{UdpEcho} on a memory port, with its clock.
    """
    clock = Clock()
    protocol = UdpEcho(SourceLimiter(clock, rate, burst, globalRate), lambda: ownPorts)
    transport = MemoryDatagramTransport(protocol, ("127.0.0.1", 7007))
    protocol.makeConnection(transport)
    return protocol, transport, clock


class UdpEchoTests(SynchronousTestCase):
    """
    L{UdpEcho} sends each datagram back whole, unless a safety rule says no.
    """

    def test_echo(self) -> None:
        """
        Each datagram goes back, identical, to its source, and is counted.
        """
        protocol, transport, _clock = build()
        for data in (b"", b"hello", bytes(range(256)) * 250):
            protocol.datagramReceived(data, CLIENT)
        self.assertEqual(
            transport.written,
            [(b"", CLIENT), (b"hello", CLIENT), (bytes(range(256)) * 250, CLIENT)],
        )
        self.assertEqual(
            protocol.stats.snapshot(),
            {
                "received": 3,
                "echoed": 3,
                "bytesIn": 64005,
                "bytesOut": 64005,
                "oversize": 0,
                "loopGuarded": 0,
                "rateLimited": 0,
                "sendErrors": 0,
                "unbound": 0,
            },
        )

    def test_loopGuard(self) -> None:
        """
        Nothing goes back to source ports below 1024 (echo, chargen...) or
        to our own service ports.
        """
        protocol, transport, _clock = build()
        for port in (7, 13, 19, 1023, 7007):
            protocol.datagramReceived(b"ping", ("127.0.0.1", port))
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.loopGuarded, 5)

    def test_rateLimit(self) -> None:
        """
        Each source, and all together, are held to their rates.
        """
        protocol, transport, _clock = build(rate=1.0, burst=2, globalRate=3.0)
        for _ in range(5):
            protocol.datagramReceived(b"x", CLIENT)
        self.assertEqual(len(transport.written), 2)
        protocol.datagramReceived(b"x", ("127.0.0.2", 40000))
        protocol.datagramReceived(b"x", ("127.0.0.3", 40000))
        self.assertEqual(len(transport.written), 3)
        self.assertEqual(protocol.stats.rateLimited, 4)

    def test_fullBuffer(self) -> None:
        """
        A datagram that fills the receive buffer may have been cut short: it
        is dropped, never echoed in part.
        """
        protocol, transport, _clock = build()
        protocol.datagramReceived(b"x" * protocol.maxPacketSize, CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.oversize, 1)
        self.assertEqual(protocol.maxPacketSize, 65536)

    def test_sendError(self) -> None:
        """
        An echo the system refuses to send is counted and logged at debug
        level, not raised.
        """
        previous = logs.getLevel()
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, previous)
        protocol, transport, _clock = build()
        transport.error = OSError(105, "No buffer space available")
        with capturedLogs() as events:
            protocol.datagramReceived(b"x", CLIENT)
        self.assertEqual(protocol.stats.sendErrors, 1)
        self.assertEqual([e["log_level"] for e in events], [LogLevel.debug])


class _CountingClock(Clock):
    """
    A L{Clock} that counts how often it is read.
    """

    reads = 0

    def seconds(self) -> float:
        """
        The time, counted.
        """
        self.reads += 1
        return Clock.seconds(self)


class SharedClockTests(SynchronousTestCase):
    """
    With an L{OwnPorts} on the limiter's clock, L{UdpEcho} reads the clock
    once per datagram and keeps every rule.
    """

    def build(self) -> tuple[UdpEcho, MemoryDatagramTransport, _CountingClock, MultiService]:
        clock = _CountingClock()
        root = MultiService()
        protocol = UdpEcho(
            SourceLimiter(clock, 1.0, 2, 1000.0), OwnPorts(root, clock, fixed=[7007])
        )
        transport = MemoryDatagramTransport(protocol, ("127.0.0.1", 7007))
        protocol.makeConnection(transport)
        return protocol, transport, clock, root

    def test_oneClockReading(self) -> None:
        """
        Each datagram costs one reading of the clock, for the own-ports
        lookup and both token buckets.
        """
        protocol, transport, clock, _root = self.build()
        before = clock.reads
        for _ in range(4):
            protocol.datagramReceived(b"x", CLIENT)
        self.assertEqual(clock.reads - before, 4)
        self.assertEqual(len(transport.written), 2)
        self.assertEqual(protocol.stats.rateLimited, 2)
        clock.advance(1)
        protocol.datagramReceived(b"x", CLIENT)
        self.assertEqual(len(transport.written), 3)

    def test_loopGuard(self) -> None:
        """
        Privileged source ports, the fixed ports and ports the service tree
        starts listening on later (seen within a second) get no echo.
        """
        protocol, transport, clock, root = self.build()
        for port in (7, 1023, 7007):
            protocol.datagramReceived(b"ping", ("127.0.0.1", port))
        self.assertEqual(transport.written, [])
        child = Service()
        child.port = _Port(40001)  # type: ignore[attr-defined]
        child.setServiceParent(root)
        clock.advance(1)
        protocol.datagramReceived(b"ping", ("127.0.0.1", 40001))
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.loopGuarded, 4)
        protocol.datagramReceived(b"ping", CLIENT)
        self.assertEqual(transport.written, [(b"ping", CLIENT)])


class _Port:
    def __init__(self, port: int) -> None:
        self.port = port

    def getHost(self) -> IPv4Address:
        """
        The UDP address of this fake port.
        """
        return IPv4Address("UDP", "127.0.0.1", self.port)


class ServiceTests(SynchronousTestCase):
    """
    L{makeUdpEchoService} builds one listener per endpoint.
    """

    def test_tree(self) -> None:
        """
        The service is named C{udp-echo}; each child listens on its
        endpoint, with a buffer for any datagram, and has a C{port} that
        the listening helpers see.
        """
        reactor = UdpMemoryReactor()
        first, second = freePort(socket.SOCK_DGRAM), freePort(socket.SOCK_DGRAM)
        settings = UdpEchoSettings(listen=(f"udp:{first}:interface=127.0.0.1", str(second)))
        stats = UdpEchoStats()
        service = makeUdpEchoService(settings, reactor, stats)
        self.assertEqual(service.name, "udp-echo")
        self.assertFalse(isListening(service))
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertTrue(isListening(service))
        ports = sorted(p.getHost().port for p in listeningPorts(service))
        self.assertEqual(ports, sorted([first, second]))
        self.assertEqual({size for *_, size in reactor.adoptedPorts}, {65536})
        children = list(service)
        self.assertTrue(all(isinstance(c, UdpEchoListener) for c in children))
        self.assertTrue(all(c.protocol.stats is stats for c in children))
        transport = reactor.datagramPorts[0]
        transport.protocol.datagramReceived(b"hi", CLIENT)
        self.assertEqual(transport.written, [(b"hi", CLIENT)])
        transport.protocol.datagramReceived(b"hi", ("127.0.0.1", second))
        self.assertEqual(stats.loopGuarded, 1)

    def test_wildcardWarns(self) -> None:
        """
        A listener bound to every address (IPv4 or IPv6) warns at start that
        it answers broadcasts; one bound to a single address does not.
        """
        reactor = UdpMemoryReactor()
        settings = UdpEchoSettings(
            listen=("udp:0", "udp6:0:interface=\\:\\:", "udp:0:interface=127.0.0.1")
        )
        service = makeUdpEchoService(settings, reactor)
        with capturedLogs() as events:
            service.startService()
        self.addCleanup(service.stopService)
        warned = [e["endpoint"] for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warned, ["udp:0", "udp6:0:interface=\\:\\:"])

    def test_stop(self) -> None:
        """
        Stopping closes the ports.
        """
        reactor = UdpMemoryReactor()
        service = makeUdpEchoService(UdpEchoSettings(listen=("udp:0:interface=127.0.0.1",)), reactor)
        service.startService()
        service.stopService()
        self.assertFalse(isListening(service))
        self.assertFalse(reactor.datagramPorts[0].listening)

    def test_portInUse(self) -> None:
        """
        A port in use fails the start with L{ListenError} naming it.
        """
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        service = makeUdpEchoService(
            UdpEchoSettings(listen=(f"udp:{port}:interface=127.0.0.1",)), UdpMemoryReactor()
        )
        with self.assertRaises(ListenError) as caught:
            service.privilegedStartService()
        self.assertEqual(
            str(caught.exception),
            f"udp-echo: cannot listen on udp:{port}:interface=127.0.0.1: address already in use",
        )


class _Queue:
    """
    A socket's C{recvfrom} and C{sendto} in memory: C{recvfrom} hands out
    C{queued} in order, then raises C{BlockingIOError}; C{sendto} records
    in C{sent}, or raises C{error} when it is set.
    """

    def __init__(self, queued: list[tuple[bytes, Any]]) -> None:
        self.queued = list(queued)
        self.sizes: list[int] = []
        self.sent: list[tuple[bytes, Any]] = []
        self.error: OSError | None = None

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        self.sizes.append(size)
        if not self.queued:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return self.queued.pop(0)

    def sendto(self, datagram: bytes, addr: Any) -> int:
        if self.error is not None:
            raise self.error
        self.sent.append((datagram, addr))
        return len(datagram)


#: Datagrams each rule has something to say about, from several sources.
_MIXED = [
    (b"hello", CLIENT),
    (b"x" * 65536, CLIENT),
    (b"ping", ("127.0.0.1", 19)),
    (b"ping", ("127.0.0.1", 7007)),
    *[(b"burst", ("127.0.0.2", 40002))] * 4,
    (b"", ("127.0.0.3", 40003)),
]


class ReadDatagramsTests(SynchronousTestCase):
    """
    L{UdpEcho.readDatagrams}, the read loop a reader port hands its socket
    to, decides, counts and logs exactly as L{UdpEcho.datagramReceived}.
    """

    def setUp(self) -> None:
        previous = logs.getLevel()
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, previous)

    def test_sameAsDatagramReceived(self) -> None:
        """
        Echoes, drops (full buffer, loop guard, rate limits), counters and
        debug lines are those of one C{datagramReceived} per datagram; the
        echoes go to C{sendto}, not to the transport, and every read asks
        for the whole receive buffer.
        """
        one, oneTransport, _ = build(rate=1.0, burst=2, globalRate=1000.0)
        with capturedLogs() as oneEvents:
            for datagram, addr in _MIXED:
                one.datagramReceived(datagram, addr)
        loop, loopTransport, _ = build(rate=1.0, burst=2, globalRate=1000.0)
        queue = _Queue(_MIXED)
        with capturedLogs() as loopEvents:
            failure = loop.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertIsInstance(failure, BlockingIOError)
        self.assertEqual(queue.sent, oneTransport.written)
        self.assertEqual(loopTransport.written, [])
        self.assertEqual(loop.stats.snapshot(), one.stats.snapshot())
        self.assertEqual(loop.stats.snapshot()["oversize"], 1)
        self.assertEqual(loop.stats.snapshot()["loopGuarded"], 2)
        self.assertEqual(loop.stats.snapshot()["rateLimited"], 2)
        self.assertEqual([e["log_format"] for e in loopEvents],
                         [e["log_format"] for e in oneEvents])
        self.assertEqual([e["reason"] for e in loopEvents], [e["reason"] for e in oneEvents])
        self.assertEqual(set(queue.sizes), {65536})

    def test_limit(self) -> None:
        """
        It stops once C{limit} bytes are read, returning L{None}, and leaves
        the rest queued for the next call.
        """
        protocol, _, _ = build()
        queue = _Queue([(b"x" * 10, CLIENT)] * 5)
        self.assertIsNone(protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 25))
        self.assertEqual(len(queue.sent), 3)
        self.assertEqual(len(queue.queued), 2)
        self.assertEqual(protocol.stats.received, 3)

    def test_sendFailsThenWriteSends(self) -> None:
        """
        When C{sendto} fails, the echo is sent again with the port's
        C{write}, and counted as echoed when that succeeds.
        """
        protocol, transport, _ = build()
        queue = _Queue([(b"again", CLIENT)])
        queue.error = BlockingIOError(errno.EAGAIN, "try again")
        protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertEqual(transport.written, [(b"again", CLIENT)])
        self.assertEqual((protocol.stats.echoed, protocol.stats.sendErrors), (1, 0))

    def test_sendErrors(self) -> None:
        """
        An echo that neither C{sendto} nor the port's C{write} can send is
        counted and logged at debug level, and the loop goes on.
        """
        protocol, transport, _ = build()
        queue = _Queue([(b"x", CLIENT), (b"y", CLIENT)])
        queue.error = OSError(errno.ENOBUFS, "No buffer space available")
        transport.error = OSError(errno.ENOBUFS, "No buffer space available")
        with capturedLogs() as events:
            failure = protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertIsInstance(failure, BlockingIOError)
        self.assertEqual((protocol.stats.sendErrors, protocol.stats.echoed), (2, 0))
        self.assertEqual([e["log_level"] for e in events], [LogLevel.debug] * 2)

    def test_readErrorReturned(self) -> None:
        """
        The error of C{recvfrom} ends the loop and is returned, not raised.
        """
        protocol, _, _ = build()
        refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

        def recvfrom(size: int) -> tuple[bytes, Any]:
            raise refused

        self.assertIs(protocol.readDatagrams(recvfrom, _Queue([]).sendto, 65536, 10), refused)
        self.assertEqual(protocol.stats.received, 0)

    def test_countersStoredOnError(self) -> None:
        """
        The counters of the datagrams echoed before an unexpected error
        are stored all the same.
        """
        protocol, _, _ = build()
        queue = _Queue([(b"abc", CLIENT), (b"de", CLIENT)])
        pop = queue.recvfrom

        def recvfrom(size: int) -> tuple[bytes, Any]:
            if not queue.queued:
                raise ValueError("a bug")
            return pop(size)

        self.assertRaises(ValueError, protocol.readDatagrams, recvfrom, queue.sendto, 65536, 100)
        snapshot = protocol.stats.snapshot()
        self.assertEqual((snapshot["received"], snapshot["echoed"]), (2, 2))
        self.assertEqual((snapshot["bytesIn"], snapshot["bytesOut"]), (5, 5))


class ReadDatagramsBatchTests(SynchronousTestCase):
    """
    L{UdpEcho.readDatagrams} decides for all the datagrams of one call at
    one reading of the clock, keeping each source's bucket and the memory
    bound of the table, and leaves no garbage cycle behind.
    """

    def test_oneClockReadingPerCall(self) -> None:
        """
        One call reads the clock once, however many datagrams it reads,
        for the own ports and both buckets.
        """
        clock = _CountingClock()
        protocol = UdpEcho(SourceLimiter(clock, 1.0, 2, 1000.0),
                           OwnPorts(MultiService(), clock, fixed=[7007]))
        protocol.makeConnection(MemoryDatagramTransport(protocol, ("127.0.0.1", 7007)))
        queue = _Queue([(b"x", CLIENT)] * 5 + [(b"y", ("127.0.0.1", 7007))])
        before = clock.reads
        protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertEqual(clock.reads - before, 1)
        self.assertEqual(len(queue.sent), 2)
        self.assertEqual((protocol.stats.rateLimited, protocol.stats.loopGuarded), (3, 1))

    @settings(max_examples=200, deadline=None)
    @given(
        sourceRate=st.sampled_from([0.5, 1.0, 4.0]),
        sourceBurst=st.integers(1, 4),
        globalRate=st.sampled_from([2.0, 4.0, 1024.0]),
        batches=st.lists(
            st.tuples(
                st.integers(0, 16),
                st.lists(st.tuples(st.sampled_from(["127.0.0.1", "127.0.0.2", "127.0.0.3"]),
                                   st.sampled_from([40000, 40001, 7007, 53])), max_size=12),
            ),
            max_size=8,
        ),
    )
    def test_sameAsOneByOne(self, sourceRate: float, sourceBurst: int, globalRate: float,
                            batches: list[tuple[int, list[tuple[str, int]]]]) -> None:
        """
        Datagrams from sources and ports in any order, read in batches at
        any times (in sixteenths of a second), are echoed, refused and
        counted exactly as by C{datagramReceived} at the time of their
        batch, with a table of two sources.
        """
        def limiter(clock: Clock) -> SourceLimiter:
            return SourceLimiter(clock, sourceRate, sourceBurst, globalRate, maxSources=2)

        oneClock, loopClock = Clock(), Clock()
        one = UdpEcho(limiter(oneClock), lambda: frozenset({7007}))
        oneTransport = MemoryDatagramTransport(one, ("127.0.0.1", 7007))
        one.makeConnection(oneTransport)
        loop = UdpEcho(limiter(loopClock), lambda: frozenset({7007}))
        loop.makeConnection(MemoryDatagramTransport(loop, ("127.0.0.1", 7007)))
        sent: list[tuple[bytes, Any]] = []
        for sixteenths, datagrams in batches:
            oneClock.advance(sixteenths / 16)
            loopClock.advance(sixteenths / 16)
            for addr in datagrams:
                one.datagramReceived(b"x", addr)
            queue = _Queue([(b"x", addr) for addr in datagrams])
            loop.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
            sent += queue.sent
        self.assertEqual(sent, oneTransport.written)
        self.assertEqual(loop.stats.snapshot(), one.stats.snapshot())

    def test_fullTable(self) -> None:
        """
        While the table of sources is full, a new source is refused and
        counted as rate limited; the sources in it are still answered, and
        once their buckets refill the new one gets in.
        """
        clock = Clock()
        protocol = UdpEcho(SourceLimiter(clock, 1.0, 1, 1000.0, maxSources=1), frozenset)
        protocol.makeConnection(MemoryDatagramTransport(protocol, ("127.0.0.1", 7007)))
        other = ("127.0.0.2", 40000)
        queue = _Queue([(b"a", CLIENT), (b"b", other), (b"c", other)])
        protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertEqual(queue.sent, [(b"a", CLIENT)])
        self.assertEqual(protocol.stats.rateLimited, 2)
        self.assertEqual(len(protocol.limiter), 1)
        clock.advance(2)
        queue = _Queue([(b"d", other)])
        protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertEqual(queue.sent, [(b"d", other)])
        self.assertEqual(len(protocol.limiter), 1)

    def test_noGarbageCycle(self) -> None:
        """
        The error it returns carries no traceback (which would hold the
        loop's frame, and the frame the error), so a call leaves nothing
        for the garbage collector.
        """
        protocol, _, _ = build()
        queue = _Queue([(b"x", CLIENT)] * 3)
        enabled = gc.isenabled()
        gc.disable()
        self.addCleanup(lambda: gc.enable() if enabled else None)
        gc.collect()
        failure = protocol.readDatagrams(queue.recvfrom, queue.sendto, 65536, 2**20)
        self.assertIsInstance(failure, BlockingIOError)
        self.assertIsNone(failure.__traceback__)  # type: ignore[union-attr]
        del failure
        self.assertEqual(gc.collect(), 0)
