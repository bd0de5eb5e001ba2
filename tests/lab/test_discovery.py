# -*- test-case-name: tests.lab.test_discovery -*-
"""
Discovery across hosts of the network lab (L{tests.netlab}): IPv4 broadcast
with C{broadcast = auto} on every interface, IPv6 multicast on an IPv6-only
segment, a host on two segments, expiry of a stopped instance, and
C{netservices discover} from a host that runs no daemon.  Everything stays
in the lab's namespaces.

The delays printed (discovery: from the last daemon's start until every
table lists every other instance; expiry: from a daemon's stop until no
table lists it) are measured by polling, for the figures; the tests assert
on what the tables hold, never on times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import TestCase

from tests.netlab import Host, Lab, LabDaemon
from tests.support import ROOT, isolatedConfig

#: Ports inside the lab's hosts (each host has its own; never the defaults).
ECHO, WEB, DISCOVERY = 7007, 7080, 7009
#: Short intervals keep the tests fast; the ttl is two intervals and a half.
INTERVAL, TTL = 0.5, 2


#: Echo on every address, IPv6 and IPv4 (the socket is dual-stack).
EVERYWHERE = f"tcp6:{ECHO}:interface=\\:\\:"


def discoveryConfig(name: str, discovery: str = "", echo: str = EVERYWHERE) -> str:
    """
    A tap.conf for a lab host: echo on C{echo}, web on every IPv4 address,
    discovery with a short interval and C{discovery}'s extra keys.
    """
    if "interface =" not in discovery:
        discovery += "interface = 0.0.0.0\n"
    return isolatedConfig(
        echo=f"listen = {echo}\n",
        web=f"listen = tcp:{WEB}\n",
        discovery=(
            f"port = {DISCOVERY}\nname = {name}\ninterval = {INTERVAL}\nttl = {TTL}\n{discovery}"
        ),
    )


class LabDiscoveryTests(TestCase):
    """
    Real daemons in lab hosts find each other.
    """

    timeout = 120

    def start(self, *daemons: tuple[Host, str, dict[str, str]]) -> list[LabDaemon]:
        """
        Start a daemon in each C{(host, name, discoveryConfig keywords)} at
        once, and wait until every web service answers.
        """
        started = [host.daemon(discoveryConfig(name, **kwargs)) for host, name, kwargs in daemons]
        for daemon in started:
            daemon.waitForTCP(WEB, "127.0.0.1")
        return started

    def startWatched(
        self, hosts: list[Host], discovery: str
    ) -> tuple[list[LabDaemon], list[dict[str, Any]], float]:
        """
        Start a daemon in each host, the last one while every host's table
        is being watched: the daemons, what each table held once it listed
        every other instance (L{tests.support.peersWhen}), and how long
        after the last daemon logged that it listens the last table was
        complete.
        """
        daemons = self.start(*[(host, host.name, {"discovery": discovery}) for host in hosts[:-1]])
        watchers = self.watch({host: [h.name for h in hosts if h is not host] for host in hosts})
        last = hosts[-1].daemon(discoveryConfig(hosts[-1].name, discovery))
        last.waitForLog("discovery listening on")
        listening = time.monotonic()
        daemons.append(last)
        results = list(watchers().values())
        return daemons, results, max(0.0, max(r["at"] for r in results) - listening)

    def watch(self, expected: dict[Host, list[str]]) -> Callable[[], dict[Host, dict[str, Any]]]:
        """
        Start watching each host's table until it lists the names expected
        for it (L{tests.support.peersWhen}, in every host at once); the
        function returned waits for the results, by host.
        """
        watchers = {
            host: host.popen(
                [sys.executable, "-c", _WATCH, json.dumps([WEB, names])],
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            for host, names in expected.items()
        }

        def results() -> dict[Host, dict[str, Any]]:
            found = {}
            for host, watcher in watchers.items():
                output, _ = watcher.communicate(timeout=60)
                found[host] = json.loads(output)
            return found

        return results

    def tables(self, expected: dict[Host, list[str]]) -> dict[Host, dict[str, Any]]:
        """
        Each host's peers once its table lists exactly the names expected
        for it (watched in every host at once), by host then name.
        """
        found = self.watch(expected)()
        for host, names in expected.items():
            self.assertEqual(sorted(found[host]["peers"]), sorted(names), host.name)
        return {host: result["peers"] for host, result in found.items()}

    def discover(self, host: Host, *args: str) -> dict[str, Any]:
        """
        C{netservices discover --json} in C{host}: the instances by name.
        """
        done = host.run(
            ["netservices", "discover", "--json", "--timeout", "1", "--port", str(DISCOVERY), *args]
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        peers = [json.loads(line) for line in done.stdout.decode().splitlines()]
        return {peer["name"]: peer for peer in peers}

    def test_threeHostsDualStack(self) -> None:
        """
        Three hosts on one segment, each with C{interface = 0.0.0.0},
        C{broadcast = auto} and IPv6: every table lists the two others, with
        their IPv4 and IPv6 echo endpoints on the segment, which answer;
        C{discover} from a host with no daemon lists all three by each
        family; a stopped instance leaves both other tables, and is logged
        as forgotten there.
        """
        lab = Lab.create(self)
        lan = lab.segment("lan")
        hosts = [lab.host(name, lan) for name in ("a", "b", "c")]
        outsider = lab.host("d", lan)
        daemons, results, delay = self.startWatched(hosts, "ipv6 = yes\n")
        listed: set[str] = set()
        for host, found in zip(hosts, results):
            others = [h.name for h in hosts if h is not host]
            self.assertEqual(sorted(found["peers"]), others)
            for other in hosts:
                if other is host:
                    continue
                entry = found["peers"][other.name]
                expected = {f"{other.ipv4(lan)}:{ECHO}", f"[{other.ipv6(lan)}]:{ECHO}"}
                self.assertEqual(set(entry["endpoints"]["echo"]), expected)
                self.assertEqual(entry["via"], host.interface(lan))
                listed.update(expected)
        # Every endpoint listed answers from the segment.
        answered = outsider.call("tests.support.endpointsEcho", sorted(listed))
        self.assertEqual(answered, {e: True for e in listed})

        for family, args in (("4", ["--family", "4"]), ("6", ["--family", "6"])):
            listed = self.discover(outsider, "--broadcast", "auto", *args)
            self.assertEqual(sorted(listed), ["a", "b", "c"], family)
            for host in hosts:
                echo = listed[host.name]["endpoints"]["echo"]
                address = host.ipv4(lan) if family == "4" else f"[{host.ipv6(lan)}]"
                self.assertIn(f"{address}:{ECHO}", echo)
        both = self.discover(outsider, "--interface", outsider.interface(lan))
        for host in hosts:
            self.assertEqual(
                set(both[host.name]["endpoints"]["echo"]),
                {f"{host.ipv4(lan)}:{ECHO}", f"[{host.ipv6(lan)}]:{ECHO}"},
            )

        stopped = time.monotonic()
        daemons[2].stop()
        expiry = []
        for host in hosts[:2]:
            gone = host.call("tests.support.peersWhen", WEB, ["c"], present=False)
            self.assertNotIn("c", gone["peers"])
            expiry.append(gone["at"] - stopped)
        for daemon in daemons[:2]:
            daemon.waitForLog("discovery: c (")
            self.assertIn("not heard for", daemon.log())
        print(
            f"\nlab discovery (IPv4 broadcast + IPv6 multicast, interval {INTERVAL} s, ttl {TTL} s): "
            f"every table complete {delay:.2f} s after the last instance started listening; "
            f"a stopped instance left every table within {max(expiry):.2f} s of its stop"
        )

    def test_ipv6Only(self) -> None:
        """
        On an IPv6-only segment, three hosts find each other by multicast,
        with IPv6 endpoints only, and C{discover --family 6} from a fourth
        lists them.
        """
        lab = Lab.create(self)
        lan6 = lab.segment("v6", ipv4=False)
        hosts = [lab.host(name, lan6) for name in ("a", "b", "c")]
        outsider = lab.host("d", lan6)
        _, results, delay = self.startWatched(hosts, "ipv6 = yes\n")
        for host, found in zip(hosts, results):
            others = [h.name for h in hosts if h is not host]
            self.assertEqual(sorted(found["peers"]), others)
            for other in others:
                [other6] = [h.ipv6(lan6) for h in hosts if h.name == other]
                self.assertEqual(found["peers"][other]["endpoints"]["echo"], [f"[{other6}]:{ECHO}"])
        listed = self.discover(outsider, "--family", "6", "--interface", outsider.interface(lan6))
        self.assertEqual(sorted(listed), ["a", "b", "c"])
        print(
            f"\nlab discovery (IPv6 only, interval {INTERVAL} s): every table complete "
            f"{delay:.2f} s after the last instance started listening"
        )

    def test_ipv4Only(self) -> None:
        """
        On an IPv4-only segment, three hosts each bound to their own address
        and broadcasting to the segment's broadcast address find each other,
        with IPv4 endpoints only.
        """
        lab = Lab.create(self)
        lan4 = lab.segment("v4", ipv6=False)
        hosts = [lab.host(name, lan4) for name in ("a", "b", "c")]
        self.start(
            *[
                (host, host.name, {
                    "discovery": f"interface = {host.ipv4(lan4)}\nbroadcast = {lan4.ipv4Broadcast}\n",
                    "echo": f"tcp:{ECHO}",
                })
                for host in hosts
            ]
        )  # fmt: skip
        tables = self.tables({host: [h.name for h in hosts if h is not host] for host in hosts})
        for host, peers in tables.items():
            for other in hosts:
                if other is not host:
                    self.assertEqual(
                        peers[other.name]["endpoints"]["echo"], [f"{other.ipv4(lan4)}:{ECHO}"]
                    )

    def test_ipv4Multicast(self) -> None:
        """
        With C{broadcast} a group of 239.255.0.0/16, three hosts (two bound
        to every address, one to its own) find each other by IPv4
        multicast, and C{discover --broadcast GROUP} from a fourth host
        lists them.
        """
        lab = Lab.create(self)
        lan4 = lab.segment("v4", ipv6=False)
        hosts = [lab.host(name, lan4) for name in ("a", "b", "c")]
        outsider = lab.host("d", lan4)
        group = "broadcast = 239.255.0.9\n"
        self.start(
            (hosts[0], "a", {"discovery": group}),
            (hosts[1], "b", {"discovery": group}),
            (hosts[2], "c", {"discovery": group + f"interface = {hosts[2].ipv4(lan4)}\n"}),
        )
        self.tables({host: [h.name for h in hosts if h is not host] for host in hosts})
        listed = self.discover(outsider, "--broadcast", "239.255.0.9")
        self.assertEqual(sorted(listed), ["a", "b", "c"])

    def test_dualHomed(self) -> None:
        """
        A host on two segments is listed on each with that segment's
        address: its echo, bound to its address on the first segment only,
        is listed (and answers) there and not on the second, while its web
        service, on every address, is listed on both; the host itself lists
        the instances of both segments.
        """
        lab = Lab.create(self)
        one, two = lab.segment("one"), lab.segment("two")
        middle = lab.host("m", one, two)
        left, right = lab.host("l", one), lab.host("r", two)
        self.start(
            (middle, "m", {"echo": f"tcp:{ECHO}:interface={middle.ipv4(one)}"}),
            (left, "l", {}),
            (right, "r", {}),
        )
        tables = self.tables({left: ["m"], right: ["m"], middle: ["l", "r"]})
        fromLeft, fromRight, both = tables[left]["m"], tables[right]["m"], tables[middle]
        self.assertEqual(fromLeft["endpoints"]["echo"], [f"{middle.ipv4(one)}:{ECHO}"])
        self.assertEqual(fromLeft["endpoints"]["web"], [f"{middle.ipv4(one)}:{WEB}"])
        self.assertNotIn("echo", fromRight["endpoints"])
        self.assertEqual(fromRight["endpoints"]["web"], [f"{middle.ipv4(two)}:{WEB}"])
        answered = left.call("tests.support.endpointsEcho", fromLeft["endpoints"]["echo"])
        self.assertEqual(list(answered.values()), [True])
        self.assertEqual(both["l"]["via"], middle.interface(one))
        self.assertEqual(both["r"]["via"], middle.interface(two))

    def test_limitedBroadcastWithoutRoute(self) -> None:
        """
        C{broadcast = <broadcast>} with C{interface = 0.0.0.0} on a host
        without a route for 255.255.255.255 (the lab has no default route):
        C{/health} says 503 degraded with the reason, and the daemon logs it
        once.  An instance bound to its own address with C{<broadcast>}
        (which goes out: the kernel sends it by the interface of that
        address) still receives the subnet's broadcasts, so C{discover
        --broadcast 198.18.0.255} from another host finds both.
        """
        lab = Lab.create(self)
        lan = lab.segment("lan")
        unrouted, bound = lab.host("u", lan), lab.host("b", lan)
        client = lab.host("c", lan)
        daemon, _ = self.start(
            (unrouted, "u", {"discovery": "broadcast = <broadcast>\n"}),
            (bound, "b", {"discovery": f"interface = {bound.ipv4(lan)}\nbroadcast = <broadcast>\n"}),
        )
        status, body = unrouted.python(_HEALTH, str(WEB)).split(" ", 1)
        document = json.loads(body)
        self.assertEqual((status, document["status"]), ("503", "degraded"))
        [reason] = document["problems"]["discovery"]
        self.assertEqual(
            reason, f"cannot send announces to 255.255.255.255:{DISCOVERY}: no route to it"
        )
        listed = self.discover(client, "--broadcast", lan.ipv4Broadcast)
        self.assertEqual(sorted(listed), ["b", "u"])
        self.assertEqual(daemon.log().count(reason), 1)


# Prints what peersWhen(*arguments) returns.
_WATCH = """\
import json, sys
from tests.support import peersWhen
print(json.dumps(peersWhen(*json.loads(sys.argv[1]))))
"""

# Prints the status code and the body of /health (503 included).
_HEALTH = """\
import sys, urllib.request, urllib.error
url = f"http://127.0.0.1:{sys.argv[1]}/health"
deadline = 0
for _ in range(200):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            code, body = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read().decode()
    if code != 200:
        break
    import time; time.sleep(0.05)
print(code, body)
"""
