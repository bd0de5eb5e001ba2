# -*- test-case-name: tests.unit.discovery.test_mdns_browse -*-
"""
Browse DNS-SD instances over multicast DNS, as C{avahi-browse -r} does:
C{PTR} queries for the service types on every interface that can
multicast, then C{SRV}, C{TXT}, C{A} and C{AAAA} queries for what the
answers leave out, until the timeout.

The queries are one-shot queries (RFC 6762 section 5.1) from an
ephemeral port, not 5353: responders answer them by unicast to that port
(section 6.7), so browsing needs no shared port and leaves the host's own
responders alone.  Answers from a source that is not on the link of one
of the interfaces queried are ignored (section 11); malformed ones are
dropped; what is kept is bounded.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.names import dns

from services import logs
from services.net.interfaces import Interface, listInterfaces
from services.discovery._mdns import linksOf
from services.discovery._mdnslink import DECODE_ERRORS, MAX_PACKET, Link
from services.discovery._mdnsrecords import INSTANCE_TYPE, SERVICES_TYPE

__all__ = ["ALL", "OURS", "browse", "normalType", "results"]

#: The type browsed by default: netservices instances.
OURS = INSTANCE_TYPE
#: The type that stands for every type.
ALL = "all"
#: At most this many instances, hosts and types are kept.
MAX_ENTRIES = 1024


def normalType(text: str) -> str:
    """
    A service type as browsed: C{_http._tcp} (also given as
    C{_http._tcp.local.}), or L{ALL}.

    @raise ValueError: if it is neither.
    """
    value = text.strip().lower().rstrip(".")
    if value == ALL:
        return value
    value = value.removesuffix(".local")
    parts = value.split(".")
    if len(parts) != 2 or not parts[0].startswith("_") or parts[1] not in ("_tcp", "_udp"):
        raise ValueError(f"{text!r}: expected a service type such as _http._tcp, or all")
    return value


def _name(header: Any) -> str:
    return header.name.name.decode("utf-8", "replace").rstrip(".")


@dataclass
class _Found:
    """
    What the answers said so far.
    """

    instances: dict[str, tuple[str, str]] = field(default_factory=dict)  # fqdn -> type, link
    srv: dict[str, tuple[str, int]] = field(default_factory=dict)
    txt: dict[str, list[str]] = field(default_factory=dict)
    addresses: dict[str, list[str]] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)


class _Browser(DatagramProtocol):
    """
    Sends the queries on every link of one family and reads the answers.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, links: Sequence[tuple[Interface, Link]], types: Sequence[str], found: _Found) -> None:
        self.links = links
        self.every = ALL in types
        self.types = {f"{t}.local" for t in types if t != ALL}
        self.found = found
        self.asked: set[tuple[str, int]] = set()
        self.malformed = 0

    def logPrefix(self) -> str:
        """
        Log as C{mdns-browse}.
        """
        return "mdns-browse"

    def queryAll(self) -> None:
        """
        Ask for every wanted type (again: answers may have been lost).
        """
        if self.every:
            self._ask(SERVICES_TYPE, dns.PTR, again=True)
        for kind in sorted(self.types):
            self._ask(kind, dns.PTR, again=True)

    def _ask(self, name: str, kind: int, again: bool = False) -> None:
        if (name, kind) in self.asked and not again:
            return
        self.asked.add((name, kind))
        message = dns.Message()
        # UTF-8 bytes: twisted.names would IDNA-encode a str.
        message.queries = [dns.Query(name.encode(), kind, dns.IN)]
        packet = message.toStr()
        transport: Any = self.transport
        for interface, link in self.links:
            try:
                chosen = transport.setOutgoingInterface(
                    interface.ipv4[0].address if link.family == 4 else interface.index
                )
                chosen.addErrback(lambda f, link=link: self._log.debug(
                    "mdns-browse: cannot query on {link}: {e}", link=str(link), e=f.value
                ))  # fmt: skip
                transport.write(packet, link.group)
            except OSError as e:
                self._log.debug("mdns-browse: cannot query on {link}: {e}", link=str(link), e=e)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Keep what a response says; ask for what it leaves out.
        """
        link = next((lk for _, lk in self.links if lk.onLink(str(addr[0]))), None)
        if link is None:
            return
        message = dns.Message()
        try:
            if len(datagram) > MAX_PACKET:
                raise ValueError("too large")
            message.fromStr(datagram)
        except DECODE_ERRORS:
            self.malformed += 1
            return
        if not message.answer:
            return
        for record in message.answers + message.additional:
            self._record(record, link)
        self._followUp()

    def _record(self, record: dns.RRHeader, link: Link) -> None:
        found = self.found
        name = _name(record)
        key = name.lower()
        payload: Any = record.payload
        if record.type == dns.PTR and payload is not None:
            target = payload.name.name.decode("utf-8", "replace").rstrip(".")
            if key == SERVICES_TYPE and self.every and len(found.types) < MAX_ENTRIES:
                if target.lower() not in found.types:
                    found.types.add(target.lower())
                    self._ask(target, dns.PTR)
            elif (self.every or key in self.types) and key != SERVICES_TYPE:
                if record.ttl == 0:
                    found.instances.pop(target, None)
                elif len(found.instances) < MAX_ENTRIES:
                    found.instances.setdefault(target, (name, link.interface))
        elif record.type == dns.SRV and len(found.srv) < MAX_ENTRIES:
            found.srv[key] = (payload.target.name.decode("utf-8", "replace").rstrip("."), payload.port)
        elif record.type == dns.TXT and len(found.txt) < MAX_ENTRIES:
            found.txt[key] = [d.decode("utf-8", "replace") for d in payload.data]
        elif record.type in (dns.A, dns.AAAA) and len(found.addresses) < MAX_ENTRIES:
            family = socket.AF_INET if record.type == dns.A else socket.AF_INET6
            address = socket.inet_ntop(family, payload.address)
            known = found.addresses.setdefault(key, [])
            if address not in known and len(known) < 16:
                known.append(address)

    def _followUp(self) -> None:
        found = self.found
        for instance in list(found.instances):
            key = instance.lower()
            if key not in found.srv:
                self._ask(instance, dns.SRV)
            if key not in found.txt:
                self._ask(instance, dns.TXT)
            target = found.srv.get(key)
            if target is not None and target[0].lower() not in found.addresses:
                self._ask(target[0], dns.A)
                self._ask(target[0], dns.AAAA)


def _txt(strings: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for text in strings:
        if text:
            key, _, value = text.partition("=")
            pairs.setdefault(key, value)
    return pairs


def results(found: _Found) -> list[dict[str, Any]]:
    """
    The instances found, one dict each (name, type, host, addresses, port,
    txt, interface), sorted by type and name.
    """
    listed = []
    for instance, (kind, interface) in found.instances.items():
        key = instance.lower()
        host, port = found.srv.get(key, ("", 0))
        label = instance[: -len(kind) - 1] if instance.lower().endswith("." + kind.lower()) else instance
        listed.append(
            {
                "name": label,
                "type": kind.removesuffix(".local"),
                "host": host,
                "addresses": list(found.addresses.get(host.lower(), [])),
                "port": port,
                "txt": _txt(found.txt.get(key, [])),
                "interface": interface,
            }
        )
    return sorted(listed, key=lambda i: (i["type"], i["name"].lower()))


def _queryAll(browsers: Sequence[_Browser]) -> None:
    for browser in browsers:
        browser.queryAll()


def browse(
    reactor: Any,
    types: Sequence[str] = (OURS,),
    timeout: float = 2.0,
    interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
    families: Sequence[int] = (4, 6),
) -> Deferred[list[dict[str, Any]]]:
    """
    Browse for C{types} (L{ALL}: every type) for C{timeout} seconds on
    every interface that is up and can multicast (loopback aside).

    @return: a Deferred of the instances (see L{results}).
    @raise ValueError: if a type is not a service type.
    """
    wanted = [normalType(t) for t in types] or [OURS]
    found = _Found()
    links = linksOf(list(interfaces()), ("all",), families)
    ports = []
    browsers = []
    for family in (4, 6):
        mine = [pair for pair in links if pair[1].family == family]
        if not mine:
            continue
        browser = _Browser(mine, wanted, found)
        ports.append(
            reactor.listenMulticast(0, browser, interface="" if family == 4 else "::", maxPacketSize=MAX_PACKET)
        )
        browsers.append(browser)
    _queryAll(browsers)
    if timeout > 1:
        reactor.callLater(timeout / 2, _queryAll, browsers)
    done: Deferred[list[dict[str, Any]]] = Deferred()

    def finish() -> None:
        for port in ports:
            port.stopListening()
        done.callback(results(found))

    reactor.callLater(timeout, finish)
    return done
