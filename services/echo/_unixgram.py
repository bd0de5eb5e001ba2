# -*- test-case-name: tests.unit.echo.test_unixgram -*-
"""
The echo service (RFC 862) over UNIX datagram sockets
(C{unixgram:PATH[:mode=...]} in C{[udp-echo] listen}), and the client's
side of such a socket.

A datagram is echoed, whole, to the address its sender's socket is bound
to, under the rules of the UDP echo (L{services.echo._udp}):

  - a datagram that fills the receive buffer is dropped, not echoed in part;
  - the same rate limits, per sender address and for everyone;
  - no echo to one of our own echo sockets, which two echo services would
    bounce between forever;
  - a sender whose socket is not bound has no address to answer: its
    datagrams are counted (C{unbound}) and dropped.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from collections.abc import Collection
from typing import Any

from twisted.application.service import Service
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorUNIXDatagram
from twisted.internet.protocol import ConnectedDatagramProtocol, DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from services import logs
from services.echo._datagram import SEND_ERRORS, DatagramEcho, DatagramListener
from services.net.datagram import MAX_UDP_PAYLOAD, SourceLimiter, parseUnixDatagram
from services.net.seqpacket import removeStaleSocket
from services.stats import UdpEchoStats

__all__ = [
    "UnixDatagramClient",
    "UnixDatagramEcho",
    "UnixDatagramEchoListener",
]


class UnixDatagramEcho(DatagramEcho):
    """
    Send every datagram back to its sender's address, within the rules of
    the module docstring.

    @ivar limiter: the rate limits.
    @ivar ownPaths: the paths of our own echo sockets, which get no echo.
    @ivar stats: the counters it updates.
    @ivar maxPacketSize: the receive buffer size of its port.
    """

    def __init__(
        self,
        limiter: SourceLimiter,
        ownPaths: Collection[str] = (),
        stats: UdpEchoStats | None = None,
        maxPacketSize: int = MAX_UDP_PAYLOAD + 1,
    ) -> None:
        DatagramEcho.__init__(self, limiter, stats, maxPacketSize)
        self.ownPaths = frozenset(os.path.abspath(p) for p in ownPaths)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Echo C{datagram} to C{addr}, unless a rule says no.
        """
        stats = self.stats
        n = len(datagram)
        stats.received += 1
        stats.bytesIn += n
        if n >= self.maxPacketSize:
            stats.oversize += 1
            return self._drop(addr, n, "it filled the receive buffer")
        if not addr:
            stats.unbound += 1
            return self._drop(addr, n, "the sender's socket has no address")
        source = os.fsdecode(addr) if isinstance(addr, bytes) else addr
        if not source.startswith("\0") and os.path.abspath(source) in self.ownPaths:
            stats.loopGuarded += 1
            return self._drop(addr, n, "the sender is one of our echo sockets")
        if not self.limiter.allow(source):
            stats.rateLimited += 1
            return self._drop(addr, n, "rate limit")
        try:
            self.transport.write(datagram, addr)  # type: ignore[union-attr]
        except SEND_ERRORS as e:
            return self._sendFailed(addr, n, e)
        stats.echoed += 1
        stats.bytesOut += n
        return None

    def describeSource(self, addr: Any) -> str:
        """
        C{unix:PATH}, or an unbound socket.
        """
        return f"unix:{addr!r}" if addr else "an unbound socket"


class UnixDatagramEchoListener(DatagramListener):
    """
    One UNIX datagram echo socket for the life of the service; its file is
    removed when the service stops.

    @ivar port: the listening port once listening, else L{None}.
    @ivar description: the endpoint, as configured.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self, description: str, protocol: UnixDatagramEcho, reactor: IReactorUNIXDatagram
    ) -> None:
        self.description = description
        self.path, self.mode = parseUnixDatagram(description)
        self.protocol = protocol
        self.reactor = reactor
        self._inode: tuple[int, int] | None = None

    def _listen(self) -> None:
        from services.net.addresses import describeAddress
        from services.net.listener import ListenError

        try:
            removeStaleSocket(self.path, socket.SOCK_DGRAM)
            self.port = self.reactor.listenUNIXDatagram(
                self.path, self.protocol, maxPacketSize=self.protocol.maxPacketSize, mode=self.mode
            )
            info = os.stat(self.path)
        except Exception as e:
            raise ListenError("udp-echo", self.description, getattr(e, "socketError", e)) from e
        self._inode = (info.st_dev, info.st_ino)
        self._log.info(
            "udp-echo listening on {endpoint} ({address})",
            endpoint=self.description,
            address=describeAddress(self.port.getHost()),  # type: ignore[union-attr]
        )

    def stopService(self) -> Deferred[None] | None:
        """
        Close the socket and remove its file (unless another socket's file
        has taken its place).
        """
        Service.stopService(self)
        port, self.port = self.port, None
        if port is None:
            return None
        stopped = port.stopListening()
        try:
            info = os.stat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:
                os.unlink(self.path)
        except OSError:
            pass
        return stopped  # type: ignore[no-any-return]


class _Connected(ConnectedDatagramProtocol):
    """
    Carries a connected UNIX datagram port's events to a protocol written
    for connected UDP ports (C{datagramReceived(data, addr)}).
    """

    def __init__(self, inner: DatagramProtocol) -> None:
        self.inner = inner
        self.failure: Failure | None = None

    def makeConnection(self, transport: Any) -> None:
        ConnectedDatagramProtocol.makeConnection(self, transport)
        self.inner.makeConnection(transport)

    def datagramReceived(self, datagram: bytes) -> None:  # type: ignore[override]
        self.inner.datagramReceived(datagram, None)  # type: ignore[arg-type]

    def connectionRefused(self) -> None:
        self.inner.connectionRefused()

    def connectionFailed(self, failure: Failure) -> None:
        self.failure = failure

    def doStop(self) -> None:
        ConnectedDatagramProtocol.doStop(self)
        self.inner.doStop()


class UnixDatagramClient:
    """
    A UNIX datagram socket bound to a file of its own (the server answers
    to it) and connected to C{path}, for a protocol written for connected
    UDP ports (L{services.echo.UDPProber}, L{services.echo.UDPPipe}).

    @raise ConnectionRefusedError: when nothing listens at C{path}.
    @raise ConnectError: when the socket there is of another kind.
    """

    def __init__(
        self, reactor: IReactorUNIXDatagram, path: str, protocol: DatagramProtocol
    ) -> None:
        self._directory = tempfile.mkdtemp(prefix="netservices-echo-")
        adapter = _Connected(protocol)
        self.port = reactor.connectUNIXDatagram(
            path,
            adapter,
            maxPacketSize=MAX_UDP_PAYLOAD + 1,
            mode=0o600,
            bindAddress=os.path.join(self._directory, "client.sock"),
        )
        if adapter.failure is not None:
            self.close()
            value = adapter.failure.value
            reason = getattr(value, "socketError", None) or value
            if not isinstance(reason, OSError):
                adapter.failure.raiseException()
            number = reason.errno
            text = f"{reason.strerror}: {path}"
            if number in (errno.ECONNREFUSED, errno.ENOENT):
                raise error.ConnectionRefusedError(number, text)
            raise error.ConnectError(number, text)

    def close(self) -> None:
        """
        Remove the socket's file (the protocol closes the socket itself).
        """
        shutil.rmtree(self._directory, ignore_errors=True)
