# -*- test-case-name: tests.unit.discovery.test_mdns_browse -*-
"""
Tests for L{services.discovery._mdnsbrowse} on a memory reactor, and for the
C{--mdns} output of C{netservices discover}.
"""

from __future__ import annotations

from typing import Any

from twisted.names import dns
from twisted.trial.unittest import TestCase

from services.cli.discover_mdns import formatInstances
from services.net.interfaces import Address4, Interface
from services.discovery._mdnsbrowse import browse, normalType
from tests.udpsupport import MulticastMemoryReactor

ETH0 = Interface(
    "eth0", 2, ipv4=(Address4("198.18.0.2", 24, "198.18.0.255"),), ipv6=("2001:db8::2",)
)
PEER = ("198.18.0.1", 5353)


def response(*records: dns.RRHeader) -> bytes:
    """
    A response packet with C{records} as answers.
    """
    message = dns.Message(answer=1, auth=1)
    message.answers = list(records)
    return message.toStr()


def questions(packets: list[tuple[bytes, Any]]) -> list[tuple[str, int]]:
    """
    The (name, type) of every question in C{packets}.
    """
    found = []
    for packet, _ in packets:
        message = dns.Message()
        message.fromStr(packet)
        found += [(q.name.name.decode(), q.type) for q in message.queries]
    return found


class BrowseTests(TestCase):
    """
    L{browse}: one-shot queries on every link, follow-ups, results.
    """

    def setUp(self) -> None:
        self.reactor = MulticastMemoryReactor()

    def start(self, *types: str) -> Any:
        """
        Browse C{types} for 2 s; the Deferred of the results.
        """
        return browse(self.reactor, types, 2.0, interfaces=lambda: [ETH0])

    def test_queriesEveryLink(self) -> None:
        """
        A PTR query for the type goes to 224.0.0.251 from the interface's
        IPv4 address and to ff02::fb on its index, from ephemeral ports (so
        that answers are unicast to us); once more halfway through.
        """
        self.start()
        v4, v6 = self.reactor.multicastPorts
        self.assertEqual(v4.host[1] != 5353, True)
        self.assertEqual([a for _, a in v4.written], [("224.0.0.251", 5353)])
        self.assertEqual((v4.sentVia, v6.sentVia), (["198.18.0.2"], [2]))
        self.assertEqual(questions(v4.written), [("_netservices._tcp.local", dns.PTR)])
        self.reactor.advance(1)
        self.assertEqual(len(v4.written), 2)

    def test_resolves(self) -> None:
        """
        A PTR answer makes it ask for the instance's SRV and TXT, the SRV
        for the host's addresses; at the timeout, the instance comes with
        host, addresses, port and TXT, and the ports are closed.
        """
        done = self.start("_http._tcp")
        v4 = self.reactor.multicastPorts[0]
        browser = v4.protocol
        v4.written = []
        browser.datagramReceived(
            response(dns.RRHeader("_http._tcp.local", dns.PTR, dns.IN, 4500, dns.Record_PTR("zeta._http._tcp.local"))),
            PEER,
        )  # fmt: skip
        self.assertEqual(
            questions(v4.written), [("zeta._http._tcp.local", dns.SRV), ("zeta._http._tcp.local", dns.TXT)]
        )
        v4.written = []
        browser.datagramReceived(
            response(
                dns.RRHeader("zeta._http._tcp.local", dns.SRV, dns.IN, 120, dns.Record_SRV(0, 0, 8123, "zc.local")),
                dns.RRHeader("zeta._http._tcp.local", dns.TXT, dns.IN, 4500, dns.Record_TXT(b"by=zeroconf", b"flag")),
            ),
            PEER,
        )  # fmt: skip
        self.assertEqual(questions(v4.written), [("zc.local", dns.A), ("zc.local", dns.AAAA)])
        browser.datagramReceived(
            response(dns.RRHeader("zc.local", dns.A, dns.IN, 120, dns.Record_A("198.18.0.1"))), PEER
        )
        self.reactor.advance(2)
        self.assertEqual(
            self.successResultOf(done),
            [{"name": "zeta", "type": "_http._tcp", "host": "zc.local", "addresses": ["198.18.0.1"],
              "port": 8123, "txt": {"by": "zeroconf", "flag": ""}, "interface": "eth0"}],
        )  # fmt: skip
        self.assertFalse(any(p.listening for p in self.reactor.multicastPorts))

    def test_allTypes(self) -> None:
        """
        C{all} asks the service-type enumeration first, then each type it
        lists.
        """
        self.start("all")
        v4 = self.reactor.multicastPorts[0]
        self.assertEqual(questions(v4.written), [("_services._dns-sd._udp.local", dns.PTR)])
        v4.written = []
        v4.protocol.datagramReceived(
            response(dns.RRHeader("_services._dns-sd._udp.local", dns.PTR, dns.IN, 4500, dns.Record_PTR("_ipp._tcp.local"))),
            PEER,
        )  # fmt: skip
        self.assertEqual(questions(v4.written), [("_ipp._tcp.local", dns.PTR)])

    def test_offLinkAndMalformedIgnored(self) -> None:
        """
        Answers from a source not on a queried link, and packets that do
        not parse, are ignored.
        """
        done = self.start()
        browser = self.reactor.multicastPorts[0].protocol
        ptr = dns.RRHeader("_netservices._tcp.local", dns.PTR, dns.IN, 4500, dns.Record_PTR("x._netservices._tcp.local"))
        browser.datagramReceived(response(ptr), ("203.0.113.1", 5353))
        browser.datagramReceived(b"\x00\x01\x02", PEER)
        self.reactor.advance(2)
        self.assertEqual((self.successResultOf(done), browser.malformed), ([], 1))

    def test_types(self) -> None:
        """
        Types are taken with or without C{.local}; others are refused.
        """
        self.assertEqual(normalType("_HTTP._tcp.local."), "_http._tcp")
        self.assertEqual(normalType("all"), "all")
        for bad in ("http", "_http._sctp", "_a._b._tcp"):
            self.assertRaises(ValueError, normalType, bad)

    def test_table(self) -> None:
        """
        The table has a header and one row per instance, TXT last.
        """
        table = formatInstances(
            [{"name": "zeta", "type": "_http._tcp", "host": "zc.local", "addresses": ["198.18.0.1"],
              "port": 8123, "txt": {"by": "zeroconf"}, "interface": "eth0"}]
        )  # fmt: skip
        self.assertEqual(
            table.splitlines(),
            [
                "NAME  TYPE        HOST      ADDRESSES   PORT  INTERFACE  TXT",
                "zeta  _http._tcp  zc.local  198.18.0.1  8123  eth0       by=zeroconf",
            ],
        )
