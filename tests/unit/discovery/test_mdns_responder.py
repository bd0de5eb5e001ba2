# -*- test-case-name: tests.unit.discovery.test_mdns_responder -*-
"""
Tests for L{services.discovery._mdnsresponder}: the responder on a memory datagram
transport with a L{Clock}, so that every RFC 6762 timing is exact.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.names import dns
from twisted.trial.unittest import SkipTest, TestCase

from services.net.datagram import SourceLimiter
from services.discovery._mdnsrecords import CACHE_FLUSH, Offer, instanceRecords
from services.discovery._mdnslink import MDNS_GROUP4, Link
from services.discovery._mdnsresponder import MDNSResponder
from services.stats import MDNSStats
from tests.udpsupport import MemoryDatagramTransport

try:
    from zeroconf import DNSIncoming, DNSNsec
except ImportError:  # pragma: no cover -- a test dependency
    DNSIncoming = DNSNsec = None

NSEC = 47
LINK = Link("eth0", 4, ("198.18.0.0/24",), 1500)
QUERIER = ("198.18.0.2", 5353)
OFFERS = [
    Offer("_netservices._tcp", 7080, ("198.18.0.1",), ("id=" + "a" * 32, "version=1")),
    Offer("_http._tcp", 7080, ("198.18.0.1",), ("path=/",)),
    Offer("_echo._tcp", 7007, ("198.18.0.1",)),
]


class MiddleRandom:
    """
    A random source whose every draw is the middle of its range.
    """

    def uniform(self, low: float, high: float) -> float:
        """
        The middle of C{[low, high]}.
        """
        return (low + high) / 2


def parse(packet: bytes) -> dns.Message:
    """
    The DNS message in C{packet}.
    """
    message = dns.Message()
    message.fromStr(packet)
    return message


def query(*questions: tuple[str, int], qu: bool = False, known: tuple[dns.RRHeader, ...] = (),
          id: int = 0) -> bytes:  # fmt: skip
    """
    A query packet for C{questions} (name, type), with the QU bit, and
    C{known} answers.
    """
    message = dns.Message(id=id)
    message.queries = [dns.Query(n, t, dns.IN | (CACHE_FLUSH if qu else 0)) for n, t in questions]
    message.answers = list(known)
    return message.toStr()


class ResponderTestCase(TestCase):
    """
    A responder for instance "alpha" on L{LINK}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = MDNSStats()
        self.conflicts: list[str] = []
        self.responder = self.make(LINK)

    def make(self, link: Link, offers: list[Offer] = OFFERS, burst: int = 100) -> MDNSResponder:
        """
        A started responder on C{link} for C{offers}, writing to a memory
        transport (C{self.transport}).
        """
        responder = MDNSResponder(
            self.clock, link, lambda name: instanceRecords(name, offers), self.stats,
            SourceLimiter(self.clock, 100.0, burst, 1000.0),
            onConflict=lambda r: (self.conflicts.append(r.name), r.probe(r.name + " (2)")),
            rng=MiddleRandom(),  # type: ignore[arg-type]
        )  # fmt: skip
        self.transport = MemoryDatagramTransport(responder, ("0.0.0.0", 5353))
        responder.makeConnection(self.transport)
        return responder

    def sent(self) -> list[tuple[dns.Message, Any]]:
        """
        The messages written since the last call, with their destinations.
        """
        written, self.transport.written = self.transport.written, []
        return [(parse(packet), addr) for packet, addr in written]

    def claim(self) -> None:
        """
        Probe and announce "alpha" to the end, forgetting what was sent.
        """
        self.responder.probe("alpha")
        # Step by step: a Clock runs what falls due within one advance, but
        # what those calls schedule counts from the end of the advance.
        self.clock.pump([0.125, 0.25, 0.25, 0.25, 1, 1])  # the last: past the announces' limit
        self.sent()
        self.assertEqual(self.responder.state, "running")

    def receive(self, packet: bytes, source: tuple[str, int] = QUERIER) -> None:
        """
        Deliver C{packet} from C{source}.
        """
        self.responder.datagramReceived(packet, source)


class ProbeTests(ResponderTestCase):
    """
    Probing (RFC 6762 section 8.1) and announcing (section 8.3).
    """

    def test_probeTiming(self) -> None:
        """
        The first probe goes after the random delay (up to 250 ms), asks for
        a unicast reply (QU) for every unique name with type ANY and lists
        our records in the authority section; two more follow 250 ms apart,
        without QU; 250 ms after the third the name is ours.
        """
        self.responder.probe("alpha")
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.125)
        [(first, addr)] = self.sent()
        self.assertEqual(addr, (MDNS_GROUP4, 5353))
        names = {q.name.name.decode() for q in first.queries}
        self.assertEqual(
            names,
            {"alpha._netservices._tcp.local", "alpha._http._tcp.local", "alpha._echo._tcp.local",
             "alpha.local"},
        )  # fmt: skip
        self.assertEqual({q.type for q in first.queries}, {dns.ALL_RECORDS})
        self.assertTrue(all(q.cls & CACHE_FLUSH for q in first.queries))
        self.assertEqual({r.type for r in first.authority}, {dns.SRV, dns.TXT, dns.A})
        for _ in range(2):
            self.clock.advance(0.249)
            self.assertEqual(self.sent(), [])
            self.clock.advance(0.001)
            [(probe, _)] = self.sent()
            self.assertFalse(any(q.cls & CACHE_FLUSH for q in probe.queries))
        self.assertEqual(self.responder.state, "probing")
        self.clock.advance(0.25)
        self.assertEqual(self.responder.state, "announcing")

    def test_announcedTwice(self) -> None:
        """
        Once probed, every record is announced in a response, the unique
        ones with the cache-flush bit; once more a second later, then no
        more.
        """
        self.responder.probe("alpha")
        self.clock.pump([0.125, 0.25, 0.25])
        self.assertEqual(len(self.sent()), 3)
        self.clock.advance(0.25)
        [(announce, addr)] = self.sent()
        self.assertEqual(addr, (MDNS_GROUP4, 5353))
        self.assertTrue(announce.answer)
        self.assertEqual(len(announce.answers), len(self.responder.records))
        flushed = {r.type for r in announce.answers if r.cls & CACHE_FLUSH}
        self.assertEqual(flushed, {dns.SRV, dns.TXT, dns.A})
        self.clock.advance(0.999)
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.001)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(60)
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.responder.state, "running")

    def test_noAnswersWhileProbing(self) -> None:
        """
        Before the name is ours, queries for it get no answer.
        """
        self.responder.probe("alpha")
        self.clock.advance(0.125)
        self.sent()
        self.receive(query(("alpha._http._tcp.local", dns.SRV)))
        self.assertEqual(self.sent(), [])


class ConflictTests(ResponderTestCase):
    """
    Conflicts while probing and after (RFC 6762 sections 8.1, 8.2 and 9).
    """

    def answer(self, name: str, payload: Any, kind: int) -> bytes:
        """
        A response from another host with one record.
        """
        message = dns.Message(answer=1, auth=1)
        message.answers = [dns.RRHeader(name, kind, dns.IN | CACHE_FLUSH, 120, payload)]
        return message.toStr()

    def test_conflictWhileProbing(self) -> None:
        """
        An answer with other data for one of our names during probing is a
        conflict: the responder hands it on (here: renames to "alpha (2)"),
        which probes again from the start under the new name.
        """
        self.responder.probe("alpha")
        self.clock.advance(0.125)
        self.sent()
        other = dns.Record_SRV(0, 0, 9999, "zc.local")
        self.receive(self.answer("alpha._netservices._tcp.local", other, dns.SRV))
        self.assertEqual((self.conflicts, self.stats.conflicts), (["alpha"], 1))
        self.assertEqual(self.responder.name, "alpha (2)")
        self.clock.advance(0.125)
        [(probe, _)] = self.sent()
        self.assertIn("alpha (2)._netservices._tcp.local", {q.name.name.decode() for q in probe.queries})

    def test_sameDataIsNoConflict(self) -> None:
        """
        Our own records heard back (multicast loopback) are no conflict.
        """
        self.claim()
        own = next(r for r in self.responder.records if r.header.type == dns.SRV)
        self.receive(self.answer(own.name, own.header.payload, dns.SRV))
        self.assertEqual((self.conflicts, self.responder.state), ([], "running"))

    def test_conflictAfterProbing(self) -> None:
        """
        A response with another address for our host name after probing
        makes us probe again under a new name.
        """
        self.claim()
        self.receive(self.answer("alpha.local", dns.Record_A("198.18.0.9"), dns.A))
        self.assertEqual(self.conflicts, ["alpha"])
        self.assertEqual(self.responder.state, "probing")

    def test_simultaneousProbeTiebreak(self) -> None:
        """
        A probe from another host for our name whose records sort later
        wins: we probe again a second later.  Our own probe heard back
        changes nothing.
        """
        self.responder.probe("alpha")
        self.clock.advance(0.125)
        [(ours, _)] = self.sent()
        self.receive(ours.toStr())
        self.clock.advance(0.25)
        self.assertEqual(len(self.sent()), 1)  # the second probe, on time
        theirs = dns.Message()
        theirs.queries = [dns.Query("alpha.local", dns.ALL_RECORDS, dns.IN)]
        theirs.authority = [dns.RRHeader("alpha.local", dns.A, dns.IN, 120, dns.Record_A("198.18.0.200"))]
        self.receive(theirs.toStr())
        self.clock.advance(0.999)
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.001)
        [(again, _)] = self.sent()
        self.assertTrue(all(q.cls & CACHE_FLUSH for q in again.queries))  # probing from the first


class AnswerTests(ResponderTestCase):
    """
    Answering queries (RFC 6762 sections 5, 6 and 7).
    """

    def setUp(self) -> None:
        super().setUp()
        self.claim()

    def test_multicastAnswerWithAdditional(self) -> None:
        """
        A PTR query is answered by multicast after 20 to 120 ms, with the
        instance's SRV, TXT and A records as additional records.
        """
        self.receive(query(("_http._tcp.local", dns.PTR)))
        self.clock.advance(0.069)
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.001)
        [(reply, addr)] = self.sent()
        self.assertEqual(addr, (MDNS_GROUP4, 5353))
        self.assertEqual(
            [(r.name.name, r.payload.name.name) for r in reply.answers],
            [(b"_http._tcp.local", b"alpha._http._tcp.local")],
        )
        # The host has no IPv6 address: its NSEC says so (RFC 6762 6.1).
        self.assertEqual(sorted(r.type for r in reply.additional), [dns.A, dns.TXT, dns.SRV, NSEC])
        self.assertEqual(self.stats.queries, 1)

    def test_uniqueAnsweredAtOnce(self) -> None:
        """
        A query for unique records only (SRV) is answered at once.
        """
        self.receive(query(("alpha._http._tcp.local", dns.SRV)))
        [(reply, _)] = self.sent()
        self.assertEqual(reply.answers[0].payload.port, 7080)

    def test_unicastWhenQU(self) -> None:
        """
        A query whose questions all have the QU bit is answered by unicast
        to its source.
        """
        self.receive(query(("alpha.local", dns.A), qu=True))
        [(reply, addr)] = self.sent()
        self.assertEqual(addr, QUERIER)
        self.assertEqual(reply.answers[0].payload.dottedQuad(), "198.18.0.1")

    def test_legacyUnicast(self) -> None:
        """
        A query from a port other than 5353 (53 too) gets a unicast reply to
        that port with the query's id and question, TTLs of at most 10 s and no
        cache-flush bits.
        """
        self.receive(query(("alpha._http._tcp.local", dns.SRV), id=4242), ("198.18.0.2", 40000))
        [(reply, addr)] = self.sent()
        self.assertEqual(addr, ("198.18.0.2", 40000))
        self.receive(query(("alpha._http._tcp.local", dns.TXT), id=7), ("198.18.0.2", 53))
        [(dnsPort, addr53)] = self.sent()
        self.assertEqual((dnsPort.id, addr53), (7, ("198.18.0.2", 53)))
        self.assertEqual(reply.id, 4242)
        self.assertEqual(reply.queries[0].name.name, b"alpha._http._tcp.local")
        self.assertTrue(reply.answers)
        for record in reply.answers + reply.additional:
            self.assertLessEqual(record.ttl, 10)
            self.assertFalse(record.cls & CACHE_FLUSH)

    def test_knownAnswerSuppression(self) -> None:
        """
        A PTR the querier lists with at least half its TTL left is not sent
        (and counted); with less than half left, it is.
        """
        ptr = next(r for r in self.responder.records if r.name == "_http._tcp.local")
        fresh = dns.RRHeader(ptr.header.name.name, dns.PTR, dns.IN, 2250, ptr.header.payload)
        self.receive(query(("_http._tcp.local", dns.PTR), known=(fresh,)))
        self.clock.advance(0.2)
        self.assertEqual((self.sent(), self.stats.suppressed), ([], 1))
        stale = dns.RRHeader(ptr.header.name.name, dns.PTR, dns.IN, 2249, ptr.header.payload)
        self.receive(query(("_http._tcp.local", dns.PTR), known=(stale,)))
        self.clock.advance(0.2)
        self.assertEqual(len(self.sent()), 1)

    def test_oneMulticastPerRecordPerSecond(self) -> None:
        """
        A record multicast less than a second ago is not multicast again
        (and the refusal counted); a second later it is.
        """
        question = ("alpha._http._tcp.local", dns.SRV)
        self.receive(query(question))
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(0.999)
        self.receive(query(question))
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.stats.rateLimited, 1)
        self.clock.advance(0.001)
        self.receive(query(question))
        self.assertEqual(len(self.sent()), 1)

    def test_sourceRateLimited(self) -> None:
        """
        Replies to one source are rate limited: past its burst, a source's
        unicast queries go unanswered, while another source is answered.
        """
        self.responder.limiter = SourceLimiter(self.clock, 1.0, 3, 1000.0)
        for _ in range(5):
            self.receive(query(("alpha.local", dns.A), qu=True))
        self.assertEqual(len(self.sent()), 3)
        self.assertEqual(self.stats.rateLimited, 2)
        self.receive(query(("alpha.local", dns.A), qu=True), ("198.18.0.3", 5353))
        self.assertEqual(len(self.sent()), 1)

    def test_offLinkIgnored(self) -> None:
        """
        A query from a source address that is not on the link is ignored
        and counted (RFC 6762 section 11); so is an IPv6 link-local source
        on an IPv4 link.
        """
        self.receive(query(("alpha.local", dns.A), qu=True), ("203.0.113.5", 5353))
        self.receive(query(("alpha.local", dns.A), qu=True), ("fe80::1", 5353))
        self.assertEqual((self.sent(), self.stats.offLink), ([], 2))

    def test_malformedCountedAndDropped(self) -> None:
        """
        Packets that are not DNS messages (truncated, garbage, larger than
        9000 bytes) are counted and dropped; the responder answers after.
        """
        good = query(("alpha.local", dns.A), qu=True)
        for packet in (good[:7], b"\xff" * 40, good + b"\x00" * 9000, b""):
            self.receive(packet)
        self.assertEqual((self.sent(), self.stats.malformed), ([], 4))
        self.receive(good)
        self.assertEqual(len(self.sent()), 1)

    def test_repliesFitTheMTU(self) -> None:
        """
        On a link whose MTU leaves room for few records, a reply with many
        is split so that no packet is larger than the MTU allows (the IP
        and UDP headers deducted), and every answer is in one of them.
        """
        many = [Offer(f"_s{n}._tcp", 1000 + n, ("198.18.0.1",), ("x" * 200,)) for n in range(20)]
        small = Link("eth0", 4, ("198.18.0.0/24",), 576)
        self.responder = self.make(small, many)
        self.claim()
        self.receive(query(*[(f"alpha._s{n}._tcp.local", dns.TXT) for n in range(20)]))
        written = self.transport.written
        self.assertGreater(len(written), 1)
        self.assertTrue(all(len(packet) <= 576 - 28 for packet, _ in written))
        answered = [r.name.name for packet, _ in written for r in parse(packet).answers]
        self.assertEqual(sorted(answered), sorted(f"alpha._s{n}._tcp.local".encode() for n in range(20)))


class NegativeAnswerTests(ResponderTestCase):
    """
    NSEC records (RFC 6762 section 6.1): a type that one of our unique
    names does not have is denied at once, and an answer with a host's
    addresses of one family says there are none of the other.
    """

    def setUp(self) -> None:
        super().setUp()
        self.claim()

    def nsec(self, record: dns.RRHeader) -> tuple[bytes, set[int]]:
        """
        The next name and the types of the NSEC C{record}, as another
        implementation (python-zeroconf) reads them from our packet.
        """
        self.assertEqual(record.type, NSEC)
        if DNSIncoming is None:
            raise SkipTest("python-zeroconf is not installed")
        message = dns.Message()
        message.answers = [record]
        [parsed] = DNSIncoming(message.toStr()).answers()
        self.assertIsInstance(parsed, DNSNsec)
        return parsed.next_name, set(parsed.rdtypes)

    def test_missingTypeDenied(self) -> None:
        """
        An AAAA query for our host, which has only an IPv4 address, is
        answered at once with the host's NSEC: its own name next, the A type
        in its bitmap, the host records' TTL, the cache-flush bit.
        """
        self.receive(query(("alpha.local", dns.AAAA)))
        [(reply, addr)] = self.sent()
        self.assertEqual(addr, (MDNS_GROUP4, 5353))
        [record] = reply.answers
        self.assertEqual((record.name.name, record.ttl), (b"alpha.local", 120))
        self.assertTrue(record.cls & CACHE_FLUSH)
        self.assertEqual(self.nsec(record), ("alpha.local.", {dns.A}))
        self.assertEqual(self.stats.queries, 1)

    def test_instanceTypesListed(self) -> None:
        """
        The instance name's NSEC lists its SRV and TXT.
        """
        self.receive(query(("alpha._http._tcp.local", dns.A)))
        [(reply, _)] = self.sent()
        [record] = reply.answers
        self.assertEqual(self.nsec(record), ("alpha._http._tcp.local.", {dns.SRV, dns.TXT}))

    def test_notOurNameUnanswered(self) -> None:
        """
        A name we do not own, or a shared name (a PTR's), gets no NSEC: other
        responders may have what was asked.
        """
        self.receive(query(("beta.local", dns.AAAA), ("_http._tcp.local", dns.SRV)))
        self.clock.advance(1)
        self.assertEqual((self.sent(), self.stats.queries), ([], 0))

    def test_deniedInAdditional(self) -> None:
        """
        An A query's answer carries the host's NSEC in the additional
        section, saying it has no AAAA.
        """
        self.receive(query(("alpha.local", dns.A)))
        [(reply, _)] = self.sent()
        self.assertEqual([r.type for r in reply.answers], [dns.A])
        [record] = reply.additional
        self.assertEqual(self.nsec(record), ("alpha.local.", {dns.A}))

    def test_bothFamiliesNoNSEC(self) -> None:
        """
        A host with addresses of both families is not denied anything in
        the additional section.
        """
        self.transport.written = []
        self.responder.stopProtocol()
        both = [Offer("_echo._tcp", 7007, ("198.18.0.1", "2001:db8::1"))]
        self.responder = self.make(LINK, both)
        self.claim()
        self.receive(query(("alpha.local", dns.A)))
        [(reply, _)] = self.sent()
        self.assertEqual([r.type for r in reply.additional], [])
        self.receive(query(("alpha.local", dns.HINFO)))
        [(reply, _)] = self.sent()
        self.assertEqual(self.nsec(reply.answers[0])[1], {dns.A, dns.AAAA})

    def test_knownNSECSuppressed(self) -> None:
        """
        An NSEC the querier already holds with at least half its TTL left is
        not sent again.
        """
        self.receive(query(("alpha.local", dns.AAAA)))
        [(reply, _)] = self.sent()
        known = reply.answers[0]
        held = dns.RRHeader(known.name.name, NSEC, dns.IN, 60, known.payload)
        self.receive(query(("alpha.local", dns.AAAA), known=(held,)))
        self.clock.advance(1)
        self.assertEqual((self.sent(), self.stats.suppressed), ([], 1))


class GoodbyeTests(ResponderTestCase):
    """
    Goodbyes (RFC 6762 section 10.1).
    """

    def test_goodbye(self) -> None:
        """
        Stopping after the announces sends every record with TTL 0, and
        nothing is sent or answered after.
        """
        self.claim()
        self.responder.goodbye()
        [(bye, addr)] = self.sent()
        self.assertEqual(addr, (MDNS_GROUP4, 5353))
        self.assertEqual(len(bye.answers), len(self.responder.records))
        self.assertEqual({r.ttl for r in bye.answers}, {0})
        self.receive(query(("alpha.local", dns.A), qu=True))
        self.clock.advance(10)
        self.assertEqual(self.sent(), [])

    def test_noGoodbyeBeforeAnnouncing(self) -> None:
        """
        A responder stopped while probing says no goodbye: it announced
        nothing.
        """
        self.responder.probe("alpha")
        self.clock.advance(0.125)
        self.sent()
        self.responder.goodbye()
        self.clock.advance(10)
        self.assertEqual(self.sent(), [])
