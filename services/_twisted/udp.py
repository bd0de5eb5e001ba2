# -*- test-case-name: tests.unit._twisted.test_udp -*-
"""
A UDP port that lets a protocol read its own datagrams: the read loop of
L{services._twisted.transports.LeanDatagramPort} and the protocol's
C{datagramReceived} in one Python frame, for protocols that answer every
datagram (the UDP echo).

A protocol that has a C{readDatagrams(recvfrom, sendto, size, limit)}
method is handed the port's socket's C{recvfrom} and C{sendto} on every
read event, and loops itself: per datagram that spares the calls of the
port's loop into C{datagramReceived} and of C{datagramReceived} into the
port's C{write}, and the attribute lookups each of them repeats.  The
contract of that method, which keeps every guarantee of the port's own loop:

  - it reads at most C{limit} bytes per call (then returns L{None}: the
    rest is read on the next event, as with C{maxThroughput});
  - it catches the C{OSError} of C{recvfrom} and returns it, without
    reading on: the port handles it exactly as its own loop does
    (L{LeanDatagramPort.readFailed}: an empty socket ends the read, a
    refused one is reported, anything else disconnects the port); best
    without its traceback, which holds the loop's frame, and so the error:
    a reference cycle per read event, left to the garbage collector;
  - it may answer with C{sendto} only to the address a datagram came from
    (the kernel's own, so the address checks of C{udp.Port.write} have
    nothing to refuse), and when C{sendto} fails it sends again with the
    port's C{write}, whose error handling (and errors) are the usual ones.

Any other exception it raises is logged, as the port's loop logs an error
of C{datagramReceived}, and the datagrams still queued are read on the
next event.  Only IPv4 ports that are not connected use it: an IPv6
address needs trimming to Twisted's two-tuple, and a connected port sends
with C{send}; both keep the port's own loop, as does every protocol
without the method.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.logger import Logger

from services._twisted.transports import LeanDatagramPort

__all__ = ["PRIVATE_NAMES", "ReaderDatagramPort"]


class ReaderDatagramPort(LeanDatagramPort):
    """
    A L{LeanDatagramPort} whose protocol reads its own datagrams when it
    has a C{readDatagrams} method (see the module docstring).

    @ivar _reader: the protocol's C{readDatagrams} while the port may use
        it, else L{None}.
    """

    _reader: Any = None
    _log = Logger()

    def startReading(self) -> None:
        """
        Decide whether the protocol reads for itself (the socket and the
        protocol are both known by now), then wait for datagrams.
        """
        self._reader = self._readerFor()
        LeanDatagramPort.startReading(self)

    def _readerFor(self) -> Any:
        if self.addressFamily != socket.AF_INET or self._connectedAddr:
            return None
        return getattr(self.protocol, "readDatagrams", None)

    def connect(self, host: str, port: int) -> None:
        """
        Connect the port; a connected port reads with the port's own loop.
        """
        LeanDatagramPort.connect(self, host, port)
        self._reader = None

    def doRead(self) -> None:
        """
        Let the protocol read and answer the datagrams queued, or read them
        with L{LeanDatagramPort}'s loop.
        """
        reader = self._reader
        if reader is None:
            LeanDatagramPort.doRead(self)
            return
        socket_ = self.socket
        try:
            failure = reader(socket_.recvfrom, socket_.sendto, self.maxPacketSize,
                             self.maxThroughput)
        except BaseException:
            self._log.failure("Unhandled error in {protocol}.readDatagrams",
                              protocol=self.protocol)
            return
        if failure is not None:
            self.readFailed(failure)


#: It uses only names registered by L{services._twisted.transports}.
PRIVATE_NAMES = ()
