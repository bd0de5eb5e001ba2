# -*- test-case-name: tests.unit.discovery.test_net -*-
"""
The host's network interfaces and their addresses, as the kernel has them
now, and what discovery derives from them: the IPv4 broadcast address of
every interface, the IPv6 interfaces that can multicast, and which of them
holds an address.

L{listInterfaces} reads the kernel through psutil (C{getifaddrs(3)}, which
lists every address, secondary ones included, with the broadcast address
the kernel keeps for it) and C{socket.if_nametoindex}.  Everything else
takes the list as a value, so tests pass fakes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Address4",
    "Interface",
    "holding",
    "listInterfaces",
    "localAddressTowards",
]


@dataclass(frozen=True)
class Address4:
    """
    One IPv4 address of an interface.

    @ivar address: the address, dotted.
    @ivar prefix: the length of its network prefix.
    @ivar broadcast: the subnet-directed broadcast address the kernel keeps
        for it, or computed from the prefix when the kernel keeps none
        (loopback); C{""} for a /31 or /32, which have none.
    """

    address: str
    prefix: int
    broadcast: str

    def network(self) -> ipaddress.IPv4Network:
        """
        The network it is on.
        """
        return ipaddress.IPv4Interface(f"{self.address}/{self.prefix}").network


@dataclass(frozen=True)
class Interface:
    """
    One network interface.

    @ivar name: its name (C{eth0}).
    @ivar index: its index, for IPv6 multicast.
    @ivar up: whether it is up.
    @ivar loopback: whether it is a loopback interface.
    @ivar multicast: whether it can multicast.
    @ivar ipv4: its IPv4 addresses.
    @ivar ipv6: its IPv6 addresses, link-local ones (C{fe80::/10}) left out:
        they are reachable only with the interface of the host that hears
        them, which an announce cannot know.
    """

    name: str
    index: int
    up: bool = True
    loopback: bool = False
    multicast: bool = True
    ipv4: tuple[Address4, ...] = ()
    ipv6: tuple[str, ...] = ()

    def addresses(self) -> tuple[str, ...]:
        """
        All its addresses, IPv4 first.
        """
        return tuple(a.address for a in self.ipv4) + self.ipv6


def _prefix(netmask: str | None, bits: int) -> int:
    if not netmask:
        return bits
    try:
        return ipaddress.ip_network(f"0.0.0.0/{netmask}" if bits == 32 else f"::/{netmask}").prefixlen
    except ValueError:
        return bits


def _broadcast(address: str, prefix: int, kernel: str | None) -> str:
    if kernel:
        return kernel
    if prefix >= 31:
        return ""
    return str(ipaddress.IPv4Interface(f"{address}/{prefix}").network.broadcast_address)


def listInterfaces() -> list[Interface]:
    """
    The host's interfaces now, by name.
    """
    import psutil

    stats = psutil.net_if_stats()
    found = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue  # gone meanwhile
        flags = set(getattr(stats.get(name), "flags", "").split(","))
        ipv4, ipv6 = [], []
        for entry in addresses:
            if entry.family == socket.AF_INET:
                prefix = _prefix(entry.netmask, 32)
                ipv4.append(
                    Address4(entry.address, prefix, _broadcast(entry.address, prefix, entry.broadcast))
                )
            elif entry.family == socket.AF_INET6:
                address = entry.address.split("%")[0]
                if not ipaddress.IPv6Address(address).is_link_local:
                    ipv6.append(address)
        up = name in stats and stats[name].isup
        found.append(
            Interface(
                name,
                index,
                up=up,
                loopback="loopback" in flags,
                multicast="multicast" in flags,
                ipv4=tuple(ipv4),
                ipv6=tuple(ipv6),
            )
        )
    return found


def holding(interfaces: Iterable[Interface], address: str) -> Interface | None:
    """
    The interface that has C{address}, or the one whose IPv4 network
    contains it (an on-link neighbour), or L{None}.
    """
    address = address.split("%")[0]
    interfaces = list(interfaces)
    for interface in interfaces:
        if address in interface.addresses():
            return interface
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 4:
        for interface in interfaces:
            if any(ip in a.network() for a in interface.ipv4):
                return interface
    return None


def localAddressTowards(address: Sequence[object], family: int) -> str | None:
    """
    The local address the kernel would send from to C{address} (its route
    decision, read by connecting a UDP socket: nothing is sent), or
    L{None} when there is no route.
    """
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            probe.connect(tuple(address))
        except OSError:
            return None
        return str(probe.getsockname()[0]).split("%")[0]
