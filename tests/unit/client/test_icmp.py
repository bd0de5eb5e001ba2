"""
Tests of ICMP echo encoding and decoding (L{services.client._icmp}).
"""

from __future__ import annotations

import socket
import struct

from twisted.trial.unittest import SynchronousTestCase

from services.client._icmp import Malformed, checksum, decodeEcho, encodeEcho, stripIPv4Header
from tests.pingfakes import withIPv4Header


class ChecksumTests(SynchronousTestCase):
    """
    The Internet checksum of RFC 1071.
    """

    def test_rfc1071Example(self) -> None:
        """
        RFC 1071's worked example: the words 0001 f203 f4f5 f6f7 sum to
        ddf2 (with the carries folded in), whose complement is 220d.
        """
        self.assertEqual(checksum(bytes.fromhex("0001f203f4f5f6f7")), 0x220D)

    def test_oddLength(self) -> None:
        """
        An odd last byte counts as the high byte of a word padded with zero.
        """
        self.assertEqual(checksum(b"\x01"), checksum(b"\x01\x00"))
        self.assertEqual(checksum(b"\x01"), 0xFEFF)

    def test_verifies(self) -> None:
        """
        A message with its checksum in place sums to zero, and any changed
        bit makes it non-zero.
        """
        packet = encodeEcho(socket.AF_INET, 0x1234, 7, b"hello, world")
        self.assertEqual(checksum(packet), 0)
        damaged = packet[:-1] + bytes([packet[-1] ^ 1])
        self.assertNotEqual(checksum(damaged), 0)


class EncodeTests(SynchronousTestCase):
    """
    Echo requests as they go on the wire.
    """

    def test_ipv4(self) -> None:
        """
        An ICMPv4 request is type 8, code 0, the checksum, identifier and
        sequence in network order, then the payload.
        """
        packet = encodeEcho(socket.AF_INET, 0xBEEF, 1, b"ab")
        kind, code, total, ident, seq = struct.unpack("!BBHHH", packet[:8])
        self.assertEqual((kind, code, ident, seq, packet[8:]), (8, 0, 0xBEEF, 1, b"ab"))
        self.assertEqual(total, checksum(bytes([8, 0, 0, 0]) + packet[4:]))

    def test_ipv6(self) -> None:
        """
        An ICMPv6 request is type 128 with a zero checksum, which the kernel
        computes over its pseudo-header.
        """
        packet = encodeEcho(socket.AF_INET6, 1, 0x10001, b"")
        self.assertEqual(struct.unpack("!BBHHH", packet), (128, 0, 0, 1, 1))


class DecodeTests(SynchronousTestCase):
    """
    Reading replies, and refusing what is not one.
    """

    def test_roundTrip(self) -> None:
        """
        A message decodes to its type, code, identifier, sequence and
        payload.
        """
        echo = decodeEcho(socket.AF_INET, encodeEcho(socket.AF_INET, 9, 300, b"xyz"))
        self.assertEqual(
            (echo.type, echo.code, echo.identifier, echo.sequence, echo.payload),
            (8, 0, 9, 300, b"xyz"),
        )

    def test_short(self) -> None:
        """
        Fewer than eight bytes is not an ICMP message.
        """
        self.assertRaises(Malformed, decodeEcho, socket.AF_INET6, b"\x81\x00\x00")

    def test_badChecksum(self) -> None:
        """
        An ICMPv4 message whose checksum does not verify is refused.
        """
        packet = bytearray(encodeEcho(socket.AF_INET, 9, 1, b"abcd"))
        packet[2] ^= 0xFF
        self.assertRaises(Malformed, decodeEcho, socket.AF_INET, bytes(packet))

    def test_ipv4Header(self) -> None:
        """
        A raw socket's packet gives up its ICMP message and TTL; a header
        that is short, not IPv4 or not ICMP is refused.
        """
        message = encodeEcho(socket.AF_INET, 1, 1, b"")
        self.assertEqual(stripIPv4Header(withIPv4Header(message, ttl=17)), (message, 17))
        self.assertRaises(Malformed, stripIPv4Header, withIPv4Header(message)[:19])
        self.assertRaises(Malformed, stripIPv4Header, b"\x65" + withIPv4Header(message)[1:])
        self.assertRaises(Malformed, stripIPv4Header, withIPv4Header(message, protocol=6))
