# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
Twisted's listening endpoints: what netservices reads out of them
(L{tcpServerArguments}), and C{SO_REUSEPORT} on releases without
L{twisted.internet.tcp.makeBinding} (L{listenTCPReusingPort}).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.internet.posixbase import PosixReactorBase

from services._twisted import PrivateName, isA

__all__ = ["HAS_MAKE_BINDING", "PRIVATE_NAMES", "listenTCPReusingPort", "tcpServerArguments"]

#: Whether C{listenTCP} takes a binding (Twisted 26.10 and newer).
HAS_MAKE_BINDING = hasattr(tcp, "makeBinding")


class _ReusePortPort(tcp.Port):
    """
    A TCP port that sets C{SO_REUSEPORT} before C{bind()}, for Twisted
    releases whose C{listenTCP} cannot be given a binding.
    """

    def createInternetSocket(self) -> socket.socket:
        skt: socket.socket = super().createInternetSocket()
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return skt


def listenTCPReusingPort(
    reactor: Any, port: int, factory: IProtocolFactory, backlog: int, interface: str
) -> IListeningPort:
    """
    Listen on TCP with C{SO_REUSEADDR} and C{SO_REUSEPORT} set before
    C{bind()}: through C{reactor.listenTCP} and a binding where Twisted has
    L{twisted.internet.tcp.makeBinding}, else with a port of our own (a
    reactor that is not Twisted's POSIX one, such as a test's memory
    reactor, is simply asked to listen).
    """
    if not HAS_MAKE_BINDING and not isinstance(reactor, PosixReactorBase):
        fake: IListeningPort = reactor.listenTCP(port, factory, backlog=backlog, interface=interface)
        return fake
    if HAS_MAKE_BINDING:
        binding = tcp.makeBinding(interface, port, reuseAddress=True, reusePort=True)
        listening: IListeningPort = reactor.listenTCP(
            binding, factory, backlog=backlog, interface=interface
        )
        return listening
    own = _ReusePortPort(port, factory, backlog, interface, reactor)
    own.startListening()
    return own


def tcpServerArguments(endpoint: object) -> tuple[int, int, str] | None:
    """
    The port, backlog and interface of one of Twisted's TCP server
    endpoints (what C{tcp:} and C{tcp6:} descriptions become), or L{None}
    for any other endpoint.

    Twisted keeps them in private attributes and offers no other way to
    listen on a description's socket with a binding of one's own.
    """
    if not isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint)):
        return None
    return endpoint._port, endpoint._backlog, endpoint._interface


def _endpoint() -> Any:
    from twisted.internet.testing import MemoryReactor

    return TCP4ServerEndpoint(MemoryReactor(), 8, backlog=5, interface="127.0.0.1")


PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet.endpoints:TCP4ServerEndpoint._port",
        "the port of a tcp:/tcp6: description, to listen on it with SO_REUSEPORT",
        ("services.net.sockets",),
        shape=isA(int),
        instance=_endpoint,
    ),
    PrivateName(
        "twisted.internet.endpoints:TCP4ServerEndpoint._backlog",
        "the backlog of a tcp:/tcp6: description, kept with SO_REUSEPORT",
        ("services.net.sockets",),
        shape=isA(int),
        instance=_endpoint,
    ),
    PrivateName(
        "twisted.internet.endpoints:TCP4ServerEndpoint._interface",
        "the interface of a tcp:/tcp6: description, kept with SO_REUSEPORT",
        ("services.net.sockets",),
        shape=isA(str),
        instance=_endpoint,
    ),
)
