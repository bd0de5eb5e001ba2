# -*- test-case-name: tests.unit.net.test_listen -*-
"""
Socket addresses as people read them in logs, C{/status} and the CLI
(L{describeAddress}), and whether a peer's address is one of a set of
trusted networks (L{trustedNetworks}, L{isTrusted}).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from twisted.internet.interfaces import IAddress

__all__ = ["Network", "describeAddress", "isTrusted", "trustedNetworks"]


def describeAddress(address: Any) -> str:
    """
    A short, familiar text for a socket address: C{127.0.0.1:8007},
    C{[::1]:8007}, C{unix:/run/x.sock}.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return f"unix:{name or '(unnamed)'}"


#: An IPv4 or IPv6 network.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trustedNetworks(sources: Iterable[str | Network]) -> tuple[Network, ...]:
    """
    Networks from addresses and CIDR networks (C{"10.0.0.5"},
    C{"192.0.2.0/24"}, C{"::1"}), host bits allowed.

    @raise ValueError: for one that is neither.
    """
    return tuple(
        s if isinstance(s, (ipaddress.IPv4Network, ipaddress.IPv6Network))
        else ipaddress.ip_network(s, strict=False)
        for s in sources
    )


def isTrusted(address: IAddress | None, networks: Iterable[Network]) -> bool:
    """
    Whether a connection from C{address} is trusted (to send a PROXY
    header, for one): its IP address (an IPv4-mapped IPv6 one as IPv4) is
    in one of C{networks}.
    A peer without an IP address (a UNIX socket) is on this host, and
    trusted.
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return any(ip in network for network in networks)
