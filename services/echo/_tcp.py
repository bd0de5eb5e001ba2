# -*- test-case-name: tests.unit.echo.test_echo -*-
"""
The echo service (RFC 862) over stream sockets.

L{Echo} writes back every byte it receives, in order.  Unlike
L{twisted.protocols.wire.Echo} it does not let a peer that sends without
reading grow the server's memory: the protocol registers itself as the
transport's streaming producer, so when the transport's send buffer fills the
transport pauses the protocol, which stops reading from the peer until the
buffer drains.  TCP flow control then holds the peer back.  A peer that
sends but never reads would hold its connection for ever that way: while
paused, the echo has a send timeout (L{services.net.sendtimeout}), and a peer
that takes none of its echo for that long is dropped.

Use it in your own application::

    from twisted.internet import endpoints, reactor
    from services.echo import EchoFactory

    factory = EchoFactory(idleTimeout=60, maxConnections=1000, sendTimeout=60)
    endpoints.serverFromString(reactor, "tcp:7007").listen(factory)
    reactor.run()

Why one module: the protocol, its factory (which holds the limits, the
counters and the one idle timer its connections share) and the service
that drains them are the echo over streams; each is small and reads the
others' state.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs
from services.echo._settings import EchoSettings
from services.net.addresses import describeAddress
from services.net.connections import newest
from services.net.defaults import defaultReactor
from services.net.drain import ConnectionTracker
from services.net.endpoints import ListenContext, endpointFor
from services.net.idletimeout import IdleTimeouts, timeoutsFor
from services.net.listener import ListenerService
from services.net.sendtimeout import SendTimer, queuedBytes
from services.nsepoll.fastpath import canWriteDirectly, writeDirectly
from services.stats import ConnectionStats

__all__ = ["Echo", "EchoFactory", "EchoService", "makeEchoService", "setNoDelay"]


def setNoDelay(transport: Any) -> None:
    """
    Set C{TCP_NODELAY} on C{transport} if it is a TCP connection (TLS and
    PROXY-protocol wrappers pass the call on to theirs).  UNIX sockets (whose
    Twisted transport is a TCP one too, and would log an error for each
    connection) and in-memory transports are left alone.
    """
    setTcpNoDelay = getattr(transport, "setTcpNoDelay", None)
    getHandle = getattr(transport, "getHandle", None)
    if setTcpNoDelay is None or getHandle is None:
        return
    if getattr(getHandle(), "family", None) in (socket.AF_INET, socket.AF_INET6):
        setTcpNoDelay(True)


@implementer(IPushProducer, IHalfCloseableProtocol)
class Echo(Protocol):
    """
    Echo every byte back to the peer, with backpressure and an idle timeout.

    When the peer half-closes its side, the echo finishes writing what it
    holds and then closes, so C{nc -N} style clients get their whole echo.

    @ivar bytesIn: bytes received on this connection.
    @ivar connectedAt: when the connection was made, by the factory's
        reactor.
    @ivar backpressured: whether the transport paused the echo (its send
        buffer is full).
    @cvar oneFrame: see below.
    @cvar readSize: on plain TCP and UNIX connections, the transport's
        C{bufferSize}: bytes read per system call (Twisted's default is
        64 KiB; larger reads cut the per-byte cost of streaming by a third)
        and the bytes the transport queues before it pauses the echo.
    """

    _log = Logger(observer=logs.observer)
    factory: EchoFactory
    bytesIn = 0
    connectedAt = 0.0
    backpressured = False
    _peer = "?"
    _direct = False
    # Both made only when needed: the factory's one idle timer (see
    # services.net.idletimeout) and, once the transport pauses the echo, the
    # send timer; an idle connection then costs no timer object of its own.
    _idle: IdleTimeouts | None = None
    _sendTimer: SendTimer | None = None
    readSize = 256 * 1024
    #: Whether a transport that can (the nsepoll reactor's TCP connections)
    #: reads, counts and echoes in one call instead of calling
    #: L{dataReceived}; a subclass that overrides L{dataReceived} is always
    #: called.
    oneFrame = True

    def connectionMade(self) -> None:
        """
        Count the connection, become the transport's producer and start the
        idle timer.  On a plain TCP or UNIX connection, echoes are sent
        straight to the socket when nothing is queued (see
        L{services.nsepoll.fastpath}), and reads are C{readSize} bytes.
        """
        factory = self.factory
        self._direct = canWriteDirectly(self.transport)
        if self._direct:
            self.transport.bufferSize = self.readSize  # type: ignore[union-attr]
            if self.oneFrame and type(self).dataReceived is Echo.dataReceived:
                # The nsepoll reactor's TCP connections can read, count and
                # echo in one call (what dataReceived does, exactly).
                fold = getattr(self.transport, "echoInOneFrame", None)
                if fold is not None:
                    fold()
        if factory.noDelay:
            setNoDelay(self.transport)
        factory.stats.current += 1
        factory.stats.accepted += 1
        factory.tracker.add(self)
        self.connectedAt = factory.reactor.seconds()
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        idle = factory.idleTimeouts()
        if idle is not None:
            self._idle = idle
            idle.add(self)
        if factory.logConnections:
            self._peer = describeAddress(self.transport.getPeer())  # type: ignore[union-attr]
            self._log.debug("echo: {peer} connected", peer=self._peer)

    def dataReceived(self, data: bytes) -> None:
        """
        Write C{data} back and restart the idle timer.
        """
        n = len(data)
        self.bytesIn += n
        stats = self.factory.stats
        stats.bytesIn += n
        stats.bytesOut += n
        if self._direct:
            writeDirectly(self.transport, data)
        else:
            self.transport.write(data)  # type: ignore[union-attr]
        idle = self._idle
        if idle is not None:
            # IdleTimeouts.touch, inline: one call less per read.
            deadlines = idle.deadlines
            del deadlines[self]
            deadlines[self] = idle.seconds() + idle.timeout

    @property
    def bytesOut(self) -> int:
        """
        Bytes of echo the kernel took (those received, less those still
        queued).
        """
        return self.bytesIn - (queuedBytes(self.transport) or 0)

    def readConnectionLost(self) -> None:
        """
        The peer will send no more: close once everything is written back.
        """
        self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        """
        The peer stopped reading (we shut down writing): nothing to echo to.
        """
        self.transport.loseConnection()  # type: ignore[union-attr]

    def timeoutConnection(self) -> None:
        """
        Nothing was received for C{idleTimeout} seconds: drop the
        connection, including anything still queued for a peer that does
        not read.
        """
        self.factory.stats.timedOut += 1
        self._log.debug(
            "echo: closing {peer}: idle for {timeout} seconds",
            peer=self._peer,
            timeout=self.factory.idleTimeout,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _idleExpired(self) -> None:
        # The factory's idle timer forgot this connection: no more touching.
        self._idle = None
        self.timeoutConnection()

    def _sendTimedOut(self) -> None:
        """
        The peer read none of its echo for C{sendTimeout} seconds: drop the
        connection and what is queued for it.
        """
        self.factory.stats.sendTimeouts += 1
        self._log.debug(
            "echo: aborting {peer}: it read none of its echo for {timeout} seconds",
            peer=self._peer,
            timeout=self.factory.sendTimeout,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        """
        Stop the timers, uncount the connection and log its totals.
        """
        if self._idle is not None:
            self._idle.remove(self)
        if self._sendTimer is not None:
            self._sendTimer.stop()
        factory = self.factory
        factory.stats.current -= 1
        factory.tracker.remove(self)
        if factory.logConnections:
            self._log.debug(
                "echo: {peer} disconnected after {duration:.3f} s, "
                "{bytes} bytes echoed ({reason})",
                peer=self._peer,
                duration=factory.reactor.seconds() - self.connectedAt,
                bytes=self.bytesIn,
                reason=reason.getErrorMessage(),
            )

    # IPushProducer: the transport calls these when its send buffer fills up
    # and drains.  Pausing our producer means reading no more from the peer.

    def pauseProducing(self) -> None:
        """
        The send buffer is full: stop reading from the peer, and start the
        send timeout.
        """
        self.backpressured = True
        self.transport.pauseProducing()  # type: ignore[union-attr]
        if self._sendTimer is None and self.factory.sendTimeout:
            self._sendTimer = SendTimer(
                self.factory.reactor, self.factory.sendTimeout, self.transport,
                self._sendTimedOut,
            )
        if self._sendTimer is not None:
            self._sendTimer.paused()

    def resumeProducing(self) -> None:
        """
        The send buffer drained: stop the send timeout and read from the
        peer again.
        """
        self.backpressured = False
        if self._sendTimer is not None:
            self._sendTimer.resumed()
        self.transport.resumeProducing()  # type: ignore[union-attr]

    def stopProducing(self) -> None:
        """
        The connection is going away; C{connectionLost} does the clean-up.
        """


# Factory is generic from Twisted 26.4 on: subscripted for the type checker only.
if TYPE_CHECKING:
    _EchoFactoryBase = Factory[Echo]
else:
    _EchoFactoryBase = Factory


class EchoFactory(_EchoFactoryBase):
    """
    Builds L{Echo} connections, refusing new ones beyond C{maxConnections}.

    @ivar idleTimeout: seconds of silence before a connection is closed;
        C{None} or 0 for never.
    @ivar maxConnections: connections allowed open at once; C{None} or 0 for
        no limit.  Excess connections are closed as soon as they are accepted
        and counted in C{stats.refused}.
    @ivar reactor: the time source for timeouts and durations.
    @ivar stats: the counters this factory's connections update.
    @ivar tracker: the open connections, for a graceful shutdown.
    @ivar noDelay: whether TCP connections get C{TCP_NODELAY}.
    @ivar sendTimeout: seconds a paused echo may wait for its peer to read
        some of it before the connection is dropped; C{None} or 0 for never.
    @ivar name: the service's name, in the log and the shutdown drain.
    """

    protocol = Echo
    noisy = False
    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        idleTimeout: float | None = None,
        maxConnections: int | None = None,
        reactor: IReactorTime | None = None,
        stats: ConnectionStats | None = None,
        noDelay: bool = True,
        sendTimeout: float | None = None,
        name: str = "echo",
    ) -> None:
        self.idleTimeout = idleTimeout or None
        self.maxConnections = maxConnections or None
        self.reactor: IReactorTime = defaultReactor(reactor)
        self.stats = stats if stats is not None else ConnectionStats()
        self.name = name
        self.tracker = ConnectionTracker(name)
        self.noDelay = noDelay
        self.sendTimeout = sendTimeout or None
        self._refusing = False
        self._idleTimeouts: IdleTimeouts | None = None

    def idleTimeouts(self) -> IdleTimeouts | None:
        """
        The one timer of this factory's connections for C{idleTimeout}
        (made again if C{idleTimeout} was changed), or L{None} when there is
        no idle timeout.
        """
        idle = timeoutsFor(self._idleTimeouts, self.reactor, self.idleTimeout, Echo._idleExpired)
        if idle is not None:
            self._idleTimeouts = idle
        return idle

    @property
    def logConnections(self) -> bool:
        """
        Whether per-connection debug events would reach the log.
        """
        return logs.isEnabledFor(LogLevel.debug)

    def buildProtocol(self, addr: IAddress | None) -> Echo | None:
        """
        Build an L{Echo}, or return L{None} (Twisted then closes the new
        socket at once) when C{maxConnections} are already open.
        """
        limit = self.maxConnections
        if limit is not None and self.stats.current >= limit:
            self.stats.refused += 1
            if not self._refusing:
                self._refusing = True
                self._log.warn(
                    "{service}: {limit} connections open, the max_connections limit: "
                    "closing new connections until some close",
                    service=self.name,
                    limit=limit,
                )
            return None
        self._refusing = False
        return Factory.buildProtocol(self, addr)


class EchoService(MultiService):
    """
    The echo listeners and their shared factory.  Stopping it stops
    listening at once, then gives open connections C{grace} seconds to
    finish before aborting them.
    """

    def __init__(self, factory: EchoFactory, grace: float) -> None:
        MultiService.__init__(self)
        self.setName(factory.name)
        self.factory = factory
        self.grace = grace

    def connectionListing(self) -> tuple[int, list[dict[str, Any]]]:
        """
        How many connections are open, and the newest described (see
        L{services.net.connections}).
        """
        connections = self.factory.tracker.connections
        return len(connections), newest(connections, self.name, self.factory.reactor.seconds())

    def stopService(self) -> Deferred[None]:
        """
        Stop the listeners, then drain the open connections.
        """
        stopped = MultiService.stopService(self)
        return stopped.addCallback(
            lambda _: self.factory.tracker.drain(self.factory.reactor, self.grace)
        )


def makeEchoService(
    settings: EchoSettings,
    reactor: Any = None,
    stats: ConnectionStats | None = None,
    grace: float = 10.0,
    context: ListenContext | None = None,
) -> EchoService:
    """
    Build the echo service: one listener per endpoint of
    C{settings.listen}, all sharing one L{EchoFactory}.

    @param reactor: the reactor to listen with (an L{IReactorTime} that
        listens on the endpoints' kinds of socket); the global one if
        L{None}.
    @param stats: counters to update; a new L{ConnectionStats} if L{None}.
    @param grace: seconds open connections get to finish when the service
        stops.
    @param context: the process's TLS files and inherited sockets.
    """
    reactor = defaultReactor(reactor)
    factory = EchoFactory(
        idleTimeout=settings.idleTimeout,
        maxConnections=settings.maxConnections,
        reactor=reactor,
        stats=stats,
        noDelay=settings.noDelay,
        sendTimeout=settings.sendTimeout,
    )
    options = settings.socketOptions
    service = EchoService(factory, grace)
    context = context or ListenContext()
    for description in settings.listen:
        endpoint = endpointFor(
            reactor, description, options, context, factory.stats, settings.trustedProxies
        )
        ListenerService("echo", description, endpoint, factory, options).setServiceParent(service)
    return service
