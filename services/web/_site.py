# -*- test-case-name: tests.unit.web.test_httplimits -*-
"""
L{LimitedSite}: the L{Site} of the web service, which applies
L{HTTPLimits} through its channels (L{services.web._channel}), refuses
connections over the caps, counts every answer into L{WebStats} and writes
the access log without letting a failed write fail a response.

Each limit is off when set to 0.  Use it like a L{Site}::

    from twisted.internet import endpoints, reactor
    from twisted.web.resource import Resource
    from services.web import HTTPLimits, LimitedSite

    site = LimitedSite(Resource(), HTTPLimits(headerTimeout=5, maxBody=65536))
    endpoints.serverFromString(reactor, "tcp:8080").listen(site)
"""

from __future__ import annotations

import tempfile
from io import BytesIO
from typing import Any, BinaryIO

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.web.http import datetimeToString
from twisted.web.resource import IResource, getChildForRequest

from services import logs
from services._twisted.webbase import LoggingSiteBase
from services.net.defaults import defaultReactor
from services.net.addresses import describeAddress
from services.stats import WebStats
from services.web._accesslog import AccessLogFile, combinedLogFormat
from services.web._channel import LimitedChannel
from services.web._rejections import RejectedRequest
from services.web._request import LimitedRequest
from services.web._settings import HTTPLimits

__all__ = ["LimitedSite", "peerKey"]


def peerKey(address: IAddress | None) -> str | None:
    """
    The key that per-peer limits count by: the IP address of a TCP peer,
    L{None} for peers without one (UNIX sockets), which only the total cap
    limits.
    """
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else None


class LimitedSite(LoggingSiteBase):
    """
    A L{Site} that applies L{HTTPLimits}, counts into L{WebStats} and writes
    its access log (Combined Log Format) only when given a path.

    @ivar limits: the limits applied.
    @ivar stats: the counters updated.
    @ivar accessLog: the access log's path, or L{None} for none.
    """

    protocol = LimitedChannel  # type: ignore[assignment]
    displayTracebacks = False
    noisy = False
    #: Seconds between two warnings that the access log cannot be written.
    logWarningInterval = 60.0
    #: The most header names remembered in L{headerNames}.
    maxHeaderNames = 1000
    _log = Logger(observer=logs.observer)
    _logWarnedAt: float | None = None
    _logErrorsWarned = 0

    def __init__(
        self,
        resource: IResource,
        limits: HTTPLimits = HTTPLimits(),
        stats: WebStats | None = None,
        accessLog: str | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        LoggingSiteBase.__init__(
            self,
            resource,
            requestFactory=LimitedRequest,
            parsePOSTFormSubmission=False,
            logPath=accessLog or None,
            logFormatter=combinedLogFormat,
            timeout=limits.idleTimeout or None,
            reactor=defaultReactor(reactor),
        )
        self.limits = limits
        self.stats = stats if stats is not None else WebStats()
        self.accessLog = accessLog or None
        self._perPeer: dict[str, int] = {}
        #: The open connections, oldest first (see L{services.net.connections}).
        self.channels: dict[Any, None] = {}
        self._refusing = False
        #: Header names as received to their canonical form (as Headers
        #: stores them), for the channels' header parsing; at most
        #: maxHeaderNames of them, so that clients sending ever new names
        #: cannot grow it.
        self.headerNames: dict[bytes, bytes] = {}
        self._dateSecond = -1
        self._date = b""
        #: The Server header's value as setHeader would store it (line
        #: breaks made spaces), or empty for none: sanitized once, set on
        #: every response as is.
        self.serverHeaderValue = b" ".join(limits.serverHeader.splitlines())

    def httpDate(self) -> bytes:
        """
        The current time as an HTTP C{Date} header value, formatted at most
        once a second (of this site's reactor's clock).
        """
        now = self.reactor.seconds()
        second = int(now)
        if second != self._dateSecond:
            self._dateSecond = second
            self._date = datetimeToString(now)
        return self._date

    def acceptableProtocols(self) -> list[bytes]:
        """
        The protocols its channels speak, which TLS listeners offer by ALPN
        along with their own list: HTTP/1.1 only.  (C{Site} offers C{h2}
        whenever the h2 package is installed, which a L{LimitedChannel}
        cannot speak: with C{http2 = no}, a client that asked for HTTP/2
        got it and then a broken connection.  HTTP/2 is served by the
        factory of L{services.web._http2}, which lists it itself.)
        """
        return [b"http/1.1"]

    def getResourceFor(self, request: Any) -> IResource:
        """
        The resource that answers C{request}, found as L{Site.getResourceFor}
        finds it (its C{sitepath} a copy of its C{prepath}), without
        C{copy.copy}'s dispatch on every request.
        """
        request.site = self
        request.sitepath = request.prepath[:]
        found: IResource = getChildForRequest(self.resource, request)
        return found

    def getContentFile(self, length: int | None) -> BinaryIO:
        """
        Where a request body of C{length} bytes (L{None}: not declared) is
        stored, as twisted.web stores it: in memory when declared under
        100,000 bytes, in a temporary file otherwise.  (twisted.web's
        C{Request} asks the site first, and without this method raised and
        caught an C{AttributeError} on every request.)
        """
        if length is not None and length < 100000:
            return BytesIO()
        return tempfile.TemporaryFile()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """
        Build a L{LimitedChannel}, or return L{None} (Twisted then closes the
        new socket at once) when a connection cap is reached.
        """
        host = peerKey(addr)
        limits = self.limits
        if limits.maxConnections and self.stats.current >= limits.maxConnections:
            self._refuse(
                "web: {limit} connections open, the max_connections limit: "
                "closing new connections until some close",
                limits.maxConnections,
                host,
            )
            return None
        perPeer = limits.maxConnectionsPerPeer
        if perPeer and host is not None and self._perPeer.get(host, 0) >= perPeer:
            self._refuse(
                "web: {peer} has {limit} connections open, the max_connections_per_peer "
                "limit: closing its new connections until some close",
                perPeer,
                host,
            )
            return None
        self._refusing = False
        channel = LoggingSiteBase.buildProtocol(self, addr)
        channel.peerHost = host
        channel.peer = host if host is not None else describeAddress(addr)
        return channel

    def _refuse(self, message: str, limit: int, host: str | None) -> None:
        self.stats.refused += 1
        if not self._refusing:
            self._refusing = True
            self._log.warn(message, limit=limit, peer=host)

    def connectionOpened(self, channel: LimitedChannel) -> None:
        """
        Count a new connection.
        """
        self.stats.current += 1
        self.stats.accepted += 1
        self.channels[channel] = None
        host = channel.peerHost
        if host is not None:
            self._perPeer[host] = self._perPeer.get(host, 0) + 1
        if logs.isEnabledFor(LogLevel.debug):
            self._log.debug("web: {peer} connected", peer=channel.peer)

    def connectionClosed(self, channel: LimitedChannel) -> None:
        """
        Uncount a closed connection.
        """
        self.stats.current -= 1
        self.channels.pop(channel, None)
        host = channel.peerHost
        if host is not None:
            left = self._perPeer.get(host, 1) - 1
            if left > 0:
                self._perPeer[host] = left
            else:
                self._perPeer.pop(host, None)
        if logs.isEnabledFor(LogLevel.debug):
            self._log.debug("web: {peer} disconnected", peer=channel.peer)

    def log(self, request: Any) -> None:
        """
        Count an answered request and, when there is an access log, write
        its Combined Log Format line.
        """
        self._count(request)
        if self.accessLog is not None:
            self._writeLog(request)

    def logRejected(self, request: RejectedRequest) -> None:
        """
        Count and log a request that a channel answered itself (400, 408, 413).
        """
        self._count(request)
        if self.accessLog is not None:
            self._writeLog(request)

    def _writeLog(self, request: Any) -> None:
        # Site.log lets a failed write (ENOSPC) escape from Request.finish,
        # which then never completes the response: the client got nothing
        # and the log two tracebacks per request.
        try:
            self.writeLogLine(request)
        except (OSError, ValueError) as e:  # a full disk, an I/O error, a closed file
            self._logFailed(e)

    def _logFailed(self, error: Exception) -> None:
        stats = self.stats
        stats.accessLogErrors += 1
        now = self.reactor.seconds()
        warnedAt = self._logWarnedAt
        if warnedAt is not None and now - warnedAt < self.logWarningInterval:
            return
        reason = getattr(error, "strerror", None) or str(error)
        if warnedAt is None:
            self._log.warn(
                "web: cannot write the access log {path} ({reason}): requests are still "
                "answered, their lines are lost (counted as accessLogErrors)",
                path=self.accessLog,
                reason=reason,
            )
        else:
            self._log.warn(
                "web: cannot write the access log {path} ({reason}): {count} lines lost "
                "in the last {seconds:.0f} s",
                path=self.accessLog,
                reason=reason,
                count=stats.accessLogErrors - self._logErrorsWarned,
                seconds=now - warnedAt,
            )
        self._logWarnedAt = now
        self._logErrorsWarned = stats.accessLogErrors

    def _count(self, request: Any) -> None:
        stats = self.stats
        stats.requests += 1
        stats.bytesOut += request.sentLength
        kind = request.code // 100
        if kind == 2:
            stats.responses2xx += 1
        elif kind == 3:
            stats.responses3xx += 1
        elif kind == 4:
            stats.responses4xx += 1
        elif kind == 5:
            stats.responses5xx += 1

    def openLogFile(self, path: Any) -> Any:
        """
        Open the access log at C{path} as an L{AccessLogFile}, not Site's
        C{LogFile}: several worker processes append to one file.

        @raise ValueError: when it cannot be opened.
        """
        try:
            return AccessLogFile(path)
        except OSError as e:
            raise ValueError(f"cannot open the access log {path}: {e.strerror or e}") from None
