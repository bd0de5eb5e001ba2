# -*- test-case-name: tests.unit.discovery.test_net -*-
"""
Tests for L{services.discovery._net}, L{services.discovery._multicast} and
L{services.net.interfaces}: which endpoints an announce lists on each
interface, where IPv4 announces go, which interfaces join the IPv4 group,
and how the kernel's interface list is read (with a fake psutil).
"""

from __future__ import annotations

import errno
import socket
from collections import namedtuple
from typing import Any, ClassVar

import psutil
from twisted.trial.unittest import SynchronousTestCase

from services.discovery._net import (
    GROUP6,
    endpointsOn,
    ipv4Targets,
    ipv6Interfaces,
    ipv6Targets,
)
from services.discovery._multicast import IPv4Group
from services.net.interfaces import Address4, Interface, holding, listInterfaces

LO = Interface(
    "lo", 1, loopback=True, multicast=False, ipv4=(Address4("127.0.0.1", 8, "127.255.255.255"),)
)
ETH0 = Interface(
    "eth0",
    2,
    ipv4=(Address4("198.18.0.1", 24, "198.18.0.255"), Address4("198.18.5.1", 24, "198.18.5.255")),
    ipv6=("2001:db8::1",),
)
ETH1 = Interface("eth1", 3, ipv4=(Address4("198.18.1.1", 24, "198.18.1.255"),))
DOWN = Interface("eth2", 4, up=False, ipv4=(Address4("198.18.2.1", 24, "198.18.2.255"),))
V6ONLY = Interface("eth3", 5, ipv6=("2001:db8:3::1",))
ALL = [LO, ETH0, ETH1, DOWN, V6ONLY]


class FakeGroupSocket:
    """
    Records the IPv4 group memberships asked of it; refuses those of the
    interface addresses in C{refuse} with their errno.
    """

    def __init__(self, refuse: dict[str, int] | None = None) -> None:
        self.refuse = refuse or {}
        self.joined: list[tuple[str, str]] = []
        self.closed = False

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        """
        Record an C{IP_ADD_MEMBERSHIP}, or raise its refusal.
        """
        assert (level, option) == (socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP)
        group, source = socket.inet_ntoa(value[:4]), socket.inet_ntoa(value[4:])
        if source in self.refuse:
            raise OSError(self.refuse[source], "refused")
        self.joined.append((group, source))

    def close(self) -> None:
        """
        Remember being closed.
        """
        self.closed = True


class IPv4GroupTests(SynchronousTestCase):
    """
    L{IPv4Group}: the group is joined once on each interface that can
    multicast, as the interfaces come and go.
    """

    def test_noSocketJoinsNothing(self) -> None:
        """
        Until it has a socket, there is nothing to join and no problem.
        """
        self.assertEqual(IPv4Group("239.255.0.9", "0.0.0.0").join(ALL), [])

    def test_joinsOncePerInterface(self) -> None:
        """
        Every interface that is up and can multicast is joined by its first
        address, once; one that comes back after going is joined again.
        """
        group = IPv4Group("239.255.0.9", "0.0.0.0")
        skt = FakeGroupSocket()
        group.socket = skt  # type: ignore[assignment]
        self.assertEqual(group.join(ALL), [])
        self.assertEqual(group.join(ALL), [])
        self.assertEqual(
            skt.joined, [("239.255.0.9", "198.18.0.1"), ("239.255.0.9", "198.18.1.1")]
        )
        group.join([ETH0])
        group.join(ALL)
        self.assertEqual(skt.joined[-1], ("239.255.0.9", "198.18.1.1"))
        self.assertEqual(len(skt.joined), 3)

    def test_refusals(self) -> None:
        """
        A refused join is a problem naming the interface, tried again next
        time; C{EADDRINUSE} means a member already, not a problem.
        """
        group = IPv4Group("239.255.0.9", "0.0.0.0")
        skt = FakeGroupSocket({"198.18.0.1": errno.EADDRINUSE, "198.18.1.1": errno.ENODEV})
        group.socket = skt  # type: ignore[assignment]
        self.assertEqual(group.join(ALL), ["cannot join 239.255.0.9 on eth1: refused"])
        self.assertEqual(group.join(ALL), ["cannot join 239.255.0.9 on eth1: refused"])
        del skt.refuse["198.18.1.1"]
        self.assertEqual(group.join(ALL), [])
        self.assertEqual(skt.joined, [("239.255.0.9", "198.18.1.1")])

    def test_close(self) -> None:
        """
        Closing closes our handle on the socket and forgets the
        memberships.
        """
        group = IPv4Group("239.255.0.9", "198.18.1.1")
        skt = FakeGroupSocket()
        group.socket = skt  # type: ignore[assignment]
        group.join(ALL)
        group.close()
        self.assertTrue(skt.closed)
        self.assertIsNone(group.socket)
        self.assertEqual(group.join(ALL), [])


class EndpointsTests(SynchronousTestCase):
    """
    L{endpointsOn}: what is reachable from an interface's segment.
    """

    def test_wildcard(self) -> None:
        """
        A listener on 0.0.0.0 is reachable at every IPv4 address of the
        interface; one on C{::} (dual-stack) at every IPv6 and IPv4 one.
        """
        services, endpoints = endpointsOn(ETH0, {"echo": [("0.0.0.0", 7)], "web": [("::", 8)]})
        self.assertEqual(services, {"echo": [7], "web": [8]})
        self.assertEqual(endpoints["echo"], ["198.18.0.1:7", "198.18.5.1:7"])
        self.assertEqual(endpoints["web"], ["[2001:db8::1]:8", "198.18.0.1:8", "198.18.5.1:8"])

    def test_boundElsewhere(self) -> None:
        """
        A listener bound to an address of another interface is not
        reachable here: the service is left out, ports included; one bound
        to this interface's address is listed at it alone.
        """
        listeners = {"echo": [("198.18.1.1", 7)], "web": [("198.18.5.1", 8), ("127.0.0.1", 8)]}
        services, endpoints = endpointsOn(ETH0, listeners)
        self.assertEqual(services, {"web": [8]})
        self.assertEqual(endpoints, {"web": ["198.18.5.1:8"]})
        self.assertEqual(endpointsOn(ETH1, listeners)[1], {"echo": ["198.18.1.1:7"]})
        self.assertEqual(endpointsOn(LO, listeners)[1], {"web": ["127.0.0.1:8"]})

    def test_noInterface(self) -> None:
        """
        Without a known interface, each listener is listed at its own
        address, wildcards left out.
        """
        services, endpoints = endpointsOn(None, {"echo": [("127.0.0.1", 7), ("0.0.0.0", 9)]})
        self.assertEqual(services, {"echo": [7, 9]})
        self.assertEqual(endpoints, {"echo": ["127.0.0.1:7"]})


class TargetTests(SynchronousTestCase):
    """
    L{ipv4Targets} and L{ipv6Targets}: where announces go.
    """

    listeners: ClassVar[dict[str, list[tuple[str, int]]]] = {"echo": [("0.0.0.0", 7)]}

    def test_autoEveryInterface(self) -> None:
        """
        C{auto} with C{0.0.0.0}: the broadcast address of every address of
        every interface that is up, each with that interface's endpoints.
        """
        targets, problems = ipv4Targets(ALL, "0.0.0.0", "auto", 9, self.listeners)
        self.assertEqual(problems, [])
        self.assertEqual(
            [(t.address, t.via) for t in targets],
            [
                (("127.255.255.255", 9), "lo"),
                (("198.18.0.255", 9), "eth0"),
                (("198.18.5.255", 9), "eth0"),
                (("198.18.1.255", 9), "eth1"),
            ],
        )
        self.assertEqual(targets[3].endpoints, {"echo": ["198.18.1.1:7"]})

    def test_autoOneAddress(self) -> None:
        """
        C{auto} with one address: that address's broadcast address only.
        """
        targets, _ = ipv4Targets(ALL, "198.18.5.1", "auto", 9, self.listeners)
        self.assertEqual([t.address for t in targets], [("198.18.5.255", 9)])

    def test_autoNothing(self) -> None:
        """
        C{auto} where no interface has a broadcast address is a problem that
        says so (C{/health} shows it).
        """
        targets, problems = ipv4Targets([V6ONLY], "0.0.0.0", "auto", 9, self.listeners)
        self.assertEqual(targets, [])
        self.assertEqual(problems, ["broadcast = auto: no IPv4 broadcast address on every interface"])
        _, problems = ipv4Targets(ALL, "198.18.9.9", "auto", 9, self.listeners)
        self.assertEqual(problems, ["broadcast = auto: no IPv4 broadcast address on 198.18.9.9"])

    def test_explicitFromAddress(self) -> None:
        """
        One configured broadcast address, sent from one address: the
        endpoints of the interface that holds it.
        """
        [target], problems = ipv4Targets(ALL, "198.18.1.1", "<broadcast>", 9, self.listeners)
        self.assertEqual(problems, [])
        self.assertEqual((target.address, target.via), (("255.255.255.255", 9), "eth1"))
        self.assertEqual(target.endpoints, {"echo": ["198.18.1.1:7"]})

    def test_group(self) -> None:
        """
        A multicast group: one announce to it on every IPv4 interface that
        is up and can multicast (not loopback), each sent from that
        interface's first address (or from the bound address alone).
        """
        targets, problems = ipv4Targets(ALL, "0.0.0.0", "239.255.0.9", 9, self.listeners)
        self.assertEqual(problems, [])
        self.assertEqual(
            [(t.address, t.via, t.source) for t in targets],
            [(("239.255.0.9", 9), "eth0", "198.18.0.1"), (("239.255.0.9", 9), "eth1", "198.18.1.1")],
        )
        targets, _ = ipv4Targets(ALL, "198.18.5.1", "239.255.0.9", 9, self.listeners)
        self.assertEqual([t.source for t in targets], ["198.18.5.1"])
        _, problems = ipv4Targets([LO], "0.0.0.0", "239.255.0.9", 9, self.listeners)
        self.assertEqual(
            problems, ["broadcast = 239.255.0.9: no IPv4 interface that can multicast on any interface"]
        )

    def test_ipv6(self) -> None:
        """
        IPv6 announces go to the group on every interface that is up, can
        multicast and is not loopback, each with its endpoints.
        """
        self.assertEqual([i.name for i in ipv6Interfaces(ALL)], ["eth0", "eth1", "eth3"])
        targets = ipv6Targets(ALL, 9, {"echo": [("::", 7)]})
        self.assertEqual({t.address for t in targets}, {(GROUP6, 9)})
        self.assertEqual([t.index for t in targets], [2, 3, 5])
        self.assertEqual(targets[2].endpoints, {"echo": ["[2001:db8:3::1]:7"]})

    def test_holding(self) -> None:
        """
        L{holding} finds the interface with an address, or with the IPv4
        network an address is on.
        """
        self.assertIs(holding(ALL, "198.18.5.1"), ETH0)
        self.assertIs(holding(ALL, "198.18.1.77"), ETH1)
        self.assertIs(holding(ALL, "2001:db8:3::1"), V6ONLY)
        self.assertIsNone(holding(ALL, "192.0.2.1"))


_Entry = namedtuple("_Entry", "family address netmask broadcast ptp")
_Stats = namedtuple("_Stats", "isup flags")


class ListInterfacesTests(SynchronousTestCase):
    """
    L{listInterfaces} reads what psutil reports of the kernel's interfaces.
    """

    def fakePsutil(self, addrs: dict[str, Any], stats: dict[str, Any]) -> None:
        self.patch(psutil, "net_if_addrs", lambda: addrs)
        self.patch(psutil, "net_if_stats", lambda: stats)
        indexes = {"lo": 1, "eth0": 2}

        def nameToIndex(name: str) -> int:
            if name not in indexes:
                raise OSError(19, "No such device")
            return indexes[name]

        self.patch(socket, "if_nametoindex", nameToIndex)

    def test_read(self) -> None:
        """
        Addresses, prefixes and the kernel's broadcast addresses are read;
        loopback's (which the kernel does not keep) is computed from its
        prefix; link-local IPv6 addresses are left out; flags say up,
        loopback and multicast.
        """
        self.fakePsutil(
            {
                "lo": [
                    _Entry(socket.AF_INET, "127.0.0.1", "255.0.0.0", None, None),
                    _Entry(socket.AF_INET6, "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None, None),
                ],
                "eth0": [
                    _Entry(socket.AF_INET, "198.18.0.1", "255.255.255.0", "198.18.0.255", None),
                    _Entry(socket.AF_INET6, "2001:db8::1", "ffff:ffff:ffff:ffff::", None, None),
                    _Entry(socket.AF_INET6, "fe80::1%eth0", "ffff:ffff:ffff:ffff::", None, None),
                    _Entry(getattr(socket, "AF_PACKET", 17), "02:00:00:00:00:01", None, None, None),
                ],
            },
            {
                "lo": _Stats(True, "up,loopback,running"),
                "eth0": _Stats(True, "up,broadcast,running,multicast"),
            },
        )
        lo, eth0 = sorted(listInterfaces(), key=lambda i: i.index)
        self.assertEqual(
            lo, Interface("lo", 1, True, True, False, (Address4("127.0.0.1", 8, "127.255.255.255"),), ("::1",))
        )
        self.assertEqual(
            eth0,
            Interface(
                "eth0", 2, True, False, True, (Address4("198.18.0.1", 24, "198.18.0.255"),), ("2001:db8::1",)
            ),
        )

    def test_goneMeanwhile(self) -> None:
        """
        An interface that disappears while being read is left out.
        """
        self.fakePsutil({"eth9": [], "lo": []}, {"lo": _Stats(True, "up,loopback")})
        self.assertEqual([i.name for i in listInterfaces()], ["lo"])

    def test_real(self) -> None:
        """
        On this host, the list has loopback with 127.0.0.1 and a broadcast
        address for it.
        """
        [lo] = [i for i in listInterfaces() if i.loopback]
        self.assertIn(Address4("127.0.0.1", 8, "127.255.255.255"), lo.ipv4)


class QueryPlanTests(SynchronousTestCase):
    """
    Where C{netservices discover} sends its queries (C{--broadcast},
    C{--interface}, C{--family}).
    """

    def plan(self, broadcast: str = "127.255.255.255", family: str = "any", interface: str = ""):
        from services.discovery._client import _queryPlan, chooseInterface

        chosen = chooseInterface(ALL, interface) if interface else None
        destinations, bind, over6 = _queryPlan((broadcast, 9), family, chosen, ALL)
        return destinations, bind, [i.name for i in over6]

    def test_default(self) -> None:
        """
        By default, this host only: IPv4 to 127.255.255.255 from 127.0.0.1,
        no IPv6.
        """
        self.assertEqual(self.plan(), (["127.255.255.255"], "127.0.0.1", []))

    def test_auto(self) -> None:
        """
        C{auto}: every interface's broadcast address, and IPv6 multicast on
        every IPv6 interface; C{--family} keeps one of the two.
        """
        everything = ["127.255.255.255", "198.18.0.255", "198.18.5.255", "198.18.1.255"]
        self.assertEqual(self.plan("auto"), (everything, "", ["eth0", "eth1", "eth3"]))
        self.assertEqual(self.plan("auto", "4"), (everything, "", []))
        self.assertEqual(self.plan("auto", "6"), ([], "", ["eth0", "eth1", "eth3"]))

    def test_interface(self) -> None:
        """
        C{--interface}, by name or address: IPv4 from its address, IPv6 on
        it only.
        """
        self.assertEqual(
            self.plan("auto", interface="198.18.1.1"), (["198.18.1.255"], "198.18.1.1", ["eth1"])
        )
        self.assertEqual(self.plan(family="6", interface="eth3"), ([], "", ["eth3"]))

    def test_noSuchInterface(self) -> None:
        """
        An interface the host does not have is an error that lists those it
        has.
        """
        from services.discovery._client import chooseInterface

        with self.assertRaises(ValueError) as caught:
            chooseInterface(ALL, "wlan0")
        self.assertEqual(
            str(caught.exception),
            "no interface is named wlan0 or has that address (there are: lo, eth0, eth1, eth2, eth3)",
        )
