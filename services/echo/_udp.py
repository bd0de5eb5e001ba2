# -*- test-case-name: tests.unit.echo.test_udpecho -*-
"""
The echo service (RFC 862) over UDP: one datagram in, the same datagram
out, whole.

A UDP echo is the textbook reflector, so L{UdpEcho} answers nobody who
could answer back or who did not ask:

  - no echo to a source port below 1024 (echo, chargen, daytime, DNS...)
    or to one of our own service ports, which two echo services would
    bounce between forever (CERT CA-1996-01, CVE-2024-2169);
  - a token bucket per source address and one for all sources;
  - the receive buffer holds the largest possible datagram, so nothing is
    truncated; a datagram that fills it is dropped, not echoed in part.

Bind it to a specific address (the default is 127.0.0.1): a socket bound to
every address also receives broadcasts, and would echo them.

Use it in your own application::

    from twisted.internet import reactor
    from services.net.datagram import MAX_UDP_PAYLOAD, SourceLimiter
    from services.echo import UdpEcho

    echo = UdpEcho(SourceLimiter(reactor, 100, 200, 2000))
    reactor.listenUDP(7007, echo, interface="127.0.0.1",
                      maxPacketSize=MAX_UDP_PAYLOAD + 1)
    reactor.run()
"""

from __future__ import annotations

from typing import Any, Callable, Collection

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorUDP
from twisted.logger import Logger

from services import logs
from services.echo._datagram import SEND_ERRORS, DatagramEcho, DatagramListener
from services.echo._settings import UdpEchoSettings
from services.echo._unixgram import UnixDatagramEcho, UnixDatagramEchoListener
from services.net.addresses import describeAddress
from services.net.datagram import (
    MAX_UDP_PAYLOAD,
    SourceLimiter,
    isUnixDatagram,
    listenDatagram,
    parseUdpEndpoint,
    parseUnixDatagram,
    unsafeSource,
)
from services.net.defaults import defaultReactor
from services.net.listener import ListenError
from services.net.ownports import OwnPorts
from services.stats import UdpEchoStats

__all__ = ["UdpEcho", "UdpEchoListener", "makeUdpEchoService"]


class UdpEcho(DatagramEcho):
    """
    Send every datagram back to where it came from, within the safety rules
    of the module docstring.

    @ivar limiter: the rate limits.
    @ivar ownPorts: called for the ports that get no echo.
    @ivar stats: the counters it updates.
    @ivar maxPacketSize: the receive buffer size of the port it runs on;
        a datagram this long may have been cut short.
    """

    def __init__(
        self,
        limiter: SourceLimiter,
        ownPorts: Callable[[], Collection[int]] = frozenset,
        stats: UdpEchoStats | None = None,
        maxPacketSize: int = MAX_UDP_PAYLOAD + 1,
    ) -> None:
        DatagramEcho.__init__(self, limiter, stats, maxPacketSize)
        self.ownPorts = ownPorts
        # An OwnPorts shares the limiter's reading of the clock: one
        # reading per datagram instead of two.
        self._ownPortsAt = (
            ownPorts if isinstance(ownPorts, OwnPorts) and ownPorts.clock is limiter.clock else None
        )
        # Looked up once, not for every datagram.
        self._seconds = limiter.clock.seconds
        self._allow = limiter.allow

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Echo C{datagram} to C{addr}, unless a safety rule says no.
        """
        stats = self.stats
        n = len(datagram)
        stats.received += 1
        stats.bytesIn += n
        if n >= self.maxPacketSize:
            stats.oversize += 1
            return self._drop(addr, n, "it filled the receive buffer")
        ownPortsAt = self._ownPortsAt
        ports: Collection[int]
        if ownPortsAt is not None:
            now = self._seconds()
            # OwnPorts' own test of its expiry, without the call while the
            # set is fresh (nearly always: it is renewed once a second).
            ports = ownPortsAt.ports if now < ownPortsAt.expires else ownPortsAt(now)
        else:
            now = None
            ports = self.ownPorts()
        port = addr[1]
        if port < 1024 or port in ports:
            stats.loopGuarded += 1
            return self._drop(addr, n, unsafeSource(port, ports))
        if not self._allow(addr[0], now):
            stats.rateLimited += 1
            return self._drop(addr, n, "rate limit")
        try:
            self.transport.write(datagram, addr)  # type: ignore[union-attr]
        except SEND_ERRORS as e:
            return self._sendFailed(addr, n, e)
        stats.echoed += 1
        stats.bytesOut += n
        return None

    def readDatagrams(
        self,
        recvfrom: Callable[[int], tuple[bytes, Any]],
        sendto: Callable[[bytes, Any], Any],
        size: int,
        limit: int,
    ) -> OSError | None:
        """
        Read datagrams with C{recvfrom(size)} and echo them with C{sendto}
        until C{limit} bytes are read or C{recvfrom} fails, for a port that
        lets its protocol read (L{services._twisted.udp.ReaderDatagramPort},
        whose docstring gives the contract).

        Each datagram gets exactly the checks, counters and log lines of
        L{datagramReceived}, which stays the path of every other transport;
        here they run in the read loop itself, with what they look up read
        once per call instead of once per datagram.  Why twice: one shared
        function would be one more Python call per datagram on both paths.

        All the datagrams of one call are taken to arrive at one reading of
        the clock (the same for the own ports and both token buckets): time
        stands still for the buckets while a queue is read, which can only
        refuse sooner.  For a run of datagrams from one source, the tokens
        its bucket and the shared one hold are counted once (see
        L{SourceLimiter.tokens}), and each datagram spends one by counting;
        the buckets are stored back when the source changes and at the end.
        The last source port found safe is remembered too: a datagram of
        such a run costs comparisons only, no lookup.

        @return: the error of C{recvfrom} that ended the loop, or L{None}
            when C{limit} was reached.
        """
        stats = self.stats
        maxPacketSize = self.maxPacketSize
        limiter = self.limiter
        now = self._seconds()
        ownPortsAt = self._ownPortsAt
        ports: Collection[int]
        if ownPortsAt is not None:
            ports = ownPortsAt.ports if now < ownPortsAt.expires else ownPortsAt(now)
        else:
            ports = self.ownPorts()
        sourceInterval = limiter.sourceInterval
        sourceTolerance = limiter.sourceTolerance
        globalInterval = limiter.globalInterval
        globalTolerance = limiter.globalTolerance
        shared = limiter.sharedBucket(now)
        tokens = limiter.tokens
        sharedTokens = tokens(shared, now, globalInterval, globalTolerance)
        # The source whose bucket is in own (None: no bucket held), and the
        # last source port that passed the loop guard.
        source: str | None = None
        own = now
        # Tokens spent by the source being answered, how many it may spend
        # (its own and the shared bucket's), spent by the sources before it.
        spent = budget = sharedSpent = 0
        safePort = -1
        # The counters are added up here and stored once the loop ends
        # (nothing else runs in between that reads them); what was echoed
        # is what was read less what was not.
        received = read = notEchoed = bytesNotEchoed = 0
        try:
            while read < limit:
                try:
                    datagram, addr = recvfrom(size)
                except OSError as e:
                    # Without its traceback, which holds this frame, which
                    # holds e: a cycle per call for the garbage collector.
                    return e.with_traceback(None)
                n = len(datagram)
                read += n
                received += 1
                if n >= maxPacketSize:
                    notEchoed += 1
                    bytesNotEchoed += n
                    stats.oversize += 1
                    self._drop(addr, n, "it filled the receive buffer")
                    continue
                if addr[1] != safePort:
                    port = addr[1]
                    if port < 1024 or port in ports:
                        notEchoed += 1
                        bytesNotEchoed += n
                        stats.loopGuarded += 1
                        self._drop(addr, n, unsafeSource(port, ports))
                        continue
                    safePort = port
                if addr[0] != source:
                    if source is not None:
                        limiter.keep(source, own + spent * sourceInterval)
                        sharedSpent += spent
                        spent = 0
                    source = addr[0]
                    fullAt = limiter.bucket(source, now)  # type: ignore[arg-type]
                    if fullAt is None:
                        source = None
                        notEchoed += 1
                        bytesNotEchoed += n
                        stats.rateLimited += 1
                        self._drop(addr, n, "rate limit")
                        continue
                    own = fullAt
                    budget = min(tokens(own, now, sourceInterval, sourceTolerance),
                                 sharedTokens - sharedSpent)
                if spent >= budget:
                    notEchoed += 1
                    bytesNotEchoed += n
                    stats.rateLimited += 1
                    self._drop(addr, n, "rate limit")
                    continue
                spent += 1
                try:
                    sendto(datagram, addr)
                except OSError:
                    # Sent again by the port's write, which maps the error
                    # (message too long, ...) and raises it as it always does.
                    try:
                        self.transport.write(datagram, addr)  # type: ignore[union-attr]
                    except SEND_ERRORS as e:
                        notEchoed += 1
                        bytesNotEchoed += n
                        self._sendFailed(addr, n, e)
                        continue
        finally:
            if source is not None:
                limiter.keep(source, own + spent * sourceInterval)
                sharedSpent += spent
            limiter.keepShared(shared + sharedSpent * globalInterval)
            stats.received += received
            stats.bytesIn += read
            stats.echoed += received - notEchoed
            stats.bytesOut += read - bytesNotEchoed
        return None

    def describeSource(self, addr: Any) -> str:
        """
        C{host:port}.
        """
        return f"{addr[0]}:{addr[1]}"


class UdpEchoListener(DatagramListener):
    """
    One UDP echo port for the life of the service.

    @ivar port: the listening UDP port once listening, else L{None}.
    @ivar description: the endpoint, as configured.
    @ivar serviceName: the service's name, in the log and in errors.
    @ivar protocol: a datagram protocol with a C{maxPacketSize} (its receive
        buffer).
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        description: str,
        protocol: Any,
        reactor: IReactorUDP,
        serviceName: str = "udp-echo",
    ) -> None:
        self.serviceName = serviceName
        self.description = description
        self.endpoint = parseUdpEndpoint(description)
        self.protocol = protocol
        self.reactor = reactor

    def _listen(self) -> None:
        endpoint = self.endpoint
        try:
            self.port = listenDatagram(
                self.reactor,
                self.protocol,
                endpoint.interface,
                endpoint.port,
                endpoint.family,
                maxPacketSize=self.protocol.maxPacketSize,
            )
        except OSError as e:
            raise ListenError(self.serviceName, self.description, e) from e
        self._log.info(
            "{service} listening on {endpoint} ({address})",
            service=self.serviceName,
            endpoint=self.description,
            address=describeAddress(self.port.getHost()),
        )
        if endpoint.interface in ("", "0.0.0.0", "::"):
            self._log.warn(
                "udp-echo on {endpoint} is bound to every address: it also receives, and "
                "echoes, broadcasts (and multicasts) sent to its port; bind it to one "
                "address unless that is what you want",
                endpoint=self.description,
            )

    def stopService(self) -> Deferred[None] | None:
        """
        Close the port.
        """
        Service.stopService(self)
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None


def makeUdpEchoService(
    settings: UdpEchoSettings,
    reactor: Any = None,
    stats: UdpEchoStats | None = None,
) -> MultiService:
    """
    Build the UDP echo service: one L{UdpEchoListener} per endpoint of
    C{settings.listen} (a L{UnixDatagramEchoListener} for C{unixgram:}
    ones), sharing the rate limits and the counters.

    @param reactor: the reactor to listen with (an L{IReactorTime}, and an
        L{IReactorUDP} or L{IReactorUNIXDatagram} for the endpoints); the
        global one if L{None}.
    @param stats: counters to update; new L{UdpEchoStats} if L{None}.
    """
    reactor = defaultReactor(reactor)
    stats = stats if stats is not None else UdpEchoStats()
    limiter = SourceLimiter(reactor, settings.sourceRate, settings.sourceBurst, settings.globalRate)
    service = MultiService()
    service.setName("udp-echo")
    service.stats = stats  # type: ignore[attr-defined]
    unix = [d for d in settings.listen if isUnixDatagram(d)]
    fixed = [parseUdpEndpoint(d).port for d in settings.listen if d not in unix]
    ownPorts = OwnPorts(service, reactor, fixed=fixed)
    ownPaths = [parseUnixDatagram(d)[0] for d in unix]
    for description in settings.listen:
        if description in unix:
            unixEcho = UnixDatagramEcho(limiter, ownPaths, stats)
            UnixDatagramEchoListener(description, unixEcho, reactor).setServiceParent(service)
            continue
        protocol = UdpEcho(limiter, ownPorts, stats)
        UdpEchoListener(description, protocol, reactor).setServiceParent(service)
    return service
