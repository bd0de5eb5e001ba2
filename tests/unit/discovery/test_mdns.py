# -*- test-case-name: tests.unit.discovery.test_mdns -*-
"""
Tests for L{services.discovery._mdns} and L{services.discovery._mdnsrecords}: what is offered
on which link, the records, the service on a memory reactor, C{[mdns]}.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address
from twisted.names import dns
from twisted.trial.unittest import TestCase

from services.config import ConfigError, parseConfig
from services.net.interfaces import Address4, Interface
from services.daemon.values import mdnsSettings
from services.discovery import MDNSService, MDNSSettings, MDNSStats, makeMDNSService
from services.discovery._mdns import linksOf, offersOn
from services.discovery._mdnsrecords import Offer, hostLabel, instanceRecords, renamed
from tests.udpsupport import MulticastMemoryReactor

ETH0 = Interface(
    "eth0", 2, ipv4=(Address4("198.18.0.1", 24, "198.18.0.255"),), ipv6=("2001:db8::1",)
)
ETH1 = Interface("eth1", 3, ipv4=(Address4("198.18.1.1", 24, "198.18.1.255"),))
LO = Interface("lo", 1, loopback=True, ipv4=(Address4("127.0.0.1", 8, "127.255.255.255"),))
DOWN = Interface("eth2", 4, up=False, ipv4=(Address4("198.18.2.1", 24, "198.18.2.255"),))
LISTENERS = {
    "echo": [("198.18.0.1", 7007), ("2001:db8::1", 7007)],
    "web": [("0.0.0.0", 7080)],
    "udp-echo": [("198.18.0.1", 7008)],
}


class OfferTests(TestCase):
    """
    L{offersOn} and L{linksOf}.
    """

    def test_offersPerInterface(self) -> None:
        """
        On an interface, each service is offered with the addresses it
        listens on there (a wildcard listener: every address of the
        interface); the instance's own offer comes first, on the web port,
        with a TXT of its id, version and every service's ports.
        """
        offers = offersOn(ETH0, (4, 6), LISTENERS, "f" * 32)
        self.assertEqual(
            [(o.type, o.port, o.addresses) for o in offers],
            [
                ("_netservices._tcp", 7080, ("198.18.0.1",)),
                ("_http._tcp", 7080, ("198.18.0.1",)),
                ("_echo._tcp", 7007, ("198.18.0.1", "2001:db8::1")),
                ("_echo._udp", 7008, ("198.18.0.1",)),
            ],
        )
        self.assertEqual(offers[0].txt[0], "id=" + "f" * 32)
        self.assertEqual(offers[0].txt[2:], ("echo=7007", "udp-echo=7008", "web=7080"))
        self.assertEqual(offers[1].txt, ("path=/",))

    def test_offersOnAnotherInterface(self) -> None:
        """
        On an interface where only the wildcard web listener is reachable,
        only web (and the instance) are offered, at that interface's address.
        """
        offers = offersOn(ETH1, (4, 6), LISTENERS, "f" * 32)
        self.assertEqual(
            [(o.type, o.addresses) for o in offers],
            [("_netservices._tcp", ("198.18.1.1",)), ("_http._tcp", ("198.18.1.1",))],
        )

    def test_secureWeb(self) -> None:
        """
        The web service's TLS listeners are offered as C{_https._tcp}, its
        plain ones as C{_http._tcp}; the instance names the plain port
        first, else the TLS one.
        """
        listeners = {"web": [("0.0.0.0", 7080), ("0.0.0.0", 7443)]}
        offers = offersOn(ETH1, (4,), listeners, "f" * 32, frozenset({("web", 7443)}))
        self.assertEqual(
            [(o.type, o.port, o.addresses, o.txt[-1:]) for o in offers],
            [
                ("_netservices._tcp", 7080, ("198.18.1.1",), ("web=7080,7443",)),
                ("_http._tcp", 7080, ("198.18.1.1",), ("path=/",)),
                ("_https._tcp", 7443, ("198.18.1.1",), ("path=/",)),
            ],
        )
        offers = offersOn(
            ETH1, (4,), {"web": [("0.0.0.0", 7443)]}, "f" * 32, frozenset({("web", 7443)})
        )
        self.assertEqual(
            [(o.type, o.port) for o in offers],
            [("_netservices._tcp", 7443), ("_https._tcp", 7443)],
        )

    def test_secureOtherService(self) -> None:
        """
        A service without a TLS type of its own is offered under its usual
        type even when its listener is secure.
        """
        listeners = {"echo": [("198.18.1.1", 7007)]}
        offers = offersOn(ETH1, (4,), listeners, "f" * 32, frozenset({("echo", 7007)}))
        self.assertEqual([o.type for o in offers], ["_netservices._tcp", "_echo._tcp"])

    def test_familiesFilterAddresses(self) -> None:
        """
        With IPv4 only, no IPv6 address is offered.
        """
        offers = offersOn(ETH0, (4,), LISTENERS, "f" * 32)
        self.assertEqual({o.type: o.addresses for o in offers}["_echo._tcp"], ("198.18.0.1",))

    def test_linkLocalOnlyIPv6(self) -> None:
        """
        An interface whose only IPv6 address is link-local is served over
        IPv6 too: sources of the link are link-local, and the A records of
        its interface go out over IPv6 as well.
        """
        links = linksOf([ETH1], ("all",), (4, 6), mtu=lambda name: 1500, ipv6=lambda: {"eth1"})
        self.assertEqual([str(link) for _, link in links], ["eth1 (IPv4)", "eth1 (IPv6)"])
        self.assertTrue(links[1][1].onLink("fe80::1"))
        self.assertFalse(links[1][1].onLink("2001:db8::9"))

    def test_links(self) -> None:
        """
        C{all} serves every interface that is up and can multicast, not
        loopback, once per family it has an address of; names pick.
        """
        links = linksOf(
            [LO, ETH0, ETH1, DOWN], ("all",), (4, 6), mtu=lambda name: 1500, ipv6=lambda: {"eth0"}
        )
        self.assertEqual(
            [str(link) for _, link in links], ["eth0 (IPv4)", "eth0 (IPv6)", "eth1 (IPv4)"]
        )
        self.assertEqual(links[1][1].networks, ("2001:db8::/64",))
        links = linksOf([LO, ETH0, ETH1], ("eth1",), (4,), mtu=lambda name: 9000)
        self.assertEqual([(str(link), link.maxSize) for _, link in links], [("eth1 (IPv4)", 8972)])


class RecordTests(TestCase):
    """
    L{instanceRecords}, L{hostLabel} and L{renamed}.
    """

    def test_hostNames(self) -> None:
        """
        Services listening on the instance's addresses share the host
        C{<label>.local}; one listening elsewhere gets a host of its own,
        whose address records are exactly its addresses.
        """
        offers = offersOn(ETH0, (4, 6), LISTENERS, "f" * 32)
        records = instanceRecords("Alpha (2)", offers)
        srv = {r.name: r.header.payload.target.name for r in records if r.header.type == dns.SRV}
        self.assertEqual(
            srv,
            {
                "alpha (2)._netservices._tcp.local": b"alpha-2.local",
                "alpha (2)._http._tcp.local": b"alpha-2.local",
                "alpha (2)._echo._tcp.local": b"alpha-2-echo-tcp.local",
                "alpha (2)._echo._udp.local": b"alpha-2.local",
            },
        )
        addresses = sorted(
            (r.name, r.header.type) for r in records if r.header.type in (dns.A, dns.AAAA)
        )
        self.assertEqual(
            addresses,
            [("alpha-2-echo-tcp.local", dns.A), ("alpha-2-echo-tcp.local", dns.AAAA),
             ("alpha-2.local", dns.A)],
        )  # fmt: skip

    def test_sharedAndUnique(self) -> None:
        """
        PTRs (of the type and of the service-type enumeration) are shared,
        SRV, TXT and addresses unique; a TXT without strings is one empty
        string.
        """
        records = instanceRecords("a", [Offer("_echo._tcp", 7, ("198.18.0.1",))])
        self.assertEqual(
            [(r.name, r.header.type, r.unique) for r in records],
            [("_services._dns-sd._udp.local", dns.PTR, False), ("_echo._tcp.local", dns.PTR, False),
             ("a._echo._tcp.local", dns.SRV, True), ("a._echo._tcp.local", dns.TXT, True),
             ("a.local", dns.A, True)],
        )  # fmt: skip
        self.assertEqual(records[3].header.payload.data, [b""])

    def test_names(self) -> None:
        """
        Renames go "alpha", "alpha (2)", "alpha (3)"; host labels keep
        letters, digits and hyphens.
        """
        self.assertEqual([renamed("alpha", n) for n in range(3)], ["alpha", "alpha (2)", "alpha (3)"])
        self.assertEqual(renamed("alpha (2)", 2), "alpha (3)")
        self.assertEqual(hostLabel("My Box.lan"), "my-box-lan")
        self.assertEqual(hostLabel("!!!"), "netservices")


class Listener(MultiService):
    """
    A named service with one listening port, as the tree's listeners are.
    """

    def __init__(self, name: str, host: str, port: int, secure: bool = False) -> None:
        super().__init__()
        self.setName(name)
        self.port = type("Port", (), {"getHost": lambda self: IPv4Address("TCP", host, port)})()
        self.secure = secure


class ServiceTests(TestCase):
    """
    L{MDNSService} on a memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MulticastMemoryReactor()
        self.root = MultiService()
        Listener("web", "0.0.0.0", 7080).setServiceParent(self.root)
        self.service = MDNSService(
            MDNSSettings("alpha"), self.reactor, MDNSStats(), interfaces=lambda: [LO, ETH0]
        )
        self.service.setServiceParent(self.root)

    def test_listensPerLink(self) -> None:
        """
        One multicast port per link on 5353, shared (listenMultiple): the
        IPv4 one joined to 224.0.0.251 on the interface's address, sending
        from it with TTL 255; the IPv6 one sending on the interface's index;
        loopback mode on for both (other responders of the host hear us).
        """
        self.patch(MDNSService, "_socketOptions", lambda self, *args: None)
        self.root.startService()
        v4, v6 = self.reactor.multicastPorts
        self.assertEqual((v4.host[1], v4.groups, v4.outgoing, v4.ttl), (5353, [("224.0.0.251", "198.18.0.1")], "198.18.0.1", 255))
        self.assertEqual((v6.host, v6.outgoing), (("::", 5353), 2))
        self.assertTrue(v4.loopback and v6.loopback)

    def test_probesThenGoodbye(self) -> None:
        """
        Started, each link probes for the name; once announced, stopping
        sends goodbyes (TTL 0) on each before the ports close.
        """
        self.patch(MDNSService, "_socketOptions", lambda self, *args: None)
        self.root.startService()
        self.reactor.pump([0, 0.25, 0.25, 0.25, 0.25, 1])
        states = [r.state for r in self.service.responders.values()]
        self.assertEqual(states, ["running", "running"])
        ports = list(self.reactor.multicastPorts)
        for port in ports:
            port.written = []
        self.root.stopService()
        for port in ports:
            [(packet, _)] = port.written
            message = dns.Message()
            message.fromStr(packet)
            self.assertEqual({r.ttl for r in message.answers}, {0})
            self.assertFalse(port.listening)

    def test_secureListenerAnnounced(self) -> None:
        """
        A web listener that speaks TLS is announced as C{_https._tcp} on
        its port, and its plain one as C{_http._tcp}.
        """
        Listener("web", "0.0.0.0", 7443, secure=True).setServiceParent(
            self.root.getServiceNamed("web")
        )
        self.patch(MDNSService, "_socketOptions", lambda self, *args: None)
        self.root.startService()
        self.reactor.pump([0, 0.25, 0.25, 0.25, 0.25, 1])
        ports: dict[bytes, int] = {}
        for packet, _ in self.reactor.multicastPorts[0].written:
            message = dns.Message()
            message.fromStr(packet)
            for record in message.answers + message.additional:
                if record.type == dns.SRV:
                    ports[record.name.name] = record.payload.port
        self.assertEqual(ports.get(b"alpha._https._tcp.local"), 7443)
        self.assertEqual(ports.get(b"alpha._http._tcp.local"), 7080)
        self.root.stopService()


class ConfigTests(TestCase):
    """
    C{[mdns]} and L{makeMDNSService}.
    """

    def test_defaults(self) -> None:
        """
        Off by default; every interface, both families, the name from
        C{[discovery]}.
        """
        config = parseConfig("[discovery]\nname = beta\n[mdns]\nenabled = yes\n")
        self.assertEqual(
            (config.mdns.enabled, config.mdns.interfaces, config.mdns.families),
            (True, ("all",), ("ipv4", "ipv6")),
        )
        self.assertFalse(parseConfig("").mdns.enabled)
        settings = mdnsSettings(config.mdns, config.discovery.name)
        service = makeMDNSService(settings, MulticastMemoryReactor())
        self.assertEqual((service.settings.name, service.settings.families), ("beta", (4, 6)))

    def test_badValues(self) -> None:
        """
        A bad value's error names the file, section, key and what is allowed.
        """
        for text, expected in (
            ("families = ipx", "x.conf: [mdns] families = 'ipx': expected ipv4, ipv6, or both"),
            ("interfaces = all eth0", "x.conf: [mdns] interfaces = 'all eth0': expected all, or"),
            ("name = " + "n" * 65, "x.conf: [mdns] name = "),
        ):
            with self.assertRaises(ConfigError) as caught:
                parseConfig(f"[mdns]\n{text}\n", "x.conf")
            self.assertTrue(str(caught.exception).startswith(expected), str(caught.exception))


class TreeTests(TestCase):
    """
    C{[mdns]} in the daemon's service tree.
    """

    def test_inTheTreeWhenEnabled(self) -> None:
        """
        With C{[mdns] enabled = yes} the tree has an C{mdns} service after
        the services it advertises, named from C{[discovery] name}, whose
        counters C{/status} reads; without, none.
        """
        from services.daemon.tree import buildService

        config = parseConfig("[discovery]\nenabled = no\nname = beta\n[mdns]\nenabled = yes\n")
        root = buildService(config, MulticastMemoryReactor())
        names = [s.name for s in root]
        self.assertEqual(names[-1], "mdns")
        self.assertEqual(root.getServiceNamed("mdns").settings.name, "beta")
        self.assertIsInstance(root.stats["mdns"], MDNSStats)
        root = buildService(parseConfig("[discovery]\nenabled = no\n"), MulticastMemoryReactor())
        self.assertNotIn("mdns", [s.name for s in root])


class ListenFailureTests(TestCase):
    """
    Links that cannot be served.
    """

    def test_portInUse(self) -> None:
        """
        A link whose port cannot be bound is left out with one warning that
        names it; the others are served.
        """
        from twisted.internet.error import CannotListenError
        from twisted.logger import capturedLogs

        reactor = MulticastMemoryReactor()
        listen = reactor.listenMulticast
        calls = []

        def refuseFirst(*args: object, **kwargs: object) -> object:
            calls.append(args)
            if len(calls) == 1:
                raise CannotListenError("", 5353, OSError(98, "Address already in use"))
            return listen(*args, **kwargs)  # type: ignore[arg-type]

        reactor.listenMulticast = refuseFirst  # type: ignore[method-assign]
        service = MDNSService(MDNSSettings("alpha"), reactor, MDNSStats(), interfaces=lambda: [ETH0])
        self.patch(MDNSService, "_socketOptions", lambda self, *args: None)
        with capturedLogs() as events:
            service.startService()
        self.assertEqual([str(link) for link in service.responders], ["eth0 (IPv6)"])
        warnings = [e for e in events if e.get("log_format", "").startswith("mdns: cannot listen")]
        self.assertEqual(len(warnings), 1)
        self.assertEqual((warnings[0]["link"], warnings[0]["reason"]), ("eth0 (IPv4)", "Address already in use"))
        service.stopService()


class NameEncodingTests(TestCase):
    """
    Instance names on the wire.
    """

    def test_utf8NotIDNA(self) -> None:
        """
        A name outside ASCII goes out as its UTF-8 bytes (DNS-SD), not
        IDNA-encoded; a name of 64 characters is cut to a 63-byte label,
        and its renames keep their suffix within it.
        """
        records = instanceRecords("Café", [Offer("_echo._tcp", 7, ("198.18.0.1",))])
        message = dns.Message(answer=1)
        message.answers = [r.header for r in records]
        parsed = dns.Message()
        parsed.fromStr(message.toStr())
        self.assertIn("Café._echo._tcp.local".encode(), [r.name.name for r in parsed.answers])
        long = "n" * 64
        records = instanceRecords(renamed(long, 0), [Offer("_echo._tcp", 7, ("198.18.0.1",))])
        message.answers = [r.header for r in records]
        message.toStr()
        self.assertEqual(len(renamed(long, 0)), 63)
        self.assertEqual(renamed(long, 11), "n" * 58 + " (12)")
