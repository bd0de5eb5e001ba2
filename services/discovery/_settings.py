# -*- test-case-name: tests.unit.config.test_discovery_config -*-
"""
The values the discovery and mDNS services take: plain, frozen, and
already checked (the daemon builds them from C{[discovery]} and C{[mdns]};
an application embedding a service builds them itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.discovery._net import AUTO

__all__ = ["DiscoverySettings", "MDNSSettings"]


@dataclass(frozen=True)
class DiscoverySettings:
    """
    How a L{services.discovery.DiscoveryService} announces, answers and
    remembers.

    @ivar port: the UDP port every instance shares, announces to and
        answers on.
    @ivar interface: the local IPv4 address to bind and send from
        (C{0.0.0.0}: every interface).
    @ivar broadcast: where announces go: C{auto} (the broadcast address of
        each interface C{interface} covers), an IPv4 broadcast address,
        C{<broadcast>} (255.255.255.255), or a multicast group.
    @ivar ipv6: whether to announce and answer over IPv6 multicast too, on
        each IPv6 interface.
    @ivar interval: seconds between announces.
    @ivar ttl: how long peers may remember this instance, in seconds.
    @ivar name: the name announced; C{""}: the host name.
    @ivar sourceRate: replies per second to one source address.
    @ivar sourceBurst: replies one source address may get at once.
    @ivar globalRate: replies per second to all sources together.
    @ivar maxPeerTtl: forget a peer after at most this long (or C{ttl}, if
        longer) without news, whatever ttl it announces.
    @ivar maxPeersPerSource: peers one source may place in the table.
    @ivar maxPortsPerSource: distinct ports one source may announce.
    """

    port: int = 8009
    interface: str = "127.0.0.1"
    broadcast: str = AUTO
    ipv6: bool = False
    interval: float = 5.0
    ttl: int = 15
    name: str = ""
    sourceRate: float = 1.0
    sourceBurst: int = 5
    globalRate: float = 50.0
    maxPeerTtl: int = 60
    maxPeersPerSource: int = 16
    maxPortsPerSource: int = 64


@dataclass(frozen=True)
class MDNSSettings:
    """
    How a L{services.discovery.MDNSService} advertises.

    @ivar name: the instance name to claim; C{""}: the host name's first
        label.
    @ivar interfaces: interface names, or C{("all",)}: every one that is
        up and can multicast, loopback aside.
    @ivar families: 4 and/or 6.
    """

    name: str = ""
    interfaces: tuple[str, ...] = ("all",)
    families: tuple[int, ...] = (4, 6)
