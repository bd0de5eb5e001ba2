# -*- test-case-name: tests.unit.echo.test_udpecho -*-
"""
What the datagram echoes (UDP, L{services.echo._udp}; UNIX datagram,
L{services.echo._unixgram}) share: their counters and receive buffer, the
errors a send may raise, the debug line of a datagram not echoed, and when
their listeners bind.

The checks and the send of each datagram stay inline in each protocol's
C{datagramReceived}: they are the per-datagram path, and a shared helper
there would be one more call for every datagram.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel

from services import logs
from services.net.datagram import MAX_UDP_PAYLOAD, SourceLimiter
from services.stats import UdpEchoStats

__all__ = ["SEND_ERRORS", "DatagramEcho", "DatagramListener"]

#: What a datagram port's C{write} raises for a datagram it cannot send.
SEND_ERRORS = (OSError, MessageLengthError, InvalidAddressError)


class DatagramEcho(DatagramProtocol):
    """
    The base of a datagram echo: a subclass checks and sends in
    C{datagramReceived}, and says how its sources are written in the log.

    @ivar limiter: the rate limits.
    @ivar stats: the counters it updates.
    @ivar maxPacketSize: the receive buffer size of the port it runs on;
        a datagram this long may have been cut short.
    """

    _log = Logger(observer=logs.observer)
    noisy = False

    def __init__(
        self,
        limiter: SourceLimiter,
        stats: UdpEchoStats | None = None,
        maxPacketSize: int = MAX_UDP_PAYLOAD + 1,
    ) -> None:
        self.limiter = limiter
        self.stats = stats if stats is not None else UdpEchoStats()
        self.maxPacketSize = maxPacketSize

    def logPrefix(self) -> str:
        """
        How Twisted's own log lines name this protocol's port.
        """
        return "udp-echo"

    def describeSource(self, addr: Any) -> str:
        """
        C{addr}, as the log writes a source.
        """
        raise NotImplementedError()

    def _sendFailed(self, addr: Any, size: int, error: Exception) -> None:
        """
        The port refused to send the echo of C{size} bytes to C{addr}.
        """
        self.stats.sendErrors += 1
        self._drop(addr, size, f"cannot send: {error}")

    def _drop(self, addr: Any, size: int, reason: Any) -> None:
        """
        Log, at debug level, why C{size} bytes from C{addr} got no echo.
        """
        if logs.isEnabledFor(LogLevel.debug):
            self._log.debug(
                "udp-echo: not echoing {size} bytes to {source}: {reason}",
                size=size,
                source=self.describeSource(addr),
                reason=reason,
            )


class DatagramListener(Service):
    """
    One datagram port for the life of the service, bound as soon as the
    service starts (privileged, when it may need to be); a subclass says
    how in C{_listen}.

    @ivar port: the listening port once listening, else L{None}.
    """

    port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        """
        Bind now (the port, or the socket's directory, may be root's).

        @raise ListenError: if it cannot be bound.
        """
        Service.privilegedStartService(self)
        self._listen()

    def startService(self) -> None:
        """
        Start the service, binding if not done yet.
        """
        Service.startService(self)
        if self.port is None:
            self._listen()

    def _listen(self) -> None:
        raise NotImplementedError()
