# -*- test-case-name: tests.unit.client.test_resolve -*-
"""
Name and service look-ups through the reactor: what C{gethostbyname_ex}
and C{getservbyname} give, without blocking the reactor.

The addresses (IPv4 and IPv6) come from the reactor's name resolver
(L{twisted.internet.interfaces.IReactorPluggableNameResolver.nameResolver},
C{getaddrinfo} in a thread by default); the canonical name and aliases,
which that interface does not report, and the service port come from the
C library's calls run in the reactor's thread pool.  L{resolveTarget} picks
the one address (of a family, if asked) that a probe such as ping is sent to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IHostResolution,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

__all__ = [
    "Resolution",
    "UnknownService",
    "canonicalNames",
    "resolve",
    "resolveAddresses",
    "resolveTarget",
    "servicePort",
]


class UnknownService(LookupError):
    """
    No such service in the services database (C{/etc/services}).
    """


@dataclass(frozen=True)
class Resolution:
    """
    What is known about a host name.

    @ivar name: the name asked for.
    @ivar canonical: its canonical name.
    @ivar aliases: its other names.
    @ivar ipv4: its IPv4 addresses, in the resolver's order.
    @ivar ipv6: its IPv6 addresses, in the resolver's order.
    @ivar port: the port of the service asked for, or L{None}.
    """

    name: str
    canonical: str
    aliases: tuple[str, ...]
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    port: int | None = None


@implementer(IResolutionReceiver)
class _Collector:
    def __init__(self) -> None:
        self.addresses: list[IPv4Address | IPv6Address] = []
        self.done: Deferred[list[IPv4Address | IPv6Address]] = Deferred()

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        self.done.callback(self.addresses)


def resolveAddresses(
    reactor: IReactorPluggableNameResolver, name: str, port: int = 0, transport: str = "TCP"
) -> Deferred[list[IPv4Address | IPv6Address]]:
    """
    Every address of C{name} (IPv4 and IPv6), through the reactor's name
    resolver.

    @raise DNSLookupError: (in the Deferred) when there is none.
    """
    collector = _Collector()
    reactor.nameResolver.resolveHostName(
        collector, name, portNumber=port, transportSemantics=transport
    )

    def check(addresses: list[IPv4Address | IPv6Address]) -> list[IPv4Address | IPv6Address]:
        if not addresses:
            raise DNSLookupError(f"no address for {name}")
        return addresses

    return collector.done.addCallback(check)


def canonicalNames(
    name: str,
    gethostbyname_ex: Callable[[str], tuple[str, list[str], list[str]]] = socket.gethostbyname_ex,
    getaddrinfo: Callable[..., Sequence[Any]] = socket.getaddrinfo,
) -> tuple[str, tuple[str, ...]]:
    """
    The canonical name and aliases of C{name}, from C{gethostbyname_ex}, or
    from C{getaddrinfo}'s canonical name for a name it does not know (an
    IPv6-only name); C{name} itself when neither says.  Blocking.
    """
    try:
        canonical, aliases, _ = gethostbyname_ex(name)
        return canonical, tuple(aliases)
    except OSError:
        pass
    try:
        for *_, canonname, _ in getaddrinfo(name, None, 0, 0, 0, socket.AI_CANONNAME):
            if canonname:
                return canonname, ()
    except OSError:
        pass
    return name, ()


def servicePort(
    service: str,
    proto: str = "tcp",
    getservbyname: Callable[[str, str], int] = socket.getservbyname,
) -> int:
    """
    The port of C{service} for C{proto}, as C{getservbyname} gives it; a
    number is its own port.  Blocking.

    @raise UnknownService: when the services database has no such entry.
    """
    if service.isdigit():
        port = int(service)
        if port > 65535:
            raise UnknownService(f"port {service} is out of range")
        return port
    try:
        return getservbyname(service, proto)
    except OSError:
        raise UnknownService(f"unknown service {service!r} for protocol {proto!r}") from None


async def resolve(
    reactor: Any, name: str, service: str | None = None, proto: str = "tcp"
) -> Resolution:
    """
    Look up C{name} (and C{service}) without blocking the reactor.

    @raise DNSLookupError: when C{name} has no address.
    @raise UnknownService: when C{service} is unknown.
    """
    pool = reactor.getThreadPool()
    port = None
    if service is not None:
        port = await deferToThreadPool(reactor, pool, servicePort, service, proto)
    addresses = await resolveAddresses(reactor, name)
    canonical, aliases = await deferToThreadPool(reactor, pool, canonicalNames, name)
    return Resolution(
        name=name,
        canonical=canonical,
        aliases=aliases,
        ipv4=_unique(a.host for a in addresses if isinstance(a, IPv4Address)),
        ipv6=_unique(a.host for a in addresses if isinstance(a, IPv6Address)),
        port=port,
    )


def _unique(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def resolveTarget(
    reactor: IReactorPluggableNameResolver, host: str, family: int | None = None
) -> Deferred[tuple[str, int]]:
    """
    The one address to send to for C{host} (an address, or a name looked up
    through the reactor's resolver) and its family: what ping sends to.

    @param family: C{AF_INET} or C{AF_INET6} to insist on one (C{-4}, C{-6}).
    @raise ValueError: (in the Deferred) when C{host} is an address of the
        other family, or has no address of C{family}.
    """
    return ensureDeferred(_resolveTarget(reactor, host, family))


async def _resolveTarget(
    reactor: IReactorPluggableNameResolver, host: str, family: int | None
) -> tuple[str, int]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = socket.AF_INET if literal.version == 4 else socket.AF_INET6
        if family is not None and family != found:
            raise ValueError(f"{host} is an IPv{literal.version} address")
        return str(literal), found
    for address in await resolveAddresses(reactor, host):
        found = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        if family is None or family == found:
            return address.host, found
    raise ValueError(f"{host} has no IPv{4 if family == socket.AF_INET else 6} address")
