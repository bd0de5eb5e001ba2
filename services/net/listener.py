# -*- test-case-name: tests.unit.net.test_listen -*-
"""
The listener service: one stream endpoint listened on for the life of a
service (L{ListenerService}), with its errors in words (L{ListenError}), and
what the daemon asks of its listeners (L{listeningPorts}, L{isListening},
L{closeAtOnce}, L{ownSocketLocks}).

When the process runs out of file descriptors, Twisted's accept loop
accepts and closes each new connection at once (it keeps a reserve
descriptor for that, so it never spins), and logs three lines at info level
for each: under a connection flood, a log line per attempt.
L{AcceptErrorLog} passes those on at debug level and warns once a minute
with a count instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet import unix
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import ILogObserver, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs
from services._twisted.transports import ACCEPT_EVENTS, routePortLog
from services.net.addresses import describeAddress
from services.net.descriptions import parseListen
from services.net.sockets import SocketOptions, applyBufferSizes

__all__ = [
    "AcceptErrorLog",
    "ListenError",
    "ListenerService",
    "closeAtOnce",
    "isListening",
    "listeningPorts",
    "ownSocketLocks",
    "quietAcceptErrors",
]


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


@implementer(ILogObserver)
class AcceptErrorLog:
    """
    The log observer of one listening port: its events about connections
    closed at once for lack of file descriptors go on at debug level, and a
    warning with their count at most every C{every} seconds; its other
    events go on unchanged.

    @ivar clock: the time source (the C{reactor} given).
    @ivar closed: connections closed at once so far.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, serviceName: str, reactor: IReactorTime, every: float = 60.0) -> None:
        self.serviceName = serviceName
        self.clock = reactor
        self.every = every
        self.closed = 0
        self._warnedAt: float | None = None
        self._warnedCount = 0

    def __call__(self, event: dict[str, Any]) -> None:
        """
        Pass C{event} on, demoted if it is about one refused connection.
        """
        text = event.get("log_format") or ""
        if not text.startswith(ACCEPT_EVENTS):
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
    reactor = getattr(port, "reactor", None)
    if reactor is not None:
        routePortLog(port, AcceptErrorLog(serviceName, reactor))


class ListenerService(Service):
    """
    Listens on one endpoint for the life of the service.

    A failure to listen at start-up (a port in use, a permission denied)
    raises L{ListenError} from C{privilegedStartService}, naming the
    endpoint, instead of being logged and forgotten.  A failure that comes
    later (an endpoint that listens asynchronously) is logged.

    This is L{twisted.application.internet.StreamServerEndpointService}
    with synchronous errors; it is not a subclass because importing
    C{twisted.application.internet} also imports its client service's state
    machine library, a twentieth of the daemon's start-up.

    @ivar endpoint: the endpoint to listen on.
    @ivar factory: the factory of the connections.
    @ivar port: the listening port once listening, else L{None}.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        serviceName: str,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        options: SocketOptions = SocketOptions(),
    ) -> None:
        self.serviceName = serviceName
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.options = options
        self.port: IListeningPort | None = None
        self._waitingForPort: Deferred[IListeningPort] | None = None

    @property
    def secure(self) -> bool:
        """
        Whether the connections of this listener speak TLS (an C{ssl:}
        description, behind a PROXY header or not).
        """
        try:
            return parseListen(self.description).tls is not None
        except ValueError:
            return False

    def privilegedStartService(self) -> None:
        """
        Listen now, and raise L{ListenError} if that fails at once.
        """
        Service.privilegedStartService(self)
        failed: list[Failure] = []
        try:
            waiting = self.endpoint.listen(self.factory)
        except Exception as e:
            raise ListenError(self.serviceName, self.description, e) from e
        waiting.addErrback(failed.append)
        if failed:
            reason = failed[0].value
            assert reason is not None  # a Failure always holds its exception
            raise ListenError(self.serviceName, self.description, reason) from reason
        waiting.addCallback(self._listening)
        self._waitingForPort = waiting
        waiting.addErrback(self._lateFailure)

    def _lateFailure(self, reason: Failure) -> None:
        if not reason.check(CancelledError):
            self._log.failure(
                "{service}: cannot listen on {endpoint}",
                reason,
                service=self.serviceName,
                endpoint=self.description,
            )

    def startService(self) -> None:
        """
        Start listening, unless C{privilegedStartService} did already.
        """
        Service.startService(self)
        if self._waitingForPort is None:
            self.privilegedStartService()

    def _listening(self, port: IListeningPort) -> IListeningPort:
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
        Stop listening (or stop trying to).
        """
        Service.stopService(self)
        self.port = None
        waiting, self._waitingForPort = self._waitingForPort, None
        if waiting is None:
            return None
        waiting.cancel()

        def stop(port: IListeningPort | None) -> Deferred[None] | None:
            return None if port is None else port.stopListening()

        return waiting.addCallback(stop)


def closeAtOnce(port: Any) -> None:
    """
    Close a listening port now, before the reactor runs (a start-up that
    failed half-way): C{stopListening} would only close the socket on the
    reactor's next turn, which never comes, and a UNIX socket's file and
    its lock would stay behind.  Ports that are not file descriptors (in
    memory, for tests) are asked to C{stopListening}.
    """
    stopReading = getattr(port, "stopReading", None)
    connectionLost = getattr(port, "connectionLost", None)
    if stopReading is None or connectionLost is None or not getattr(port, "connected", False):
        port.stopListening()
        return
    # Twisted's UNIX stream ports remove their file; its datagram ports
    # leave it to their owner, which here gives up before it ever runs.
    path = port.port if isinstance(port, unix.DatagramPort) else None
    # What stopListening schedules for the next turn, done at once.
    stopReading()
    connectionLost(Failure(ConnectionDone("start-up failed")))
    if isinstance(path, (str, bytes)) and path and path[:1] not in ("\0", b"\0"):
        try:
            os.unlink(path)
        except OSError:
            pass


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


def ownSocketLocks(ports: Iterable[Any]) -> int:
    """
    Make the lock files of UNIX listening ports (C{PATH.lock}, a symbolic
    link to the owner's process id) name this process, after twistd has
    daemonized: the ports were bound, and their locks taken, by the process
    that forked it, so the daemon could not release them at shutdown
    (Twisted only removes a lock its own process holds) and left them
    behind, naming a process id that another process may get.

    @return: how many locks were moved to this process.
    """
    moved = 0
    mine = str(os.getpid())
    for port in ports:
        lock = getattr(port, "lockFile", None)
        if lock is None or not lock.locked:
            continue
        name = os.fsdecode(lock.name)
        try:
            if os.readlink(name) == mine:
                continue
            temporary = f"{name}.{mine}"
            os.symlink(mine, temporary)
            os.replace(temporary, name)  # atomically, as the lock stays held
        except OSError:
            continue
        moved += 1
    return moved


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
