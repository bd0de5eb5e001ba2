"""
Tests for L{services.discovery._protocol} and L{services.discovery._service}: the
protocol over a memory transport and a L{Clock}, the peer table, and the service.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.application.service import MultiService, Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IUDPTransport
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

from services import logs

from services.net.datagram import SourceLimiter
from services.discovery import (
    DiscoveryProtocol,
    DiscoveryService,
    DiscoverySettings,
    PeerTable,
    makeDiscoveryService,
)
from services.discovery import _multicast
from services.discovery._client import announceListenAddress
from services.discovery._net import (
    GROUP6,
    LIMITED_BROADCAST,
    LIMITED_BROADCAST_ADDRESS,
    Target,
    receiverAddresses,
)
from services.discovery._protocol import NONCE_LIFETIME
from services.discovery._wire import (
    ANNOUNCE,
    MAX_DATAGRAM,
    REPLY,
    Message,
    decode,
    encode,
    query,
)
from services.net.interfaces import Address4, Interface
from services.net.listener import ListenError, isListening, listeningPorts
from services.stats import DiscoveryStats
from tests.support import freePort, hasIPv6Loopback
from tests.udpsupport import MemoryDatagramTransport, UdpMemoryReactor

ID = "a" * 32
#: The loopback interface, as the kernel lists it.
LO = Interface(
    "lo", 1, loopback=True, multicast=False, ipv4=(Address4("127.0.0.1", 8, "127.255.255.255"),)
)
PEER = "b" * 32
BROADCAST = ("127.255.255.255", 9009)
CLIENT = ("127.0.0.1", 40000)


def build(**kwargs: Any) -> tuple[DiscoveryProtocol, MemoryDatagramTransport, Clock]:
    """
    A started protocol on a memory transport, with its clock.
    """
    clock = kwargs.pop("clock", None) or Clock()
    options: dict[str, Any] = {
        "name": "alpha",
        "instanceId": ID,
        "broadcast": BROADCAST,
        "interval": 5.0,
        "ttl": 15,
        "services": lambda: {"echo": [8007], "web": [8080]},
        "ownPorts": lambda: {9009, 8007, 8080},
    }
    options.update(kwargs)
    protocol = DiscoveryProtocol(clock, **options)
    transport = MemoryDatagramTransport(protocol, ("127.0.0.1", 9009))
    protocol.makeConnection(transport)
    return protocol, transport, clock


def peerAnnounce(
    ttl: int = 15, id: str = PEER, name: str = "beta", kind: str = ANNOUNCE, nonce: str = ""
) -> bytes:
    """
    An announce (or reply) from another instance.
    """
    return encode(Message(kind, id, name, ttl, {"echo": (7007,)}, nonce))


class AnnounceTests(SynchronousTestCase):
    """
    The protocol allows broadcasting and announces every C{interval} seconds.
    """

    def test_transport(self) -> None:
        """
        The memory transport provides L{IUDPTransport}.
        """
        verifyObject(IUDPTransport, MemoryDatagramTransport())

    def test_broadcastAllowed(self) -> None:
        """
        Starting the protocol allows broadcasting on its transport.
        """
        _protocol, transport, _clock = build()
        self.assertTrue(transport.broadcastAllowed)

    def test_cadence(self) -> None:
        """
        The first announce goes out on the next turn of the reactor, then one
        every C{interval} seconds, to the broadcast address.
        """
        protocol, transport, clock = build()
        self.assertEqual(transport.written, [])
        clock.advance(0)
        self.assertEqual(len(transport.written), 1)
        clock.advance(4.9)
        self.assertEqual(len(transport.written), 1)
        clock.advance(0.1)
        self.assertEqual(len(transport.written), 2)
        clock.pump([5.0] * 4)
        self.assertEqual(len(transport.written), 6)
        self.assertEqual({address for _, address in transport.written}, {BROADCAST})
        self.assertEqual(protocol.stats.announcesSent, 6)

    def test_content(self) -> None:
        """
        An announce carries the instance id, name, ttl and the ports of the
        services, as they are at the time of the announce.
        """
        services = {"echo": [8007]}
        _protocol, transport, clock = build(services=lambda: dict(services))
        clock.advance(0)
        services["web"] = [8443, 8080]
        clock.advance(5)
        first, second = (decode(data) for data, _ in transport.written)
        self.assertEqual(first, Message(ANNOUNCE, ID, "alpha", 15, {"echo": (8007,)}))
        self.assertEqual(second.services, {"echo": (8007,), "web": (8080, 8443)})

    def test_stop(self) -> None:
        """
        Once stopped, the protocol announces no more and leaves no timer.
        """
        _protocol, transport, clock = build()
        clock.advance(0)
        transport.stopListening()
        clock.advance(60)
        self.assertEqual(len(transport.written), 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopBeforeFirst(self) -> None:
        """
        Stopped before its first announce, the protocol sends none.
        """
        _protocol, transport, clock = build()
        transport.stopListening()
        clock.advance(60)
        self.assertEqual(transport.written, [])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_noInterval(self) -> None:
        """
        With no interval (a client) nothing is announced.
        """
        _protocol, transport, clock = build(interval=None)
        clock.advance(60)
        self.assertEqual(transport.written, [])

    def test_sendErrorWarnsOnce(self) -> None:
        """
        An announce the system refuses is counted; the warning is logged
        once until an announce goes out again, and the cadence goes on.
        """
        protocol, transport, clock = build()
        transport.error = PermissionError(13, "Permission denied")
        with capturedLogs() as events:
            clock.advance(0)
            clock.advance(5)
            clock.advance(5)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(protocol.stats.sendErrors, 3)
        transport.error = None
        clock.advance(5)
        self.assertEqual(protocol.stats.announcesSent, 1)

    def test_sendErrorIsAProblem(self) -> None:
        """
        While announces cannot be sent, L{DiscoveryProtocol.problems} says
        where to and why (what C{/health} reports), and the warning names
        the reason; once an announce goes out, there is no problem left.
        """
        protocol, transport, clock = build()
        transport.error = OSError(101, "Network is unreachable")
        with capturedLogs() as events:
            clock.advance(0)
            clock.advance(5)
        self.assertEqual(
            protocol.problems(),
            ["cannot send announces to 127.255.255.255:9009: Network is unreachable"],
        )
        [warning] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warning["reason"], "Network is unreachable")
        transport.error = None
        clock.advance(5)
        self.assertEqual(protocol.problems(), [])

    def test_onlyValidServices(self) -> None:
        """
        Service names and ports that receivers would reject are left out,
        so that the rest of the announce is still accepted.
        """
        services = {"echo": [8007, 0, 70000], "Bad Name": [1], "web": [8080]}
        _, transport, clock = build(services=lambda: services)
        clock.advance(0)
        message = decode(transport.written[0][0])
        self.assertEqual(message.services, {"echo": (8007,), "web": (8080,)})

    def test_failingTickKeepsAnnouncing(self) -> None:
        """
        An announce that fails unexpectedly (here, the services callable
        raises) is logged, and the next one still goes out.
        """
        failing = [True]

        def services() -> dict[str, list[int]]:
            """
            Fail while C{failing} says so.
            """
            if failing[0]:
                raise RuntimeError("not ready")
            return {}

        _, transport, clock = build(services=services)
        clock.advance(0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        failing[0] = False
        clock.advance(5)
        self.assertEqual(len(transport.written), 1)

    def test_tooManyServices(self) -> None:
        """
        At most 16 services with 16 ports each are announced, and services
        are left out, last first, until the announce fits in 1200 bytes
        (with a warning, once).
        """
        services = {f"service-{i:02}": list(range(10000, 10040)) for i in range(40)}
        _protocol, transport, clock = build(services=lambda: services, name="n" * 64)
        with capturedLogs() as events:
            clock.advance(0)
            clock.advance(5)
        data = transport.written[0][0]
        self.assertLessEqual(len(data), MAX_DATAGRAM)
        message = decode(data)
        self.assertGreater(len(message.services), 1)
        self.assertEqual(message.services["service-00"], tuple(range(10000, 10016)))
        self.assertNotIn("service-15", message.services)
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.warn]), 1)


class TargetsTests(SynchronousTestCase):
    """
    Announces per interface, each with what is reachable there, and replies
    with what is reachable where the query came from.
    """

    def targets(self) -> tuple[list[Target], list[str]]:
        return [
            Target(("198.18.0.255", 9009), "eth0", {"echo": [7]}, {"echo": ["198.18.0.1:7"]}),
            Target(("198.18.1.255", 9009), "eth1", {}, {}),
        ], self.problems

    def setUp(self) -> None:
        self.problems: list[str] = []

    def test_announcePerTarget(self) -> None:
        """
        One announce per target, each listing that target's services and
        endpoints.
        """
        protocol, transport, clock = build(targets=self.targets)
        clock.advance(0)
        [(first, to0), (second, to1)] = transport.written
        self.assertEqual((to0, to1), (("198.18.0.255", 9009), ("198.18.1.255", 9009)))
        self.assertEqual(decode(first).endpoints, {"echo": ("198.18.0.1:7",)})
        self.assertEqual(decode(first).services, {"echo": (7,)})
        self.assertEqual(decode(second).endpoints, {})
        self.assertEqual(protocol.stats.announcesSent, 2)

    def test_targetProblems(self) -> None:
        """
        What the targets cannot reach is a problem (for C{/health}), warned
        about once, and gone when it is solved.
        """
        self.problems = ["broadcast = auto: no IPv4 broadcast address on every interface"]
        protocol, _transport, clock = build(targets=self.targets)
        with capturedLogs() as events:
            clock.advance(0)
            clock.advance(5)
        self.assertEqual(protocol.problems(), self.problems)
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.warn]), 1)
        self.problems = []
        clock.advance(5)
        self.assertEqual(protocol.problems(), [])

    def test_replyFromInterface(self) -> None:
        """
        A query is answered with what C{replyFor} says is reachable from
        its source, never larger than the query.
        """
        reachable = Target(CLIENT, "eth0", {"web": [80]}, {"web": ["198.18.0.1:80"]})
        protocol, transport, _clock = build(replyFor=lambda addr: reachable)
        data = query("1234567890abcdef")
        protocol.datagramReceived(data, CLIENT)
        [(reply, to)] = transport.written
        self.assertEqual(to, CLIENT)
        self.assertEqual(decode(reply).endpoints, {"web": ("198.18.0.1:80",)})
        self.assertLessEqual(len(reply), len(data))

    def test_heardWithEndpoints(self) -> None:
        """
        An announce's endpoints are the peer's, and the interface it came
        by is recorded.
        """
        protocol, _transport, _clock = build(viaFor=lambda addr: "eth1")
        announce = encode(
            Message(ANNOUNCE, PEER, "beta", 15, {"echo": (7,)}, endpoints={"echo": ("198.18.1.2:7",)})
        )
        protocol.datagramReceived(announce, ("198.18.1.2", 9009))
        [peer] = protocol.peers.snapshot()
        self.assertEqual((peer["endpoints"], peer["via"]), ({"echo": ["198.18.1.2:7"]}, "eth1"))


class QueryTests(SynchronousTestCase):
    """
    Queries get one unicast reply, within the safety rules.
    """

    def test_reply(self) -> None:
        """
        A padded query gets a reply to its source that echoes its nonce and
        is no larger than the query.
        """
        protocol, transport, _clock = build()
        data = query("1234567890abcdef")
        protocol.datagramReceived(data, CLIENT)
        [(reply, address)] = transport.written
        self.assertEqual(address, CLIENT)
        self.assertLessEqual(len(reply), len(data))
        self.assertEqual(
            decode(reply),
            Message(REPLY, ID, "alpha", 15, {"echo": (8007,), "web": (8080,)}, "1234567890abcdef"),
        )
        self.assertEqual(protocol.stats.queriesHeard, 1)
        self.assertEqual(protocol.stats.repliesSent, 1)

    def test_smallQuery(self) -> None:
        """
        A query smaller than the reply it would get gets none.
        """
        protocol, transport, _clock = build()
        protocol.datagramReceived(query("1234567890abcdef", 60), CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.smallQueries, 1)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(min_value=0, max_value=MAX_DATAGRAM), st.integers(0, 40))
    def test_neverLarger(self, size: int, services: int) -> None:
        """
        Whatever the query's size and the services, no reply is larger than
        the query.
        """
        ports = {f"s{i}": [10000 + i] for i in range(services)}
        protocol, transport, _clock = build(services=lambda: ports)
        data = query("1234567890abcdef", size)
        protocol.datagramReceived(data, CLIENT)
        for reply, _ in transport.written:
            self.assertLessEqual(len(reply), len(data))

    def test_onlyQueriesAnswered(self) -> None:
        """
        Announces, replies, malformed and foreign datagrams get no answer.
        """
        protocol, transport, _clock = build()
        for data in (
            peerAnnounce(),
            peerAnnounce(kind=REPLY, nonce="1234567890abcdef"),
            b'{"netservices":1,"type":"query"}',
            b"\x00" * 40,
        ):
            protocol.datagramReceived(data, CLIENT)
        self.assertEqual(transport.written, [])

    def test_loopGuard(self) -> None:
        """
        No reply goes to a source port below 1024 or to one of our own
        service ports (another instance's discovery port, say).
        """
        protocol, transport, _clock = build()
        for port in (7, 19, 53, 1023, 9009, 8007):
            protocol.datagramReceived(query("1234567890abcdef"), ("127.0.0.1", port))
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.loopGuarded, 6)
        protocol.datagramReceived(query("1234567890abcdef"), ("127.0.0.1", 1024))
        self.assertEqual(len(transport.written), 1)

    def test_sourceRateLimit(self) -> None:
        """
        One source gets C{burst} replies at once, then C{rate} a second;
        another source is answered meanwhile.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate=1.0, sourceBurst=3, globalRate=100.0)
        protocol, transport, clock = build(clock=clock, limiter=limiter, interval=None)
        for _ in range(10):
            protocol.datagramReceived(query("1234567890abcdef"), CLIENT)
        self.assertEqual(len(transport.written), 3)
        self.assertEqual(protocol.stats.rateLimited, 7)
        protocol.datagramReceived(query("1234567890abcdef"), ("127.0.0.2", 40000))
        self.assertEqual(len(transport.written), 4)
        clock.advance(1)
        for _ in range(5):
            protocol.datagramReceived(query("1234567890abcdef"), ("127.0.0.1", 40001))
        self.assertEqual(len(transport.written), 5)

    def test_globalRateLimit(self) -> None:
        """
        All sources together get at most C{globalRate} replies a second.
        """
        clock = Clock()
        limiter = SourceLimiter(clock, sourceRate=10.0, sourceBurst=10, globalRate=4.0)
        protocol, transport, clock = build(clock=clock, limiter=limiter, interval=None)
        for i in range(20):
            protocol.datagramReceived(query("1234567890abcdef"), (f"127.0.0.{i + 1}", 40000))
        self.assertEqual(len(transport.written), 4)
        clock.advance(0.5)
        for i in range(20):
            protocol.datagramReceived(query("1234567890abcdef"), (f"127.0.1.{i + 1}", 40000))
        self.assertEqual(len(transport.written), 6)

    def test_notAnswering(self) -> None:
        """
        A protocol told not to answer (a client) counts queries but sends
        nothing.
        """
        protocol, transport, _clock = build(answer=False, interval=None)
        protocol.datagramReceived(query("1234567890abcdef"), CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.stats.queriesHeard, 1)

    def test_sendError(self) -> None:
        """
        A reply the system refuses to send is counted, not raised.
        """
        protocol, transport, _clock = build()
        transport.error = OSError(11, "Resource temporarily unavailable")
        protocol.datagramReceived(query("1234567890abcdef"), CLIENT)
        self.assertEqual(protocol.stats.sendErrors, 1)
        self.assertEqual(protocol.stats.repliesSent, 0)


class OwnTests(SynchronousTestCase):
    """
    The protocol ignores its own datagrams, heard back.
    """

    def test_ownAnnounce(self) -> None:
        """
        Our own announce, heard back from the broadcast, adds no peer.
        """
        protocol, transport, clock = build()
        clock.advance(0)
        [(data, _)] = transport.written
        protocol.datagramReceived(data, ("127.0.0.1", 9009))
        self.assertEqual(len(protocol.peers), 0)
        self.assertEqual(protocol.stats.own, 1)
        self.assertEqual(len(transport.written), 1)

    def test_ownQuery(self) -> None:
        """
        Our own query, heard back from the broadcast, is not answered.
        """
        protocol, transport, _clock = build()
        nonce = protocol.query()
        [(data, address)] = transport.written
        self.assertEqual(address, BROADCAST)
        self.assertEqual(len(data), MAX_DATAGRAM)
        protocol.datagramReceived(data, ("127.0.0.1", 9009))
        self.assertEqual(len(transport.written), 1)
        self.assertEqual(protocol.stats.own, 1)
        self.assertEqual(decode(data).nonce, nonce)


class PeerTests(SynchronousTestCase):
    """
    Announces and replies to our queries add or refresh peers, which expire
    after their ttl.
    """

    def test_announceAddsPeer(self) -> None:
        """
        An announce adds a peer with the datagram's source address; an
        announce without endpoints (an older instance) is reachable at that
        address on each port it lists.
        """
        protocol, _transport, clock = build()
        clock.advance(2)
        protocol.datagramReceived(peerAnnounce(), ("127.0.0.1", 9009))
        clock.advance(1.5)
        [peer] = protocol.peers.snapshot()
        self.assertEqual(
            peer,
            {
                "name": "beta",
                "id": PEER,
                "address": "127.0.0.1:9009",
                "services": {"echo": [7007]},
                "endpoints": {"echo": ["127.0.0.1:7007"]},
                "via": "",
                "age": 1.5,
                "ttl": 15,
            },
        )
        json.dumps(peer)
        self.assertEqual(protocol.stats.announcesHeard, 1)
        self.assertEqual(protocol.stats.peers, 1)

    def test_ttlExpiry(self) -> None:
        """
        A peer not heard for its ttl is forgotten, by the announce timer as
        well as when the table is read; hearing it again refreshes it.
        """
        protocol, _transport, clock = build()
        protocol.datagramReceived(peerAnnounce(ttl=12), ("127.0.0.1", 9009))
        clock.advance(10)
        protocol.datagramReceived(peerAnnounce(ttl=12), ("127.0.0.1", 9009))
        clock.advance(11.9)
        self.assertEqual(len(protocol.peers.snapshot()), 1)
        with capturedLogs() as events:
            clock.advance(0.1)
            clock.advance(5)  # the next announce tick expires it
        self.assertEqual(len(protocol.peers), 0)
        self.assertEqual(protocol.stats.peersExpired, 1)
        self.assertEqual(protocol.stats.peers, 0)
        self.assertTrue(any("forgotten" in e["log_format"] for e in events))

    def test_expiryLoggedWhenRead(self) -> None:
        """
        A peer that expires while C{/status} reads the table (before the
        periodic sweep) is still logged as forgotten, once.
        """
        protocol, _transport, clock = build()
        clock.advance(1)  # the first announce and sweep; the next at 6
        protocol.datagramReceived(peerAnnounce(ttl=3), ("127.0.0.1", 9009))
        with capturedLogs() as events:
            clock.advance(3)
            self.assertEqual(protocol.peers.snapshot(), [])
            clock.advance(5)
        forgotten = [e for e in events if "forgotten" in e["log_format"]]
        self.assertEqual([e["name"] for e in forgotten], ["beta"])

    def test_replyToOurQuery(self) -> None:
        """
        A reply that echoes the nonce of our query adds a peer; one that
        echoes no nonce of ours, or an expired one, is dropped as
        unsolicited.
        """
        protocol, _transport, clock = build(interval=None, answer=False)
        protocol.datagramReceived(peerAnnounce(kind=REPLY, nonce="f" * 16), ("127.0.0.1", 9009))
        self.assertEqual(len(protocol.peers), 0)
        self.assertEqual(protocol.stats.unsolicited, 1)
        nonce = protocol.query(("127.0.0.1", 9009))
        protocol.datagramReceived(peerAnnounce(kind=REPLY, nonce=nonce), ("127.0.0.1", 9009))
        self.assertEqual(len(protocol.peers), 1)
        self.assertEqual(protocol.stats.repliesHeard, 1)
        clock.advance(NONCE_LIFETIME)
        protocol.datagramReceived(
            peerAnnounce(kind=REPLY, nonce=nonce, id="c" * 32), ("127.0.0.1", 9009)
        )
        self.assertEqual(protocol.stats.unsolicited, 2)

    def test_tableFull(self) -> None:
        """
        While the table is full, new peers are refused and counted; known
        peers are still refreshed.
        """
        clock = Clock()
        stats = DiscoveryStats()
        table = PeerTable(clock, maxPeers=2, stats=stats)
        protocol, _transport, clock = build(clock=clock, peers=table, stats=stats)
        for i in range(4):
            protocol.datagramReceived(peerAnnounce(id=f"{i:032x}"), ("127.0.0.1", 9009))
        self.assertEqual(len(table), 2)
        self.assertEqual(stats.peersRefused, 2)
        clock.advance(10)
        protocol.datagramReceived(peerAnnounce(id=f"{0:032x}"), ("127.0.0.1", 9009))
        self.assertEqual(table.snapshot()[0]["age"], 0)

    def test_newPeerLogged(self) -> None:
        """
        A new peer is logged at info level with its name, address and
        services; hearing it again logs nothing more.
        """
        protocol, _transport, _clock = build()
        with capturedLogs() as events:
            protocol.datagramReceived(peerAnnounce(), ("127.0.0.1", 9009))
            protocol.datagramReceived(peerAnnounce(), ("127.0.0.1", 9009))
        found = [e for e in events if e["log_level"] == LogLevel.info]
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["name"], "beta")
        self.assertEqual(found[0]["services"], "echo:7007")


class BadDatagramTests(SynchronousTestCase):
    """
    Malformed, foreign and oversize datagrams are counted and logged at
    debug level, and never raise.
    """

    def setUp(self) -> None:
        """
        Log debug events for the test.
        """
        previous = logs.getLevel()
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, previous)

    def check(self, data: bytes, counter: str) -> None:
        """
        C{data} is dropped, counted in C{counter} and logged at debug level.
        """
        protocol, transport, _clock = build()
        with capturedLogs() as events:
            protocol.datagramReceived(data, CLIENT)
        self.assertEqual(getattr(protocol.stats, counter), 1)
        self.assertEqual(protocol.stats.received, 1)
        self.assertEqual(transport.written, [])
        self.assertEqual(len(protocol.peers), 0)
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.debug)
        self.assertIn("dropped", event["log_format"])

    def test_foreign(self) -> None:
        """
        A datagram that is not ours is counted as foreign.
        """
        self.check(b"M-SEARCH * HTTP/1.1\r\n\r\n", "foreign")

    def test_malformed(self) -> None:
        """
        A datagram of ours with a bad member is counted as malformed.
        """
        self.check(b'{"netservices":1,"type":"announce","id":"x"}', "malformed")

    def test_oversize(self) -> None:
        """
        A datagram over 1200 bytes is counted as oversize, even a valid one.
        """
        data = query("1234567890abcdef")[:-2] + b"." * 10 + b'"}'
        self.check(data, "oversize")

    def test_notLoggedAboveDebug(self) -> None:
        """
        At the default info level, bad datagrams log nothing.
        """
        logs.setLevel("info")
        protocol, _transport, _clock = build()
        with capturedLogs() as events:
            protocol.datagramReceived(b"junk", CLIENT)
        self.assertEqual(events, [])

    def test_internalErrorContained(self) -> None:
        """
        Even a failure inside the protocol (here, of the services callable)
        is counted and logged, not raised.
        """

        def broken() -> dict[str, list[int]]:
            """
            Fail.
            """
            raise RuntimeError("boom")

        protocol, _transport, _clock = build(services=broken)
        with capturedLogs() as events:
            protocol.datagramReceived(query("1234567890abcdef"), CLIENT)
        self.assertEqual(protocol.stats.errors, 1)
        self.assertTrue(any(e.get("log_failure") for e in events))
        self.flushLoggedErrors(RuntimeError)

    @settings(max_examples=500, deadline=None)
    @given(st.binary(max_size=1300), st.integers(1, 65535))
    def test_arbitraryBytes(self, data: bytes, port: int) -> None:
        """
        Arbitrary bytes from any port never raise, never fail inside, and
        never get an answer larger than themselves.
        """
        protocol, transport, _clock = build()
        protocol.datagramReceived(data, ("127.0.0.1", port))
        self.assertEqual(protocol.stats.errors, 0)
        for reply, _ in transport.written:
            self.assertLessEqual(len(reply), len(data))


class ReceiverAddressTests(SynchronousTestCase):
    """
    Which address receives the broadcasts.
    """

    def test_receiverAddresses(self) -> None:
        """
        A service bound to a single address needs more sockets: on the
        configured broadcast address, its subnet's and 255.255.255.255 (so
        that a query to either arrives); one bound to all addresses needs
        none.
        """
        eth0 = Interface("eth0", 2, ipv4=(Address4("198.18.0.7", 24, "198.18.0.255"),))
        self.assertEqual(
            receiverAddresses("127.0.0.1", "auto", [LO, eth0]),
            ["127.255.255.255", LIMITED_BROADCAST_ADDRESS],
        )
        self.assertEqual(
            receiverAddresses("198.18.0.7", LIMITED_BROADCAST, [LO, eth0]),
            ["198.18.0.255", LIMITED_BROADCAST_ADDRESS],
        )
        self.assertEqual(
            receiverAddresses("198.18.0.7", "239.255.0.9", [eth0]),
            ["239.255.0.9", "198.18.0.255", LIMITED_BROADCAST_ADDRESS],
        )
        self.assertEqual(receiverAddresses("0.0.0.0", "auto", [LO, eth0]), [])

    def test_announceListenAddress(self) -> None:
        """
        A client listens for announces only on broadcast addresses, never on
        a single host's address.
        """
        self.assertEqual(announceListenAddress("127.255.255.255"), "127.255.255.255")
        self.assertEqual(announceListenAddress(LIMITED_BROADCAST), LIMITED_BROADCAST_ADDRESS)
        # 192.0.2.0/24 is reserved for documentation (RFC 5737).
        self.assertEqual(announceListenAddress("192.0.2.255"), "192.0.2.255")
        self.assertIsNone(announceListenAddress("127.0.0.1"))


class _FakePort:
    def __init__(self, port: int) -> None:
        self.port = port

    def getHost(self) -> IPv4Address:
        """
        The TCP address of this fake port.
        """
        return IPv4Address("TCP", "127.0.0.1", self.port)


class _FakePort6(_FakePort):
    def getHost(self) -> IPv6Address:  # type: ignore[override]
        """
        The TCP address of this fake port: every IPv6 address.
        """
        return IPv6Address("TCP", "::", self.port)


def sibling6(name: str, port: int) -> Service:
    """
    A service named C{name} listening on TCP C{[::]:port}.
    """
    service = Service()
    service.setName(name)
    service.port = _FakePort6(port)  # type: ignore[attr-defined]
    return service


def sibling(name: str, port: int) -> Service:
    """
    A service named C{name} listening on TCP C{port}.
    """
    service = Service()
    service.setName(name)
    service.port = _FakePort(port)  # type: ignore[attr-defined]
    return service


class ServiceTests(SynchronousTestCase):
    """
    L{DiscoveryService} binds the shared port, announces its siblings'
    ports, and offers the peer table.
    """

    def setUp(self) -> None:
        """
        A discovery service on a free port under a root with an echo sibling.
        """
        self.reactor = UdpMemoryReactor()
        self.udpPort = freePort(socket.SOCK_DGRAM)
        self.settings = DiscoverySettings(port=self.udpPort, name="alpha")
        self.root = MultiService()
        sibling("echo", 7007).setServiceParent(self.root)
        self.service = makeDiscoveryService(self.settings, self.reactor, interfaces=lambda: [LO])
        self.service.setServiceParent(self.root)

    def start(self) -> None:
        """
        Start the tree as twistd does.
        """
        self.root.privilegedStartService()
        self.root.startService()
        self.addCleanup(self.root.stopService)

    def test_name(self) -> None:
        """
        The service is named C{discovery} and has counters.
        """
        self.assertIsInstance(self.service, DiscoveryService)
        self.assertEqual(self.service.name, "discovery")
        self.assertIsInstance(self.service.stats, DiscoveryStats)

    def test_startLineSaysWhereAnnouncesGo(self) -> None:
        """
        The start-up line of C{broadcast = auto} on the default interface
        127.0.0.1 says that announces go to that interface's broadcast
        address only, not to every interface's; bound to 0.0.0.0 it says
        every interface.
        """
        def startLine(interface: str) -> str:
            settings = DiscoverySettings(port=self.udpPort, name="alpha", interface=interface)
            service = makeDiscoveryService(settings, UdpMemoryReactor(), interfaces=lambda: [LO])
            with capturedLogs() as events:
                service.startService()
            self.addCleanup(service.stopService)
            [line] = [formatEvent(e) for e in events if "announcing to" in formatEvent(e)]
            return line

        self.assertIn("announcing to the broadcast address of 127.0.0.1's interface every",
                      startLine("127.0.0.1"))
        self.assertIn("announcing to the broadcast address of each interface every",
                      startLine("0.0.0.0"))

    def test_port(self) -> None:
        """
        C{port} is L{None} until the service listens, then the UDP port,
        which C{listeningPorts} and C{isListening} see.
        """
        self.assertIsNone(self.service.port)
        self.assertFalse(isListening(self.service))
        self.start()
        self.assertIsNotNone(self.service.port)
        self.assertEqual(self.service.port.getHost().port, self.udpPort)
        self.assertIn(self.service.port, listeningPorts(self.root))
        self.assertTrue(isListening(self.service))

    def test_sockets(self) -> None:
        """
        With a single interface, more sockets bound to its broadcast
        address and to 255.255.255.255 receive broadcasts; all have room for
        any datagram.
        """
        self.start()
        first, second, third = self.reactor.datagramPorts
        self.assertEqual(first.host, ("127.0.0.1", self.udpPort))
        self.assertEqual(second.host, ("127.255.255.255", self.udpPort))
        self.assertEqual(third.host, ("255.255.255.255", self.udpPort))
        self.assertEqual({size for *_, size in self.reactor.adoptedPorts}, {65536})

    def test_announcesSiblingPorts(self) -> None:
        """
        The announce lists the ports the sibling services listen on, but not
        discovery's own.
        """
        self.start()
        self.reactor.advance(0)
        transport = self.reactor.datagramPorts[0]
        [(data, address)] = transport.written
        self.assertEqual(address, ("127.255.255.255", self.udpPort))
        message = decode(data)
        self.assertEqual(message.services, {"echo": (7007,)})
        self.assertEqual(message.name, "alpha")

    def test_broadcastReceiverAnswers(self) -> None:
        """
        A query heard on the broadcast socket is answered from the main one.
        """
        self.start()
        main, receiver, _ = self.reactor.datagramPorts
        receiver.protocol.datagramReceived(query("1234567890abcdef"), CLIENT)
        self.assertEqual(main.written[-1][1], CLIENT)

    def test_loopGuardOwnPorts(self) -> None:
        """
        The service's loop guard covers the discovery port and the ports of
        the whole tree.
        """
        self.start()
        main = self.reactor.datagramPorts[0]
        for port in (self.udpPort, 7007):
            main.protocol.datagramReceived(query("1234567890abcdef"), ("127.0.0.1", port))
        self.assertEqual(main.written, [])
        self.assertEqual(self.service.stats.loopGuarded, 2)

    def test_ipv6PerInterface(self) -> None:
        """
        With C{ipv6}, each IPv6 interface that can multicast gets a socket
        and a protocol of its own, which announces that interface's
        endpoints to the group, names the interface of what it hears, and
        shares the IPv4 protocol's instance id, peer table, rate limits and
        loop guard; an interface that cannot be listened on is a problem
        (for C{/health}), warned about once.
        """
        eth0 = Interface("eth0", 2, ipv6=("2001:db8::1",))
        eth1 = Interface("eth1", 3, ipv6=("2001:db8:1::1",))
        broken = {"eth1"}

        def fakeSocket(port: int, interface: Interface) -> socket.socket:
            if interface.name in broken:
                raise OSError(19, "No such device")
            skt = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            skt.bind(("::1", 0))
            return skt

        self.patch(_multicast, "multicastSocket6", fakeSocket)
        if not hasIPv6Loopback():
            raise SkipTest("no IPv6 loopback")
        settings = DiscoverySettings(port=self.udpPort, name="alpha", ipv6=True)
        service = makeDiscoveryService(settings, self.reactor, interfaces=lambda: [LO, eth0, eth1])
        root = MultiService()
        sibling6("echo", 7007).setServiceParent(root)
        service.setServiceParent(root)
        with capturedLogs() as events:
            root.privilegedStartService()
            root.startService()
            self.addCleanup(root.stopService)
            self.reactor.advance(0)
            self.reactor.advance(5)
        [v6] = [p for p in self.reactor.datagramPorts if p.family == socket.AF_INET6]
        announces = [decode(d) for d, to in v6.written if to == (GROUP6, self.udpPort)]
        self.assertEqual(len(announces), 2)
        self.assertEqual(announces[0].endpoints, {"echo": ("[2001:db8::1]:7007",)})
        self.assertEqual(announces[0].id, service.protocol.instanceId)
        protocol6 = v6.protocol
        self.assertIs(protocol6.peers, service.protocol.peers)
        self.assertIs(protocol6.limiter, service.protocol.limiter)
        protocol6.datagramReceived(query("1234567890abcdef"), ("fe80::2", self.udpPort))
        self.assertEqual(service.stats.loopGuarded, 1)
        protocol6.datagramReceived(peerAnnounce(), ("fe80::2", 9009))
        [peer] = service.peerSnapshot()
        self.assertEqual(peer["via"], "eth0")
        self.assertEqual(
            service.healthProblems(),
            [f"cannot listen on [{GROUP6}]:{self.udpPort} on eth1: No such device"],
        )
        warned = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warned), 1)
        self.assertEqual(service.statusDetails()["ipv6"], ["eth0"])

    def test_peerLimits(self) -> None:
        """
        The peer table takes the configured limits per source, and caps
        announced ttls at C{maxPeerTtl}, or our own ttl if that is longer.
        """
        settings = DiscoverySettings(
            port=freePort(socket.SOCK_DGRAM),
            ttl=90,
            maxPeerTtl=60,
            maxPeersPerSource=3,
            maxPortsPerSource=7,
        )
        table = makeDiscoveryService(settings, UdpMemoryReactor()).protocol.peers
        self.assertEqual(
            (table.maxPerSource, table.maxPortsPerSource, table.maxTtl), (3, 7, 90)
        )

    def test_peerSnapshot(self) -> None:
        """
        C{peerSnapshot} lists the peers heard, JSON-serializable.
        """
        self.start()
        main = self.reactor.datagramPorts[0]
        main.protocol.datagramReceived(peerAnnounce(), ("127.0.0.1", self.udpPort))
        [peer] = self.service.peerSnapshot()
        self.assertEqual(peer["name"], "beta")
        self.assertEqual(peer["services"], {"echo": [7007]})
        self.assertEqual(
            set(peer), {"name", "id", "address", "services", "endpoints", "via", "age", "ttl"}
        )
        json.dumps(self.service.peerSnapshot())

    def test_stop(self) -> None:
        """
        Stopping closes both sockets and stops announcing.
        """
        self.start()
        self.root.stopService()
        self.assertIsNone(self.service.port)
        self.assertFalse(any(p.listening for p in self.reactor.datagramPorts))
        self.reactor.advance(60)
        self.assertEqual(self.reactor.datagramPorts[0].written, [])

    def test_allInterfaces(self) -> None:
        """
        Bound to every address, one socket receives everything.
        """
        service = makeDiscoveryService(
            DiscoverySettings(port=self.udpPort, interface="0.0.0.0"), self.reactor
        )
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        self.assertEqual(len(self.reactor.datagramPorts), 1)

    def test_portInUse(self) -> None:
        """
        A port held by a socket without C{SO_REUSEADDR} cannot be shared:
        starting fails with L{ListenError} naming the endpoint.
        """
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", self.udpPort))
        with self.assertRaises(ListenError) as caught:
            self.service.privilegedStartService()
        self.assertEqual(
            str(caught.exception),
            f"discovery: cannot listen on udp:{self.udpPort}:interface=127.0.0.1: "
            "address already in use",
        )
        self.assertIsNone(self.service.port)

    def test_receiverInUse(self) -> None:
        """
        A broadcast address that cannot be bound (held without
        C{SO_REUSEADDR}) leaves the service listening and announcing, and
        is a problem that C{/health} reports.
        """
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(holder.close)
        holder.bind(("127.255.255.255", self.udpPort))
        self.start()
        self.assertIsNotNone(self.service.port)
        self.assertEqual(
            self.service.healthProblems(),
            [f"cannot receive broadcasts to 127.255.255.255:{self.udpPort}: Address already in use"],
        )

    def test_startServiceListens(self) -> None:
        """
        Started without C{privilegedStartService}, the service still binds.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertIsNotNone(self.service.port)


class PublicAPITests(SynchronousTestCase):
    """
    L{services.discovery} is the package's public API.
    """

    def test_allIsWhatIsExported(self) -> None:
        """
        C{__all__} lists exactly the public names of the package, and each
        function and class among them has a docstring of its own.
        """
        import services.discovery as package

        public = {name for name in vars(package) if not name.startswith("_")}
        self.assertEqual(public, set(package.__all__))
        for name in package.__all__:
            value = getattr(package, name)
            if callable(value):
                self.assertTrue(value.__doc__ and value.__doc__.strip(), name)
