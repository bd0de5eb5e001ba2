# -*- test-case-name: tests.unit.discovery.test_peers -*-
"""
Tests for L{services.discovery._peers}: the peer table's limits per source,
its ttl cap, its bounded summaries, and the expiry it reports however it is
read.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from services.discovery._peers import MAX_GUARDED_PORTS, STATUS_PEERS, Peer, PeerTable
from services.discovery._wire import ANNOUNCE, Message, newInstanceId
from services.stats import DiscoveryStats

FORGER = ("127.0.0.1", 40000)


def announce(ports: list[int] | None = None, ttl: int = 15, id: str | None = None) -> Message:
    """
    An announce of a new instance (or of C{id}) with C{ports} on one service.
    """
    return Message(ANNOUNCE, id or newInstanceId(), "x", ttl, {"echo": tuple(ports or [7007])})


class SourceLimitTests(SynchronousTestCase):
    """
    One source (address and port) gets a fair share of the table.
    """

    def test_peersPerSource(self) -> None:
        """
        A source places at most C{maxPerSource} peers; the rest are refused
        and counted, while another source (another instance's socket on the
        same host) is still recorded.
        """
        stats = DiscoveryStats()
        table = PeerTable(Clock(), stats=stats, maxPerSource=4)
        for _ in range(10):
            table.heard(announce(), FORGER)
        self.assertEqual(len(table), 4)
        self.assertEqual(stats.peersRefused, 6)
        self.assertIsNotNone(table.heard(announce(), ("127.0.0.1", 8009)))
        self.assertEqual(len(table), 5)

    def test_refreshWhileFull(self) -> None:
        """
        A peer already known is refreshed even when its source's share is
        full.
        """
        clock = Clock()
        table = PeerTable(clock, maxPerSource=1)
        known = announce()
        table.heard(known, FORGER)
        clock.advance(10)
        table.heard(known, FORGER)
        clock.advance(10)
        self.assertEqual([p.id for p in table.peers()], [known.id])

    def test_shareFreedByExpiry(self) -> None:
        """
        Once a source's peers have expired, it may place new ones.
        """
        clock = Clock()
        table = PeerTable(clock, maxPerSource=2)
        for _ in range(2):
            table.heard(announce(ttl=5), FORGER)
        self.assertIsNone(table.heard(announce(), FORGER))
        clock.advance(5)
        self.assertIsNotNone(table.heard(announce(), FORGER))

    def test_portsPerSource(self) -> None:
        """
        A source's peers together list at most C{maxPortsPerSource} distinct
        ports; ports beyond are left out of the entry and counted, ports the
        source already holds stay free, and other sources are not affected.
        """
        stats = DiscoveryStats()
        table = PeerTable(Clock(), stats=stats, maxPortsPerSource=10)
        first = announce(list(range(20000, 20168)))
        table.heard(first, FORGER)
        table.heard(announce([20000, 20001, 30000]), FORGER)
        table.heard(announce([30001]), ("127.0.0.1", 8009))
        peers = {tuple(p.services.get("echo", ())) for p in table.peers()}
        self.assertIn(tuple(range(20000, 20010)), peers)
        self.assertIn((20000, 20001), peers)
        self.assertIn((30001,), peers)
        self.assertEqual(stats.portsRefused, 158 + 1)
        self.assertEqual(len(table.guardedPorts()), 11)

    def test_endpointsFollowPorts(self) -> None:
        """
        An endpoint is kept only for a port the entry keeps.
        """
        table = PeerTable(Clock(), maxPortsPerSource=1)
        table.heard(
            announce([7007, 7008]),
            FORGER,
            {"echo": ["198.18.0.1:7007", "198.18.0.1:7008"]},
        )
        [peer] = table.peers()
        self.assertEqual(peer.endpoints, {"echo": ("198.18.0.1:7007",)})


class TtlTests(SynchronousTestCase):
    """
    Our own limit on how long a peer is remembered.
    """

    def test_ttlCapped(self) -> None:
        """
        An announced ttl above C{maxTtl} is cut to it, and counted.
        """
        clock = Clock()
        stats = DiscoveryStats()
        table = PeerTable(clock, stats=stats, maxTtl=60)
        table.heard(announce(ttl=3600), FORGER)
        self.assertEqual(table.peers()[0].ttl, 60)
        self.assertEqual(stats.ttlCapped, 1)
        clock.advance(60)
        self.assertEqual(table.peers(), [])

    def test_expiryReportedOnRead(self) -> None:
        """
        A peer that expires while the table is read (as C{/status} does) is
        reported to C{onExpired}, once.
        """
        clock = Clock()
        gone: list[Peer] = []
        table = PeerTable(clock, onExpired=gone.append)
        table.heard(announce(ttl=5), FORGER)
        clock.advance(5)
        table.snapshot()
        table.summary()
        table.expire()
        self.assertEqual([p.ttl for p in gone], [5])


class BoundsTests(SynchronousTestCase):
    """
    What readers get from the table is bounded whatever it holds.
    """

    def fill(self, peers: int, portsEach: int) -> PeerTable:
        table = PeerTable(Clock(), maxPerSource=1, maxPortsPerSource=portsEach)
        for i in range(peers):
            ports = [1024 + (i * portsEach + j) % 64000 for j in range(portsEach)]
            table.heard(announce(ports), (f"198.18.{i // 250}.{i % 250 + 1}", 8009))
        return table

    def test_summaryBounded(self) -> None:
        """
        The summary lists L{STATUS_PEERS} peers and counts the others and
        their sources.
        """
        table = self.fill(1000, 4)
        summary = table.summary()
        self.assertEqual(len(summary["peers"]), STATUS_PEERS)
        self.assertEqual(summary["peersOmitted"], 1000 - STATUS_PEERS)
        self.assertEqual(summary["sources"], 1000)
        self.assertLess(len(json.dumps(summary)), 16 * 1024)

    def test_summarySmallTable(self) -> None:
        """
        A table within the limit is listed whole, with no counts.
        """
        self.assertEqual(set(self.fill(3, 1).summary()), {"peers"})

    def test_guardedPortsBounded(self) -> None:
        """
        However many ports peers announce, the loop guards get at most
        L{MAX_GUARDED_PORTS} of them.
        """
        table = self.fill(1000, 64)
        self.assertEqual(len(table.guardedPorts()), MAX_GUARDED_PORTS)
