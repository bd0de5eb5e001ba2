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

from typing import Any

from services.config import TLSConfig
from services.net.listen import SocketOptions
from services.net.tls import TLSFiles

__all__ = ["socketOptions", "tlsFiles"]


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
