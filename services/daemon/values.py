# -*- test-case-name: tests.test_web -*-
"""
The one place where configuration sections become the values services
take.

Services, protocols and listeners never see a section of tap.conf: the
daemon reads each section here and hands them frozen values (or keyword
arguments).  One function per kind of value, named after what it builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.net.listen import SocketOptions

if TYPE_CHECKING:
    from services.config import WebConfig
    from services.web import WebSettings

__all__ = ["socketOptions", "webSettings"]


def socketOptions(section: Any) -> SocketOptions:
    """
    The socket options of a service section that has C{backlog}, C{sndbuf},
    C{rcvbuf} or C{reuseport} keys (absent keys keep their defaults).
    """
    defaults = SocketOptions()
    return SocketOptions(
        backlog=getattr(section, "backlog", defaults.backlog),
        sndbuf=getattr(section, "sndbuf", defaults.sndbuf),
        rcvbuf=getattr(section, "rcvbuf", defaults.rcvbuf),
        reuseport=getattr(section, "reuseport", defaults.reuseport),
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
