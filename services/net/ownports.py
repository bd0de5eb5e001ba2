# -*- test-case-name: tests.unit.net.test_datagram -*-
"""
Which ports are ours: the port numbers a service tree listens on, for the
loop guard of the UDP services (L{services.net.datagram.unsafeSource}).

Two UDP services that answer each other would loop for ever on one forged
datagram, so no answer goes to a port of our own tree (L{portsByService},
L{OwnPorts}) nor to one that another instance announced through discovery
(L{peerPorts}).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorTime

from services.net.listener import listeningPorts

__all__ = ["OwnPorts", "peerPorts", "portsByService", "rootService"]


def rootService(service: Any) -> Any:
    """
    The root of the service tree C{service} belongs to.
    """
    while getattr(service, "parent", None) is not None:
        service = service.parent
    return service


def _numbers(ports: Iterable[Any]) -> list[int]:
    numbers = set()
    for port in ports:
        number = getattr(port.getHost(), "port", None)
        if isinstance(number, int):
            numbers.add(number)
    return sorted(numbers)


def portsByService(root: Any, exclude: Collection[str] = ()) -> dict[str, list[int]]:
    """
    The port numbers each named child of C{root} is listening on now
    (TCP or UDP; UNIX sockets have none), leaving out C{exclude} and
    children with no port.
    """
    found = {}
    for child in getattr(root, "services", ()):
        name = getattr(child, "name", None)
        if not name or name in exclude:
            continue
        numbers = _numbers(listeningPorts(child))
        if numbers:
            found[name] = numbers
    return found


def peerPorts(root: Any) -> list[int]:
    """
    The service ports that other instances announced, as the discovery
    services in C{root}'s tree (any service with a C{guardedPorts()}: a
    bounded set, so that announces never guard every port) have heard them.
    """
    found: set[int] = set()
    guarded = getattr(root, "guardedPorts", None)
    if callable(guarded):
        found.update(guarded())
    for child in getattr(root, "services", ()):
        found.update(peerPorts(child))
    return sorted(found)


class OwnPorts:
    """
    The set of port numbers the whole service tree of a service listens
    on, and those that the other instances it heard of (through discovery)
    announced, looked up at most once a second (the data path asks for
    every datagram).  Two UDP services that answer each other would loop
    for ever on one forged datagram: no answer goes to these ports.

    A caller on a data path may read C{ports} itself while
    C{now < expires} (nearly always: it is renewed once a second), and call
    the L{OwnPorts} with C{now} only when it is not, sparing a call per
    datagram.

    @ivar fixed: ports to include whatever the tree says (the configured
        ones, known before listening).
    @ivar clock: the time source (the C{reactor} given).
    @ivar ports: the port numbers as last looked up; read-only.
    @ivar expires: the time by C{clock} from which C{ports} is to be looked
        up again; read-only.
    """

    def __init__(
        self, service: Any, reactor: IReactorTime, fixed: Collection[int] = (), every: float = 1.0
    ) -> None:
        self.service = service
        self.clock = reactor
        self.fixed = frozenset(p for p in fixed if p)
        self.every = every
        self.ports: frozenset[int] = self.fixed
        self.expires = float("-inf")

    def __call__(self, now: float | None = None) -> frozenset[int]:
        """
        The port numbers, at most C{every} seconds old.

        @param now: the time by C{clock}, if the caller has read it already.
        """
        if now is None:
            now = self.clock.seconds()
        if now >= self.expires:
            root = rootService(self.service)
            self.ports = (
                self.fixed | frozenset(_numbers(listeningPorts(root))) | frozenset(peerPorts(root))
            )
            self.expires = now + self.every
        return self.ports

