"""
Fakes for testing datagram protocols without the network: a memory UDP
transport and a memory reactor whose C{adoptDatagramPort} connects the
protocol to one.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IMulticastTransport, IUDPTransport
from twisted.internet.protocol import AbstractDatagramProtocol
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer


@implementer(IUDPTransport, IListeningPort)
class MemoryDatagramTransport:
    """
    A UDP port in memory: records what is written, and raises C{error}
    from C{write} when it is set.

    @ivar written: C{(datagram, address)} for every write.
    @ivar broadcastAllowed: what C{setBroadcastAllowed} was last told.
    @ivar listening: whether C{stopListening} has not been called.
    """

    def __init__(
        self,
        protocol: AbstractDatagramProtocol | None = None,
        host: tuple[str, int] = ("127.0.0.1", 8009),
        family: int = socket.AF_INET,
    ) -> None:
        self.protocol = protocol
        self.host = host
        self.family = family
        self.written: list[tuple[bytes, Any]] = []
        self.broadcastAllowed = False
        self.listening = True
        self.error: BaseException | None = None

    def write(self, packet: bytes, addr: Any = None) -> None:
        """
        Record C{packet} for C{addr}, or raise C{error} if set.
        """
        if self.error is not None:
            raise self.error
        self.written.append((packet, addr))

    def connect(self, host: str, port: int) -> None:
        """
        Connected mode is not supported.
        """
        raise NotImplementedError("connected mode is not used")

    def getHost(self) -> IPv4Address | IPv6Address:
        """
        The address the port stands for.
        """
        if self.family == socket.AF_INET6:
            return IPv6Address("UDP", *self.host[:2])
        return IPv4Address("UDP", *self.host)

    def startListening(self) -> None:
        """
        Listen (again).
        """
        self.listening = True

    def stopListening(self) -> Deferred[None]:
        """
        Stop listening, stopping the protocol once.
        """
        if self.listening and self.protocol is not None:
            self.listening = False
            self.protocol.doStop()
        return succeed(None)

    def setBroadcastAllowed(self, enabled: bool) -> None:
        """
        Record whether broadcasting is allowed.
        """
        self.broadcastAllowed = enabled

    def getBroadcastAllowed(self) -> bool:
        """
        Whether broadcasting is allowed.
        """
        return self.broadcastAllowed


class UdpMemoryReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} whose C{adoptDatagramPort} connects the protocol
    to a L{MemoryDatagramTransport} standing for the adopted socket (with
    its address), as a real reactor would.

    @ivar datagramPorts: the transports, in adoption order.
    @ivar writeError: if set, what the new transports raise from C{write}.
    """

    def __init__(self) -> None:
        MemoryReactorClock.__init__(self)
        self.datagramPorts: list[MemoryDatagramTransport] = []
        self.writeError: BaseException | None = None

    def adoptDatagramPort(
        self, fileno: int, addressFamily: int, protocol: Any, maxPacketSize: int = 8192
    ) -> MemoryDatagramTransport:
        """
        Record the adoption and connect C{protocol} to a memory port with the socket's address.
        """
        MemoryReactorClock.adoptDatagramPort(self, fileno, addressFamily, protocol, maxPacketSize)
        with socket.fromfd(fileno, addressFamily, socket.SOCK_DGRAM) as skt:
            host = skt.getsockname()
        transport = MemoryDatagramTransport(protocol, host, addressFamily)
        transport.error = self.writeError
        self.datagramPorts.append(transport)
        protocol.makeConnection(transport)
        return transport


@implementer(IMulticastTransport)
class MemoryMulticastTransport(MemoryDatagramTransport):
    """
    A multicast UDP port in memory: a L{MemoryDatagramTransport} that also
    records the outgoing interface of each write, the groups joined, TTL
    and loopback mode.

    @ivar sentVia: the outgoing interface in force at each write.
    @ivar groups: C{(group, interface)} of every join.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outgoing: str | int = ""
        self.sentVia: list[str | int] = []
        self.groups: list[tuple[str, str]] = []
        self.ttl = 1
        self.loopback = True

    def write(self, packet: bytes, addr: Any = None) -> None:
        """
        Record C{packet} for C{addr}, and the outgoing interface.
        """
        super().write(packet, addr)
        self.sentVia.append(self.outgoing)

    def getOutgoingInterface(self) -> str | int:
        """
        The outgoing interface last set.
        """
        return self.outgoing

    def setOutgoingInterface(self, addr: str | int) -> Deferred[int]:
        """
        Set the outgoing interface.
        """
        self.outgoing = addr
        return succeed(1)

    def getLoopbackMode(self) -> bool:
        """
        The loopback mode.
        """
        return self.loopback

    def setLoopbackMode(self, mode: bool) -> None:
        """
        Set the loopback mode.
        """
        self.loopback = bool(mode)

    def getTTL(self) -> int:
        """
        The multicast TTL.
        """
        return self.ttl

    def setTTL(self, ttl: int) -> None:
        """
        Set the multicast TTL.
        """
        self.ttl = ttl

    def joinGroup(self, addr: str, interface: str = "") -> Deferred[None]:
        """
        Record the join.
        """
        self.groups.append((addr, interface))
        return succeed(None)

    def leaveGroup(self, addr: str, interface: str = "") -> Deferred[None]:
        """
        Forget the join.
        """
        self.groups.remove((addr, interface))
        return succeed(None)


class MulticastMemoryReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} whose C{listenMulticast} connects the protocol
    to a L{MemoryMulticastTransport}.

    @ivar multicastPorts: the transports, in order.
    """

    def __init__(self) -> None:
        MemoryReactorClock.__init__(self)
        self.multicastPorts: list[MemoryMulticastTransport] = []

    def listenMulticast(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192,
        listenMultiple: bool = False,
    ) -> MemoryMulticastTransport:  # fmt: skip
        """
        Connect C{protocol} to a memory multicast port.
        """
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        transport = MemoryMulticastTransport(protocol, (interface or "0.0.0.0", port or 40000), family)
        self.multicastPorts.append(transport)
        protocol.makeConnection(transport)
        return transport
