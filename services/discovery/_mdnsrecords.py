# -*- test-case-name: tests.unit.discovery.test_mdns -*-
"""
The DNS-SD records (RFC 6763) of one netservices instance on one link, as
L{twisted.names.dns} resource records.

Each offered service type gets the shared C{PTR} of its type (and of
C{_services._dns-sd._udp.local}, so that browsers of every type find it)
and the unique C{SRV} and C{TXT} of the instance; the host names the
C{SRV} records point to get unique C{A}/C{AAAA} records with exactly the
addresses that service listens on from the link.  When every service
listens on the same addresses they share one host name, C{<label>.local};
a service whose addresses differ gets a host name of its own,
C{<label>-<type>.local}, so that no browser is sent to an address where
the service does not listen.

Which of them answer a query (L{matching}), what is added to an answer
(L{additionalFor}), and which records heard conflict with ours
(L{conflictsWith}, L{sortKey}) are decided here too, from the records
alone; the responder decides when and where they are sent.  A query for
a type that one of our unique names does not have is answered with that
name's C{NSEC} record (RFC 6762 section 6.1, L{negative}), so that the
querier learns at once that there is none instead of asking again; an
answer that carries a host's IPv4 addresses but none for IPv6 (or the
reverse) adds that C{NSEC} too.

Names are given to twisted.names as UTF-8 bytes, as DNS-SD names are
(RFC 6763 section 4.1.3): a C{str} would be IDNA-encoded.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from twisted.names import dns

__all__ = [
    "CACHE_FLUSH",
    "HOST_TTL",
    "INSTANCE_TYPE",
    "OTHER_TTL",
    "SERVICES_TYPE",
    "Offer",
    "Record",
    "additionalFor",
    "conflictsWith",
    "hostLabel",
    "instanceRecords",
    "matching",
    "negative",
    "rdata",
    "renamed",
    "sortKey",
]

#: The top bit of a record's class in mDNS: caches flush other records of
#: that name and type (RFC 6762 section 10.2).
CACHE_FLUSH = 0x8000
#: TTL of records that name a host (SRV, A, AAAA): RFC 6762 section 10.
HOST_TTL = 120
#: TTL of the others (PTR, TXT).
OTHER_TTL = 4500
#: The meta-query name that lists every service type (RFC 6763 section 9).
SERVICES_TYPE = "_services._dns-sd._udp.local"
#: The service type that stands for a whole netservices instance.
INSTANCE_TYPE = "_netservices._tcp"
_NSEC = 47

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Offer:
    """
    One service type offered on a link.

    @ivar type: the service type, C{_http._tcp}.
    @ivar port: the port it listens on.
    @ivar addresses: the addresses it listens on from the link.
    @ivar txt: the strings of its TXT record (empty: a TXT record of one
        empty string, as RFC 6763 section 6.1 asks).
    """

    type: str
    port: int
    addresses: tuple[str, ...]
    txt: tuple[str, ...] = ()


@dataclass(frozen=True)
class Record:
    """
    One resource record we answer for.

    @ivar header: the record, with its TTL (and no cache-flush bit).
    @ivar unique: whether the name is ours alone (probed, announced with the
        cache-flush bit), as opposed to a shared PTR.
    """

    header: dns.RRHeader
    unique: bool

    @property
    def key(self) -> tuple[str, int, bytes]:
        """
        What identifies it: lowercase name, type and data.
        """
        return (self.name, self.header.type, rdata(self.header.payload))

    @property
    def name(self) -> str:
        """
        Its owner name, lowercase, without the final dot.
        """
        return self.header.name.name.decode("utf-8", "replace").lower().rstrip(".")

    def withTTL(self, ttl: int, flush: bool | None = None) -> dns.RRHeader:
        """
        A copy of the header with C{ttl}, and the cache-flush bit if C{flush}
        (the default: if the record is unique).
        """
        flush = self.unique if flush is None else flush
        cls = self.header.cls | (CACHE_FLUSH if flush else 0)
        return dns.RRHeader(self.header.name.name, self.header.type, cls, ttl, self.header.payload)


def rdata(payload: object) -> bytes:
    """
    The uncompressed wire form of a record's data, for comparisons that
    must ignore TTLs and name compression.
    """
    out = BytesIO()
    payload.encode(out, None)  # type: ignore[attr-defined]
    return out.getvalue()


def matching(records: Sequence[Record], query: dns.Query) -> list[Record]:
    """
    The records among C{records} that answer C{query}: its name, its type
    (or any for C{ALL_RECORDS}), class IN or ANY; for a unique name of ours
    that has no record of the type asked, its C{NSEC} (L{negative}).
    """
    name = query.name.name.decode("utf-8", "replace").lower().rstrip(".")
    cls = query.cls & ~CACHE_FLUSH
    if cls not in (dns.IN, dns.ANY):
        return []
    found = [
        r for r in records
        if r.name == name and query.type in (r.header.type, dns.ALL_RECORDS)
    ]  # fmt: skip
    if found or query.type == dns.ALL_RECORDS:
        return found
    nsec = negative(records, name)
    return [] if nsec is None else [nsec]


def negative(records: Sequence[Record], name: str) -> Record | None:
    """
    The C{NSEC} record of the unique name C{name} (lowercase, no final
    dot) among C{records}, in the restricted form of RFC 6762 section 6.1:
    its next name is its own name, uncompressed, and its type bitmap (one
    window, types below 256) lists the types the name has.  Its TTL is the
    shortest of those records' (what a record of another type would have
    had).  L{None} if C{name} is not a unique name of ours.
    """
    mine = [r for r in records if r.unique and r.name == name]
    if not mine:
        return None
    types = {r.header.type for r in mine}
    bitmap = bytearray(max(types) // 8 + 1)
    for kind in types:
        bitmap[kind // 8] |= 0x80 >> (kind % 8)
    owner = mine[0].header.name.name
    out = BytesIO()
    dns.Name(owner).encode(out, None)
    out.write(bytes([0, len(bitmap)]) + bitmap)
    ttl = min(r.header.ttl for r in mine)
    payload = dns.UnknownRecord(out.getvalue(), ttl)
    return Record(dns.RRHeader(owner, _NSEC, dns.IN, ttl, payload), True)


def additionalFor(records: Sequence[Record], answers: Sequence[Record]) -> list[Record]:
    """
    What RFC 6763 section 12 asks to add to C{answers}, from C{records}:
    for a PTR, the SRV and TXT of the instance; for an SRV, the addresses
    of its host.  Where the addresses sent for a host are all of one family
    (it has C{A} records but no C{AAAA}, or the reverse), the host's
    C{NSEC} is added too (RFC 6762 section 6.1), so that a resolver does
    not wait for an answer that will not come.
    """
    wanted: list[str] = []
    for record in answers:
        payload = record.header.payload
        if record.header.type == dns.PTR:
            wanted.append(payload.name.name.decode().lower())  # type: ignore[union-attr]
        if record.header.type in (dns.PTR, dns.SRV):
            for srv in records:
                if srv.header.type == dns.SRV and (srv is record or srv.name in wanted):
                    target = srv.header.payload.target  # type: ignore[union-attr]
                    wanted.append(target.name.decode().lower())
    extra = [
        r for r in records
        if r.name in wanted and r not in answers and r.header.type != dns.PTR
    ]  # fmt: skip
    hosts: dict[str, None] = {}
    for record in list(answers) + extra:
        if record.header.type in (dns.A, dns.AAAA):
            hosts[record.name] = None
    denied = {r.name for r in answers if r.header.type == _NSEC}
    for host in hosts:
        kinds = {r.header.type for r in records if r.name == host}
        if host not in denied and not {dns.A, dns.AAAA} <= kinds:
            nsec = negative(records, host)
            if nsec is not None:
                extra.append(nsec)
    return extra


def conflictsWith(ours: Sequence[Record], theirs: dns.RRHeader, probing: bool) -> bool:
    """
    Whether the record C{theirs}, heard in a response, conflicts with our
    unique records: same name and type but other data; while probing, any
    other type for the name too (NSEC aside).
    """
    name = theirs.name.name.decode("utf-8", "replace").lower().rstrip(".")
    mine = [r for r in ours if r.unique and r.name == name]
    if not mine or theirs.ttl == 0:
        return False
    same = [r for r in mine if r.header.type == theirs.type]
    if not same:
        return probing and theirs.type != _NSEC
    return rdata(theirs.payload) not in {rdata(r.header.payload) for r in same}


def sortKey(header: dns.RRHeader) -> tuple[int, int, bytes]:
    """
    How simultaneous probes compare records (RFC 6762 section 8.2): class
    without the cache-flush bit, type, then data.
    """
    return (header.cls & ~CACHE_FLUSH, header.type, rdata(header.payload))


def hostLabel(name: str) -> str:
    """
    A host name label for the instance name C{name}: lowercase letters,
    digits and hyphens (C{"Alpha (2)"} gives C{"alpha-2"}).
    """
    label = _NOT_LABEL.sub("-", name.lower()).strip("-")[:63].strip("-")
    return label or "netservices"


def renamed(name: str, attempt: int) -> str:
    """
    The name to try after C{attempt} conflicts (RFC 6763 appendix D):
    C{"alpha"}, then C{"alpha (2)"}, C{"alpha (3)"}...
    """
    base = re.sub(r" \(\d+\)$", "", name)
    if attempt == 0:
        return _cut(name, 63)
    suffix = f" ({attempt + 1})"
    return _cut(base, 63 - len(suffix)) + suffix


def _typeLabel(serviceType: str) -> str:
    return hostLabel(serviceType.replace("_", ""))


def _addressRecord(host: str, address: str) -> Record:
    ip = ipaddress.ip_address(address)
    payload: dns.IEncodableRecord
    if ip.version == 4:
        payload, kind = dns.Record_A(address), dns.A
    else:
        payload, kind = dns.Record_AAAA(address), dns.AAAA
    return Record(dns.RRHeader(host.encode(), kind, dns.IN, HOST_TTL, payload), True)


def instanceRecords(name: str, offers: Sequence[Offer]) -> list[Record]:
    """
    Every record of the instance C{name} offering C{offers} on one link.
    """
    label = hostLabel(name)
    # The first offer (the instance's own) names the host; another offer
    # whose addresses differ gets a host name of its own.
    everywhere = next((o.addresses for o in offers if o.addresses), ())
    records: list[Record] = []
    hosts: dict[str, tuple[str, ...]] = {}
    for offer in offers:
        if not offer.addresses:
            continue
        host = f"{label}.local"
        if set(offer.addresses) != set(everywhere):
            host = f"{label}-{_typeLabel(offer.type)}.local"
        hosts.setdefault(host, offer.addresses)
        typeName = f"{offer.type}.local".encode()
        instance = _instanceLabel(name).encode() + b"." + typeName
        records += [
            Record(dns.RRHeader(SERVICES_TYPE.encode(), dns.PTR, dns.IN, OTHER_TTL, dns.Record_PTR(typeName)), False),
            Record(dns.RRHeader(typeName, dns.PTR, dns.IN, OTHER_TTL, dns.Record_PTR(instance)), False),
            Record(
                dns.RRHeader(
                    instance, dns.SRV, dns.IN, HOST_TTL, dns.Record_SRV(0, 0, offer.port, host.encode())
                ),
                True,
            ),
            Record(dns.RRHeader(instance, dns.TXT, dns.IN, OTHER_TTL, _txt(offer.txt)), True),
        ]
    for host, addresses in hosts.items():
        records += [_addressRecord(host, address) for address in addresses]
    return records


def _txt(strings: Sequence[str]) -> dns.Record_TXT:
    return dns.Record_TXT(*[t.encode() for t in strings] or [b""])


def _instanceLabel(name: str) -> str:
    # twisted.names splits names at every dot and has no escapes: a dot in
    # an instance name would make two labels.  A label is at most 63 bytes.
    return _cut(name.replace(".", "-"), 63)


def _cut(text: str, limit: int) -> str:
    """
    C{text} cut to at most C{limit} bytes of UTF-8, on a character boundary.
    """
    return text.encode()[:limit].decode("utf-8", "ignore")


