"""
Tests for L{services._twisted.udp}: a UDP port whose protocol reads its
own datagrams, on real loopback sockets.
"""

from __future__ import annotations

import errno
import select
import socket
from typing import Any

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from services._twisted.udp import ReaderDatagramPort
from services.echo import UdpEcho
from services.net.datagram import SourceLimiter
from tests.support import buildReactor


class Reader(DatagramProtocol):
    """
    Reads for itself: records what C{readDatagrams} is given and returns
    C{result} (or raises it, when it is an exception class instance marked
    C{raised}).
    """

    def __init__(self, result: Any = None, raised: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.result = result
        self.raised = raised
        self.received: list[tuple[bytes, Any]] = []

    def readDatagrams(self, recvfrom: Any, sendto: Any, size: int, limit: int) -> Any:
        self.calls.append((recvfrom, sendto, size, limit))
        if self.raised:
            raise self.result
        return self.result

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append((datagram, addr))


class ReaderDatagramPortTests(SynchronousTestCase):
    """
    The nsepoll reactor's UDP port hands its socket to a protocol with a
    C{readDatagrams}, and keeps its own loop for everything else.
    """

    def listen(self, protocol: Any, interface: str = "127.0.0.1") -> Any:
        reactor = buildReactor(self)
        port = reactor.listenUDP(0, protocol, interface=interface, maxPacketSize=65536)
        self.addCleanup(port.stopListening)
        self.assertIsInstance(port, ReaderDatagramPort)
        return port

    def peer(self, family: int = socket.AF_INET) -> socket.socket:
        peer = socket.socket(family, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        peer.settimeout(5)
        self.addCleanup(peer.close)
        return peer

    def test_echoReadsEveryDatagram(self) -> None:
        """
        One read event lets L{UdpEcho} read and echo every queued datagram
        through the port's own socket, counting each.
        """
        protocol = UdpEcho(SourceLimiter(buildReactor(self), 1e6, 10**6, 1e6))
        port = self.listen(protocol)
        self.assertEqual(port._reader, protocol.readDatagrams)
        peer = self.peer()
        address = ("127.0.0.1", port.getHost().port)
        payloads = [b"one", b"", b"x" * 60000]
        for payload in payloads:
            peer.sendto(payload, address)
        select.select([port.socket], [], [], 5)
        port.doRead()
        self.assertEqual([peer.recvfrom(65536) for _ in payloads],
                         [(p, address) for p in payloads])
        self.assertEqual((protocol.stats.received, protocol.stats.echoed), (3, 3))

    def test_givenTheSocket(self) -> None:
        """
        C{readDatagrams} gets the socket's C{recvfrom} and C{sendto}, the
        receive buffer size and C{maxThroughput}; an empty socket's error it
        returns ends the read quietly.
        """
        protocol = Reader(BlockingIOError(errno.EAGAIN, "empty"))
        port = self.listen(protocol)
        with capturedLogs() as events:
            port.doRead()
        [(recvfrom, sendto, size, limit)] = protocol.calls
        self.assertEqual((recvfrom, sendto), (port.socket.recvfrom, port.socket.sendto))
        self.assertEqual((size, limit), (65536, port.maxThroughput))
        self.assertEqual(list(events), [])

    def test_otherReadErrorRaised(self) -> None:
        """
        A read error that is neither "empty" nor "refused" is raised, as the
        port's own loop raises it (the reactor then closes the port).
        """
        failure = OSError(errno.EBADF, "Bad file descriptor")
        port = self.listen(Reader(failure))
        self.assertIs(self.assertRaises(OSError, port.doRead), failure)

    def test_refusedIgnored(self) -> None:
        """
        A refused read of a port that is not connected is ignored.
        """
        protocol = Reader(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        port = self.listen(protocol)
        self.assertIsNone(port.doRead())

    def test_protocolErrorLogged(self) -> None:
        """
        An error of C{readDatagrams} itself is logged, not raised: the port
        keeps reading on the next event.
        """
        port = self.listen(Reader(ValueError("a protocol bug"), raised=True))
        with capturedLogs() as events:
            port.doRead()
        self.assertEqual(len([e for e in events if e.get("log_failure") is not None]), 1)
        self.flushLoggedErrors(ValueError)
        self.assertIsNotNone(port._reader)

    def test_ownLoopOtherwise(self) -> None:
        """
        A protocol without C{readDatagrams}, an IPv6 port and a connected
        port are read by the port's own loop, through C{datagramReceived}.
        """
        plain = DatagramProtocol()
        self.assertIsNone(self.listen(plain)._reader)
        reader = Reader()
        try:
            port6 = self.listen(reader, interface="::1")
        except OSError:
            pass  # no IPv6 loopback here
        else:
            self.assertIsNone(port6._reader)
        connected = Reader()
        port = self.listen(connected)
        peer = self.peer()
        port.connect(*peer.getsockname())
        self.assertIsNone(port._reader)
        peer.sendto(b"to the connected port", ("127.0.0.1", port.getHost().port))
        select.select([port.socket], [], [], 5)
        port.doRead()
        self.assertEqual(connected.calls, [])
        self.assertEqual(connected.received, [(b"to the connected port", peer.getsockname())])


class Refused(DatagramProtocol):
    """
    Counts C{connectionRefused}.
    """

    refused = 0

    def connectionRefused(self) -> None:
        self.refused += 1


class ReadFailedTests(SynchronousTestCase):
    """
    L{LeanDatagramPort.readFailed}, the end of both UDP read loops.
    """

    def listen(self, protocol: Any) -> Any:
        reactor = buildReactor(self)
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port

    def test_empty(self) -> None:
        """
        An empty socket ends the read quietly.
        """
        port = self.listen(Refused())
        self.assertIsNone(port.readFailed(BlockingIOError(errno.EAGAIN, "empty")))

    def test_refused(self) -> None:
        """
        A refused datagram is reported to a connected port's protocol only.
        """
        protocol = Refused()
        port = self.listen(protocol)
        refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        port.readFailed(refused)
        self.assertEqual(protocol.refused, 0)
        port.connect("127.0.0.1", 9)
        port.readFailed(refused)
        self.assertEqual(protocol.refused, 1)

    def test_other(self) -> None:
        """
        Any other error is raised again.
        """
        port = self.listen(Refused())
        failure = OSError(errno.EBADF, "Bad file descriptor")
        self.assertIs(self.assertRaises(OSError, port.readFailed, failure), failure)
