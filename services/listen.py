# -*- test-case-name: tests.test_listen -*-
"""
Stream listeners from endpoint strings, with the socket options a server
author reaches for and that Twisted's endpoint strings do not offer.

  - C{backlog}: added to C{tcp:}, C{tcp6:}, C{unix:} and C{ssl:} descriptions
    that do not set C{backlog=} themselves.
  - C{SO_SNDBUF} / C{SO_RCVBUF}: set on the listening socket through its
    handle right after it is bound; Linux copies them to every accepted
    connection.
  - C{SO_REUSEPORT}: must be set before C{bind()}, so a TCP endpoint is
    listened on with a binding from L{twisted.internet.tcp.makeBinding}.

When the process runs out of file descriptors, Twisted's accept loop
accepts and closes each new connection at once (it keeps a reserve
descriptor for that, so it never spins), and logs three lines at info level
for each: under a connection flood, a log line per attempt.
L{AcceptErrorLog} passes those on at debug level and warns once a minute
with a count instead.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTCP,
    IStreamServerEndpoint,
)
from twisted.internet.tcp import makeBinding
from twisted.logger import ILogObserver, Logger, LogLevel, globalLogPublisher
from zope.interface import implementer

from services import logs

__all__ = [
    "AcceptErrorLog",
    "ListenError",
    "ListenerService",
    "SocketOptions",
    "describeAddress",
    "endpointFor",
    "isListening",
    "listeningPorts",
]

_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})


def describeAddress(address: Any) -> str:
    """
    A short, familiar text for a socket address: C{127.0.0.1:8007},
    C{[::1]:8007}, C{unix:/run/x.sock}.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return f"unix:{name or '(unnamed)'}"


class ListenError(CannotListenError):
    """
    A listener could not start: names the service and the endpoint string
    as the user wrote it.
    """

    def __init__(self, service: str, description: str, reason: BaseException) -> None:
        self.service = service
        self.description = description
        self.reason = reason
        CannotListenError.__init__(self, None, description, reason)

    def __str__(self) -> str:
        detail = getattr(self.reason, "socketError", None) or self.reason
        if isinstance(detail, OSError) and detail.strerror:
            detail = detail.strerror.lower()
        return f"{self.service}: cannot listen on {self.description}: {detail}"


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
    """

    def __init__(
        self, reactor: IReactorTCP, port: int, backlog: int, interface: str
    ) -> None:
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._interface = interface

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen with C{SO_REUSEADDR} and C{SO_REUSEPORT} set before C{bind()}.
        """
        binding = makeBinding(self._interface, self._port, reuseAddress=True, reusePort=True)
        try:
            port = self._reactor.listenTCP(
                binding,  # type: ignore[arg-type]
                protocolFactory,  # type: ignore[arg-type]
                backlog=self._backlog,
                interface=self._interface,
            )
        except Exception:
            return fail()
        return succeed(port)


def withBacklog(description: str, backlog: int) -> str:
    """
    Add C{backlog=N} to an endpoint description of a type that takes one,
    unless it already sets it.
    """
    kind = description.split(":", 1)[0].lower()
    if kind in _BACKLOG_TYPES and "backlog=" not in description:
        return f"{description}:backlog={backlog}"
    return description


def endpointFor(reactor: Any, description: str, options: SocketOptions) -> IStreamServerEndpoint:
    """
    Build the server endpoint for C{description} with C{options} applied
    (all but the buffer sizes, which need a bound socket).
    """
    endpoint = serverFromString(reactor, withBacklog(description, options.backlog))
    if options.reuseport and isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint)):
        # Twisted's TCP endpoints keep their arguments in these attributes
        # and offer no other way to pass a binding to listenTCP.
        endpoint = ReusePortEndpoint(
            reactor, endpoint._port, endpoint._backlog, endpoint._interface
        )
    return endpoint


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


#: How Twisted's accept loop starts the events it logs for every connection
#: it cannot keep (twisted.internet.tcp._accept).
_ACCEPT_EVENTS = ("EMFILE", "Re-reserving EMFILE", "Could not accept new connection")


@implementer(ILogObserver)
class AcceptErrorLog:
    """
    The log observer of one listening port: its events about connections
    closed at once for lack of file descriptors go on at debug level, and a
    warning with their count at most every C{every} seconds; its other
    events go on unchanged.

    @ivar closed: connections closed at once so far.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, serviceName: str, clock: Any, every: float = 60.0) -> None:
        self.serviceName = serviceName
        self.clock = clock
        self.every = every
        self.closed = 0
        self._warnedAt: float | None = None
        self._warnedCount = 0

    def __call__(self, event: dict[str, Any]) -> None:
        """
        Pass C{event} on, demoted if it is about one refused connection.
        """
        text = event.get("log_format") or ""
        if not text.startswith(_ACCEPT_EVENTS):
            globalLogPublisher(event)
            return
        logs.observer(dict(event, log_level=LogLevel.debug))
        exhausted = text.startswith("EMFILE") or event.get("acceptError") in ("EMFILE", "ENFILE")
        if not exhausted:
            return
        if text.startswith(("EMFILE recovery", "Could not accept")):
            self.closed += 1
        now = self.clock.seconds()
        if self._warnedAt is None:
            self._log.warn(
                "{service}: out of file descriptors: closing new connections at once "
                "until some are free",
                service=self.serviceName,
            )
        elif now - self._warnedAt >= self.every:
            self._log.warn(
                "{service}: out of file descriptors: {count} new connections closed at once "
                "in the last {seconds:.0f} s",
                service=self.serviceName,
                count=self.closed - self._warnedCount,
                seconds=now - self._warnedAt,
            )
        else:
            return
        self._warnedAt = now
        self._warnedCount = self.closed


def quietAcceptErrors(port: Any, serviceName: str) -> None:
    """
    Route the log events of a listening port through an L{AcceptErrorLog}
    (ports without their own logger, or without a reactor, are left as
    they are).
    """
    logger = getattr(port, "_logger", None)
    clock = getattr(port, "reactor", None)
    if isinstance(logger, Logger) and clock is not None:
        port._logger = Logger(
            namespace=logger.namespace, source=port, observer=AcceptErrorLog(serviceName, clock)
        )


class ListenerService(StreamServerEndpointService):
    """
    Listens on one endpoint for the life of the service.

    A failure to listen at start-up (a port in use, a permission denied)
    raises L{ListenError} from C{privilegedStartService}, naming the
    endpoint, instead of being logged and forgotten.

    @ivar port: the listening port once listening, else L{None}.
    """

    _log = Logger(observer=logs.observer)
    _raiseSynchronously = True

    def __init__(
        self,
        serviceName: str,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        options: SocketOptions = SocketOptions(),
    ) -> None:
        StreamServerEndpointService.__init__(self, endpoint, factory)
        self.serviceName = serviceName
        self.description = description
        self.options = options
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        """
        Listen now, and raise L{ListenError} if that fails at once.
        """
        try:
            StreamServerEndpointService.privilegedStartService(self)
        except Exception as e:
            self._waitingForPort = None
            raise ListenError(self.serviceName, self.description, e) from e
        assert self._waitingForPort is not None
        self._waitingForPort.addCallback(self._listening)

    def _listening(self, port: IListeningPort | None) -> IListeningPort | None:
        if port is None:  # a late failure, already logged by our base class
            return None
        applyBufferSizes(port, self.options)
        quietAcceptErrors(port, self.serviceName)
        self.port = port
        self._log.info(
            "{service} listening on {endpoint} ({address})",
            service=self.serviceName,
            endpoint=self.description,
            address=describeAddress(port.getHost()),
        )
        return port

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening.
        """
        self.port = None
        if self._waitingForPort is None:
            self.running = 0
            return None
        return StreamServerEndpointService.stopService(self)


def listeningPorts(service: Any) -> list[Any]:
    """
    The ports a service and its descendants are listening on now.

    Any service in the tree with a C{port} attribute (L{ListenerService}, or a
    UDP service that keeps its L{twisted.internet.interfaces.IListeningPort})
    contributes it once it is not L{None}.
    """
    found = []
    port = getattr(service, "port", None)
    if port is not None:
        found.append(port)
    for child in getattr(service, "services", ()):
        found.extend(listeningPorts(child))
    return found


def isListening(service: Any) -> bool:
    """
    Whether every listener in a service's tree is listening (and there is
    at least one).
    """
    listeners = []

    def walk(s: Any) -> None:
        if hasattr(s, "port"):
            listeners.append(s.port)
        for child in getattr(s, "services", ()):
            walk(child)

    walk(service)
    return bool(listeners) and all(p is not None for p in listeners)
