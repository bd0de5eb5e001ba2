# -*- test-case-name: tests.unit.net.test_listen -*-
"""
The socket options a server author reaches for and that Twisted's endpoint
strings do not offer, applied to every listener of one service
(L{SocketOptions}):

  - C{backlog}: added to C{tcp:}, C{tcp6:}, C{unix:} and C{ssl:} descriptions
    that do not set C{backlog=} themselves (L{withBacklog});
  - C{SO_SNDBUF} / C{SO_RCVBUF}: set on the listening socket through its
    handle right after it is bound; Linux copies them to every accepted
    connection (L{applyBufferSizes});
  - C{SO_REUSEPORT}: must be set before C{bind()}, so a TCP endpoint is
    listened on with L{services._twisted.endpoints.listenTCPReusingPort}
    (L{ReusePortEndpoint}, L{withReusePort}).
"""

from __future__ import annotations

import socket

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTCP,
    IStreamServerEndpoint,
)
from zope.interface import implementer

from services import dataclass
from services._twisted.endpoints import listenTCPReusingPort, tcpServerArguments

__all__ = [
    "ReusePortEndpoint",
    "SocketOptions",
    "applyBufferSizes",
    "withBacklog",
    "withReusePort",
]

_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})


@dataclass(frozen=True)
class SocketOptions:
    """
    Options applied to every listener of one service.

    @ivar backlog: the listen queue length when the description sets none.
    @ivar sndbuf: C{SO_SNDBUF} in bytes, 0 for the kernel default.
    @ivar rcvbuf: C{SO_RCVBUF} in bytes, 0 for the kernel default.
    @ivar reuseport: set C{SO_REUSEPORT} on TCP listeners.
    """

    backlog: int = 50
    sndbuf: int = 0
    rcvbuf: int = 0
    reuseport: bool = False


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """
    A TCP server endpoint that binds with C{SO_REUSEPORT}, so that several
    processes (or several ports in one process) accept on the same address.

    @ivar port: the TCP port, 0 for any free port.
    @ivar backlog: the listen queue length.
    @ivar interface: the address to bind, C{""} for every IPv4 address.
    """

    def __init__(
        self, reactor: IReactorTCP, port: int, backlog: int, interface: str
    ) -> None:
        self._reactor = reactor
        self.port = port
        self.backlog = backlog
        self.interface = interface

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen with C{SO_REUSEADDR} and C{SO_REUSEPORT} set before C{bind()}.
        """
        try:
            port = listenTCPReusingPort(
                self._reactor, self.port, protocolFactory, self.backlog, self.interface
            )
        except Exception:
            return fail()
        return succeed(port)


def withReusePort(reactor: IReactorTCP, endpoint: IStreamServerEndpoint) -> IStreamServerEndpoint:
    """
    C{endpoint} listening with C{SO_REUSEPORT} if it is one of Twisted's TCP
    server endpoints (what C{tcp:} and C{tcp6:} descriptions become), else
    C{endpoint} itself.
    """
    arguments = tcpServerArguments(endpoint)
    if arguments is None:
        return endpoint
    return ReusePortEndpoint(reactor, *arguments)


def withBacklog(description: str, backlog: int) -> str:
    """
    Add C{backlog=N} to an endpoint description of a type that takes one,
    unless it already sets it.
    """
    kind = description.split(":", 1)[0].lower()
    if kind in _BACKLOG_TYPES and "backlog=" not in description:
        return f"{description}:backlog={backlog}"
    return description


def applyBufferSizes(port: IListeningPort, options: SocketOptions) -> None:
    """
    Set C{SO_SNDBUF} and C{SO_RCVBUF} on a listening port's socket, which
    accepted connections inherit.  Ports without a socket (in memory, for
    tests) are left alone.
    """
    skt = getattr(port, "socket", None)
    if not isinstance(skt, socket.socket):
        return
    if options.sndbuf:
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.sndbuf)
    if options.rcvbuf:
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, options.rcvbuf)
