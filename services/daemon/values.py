# -*- test-case-name: tests.test_daemonvalues -*-
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
from services.net.listen import SocketOptions
from services.net.tls import TLSFiles

if TYPE_CHECKING:
    from services.daemon.sharedlisteners import SharedListener
    from services.daemon.workers import WorkerPool

__all__ = ["STREAM_SERVICES", "socketOptions", "streamListeners", "tlsFiles", "workerPool"]


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
