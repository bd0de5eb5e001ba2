# -*- test-case-name: tests.unit.client.test_icmp -*-
"""
ICMP and ICMPv6 echo messages (RFC 792, RFC 4443): building requests and
reading replies, checksums included.

What arrives depends on the socket: a raw IPv4 socket hands over the whole
IP packet (its header says the TTL), an ICMP datagram socket and every
ICMPv6 socket hand over the ICMP message alone (the TTL or hop limit then
comes as ancillary data, which L{services.client._pingsocket} reads).

The kernel computes and checks the ICMPv6 checksum itself (it covers a
pseudo-header of addresses this layer does not see), so only the ICMPv4
checksum is computed and checked here.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

__all__ = [
    "ECHO_REPLY",
    "ECHO_REQUEST",
    "HEADER_SIZE",
    "EchoMessage",
    "Malformed",
    "checksum",
    "decodeEcho",
    "encodeEcho",
    "stripIPv4Header",
]

#: The echo request and reply types of each family.
ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}

#: Type, code, checksum, identifier, sequence number.
HEADER_SIZE = 8
_HEADER = struct.Struct("!BBHHH")


class Malformed(ValueError):
    """
    A packet that is not a well-formed ICMP message: too short, a bad
    checksum, a bad IP header.
    """


def checksum(data: bytes) -> int:
    """
    The Internet checksum (RFC 1071) of C{data}: the one's complement of
    the one's complement sum of its 16-bit words, an odd last byte padded
    with a zero.
    """
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class EchoMessage:
    """
    One ICMP message of the echo kind (or another type, read the same way).

    @ivar type: the ICMP type (see L{ECHO_REQUEST}, L{ECHO_REPLY}).
    @ivar code: the ICMP code (0 for echoes).
    @ivar identifier: the echo identifier.
    @ivar sequence: the echo sequence number.
    @ivar payload: the data after the header.
    """

    type: int
    code: int
    identifier: int
    sequence: int
    payload: bytes


def encodeEcho(family: int, identifier: int, sequence: int, payload: bytes) -> bytes:
    """
    An echo request of C{family} (C{AF_INET} or C{AF_INET6}): for ICMPv4
    with its checksum, for ICMPv6 with a zero checksum that the kernel
    fills in.
    """
    kind = ECHO_REQUEST[family]
    header = _HEADER.pack(kind, 0, 0, identifier & 0xFFFF, sequence & 0xFFFF)
    if family == socket.AF_INET6:
        return header + payload
    total = checksum(header + payload)
    return _HEADER.pack(kind, 0, total, identifier & 0xFFFF, sequence & 0xFFFF) + payload


def stripIPv4Header(packet: bytes) -> tuple[bytes, int]:
    """
    The ICMP message inside an IPv4 packet from a raw socket, and the
    packet's TTL.

    @raise Malformed: when the IP header is not a valid one carrying ICMP.
    """
    if len(packet) < 20:
        raise Malformed(f"{len(packet)} bytes, shorter than an IPv4 header")
    version, length = packet[0] >> 4, (packet[0] & 0x0F) * 4
    if version != 4 or length < 20 or len(packet) < length:
        raise Malformed("not a valid IPv4 header")
    if packet[9] != socket.IPPROTO_ICMP:
        raise Malformed(f"IP protocol {packet[9]}, not ICMP")
    return packet[length:], packet[8]


def decodeEcho(family: int, message: bytes) -> EchoMessage:
    """
    Read an ICMP message of C{family} (without any IP header).

    @raise Malformed: when it is shorter than an ICMP header or, for ICMPv4,
        its checksum is wrong.
    """
    if len(message) < HEADER_SIZE:
        raise Malformed(f"{len(message)} bytes, shorter than an ICMP header")
    if family == socket.AF_INET and checksum(message) != 0:
        raise Malformed("bad ICMP checksum")
    kind, code, _, identifier, sequence = _HEADER.unpack_from(message)
    return EchoMessage(kind, code, identifier, sequence, message[HEADER_SIZE:])
