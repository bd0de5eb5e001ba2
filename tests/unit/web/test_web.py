"""
Tests for L{services.web._service} and L{services.web._pages}: every route of the
resource tree through L{treq.testing.StubTreq}, the service builder, the
settings it takes (L{services.daemon.values.webSettings}) and the package's
exports.
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from services.config import WebConfig
from services.daemon.values import webSettings, webWorkerReports
from services.net.listener import ListenerService
from services.net.sockets import SocketOptions
from services.stats import ConnectionStats, WebStats
from services.web import (
    HTTPLimits,
    LimitedSite,
    WebService,
    WebSettings,
    WorkerReports,
    buildResource,
    makeWebService,
)

from tests.support import temporaryDirectory
from tests.webfakes import (
    FakeRoot,
    StubTestCase,
    SynchronousThreads,
    fullRoot,
    header,
)

OTHER_METHODS = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW")


class StubMixin(StubTestCase):
    """
    Requests through StubTreq against the web service's resource tree.
    """

    def stub(
        self,
        config: WebConfig | None = None,
        root: Any = None,
        uptime: float = 12.5,
        workers: Any = None,
    ) -> StubTreq:
        config = WebConfig() if config is None else config
        root = fullRoot() if root is None else root
        resource = buildResource(
            webSettings(config), root, lambda: uptime, SynchronousThreads(), workers
        )
        return StubTreq(resource)


class HelloTests(StubMixin):
    """
    C{/} says Hello World like the classic BaseHTTPServer example.
    """

    def test_get(self) -> None:
        """
        GET / answers 200, "Hello World", text/html;charset=UTF-8 and the
        body's exact length.
        """
        response, body = self.fetch(self.stub(), "GET", "http://web/")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"Hello World")
        self.assertEqual(header(response, "content-type"), "text/html;charset=UTF-8")
        self.assertEqual(response.length, 11)

    def test_head(self) -> None:
        """
        HEAD / has the headers of GET, Content-Length included, and no body.
        """
        response, body = self.fetch(self.stub(), "HEAD", "http://web/")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"")
        self.assertEqual(header(response, "content-type"), "text/html;charset=UTF-8")
        self.assertEqual(header(response, "content-length"), "11")

    def test_otherMethods(self) -> None:
        """
        Every other method, known to twisted.web or not, gets 405 with
        C{Allow: GET, HEAD} (twisted.web alone would answer 501 to most).
        """
        stub = self.stub()
        for method in OTHER_METHODS:
            response, _ = self.fetch(stub, method, "http://web/", data=b"x")
            self.assertEqual(response.code, 405, method)
            self.assertEqual(header(response, "allow"), "GET, HEAD", method)

    def test_unknownPaths(self) -> None:
        """
        Paths nothing serves are 404s, for every method, including paths
        below the JSON documents and doubled slashes.
        """
        stub = self.stub()
        for url in ("/nope", "/nope/deeper", "//x", "/status/x", "/health/", "/static/x"):
            for method in ("GET", "POST"):
                response, _ = self.fetch(stub, method, "http://web" + url)
                self.assertEqual(response.code, 404, (method, url))


class StatusTests(StubMixin):
    """
    C{/status} describes the daemon and every service in JSON.
    """

    def status(self, root: Any) -> dict[str, Any]:
        response, body = self.fetch(self.stub(root=root), "GET", "http://web/status")
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "content-type"), "application/json")
        self.assertEqual(header(response, "cache-control"), "no-store")
        self.assertEqual(response.length, len(body))
        document: dict[str, Any] = json.loads(body)
        return document

    def test_document(self) -> None:
        """
        The document has the version, the uptime, and for each service its
        listening state, addresses (TCP, IPv6, UNIX, UDP) and counters, and
        discovery's peers.
        """
        from services import __version__

        peers = [{"id": "abc", "name": "other", "address": "127.0.0.2", "services": {"echo": 8007}}]
        document = self.status(fullRoot(peers))
        self.assertEqual(document["name"], "netservices")
        self.assertEqual(document["version"], __version__)
        self.assertEqual(document["uptime"], 12.5)
        services = document["services"]
        self.assertEqual(set(services), {"echo", "discovery", "web"})
        echo = services["echo"]
        self.assertTrue(echo["listening"])
        self.assertEqual(
            echo["addresses"], ["127.0.0.1:8007", "[::1]:8007", "unix:/tmp/echo.sock"]
        )
        self.assertEqual(echo["counters"], ConnectionStats(2, 5, 0, 0, 100, 100).snapshot())
        self.assertEqual(services["discovery"]["peers"], peers)
        self.assertEqual(services["discovery"]["addresses"], ["127.0.0.1:8009"])
        self.assertEqual(services["web"]["counters"], WebStats(requests=3).snapshot())
        self.assertNotIn("peers", echo)

    def test_withoutDiscovery(self) -> None:
        """
        Without discovery there are no peers, and a service that does not
        listen shows no addresses.
        """
        root = FakeRoot()
        root.addListeners("echo", None, stats=ConnectionStats())
        document = self.status(root)
        self.assertEqual(
            document["services"],
            {
                "echo": {
                    "listening": False,
                    "addresses": [],
                    "counters": ConnectionStats().snapshot(),
                }
            },
        )

    def test_head(self) -> None:
        """
        HEAD /status gives the headers with the length of the document.
        """
        response, body = self.fetch(self.stub(), "HEAD", "http://web/status")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(header(response, "content-length") or 0), 100)

    def test_otherMethods(self) -> None:
        """
        Other methods on /status and /health get 405 with Allow.
        """
        stub = self.stub()
        for path in ("/status", "/health"):
            for method in OTHER_METHODS:
                response, _ = self.fetch(stub, method, "http://web" + path)
                self.assertEqual(response.code, 405, (method, path))
                self.assertEqual(header(response, "allow"), "GET, HEAD")


class HealthTests(StubMixin):
    """
    C{/health} is 200 when every enabled service listens, else 503.
    """

    def test_healthy(self) -> None:
        """
        Every listener listening: 200 with status ok.
        """
        response, body = self.fetch(self.stub(), "GET", "http://web/health")
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "content-type"), "application/json")
        self.assertEqual(
            json.loads(body),
            {
                "status": "ok",
                "services": {"echo": "listening", "discovery": "listening", "web": "listening"},
            },
        )

    def test_oneListenerDown(self) -> None:
        """
        One listener of one service not listening: 503, naming it.
        """
        root = FakeRoot()
        root.addListeners("echo", IPv4Address("TCP", "127.0.0.1", 8007), None)
        root.addListeners("web", IPv4Address("TCP", "127.0.0.1", 8080))
        response, body = self.fetch(self.stub(root=root), "GET", "http://web/health")
        self.assertEqual(response.code, 503)
        self.assertEqual(
            json.loads(body),
            {"status": "unavailable", "services": {"echo": "not listening", "web": "listening"}},
        )

    def test_degraded(self) -> None:
        """
        A service that listens but cannot do its job (discovery whose
        announces cannot be sent) makes C{/health} 503 "degraded", with the
        reason in the body.
        """
        root = fullRoot()
        reason = "cannot send announces to 255.255.255.255:8009: Network is unreachable"
        root.getServiceNamed("discovery").problems = [reason]
        response, body = self.fetch(self.stub(root=root), "GET", "http://web/health")
        self.assertEqual(response.code, 503)
        self.assertEqual(
            json.loads(body),
            {
                "status": "degraded",
                "services": {"echo": "listening", "discovery": "degraded", "web": "listening"},
                "problems": {"discovery": [reason]},
            },
        )

    def test_parentServices(self) -> None:
        """
        In a worker, C{/status} and C{/health} show the services that run
        in the parent (discovery, UDP echo) as the supervisor last wrote
        them: listening, with their counters, peers and problems.
        """
        from services.daemon.workerprocess import WorkerSpec
        from services.stats import DiscoveryStats
        from services.web._state import PARENT_STATE, treeState

        runtime = temporaryDirectory(self)
        parent = fullRoot([{"name": "beta"}])
        discovery = parent.getServiceNamed("discovery")
        discovery.problems = ["cannot send announces to x"]
        parent.stats["discovery"] = DiscoveryStats(announcesSent=4)
        (runtime / PARENT_STATE).write_text(json.dumps(treeState([discovery], parent.stats)))
        root = FakeRoot()
        root.addListeners("web", IPv4Address("TCP", "127.0.0.1", 8080))
        reports = webWorkerReports(WorkerSpec(1, 2, (), str(runtime)))
        stub = self.stub(root=root, workers=reports)
        response, body = self.fetch(stub, "GET", "http://web/health")
        self.assertEqual(response.code, 503)
        health = json.loads(body)
        self.assertEqual(health["services"], {"web": "listening", "discovery": "degraded"})
        self.assertEqual(health["problems"], {"discovery": ["cannot send announces to x"]})
        response, body = self.fetch(stub, "GET", "http://web/status")
        entry = json.loads(body)["services"]["discovery"]
        self.assertTrue(entry["listening"])
        self.assertEqual(entry["peers"], [{"name": "beta"}])
        self.assertEqual(entry["counters"]["announcesSent"], 4)

    def test_workersDocument(self) -> None:
        """
        C{/status} shows under C{"workers"} what the L{WorkerReports} it was
        given return, asked anew for each request; without them, no
        C{"workers"}.
        """
        calls = []

        def workers() -> dict[str, Any]:
            calls.append(None)
            return {"answeredBy": 1, "count": len(calls)}

        stub = self.stub(workers=WorkerReports(workers, dict))
        for n in (1, 2):
            _, body = self.fetch(stub, "GET", "http://web/status")
            self.assertEqual(json.loads(body)["workers"], {"answeredBy": 1, "count": n})
        _, body = self.fetch(self.stub(), "GET", "http://web/status")
        self.assertNotIn("workers", json.loads(body))

    def test_serviceWithoutListeners(self) -> None:
        """
        A service with no listener at all is not healthy.
        """
        root = FakeRoot()
        root.addListeners("echo")
        response, _ = self.fetch(self.stub(root=root), "GET", "http://web/health")
        self.assertEqual(response.code, 503)


class StaticMountTests(StubMixin):
    """
    Static files are mounted where configured, and only when configured.
    """

    def directory(self) -> str:
        path = temporaryDirectory(self)
        (path / "hello.txt").write_text("hello\n")
        return str(path.absolute())

    def test_noStaticDir(self) -> None:
        """
        Without static_dir nothing is mounted: /static/ is a 404.
        """
        stub = self.stub(WebConfig())
        for url in ("/static", "/static/", "/static/hello.txt"):
            response, _ = self.fetch(stub, "GET", "http://web" + url)
            self.assertEqual(response.code, 404, url)

    def test_defaultMount(self) -> None:
        """
        With static_dir, its files are under /static/.
        """
        stub = self.stub(WebConfig(static_dir=self.directory()))
        response, body = self.fetch(stub, "GET", "http://web/static/hello.txt")
        self.assertEqual((response.code, body), (200, b"hello\n"))

    def test_deepMount(self) -> None:
        """
        A mount of several segments serves files there; the segments above
        are 404s and /static/ is not mounted.
        """
        stub = self.stub(WebConfig(static_dir=self.directory(), static_mount="/files/pub/"))
        response, body = self.fetch(stub, "GET", "http://web/files/pub/hello.txt")
        self.assertEqual((response.code, body), (200, b"hello\n"))
        for url in ("/files", "/files/", "/files/other", "/static/hello.txt"):
            response, _ = self.fetch(stub, "GET", "http://web" + url)
            self.assertEqual(response.code, 404, url)
        response, _ = self.fetch(stub, "GET", "http://web/files/pub", allow_redirects=False)
        self.assertEqual(response.code, 301)
        self.assertEqual(header(response, "location"), "/files/pub/")


class WebServiceTests(SynchronousTestCase):
    """
    L{makeWebService} listens on every endpoint with one limited site.
    """

    def test_listeners(self) -> None:
        """
        One listener per endpoint, all serving the same L{LimitedSite} with
        the configured limits, backlog and counters; tracebacks are off.
        """
        reactor = MemoryReactorClock()
        config = WebConfig(
            listen=("tcp:8080:interface=127.0.0.1", "tcp:8081:interface=127.0.0.1"),
            header_timeout=3,
            idle_timeout=7,
            max_body=100,
            max_connections=5,
            max_connections_per_peer=2,
            backlog=17,
        )
        stats = WebStats()
        service = makeWebService(webSettings(config), FakeRoot(), reactor, stats)
        self.assertEqual(service.name, "web")
        listeners = list(service)
        self.assertEqual(len(listeners), 2)
        self.assertTrue(all(isinstance(s, ListenerService) for s in listeners))
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([(s[0], s[2], s[3]) for s in reactor.tcpServers], [
            (8080, 17, "127.0.0.1"), (8081, 17, "127.0.0.1"),
        ])
        site = reactor.tcpServers[0][1]
        self.assertIsInstance(site, LimitedSite)
        self.assertIs(reactor.tcpServers[1][1], site)
        self.assertIs(service.site, site)
        self.assertIs(site.stats, stats)
        self.assertEqual(site.limits, webSettings(config).limits)
        self.assertEqual(site.timeOut, 7)
        self.assertFalse(site.displayTracebacks)
        self.assertIsNone(site.accessLog)

    def test_uptime(self) -> None:
        """
        The uptime counts from the service's start, on its clock.
        """
        clock = Clock()
        clock.advance(1000)
        service = WebService(clock)
        self.assertEqual(service.uptime(), 0.0)
        service.startService()
        clock.advance(42.5)
        self.assertEqual(service.uptime(), 42.5)

    def test_statusReportsUptime(self) -> None:
        """
        /status of a built service reports the service's own uptime.
        """
        reactor = MemoryReactorClock()
        root = FakeRoot()
        service = makeWebService(webSettings(WebConfig(listen=("tcp:8080",))), root, reactor)
        service.setServiceParent(root)
        root.stats["web"] = service.site.stats  # type: ignore[union-attr]
        root.privilegedStartService()
        root.startService()
        self.addCleanup(root.stopService)
        reactor.advance(30)
        stub = StubTreq(service.site.resource)  # type: ignore[union-attr]
        d = stub.get("http://web/status")
        stub.flush()
        response = self.successResultOf(d)
        document = json.loads(self.successResultOf(stub.content(response)))
        self.assertEqual(document["uptime"], 30)
        self.assertEqual(document["services"]["web"]["addresses"], ["0.0.0.0:8080"])


class SettingsTests(SynchronousTestCase):
    """
    L{webSettings} turns C{[web]} into the L{WebSettings} the service takes,
    and the service takes nothing else.
    """

    def test_everyKey(self) -> None:
        """
        Each key of C{[web]} but C{enabled} lands in its value.
        """
        config = WebConfig(
            listen=("tcp:1:interface=127.0.0.1",),
            static_dir="/srv",
            static_mount="/files/",
            listing=True,
            follow_symlinks=True,
            header_timeout=1,
            idle_timeout=2,
            send_timeout=3,
            max_body=4,
            max_connections=5,
            max_connections_per_peer=6,
            backlog=7,
            access_log="access.log",
            server_header="x/1",
            trusted_proxies=("10.0.0.0/8",),
            http2=False,
            max_streams=8,
        )
        self.assertEqual(
            webSettings(config),
            WebSettings(
                listen=("tcp:1:interface=127.0.0.1",),
                limits=HTTPLimits(
                    headerTimeout=1,
                    idleTimeout=2,
                    maxBody=4,
                    maxConnections=5,
                    maxConnectionsPerPeer=6,
                    sendTimeout=3,
                    serverHeader=b"x/1",
                    maxStreams=8,
                ),
                staticDir="/srv",
                staticMount="/files/",
                listing=True,
                followSymlinks=True,
                accessLog="access.log",
                trustedProxies=("10.0.0.0/8",),
                http2=False,
                socketOptions=SocketOptions(backlog=7),
            ),
        )

    def test_emptyMeansNone(self) -> None:
        """
        An empty C{static_dir} or C{access_log} is none; the defaults of
        L{WebSettings} are those of C{[web]} otherwise.
        """
        settings = webSettings(WebConfig())
        self.assertIsNone(settings.staticDir)
        self.assertIsNone(settings.accessLog)
        defaults = WebSettings()
        self.assertEqual(settings.limits, defaults.limits)
        self.assertEqual(settings.socketOptions, defaults.socketOptions)
        self.assertEqual(settings.listen, defaults.listen)


class PublicAPITests(SynchronousTestCase):
    """
    C{services.web} exports what a program of its own needs, each name
    documented.
    """

    def test_allExported(self) -> None:
        """
        Every name of C{__all__} is reachable (the lazy ones too) and has a
        docstring; the static files are imported only when asked for.
        """
        from services import web

        for name in web.__all__:
            value = getattr(web, name)
            self.assertTrue(value.__doc__, name)
        self.assertIs(web.StaticFile, __import__("services.web._static").web._static.StaticFile)
        with self.assertRaises(AttributeError):
            web.notAName  # noqa: B018
