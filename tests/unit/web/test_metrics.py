"""
Tests for L{services.web._metrics}: every service's counters as Prometheus
metrics, served at C{/metrics} and parsed back with prometheus_client.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from treq.testing import StubTreq
from twisted.web.wsgi import WSGIResource

from services import __version__
from services.config import WebConfig
from services.daemon.values import webSettings
from services.web import _metrics as metrics
from services.web import buildResource
from services.web._metrics import StatsCollector, makeRegistry, metricName, metricsResource

from tests.webfakes import FakeRoot, StubTestCase, SynchronousThreads, fullRoot, header
from tests.support import ROOT


def families(text: str) -> dict[str, Any]:
    """
    Parse an exposition into metric families by name.
    """
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Any, **labels: str) -> float:
    """
    The value of the sample of C{family} with C{labels} (the C{_total} or
    plain sample, not C{_created}).
    """
    for sample in family.samples:
        if sample.labels == labels and not sample.name.endswith("_created"):
            return float(sample.value)
    raise AssertionError(f"no sample {labels} in {family}")


class MetricNameTests(StubTestCase):
    """
    Counter names become Prometheus metric names.
    """

    def test_names(self) -> None:
        """
        camelCase becomes snake_case, dashes underscores, under
        C{netservices_<service>_}.
        """
        self.assertEqual(metricName("echo", "bytesIn"), "netservices_echo_bytes_in")
        self.assertEqual(metricName("echo", "timedOut"), "netservices_echo_timed_out")
        self.assertEqual(metricName("web", "responses2xx"), "netservices_web_responses2xx")
        self.assertEqual(metricName("udp-echo", "current"), "netservices_udp_echo_current")
        self.assertEqual(metricName("web", "headerTimeouts"), "netservices_web_header_timeouts")


class MetricsResourceTests(StubTestCase):
    """
    C{/metrics} serves every service's counters in the text format.
    """

    def scrape(self, root: Any = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        root = fullRoot() if root is None else root
        stub = StubTreq(buildResource(webSettings(WebConfig()), root, lambda: 12.5, SynchronousThreads()))
        response, body = self.fetch(stub, "GET", "http://web/metrics", **kwargs)
        self.assertEqual(response.code, 200)
        return response, families(body.decode("utf-8"))

    def test_parsedBack(self) -> None:
        """
        The exposition parses with prometheus_client's parser: counters are
        counters, C{current} is a gauge, with the counters' values; version,
        uptime and listening state are there too.
        """
        response, found = self.scrape()
        self.assertTrue((header(response, "content-type") or "").startswith("text/plain"))
        echoIn = found["netservices_echo_bytes_in"]
        self.assertEqual(echoIn.type, "counter")
        self.assertEqual(value(echoIn), 100)
        self.assertEqual(found["netservices_echo_current"].type, "gauge")
        self.assertEqual(value(found["netservices_echo_current"]), 2)
        self.assertEqual(value(found["netservices_echo_accepted"]), 5)
        self.assertEqual(value(found["netservices_web_requests"]), 3)
        self.assertEqual(found["netservices_web_header_timeouts"].type, "counter")
        self.assertEqual(value(found["netservices_uptime_seconds"]), 12.5)
        self.assertEqual(value(found["netservices_info"], version=__version__), 1)
        listening = found["netservices_listening"]
        for service in ("echo", "discovery", "web"):
            self.assertEqual(value(listening, service=service), 1)
        self.assertIn("process_cpu_seconds", found)

    def test_everyCounter(self) -> None:
        """
        Every counter of every service has its metric.
        """
        root = fullRoot()
        _, found = self.scrape(root)
        for service, counters in root.stats.items():
            for counter in counters.snapshot():
                self.assertIn(metricName(service, counter), found)

    def test_notListening(self) -> None:
        """
        A service that does not listen has netservices_listening 0.
        """
        root = FakeRoot()
        root.addListeners("echo", None)
        _, found = self.scrape(root)
        self.assertEqual(value(found["netservices_listening"], service="echo"), 0)

    def test_otherMethods(self) -> None:
        """
        Methods other than GET (and OPTIONS) get 405 with an Allow header.
        """
        stub = StubTreq(buildResource(webSettings(WebConfig()), fullRoot(), lambda: 1.0, SynchronousThreads()))
        for method in ("POST", "PUT", "DELETE"):
            response, _ = self.fetch(stub, method, "http://web/metrics")
            self.assertEqual(response.code, 405, method)
            self.assertIn("GET", header(response, "allow") or "")


class CollectorTests(StubTestCase):
    """
    L{StatsCollector} reads the counters of a tree.
    """

    def test_declaredGauges(self) -> None:
        """
        A stats class may name more current values in C{gauges}.
        """

        @dataclass
        class PeerStats:
            gauges: ClassVar[frozenset[str]] = frozenset({"current", "peers"})
            peers: int = 4
            announced: int = 9

            def snapshot(self) -> dict[str, int]:
                return {"peers": self.peers, "announced": self.announced}

        root = FakeRoot()
        root.addListeners("discovery", None, stats=PeerStats())
        collected = {m.name: m for m in StatsCollector(root, lambda: 0.0).collect()}
        self.assertEqual(collected["netservices_discovery_peers"].type, "gauge")
        self.assertEqual(collected["netservices_discovery_announced"].type, "counter")

    def test_readOnReactorThread(self) -> None:
        """
        Collected from another thread (prometheus_client's WSGI resource
        runs in the thread pool), the values are read through the reactor's
        C{callFromThread}, on the thread that owns them.
        """
        scheduled: list[object] = []

        class Reactor:
            def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
                scheduled.append(f)
                f(*args, **kwargs)

        registry = makeRegistry(fullRoot(), lambda: 3.0, Reactor())
        found: list[float | None] = []
        worker = threading.Thread(
            target=lambda: found.append(registry.get_sample_value("netservices_uptime_seconds"))
        )
        worker.start()
        worker.join(10)
        self.assertEqual(found, [3.0])
        self.assertEqual(len(scheduled), 1)
        self.assertEqual(registry.get_sample_value("netservices_uptime_seconds"), 3.0)
        self.assertEqual(len(scheduled), 1, "read directly on the main thread")

    def test_registriesIndependent(self) -> None:
        """
        Each registry is its own: building two (two web services, or two
        tests) does not collide in prometheus_client's global registry.
        """
        first = makeRegistry(fullRoot(), lambda: 1.0)
        second = makeRegistry(fullRoot(), lambda: 2.0)
        self.assertIsNot(first, second)
        self.assertEqual(second.get_sample_value("netservices_uptime_seconds"), 2.0)

    def test_defaultIsPrometheusResource(self) -> None:
        """
        With the global reactor, /metrics is prometheus_client's own Twisted
        MetricsResource; with another reactor, the same WSGI application on
        that reactor's threads.
        """
        import prometheus_client.twisted

        made: list[CollectorRegistry] = []
        sentinel = object()

        def fake(registry: CollectorRegistry) -> object:
            made.append(registry)
            return sentinel

        self.patch(prometheus_client.twisted, "MetricsResource", fake)
        registry = CollectorRegistry()
        self.assertIs(metricsResource(registry), sentinel)
        self.assertEqual(made, [registry])
        self.assertIsInstance(metricsResource(registry, SynchronousThreads()), WSGIResource)


class LazyImportTests(StubTestCase):
    """
    prometheus_client is imported on the first scrape, not at start-up.
    """

    def test_startupDoesNotImportPrometheus(self) -> None:
        """
        Importing the plugin's modules and building the web service's
        resource tree leaves prometheus_client unimported, and
        twisted.web.static too when no static directory is served.
        """
        import os
        import subprocess
        import sys

        code = (
            "import sys\n"
            "import services.daemon.tap, services.web._service\n"
            "from services.config import WebConfig\n"
            "from services.daemon.values import webSettings\n"
            "from twisted.internet.task import Clock\n"
            "from tests.webfakes import fullRoot\n"
            "services.web._service.buildResource(webSettings(WebConfig()), fullRoot(), lambda: 0.0, Clock())\n"
            "print('prometheus_client' in sys.modules, 'twisted.web.static' in sys.modules)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=str(ROOT),
        )
        self.assertEqual(result.stdout.strip(), "False False", result.stderr)

    def test_builtOnce(self) -> None:
        """
        L{LazyMetricsResource} builds its registry and resource on the first
        request and reuses them.
        """
        built: list[object] = []
        real = metrics.makeRegistry

        def counting(*args: Any) -> Any:
            registry = real(*args)
            built.append(registry)
            return registry

        self.patch(metrics, "makeRegistry", counting)
        resource = metrics.LazyMetricsResource(fullRoot(), lambda: 5.0, SynchronousThreads())
        self.assertEqual(built, [])
        stub = StubTreq(resource)
        for _ in range(2):
            response, body = self.fetch(stub, "GET", "http://web/")
            self.assertEqual(response.code, 200)
            self.assertEqual(value(families(body.decode())["netservices_uptime_seconds"]), 5.0)
        self.assertEqual(len(built), 1)
