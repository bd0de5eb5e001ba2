"""
Tests for L{services.net.datagram}: UDP endpoint descriptions, shared sockets,
the loop guard and the rate limits.
"""

from __future__ import annotations

import socket

from hypothesis import given, settings, strategies as st
from twisted.application.service import MultiService, Service
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from services.net.datagram import (
    SourceLimiter,
    UdpEndpoint,
    bindDatagramSocket,
    listenDatagram,
    parseUdpEndpoint,
    unsafeSource,
)
from services.net.ownports import OwnPorts, portsByService
from tests.support import freePort, hasIPv6Loopback
from tests.udpsupport import UdpMemoryReactor


class UdpEndpointTests(SynchronousTestCase):
    """
    L{parseUdpEndpoint} reads UDP endpoint descriptions.
    """

    def test_forms(self) -> None:
        """
        C{udp:PORT}, C{udp:PORT:interface=ADDR}, C{udp6:...} with escaped
        colons, and a bare port (on 127.0.0.1) are understood.
        """
        self.assertEqual(parseUdpEndpoint("udp:7"), UdpEndpoint(7, ""))
        self.assertEqual(
            parseUdpEndpoint("udp:7007:interface=127.0.0.1"), UdpEndpoint(7007, "127.0.0.1")
        )
        self.assertEqual(
            parseUdpEndpoint("udp6:0:interface=\\:\\:1"), UdpEndpoint(0, "::1", socket.AF_INET6)
        )
        self.assertEqual(parseUdpEndpoint(" 7007 "), UdpEndpoint(7007, "127.0.0.1"))

    def test_canonical(self) -> None:
        """
        An endpoint prints as the description that parses back to it.
        """
        for text in ("udp:7", "udp:7007:interface=127.0.0.1", "udp6:0:interface=\\:\\:1"):
            self.assertEqual(str(parseUdpEndpoint(text)), text)
        self.assertEqual(str(parseUdpEndpoint("7007")), "udp:7007:interface=127.0.0.1")

    def test_errors(self) -> None:
        """
        Bad descriptions raise L{ValueError} saying what is wrong.
        """
        cases = {
            "tcp:7": "expected a port or udp:PORT",
            "udp": "expected a port or udp:PORT",
            "udp:x": "port 'x'",
            "udp:70000": "port '70000'",
            "udp:7:backlog=5": "unknown option",
            "udp:7:interface=localhost": "not an IP address",
            "udp:7:interface=\\:\\:1": "does not match udp:",
            "udp6:7:interface=127.0.0.1": "does not match udp6:",
            "": "expected a port",
        }
        for text, message in cases.items():
            with self.assertRaises(ValueError, msg=text) as caught:
                parseUdpEndpoint(text)
            self.assertIn(message, str(caught.exception))


class _Collect(DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagramReceived(self, datagram: bytes, addr: object) -> None:
        """
        Keep the datagram.
        """
        self.received.append(datagram)


class SharedSocketTests(SynchronousTestCase):
    """
    Sockets bound with C{reuse} share a port, and each receives every
    broadcast to it.
    """

    def receive(self, skt: socket.socket) -> list[bytes]:
        """
        The datagrams waiting on C{skt}, waiting up to 2 s for the first.
        """
        skt.settimeout(2)
        found = [skt.recv(100)]
        skt.setblocking(False)
        try:
            while True:
                found.append(skt.recv(100))
        except BlockingIOError:
            pass
        return found

    def test_broadcastToAll(self) -> None:
        """
        Two sockets bound with C{reuse} to C{127.255.255.255} and one port
        both receive a broadcast to that port.
        """
        port = freePort(socket.SOCK_DGRAM)
        first = bindDatagramSocket("127.255.255.255", port, reuse=True)
        self.addCleanup(first.close)
        second = bindDatagramSocket("127.255.255.255", port, reuse=True)
        self.addCleanup(second.close)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sender.sendto(b"hello", ("127.255.255.255", port))
        self.assertEqual(self.receive(first), [b"hello"])
        self.assertEqual(self.receive(second), [b"hello"])

    def test_sharedUnicastAddress(self) -> None:
        """
        Two sockets bound with C{reuse} to C{127.0.0.1} and one port can
        coexist (each instance's main socket).
        """
        port = freePort(socket.SOCK_DGRAM)
        first = bindDatagramSocket("127.0.0.1", port, reuse=True)
        self.addCleanup(first.close)
        second = bindDatagramSocket("127.0.0.1", port, reuse=True)
        self.addCleanup(second.close)
        self.assertEqual(second.getsockname(), ("127.0.0.1", port))

    def test_noReuse(self) -> None:
        """
        Without C{reuse}, a second bind of the port fails.
        """
        port = freePort(socket.SOCK_DGRAM)
        first = bindDatagramSocket("127.0.0.1", port)
        self.addCleanup(first.close)
        with self.assertRaises(OSError):
            bindDatagramSocket("127.0.0.1", port, reuse=True)

    def test_nonBlocking(self) -> None:
        """
        The socket is non-blocking, as the reactor requires.
        """
        skt = bindDatagramSocket("127.0.0.1", 0)
        self.addCleanup(skt.close)
        self.assertFalse(skt.getblocking())

    def test_listenDatagram(self) -> None:
        """
        L{listenDatagram} hands the bound socket to the reactor's
        C{adoptDatagramPort} with a buffer for any datagram, and connects
        the protocol.
        """
        reactor = UdpMemoryReactor()
        protocol = _Collect()
        port = listenDatagram(reactor, protocol, "127.0.0.1", 0)
        [(_fileno, family, adopted, size)] = reactor.adoptedPorts
        self.assertEqual((family, adopted, size), (socket.AF_INET, protocol, 65536))
        self.assertIs(protocol.transport, port)
        self.assertEqual(port.getHost().host, "127.0.0.1")

    def test_listenDatagramIPv6(self) -> None:
        """
        IPv6 endpoints are bound as IPv6 sockets.
        """
        if not hasIPv6Loopback():
            raise self.skipTest("no IPv6 loopback")
        reactor = UdpMemoryReactor()
        port = listenDatagram(reactor, _Collect(), "::1", 0, socket.AF_INET6)
        self.assertEqual(port.getHost().host, "::1")


class UnsafeSourceTests(SynchronousTestCase):
    """
    L{unsafeSource} names the source ports that must get no answer.
    """

    def test_rules(self) -> None:
        """
        Ports below 1024 and our own ports are unsafe; others are fine.
        """
        self.assertEqual(unsafeSource(7, ()), "privileged source port")
        self.assertEqual(unsafeSource(0, ()), "privileged source port")
        self.assertEqual(unsafeSource(8009, {8009}), "source port is one of our service ports")
        self.assertIsNone(unsafeSource(1024, {8009}))
        self.assertIsNone(unsafeSource(50000, {8009}))


class SourceLimiterTests(SynchronousTestCase):
    """
    L{SourceLimiter} holds each source, and all sources, to their rates.
    """

    def test_burstThenRate(self) -> None:
        """
        A source gets its burst at once, then its rate.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate=2.0, sourceBurst=3, globalRate=1000.0)
        self.assertEqual([limiter.allow("a") for _ in range(5)], [True] * 3 + [False] * 2)
        clock.advance(0.5)
        self.assertEqual([limiter.allow("a") for _ in range(3)], [True, False, False])
        clock.advance(100)
        self.assertEqual(sum(limiter.allow("a") for _ in range(10)), 3)

    def test_sourcesIndependent(self) -> None:
        """
        One source's exhaustion does not limit another.
        """
        limiter = SourceLimiter(Clock(), sourceRate=1.0, sourceBurst=1, globalRate=1000.0)
        self.assertTrue(limiter.allow("a"))
        self.assertFalse(limiter.allow("a"))
        self.assertTrue(limiter.allow("b"))

    def test_global(self) -> None:
        """
        All sources together get at most the global rate, and a source
        refused by the global limit keeps its own tokens.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate=1.0, sourceBurst=2, globalRate=3.0)
        self.assertEqual(sum(limiter.allow(f"s{i}") for i in range(10)), 3)
        clock.advance(1)
        self.assertTrue(limiter.allow("s9"))
        self.assertTrue(limiter.allow("s9"))

    def test_boundedTable(self) -> None:
        """
        At most C{maxSources} sources are tracked: refilled buckets are
        forgotten to make room, and while none can be, new sources are
        refused.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, 1.0, 2, 1000.0, maxSources=3)
        for source in "abc":
            self.assertTrue(limiter.allow(source))
        self.assertFalse(limiter.allow("d"))
        self.assertEqual(len(limiter), 3)
        clock.advance(1)
        self.assertTrue(limiter.allow("d"))
        self.assertLessEqual(len(limiter), 3)


    def test_givenTime(self) -> None:
        """
        A caller that read the clock already passes the time; the buckets
        refill by it exactly as by the clock.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate=2.0, sourceBurst=2, globalRate=1000.0)
        self.assertEqual([limiter.allow("a", 0.0) for _ in range(3)], [True, True, False])
        self.assertEqual([limiter.allow("a", 0.5) for _ in range(2)], [True, False])
        self.assertEqual([limiter.allow("a", 100.0) for _ in range(3)], [True, True, False])


    def test_bucketsInLocals(self) -> None:
        """
        A caller that keeps the buckets itself (L{SourceLimiter.bucket},
        L{SourceLimiter.sharedBucket}, spending by the intervals, storing
        with L{SourceLimiter.keep} and L{SourceLimiter.keepShared}) leaves
        the limiter as the same decisions by L{SourceLimiter.allow} would.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate=2.0, sourceBurst=3, globalRate=1000.0,
                                maxSources=1)
        own, shared = limiter.bucket("a", 0.0), limiter.sharedBucket(0.0)
        self.assertEqual((own, shared), (0.0, 0.0))
        assert own is not None
        spent = 0
        while own - 0.0 <= limiter.sourceTolerance and shared - 0.0 <= limiter.globalTolerance:
            own += limiter.sourceInterval
            shared += limiter.globalInterval
            spent += 1
        limiter.keep("a", own)
        limiter.keepShared(shared)
        self.assertEqual(spent, 3)
        self.assertFalse(limiter.allow("a", 0.0))
        self.assertIsNone(limiter.bucket("b", 0.0))
        self.assertEqual(limiter.bucket("a", 100.0), 100.0)
        self.assertEqual(limiter.bucket("b", 100.0), 100.0)


    def test_tokens(self) -> None:
        """
        L{SourceLimiter.tokens} is how many datagrams in a row
        L{SourceLimiter.allow} answers at one time, for rates whose
        intervals are not exact in binary too.
        """
        for rate, burst in ((100.0, 200), (3.0, 7), (1000.0, 1), (0.3, 2)):
            limiter = SourceLimiter(Clock(), rate, burst, 1e9)
            for now in (0.0, 0.05, 1.7):
                own = limiter.bucket("a", now)
                assert own is not None
                expected = limiter.tokens(own, now, limiter.sourceInterval,
                                          limiter.sourceTolerance)
                answered = 0
                while limiter.allow("a", now):
                    answered += 1
                self.assertEqual(answered, expected, (rate, burst, now))


class ReferenceBuckets:
    """
    The token buckets of L{SourceLimiter}, written the textbook way
    (tokens refilled from the elapsed time, capped at the burst), to check
    its decisions against.
    """

    def __init__(self, sourceRate: float, sourceBurst: int, globalRate: float) -> None:
        self.rates = (sourceRate, globalRate)
        self.bursts = (float(sourceBurst), max(1.0, globalRate))
        self.sources: dict[str, list[float]] = {}
        self.shared = [self.bursts[1], 0.0]

    def allow(self, source: str, now: float) -> bool:
        own = self.sources.setdefault(source, [self.bursts[0], now])
        for bucket, rate, burst in ((own, self.rates[0], self.bursts[0]),
                                    (self.shared, self.rates[1], self.bursts[1])):
            bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
        if own[0] < 1 or self.shared[0] < 1:
            return False
        own[0] -= 1
        self.shared[0] -= 1
        return True


class SourceLimiterModelTests(SynchronousTestCase):
    """
    L{SourceLimiter} keeps each bucket as the time it is full again; its
    decisions are those of textbook token buckets.
    """

    @settings(max_examples=300, deadline=None)
    @given(
        sourceRate=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0, 8.0]),
        sourceBurst=st.integers(1, 6),
        globalRate=st.sampled_from([1.0, 2.0, 4.0, 16.0, 1024.0]),
        steps=st.lists(st.tuples(st.integers(0, 24), st.sampled_from("abc")), max_size=80),
    )
    def test_sameDecisions(self, sourceRate: float, sourceBurst: int, globalRate: float,
                           steps: list[tuple[int, str]]) -> None:
        """
        For any sequence of datagrams (times in sixteenths of a second, so
        that both computations are exact), every answer is the same.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate, sourceBurst, globalRate)
        reference = ReferenceBuckets(sourceRate, sourceBurst, globalRate)
        now = 0.0
        for sixteenths, source in steps:
            now += sixteenths / 16
            self.assertEqual(limiter.allow(source, now), reference.allow(source, now),
                             (source, now))


class _Port:
    def __init__(self, port: int) -> None:
        self.port = port

    def getHost(self) -> IPv4Address:
        """
        The TCP address of this fake port.
        """
        return IPv4Address("TCP", "127.0.0.1", self.port)


def _service(name: str, *ports: int) -> MultiService:
    service = MultiService()
    service.setName(name)
    for port in ports:
        child = Service()
        child.port = _Port(port)  # type: ignore[attr-defined]
        child.setServiceParent(service)
    return service


class TreePortsTests(SynchronousTestCase):
    """
    The ports of a service tree, by service and in all.
    """

    def test_portsByService(self) -> None:
        """
        Each named child's listening ports, sorted and without duplicates;
        excluded and portless children are left out.
        """
        root = MultiService()
        _service("echo", 8007, 7007, 8007).setServiceParent(root)
        _service("web", 8080).setServiceParent(root)
        _service("discovery", 8009).setServiceParent(root)
        _service("idle").setServiceParent(root)
        self.assertEqual(
            portsByService(root, exclude=("discovery",)), {"echo": [7007, 8007], "web": [8080]}
        )

    def test_ownPorts(self) -> None:
        """
        L{OwnPorts} gives every port of the whole tree plus the fixed ones,
        looked up again at most once a second.
        """
        clock = Clock()
        root = MultiService()
        echo = _service("echo", 8007)
        echo.setServiceParent(root)
        leaf = Service()
        leaf.setServiceParent(echo)
        own = OwnPorts(leaf, clock, fixed=(9009, 0))
        self.assertEqual(own(), {8007, 9009})
        _service("web", 8080).setServiceParent(root)
        self.assertEqual(own(), {8007, 9009})
        clock.advance(1)
        self.assertEqual(own(), {8007, 8080, 9009})
        _service("udp", 7070).setServiceParent(root)
        self.assertEqual(own(clock.seconds() + 0.5), {8007, 8080, 9009})
        self.assertEqual(own(clock.seconds() + 1), {7070, 8007, 8080, 9009})

    def test_ownPortsSnapshot(self) -> None:
        """
        L{OwnPorts.ports} is the last lookup and L{OwnPorts.expires} when it
        is due again: a data path that reads them while C{now < expires}
        sees what a call would return, without the call.
        """
        clock = Clock()
        root = MultiService()
        _service("echo", 8007).setServiceParent(root)
        own = OwnPorts(root, clock, every=2.0)
        self.assertEqual(own.expires, float("-inf"))
        self.assertEqual(own(), {8007})
        self.assertEqual((own.ports, own.expires), ({8007}, 2.0))
        _service("web", 8080).setServiceParent(root)
        clock.advance(1)
        self.assertEqual(own.ports, own())
        clock.advance(1)
        self.assertEqual(own(), {8007, 8080})
        self.assertEqual((own.ports, own.expires), ({8007, 8080}, 4.0))
