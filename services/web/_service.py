# -*- test-case-name: tests.test_web -*-
"""
The web service: one twisted.web site over this resource tree::

    /          Hello World (text/html;charset=UTF-8)
    /static/   the files of [web] static_dir (mount point: static_mount)
    /status    JSON: version, uptime, every service with its addresses,
               counters and (discovery) peers, the open connections; as an
               HTML page to browsers (L{services.web._statuspage})
    /health    200 when every enabled service is listening and can do its
               job, else 503 (unavailable, or degraded with the reasons)
    /metrics   Prometheus text format

served by a L{services.web._limits.LimitedSite} (header deadline, body
limit, connection caps, access log).  Build it with L{makeWebService};
L{buildResource} gives the resource tree alone, for another site.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from services import __version__
from services.config import WebConfig
from services.web._limits import HTTPLimits, LimitedSite
from services.net.listen import (
    ListenContext,
    ListenerService,
    SocketOptions,
    describeAddress,
    endpointFor,
    parseListen,
)
from services.web._metrics import LazyMetricsResource
from services.net.connections import connectionsDocument, newest
from services.web._state import readParentState, serviceHealth, serviceStatus
from services.stats import WebStats
from services.web._statuspage import StatusResource
from services.web._pages import Hello, JSONResource, notFound

__all__ = [
    "Branch",
    "WebService",
    "buildResource",
    "healthDocument",
    "limitsFor",
    "makeWebService",
    "statusDocument",
    "statusFor",
]


class Branch(Resource):
    """
    An inner node of the tree: only its children are served; itself and
    unknown children are 404s.
    """

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """
        No such child: 404.
        """
        return notFound()

    def render(self, request: IRequest) -> Any:
        """
        Nothing is served here: 404.
        """
        return notFound().render(request)


def _parentState(root: Any) -> dict[str, Any]:
    """
    In a worker process, the state of the services that run in the parent
    (discovery, UDP echo), as the supervisor last wrote it; else nothing.
    """
    worker = getattr(root, "worker", None)
    if worker is None:
        return {}
    return readParentState(worker.runtime)


def statusDocument(root: Any, uptime: float) -> dict[str, Any]:
    """
    What C{/status} shows: the version, the uptime in seconds and, for each
    service of C{root}, whether it listens, its addresses, its counters and,
    for discovery, the peers it knows; the open connections of the stream
    services (L{services.net.connections}).  In a worker process (C{workers} above
    1), also the services that run in the parent, every worker's counters
    and their totals.
    """
    services = {service.name: serviceStatus(service, root.stats) for service in list(root)}
    listings = []
    for service in list(root):
        connectionListing = getattr(service, "connectionListing", None)
        if connectionListing is not None:
            listings.append((service.name, *connectionListing()))
    for name, state in _parentState(root).items():
        services.setdefault(name, state.get("status", {}))
    document = {
        "name": "netservices",
        "version": __version__,
        "uptime": round(uptime, 3),
        "services": services,
    }
    if listings:
        document["connections"] = connectionsDocument(listings)
    worker = getattr(root, "worker", None)
    if worker is not None:
        from services.daemon.workerprocess import workersDocument

        document["workers"] = workersDocument(worker)
    return document


def statusFor(request: IRequest, root: Any, uptime: float) -> dict[str, Any]:
    """
    L{statusDocument}, plus C{"client"}: the address of the client that
    asked, as the server sees it (behind a load balancer that sends the
    PROXY protocol to a C{haproxy:} listener, the real client's).
    """
    document = statusDocument(root, uptime)
    document["client"] = describeAddress(request.getClientAddress())
    return document


def healthDocument(root: Any) -> tuple[int, dict[str, Any]]:
    """
    What C{/health} answers: 200 and C{"ok"} when every service of C{root}
    is listening and can do its job; 503 and C{"unavailable"} when one is
    not listening; 503 and C{"degraded"} when one listens but says it cannot
    do its job (a service's C{healthProblems()}: discovery whose announces
    cannot be sent), with the reasons under C{"problems"}.
    """
    states: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for service in list(root):
        states[service.name], reasons = serviceHealth(service)
        if reasons:
            problems[service.name] = reasons
    for name, state in _parentState(root).items():
        if name not in states:
            states[name] = str(state.get("health", "not listening"))
            if state.get("problems"):
                problems[name] = list(state["problems"])
    if "not listening" in states.values():
        status = "unavailable"
    else:
        status = "degraded" if problems else "ok"
    document: dict[str, Any] = {"status": status, "services": states}
    if problems:
        document["problems"] = problems
    return (200 if status == "ok" else 503), document


def _mount(tree: Resource, mount: str, resource: IResource) -> None:
    segments = [s.encode("utf-8") for s in mount.strip("/").split("/")]
    node = tree
    for segment in segments[:-1]:
        child = node.children.get(segment)
        if child is None:
            child = Branch()
            node.putChild(segment, child)
        node = child  # type: ignore[assignment]
    node.putChild(segments[-1], resource)


def buildResource(
    config: WebConfig,
    root: Any,
    uptime: Callable[[], float],
    reactor: Any = None,
) -> IResource:
    """
    The resource tree of the web service.

    @param config: the C{[web]} section (static files).
    @param root: the service tree that C{/status}, C{/health} and
        C{/metrics} report on: it iterates over its services and has a
        C{stats} dict of counters by service name.
    @param uptime: returns the seconds since the service started.
    @param reactor: the reactor whose threads render C{/metrics}; L{None}
        for the global one.
    """
    tree = Branch()
    tree.putChild(b"", Hello())
    tree.putChild(
        b"status", StatusResource(lambda request: (200, statusFor(request, root, uptime())))
    )
    tree.putChild(b"health", JSONResource(lambda request: healthDocument(root)))
    tree.putChild(b"metrics", LazyMetricsResource(root, uptime, reactor))
    if config.static_dir:
        # Imported only when serving files: twisted.web.static reads the
        # system's MIME types when imported (about 20 ms of start-up).
        from services.web._static import StaticFile

        static = StaticFile(
            config.static_dir, listing=config.listing, followSymlinks=config.follow_symlinks
        )
        _mount(tree, config.static_mount, static)
    return tree


def limitsFor(config: WebConfig) -> HTTPLimits:
    """
    The L{HTTPLimits} that C{[web]} sets.
    """
    return HTTPLimits(
        headerTimeout=config.header_timeout,
        idleTimeout=config.idle_timeout,
        maxBody=config.max_body,
        maxConnections=config.max_connections,
        maxConnectionsPerPeer=config.max_connections_per_peer,
        sendTimeout=config.send_timeout,
        serverHeader=config.server_header.encode("ascii"),
        maxStreams=config.max_streams,
    )


class WebService(MultiService):
    """
    The web service: one listener per endpoint, all serving one site.

    @ivar site: the L{LimitedSite}.
    @ivar clock: the time source of the uptime.
    @ivar startedAt: when the service started, by C{clock}.
    """

    startedAt: float | None = None

    def __init__(self, clock: IReactorTime) -> None:
        MultiService.__init__(self)
        self.setName("web")
        self.clock = clock
        self.site: LimitedSite | None = None

    def startService(self) -> None:
        """
        Note the start time and start the listeners.
        """
        self.startedAt = self.clock.seconds()
        MultiService.startService(self)

    def connectionListing(self) -> tuple[int, list[dict[str, Any]]]:
        """
        How many connections are open, and the newest described (see
        L{services.net.connections}).
        """
        if self.site is None:
            return 0, []
        channels = self.site.channels
        return len(channels), newest(channels, "web", self.clock.seconds())

    def reopen(self) -> int:
        """
        Reopen the access log (on SIGHUP, after logrotate moved it).

        @return: how many files were reopened: 1, or 0 without an access
            log or before the site has opened it.
        """
        logFile = getattr(self.site, "logFile", None)
        reopen = getattr(logFile, "reopen", None)
        if reopen is None:
            return 0
        reopen()
        return 1

    def uptime(self) -> float:
        """
        Seconds since the service started (0 before).
        """
        if self.startedAt is None:
            return 0.0
        return self.clock.seconds() - self.startedAt


def _http2Possible() -> bool:
    """
    Whether this Twisted has what the limited HTTP/2 connection relies on;
    when not, C{ssl:} listeners offer HTTP/1.1 only (one warning says so).
    """
    from services._twisted import fastPath

    return fastPath("http2")


def makeWebService(
    config: WebConfig,
    root: Any,
    reactor: Any = None,
    stats: WebStats | None = None,
    context: ListenContext | None = None,
) -> WebService:
    """
    Build the web service: a L{LimitedSite} over L{buildResource}, on one
    listener per endpoint of C{config.listen}.

    @param config: the C{[web]} section.
    @param root: the service tree that C{/status}, C{/health} and
        C{/metrics} report on (see L{buildResource}).
    @param reactor: the reactor to listen with; the global one if L{None}.
    @param stats: counters to update; a new L{WebStats} if L{None}.
    @param context: the process's TLS files and inherited sockets.
    """
    clock = reactor
    if clock is None:
        from twisted.internet import reactor as clock
    service = WebService(clock)
    resource = buildResource(config, root, service.uptime, reactor)
    site = LimitedSite(resource, limitsFor(config), stats, config.access_log, clock)
    service.site = site
    options = SocketOptions(backlog=config.backlog)
    for description in config.listen:
        factory: Any = site
        alpn: tuple[bytes, ...] = ()
        if config.http2 and parseListen(description).tls is not None and _http2Possible():
            from services.web._http2 import HTTP2Factory

            factory, alpn = HTTP2Factory(site), (b"h2", b"http/1.1")
        endpoint = endpointFor(
            clock, description, options, context or ListenContext(), site.stats,
            config.trusted_proxies, alpn,
        )
        ListenerService("web", description, endpoint, factory, options).setServiceParent(service)
    return service
