# -*- test-case-name: tests.test_reactor -*-
"""
C{nsepoll}: Twisted's epoll reactor with a leaner data path.

C{twistd -n netservices} runs on it unless twistd is given C{--reactor} or
C{[netservices] reactor = twisted} (see L{services.daemon.tap.installConfiguredReactor});
any twistd application can select it with C{twistd --reactor nsepoll} (the
plugin is C{twisted/plugins/netservices_reactor.py}), and a program of your
own can install it before anything imports C{twisted.internet.reactor}::

    from services import nsepoll
    nsepoll.install()

It is L{twisted.internet.epollreactor.EPollReactor} with three changes,
each found by profiling the echo service under load:

  - Each ready descriptor is handled without C{log.callWithLogger}, which
    wraps every read and write in a log context (a dictionary copy and
    three nested calls, about a quarter of the loop's Python time).  Errors
    are still caught and logged; only the legacy C{system} prefix of events
    logged with C{twisted.python.log} during a read is no longer the
    connection's.
  - TCP and UNIX server connections do not register for writability when
    they are written to: once the events of a poll (or the timed calls) are
    handled, the reactor sends what each connection queued, and registers
    for writability only when the kernel does not take it all.  An HTTP
    response (headers and body, two writes) is then one C{send()}, with no
    C{epoll_ctl} and no extra loop turn; the responses to a batch of
    requests leave together, which also spares the clients wake-ups
    (measured with wrk: 30 instead of 36 us of server CPU and 6.5 instead of
    14.5 us of client CPU per request, compared with flushing after every
    event).  Writes stay asynchronous (never sent from inside C{write()})
    and in order, and the transport's buffer and producer pausing work as
    usual.
  - UDP ports read datagrams with fewer lookups per datagram, and skip
    re-validating a destination address they have already validated.
  - A TCP connection asks the kernel for its local address once, not once
    per HTTP request.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from twisted.internet import epollreactor, error, tcp, udp
from twisted.internet.posixbase import _NO_FILEDESC
from twisted.python import log
from twisted.internet.main import installReactor
from twisted.logger import Logger

from services import logs

__all__ = ["NetservicesReactor", "install"]

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    unix = None  # type: ignore[assignment]


class FlushMixin:
    """
    Mix into a Twisted TCP or UNIX connection class (before it): instead of
    registering for writability, C{startWriting} asks the reactor to flush
    the connection once the current batch of events is handled
    (L{NetservicesReactor.flushLater}).

    @ivar _writing: whether the connection is registered for writability.
    @ivar _flushQueued: whether a flush is already asked for.
    """

    _writing = False
    _flushQueued = False
    #: For L{services.nsepoll.fastpath.canWriteDirectly}: sending straight to the
    #: socket when nothing is queued is as safe here as on Twisted's own.
    _plainSocketTransport = True

    def startWriting(self) -> None:
        """
        Send what is queued soon, from the reactor, without a system call
        now.
        """
        if self._writing or self._flushQueued:
            return
        self._flushQueued = True
        self.reactor.flushLater(self)  # type: ignore[attr-defined]

    def stopWriting(self) -> None:
        """
        No more writability events.
        """
        self._writing = False
        super().stopWriting()  # type: ignore[misc]


class Server(FlushMixin, tcp.Server):
    """
    A TCP server connection flushed by the reactor (see L{FlushMixin}),
    which asks the kernel for its own address once (twisted.web asks for
    every request).
    """

    _host: Any = None

    def getHost(self) -> Any:
        """
        The local address of the connection (it never changes).
        """
        if self._host is None:
            self._host = tcp.Server.getHost(self)
        return self._host


class Port(tcp.Port):
    """
    A TCP listening port whose connections are L{Server}s.
    """

    transport = Server


if unix is not None:

    class UNIXServer(FlushMixin, unix.Server):
        """
        A UNIX server connection flushed by the reactor (see
        L{FlushMixin}).
        """

    class UNIXPort(unix.Port):
        """
        A UNIX listening port whose connections are L{UNIXServer}s.
        """

        transport = UNIXServer


class DatagramPort(udp.Port):
    """
    A UDP port with a tighter read loop and a memory of the destination
    hosts it has already validated.
    """

    _maxCheckedHosts = 1024
    _log = Logger(observer=logs.observer)

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
                no = se.args[0]
                if no in udp._sockErrReadIgnore:
                    return
                if no in udp._sockErrReadRefuse:
                    if self._connectedAddr:
                        self.protocol.connectionRefused()
                    return
                raise
            read += len(data)
            if inet6:
                addr = addr[:2]
            try:
                received(data, addr)
            except BaseException:
                self._log.failure("Unhandled error in {protocol}.datagramReceived",
                                  protocol=self.protocol)

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


_EPOLLIN = epollreactor.EPOLLIN


class NetservicesReactor(epollreactor.EPollReactor):
    """
    The epoll reactor without a log context around each event, with stream
    connections flushed after each batch of events and leaner UDP ports.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self) -> None:
        self._toFlush: list[Any] = []
        epollreactor.EPollReactor.__init__(self)

    def flushLater(self, connection: Any) -> None:
        """
        Send what C{connection} queued once the current batch of events, or
        the current timed calls, are handled.
        """
        self._toFlush.append(connection)

    def _flush(self) -> None:
        """
        Hand every connection's queued bytes to the kernel; register those
        whose bytes the kernel did not all take for writability.
        """
        while self._toFlush:
            pending, self._toFlush = self._toFlush, []
            for connection in pending:
                connection._flushQueued = False
                if connection.disconnected or connection._writing:
                    continue
                if self._sendQueued(connection):
                    continue
                if not (
                    len(connection.dataBuffer) - connection.offset
                    or connection._tempDataLen
                    or connection.disconnecting
                    or connection._writeDisconnecting
                ):
                    continue  # someone else (a sendfile producer) sent it all
                # Exactly what a writability event would do: doWrite, with
                # its errors and disconnection handled by the reactor.
                self._doReadOrWrite(connection, connection.fileno(), epollreactor.EPOLLOUT)
                if connection.connected and (
                    len(connection.dataBuffer) - connection.offset or connection._tempDataLen
                ):
                    connection._writing = True
                    self.addWriter(connection)

    @staticmethod
    def _sendQueued(connection: Any) -> bool:
        """
        The common case of a flush, in one C{send()}: a connection that
        only has bytes written since the last flush, no pending close and
        no producer to resume.  Returns whether it handled the flush
        (everything sent, or the rest moved to the buffer that C{doWrite}
        sends, with the connection registered for writability).
        """
        producer = connection.producer
        if (
            connection.dataBuffer
            or not connection._tempDataLen
            or connection.disconnecting
            or connection._writeDisconnecting
            or (producer is not None
                and (not connection.streamingProducer or connection.producerPaused))
        ):
            return False
        queued = connection._tempDataBuffer
        data = queued[0] if len(queued) == 1 else b"".join(queued)
        try:
            sent = connection.socket.send(data)
        except OSError:
            return False  # doWrite meets the error again and reports it
        connection._tempDataBuffer = []
        connection._tempDataLen = 0
        if sent < len(data):
            connection.dataBuffer = data
            connection.offset = sent
            connection._writing = True
            connection.reactor.addWriter(connection)
        return True

    def runUntilCurrent(self) -> None:
        """
        Run the timed calls that are due, then flush what they wrote.
        """
        epollreactor.EPollReactor.runUntilCurrent(self)
        if self._toFlush:
            self._flush()

    def doPoll(self, timeout: float | None) -> None:
        """
        Wait for events for at most C{timeout} seconds and handle them.
        """
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except InterruptedError:
            return
        get = self._selectables.get
        handle = self._doReadOrWrite
        for fd, event in events:
            selectable = get(fd)
            if selectable is None:
                continue
            if event == _EPOLLIN:
                # The common case, bytes to read: what _doReadOrWrite does
                # for it, without its call and its tests of the other cases.
                try:
                    why = _NO_FILEDESC if selectable.fileno() == -1 else selectable.doRead()
                except BaseException:
                    why = sys.exc_info()[1]
                    log.err()
                if why:
                    try:
                        self._disconnectSelectable(selectable, why, True)
                    except KeyboardInterrupt:
                        raise
                    except BaseException:
                        self._log.failure("Unhandled error handling {selectable}",
                                          selectable=selectable)
                continue
            try:
                handle(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure("Unhandled error handling {selectable}", selectable=selectable)
        if self._toFlush:
            try:
                self._flush()
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure("Unhandled error flushing connections")

    doIteration = doPoll

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Port:
        """
        Listen on a TCP port whose connections are flushed by the reactor.
        """
        p = Port(port, factory, backlog, interface, self)
        p.startListening()
        return p

    def listenUNIX(self, address: Any, factory: Any, backlog: int = 50, mode: int = 0o666,
                   wantPID: int = 0) -> Any:
        """
        Listen on a UNIX socket whose connections are flushed by the
        reactor.
        """
        p = UNIXPort(address, factory, backlog, mode, self, wantPID)
        p.startListening()
        return p

    def adoptStreamPort(self, fileDescriptor: int, addressFamily: Any, factory: Any) -> Any:
        """
        Listen on an already bound socket (socket activation, workers
        sharing a listener) with this reactor's connection classes.
        """
        if addressFamily not in self._supportedAddressFamilies:
            raise error.UnsupportedAddressFamily(addressFamily)
        if unix is not None and addressFamily == socket.AF_UNIX:
            p = UNIXPort._fromListeningDescriptor(self, fileDescriptor, factory)
        else:
            p = Port._fromListeningDescriptor(self, fileDescriptor, addressFamily, factory)
        p.startListening()
        return p

    def adoptStreamConnection(self, fileDescriptor: int, addressFamily: Any, factory: Any) -> Any:
        """
        Take over an already connected socket with this reactor's
        connection classes.
        """
        if addressFamily not in self._supportedAddressFamilies:
            raise error.UnsupportedAddressFamily(addressFamily)
        if unix is not None and addressFamily == socket.AF_UNIX:
            return UNIXServer._fromConnectedSocket(fileDescriptor, factory, self)
        return Server._fromConnectedSocket(fileDescriptor, addressFamily, factory, self)

    def adoptDatagramPort(self, fileDescriptor: int, addressFamily: Any, protocol: Any,
                          maxPacketSize: int = 8192) -> DatagramPort:
        """
        Receive datagrams on an already bound socket with the leaner UDP
        port.
        """
        if addressFamily not in (socket.AF_INET, socket.AF_INET6):
            raise error.UnsupportedAddressFamily(addressFamily)
        p = DatagramPort._fromListeningDescriptor(
            self, fileDescriptor, addressFamily, protocol, maxPacketSize=maxPacketSize
        )
        p.startListening()
        return p

    def listenUDP(self, port: int, protocol: Any, interface: str = "",
                  maxPacketSize: int = 8192) -> DatagramPort:
        """
        Listen on a UDP port with the leaner read loop.
        """
        p = DatagramPort(port, protocol, interface, maxPacketSize, self)
        p.startListening()
        return p


def install() -> NetservicesReactor:
    """
    Install L{NetservicesReactor} as the global reactor.
    """
    reactor = NetservicesReactor()
    installReactor(reactor)
    return reactor
