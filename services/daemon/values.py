# -*- test-case-name: tests.test_echovalues -*-
"""
The one place where the sections of C{tap.conf} become the values the
services take.

Each function maps one section (a frozen L{services.config} dataclass) to
the plain value its service is built from; the services never see a
section, a file or the environment.  Reading a file that a key names (the
qotd quotes) is done here too, once, when the service tree is built.
"""

from __future__ import annotations

from typing import Any

from services.config import EchoConfig, UdpEchoConfig, readQuotes
from services.echo import EchoSettings, SmallServiceSettings, UdpEchoSettings
from services.net.listen import SocketOptions

__all__ = ["echoSettings", "smallServiceSettings", "socketOptions", "udpEchoSettings"]


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


def echoSettings(section: EchoConfig) -> EchoSettings:
    """
    The echo service's settings from C{[echo]}.
    """
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
