# -*- test-case-name: tests.unit.client.test_ping -*-
"""
The ICMP sockets of ping: opening one (an unprivileged datagram socket,
else a raw one, else L{PingUnavailable} saying what to enable), setting it
up (non-blocking, the TTL of requests, the TTL of replies as ancillary
data, a filter for echo replies on raw sockets), and reading the TTL back.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

from services.client._icmp import ECHO_REPLY

__all__ = [
    "MAX_IP_HEADER",
    "PingUnavailable",
    "configureICMPSocket",
    "openICMPSocket",
    "ttlFrom",
]

#: Socket options that Python's socket module does not name (Linux values).
_IP_RECVTTL = 12
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1

#: The most an IPv4 header adds in front of the ICMP message on a raw socket.
MAX_IP_HEADER = 60

_ENABLE_DGRAM = (
    "enable unprivileged ICMP sockets for your group "
    "(sysctl -w net.ipv4.ping_group_range='0 2147483647'; it covers IPv6 too)"
)
_ENABLE_RAW = "run as root or with CAP_NET_RAW for raw ICMP sockets (setcap cap_net_raw+ep)"


class PingUnavailable(Exception):
    """
    No ICMP socket may be opened: the message says what to enable.
    """


def _rawProtocol(family: int) -> int:
    # The protocols database names them; a system without /etc/protocols
    # still has the numbers.
    name, number = (
        ("icmp", socket.IPPROTO_ICMP)
        if family == socket.AF_INET
        else ("ipv6-icmp", socket.IPPROTO_ICMPV6)
    )
    try:
        return socket.getprotobyname(name)
    except OSError:
        return number


def openICMPSocket(
    family: int, kind: str = "auto", socketFactory: Callable[..., Any] = socket.socket
) -> tuple[Any, str]:
    """
    Open an ICMP socket of C{family}: with C{kind="auto"} an ICMP datagram
    socket, else a raw one.

    @return: the socket and its kind, C{"dgram"} or C{"raw"}.
    @raise PingUnavailable: when neither kind asked for is permitted.
    @raise OSError: for any other reason (no IPv6 in the kernel...).
    """
    kinds = ("dgram", "raw") if kind == "auto" else (kind,)
    dgramProtocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    for each in kinds:
        try:
            if each == "dgram":
                return socketFactory(family, socket.SOCK_DGRAM, dgramProtocol), each
            return socketFactory(family, socket.SOCK_RAW, _rawProtocol(family)), each
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM):
                raise
    if kind == "dgram":
        raise PingUnavailable(f"ICMP datagram sockets are not permitted: {_ENABLE_DGRAM}")
    if kind == "raw":
        raise PingUnavailable(f"raw ICMP sockets are not permitted: {_ENABLE_RAW}")
    raise PingUnavailable(f"no ICMP socket is permitted: {_ENABLE_DGRAM}, or {_ENABLE_RAW}")


def configureICMPSocket(skt: Any, family: int, kind: str, ttl: int | None) -> int | None:
    """
    Make C{skt} non-blocking, ask for the TTL of replies, set the TTL of
    requests and, on raw sockets, let only echo replies through.

    @return: the identifier the kernel gives a datagram socket's echoes
        (its local port), or L{None} for a raw socket.
    """
    skt.setblocking(False)
    if family == socket.AF_INET:
        if ttl is not None:
            skt.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if kind == "dgram":
            skt.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
        else:
            # ICMP_FILTER: a mask of the types to drop; all but echo reply.
            _optional(skt, _SOL_RAW, _ICMP_FILTER, struct.pack("I", ~1 & 0xFFFFFFFF))
    else:
        if ttl is not None:
            skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        if kind == "raw":
            # ICMP6_FILTER: eight words of "block" bits; pass echo replies.
            words = [0xFFFFFFFF] * 8
            reply = ECHO_REPLY[socket.AF_INET6]
            words[reply >> 5] &= ~(1 << (reply & 31)) & 0xFFFFFFFF
            _optional(skt, socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))
    if kind != "dgram":
        return None
    skt.bind(("0.0.0.0", 0) if family == socket.AF_INET else ("::", 0))
    return int(skt.getsockname()[1])


def _optional(skt: Any, level: int, option: int, value: bytes) -> None:
    # A filter only saves work: matching replies does the same job.
    try:
        skt.setsockopt(level, option, value)
    except OSError:
        pass


def ttlFrom(ancillary: Sequence[tuple[int, int, bytes]]) -> int | None:
    """
    The TTL or hop limit in a received packet's ancillary data (asked for
    by L{configureICMPSocket}), or L{None}.
    """
    for level, kind, data in ancillary:
        if (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ) and len(data) >= 4:
            return int(struct.unpack("i", data[:4])[0])
    return None
