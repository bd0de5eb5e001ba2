# -*- test-case-name: tests.unit.daemon.test_values -*-
"""
The one place where configuration sections become the values services
take.

Services, protocols and listeners never see a section of tap.conf: the
daemon reads each section here and hands them frozen values (or keyword
arguments).  One function per kind of value, named after what it builds;
a service's own values sit beside the others, so that a key of tap.conf
is read in one place only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.config import SMALL_SERVICES, Config, TLSConfig, formatConfig
from services.net.sockets import SocketOptions
from services.net.tls import TLSFiles

if TYPE_CHECKING:
    from services.config import (
        DiscoveryConfig,
        EchoConfig,
        MDNSConfig,
        UdpEchoConfig,
        WebConfig,
    )
    from services.daemon.sharedlisteners import SharedListener
    from services.daemon.workerprocess import WorkerSpec
    from services.daemon.workers import WorkerPool
    from services.discovery import DiscoverySettings, MDNSSettings
    from services.echo import EchoSettings, SmallServiceSettings, UdpEchoSettings
    from services.web import WebSettings, WorkerReports

__all__ = [
    "STREAM_SERVICES",
    "discoverySettings",
    "echoSettings",
    "mdnsSettings",
    "smallServiceSettings",
    "socketOptions",
    "streamListeners",
    "tlsFiles",
    "udpEchoSettings",
    "webSettings",
    "webWorkerReports",
    "workerPool",
]


def socketOptions(section: Any) -> SocketOptions:
    """
    The socket options of a stream service's section: its C{backlog},
    C{sndbuf}, C{rcvbuf} and C{reuseport} keys.  A section without one of
    them (C{[web]} has only C{backlog}) keeps L{SocketOptions}' default
    for it.

    @param section: a section of L{services.config.Config} with a
        C{listen} key (C{[echo]}, C{[web]}, a small service's).
    """
    defaults = SocketOptions()
    return SocketOptions(
        backlog=getattr(section, "backlog", defaults.backlog),
        sndbuf=getattr(section, "sndbuf", defaults.sndbuf),
        rcvbuf=getattr(section, "rcvbuf", defaults.rcvbuf),
        reuseport=getattr(section, "reuseport", defaults.reuseport),
    )


def tlsFiles(section: TLSConfig) -> TLSFiles:
    """
    The certificate, key and minimum version every C{ssl:} listener of the
    process uses, from C{[tls]}.
    """
    return TLSFiles(
        certificate=section.certificate,
        key=section.key,
        minimumVersion=section.minimum_version,
    )


#: The sections whose C{listen} endpoints are stream listeners, which the
#: workers of C{--workers} share.
STREAM_SERVICES = ("echo", "web", *SMALL_SERVICES)


def streamListeners(config: Config) -> tuple[SharedListener, ...]:
    """
    Every stream listener of the enabled services, with its section's
    socket options (and, for the web service's, its access log), in the
    order of L{STREAM_SERVICES}.
    """
    # Imported here, as in workerPool: an instance without workers never
    # loads the supervisor's modules.
    from services.daemon.sharedlisteners import SharedListener

    found: list[SharedListener] = []
    for name in STREAM_SERVICES:
        section = getattr(config, name)
        if not section.enabled:
            continue
        options = socketOptions(section)
        accessLog = getattr(section, "access_log", "")
        found.extend(
            SharedListener(name, description, options, accessLog) for description in section.listen
        )
    return tuple(found)


def workerPool(config: Config) -> WorkerPool:
    """
    The workers of C{[netservices] workers}: how many, the listeners they
    share, and their tap.conf, which is the parent's whole configuration
    (flags included) written out.
    """
    from services.daemon.workers import WorkerPool

    return WorkerPool(
        count=config.netservices.workers,
        listeners=streamListeners(config),
        tapConf=formatConfig(config),
        shutdownGrace=config.netservices.shutdown_grace,
    )


def webSettings(section: WebConfig) -> WebSettings:
    """
    What the web service takes, from C{[web]} (all of it but C{enabled},
    which decides whether it runs).
    """
    # Imported here: the web package (twisted.web) loads only when it runs.
    from services.web import HTTPLimits, WebSettings

    limits = HTTPLimits(
        headerTimeout=section.header_timeout,
        idleTimeout=section.idle_timeout,
        maxBody=section.max_body,
        maxConnections=section.max_connections,
        maxConnectionsPerPeer=section.max_connections_per_peer,
        sendTimeout=section.send_timeout,
        serverHeader=section.server_header.encode("ascii"),
        maxStreams=section.max_streams,
    )
    return WebSettings(
        listen=section.listen,
        limits=limits,
        staticDir=section.static_dir or None,
        staticMount=section.static_mount,
        listing=section.listing,
        followSymlinks=section.follow_symlinks,
        accessLog=section.access_log or None,
        trustedProxies=section.trusted_proxies,
        http2=section.http2,
        socketOptions=socketOptions(section),
    )


def webWorkerReports(worker: WorkerSpec | None) -> WorkerReports | None:
    """
    What the web pages of worker process C{worker} show of the other
    processes: every worker's counters, and the services of the parent as
    the supervisor writes them to the runtime directory; L{None} outside a
    worker process.
    """
    if worker is None:
        return None
    from functools import partial

    from services.daemon.workerprocess import workersDocument
    from services.web import WorkerReports
    from services.web._state import readParentState

    return WorkerReports(
        workers=partial(workersDocument, worker),
        parentState=partial(readParentState, worker.runtime),
    )


def discoverySettings(section: DiscoveryConfig) -> DiscoverySettings:
    """
    What the discovery service takes, from C{[discovery]} (all of it but
    C{enabled}, which decides whether it runs).
    """
    # Imported here: a service's package loads only when it runs.
    from services.discovery import DiscoverySettings

    return DiscoverySettings(
        port=section.port,
        interface=section.interface,
        broadcast=section.broadcast,
        ipv6=section.ipv6,
        interval=section.interval,
        ttl=section.ttl,
        name=section.name,
        sourceRate=section.source_rate,
        sourceBurst=section.source_burst,
        globalRate=section.global_rate,
        maxPeerTtl=section.max_peer_ttl,
        maxPeersPerSource=section.max_peers_per_source,
        maxPortsPerSource=section.max_ports_per_source,
    )


def mdnsSettings(section: MDNSConfig, fallbackName: str = "") -> MDNSSettings:
    """
    What the mDNS service takes, from C{[mdns]}.

    @param fallbackName: the name when C{[mdns] name} is empty (C{[discovery]
        name}); when that is empty too, the service claims the host name.
    """
    from services.discovery import MDNSSettings

    return MDNSSettings(
        name=section.name or fallbackName,
        interfaces=tuple(section.interfaces),
        families=tuple(4 if f == "ipv4" else 6 for f in section.families),
    )


def echoSettings(section: EchoConfig) -> EchoSettings:
    """
    The echo service's settings from C{[echo]}.
    """
    from services.echo import EchoSettings

    return EchoSettings(
        listen=section.listen,
        idleTimeout=section.idle_timeout,
        sendTimeout=section.send_timeout,
        maxConnections=section.max_connections,
        noDelay=section.nodelay,
        trustedProxies=section.trusted_proxies,
        socketOptions=socketOptions(section),
    )


def udpEchoSettings(section: UdpEchoConfig) -> UdpEchoSettings:
    """
    The UDP echo service's settings from C{[udp-echo]}.
    """
    from services.echo import UdpEchoSettings

    return UdpEchoSettings(
        listen=section.listen,
        sourceRate=section.source_rate,
        sourceBurst=section.source_burst,
        globalRate=section.global_rate,
    )


def smallServiceSettings(name: str, section: Any) -> SmallServiceSettings:
    """
    Small service C{name}'s settings from its section (C{[discard]},
    C{[chargen]}, C{[daytime]}, C{[time]} or C{[qotd]}): discard's timeout
    is its C{idle_timeout}, the others' their C{send_timeout}; qotd's
    quotes are read from its C{quotes} file, if it names one.

    @raise OSError: when the quotes file cannot be read.
    @raise ValueError: when it holds no usable quote.
    """
    from services.config import readQuotes
    from services.echo import SmallServiceSettings

    defaults = SmallServiceSettings()
    quotes: str = getattr(section, "quotes", "")
    return SmallServiceSettings(
        listen=section.listen,
        timeout=section.idle_timeout if name == "discard" else section.send_timeout,
        maxConnections=section.max_connections,
        socketOptions=socketOptions(section),
        rate=getattr(section, "rate", defaults.rate),
        quotes=readQuotes(quotes) if quotes else (),
        udp=getattr(section, "udp", ()),
        sourceRate=getattr(section, "source_rate", defaults.sourceRate),
        sourceBurst=getattr(section, "source_burst", defaults.sourceBurst),
        globalRate=getattr(section, "global_rate", defaults.globalRate),
    )
