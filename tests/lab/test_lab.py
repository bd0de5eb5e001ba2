# -*- test-case-name: tests.lab.test_lab -*-
"""
Tests of the network lab itself (L{tests.netlab}): what it builds, that it
stays apart from the machine's own network, and that it leaves nothing
behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, TestCase

from tests import netlab as labModule
from tests.netlab import PREFIX, Lab, ip, removeLeftovers
from tests.support import ROOT, isolatedConfig

# Prints the addresses a host has and whether each IPv6 one is tentative.
_ADDRESSES = """\
import json, subprocess
out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
print(json.dumps({
    link["ifname"]: sorted(
        a["local"] + ("/tentative" if a.get("tentative") else "")
        for a in link["addr_info"] if a.get("scope") != "host"
    )
    for link in json.loads(out)
}))
"""

# Connects to a listener of its own on each loopback address.
_LOOPBACK = """\
import socket
for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    with socket.socket(family) as server:
        server.bind((address, 0))
        server.listen()
        socket.create_connection(server.getsockname()[:2], timeout=5).close()
        print(address)
"""


def namespaces() -> set[str]:
    """
    The names of the machine's network namespaces.
    """
    return {line.split(" ", 1)[0] for line in ip("netns", "list").stdout.splitlines()}


def rootLinks() -> set[str]:
    """
    The interfaces of the machine's own network namespace.
    """
    return {line.split(":")[1].strip() for line in ip("-o", "link").stdout.splitlines()}


class TopologyTests(TestCase):
    """
    The hosts, segments and addresses a lab builds.
    """

    def test_addresses(self) -> None:
        """
        Each host has one interface per segment, in order, with address N
        of the segment's 198.18.M.0/24 and 2001:db8:M::/64 (only the
        family the segment has, no IPv6 at all on an IPv4-only one), usable
        at once (never tentative); loopback is up and nothing is added to
        the machine's own namespace.
        """
        before = rootLinks()
        lab = Lab.create(self)
        lan = lab.segment("lan")
        v6 = lab.segment("v6", ipv4=False)
        v4 = lab.segment("v4", ipv6=False)
        a = lab.host("a", lan)
        b = lab.host("b", lan, v6, v4)
        self.assertEqual(rootLinks(), before)
        self.assertEqual((a.ipv4(lan), a.ipv6(lan)), ("198.18.0.1", "2001:db8::1"))
        self.assertEqual(
            (b.ipv4(lan), b.ipv6(v6), b.ipv4(v4)), ("198.18.0.2", "2001:db8:1::1", "198.18.2.1")
        )
        self.assertEqual([b.interface(s) for s in (lan, v6, v4)], ["eth0", "eth1", "eth2"])
        self.assertRaises(ValueError, b.ipv4, v6)
        self.assertRaises(ValueError, b.ipv6, v4)
        self.assertEqual((lan.ipv4Network, lan.ipv6Network), ("198.18.0.0/24", "2001:db8::/64"))
        self.assertEqual(lan.ipv4Broadcast, "198.18.0.255")
        seen = json.loads(b.python(_ADDRESSES))
        self.assertIn("198.18.0.2", seen["eth0"])
        self.assertIn("2001:db8::2", seen["eth0"])
        self.assertIn("2001:db8:1::1", seen["eth1"])
        self.assertFalse([x for x in seen["eth1"] if not x.startswith(("2001:db8:1::", "fe80:"))])
        self.assertEqual(seen["eth2"], ["198.18.2.1"])
        self.assertFalse([x for xs in seen.values() for x in xs if x.endswith("/tentative")])
        self.assertEqual(b.python(_LOOPBACK).split(), ["127.0.0.1", "::1"])

    def test_noDefaultRoute(self) -> None:
        """
        Hosts have on-link routes only: no default route in either family,
        so nothing can leave a segment, and a host cannot reach a segment
        it is not on.
        """
        lab = Lab.create(self)
        lan = lab.segment("lan")
        other = lab.segment("other")
        a = lab.host("a", lan)
        lab.host("b", other)
        routes = (
            a.run(["ip", "route"]).stdout.decode() + a.run(["ip", "-6", "route"]).stdout.decode()
        )
        self.assertNotIn("default", routes)
        self.assertIn("198.18.0.0/24", routes)
        unreachable = a.python(
            "import socket\n"
            "try:\n"
            "    socket.create_connection(('198.18.1.1', 9), timeout=2)\n"
            "except OSError as e:\n"
            "    print(e.errno)\n"
        )
        self.assertEqual(unreachable.strip(), "101")  # ENETUNREACH

    def test_waitForUDP(self) -> None:
        """
        C{waitForUDP} returns once a socket of the host is bound to the
        port, and fails after its bound when none is.
        """
        lab = Lab.create(self)
        a = lab.host("a", lab.segment("lan"))
        daemon = a.daemon(isolatedConfig(udp_echo="enabled = yes\nlisten = udp:7008"))
        daemon.waitForUDP(7008)
        error = self.assertRaises(AssertionError, a.waitForUDP, 7009, timeout=0.3)
        self.assertIn("UDP port 7009", str(error))


class UnavailableTests(TestCase):
    """
    Where a lab cannot be built, its tests skip and say why.
    """

    def test_notRoot(self) -> None:
        """
        Without root, L{Lab.create} skips the test, saying that the lab
        needs root, and creates nothing.
        """
        before = namespaces()
        self.patch(os, "geteuid", lambda: 1000)
        error = self.assertRaises(SkipTest, Lab.create, self)
        self.assertEqual(str(error), "the network lab needs root (to create network namespaces)")
        self.assertEqual(namespaces(), before)

    def test_noNamespaces(self) -> None:
        """
        Where C{ip netns add} fails (no permission in a container), the
        reason given is its error.
        """
        self.patch(labModule, "ip", lambda *args, check=True: _failed("Operation not permitted"))
        self.assertEqual(
            labModule.labUnavailable(), "cannot create a network namespace: Operation not permitted"
        )


def _failed(stderr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["ip"], 1, "", stderr + "\n")


class LifetimeTests(TestCase):
    """
    What a lab leaves behind: nothing.
    """

    def test_teardown(self) -> None:
        """
        Teardown stops the daemons and any other process left in the hosts
        and deletes every namespace of the lab; a second teardown is
        harmless.
        """
        lab = Lab.create(self)
        a = lab.host("a", lab.segment("lan"))
        daemon = a.daemon(isolatedConfig(echo="listen = tcp:7007"))
        daemon.waitForTCP(7007)
        stray = a.popen(["sleep", "30"])
        self.addCleanup(stray.wait)
        ours = {n for n in namespaces() if n.startswith(lab.prefix)}
        self.assertEqual(ours, {lab.prefix + "bridges", lab.prefix + "a"})
        lab.teardown()
        self.assertIsNotNone(daemon.process.poll())
        self.assertIsNotNone(stray.wait(10))
        self.assertFalse({n for n in namespaces() if n.startswith(lab.prefix)})
        lab.teardown()

    def test_terminated(self) -> None:
        """
        A process that built a lab and is stopped by SIGTERM deletes the
        lab's namespaces before it exits.
        """
        Lab.create(self)
        code = (
            "import sys, time\n"
            "from tests.netlab import Lab\n"
            "lab = Lab(sys.argv[1])\n"
            "lab.host('a', lab.segment('lan'))\n"
            "print(lab.prefix, flush=True)\n"
            "time.sleep(60)\n"  # until the signal comes
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code, self.mktemp()],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        self.addCleanup(lambda: child.poll() is None and child.kill())
        assert child.stdout is not None
        prefix = child.stdout.readline().strip()
        child.stdout.close()
        self.assertEqual(len({n for n in namespaces() if n.startswith(prefix)}), 2)
        child.send_signal(signal.SIGTERM)
        self.assertEqual(child.wait(20), -signal.SIGTERM)
        self.assertFalse({n for n in namespaces() if n.startswith(prefix)})

    def test_shared(self) -> None:
        """
        L{Lab.shared} builds once for the tests of a class, builds again
        when a daemon of the lab has gone, and tears the lab down when a
        test of another class asks for one.
        """
        self.addCleanup(labModule._dropShared)
        built = []

        def build(lab: Lab) -> Lab:
            host = lab.host("a", lab.segment("lan"))
            host.daemon(isolatedConfig(echo="listen = tcp:7007")).waitForTCP(7007)
            built.append(lab)
            return lab

        class One:
            pass

        class Other:
            pass

        first = Lab.shared(One(), build)
        self.assertIs(Lab.shared(One(), build), first)
        self.assertEqual(len(built), 1)
        daemon = first.hosts["a"]._daemons[0]
        daemon.process.kill()
        daemon.process.wait()
        second = Lab.shared(One(), build)
        self.assertIsNot(second, first)
        self.assertFalse({n for n in namespaces() if n.startswith(first.prefix)})
        Lab.shared(Other(), build)
        self.assertEqual(len(built), 3)
        self.assertFalse({n for n in namespaces() if n.startswith(second.prefix)})
        self.assertFalse(second.directory.exists())

    def test_leftovers(self) -> None:
        """
        Creating a lab deletes the namespaces of a run whose process is
        gone, and leaves those of live processes alone.
        """
        pidMax = int(Path("/proc/sys/kernel/pid_max").read_text())
        dead = f"{PREFIX}{pidMax + 1}-1-a"
        alive = f"{PREFIX}1-1-a"  # init never goes
        Lab.create(self)
        for name in (dead, alive):
            ip("netns", "add", name)
            self.addCleanup(subprocess.run, ["ip", "netns", "delete", name], capture_output=True)
        self.assertIn(dead, removeLeftovers())
        present = namespaces()
        self.assertNotIn(dead, present)
        self.assertIn(alive, present)
