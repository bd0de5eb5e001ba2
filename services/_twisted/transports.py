# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
Twisted's transports (L{twisted.internet.abstract.FileDescriptor}, TCP, UDP
and UNIX ports and connections): the write buffers the fast paths flush
themselves (L{unsentBytes}, and the fast paths that are made of them:
L{writeDirectly}, L{LeanDatagramPort}), the constructors of adopted sockets
(L{adoptUNIXPortKeepingFile}), and the accept loop's log (L{routePortLog},
L{ACCEPT_EVENTS}).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp, udp
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

from services._twisted import PrivateName, isA

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    unix = None  # type: ignore[assignment]

__all__ = [
    "ACCEPT_EVENTS",
    "PRIVATE_NAMES",
    "LeanDatagramPort",
    "adoptUNIXPortKeepingFile",
    "routePortLog",
    "unsentBytes",
    "writeDirectly",
]

# Looked up here, not imported, so that the registry still loads on a
# Twisted without them (the nsepoll fast path is off there: see fastPath).
_READ_IGNORE = getattr(udp, "_sockErrReadIgnore", ())
_READ_REFUSE = getattr(udp, "_sockErrReadRefuse", ())

#: How Twisted's accept loop starts the events it logs for every connection
#: it cannot keep (C{twisted.internet.tcp.Port.doRead}); checked against the
#: running Twisted's source by the test.
ACCEPT_EVENTS = ("EMFILE", "Re-reserving EMFILE", "Could not accept new connection")


def unsentBytes(descriptor: Any) -> int:
    """
    How many bytes a L{twisted.internet.abstract.FileDescriptor} holds that
    the kernel has not taken yet: C{dataBuffer} from C{offset} on, and the
    small writes not yet joined into it.
    """
    return len(descriptor.dataBuffer) - descriptor.offset + descriptor._tempDataLen  # type: ignore[no-any-return]


def writeDirectly(transport: Any, data: bytes) -> None:
    """
    Write C{data} to C{transport}, a transport for which
    L{services.nsepoll.fastpath.canWriteDirectly} is true: send it now if
    nothing is queued, and queue whatever the kernel does not take.
    """
    if (
        transport._tempDataLen
        or transport.dataBuffer
        or transport.TLS
        or transport.disconnecting
        or transport._writeDisconnecting
        or not transport.connected
        or type(data) is not bytes
    ):
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except OSError:
        # EAGAIN, or an error that the transport's next send reports.
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])


class LeanDatagramPort(udp.Port):
    """
    A UDP port with a tighter read loop and a memory of the destination
    hosts it has already validated.
    """

    _maxCheckedHosts = 1024
    _log = Logger()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        udp.Port.__init__(self, *args, **kwargs)
        self._checkedHosts: set[str] = set()

    def doRead(self) -> None:
        """
        Read datagrams until the socket is empty or C{maxThroughput} bytes
        were read, handing each to the protocol.
        """
        recvfrom = self.socket.recvfrom
        size = self.maxPacketSize
        received = self.protocol.datagramReceived
        inet6 = self.addressFamily == socket.AF_INET6
        limit = self.maxThroughput
        read = 0
        while read < limit:
            try:
                data, addr = recvfrom(size)
            except OSError as se:
                self.readFailed(se)
                return
            read += len(data)
            if inet6:
                addr = addr[:2]
            try:
                received(data, addr)
            except BaseException:
                self._log.failure("Unhandled error in {protocol}.datagramReceived",
                                  protocol=self.protocol)

    def readFailed(self, error: OSError) -> None:
        """
        Handle the error of C{recvfrom} that ended a read loop as
        L{udp.Port.doRead} does: an empty socket ends the read, a refused
        datagram is reported to a connected port's protocol, and anything
        else is raised again (the reactor disconnects the port).  Only the
        last read of a loop fails, so sharing this costs no call per
        datagram.
        """
        no = error.args[0]
        if no in _READ_IGNORE:
            return
        if no in _READ_REFUSE:
            if self._connectedAddr:
                self.protocol.connectionRefused()
            return
        raise error

    def write(self, datagram: bytes, addr: Any = None) -> Any:
        """
        Send C{datagram} to C{addr}; the address checks of
        L{udp.Port.write} run once per destination host.
        """
        if addr is not None and not self._connectedAddr and addr[0] in self._checkedHosts:
            try:
                return self.socket.sendto(datagram, addr)
            except OSError:
                pass  # let udp.Port.write handle (and retry) the error
        result: Any = udp.Port.write(self, datagram, addr)  # type: ignore[func-returns-value]
        if addr is not None and not self._connectedAddr:
            if len(self._checkedHosts) >= self._maxCheckedHosts:
                self._checkedHosts.clear()
            self._checkedHosts.add(addr[0])
        return result


def routePortLog(port: Any, observer: ILogObserver) -> bool:
    """
    Send the log events of a listening port (Twisted's TCP and UNIX ports
    log through a L{Logger} of their own, C{tcp.Port._logger}) to
    C{observer} instead.

    @return: whether C{port} has such a logger (a port in memory, for
        tests, has none and is left alone).
    """
    logger = getattr(port, "_logger", None)
    if not isinstance(logger, Logger):
        return False
    port._logger = Logger(namespace=logger.namespace, source=port, observer=observer)
    return True


if unix is not None:

    class _UNIXPortKeepingFile(unix.Port):  # type: ignore[misc]
        """
        A UNIX listening port whose socket file belongs to someone else
        (systemd, a parent process): stopping it leaves the file in place,
        where Twisted's own port would remove it.
        """

        def connectionLost(self, reason: Failure) -> None:
            tcp.Port.connectionLost(self, reason)


def adoptUNIXPortKeepingFile(
    reactor: Any, fileno: int, factory: IProtocolFactory
) -> IListeningPort:
    """
    Accept connections on the listening UNIX socket C{fileno} (bound by
    someone else), leaving its file in place when the port stops.  The
    caller closes C{fileno}: the port holds a duplicate.
    """
    port: IListeningPort = _UNIXPortKeepingFile._fromListeningDescriptor(reactor, fileno, factory)
    port.startListening()
    return port


# The instances below are only looked at, never started: any object does as
# their reactor (twisted.internet.testing would load TLS at start-up).


def _descriptor() -> Any:
    from twisted.internet.abstract import FileDescriptor

    return FileDescriptor(reactor=object())  # type: ignore[arg-type]


def _udpPort() -> Any:
    from twisted.internet.protocol import DatagramProtocol
    from twisted.internet.udp import Port

    return Port(0, DatagramProtocol(), reactor=object())


_WRITE_PATHS = ("services.nsepoll._reactor", "services.web._sendfile", "services.nsepoll.fastpath", "services.net.sendtimeout")

PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet.abstract:FileDescriptor._tempDataBuffer",
        "the small writes not yet joined into dataBuffer; the write-through and sendfile "
        "paths flush them before writing on their own",
        _WRITE_PATHS[:2],
        shape=isA(list),
        instance=_descriptor,
        fastPaths=('nsepoll', 'sendfile'),
    ),
    PrivateName(
        "twisted.internet.abstract:FileDescriptor._tempDataLen",
        "how many bytes _tempDataBuffer holds: part of what is still to send",
        _WRITE_PATHS,
        shape=isA(int),
        instance=_descriptor,
        fastPaths=('nsepoll', 'sendfile'),
    ),
    PrivateName(
        "twisted.internet.abstract:FileDescriptor._writeDisconnecting",
        "whether loseConnection waits for the buffer: a fast path must not write then",
        _WRITE_PATHS[:3],
        shape=isA(bool),
        instance=_descriptor,
        fastPaths=('nsepoll', 'sendfile'),
    ),
    PrivateName(
        "twisted.internet.tcp:Port._logger",
        "the listening port's Logger, replaced to demote accept-error lines",
        ("services.net.listener",),
        shape=isA(Logger),
    ),
    PrivateName(
        "twisted.internet.tcp:Port._fromListeningDescriptor",
        "adopting a listening TCP socket with the reactor's own connection class",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.unix:Port._fromListeningDescriptor",
        "adopting a listening UNIX socket (and keeping its file) with our classes",
        ("services.nsepoll._reactor", "services.net.endpoints"),
    ),
    PrivateName(
        "twisted.internet.udp:Port._fromListeningDescriptor",
        "adopting a bound UDP socket with the leaner datagram port",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.tcp:Server._fromConnectedSocket",
        "adopting a connected TCP socket with the reactor's own connection class",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.unix:Server._fromConnectedSocket",
        "adopting a connected UNIX socket with the reactor's own connection class",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.udp:_sockErrReadIgnore",
        "the recvfrom errors the lean UDP read loops ignores, as udp.Port does",
        ("services.nsepoll._reactor", "services._twisted.udp"),
        shape=isA(list, tuple, set, frozenset),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.udp:_sockErrReadRefuse",
        "the recvfrom errors the lean UDP read loops reports as connectionRefused",
        ("services.nsepoll._reactor", "services._twisted.udp"),
        shape=isA(list, tuple, set, frozenset),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.udp:Port._connectedAddr",
        "whether a UDP port is connected: sendto is skipped then",
        ("services.nsepoll._reactor",),
        shape=lambda value: value is None or isinstance(value, tuple),
        instance=_udpPort,
        fastPaths=('nsepoll',),
    ),
)
