# -*- test-case-name: tests.unit.web.test_web -*-
"""
The values the web service takes: L{HTTPLimits}, the limits of one
L{services.web._site.LimitedSite}; L{WebSettings}, everything else
L{services.web._service.makeWebService} needs; and, in a worker process,
L{WorkerReports}, what its pages say of the other processes.  All are
plain frozen values: the daemon fills them from C{[web]} and its worker
pool, a program of its own builds them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services import dataclass
from services.net.sockets import SocketOptions

__all__ = ["HTTPLimits", "WebSettings", "WorkerReports"]


@dataclass(frozen=True)
class HTTPLimits:
    """
    The limits of a L{LimitedSite<services.web._site.LimitedSite>}; 0 turns
    a limit off.

    @ivar headerTimeout: seconds allowed for a request line and its headers.
    @ivar idleTimeout: seconds a connection may stay silent (between
        requests, or while sending a body).
    @ivar maxBody: the largest request body accepted, in bytes.
    @ivar maxConnections: connections open at once.
    @ivar maxConnectionsPerPeer: connections open at once from one IP address.
    @ivar sendTimeout: seconds a response may make no progress (its client
        reads none of it) before the connection is aborted.
    @ivar serverHeader: the C{Server} header of every response; empty for
        none.
    @ivar maxStreams: streams one HTTP/2 connection may have open at once
        (L{services.web._http2}).
    """

    headerTimeout: float = 10.0
    idleTimeout: float = 60.0
    maxBody: int = 1024**2
    maxConnections: int = 1024
    maxConnectionsPerPeer: int = 256
    sendTimeout: float = 60.0
    serverHeader: bytes = b"netservices"
    maxStreams: int = 100


@dataclass(frozen=True)
class WebSettings:
    """
    What the web service serves, and where.

    @ivar listen: the server endpoint strings to listen on.
    @ivar limits: the limits of the site.
    @ivar staticDir: the directory whose files are served, or L{None} for
        no static files.
    @ivar staticMount: the URL path where C{staticDir} is served.
    @ivar listing: whether directories without an index page are listed.
    @ivar followSymlinks: whether symbolic links may lead outside
        C{staticDir}.
    @ivar accessLog: the access log's path, or L{None} for none.
    @ivar trustedProxies: who may send a PROXY header to a C{haproxy:}
        listener (addresses and networks); L{None} for loopback only.
    @ivar http2: whether C{ssl:} listeners offer HTTP/2 (ALPN C{h2}).
    @ivar socketOptions: the options of every listener (its backlog).
    """

    listen: tuple[str, ...] = ("tcp:8080:interface=127.0.0.1",)
    limits: HTTPLimits = HTTPLimits()
    staticDir: str | None = None
    staticMount: str = "/static/"
    listing: bool = False
    followSymlinks: bool = False
    accessLog: str | None = None
    trustedProxies: tuple[str, ...] | None = None
    http2: bool = True
    socketOptions: SocketOptions = SocketOptions(backlog=1024)  # noqa: RUF009 (frozen)


@dataclass(frozen=True)
class WorkerReports:
    """
    What the pages of one worker process (C{workers} above 1) show of the
    other processes, each asked anew for every request.

    @ivar workers: returns every worker's last counters and their totals
        (C{"workers"} in C{/status}).
    @ivar parentState: returns the state of the services that run in the
        parent process (discovery, UDP echo) as the supervisor last wrote
        it, by service name, for C{/status} and C{/health}.
    """

    workers: Callable[[], dict[str, Any]]
    parentState: Callable[[], dict[str, Any]]
