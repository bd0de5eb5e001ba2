# -*- test-case-name: tests.unit.config.test_config -*-
"""
The value parsers of tap.conf for network values: server endpoint strings,
UDP endpoints, IP addresses and networks, where broadcasts go, interface
names and address families.

Each checks the text with the network layer's own parsers (so that tap.conf
accepts exactly what the listeners will), without binding a socket or
reading a certificate; they raise L{InvalidValue} as the plain parsers of
L{services.config.parsers} do.
"""

from __future__ import annotations

import ipaddress

from services.config.parsers import InvalidValue
from services.net.broadcast import AUTO_BROADCAST, LIMITED_BROADCAST, LIMITED_BROADCAST_ADDRESS

__all__ = [
    "AUTO_BROADCAST",
    "LIMITED_BROADCAST",
    "LIMITED_BROADCAST_ADDRESS",
    "parseBroadcast",
    "parseEndpoint",
    "parseEndpoints",
    "parseFamilies",
    "parseIPv4",
    "parseInterfaceNames",
    "parseNetworks",
    "parseOptionalUdpEndpoints",
    "parseUdpEndpoints",
]


def parseEndpoint(text: str) -> str:
    """
    Check one server endpoint description (C{tcp:8007}, C{unix:/run/x.sock},
    C{ssl:8443}, C{systemd:index=0}, C{haproxy:tcp:8007}...) with Twisted's
    own parsers, without binding or reading certificate files (that happens
    when listening starts).
    """
    # Imported here: the command-line clients read this module for its
    # parsers and have no use for the listeners (nor their imports).
    from services.net.descriptions import checkEndpoint

    description = text.strip()
    try:
        checkEndpoint(description)
    except Exception as e:  # parsers raise ValueError, TypeError, KeyError, OSError...
        reason = str(e) or e.__class__.__name__
        raise InvalidValue(
            f"not a server endpoint ({reason}); expected e.g. "
            "tcp:8007:interface=127.0.0.1, tcp6:8007:interface=\\:\\:1 "
            "or unix:/run/netservices.sock:mode=660"
        ) from None
    return description


def parseEndpoints(text: str) -> tuple[str, ...]:
    """
    Parse one or more endpoint descriptions separated by whitespace or
    newlines.
    """
    values = tuple(parseEndpoint(part) for part in text.split())
    if not values:
        raise InvalidValue("expected at least one endpoint, e.g. tcp:8007:interface=127.0.0.1")
    return values


def parseNetworks(text: str) -> tuple[str, ...]:
    """
    Parse one or more IP addresses or CIDR networks (C{127.0.0.0/8 ::1
    10.0.0.5}), separated by spaces, commas or newlines; each comes back in
    its network form (C{10.0.0.5/32}).
    """
    items = text.replace(",", " ").split()
    try:
        networks = tuple(str(ipaddress.ip_network(item, strict=False)) for item in items)
    except ValueError:
        networks = ()
    if not networks:
        raise InvalidValue(
            "expected one or more IP addresses or CIDR networks, e.g. 127.0.0.0/8 ::1 10.0.0.5"
        )
    return networks


def _isIPv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def parseIPv4(text: str) -> str:
    """
    Parse an IPv4 address in dotted form; C{0.0.0.0} means every address.
    """
    value = text.strip()
    if not _isIPv4(value):
        raise InvalidValue("expected an IPv4 address such as 127.0.0.1 (0.0.0.0: all)")
    return value




def parseBroadcast(text: str) -> str:
    """
    Parse where broadcasts go: C{auto} (the broadcast address of each
    interface), an IPv4 address (C{127.255.255.255}, a subnet's broadcast
    address) or C{<broadcast>} (255.255.255.255).
    """
    value = text.strip()
    if value.lower() == AUTO_BROADCAST:
        return AUTO_BROADCAST
    if value != LIMITED_BROADCAST and not _isIPv4(value):
        raise InvalidValue(
            "expected auto, an IPv4 broadcast address such as 127.255.255.255 or "
            f"192.168.1.255, {LIMITED_BROADCAST}, or a multicast group in 239.255.0.0/16"
        )
    first = int(value.split(".")[0]) if value != LIMITED_BROADCAST else 0
    if 224 <= first <= 239 and not value.startswith("239.255."):
        raise InvalidValue(
            "expected a multicast group in 239.255.0.0/16 (organization-local scope), "
            "such as 239.255.0.9"
        )
    return value


def parseUdpEndpoints(text: str) -> tuple[str, ...]:
    """
    Parse one or more UDP endpoint descriptions (C{udp:8007:interface=127.0.0.1},
    C{udp6:8007:interface=\\:\\:1}, a bare port on 127.0.0.1, or
    C{unixgram:PATH[:mode=OCTAL]}), separated by whitespace or newlines, into
    their canonical text.
    """
    return _udpEndpoints(text, unixgram=True)


def _udpEndpoints(text: str, unixgram: bool) -> tuple[str, ...]:
    # Imported here, as in parseEndpoint: the command-line clients read
    # this module for its parsers.
    from services.net.datagram import isUnixDatagram, parseUdpEndpoint, parseUnixDatagram

    forms = "a port or udp:PORT[:interface=ADDRESS] (udp6: for IPv6)"
    if unixgram:
        forms += " or unixgram:PATH[:mode=OCTAL]"
    parts = text.split()
    values = []
    for part in parts:
        try:
            if isUnixDatagram(part) and unixgram:
                parseUnixDatagram(part)
                values.append(part)
                continue
            if not part.isdigit() and part.split(":")[0].lower() not in ("udp", "udp6"):
                raise ValueError(f"expected {forms}")
            values.append(str(parseUdpEndpoint(part)))
        except ValueError as e:
            raise InvalidValue(f"{part!r}: {e}" if len(parts) > 1 else str(e)) from None
    if not values:
        raise InvalidValue("expected at least one endpoint, e.g. udp:8007:interface=127.0.0.1")
    return tuple(values)


def parseInterfaceNames(text: str) -> tuple[str, ...]:
    """
    Parse C{all} or one or more interface names (C{eth0 wlan0}), separated
    by spaces or commas.
    """
    names = tuple(text.replace(",", " ").split())
    if names == ("all",):
        return names
    if not names or any(
        n == "all" or len(n) > 15 or not all(c.isalnum() or c in "-_.@" for c in n) for n in names
    ):
        raise InvalidValue("expected all, or one or more interface names such as eth0")
    return names


def parseFamilies(text: str) -> tuple[str, ...]:
    """
    Parse C{ipv4}, C{ipv6} or both (C{ipv4 ipv6}).
    """
    families = tuple(dict.fromkeys(text.replace(",", " ").lower().split()))
    if not families or any(f not in ("ipv4", "ipv6") for f in families):
        raise InvalidValue("expected ipv4, ipv6, or both: ipv4 ipv6")
    return families


def parseOptionalUdpEndpoints(text: str) -> tuple[str, ...]:
    """
    Parse UDP endpoint descriptions as L{parseUdpEndpoints} does, without
    C{unixgram:} (the small services answer over UDP only), or nothing
    (no UDP listener).
    """
    return _udpEndpoints(text, unixgram=False) if text.strip() else ()
