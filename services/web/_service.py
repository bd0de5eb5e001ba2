# -*- test-case-name: tests.unit.web.test_web -*-
"""
The web service: one twisted.web site over this resource tree::

    /          Hello World (text/html;charset=UTF-8)
    /static/   the files of the settings' staticDir (mount point: staticMount)
    /status    JSON: version, uptime, every service with its addresses,
               counters and (discovery) peers, the open connections; as an
               HTML page to browsers (L{services.web._statuspage})
    /health    200 when every enabled service is listening and can do its
               job, else 503 (unavailable, or degraded with the reasons)
    /metrics   Prometheus text format

served by a L{services.web._site.LimitedSite} (header deadline, body
limit, connection caps, access log).  Build it with L{makeWebService} from
L{WebSettings<services.web._settings.WebSettings>}; L{buildResource} gives
the resource tree alone, for another site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from services import __version__
from services._twisted import fastPath
from services.net.connections import connectionsDocument, newest
from services.net.defaults import defaultReactor
from services.net.addresses import describeAddress
from services.net.descriptions import parseListen
from services.net.endpoints import ListenContext, endpointFor
from services.net.listener import ListenerService
from services.stats import WebStats
from services.web._metrics import LazyMetricsResource
from services.web._pages import Hello, JSONResource, notFound
from services.web._settings import WebSettings, WorkerReports
from services.web._site import LimitedSite
from services.web._state import serviceHealth, serviceStatus
from services.web._statuspage import StatusResource

__all__ = [
    "Branch",
    "WebService",
    "buildResource",
    "healthDocument",
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


def _parentState(workers: WorkerReports | None) -> dict[str, Any]:
    """
    In a worker process, the state of the services that run in the parent
    (discovery, UDP echo), as the supervisor last wrote it; else nothing.
    """
    if workers is None:
        return {}
    return workers.parentState()


def statusDocument(
    root: Any, uptime: float, workers: WorkerReports | None = None
) -> dict[str, Any]:
    """
    What C{/status} shows: the version, the uptime in seconds and, for each
    service of C{root}, whether it listens, its addresses, its counters and,
    for discovery, the peers it knows; the open connections of the stream
    services (L{services.net.connections}).  In a worker process (C{workers} above
    1, C{workers} given), also the services that run in the parent, every
    worker's counters and their totals.
    """
    services = {service.name: serviceStatus(service, root.stats) for service in list(root)}
    listings = []
    for service in list(root):
        connectionListing = getattr(service, "connectionListing", None)
        if connectionListing is not None:
            listings.append((service.name, *connectionListing()))
    for name, state in _parentState(workers).items():
        services.setdefault(name, state.get("status", {}))
    document = {
        "name": "netservices",
        "version": __version__,
        "uptime": round(uptime, 3),
        "services": services,
    }
    if listings:
        document["connections"] = connectionsDocument(listings)
    if workers is not None:
        document["workers"] = workers.workers()
    return document


def statusFor(
    request: IRequest, root: Any, uptime: float, workers: WorkerReports | None = None
) -> dict[str, Any]:
    """
    L{statusDocument}, plus C{"client"}: the address of the client that
    asked, as the server sees it (behind a load balancer that sends the
    PROXY protocol to a C{haproxy:} listener, the real client's).
    """
    document = statusDocument(root, uptime, workers)
    document["client"] = describeAddress(request.getClientAddress())
    return document


def healthDocument(root: Any, workers: WorkerReports | None = None) -> tuple[int, dict[str, Any]]:
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
    for name, state in _parentState(workers).items():
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
    settings: WebSettings,
    root: Any,
    uptime: Callable[[], float],
    reactor: Any = None,
    workers: WorkerReports | None = None,
) -> IResource:
    """
    The resource tree of the web service.

    @param settings: what to serve (static files).
    @param root: the service tree that C{/status}, C{/health} and
        C{/metrics} report on: it iterates over its services and has a
        C{stats} dict of counters by service name.
    @param uptime: returns the seconds since the service started.
    @param reactor: the reactor whose threads render C{/metrics}; L{None}
        for the global one.
    @param workers: in a worker process, what its pages show of the other
        processes; L{None} elsewhere.
    """
    tree = Branch()
    tree.putChild(b"", Hello())
    tree.putChild(
        b"status",
        StatusResource(lambda request: (200, statusFor(request, root, uptime(), workers))),
    )
    tree.putChild(b"health", JSONResource(lambda request: healthDocument(root, workers)))
    tree.putChild(b"metrics", LazyMetricsResource(root, uptime, reactor))
    if settings.staticDir:
        # Imported only when serving files: twisted.web.static reads the
        # system's MIME types when imported (about 20 ms of start-up).
        from services.web._static import StaticFile

        static = StaticFile(
            settings.staticDir, listing=settings.listing, followSymlinks=settings.followSymlinks
        )
        _mount(tree, settings.staticMount, static)
    return tree


class WebService(MultiService):
    """
    The web service: one listener per endpoint, all serving one site.

    @ivar site: the L{LimitedSite}.
    @ivar reactor: the time source of the uptime.
    @ivar startedAt: when the service started, by C{reactor}.
    """

    startedAt: float | None = None

    def __init__(self, reactor: IReactorTime | None = None) -> None:
        MultiService.__init__(self)
        self.setName("web")
        self.reactor: IReactorTime = defaultReactor(reactor)
        self.site: LimitedSite | None = None

    def startService(self) -> None:
        """
        Note the start time and start the listeners.
        """
        self.startedAt = self.reactor.seconds()
        MultiService.startService(self)

    def connectionListing(self) -> tuple[int, list[dict[str, Any]]]:
        """
        How many connections are open, and the newest described (see
        L{services.net.connections}).
        """
        if self.site is None:
            return 0, []
        channels = self.site.channels
        return len(channels), newest(channels, "web", self.reactor.seconds())

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
        return self.reactor.seconds() - self.startedAt


def makeWebService(
    settings: WebSettings,
    root: Any,
    reactor: Any = None,
    stats: WebStats | None = None,
    context: ListenContext | None = None,
    workers: WorkerReports | None = None,
) -> WebService:
    """
    Build the web service: a L{LimitedSite} over L{buildResource}, on one
    listener per endpoint of C{settings.listen}.

    @param settings: what to serve, where, and with which limits.
    @param root: the service tree that C{/status}, C{/health} and
        C{/metrics} report on (see L{buildResource}).
    @param reactor: the reactor to listen with; the global one if L{None}.
    @param stats: counters to update; a new L{WebStats} if L{None}.
    @param context: the process's TLS files and inherited sockets.
    @param workers: in a worker process, what its pages show of the other
        processes (see L{buildResource}).
    """
    service = WebService(reactor)
    # /metrics takes the reactor as given: prometheus_client's own resource
    # serves it on the global reactor (see metricsResource).
    resource = buildResource(settings, root, service.uptime, reactor, workers)
    reactor = service.reactor
    site = LimitedSite(resource, settings.limits, stats, settings.accessLog, reactor)
    service.site = site
    options = settings.socketOptions
    for description in settings.listen:
        factory: Any = site
        alpn: tuple[bytes, ...] = ()
        # Without what the limited HTTP/2 connection relies on, ssl:
        # listeners offer HTTP/1.1 only (one warning says so).
        if settings.http2 and parseListen(description).tls is not None and fastPath("http2"):
            from services.web._http2factory import HTTP2Factory

            factory, alpn = HTTP2Factory(site), (b"h2", b"http/1.1")
        endpoint = endpointFor(
            reactor, description, options, context or ListenContext(), site.stats,
            settings.trustedProxies, alpn,
        )
        ListenerService("web", description, endpoint, factory, options).setServiceParent(service)
    return service
