# -*- test-case-name: tests.unit.discovery.test_mdns_responder -*-
"""
A multicast DNS responder (RFC 6762) for the records of one instance on
one link: probing and conflict resolution, announcing, answering queries,
goodbyes.

What it does, by section of RFC 6762:
  - 8.1 probing: three probes 250 ms apart after a random delay of up to
    250 ms (the first asks for a unicast reply, QU); an answer for one of
    our unique names with other data is a conflict, and the instance is
    renamed (C{"alpha"} becomes C{"alpha (2)"}) and probes again; after 15
    conflicts in 10 s it waits 5 s first.
  - 8.2 simultaneous probes: the lexicographically later records win; the
    loser probes again after a second.
  - 8.3 announcing: every record twice, a second apart.
  - 6 answering: unique records at once, shared ones after 20 to 120 ms
    (so that answers from several responders aggregate); unicast to the
    querier when every question has the QU bit; at most one multicast of a
    record per second (a quarter of a second for probe defence).
  - 6.1 negative responses: a type that one of our unique names lacks is
    answered with the name's NSEC, and an answer with a host's addresses
    of one family only adds the NSEC that denies the other.
  - 7.1 known-answer suppression: a record the querier lists with at least
    half its TTL left is not sent.
  - 6.7 legacy unicast: a query from a port other than 5353 gets a unicast
    reply with its id and questions, TTLs of at most 10 s, no cache-flush
    bits, truncated (TC) to one packet.
  - 9 conflicts after probing: a response with other data for a unique
    name of ours starts probing again under a new name.
  - 10.1 goodbye: every record with TTL 0 when stopped.
  - 11 source address check: packets from a source that is not on the
    link are ignored.

Packets are never larger than the link's MTU allows (the IP and UDP
headers deducted): answers are split over several packets, additional
records left out where they do not fit (see
L{services.discovery._mdnslink.packets}).  Replies to one source are rate
limited by a L{SourceLimiter}.  Packets that do not parse are counted and
dropped.

Why one module: what is left here is one responder's state machine
(idle, probing, announcing, running, stopped) and the timers between its
states, which every section above reads and changes; which records answer
what, and how they are cut into packets, are decided from the records
alone in L{services.discovery._mdnsrecords} and
L{services.discovery._mdnslink}.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.names import dns

from services import logs
from services.net.datagram import SourceLimiter
from services.discovery._mdnslink import DECODE_ERRORS, MAX_PACKET, MDNS_PORT, Link, packets
from services.discovery._mdnsrecords import (
    CACHE_FLUSH,
    Record,
    additionalFor,
    conflictsWith,
    matching,
    sortKey,
)
from services.stats import MDNSStats

__all__ = ["MDNSResponder"]

#: Legacy unicast replies carry TTLs of at most this (section 6.7).
LEGACY_TTL = 10
PROBE_INTERVAL = 0.25
PROBES = 3
#: Conflicts in this many seconds that make probing pause.
CONFLICT_WINDOW = 10.0
CONFLICT_LIMIT = 15
CONFLICT_PAUSE = 5.0


class MDNSResponder(DatagramProtocol):
    """
    Answers for one instance's records on one link.

    @ivar name: the instance name now (after renames).
    @ivar state: C{"idle"}, C{"probing"}, C{"announcing"} (probed: it
        answers), C{"running"} or C{"stopped"}.
    @ivar records: the records of C{name}.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        reactor: IReactorTime,
        link: Link,
        recordsFor: Callable[[str], Sequence[Record]],
        stats: MDNSStats,
        limiter: SourceLimiter,
        onConflict: Callable[[MDNSResponder], None] | None = None,
        onNamed: Callable[[MDNSResponder], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.reactor = reactor
        self.link = link
        self.recordsFor = recordsFor
        self.stats = stats
        self.limiter = limiter
        self.onConflict = onConflict
        self.onNamed = onNamed
        self.random = rng or random.Random()
        self.name = ""
        self.state = "idle"
        self.records: list[Record] = []
        self._timer: IDelayedCall | None = None
        self._lastMulticast: dict[tuple[str, int, bytes], float] = {}
        self._pending: list[Record] = []
        self._pendingCall: IDelayedCall | None = None
        self._conflictTimes: list[float] = []

    def logPrefix(self) -> str:
        """
        Log as C{mdns}.
        """
        return "mdns"

    # Probing and announcing.

    def probe(self, name: str) -> None:
        """
        Claim C{name}: send goodbyes for the records of the old name if they
        were announced, then probe for the new one.
        """
        if self.state in ("announcing", "running") and name != self.name:
            self.goodbye()
        self._cancel()
        self.name = name
        self.records = list(self.recordsFor(name))
        self.state = "probing"
        now = self.reactor.seconds()
        self._conflictTimes = [t for t in self._conflictTimes if now - t < CONFLICT_WINDOW]
        delay = self.random.uniform(0, PROBE_INTERVAL)
        if len(self._conflictTimes) >= CONFLICT_LIMIT:
            delay += CONFLICT_PAUSE
        self._timer = self.reactor.callLater(delay, self._sendProbe, 1)

    def _unique(self) -> list[Record]:
        return [r for r in self.records if r.unique]

    def _sendProbe(self, number: int) -> None:
        self._timer = None
        # Twisted cuts what it encodes at maxSize (512 by default) and sets
        # TC: the sizes here are ours to decide.
        message = dns.Message(maxSize=65535)
        names: list[str] = []
        for record in self._unique():
            if record.name not in names:
                names.append(record.name)
        qu = CACHE_FLUSH if number == 1 else 0
        message.queries = [dns.Query(n.encode(), dns.ALL_RECORDS, dns.IN | qu) for n in names]
        message.authority = [r.withTTL(r.header.ttl, flush=False) for r in self._unique()]
        self._write(message.toStr(), self.link.group)
        if number < PROBES:
            self._timer = self.reactor.callLater(PROBE_INTERVAL, self._sendProbe, number + 1)
        else:
            self._timer = self.reactor.callLater(PROBE_INTERVAL, self._won)

    def _won(self) -> None:
        self._timer = None
        self.state = "announcing"
        self._log.info(
            "mdns: {name} is ours on {link}, announcing", name=self.name, link=str(self.link)
        )
        if self.onNamed is not None:
            self.onNamed(self)
        self._announce(1)

    def _announce(self, number: int) -> None:
        self._timer = None
        self._multicast(self.records, additional=False)
        if number < 2:
            self._timer = self.reactor.callLater(1.0, self._announce, number + 1)
        else:
            self.state = "running"

    def goodbye(self) -> None:
        """
        Send every record with TTL 0 (if they were announced) and stop
        answering.
        """
        self._cancel()
        if self.state in ("announcing", "running"):
            answers = [r.withTTL(0) for r in self.records]
            for packet in self._packets(answers, []):
                self._write(packet, self.link.group)
        self.state = "stopped"

    def _cancel(self) -> None:
        for call in (self._timer, self._pendingCall):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._pendingCall = None
        self._pending = []

    def stopProtocol(self) -> None:
        """
        Cancel what is scheduled (goodbyes are sent by L{goodbye} before the
        port closes).
        """
        self._cancel()

    def _conflict(self, why: str) -> None:
        self.stats.conflicts += 1
        self._conflictTimes.append(self.reactor.seconds())
        self._log.info(
            "mdns: {name} is taken on {link} ({why})", name=self.name, link=str(self.link), why=why
        )
        self._cancel()
        # Claimed by another: nothing of ours to say goodbye to.
        self.state = "idle"
        if self.onConflict is not None:
            self.onConflict(self)

    # Receiving.

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Handle one packet: drop it if off-link or malformed, else treat it
        as a response (conflicts) or a query (answers).
        """
        self.stats.received += 1
        host, port = str(addr[0]), int(addr[1])
        if not self.link.onLink(host):
            self.stats.offLink += 1
            return
        message = dns.Message()
        try:
            if len(datagram) > MAX_PACKET:
                raise ValueError("larger than 9000 bytes")
            message.fromStr(datagram)
        except DECODE_ERRORS:
            self.stats.malformed += 1
            return
        if message.opCode != dns.OP_QUERY:
            # RFC 6762 section 18.3: other opcodes are ignored.
            self.stats.malformed += 1
            return
        try:
            if message.answer:
                self._response(message)
            else:
                self._query(message, (host, port))
        except Exception:  # noqa: BLE001 -- a bad packet is counted, never stops the responder
            self.stats.errors += 1
            self._log.failure("mdns: handling a packet from {source}", source=host)

    def _response(self, message: dns.Message) -> None:
        if self.state not in ("probing", "announcing", "running"):
            return
        probing = self.state == "probing"
        for record in message.answers + message.additional:
            if conflictsWith(self.records, record, probing):
                self._conflict(f"{record.name.name.decode('utf-8', 'replace')} answered")
                return

    def _query(self, message: dns.Message, source: tuple[str, int]) -> None:
        if self.state == "probing" and message.authority:
            self._tiebreak(message)
            return
        if self.state not in ("announcing", "running"):
            return
        known: dict[tuple[str, int, bytes], int] = {}
        for answer in message.answers:
            key = Record(answer, False).key
            known[key] = max(known.get(key, 0), answer.ttl)
        answers: list[Record] = []
        unicast = bool(message.queries)
        for query in message.queries:
            unicast = unicast and bool(query.cls & CACHE_FLUSH)
            for record in matching(self.records, query):
                if known.get(record.key, -1) >= record.header.ttl / 2:
                    self.stats.suppressed += 1
                elif record not in answers:
                    answers.append(record)
        if not answers:
            return
        if not self.limiter.allow(source[0]):
            self.stats.rateLimited += 1
            return
        self.stats.queries += 1
        if source[1] != MDNS_PORT:
            self._legacy(message, answers, source)
        elif unicast:
            self._unicast(answers, source)
        else:
            self._schedule(answers, probe=bool(message.authority))

    def _tiebreak(self, message: dns.Message) -> None:
        names = {r.name for r in self._unique()}
        theirs = sorted(
            (sortKey(r) for r in message.authority
             if r.name.name.decode("utf-8", "replace").lower().rstrip(".") in names),
        )  # fmt: skip
        if not theirs:
            return
        ours = sorted(sortKey(r.header) for r in self._unique() if r.name in names)
        if theirs == ours:
            return  # our own probe, heard back
        if ours < theirs:
            self._log.info(
                "mdns: another host probes for {name} on {link} with later data; probing again",
                name=self.name,
                link=str(self.link),
            )
            self._cancel()
            self._timer = self.reactor.callLater(1.0, self._sendProbe, 1)

    # Sending.

    def _packets(
        self, answers: Sequence[dns.RRHeader], additional: Sequence[dns.RRHeader],
        id: int = 0, queries: Sequence[dns.Query] = (), legacy: bool = False,
    ) -> list[bytes]:  # fmt: skip
        found, dropped = packets(self.link.maxSize, answers, additional, id, queries, legacy)
        self.stats.tooLarge += dropped
        return found

    def _write(self, packet: bytes, address: tuple[str, int]) -> None:
        if self.transport is None:
            return
        try:
            self.transport.write(packet, address)
        except OSError as e:
            self.stats.sendErrors += 1
            self._log.warn(
                "mdns: cannot send to {address} on {link}: {reason}",
                address=address[0],
                link=str(self.link),
                reason=e.strerror or e,
            )
            return
        self.stats.packetsSent += 1

    def _legacy(
        self, message: dns.Message, answers: Sequence[Record], source: tuple[str, int]
    ) -> None:
        more = additionalFor(self.records, answers)
        headers = [r.withTTL(min(r.header.ttl, LEGACY_TTL), flush=False) for r in answers]
        extra = [r.withTTL(min(r.header.ttl, LEGACY_TTL), flush=False) for r in more]
        for packet in self._packets(headers, extra, message.id, message.queries, legacy=True):
            self._write(packet, source)

    def _unicast(self, answers: Sequence[Record], source: tuple[str, int]) -> None:
        headers = [r.withTTL(r.header.ttl) for r in answers]
        extra = [r.withTTL(r.header.ttl) for r in additionalFor(self.records, answers)]
        for packet in self._packets(headers, extra):
            self._write(packet, source)

    def _schedule(self, answers: Sequence[Record], probe: bool) -> None:
        now = self.reactor.seconds()
        spacing = PROBE_INTERVAL if probe else 1.0
        fresh = []
        for record in answers:
            last = self._lastMulticast.get(record.key)
            if last is not None and now - last < spacing:
                self.stats.rateLimited += 1
            elif record not in self._pending:
                fresh.append(record)
        if not fresh:
            return
        self._pending.extend(fresh)
        if all(r.unique for r in fresh) and self._pendingCall is None:
            self._flush()
        elif self._pendingCall is None:
            self._pendingCall = self.reactor.callLater(self.random.uniform(0.02, 0.12), self._flush)

    def _flush(self) -> None:
        self._pendingCall = None
        pending, self._pending = self._pending, []
        self._multicast(pending, additional=True)

    def _multicast(self, records: Sequence[Record], additional: bool) -> None:
        now = self.reactor.seconds()
        extra = additionalFor(self.records, records) if additional else []
        for record in list(records) + extra:
            self._lastMulticast[record.key] = now
        headers = [r.withTTL(r.header.ttl) for r in records]
        for packet in self._packets(headers, [r.withTTL(r.header.ttl) for r in extra]):
            self._write(packet, self.link.group)
