# -*- test-case-name: tests.unit.net.test_systemd -*-
"""
The sockets systemd passed to this process (socket activation:
C{LISTEN_FDS}, C{LISTEN_FDNAMES}), as C{(name, fd)} pairs for the
C{systemd:} listeners to find theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["FIRST_INHERITED_FD", "namedSockets", "systemdSockets"]

#: The first file descriptor number of passed sockets: systemd's
#: C{SD_LISTEN_FDS_START}, and where a worker of C{--workers} finds the
#: sockets its parent hands down.
FIRST_INHERITED_FD = 3


def namedSockets(descriptors: Sequence[int], fdnames: str | None) -> tuple[tuple[str, int], ...]:
    """
    Pair systemd's descriptors with the names in C{LISTEN_FDNAMES}.  Without
    names (systemd before 227, other service managers), or with a count that
    does not match, every socket is named C{"unknown"}, as
    C{sd_listen_fds_with_names} does, so C{systemd:index=N} still works.
    """
    names = (fdnames or "").split(":")
    if len(names) != len(descriptors):
        names = ["unknown"] * len(descriptors)
    return tuple(zip(names, descriptors))


class _Unbound:
    """
    Stands in for a reactor while Twisted's systemd parser is asked for a
    descriptor.
    """


def systemdSockets(environ: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    """
    The sockets systemd passed to this process, as C{(name, fd)}.

    Twisted reads C{LISTEN_PID} and C{LISTEN_FDS} when
    L{twisted.internet.endpoints} is first imported, and removes them from
    the environment then (twistd imports it while it looks for plugins), so
    the descriptors come from Twisted's C{systemd:} parser; their names from
    C{LISTEN_FDNAMES}, which it leaves in place.

    @param environ: the process environment (for C{LISTEN_FDNAMES}).
    """
    # Imported here: asking Twisted's parsers loads every endpoint parser
    # plugin, which a process without a systemd: listener has no use for.
    from twisted.internet.endpoints import serverFromString

    descriptors: list[int] = []
    while True:
        try:
            endpoint = serverFromString(_Unbound(), f"systemd:domain=INET:index={len(descriptors)}")
        except IndexError:
            break
        descriptors.append(endpoint.fileno)
    return namedSockets(descriptors, environ.get("LISTEN_FDNAMES"))
