# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics of every service, read from the counters the services
already keep (C{root.stats}), so the data paths pay nothing more.

Each counter C{c} of service C{s} becomes C{netservices_<s>_<c>} (camelCase
turned into snake_case, dashes into underscores): a counter, exposed with the
C{_total} suffix, except current values (C{current}, or the names a stats
class lists in its C{gauges} attribute), which are gauges.  Besides these:
C{netservices_info} (the version), C{netservices_uptime_seconds},
C{netservices_listening} (1 or 0 per service), and prometheus_client's
process, platform and garbage-collector metrics.

prometheus_client serves them through its Twisted resource, a WSGI resource
that renders in the reactor's thread pool.  L{StatsCollector} therefore only
reads integer snapshots and attributes, which is safe from another thread.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.web.resource import IResource

from services import __version__
from services.listen import isListening

__all__ = ["StatsCollector", "makeRegistry", "metricName", "metricsResource"]

#: Counter names that are current values, whatever the service.
GAUGES = frozenset({"current"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metricName(service: str, counter: str) -> str:
    """
    The metric name of one counter: C{metricName("echo", "bytesIn")} is
    C{"netservices_echo_bytes_in"}.
    """
    snake = _CAMEL.sub("_", counter).lower()
    return _INVALID.sub("_", f"netservices_{service}_{snake}")


class StatsCollector(Collector):
    """
    Collects the counters of every service of a netservices tree.

    @ivar root: the root service: its C{stats} maps service names to
        objects with C{snapshot() -> dict[str, int]}, and its children are
        the services.
    @ivar uptime: returns the seconds since the service started.
    """

    def __init__(self, root: Any, uptime: Callable[[], float]) -> None:
        self.root = root
        self.uptime = uptime

    def collect(self) -> Iterable[Metric]:
        """
        One metric family per counter, plus version, uptime and listening
        state.
        """
        info = InfoMetricFamily("netservices", "The netservices version.")
        info.add_metric([], {"version": __version__})
        yield info
        yield GaugeMetricFamily(
            "netservices_uptime_seconds",
            "Seconds since the web service started.",
            value=self.uptime(),
        )
        listening = GaugeMetricFamily(
            "netservices_listening",
            "Whether every listener of a service is listening (1) or not (0).",
            labels=["service"],
        )
        for service in list(self.root):
            listening.add_metric([service.name], 1 if isListening(service) else 0)
        yield listening
        for service, counters in sorted(self.root.stats.items()):
            gauges = getattr(counters, "gauges", GAUGES)
            for counter, value in counters.snapshot().items():
                name = metricName(service, counter)
                doc = f"{service}: {counter}."
                if counter in gauges:
                    yield GaugeMetricFamily(name, doc, value=value)
                else:
                    yield CounterMetricFamily(name, doc, value=value)


def makeRegistry(root: Any, uptime: Callable[[], float]) -> CollectorRegistry:
    """
    A registry of its own (not prometheus_client's global one) with a
    L{StatsCollector} over C{root} and the process, platform and garbage
    collector metrics.
    """
    registry = CollectorRegistry()
    registry.register(StatsCollector(root, uptime))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class _ReactorThreadPool:
    """
    The thread pool of a reactor, looked up when first used, for
    L{twisted.web.wsgi.WSGIResource}.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def callInThread(self, f: Callable[..., object], *args: object, **kwargs: object) -> None:
        """
        Run C{f} in the reactor's thread pool.
        """
        self._reactor.callInThread(f, *args, **kwargs)


def metricsResource(registry: CollectorRegistry, reactor: Any = None) -> IResource:
    """
    The resource that serves C{registry} in the Prometheus text format (or
    OpenMetrics when asked for, gzip-compressed when accepted).

    With the global reactor (C{reactor} L{None}) it is prometheus_client's
    own L{prometheus_client.twisted.MetricsResource}; with another reactor,
    the same WSGI application on that reactor's threads.
    """
    if reactor is None:
        from prometheus_client.twisted import MetricsResource

        resource: IResource = MetricsResource(registry)
        return resource
    from twisted.web.wsgi import WSGIResource

    return WSGIResource(reactor, _ReactorThreadPool(reactor), make_wsgi_app(registry))  # type: ignore[arg-type]
