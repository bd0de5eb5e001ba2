# -*- test-case-name: tests.unit.nsepoll.test_reactor -*-
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

What of this stands on the epoll reactor's and the transports' internals
is in L{services._twisted.reactor.LeanEPollReactor} (the poll loop, the
flush, adopting sockets) and L{services._twisted.udp.ReaderDatagramPort};
this module chooses the classes and installs the reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.internet.main import installReactor
from twisted.logger import Logger

from services import logs
from services._twisted.reactor import FlushMixin, LeanEPollReactor, LeanTCPServerMixin
from services._twisted.udp import ReaderDatagramPort

__all__ = ["NetservicesReactor", "install"]

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    unix = None  # type: ignore[assignment]


class Server(FlushMixin, LeanTCPServerMixin, tcp.Server):
    """
    A TCP server connection flushed by the reactor (see L{FlushMixin}),
    with a shorter read path and fewer strings of its own (see
    L{LeanTCPServerMixin}), which asks the kernel for its own address once
    (twisted.web asks for every request).
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


class DatagramPort(ReaderDatagramPort):
    """
    A UDP port with a tighter read loop and a memory of the destination
    hosts it has already validated, whose protocol may read its own
    datagrams (L{ReaderDatagramPort}), logging through netservices' filter.
    """

    _log = Logger(observer=logs.observer)


class NetservicesReactor(LeanEPollReactor):
    """
    The epoll reactor without a log context around each event, with stream
    connections flushed after each batch of events and leaner UDP ports.
    """

    _log = Logger(observer=logs.observer)
    tcpPort = Port
    tcpServer = Server
    unixPort = UNIXPort if unix is not None else None
    unixServer = UNIXServer if unix is not None else None
    datagramPort = DatagramPort

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
