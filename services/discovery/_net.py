# -*- test-case-name: tests.unit.discovery.test_net -*-
"""
Where discovery speaks, and what it says there: one announce per interface
it serves, each listing the endpoints that can be reached from that
interface's segment.

  - IPv4: to the subnet-directed broadcast address of every interface
    (C{broadcast = auto}), or to one configured address (a subnet's
    broadcast address, C{<broadcast>}: 255.255.255.255, or one host).
  - IPv6: to the link-local multicast group L{GROUP6} (C{ff02::114}, the
    group IANA keeps for any private experiment, scope link: it never
    crosses a router) on every IPv6 interface that can multicast, hop
    limit 1.

A service's endpoints on an interface are its listeners' addresses there:
all of the interface's addresses (of the family, and IPv4 too for C{::}:
sockets are dual-stack) for a listener bound to a wildcard address, the
listener's own address if the interface has it, none otherwise.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.discovery._peers import describe
from services.discovery._wire import MAX_ENDPOINTS, MAX_PORTS, MAX_SERVICES, isServiceName
from services.net.broadcast import AUTO_BROADCAST, LIMITED_BROADCAST, LIMITED_BROADCAST_ADDRESS
from services.net.interfaces import Interface, holding, localAddressTowards
from services.net.listener import listeningPorts

__all__ = [
    "AUTO",
    "GROUP6",
    "LIMITED_BROADCAST",
    "LIMITED_BROADCAST_ADDRESS",
    "Target",
    "endpointsOn",
    "interfaceNamed",
    "ipv4GroupInterfaces",
    "ipv4Targets",
    "ipv6Interfaces",
    "isMulticast",
    "joinGroup4",
    "listenerAddresses",
    "multicastOptions4",
    "multicastSocket6",
    "receiverAddresses",
    "sendFrom4",
    "socketOf",
]

#: C{broadcast = auto}: every IPv4 interface's own broadcast address.
AUTO = AUTO_BROADCAST
#: The IPv6 multicast group of discovery (link-local scope).
GROUP6 = "ff02::114"

Listeners = Mapping[str, Sequence[tuple[str, int]]]


@dataclass(frozen=True)
class Target:
    """
    One destination of announces.

    @ivar address: where they go.
    @ivar via: the interface they leave by (C{""}: the kernel's choice).
    @ivar services: service name to the ports reachable there.
    @ivar endpoints: service name to the endpoints reachable there.
    @ivar index: the interface index that IPv6 multicast is sent from
        (0: none).
    @ivar source: the interface address that IPv4 multicast is sent from
        (C{""}: none).
    """

    address: tuple[str, int]
    via: str = ""
    services: Mapping[str, Sequence[int]] = field(default_factory=dict)
    endpoints: Mapping[str, Sequence[str]] = field(default_factory=dict)
    index: int = 0
    source: str = ""


def listenerAddresses(root: Any, exclude: Iterable[str] = ()) -> dict[str, list[tuple[str, int]]]:
    """
    The (host, port) of every TCP or UDP listener of each named child of
    C{root}, by service name, leaving out C{exclude} (UNIX sockets have
    none).
    """
    skip = set(exclude)
    found: dict[str, list[tuple[str, int]]] = {}
    for child in getattr(root, "services", ()):
        name = getattr(child, "name", None)
        if not name or name in skip or not isServiceName(name):
            continue
        for port in listeningPorts(child):
            host = port.getHost()
            if isinstance(getattr(host, "port", None), int) and hasattr(host, "host"):
                found.setdefault(name, []).append((str(host.host).split("%")[0], host.port))
    return found


def securePorts(root: Any) -> frozenset[tuple[str, int]]:
    """
    The (service name, port) of every listener among the named children of
    C{root} whose connections speak TLS (its C{secure} attribute), so that
    they are not advertised as plain.
    """
    found: set[tuple[str, int]] = set()

    def walk(name: str, service: Any) -> None:
        port = getattr(service, "port", None)
        if port is not None and getattr(service, "secure", False) is True:
            number = getattr(port.getHost(), "port", None)
            if isinstance(number, int):
                found.add((name, number))
        for child in getattr(service, "services", ()):
            walk(name, child)

    for child in getattr(root, "services", ()):
        name = getattr(child, "name", None)
        if name and isServiceName(name):
            walk(name, child)
    return frozenset(found)


def _reachable(interface: Interface, host: str) -> tuple[str, ...]:
    if host in ("", "0.0.0.0"):
        return tuple(a.address for a in interface.ipv4)
    if host == "::":
        return interface.ipv6 + tuple(a.address for a in interface.ipv4)
    if host.startswith("::ffff:") and host[7:] in interface.addresses():
        return (host[7:],)
    return (host,) if host in interface.addresses() else ()


def endpointsOn(
    interface: Interface | None, listeners: Listeners
) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """
    The ports and the endpoints of each service reachable on C{interface}
    (every listener, at its own address, if L{None}), within the wire's
    limits.
    """
    services: dict[str, list[int]] = {}
    endpoints: dict[str, list[str]] = {}
    for name, bound in sorted(listeners.items()):
        if len(services) >= MAX_SERVICES:
            break
        found: list[str] = []
        ports: list[int] = []
        for host, port in bound:
            hosts = (host,) if interface is None else _reachable(interface, host)
            for address in hosts:
                endpoint = describe((address, port))
                if endpoint not in found and address not in ("", "0.0.0.0", "::"):
                    found.append(endpoint)
            if hosts and port not in ports:
                ports.append(port)
        if ports:
            services[name] = sorted(ports)[:MAX_PORTS]
            endpoints[name] = found[:MAX_ENDPOINTS]
    return services, endpoints


def ipv4Targets(
    interfaces: Sequence[Interface], bind: str, broadcast: str, port: int, listeners: Listeners
) -> tuple[list[Target], list[str]]:
    """
    Where IPv4 announces go, and why some cannot.

    @param bind: the configured local address (C{0.0.0.0}: every
        interface).
    @param broadcast: L{AUTO}, C{<broadcast>}, an address, or a multicast
        group (announced to on every interface C{bind} covers).
    """
    if broadcast == AUTO:
        return _autoTargets(interfaces, bind, port, listeners)
    if isMulticast(broadcast):
        return _groupTargets(interfaces, bind, broadcast, port, listeners)
    address = LIMITED_BROADCAST_ADDRESS if broadcast == LIMITED_BROADCAST else broadcast
    if bind in ("", "0.0.0.0"):
        local = localAddressTowards((address, port), socket.AF_INET)
        if local is None:
            return [], [f"cannot send announces to {address}:{port}: no route to it"]
    else:
        local = bind
    interface = holding(interfaces, local)
    services, endpoints = endpointsOn(interface, listeners)
    via = interface.name if interface is not None else ""
    return [Target((address, port), via, services, endpoints)], []


def _autoTargets(
    interfaces: Sequence[Interface], bind: str, port: int, listeners: Listeners
) -> tuple[list[Target], list[str]]:
    targets: list[Target] = []
    for interface in interfaces:
        if not interface.up:
            continue
        for entry in interface.ipv4:
            if bind not in ("", "0.0.0.0") and entry.address != bind:
                continue
            if not entry.broadcast:
                continue
            services, endpoints = endpointsOn(interface, listeners)
            target = Target((entry.broadcast, port), interface.name, services, endpoints)
            if target.address not in [t.address for t in targets]:
                targets.append(target)
    if targets:
        return targets, []
    where = "every interface" if bind in ("", "0.0.0.0") else bind
    return [], [f"broadcast = auto: no IPv4 broadcast address on {where}"]


def ipv4GroupInterfaces(interfaces: Sequence[Interface], bind: str) -> list[tuple[Interface, str]]:
    """
    The interfaces (with the address to send from) that IPv4 multicast
    runs on: up, able to multicast, with an IPv4 address that C{bind}
    covers.
    """
    found = []
    for interface in interfaces:
        if not (interface.up and interface.multicast):
            continue
        for entry in interface.ipv4:
            if bind in ("", "0.0.0.0") or entry.address == bind:
                found.append((interface, entry.address))
                break
    return found


def _groupTargets(
    interfaces: Sequence[Interface], bind: str, group: str, port: int, listeners: Listeners
) -> tuple[list[Target], list[str]]:
    targets = []
    for interface, source in ipv4GroupInterfaces(interfaces, bind):
        services, endpoints = endpointsOn(interface, listeners)
        targets.append(
            Target((group, port), interface.name, services, endpoints, interface.index, source)
        )
    if targets:
        return targets, []
    where = "any interface" if bind in ("", "0.0.0.0") else bind
    return [], [f"broadcast = {group}: no IPv4 interface that can multicast on {where}"]


def receiverAddresses(
    interface: str, broadcast: str, interfaces: Sequence[Interface]
) -> list[str]:
    """
    The addresses more sockets bind so that the broadcasts meant for an
    instance bound to C{interface} arrive: none for a wildcard
    C{interface}, which receives them all; else the configured broadcast
    address, the subnet broadcast addresses of C{interface}, and
    255.255.255.255.
    """
    if interface in ("", "0.0.0.0"):
        return []
    found = []
    if broadcast not in (AUTO, LIMITED_BROADCAST):
        found.append(broadcast)
    for each in interfaces:
        for entry in each.ipv4:
            if entry.address == interface and entry.broadcast:
                found.append(entry.broadcast)
    found.append(LIMITED_BROADCAST_ADDRESS)
    unique = []
    for address in found:
        if address != interface and address not in unique:
            unique.append(address)
    return unique


def isMulticast(address: str) -> bool:
    """
    Whether C{address} is an IPv4 multicast group.
    """
    try:
        return ipaddress.IPv4Address(address).is_multicast
    except ValueError:
        return False


def joinGroup4(skt: socket.socket, group: str, source: str) -> None:
    """
    Join the IPv4 C{group} on the interface of address C{source}.

    @raise OSError: when the kernel refuses (C{EADDRINUSE}: a member
        already).
    """
    request = socket.inet_aton(group) + socket.inet_aton(source)
    skt.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)


def multicastOptions4(skt: socket.socket) -> None:
    """
    IPv4 multicast of C{skt}: TTL 1 (never past a router), loopback on
    (instances of this host hear each other).
    """
    skt.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    skt.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)


def sendFrom4(skt: socket.socket, source: str) -> None:
    """
    Send the next IPv4 multicast datagrams of C{skt} from the interface of
    address C{source}.
    """
    skt.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))


def ipv6Interfaces(interfaces: Sequence[Interface]) -> list[Interface]:
    """
    The interfaces IPv6 discovery runs on: up, able to multicast, not
    loopback.
    """
    return [i for i in interfaces if i.up and i.multicast and not i.loopback]


def ipv6Targets(
    interfaces: Sequence[Interface], port: int, listeners: Listeners, group: str = GROUP6
) -> list[Target]:
    """
    One announce to C{group} on each of L{ipv6Interfaces}.
    """
    targets = []
    for interface in ipv6Interfaces(interfaces):
        services, endpoints = endpointsOn(interface, listeners)
        targets.append(Target((group, port), interface.name, services, endpoints, interface.index))
    return targets


def multicastSocket6(port: int, interface: Interface, group: str = GROUP6) -> socket.socket:
    """
    A non-blocking IPv6 UDP socket for discovery on one interface: bound to
    C{[::]:port} (shared with C{SO_REUSEADDR}; IPv6 only) and to the
    interface itself (C{SO_BINDTODEVICE}: it receives only what arrives
    there, and what it sends, replies to link-local addresses included,
    leaves there), member of C{group} there, hop limit 1, multicast
    loopback on (other instances of this host hear our announces; our own
    are recognised by their instance id).

    @raise OSError: when the kernel refuses any of it.
    """
    skt = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.name.encode())
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface.index)
        skt.setblocking(False)
        skt.bind(("::", port))
        request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", interface.index)
        if port:
            skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
    except BaseException:
        skt.close()
        raise
    return skt


def isWildcard(address: str) -> bool:
    """
    Whether C{address} stands for every address of its family.
    """
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return address == ""


def socketOf(port: Any, family: int) -> socket.socket:
    """
    A socket object for the descriptor of a listening UDP port (a duplicate:
    closing it leaves the port open), for the socket options Twisted has no
    method for.
    """
    return socket.fromfd(port.fileno(), family, socket.SOCK_DGRAM)


def interfaceNamed(name: str) -> Callable[[tuple[Any, ...]], str]:
    """
    A C{viaFor} for a socket bound to one interface: always its name.
    """
    return lambda addr: name
