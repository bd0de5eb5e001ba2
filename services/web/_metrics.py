# -*- test-case-name: tests.unit.web.test_metrics -*-
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
that renders in the reactor's thread pool; L{StatsCollector} reads the
services' values on the reactor thread, which owns them.

prometheus_client is imported when first needed, not with this module: the
web service mounts a L{LazyMetricsResource}, which builds the registry on
the first scrape, so that start-up does not pay for the import.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadable import isInIOThread
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

from services import __version__, dataclass
from services.net.defaults import defaultReactor
from services.net.listener import isListening

__all__ = [
    "LazyMetricsResource",
    "Readings",
    "StatsCollector",
    "makeRegistry",
    "metricName",
    "metricsResource",
    "readTree",
]

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


@dataclass(frozen=True)
class Readings:
    """
    The values of one scrape, read on the reactor thread.

    @ivar uptime: seconds since the web service started.
    @ivar listening: for each service, whether it is listening.
    @ivar counters: for each service, its counters by name.
    @ivar gauges: for each service, which of its counters are current values.
    """

    uptime: float
    listening: dict[str, bool]
    counters: dict[str, dict[str, int]]
    gauges: dict[str, frozenset[str]]


def readTree(root: Any, uptime: Callable[[], float]) -> Readings:
    """
    Read what the metrics show from a service tree (on the reactor thread).
    """
    return Readings(
        uptime=uptime(),
        listening={service.name: isListening(service) for service in list(root)},
        counters={name: stats.snapshot() for name, stats in root.stats.items()},
        gauges={name: getattr(stats, "gauges", GAUGES) for name, stats in root.stats.items()},
    )


def _onReactorThread(reactor: Any, f: Callable[[], Readings]) -> Readings:
    """
    Call C{f} on the reactor thread and return its result: at once when
    already there (or in the main thread, where twistd runs the reactor),
    else through L{blockingCallFromThread}.
    """
    if isInIOThread() or threading.current_thread() is threading.main_thread():
        return f()
    readings: Readings = blockingCallFromThread(defaultReactor(reactor), f)
    return readings


class StatsCollector:
    """
    Collects the counters of every service of a netservices tree.

    prometheus_client's Twisted resource collects in the reactor's thread
    pool; the services' state belongs to the reactor thread, so the values
    are read there (L{readTree}) and only turned into metrics in the pool.

    @ivar root: the root service: its C{stats} maps service names to
        objects with C{snapshot() -> dict[str, int]} (and optionally a
        C{gauges} set of names), and its children are the services.
    @ivar uptime: returns the seconds since the service started.
    @ivar reactor: the reactor whose thread owns C{root}; L{None} for the
        global one.
    """

    def __init__(self, root: Any, uptime: Callable[[], float], reactor: Any = None) -> None:
        self.root = root
        self.uptime = uptime
        self.reactor = reactor

    def collect(self) -> Iterable[Metric]:
        """
        One metric family per counter, plus version, uptime and listening
        state.
        """
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        readings = _onReactorThread(self.reactor, lambda: readTree(self.root, self.uptime))
        info = InfoMetricFamily("netservices", "The netservices version.")
        info.add_metric([], {"version": __version__})
        yield info
        yield GaugeMetricFamily(
            "netservices_uptime_seconds",
            "Seconds since the web service started.",
            value=readings.uptime,
        )
        listening = GaugeMetricFamily(
            "netservices_listening",
            "Whether every listener of a service is listening (1) or not (0).",
            labels=["service"],
        )
        for service, up in readings.listening.items():
            listening.add_metric([service], 1 if up else 0)
        yield listening
        for service, counters in sorted(readings.counters.items()):
            gauges = readings.gauges[service]
            for counter, value in counters.items():
                name = metricName(service, counter)
                doc = f"{service}: {counter}."
                if counter in gauges:
                    yield GaugeMetricFamily(name, doc, value=value)
                else:
                    yield CounterMetricFamily(name, doc, value=value)


    def describe(self) -> list[Metric]:
        """
        Nothing: the metrics depend on the tree, so the registry does not
        check their names in advance (as for any collector without
        C{describe}).
        """
        return []


def makeRegistry(root: Any, uptime: Callable[[], float], reactor: Any = None) -> CollectorRegistry:
    """
    A registry of its own (not prometheus_client's global one) with a
    L{StatsCollector} over C{root} and the process, platform and garbage
    collector metrics.

    @param reactor: the reactor whose thread owns C{root}; L{None} for the
        global one.
    """
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(StatsCollector(root, uptime, reactor))
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
    from prometheus_client.exposition import make_wsgi_app
    from twisted.web.wsgi import WSGIResource

    threads = _ReactorThreadPool(reactor)
    return WSGIResource(reactor, threads, make_wsgi_app(registry))  # type: ignore[arg-type]


class LazyMetricsResource(Resource):
    """
    C{/metrics}: the L{metricsResource} of a L{makeRegistry}, both built
    (and prometheus_client imported) on the first request.

    @ivar resource: the resource requests go to once built, else L{None}.
    """

    isLeaf = True

    def __init__(self, root: Any, uptime: Callable[[], float], reactor: Any = None) -> None:
        Resource.__init__(self)
        self._make = lambda: metricsResource(makeRegistry(root, uptime, reactor), reactor)
        self.resource: IResource | None = None

    def render(self, request: IRequest) -> Any:
        """
        Render with the metrics resource, built now if this is the first
        request.
        """
        if self.resource is None:
            self.resource = self._make()
        return self.resource.render(request)
