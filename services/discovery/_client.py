# -*- test-case-name: tests.unit.cli.test_discover_command -*-
"""
Looking for instances from a client, as C{netservices discover} does: a
padded query to a broadcast address or group over IPv4 and to L{GROUP6} on
chosen interfaces over IPv6, then the replies and announces heard until a
timeout.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater

from services.net.datagram import listenDatagram
from services.net.interfaces import Interface, holding, listInterfaces, localAddressTowards
from services.discovery._net import (
    AUTO,
    GROUP6,
    LIMITED_BROADCAST,
    LIMITED_BROADCAST_ADDRESS,
    interfaceNamed,
    ipv4GroupInterfaces,
    ipv6Interfaces,
    isMulticast,
    multicastSocket6,
    sendFrom4,
    socketOf,
)
from services.discovery._peers import PeerTable
from services.discovery._protocol import BroadcastReceiver, DiscoveryProtocol

__all__ = ["announceListenAddress", "chooseInterface", "discover"]


def announceListenAddress(broadcast: str) -> str | None:
    """
    The address a client binds (with C{SO_REUSEADDR}) to hear the announces
    sent to C{broadcast}, or L{None} when C{broadcast} looks like a single
    host's address, which a client must not bind: it would take unicast
    queries meant for the instances there.  Broadcast addresses are
    C{<broadcast>}, C{255.255.255.255} and those ending in C{.255}
    (C{127.255.255.255}, C{192.168.1.255}...).
    """
    if broadcast in (LIMITED_BROADCAST, LIMITED_BROADCAST_ADDRESS):
        return LIMITED_BROADCAST_ADDRESS
    return broadcast if broadcast.endswith(".255") else None


def chooseInterface(interfaces: Sequence[Interface], wanted: str) -> Interface:
    """
    The interface named C{wanted}, or holding the address C{wanted}.

    @raise ValueError: naming the interfaces there are, if none is.
    """
    for interface in interfaces:
        if wanted == interface.name or wanted in interface.addresses():
            return interface
    names = ", ".join(i.name for i in interfaces) or "none"
    raise ValueError(f"no interface is named {wanted} or has that address (there are: {names})")


def _queryPlan(
    broadcast: tuple[str, int],
    family: str,
    chosen: Interface | None,
    interfaces: Sequence[Interface],
) -> tuple[list[str], str, list[Interface]]:
    """
    Where a client's queries go: the IPv4 destinations (a multicast group
    once for each interface it is sent on: see L{_groupSources}), the IPv4
    address to send from, and the interfaces to multicast to over IPv6.
    """
    destinations: list[str] = []
    bind = ""
    if family in ("4", "any"):
        if broadcast[0] == AUTO:
            for interface in [chosen] if chosen else interfaces:
                if interface.up:
                    destinations += [a.broadcast for a in interface.ipv4 if a.broadcast]
        else:
            destinations = [broadcast[0]]
        if chosen is not None:
            bind = chosen.ipv4[0].address if chosen.ipv4 else ""
            if isMulticast(broadcast[0]):
                bind = ""  # sent from the interface of IP_MULTICAST_IF
            if not chosen.ipv4:
                destinations = []
        elif destinations and all(d.startswith("127.") for d in destinations):
            bind = "127.0.0.1"
    over6: list[Interface] = []
    if family in ("6", "any"):
        if chosen is not None:
            over6 = [chosen] if chosen in ipv6Interfaces(interfaces) else []
        elif broadcast[0] == AUTO:
            over6 = ipv6Interfaces(interfaces)
    return list(dict.fromkeys(destinations)), bind, over6


async def discover(
    reactor: Any,
    broadcast: tuple[str, int] = ("127.255.255.255", 8009),
    timeout: float = 2.0,
    family: str = "any",
    interface: str | None = None,
    interfaces: Callable[[], Sequence[Interface]] = listInterfaces,
) -> list[dict[str, Any]]:
    """
    Find the instances around: send a padded query to C{broadcast} over
    IPv4 and, over IPv6, to L{GROUP6} on each interface chosen (again
    halfway through, in case a datagram was lost), listen for replies and
    for announces until C{timeout} seconds have passed, and return the
    instances heard as L{Peer.asDict} dictionaries, by name.

    @param broadcast: the IPv4 destination and the port; C{auto} for the
        broadcast address of every interface (and then IPv6 multicast on
        every IPv6 interface too).
    @param family: C{"4"}, C{"6"} or C{"any"}.
    @param interface: query only by this interface (a name or one of its
        addresses), over both families unless C{family} says otherwise.
    @raise ValueError: if C{interface} is not one of the host's, or there
        is nothing to query with C{family}.
    @raise OSError: if no query can be sent.
    """
    known = list(interfaces())
    chosen = chooseInterface(known, interface) if interface else None
    destinations, bind, over6 = _queryPlan(broadcast, family, chosen, known)
    sources = _groupSources(destinations, chosen, known)
    if not sources and any(isMulticast(d) for d in destinations):
        raise ValueError(f"no IPv4 interface that can multicast to {broadcast[0]}")
    if not destinations and not over6:
        over = f" over IPv{family}" if family != "any" else ""
        hint = "" if interface else ": use --broadcast auto, or --interface NAME"
        raise ValueError(f"nothing to query{over} by {interface or 'the interfaces chosen'}{hint}")
    peers = PeerTable(reactor)

    def via(addr: tuple[Any, ...]) -> str:
        local = localAddressTowards(addr[:2], socket.AF_INET)
        found = holding(known, local) if local is not None else None
        return found.name if found is not None else ""

    protocol = DiscoveryProtocol(
        reactor, broadcast=broadcast, interval=None, answer=False, peers=peers, viaFor=via
    )
    ports = []
    sockets: list[socket.socket] = []
    try:
        if destinations:
            ports.append(listenDatagram(reactor, protocol, bind, 0))
            _listenForAnnounces(reactor, protocol, destinations, broadcast[1], ports)
        protocols6 = []
        for each in over6:
            skt = multicastSocket6(0, each)
            sockets.append(skt)
            protocol6 = DiscoveryProtocol(
                reactor,
                broadcast=(GROUP6, broadcast[1]),
                interval=None,
                answer=False,
                peers=peers,
                viaFor=interfaceNamed(each.name),
            )
            ports.append(reactor.adoptDatagramPort(skt.fileno(), socket.AF_INET6, protocol6))
            protocols6.append(protocol6)
        for _ in range(2):
            _queryAll(protocol, destinations, broadcast[1], protocols6, sources)
            await deferLater(reactor, timeout / 2)
    finally:
        for port in ports:
            await maybeDeferred(port.stopListening)
        for skt in sockets:
            skt.close()
    return peers.snapshot()


def _listenForAnnounces(
    reactor: Any,
    protocol: DiscoveryProtocol,
    destinations: Sequence[str],
    port: int,
    ports: list[Any],
) -> None:
    for destination in destinations:
        address = announceListenAddress(destination)
        if address is None:
            continue
        try:
            ports.append(
                listenDatagram(reactor, BroadcastReceiver(protocol), address, port, reuse=True)
            )
        except OSError:
            pass  # replies are enough; announces are a bonus


def _groupSources(
    destinations: Sequence[str], chosen: Interface | None, known: Sequence[Interface]
) -> list[str]:
    """
    The interface addresses a query to a multicast group among
    C{destinations} is sent from: C{chosen}'s, or every interface's that
    can multicast.
    """
    if not any(isMulticast(d) for d in destinations):
        return []
    return [source for _, source in ipv4GroupInterfaces([chosen] if chosen else known, "")]


def _queryAll(
    protocol: DiscoveryProtocol,
    destinations: Sequence[str],
    port: int,
    protocols6: Sequence[DiscoveryProtocol],
    sources: Sequence[str] = (),
) -> None:
    """
    Send one query to each destination (to a multicast group, once from
    each of C{sources}); raise the first error if none went.
    """
    sent, errors = 0, []
    for destination in destinations:
        for source in sources if isMulticast(destination) else [""]:
            try:
                if source:
                    with socketOf(protocol.transport, socket.AF_INET) as skt:
                        sendFrom4(skt, source)
                protocol.query((destination, port))
                sent += 1
            except OSError as e:
                errors.append(e)
    for protocol6 in protocols6:
        try:
            protocol6.query((GROUP6, port))
            sent += 1
        except OSError as e:
            errors.append(e)
    if not sent and errors:
        raise errors[0]
