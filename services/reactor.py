# -*- test-case-name: tests.test_reactor -*-
"""
C{nsepoll}: Twisted's epoll reactor with a leaner data path.

Select it with C{twistd --reactor nsepoll -n netservices} (the plugin is
C{twisted/plugins/netservices_reactor.py}), or install it in a program of
your own before anything imports C{twisted.internet.reactor}::

    from services import reactor as nsepoll
    nsepoll.install()

It is L{twisted.internet.epollreactor.EPollReactor} with three changes,
each found by profiling the echo service under load:

  - Each ready descriptor is handled without C{log.callWithLogger}, which
    wraps every read and write in a log context (a dictionary copy and
    three nested calls, about a quarter of the loop's Python time).  Errors
    are still caught and logged; only the legacy C{system} prefix of events
    logged with C{twisted.python.log} during a read is no longer the
    connection's.
  - TCP and UNIX server connections send straight to the socket when
    nothing is queued (see L{services.fastpath}), for every protocol.
  - UDP ports read datagrams with fewer lookups per datagram, and skip
    re-validating a destination address they have already validated.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import epollreactor, tcp, udp
from twisted.internet.main import installReactor
from twisted.logger import Logger

from services import logs
from services.fastpath import DirectWriteMixin

__all__ = ["NetservicesReactor", "install"]

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    unix = None  # type: ignore[assignment]


class Server(DirectWriteMixin, tcp.Server):
    """
    A TCP server connection that writes through when its buffer is empty.
    """


class Port(tcp.Port):
    """
    A TCP listening port whose connections are L{Server}s.
    """

    transport = Server


if unix is not None:

    class UNIXServer(DirectWriteMixin, unix.Server):
        """
        A UNIX server connection that writes through when its buffer is
        empty.
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
        result = udp.Port.write(self, datagram, addr)
        if addr is not None and not self._connectedAddr:
            if len(self._checkedHosts) >= self._maxCheckedHosts:
                self._checkedHosts.clear()
            self._checkedHosts.add(addr[0])
        return result


class NetservicesReactor(epollreactor.EPollReactor):
    """
    The epoll reactor without a log context around each event, with
    write-through stream connections and leaner UDP ports.
    """

    _log = Logger(observer=logs.observer)

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
            try:
                handle(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure("Unhandled error handling {selectable}", selectable=selectable)

    doIteration = doPoll

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Port:
        """
        Listen on a TCP port whose connections write through.
        """
        p = Port(port, factory, backlog, interface, self)
        p.startListening()
        return p

    def listenUNIX(self, address: Any, factory: Any, backlog: int = 50, mode: int = 0o666,
                   wantPID: int = 0) -> Any:
        """
        Listen on a UNIX socket whose connections write through.
        """
        p = UNIXPort(address, factory, backlog, mode, self, wantPID)
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
