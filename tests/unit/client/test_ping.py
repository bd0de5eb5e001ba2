"""
Tests of L{services.client.Pinger} and L{services.client.ping} on a fake
ICMP socket and a Clock.
"""

from __future__ import annotations

import errno
import socket

from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from services.client import Pinger, PingOptions, PingResult, PingUnavailable, Reply, ping
from services.client._icmp import decodeEcho, encodeEcho
from services.client._pingsocket import openICMPSocket
from services.client._pingstats import MAX_KEPT_REPLIES
from tests.pingfakes import FakeSocketFactory, replyTo, ttlAncillary, withIPv4Header


def started(
    options: PingOptions,
    family: int = socket.AF_INET,
    refuse: tuple[int, ...] = (),
    address: str = "127.0.0.1",
) -> tuple[Pinger, MemoryReactorClock, list[PingResult], list[Reply]]:
    """
    A L{Pinger} started on a fake socket and a memory reactor, the results
    and replies it reports.
    """
    reactor = MemoryReactorClock()
    replies: list[Reply] = []
    pinger = Pinger(reactor, address, family, options, onReply=replies.append,
                    socketFactory=FakeSocketFactory(refuse))
    results: list[PingResult] = []
    pinger.start().addCallback(results.append)
    return pinger, reactor, results, replies


def answer(pinger: Pinger, index: int = -1, ttl: int = 64, source: str | None = None) -> None:
    """
    Queue the reply to the C{index}th request sent, as the socket's kind
    would hand it over, and let the pinger read it.
    """
    skt = pinger._socket
    packet, _ = skt.sent[index]
    message = replyTo(packet, pinger.family)
    source = source or pinger.address
    if pinger.socketKind == "raw" and pinger.family == socket.AF_INET:
        skt.incoming.append((withIPv4Header(message, ttl), [], 0, (source, 0)))
    else:
        skt.incoming.append((message, ttlAncillary(ttl, pinger.family), 0, (source, 0)))
    pinger.doRead()


class SocketChoiceTests(SynchronousTestCase):
    """
    The datagram socket first, the raw socket next, else a clear error.
    """

    def test_dgramFirst(self) -> None:
        """
        When ICMP datagram sockets are allowed, one is used.
        """
        factory = FakeSocketFactory()
        skt, kind = openICMPSocket(socket.AF_INET, socketFactory=factory)
        self.assertEqual((kind, skt.type, skt.proto), ("dgram", socket.SOCK_DGRAM, socket.IPPROTO_ICMP))

    def test_rawNext(self) -> None:
        """
        When they are not, a raw socket of getprotobyname's ICMP protocol
        is used.
        """
        factory = FakeSocketFactory(refuse=(socket.SOCK_DGRAM,))
        skt, kind = openICMPSocket(socket.AF_INET6, socketFactory=factory)
        self.assertEqual((kind, skt.type, skt.proto), ("raw", socket.SOCK_RAW, 58))

    def test_neither(self) -> None:
        """
        When neither is allowed, the error names the sysctl and the
        capability that would allow one.
        """
        factory = FakeSocketFactory(refuse=(socket.SOCK_DGRAM, socket.SOCK_RAW))
        e = self.assertRaises(PingUnavailable, openICMPSocket, socket.AF_INET, "auto", factory)
        self.assertIn("net.ipv4.ping_group_range", str(e))
        self.assertIn("CAP_NET_RAW", str(e))

    def test_forced(self) -> None:
        """
        A forced kind is the only one tried, and its error names only what
        enables it.
        """
        factory = FakeSocketFactory(refuse=(socket.SOCK_RAW,))
        e = self.assertRaises(PingUnavailable, openICMPSocket, socket.AF_INET, "raw", factory)
        self.assertNotIn("ping_group_range", str(e))
        self.assertEqual(factory.opened, [])
        _, kind = openICMPSocket(socket.AF_INET, "dgram", factory)
        self.assertEqual(kind, "dgram")

    def test_otherErrors(self) -> None:
        """
        An error other than a permission (no IPv6 in the kernel) is raised
        as it is.
        """

        def noIPv6(*args: object) -> None:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported")

        e = self.assertRaises(OSError, openICMPSocket, socket.AF_INET6, "auto", noIPv6)
        self.assertEqual(e.errno, errno.EAFNOSUPPORT)


class PingerTests(SynchronousTestCase):
    """
    Requests on a timer, replies matched and measured.
    """

    def test_readDescriptor(self) -> None:
        """
        The pinger is the reactor's reader of its socket.
        """
        pinger, reactor, _, _ = started(PingOptions(count=1))
        verifyObject(IReadDescriptor, pinger)
        self.assertIn(pinger, reactor.getReaders())

    def test_requests(self) -> None:
        """
        Requests go out every C{interval} seconds with sequence numbers from
        1, the kernel's identifier on a datagram socket, and the payload
        C{size} long.
        """
        pinger, reactor, _, _ = started(PingOptions(count=3, interval=0.5, size=20))
        skt = pinger._socket
        self.assertEqual(len(skt.sent), 1)
        reactor.advance(0.5)
        reactor.advance(0.5)
        reactor.advance(0.5)
        self.assertEqual(len(skt.sent), 3)
        echoes = [decodeEcho(socket.AF_INET, p) for p, _ in skt.sent]
        self.assertEqual([e.sequence for e in echoes], [1, 2, 3])
        self.assertEqual({e.identifier for e in echoes}, {skt.port})
        self.assertEqual({len(e.payload) for e in echoes}, {20})
        self.assertEqual({a for _, a in skt.sent}, {("127.0.0.1", 0)})

    def test_options(self) -> None:
        """
        C{ttl} sets the TTL of requests, and the TTL of replies is asked
        for.
        """
        pinger, _, _, _ = started(PingOptions(count=1, ttl=3))
        options = pinger._socket.options
        self.assertIn((socket.IPPROTO_IP, socket.IP_TTL, 3), options)
        self.assertIn((socket.IPPROTO_IP, 12, 1), options)

    def test_roundTrips(self) -> None:
        """
        Each reply is measured on the clock and the run ends, with every
        result, when the last request is answered.
        """
        pinger, reactor, results, replies = started(PingOptions(count=2, interval=1))
        reactor.advance(0.25)
        answer(pinger, ttl=61)
        reactor.advance(0.75)
        reactor.advance(0.5)
        self.assertEqual(results, [])
        answer(pinger)
        [result] = results
        self.assertEqual([(r.sequence, r.rtt, r.ttl, r.size) for r in replies],
                         [(1, 0.25, 61, 64), (2, 0.5, 64, 64)])
        self.assertEqual((result.transmitted, result.received, result.loss), (2, 2, 0.0))
        self.assertEqual(result.elapsed, 1.5)
        self.assertEqual(result.rttSummary(), (0.25, 0.375, 0.5, 0.125))
        self.assertTrue(pinger._socket.closed)
        self.assertNotIn(pinger, reactor.getReaders())
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_timeout(self) -> None:
        """
        A request unanswered for C{timeout} seconds is lost; the run ends
        once every request is answered or waited for.
        """
        pinger, reactor, results, _ = started(PingOptions(count=2, interval=1, timeout=3))
        answer(pinger)
        reactor.advance(1)
        reactor.advance(2.9)
        self.assertEqual(results, [])
        reactor.advance(0.1)
        [result] = results
        self.assertEqual((result.transmitted, result.received, result.loss), (2, 1, 50.0))

    def test_noReply(self) -> None:
        """
        With no reply at all the loss is 100% and there is no rtt summary;
        the time reported runs to the last request, as in iputils.
        """
        _, reactor, results, _ = started(PingOptions(count=2, interval=1, timeout=2))
        reactor.advance(1)
        reactor.advance(2)
        [result] = results
        self.assertEqual((result.received, result.loss, result.rttSummary()), (0, 100.0, None))
        self.assertEqual(result.elapsed, 1.0)

    def test_duplicate(self) -> None:
        """
        A second reply to one request is a duplicate: reported, and not
        counted as received.
        """
        pinger, reactor, results, replies = started(PingOptions(count=2, interval=1))
        answer(pinger)
        answer(pinger)
        self.assertEqual([r.duplicate for r in replies], [False, True])
        reactor.advance(1)
        answer(pinger)
        [result] = results
        self.assertEqual((result.received, result.duplicates), (2, 1))

    def test_keptRepliesBounded(self) -> None:
        """
        A flood of duplicate replies keeps at most L{MAX_KEPT_REPLIES} of
        them, while the counts and round-trip statistics cover them all.
        """
        pinger, reactor, results, replies = started(PingOptions(count=None, interval=1))
        flood = MAX_KEPT_REPLIES + 10
        for _ in range(flood):
            answer(pinger)
        pinger.stop()
        [result] = results
        self.assertEqual(len(result.replies), MAX_KEPT_REPLIES)
        self.assertEqual((result.received, result.duplicates), (1, flood - 1))
        self.assertEqual(result.rtts.count, flood)
        self.assertEqual(len(replies), flood)

    def test_reordered(self) -> None:
        """
        A reply that comes after the reply to a later request is marked
        reordered.
        """
        pinger, reactor, results, replies = started(PingOptions(count=2, interval=1))
        reactor.advance(1)
        answer(pinger, 1)
        answer(pinger, 0)
        self.assertEqual([(r.sequence, r.reordered) for r in replies], [(2, False), (1, True)])
        self.assertEqual(results[0].reordered, 1)

    def test_foreign(self) -> None:
        """
        Replies for another identifier, from another address, or to a
        sequence never sent are ignored: not malformed, not received.
        """
        pinger, _reactor, results, replies = started(
            PingOptions(count=1), refuse=(socket.SOCK_DGRAM,)
        )
        skt = pinger._socket
        other = encodeEcho(socket.AF_INET, pinger.identifier ^ 1, 1, pinger.payload(1))
        unsent = encodeEcho(socket.AF_INET, pinger.identifier, 9, pinger.payload(9))
        for packet in (other, unsent):
            skt.incoming.append((withIPv4Header(replyTo(packet, socket.AF_INET)), [], 0, ("127.0.0.1", 0)))
        pinger.doRead()
        answer(pinger, source="127.0.0.2")
        self.assertEqual((replies, pinger.ignored, pinger.malformed), ([], 3, 0))
        answer(pinger)
        self.assertEqual(results[0].received, 1)

    def test_malformed(self) -> None:
        """
        Short packets, bad checksums, truncated datagrams and replies whose
        payload differs from the request's are counted and dropped; the
        reader carries on.
        """
        pinger, _reactor, results, replies = started(PingOptions(count=1, size=32))
        skt = pinger._socket
        good = replyTo(skt.sent[0][0], socket.AF_INET)
        badSum = good[:2] + bytes([good[2] ^ 1]) + good[3:]
        cut = replyTo(encodeEcho(socket.AF_INET, skt.port, 1, pinger.payload(1)[:10]), socket.AF_INET)
        changed = replyTo(
            encodeEcho(socket.AF_INET, skt.port, 1, pinger.payload(1)[:-1] + b"!"), socket.AF_INET
        )
        for data in (good[:5], badSum, cut, changed, good + bytes(200)):
            skt.incoming.append((data, [], 0, ("127.0.0.1", 0)))
        pinger.doRead()
        self.assertEqual((pinger.malformed, replies), (5, []))
        answer(pinger)
        self.assertEqual((results[0].received, results[0].malformed), (1, 5))

    def test_rawIPv4(self) -> None:
        """
        On a raw IPv4 socket the TTL comes from the IP header, and only echo
        replies are let through the socket's filter.
        """
        pinger, _, _results, replies = started(PingOptions(count=1), refuse=(socket.SOCK_DGRAM,))
        self.assertEqual(pinger.socketKind, "raw")
        self.assertIn(255, [level for level, _, _ in pinger._socket.options])
        answer(pinger, ttl=33)
        self.assertEqual(replies[0].ttl, 33)

    def test_ipv6(self) -> None:
        """
        ICMPv6 replies (type 129) are matched, with the hop limit from the
        ancillary data.
        """
        pinger, _, results, replies = started(
            PingOptions(count=1), family=socket.AF_INET6, address="::1"
        )
        answer(pinger, ttl=9)
        self.assertEqual((replies[0].address, replies[0].ttl, results[0].received), ("::1", 9, 1))

    def test_sendError(self) -> None:
        """
        A request that cannot be sent is counted as an error, and is not
        waited for.
        """
        factory = FakeSocketFactory(sendError=OSError(errno.ENETUNREACH, "Network is unreachable"))
        reactor = MemoryReactorClock()
        errors: list[tuple[int | None, OSError]] = []
        pinger = Pinger(reactor, "127.0.0.1", socket.AF_INET, PingOptions(count=1),
                        onError=lambda seq, e: errors.append((seq, e)), socketFactory=factory)
        results: list[PingResult] = []
        pinger.start().addCallback(results.append)
        self.assertEqual((results[0].transmitted, results[0].errors), (1, 1))
        self.assertEqual(errors[0][0], 1)

    def test_stop(self) -> None:
        """
        Without a count the run goes on until stopped, then fires with what
        was seen.
        """
        pinger, reactor, results, _ = started(PingOptions(interval=1))
        for _ in range(5):
            answer(pinger)
            reactor.advance(1)
        self.assertEqual(results, [])
        pinger.stop()
        self.assertEqual((results[0].transmitted, results[0].received), (6, 5))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_readBounded(self) -> None:
        """
        One read event reads a bounded number of packets; the rest wait
        for the next.
        """
        pinger, _, _, _ = started(PingOptions(count=1))
        pinger._socket.incoming.extend([(b"x", [], 0, ("127.0.0.1", 0))] * 100)
        pinger.doRead()
        self.assertEqual(pinger.malformed, 64)


class PingFunctionTests(SynchronousTestCase):
    """
    The library's one-call function.
    """

    def test_ping(self) -> None:
        """
        C{ping()} resolves an address and fires with the round-trip results.
        """
        factory = FakeSocketFactory()
        reactor = MemoryReactorClock()
        results: list[PingResult] = []
        ping(reactor, "::1", PingOptions(count=1), socketFactory=factory).addCallback(results.append)
        skt = factory.opened[0]
        skt.incoming.append((replyTo(skt.sent[0][0], socket.AF_INET6), [], 0, ("::1", 0, 0, 0)))
        reactor.getReaders()[0].doRead()
        self.assertEqual((results[0].family, results[0].received), (socket.AF_INET6, 1))

    def test_needsCount(self) -> None:
        """
        C{ping()} without a count would never fire: refused.
        """
        self.assertRaises(ValueError, ping, MemoryReactorClock(), "127.0.0.1", PingOptions())

    def test_wrongFamily(self) -> None:
        """
        An address of the other family than the one insisted on fails.
        """
        failures: list[object] = []
        ping(MemoryReactorClock(), "::1", PingOptions(count=1), family=socket.AF_INET).addErrback(
            failures.append
        )
        self.assertEqual(len(failures), 1)
        failures[0].trap(ValueError)  # type: ignore[attr-defined]
