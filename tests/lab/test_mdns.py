# -*- test-case-name: tests.lab.test_mdns -*-
"""
DNS-SD over multicast DNS across hosts of the network lab (L{tests.netlab}),
against real peers: python-zeroconf (L{tests.labzeroconf}) browses and
resolves our instances, its names make ours rename, it sees our goodbye,
and C{netservices discover --mdns} finds what it registers; avahi-daemon
(L{tests.labavahi}) resolves ours.  Multicast stays in the lab's
namespaces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from twisted.trial.unittest import SkipTest, TestCase

from tests.netlab import Host, Lab, LabDaemon, Segment, escape
from tests.labavahi import avahiCommand, avahiMissing
from tests.support import ROOT, isolatedConfig

TYPES = ["_netservices._tcp.local.", "_http._tcp.local.", "_echo._tcp.local.", "_echo._udp.local."]


def daemonConfig(host: Host, lan: Segment, name: str = "alpha") -> str:
    """
    A tap.conf for C{host} with echo on its IPv4 and IPv6 lab addresses,
    web on every IPv4 address, UDP echo on its IPv4 address, and mDNS
    claiming C{name}.
    """
    v4, v6 = host.ipv4(lan), host.ipv6(lan)
    return isolatedConfig(
        echo=f"listen = tcp:7007:interface={v4}\n tcp6:7007:interface={escape(v6)}",
        web="listen = tcp:7080",
        udp_echo=f"enabled = yes\nlisten = udp:7008:interface={v4}",
        mdns=f"enabled = yes\nname = {name}",
    )


def populate(lab: Lab) -> dict[str, Any]:
    """
    One segment with a C{server} host (address 1), a C{client} host
    (address 2) and a C{third} one (address 3).
    """
    lan = lab.segment("lan")
    return {"lab": lab, "lan": lan, **{n: lab.host(n, lan) for n in ("server", "client", "third")}}


class LabMDNSTestCase(TestCase):
    """
    The hosts of L{populate} as attributes, and helpers.
    """

    def use(self, hosts: dict[str, Any]) -> None:
        """
        Take the hosts of L{populate}.
        """
        self.__dict__.update(hosts)
        self.v4 = self.server.ipv4(self.lan)
        self.v6 = self.server.ipv6(self.lan)

    def daemon(self, host: Host, name: str = "alpha") -> LabDaemon:
        """
        A daemon in C{host} with L{daemonConfig}.
        """
        return host.daemon(daemonConfig(host, self.lan, name))

    def zeroconf(self, host: object, *args: str) -> subprocess.Popen[bytes]:
        """
        Run C{python -m tests.labzeroconf ARGS} in C{host} until the test
        ends (its standard input closes), at most 60 s.
        """
        child = host.popen(  # type: ignore[attr-defined]
            [sys.executable, "-m", "tests.labzeroconf", *args, "60"],
            timeout=70, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        self.addCleanup(child.wait, 30)
        self.addCleanup(child.stdin.close)  # type: ignore[union-attr]
        return child

    def register(self, host: object, kind: str, name: str, port: int) -> subprocess.Popen[bytes]:
        """
        Register C{name} with python-zeroconf in C{host}, at its address and
        C{port}, until the test ends.
        """
        address = host.ipv4(self.lan)  # type: ignore[attr-defined]
        child = self.zeroconf(host, "register", kind, name, str(port), address)
        line = child.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith(b"registered"):
            child.stdin.close()  # type: ignore[union-attr]
            child.wait(30)
            self.fail(f"python-zeroconf did not register {name}: {child.stderr.read()!r}")  # type: ignore[union-attr]
        return child


class LabMDNSTests(LabMDNSTestCase):
    """
    Tests that start their own daemons and peers, in a lab of their own.
    """

    def setUp(self) -> None:
        self.use(populate(Lab.create(self)))

    def test_namesTakenRename(self) -> None:
        """
        With "alpha" registered by python-zeroconf, our instance named
        alpha becomes "alpha (2)", and a second one started after it "alpha
        (3)"; python-zeroconf then finds all three under their own names,
        each resolving to its own host.
        """
        self.register(self.client, "_netservices._tcp.local.", "alpha", 9999)
        first = self.daemon(self.server)
        first.waitForLog("mdns: alpha (2) is ours on eth0 (IPv4)")  # type: ignore[attr-defined]
        second = self.daemon(self.third)
        second.waitForLog("mdns: alpha (3) is ours on eth0 (IPv4)")  # type: ignore[attr-defined]
        found = self.client.call("tests.labzeroconf.browse", [TYPES[0]], 3)
        self.assertEqual(
            {name: (info["addresses"], info["port"]) for name, info in found.items()},
            {
                "alpha._netservices._tcp.local.": ([self.client.ipv4(self.lan)], 9999),
                "alpha (2)._netservices._tcp.local.": ([self.v4], 7080),
                "alpha (3)._netservices._tcp.local.": ([self.third.ipv4(self.lan)], 7080),
            },
        )

    def test_discoverFindsZeroconf(self) -> None:
        """
        C{netservices discover --mdns all} in another host finds a service
        that python-zeroconf registers, with its address, port and TXT.
        """
        self.register(self.client, "_http._tcp.local.", "zeta", 8123)
        done = self.third.run(["netservices", "discover", "--mdns", "all", "--json", "--timeout", "5"])
        self.assertEqual(done.returncode, 0, done.stderr)
        listed = [json.loads(line) for line in done.stdout.splitlines()]
        self.assertIn(
            {
                "name": "zeta",
                "type": "_http._tcp",
                "host": "zc-8123.local",
                "addresses": [self.client.ipv4(self.lan)],
                "port": 8123,
                "txt": {"by": "zeroconf"},
                "interface": "eth0",
            },
            listed,
        )

    def test_goodbyeOnShutdown(self) -> None:
        """
        A python-zeroconf browser that saw our instance added sees it
        removed when the daemon stops cleanly: the goodbye (TTL 0) reached
        it, long before the records' TTL would have run out.
        """
        daemon = self.daemon(self.server)
        daemon.waitForLog("mdns: alpha is ours on eth0 (IPv4)")  # type: ignore[attr-defined]
        watcher = self.zeroconf(self.client, "watch", TYPES[0])
        self.assertEqual(watcher.stdout.readline(), b"Added alpha._netservices._tcp.local.\n")  # type: ignore[union-attr]
        daemon.terminate()  # type: ignore[attr-defined]
        self.assertEqual(watcher.stdout.readline(), b"Removed alpha._netservices._tcp.local.\n")  # type: ignore[union-attr]
        daemon.process.wait(15)  # type: ignore[attr-defined]
        self.assertIn("Main loop terminated.", daemon.log(), daemon.process.returncode)  # type: ignore[attr-defined]

    def test_ipv6Only(self) -> None:
        """
        On an IPv6-only segment, python-zeroconf resolves our web service
        to its IPv6 address, which says Hello World, and C{netservices
        discover --mdns} finds it too: the IPv6 responder and browser work
        on their own.
        """
        v6 = self.lab.segment("v6", ipv4=False)
        server = self.lab.host("server6", v6)
        client = self.lab.host("client6", v6)
        address = server.ipv6(v6)
        daemon = server.daemon(
            isolatedConfig(
                echo="listen = unix:echo.sock",
                web=f"listen = tcp6:7080:interface={escape(address)}",
                mdns="enabled = yes\nname = six",
            )
        )
        daemon.waitForLog("mdns: six is ours on eth0 (IPv6)")
        found = client.call("tests.labzeroconf.browse", ["_http._tcp.local."], 1)
        web = found["six._http._tcp.local."]
        self.assertEqual((web["addresses"], web["port"]), ([address], 7080))
        page = client.call("tests.labclients.gets", [f"http://[{address}]:7080/"])
        self.assertIn("Hello World", page[0]["body"])
        done = client.run(["netservices", "discover", "--mdns", "_http._tcp", "--json", "--timeout", "5"])
        self.assertEqual(done.returncode, 0, done.stderr)
        listed = [json.loads(line) for line in done.stdout.splitlines()]
        self.assertEqual([(i["name"], i["addresses"]) for i in listed], [("six", [address])])


def _withDaemon(lab: Lab) -> dict[str, Any]:
    hosts = populate(lab)
    daemon = hosts["server"].daemon(daemonConfig(hosts["server"], hosts["lan"]))
    daemon.waitForLog("mdns: alpha is ours on eth0 (IPv4)")
    return hosts


class SharedLabMDNSTests(LabMDNSTestCase):
    """
    Tests that only ask the daemon C{alpha} of the server host, all in one
    shared lab (L{Lab.shared}).
    """

    def setUp(self) -> None:
        self.use(Lab.shared(self, _withDaemon))

    def test_zeroconfBrowsesAndResolves(self) -> None:
        """
        python-zeroconf in another host finds all four services of our
        instance and resolves each to addresses and ports that answer: echo
        echoes over IPv4 and IPv6, UDP echo echoes, web says Hello World;
        the instance's TXT lists its id, version and every service's ports.
        C{netservices discover --mdns} from that host lists the instance too.
        """
        found = self.client.call("tests.labzeroconf.browse", TYPES, 4)
        names = sorted(found)
        self.assertEqual(names, sorted(f"alpha.{t}" for t in TYPES))
        self.assertNotIn(None, found.values())
        instance = found["alpha._netservices._tcp.local."]
        self.assertEqual(instance["port"], 7080)
        self.assertEqual(len(instance["txt"]["id"]), 32)
        self.assertEqual(
            {k: v for k, v in instance["txt"].items() if k != "id"},
            {"version": "0.1.0", "echo": "7007", "udp-echo": "7008", "web": "7080"},
        )
        echo = found["alpha._echo._tcp.local."]
        self.assertEqual((echo["port"], echo["addresses"]), (7007, sorted([self.v4, self.v6])))
        for address in echo["addresses"]:
            result = self.client.call("tests.labclients.echoes", address, echo["port"], ["hello"])
            self.assertEqual(result[0]["echo"], "hello")
        udp = found["alpha._echo._udp.local."]
        self.assertEqual(udp["addresses"], [self.v4])
        self.assertEqual(
            self.client.call("tests.labclients.udpEchoes", self.v4, udp["port"], [64]), {"64": "ok"}
        )
        web = found["alpha._http._tcp.local."]
        self.assertEqual((web["addresses"], web["txt"]), ([self.v4], {"path": "/"}))
        page = self.client.call("tests.labclients.gets", [f"http://{self.v4}:{web['port']}/"])
        self.assertIn("Hello World", page[0]["body"])
        done = self.client.run(["netservices", "discover", "--mdns", "--json", "--timeout", "5"])
        self.assertEqual(done.returncode, 0, done.stderr)
        listed = [json.loads(line) for line in done.stdout.splitlines()]
        self.assertEqual(
            [(i["name"], i["type"], i["port"], i["addresses"]) for i in listed],
            [("alpha", "_netservices._tcp", 7080, [self.v4])],
        )

    def test_avahiResolves(self) -> None:
        """
        avahi-daemon running in the same host as our responder (both on
        port 5353: the socket is shared) resolves our instance with
        C{avahi-browse -rpt _netservices._tcp}, over IPv4 and IPv6, to its
        address, web port and TXT; so does one in another host.
        """
        missing = avahiMissing()
        if missing is not None:
            raise SkipTest(missing)
        for host in (self.server, self.client):
            argv = avahiCommand(host.directory, "avahi-browse -rpt _netservices._tcp")
            done = host.run(argv, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            resolved = [
                line.split(";") for line in done.stdout.decode().splitlines() if line.startswith("=")
            ]
            self.assertEqual(
                sorted((r[2], r[3], r[6], r[7], r[8]) for r in resolved),
                [(family, "alpha", "alpha.local", self.v4, "7080") for family in ("IPv4", "IPv6")],
            )
            self.assertIn('"web=7080"', resolved[0][9])

    def test_offLinkAndMalformed(self) -> None:
        """
        A query from an address of the segment is answered; the same query
        from an address of another network on the same wire (an off-link
        source, RFC 6762 section 11) is not, and a datagram that is not DNS
        is dropped: C{/status} counts both.
        """
        url = f"http://{self.v4}:7080/status"
        before = self.third.call("tests.labclients.gets", [url])[0]["body"]
        before = json.loads(before)["services"]["mdns"]["counters"]
        onLink = self.third.ipv4(self.lan)
        self.assertEqual(
            self.third.call("tests.labclients.mdnsQuery", onLink, "alpha.local", garbage=True),
            {"addresses": [self.v4]},
        )
        done = self.third.run(["ip", "addr", "replace", "198.19.255.3/24", "dev", "eth0"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(
            self.third.call("tests.labclients.mdnsQuery", "198.19.255.3", "alpha.local", 1.0),
            {"addresses": []},
        )
        status = self.third.call(
            "tests.labclients.statusWhen", url,
            ["services", "mdns", "counters", "offLink"], before["offLink"] + 1,
        )  # fmt: skip
        counters = status["services"]["mdns"]["counters"]
        self.assertEqual(
            (counters["offLink"], counters["malformed"]),
            (before["offLink"] + 1, before["malformed"] + 1),
        )
