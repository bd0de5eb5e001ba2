# -*- test-case-name: tests.unit.discovery.test_discovery,tests.unit.discovery.test_net -*-
"""
What the discovery service keeps per interface for multicast, as the
interfaces come and go:

  - L{IPv4Group}: with C{broadcast} a group, its membership on every IPv4
    interface that can multicast;
  - L{IPv6Links}: each IPv6 interface that can multicast gets a socket of
    its own, bound to it (see L{services.discovery._net.multicastSocket6}),
    with a protocol of its own; interfaces that come later get theirs at
    the next announce, and those that go lose theirs.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence

from twisted.internet.interfaces import IListeningPort, IReactorSocket
from twisted.logger import Logger

from services import logs
from services.net.datagram import MAX_UDP_PAYLOAD
from services.net.interfaces import Interface
from services.discovery._net import (
    GROUP6,
    ipv4GroupInterfaces,
    ipv6Interfaces,
    joinGroup4,
    multicastSocket6,
)
from services.discovery._protocol import DiscoveryProtocol

__all__ = ["IPv4Group", "IPv6Links"]


class IPv4Group:
    """
    The membership of an IPv4 multicast group on the interfaces a bound
    address covers, through one socket.

    @ivar socket: our handle on the socket that joins (L{None}: none yet,
        and nothing to join).
    """

    def __init__(self, group: str, bind: str) -> None:
        """
        @param group: the group.
        @param bind: the local address (C{0.0.0.0}: every interface).
        """
        self.group = group
        self.bind = bind
        self.socket: socket.socket | None = None
        self._joined: set[str] = set()

    def join(self, interfaces: Sequence[Interface]) -> list[str]:
        """
        Join the group on every interface not joined yet.

        @return: what could not be joined.
        """
        if self.socket is None:
            return []
        problems = []
        found = ipv4GroupInterfaces(interfaces, self.bind)
        self._joined &= {source for _, source in found}
        for interface, source in found:
            if source in self._joined:
                continue
            try:
                joinGroup4(self.socket, self.group, source)
            except OSError as e:
                if e.errno != errno.EADDRINUSE:  # a member already
                    reason = e.strerror or e
                    problems.append(f"cannot join {self.group} on {interface.name}: {reason}")
                    continue
            self._joined.add(source)
        return problems

    def close(self) -> None:
        """
        Close our handle on the socket (the port keeps its own) and forget
        the memberships.
        """
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        self._joined.clear()


class IPv6Links:
    """
    One socket, port and L{DiscoveryProtocol} for each IPv6 interface
    served, and why the others cannot be.

    @ivar port: the discovery port they are bound to.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        reactor: IReactorSocket,
        port: int,
        newProtocol: Callable[[Interface], DiscoveryProtocol],
    ) -> None:
        """
        @param reactor: adopts the sockets.
        @param newProtocol: the protocol for an interface.
        """
        self.reactor = reactor
        self.port = port
        self.newProtocol = newProtocol
        self._links: dict[int, tuple[socket.socket, IListeningPort, DiscoveryProtocol]] = {}
        self._problems: dict[str, str] = {}

    def sync(self, interfaces: Sequence[Interface]) -> None:
        """
        Listen on every IPv6 interface that can multicast and is not
        listened on yet; stop on those that have gone.
        """
        wanted = {i.index: i for i in ipv6Interfaces(interfaces)}
        for index in set(self._links) - set(wanted):
            skt, port, _ = self._links.pop(index)
            port.stopListening()
            skt.close()
        names = {i.name for i in wanted.values()}
        self._problems = {k: v for k, v in self._problems.items() if k in names}
        for index, interface in wanted.items():
            if index not in self._links:
                self._listen(interface)
        if not wanted:
            self._problems[""] = "ipv6 = yes: no IPv6 interface that can multicast"
        else:
            self._problems.pop("", None)

    def _listen(self, interface: Interface) -> None:
        name = interface.name
        protocol = self.newProtocol(interface)
        try:
            skt = multicastSocket6(self.port, interface)
        except OSError as e:
            reason = f"cannot listen on [{GROUP6}]:{self.port} on {name}: {e.strerror or e}"
            if self._problems.get(name) != reason:
                self._log.warn("discovery: {reason}", reason=reason)
            self._problems[name] = reason
            return
        try:
            port = self.reactor.adoptDatagramPort(
                skt.fileno(), socket.AF_INET6, protocol, MAX_UDP_PAYLOAD + 1
            )
        except BaseException:
            skt.close()
            raise
        self._problems.pop(name, None)
        self._links[interface.index] = (skt, port, protocol)
        self._log.info(
            "discovery listening on [{group}]:{port} on {interface}",
            group=GROUP6,
            port=self.port,
            interface=name,
        )

    def indexes(self) -> list[int]:
        """
        The indexes of the interfaces listened on.
        """
        return list(self._links)

    def protocols(self) -> list[DiscoveryProtocol]:
        """
        The protocol of each interface listened on.
        """
        return [protocol for _, _, protocol in self._links.values()]

    def problems(self) -> list[str]:
        """
        Why interfaces that should be listened on are not, sorted.
        """
        return sorted(self._problems.values())

    def close(self) -> list[IListeningPort]:
        """
        Close our handles on the sockets and forget every interface.

        @return: the ports, for the caller to stop listening.
        """
        ports = []
        for skt, port, _ in self._links.values():
            ports.append(port)
            skt.close()  # the reactor holds its own duplicate
        self._links.clear()
        return ports
