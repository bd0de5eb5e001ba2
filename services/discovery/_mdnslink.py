# -*- test-case-name: tests.unit.discovery.test_mdns_responder -*-
"""
One link of multicast DNS (RFC 6762), as the responder and the browser
see it: the group and port of each family, the L{Link} (an interface and
a family, its networks and MTU), what decoding a packet may raise, and
how answers are cut into packets that fit the link.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.names import dns

__all__ = [
    "DECODE_ERRORS",
    "MAX_PACKET",
    "MDNS_GROUP4",
    "MDNS_GROUP6",
    "MDNS_PORT",
    "Link",
    "packets",
]

#: The mDNS group of IPv4.
MDNS_GROUP4 = "224.0.0.251"
#: The mDNS group of IPv6 (link-local scope).
MDNS_GROUP6 = "ff02::fb"
#: The mDNS port.
MDNS_PORT = 5353
#: RFC 6762 section 17: an mDNS packet's payload is at most 9000 bytes.
MAX_PACKET = 9000
#: What decoding a packet that is not a DNS message raises (twisted.names
#: reads it with struct and decodes names and strings).
DECODE_ERRORS = (EOFError, ValueError, IndexError, TypeError, struct.error)


@dataclass(frozen=True)
class Link:
    """
    One interface and address family a responder serves.

    @ivar interface: its name.
    @ivar family: 4 or 6.
    @ivar networks: the networks on it (IPv6: the /64 of each address);
        IPv6 link-local sources are always on the link.
    @ivar mtu: its MTU.
    """

    interface: str
    family: int
    networks: tuple[str, ...]
    mtu: int = 1500

    @property
    def group(self) -> tuple[str, int]:
        """
        The mDNS group and port of the family.
        """
        return (MDNS_GROUP4 if self.family == 4 else MDNS_GROUP6, MDNS_PORT)

    @property
    def maxSize(self) -> int:
        """
        The largest DNS message that fits one packet on the link.
        """
        headers = (20 if self.family == 4 else 40) + 8
        return max(512, min(MAX_PACKET, self.mtu - headers))

    def onLink(self, host: str) -> bool:
        """
        Whether C{host} is an address on the link (RFC 6762 section 11).
        """
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            elif ip.is_link_local:
                return self.family == 6
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.networks)

    def __str__(self) -> str:
        return f"{self.interface} (IPv{self.family})"


def _response(id: int, queries: Sequence[dns.Query]) -> dns.Message:
    # Twisted cuts what it encodes at maxSize (512 by default) and sets TC:
    # the sizes here are ours to decide.
    message = dns.Message(id=id, answer=1, auth=True, maxSize=65535)
    message.queries = list(queries)
    return message


def packets(
    limit: int,
    answers: Sequence[dns.RRHeader],
    additional: Sequence[dns.RRHeader],
    id: int = 0,
    queries: Sequence[dns.Query] = (),
    legacy: bool = False,
) -> tuple[list[bytes], int]:
    """
    Responses with C{answers} split so that none is larger than C{limit}
    bytes (a L{Link.maxSize}), with as many of C{additional} as fit in the
    last.

    @param legacy: one packet only, truncated (TC) if the answers do not
        fit (a legacy unicast reply: RFC 6762 section 6.7).
    @return: the packets, and how many answers were left out because they
        fit no packet.
    """
    found: list[bytes] = []
    dropped = 0
    message = _response(id, queries)
    for answer in answers:
        message.answers.append(answer)
        if len(message.toStr()) <= limit:
            continue
        message.answers.pop()
        if legacy:
            message.trunc = 1
            break
        if message.answers:
            found.append(message.toStr())
            message = _response(id, queries)
            message.answers.append(answer)
        if len(message.toStr()) > limit:
            message.answers.pop()
            dropped += 1
    for extra in additional:
        message.additional.append(extra)
        if len(message.toStr()) > limit:
            message.additional.pop()
    if message.answers:
        found.append(message.toStr())
    return found, dropped
