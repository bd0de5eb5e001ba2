"""
Fakes for the ping unit tests: an ICMP socket that records what is sent
and hands over what a test queues, and the replies a host would send.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from services.client._icmp import checksum


def replyTo(packet: bytes, family: int) -> bytes:
    """
    The echo reply a host sends back for the echo request C{packet}
    (without an IP header), with its checksum.
    """
    kind = 0 if family == socket.AF_INET else 129
    message = bytes([kind, 0, 0, 0]) + packet[4:]
    if family == socket.AF_INET:
        message = message[:2] + struct.pack("!H", checksum(message)) + message[4:]
    return message


def withIPv4Header(message: bytes, ttl: int = 64, protocol: int = 1) -> bytes:
    """
    C{message} inside a minimal IPv4 header, as a raw socket hands it over.
    """
    total = 20 + len(message)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, ttl, protocol, 0,
                       bytes(4), bytes(4)) + message


def ttlAncillary(ttl: int, family: int) -> list[tuple[int, int, bytes]]:
    """
    The ancillary data a datagram ICMP socket gives with a reply.
    """
    if family == socket.AF_INET:
        return [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", ttl))]
    return [(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("i", ttl))]


class FakeICMPSocket:
    """
    An ICMP socket in memory.

    @ivar sent: C{(packet, address)} for every C{sendto}.
    @ivar incoming: C{(data, ancillary, flags, address)} that C{recvmsg}
        returns in order, then C{BlockingIOError}; an exception instance in
        the list is raised instead.
    @ivar options: every C{setsockopt} as C{(level, option, value)}.
    """

    def __init__(self, family: int, kind: int, proto: int, port: int = 4242) -> None:
        self.family, self.type, self.proto = family, kind, proto
        self.port = port
        self.sent: list[tuple[bytes, Any]] = []
        self.incoming: list[Any] = []
        self.options: list[tuple[int, int, Any]] = []
        self.closed = False
        self.bound: Any = None
        self.sendError: OSError | None = None

    def fileno(self) -> int:
        return 99

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self.options.append((level, option, value))

    def bind(self, address: Any) -> None:
        self.bound = address

    def getsockname(self) -> Any:
        return (self.bound[0], self.port)

    def sendto(self, packet: bytes, address: Any) -> int:
        if self.sendError is not None:
            raise self.sendError
        self.sent.append((packet, address))
        return len(packet)

    def recvmsg(self, size: int, ancillary: int) -> Any:
        if not self.incoming:
            raise BlockingIOError(errno.EAGAIN, "would block")
        item = self.incoming.pop(0)
        if isinstance(item, BaseException):
            raise item
        data, anc, flags, address = item
        if len(data) > size:
            data, flags = data[:size], flags | socket.MSG_TRUNC
        return data, anc, flags, address

    def close(self) -> None:
        self.closed = True


class FakeSocketFactory:
    """
    Opens L{FakeICMPSocket}s, refusing the kinds in C{refuse} with
    C{EACCES} as Linux does; their C{sendto} raises C{sendError} if set.

    @ivar opened: every socket opened.
    """

    def __init__(self, refuse: tuple[int, ...] = (), sendError: OSError | None = None) -> None:
        self.refuse = refuse
        self.sendError = sendError
        self.opened: list[FakeICMPSocket] = []

    def __call__(self, family: int, kind: int, proto: int) -> FakeICMPSocket:
        if kind in self.refuse:
            raise PermissionError(errno.EACCES, "Permission denied")
        skt = FakeICMPSocket(family, kind, proto)
        skt.sendError = self.sendError
        self.opened.append(skt)
        return skt


class TriggerReactor(MemoryReactorClock):
    """
    A memory reactor whose system event triggers can be removed and fired.
    """

    def addSystemEventTrigger(self, phase: str, eventType: str, f: Any, *args: Any, **kw: Any) -> Any:
        MemoryReactorClock.addSystemEventTrigger(self, phase, eventType, f, *args, **kw)
        return (phase, eventType, (f, args, kw))

    def removeSystemEventTrigger(self, triggerID: Any) -> None:
        phase, eventType, entry = triggerID
        self.triggers[phase][eventType].remove(entry)

    def fire(self, phase: str, eventType: str) -> None:
        """
        Call the triggers of C{phase} and C{eventType}, as the reactor does.
        """
        for f, args, kw in list(self.triggers.get(phase, {}).get(eventType, [])):
            f(*args, **kw)
