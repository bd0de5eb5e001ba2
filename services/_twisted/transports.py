# -*- test-case-name: tests.test_twisted_internals -*-
"""
Twisted's transports (L{twisted.internet.abstract.FileDescriptor}, TCP, UDP
and UNIX ports and connections): the write buffers the fast paths flush
themselves, the constructors of adopted sockets, and the accept loop's log.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from services._twisted import PrivateName, isA

__all__ = ["ACCEPT_EVENTS", "PRIVATE_NAMES"]

#: How Twisted's accept loop starts the events it logs for every connection
#: it cannot keep (C{twisted.internet.tcp.Port.doRead}); checked against the
#: running Twisted's source by the test.
ACCEPT_EVENTS = ("EMFILE", "Re-reserving EMFILE", "Could not accept new connection")


# The instances below are only looked at, never started: any object does as
# their reactor (twisted.internet.testing would load TLS at start-up).


def _descriptor() -> Any:
    from twisted.internet.abstract import FileDescriptor

    return FileDescriptor(reactor=object())  # type: ignore[arg-type]


def _udpPort() -> Any:
    from twisted.internet.protocol import DatagramProtocol
    from twisted.internet.udp import Port

    return Port(0, DatagramProtocol(), reactor=object())


_WRITE_PATHS = ("services.nsepoll._reactor", "services.web._sendfile", "services.nsepoll.fastpath", "services.net.sendtimeout")

PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet.abstract:FileDescriptor._tempDataBuffer",
        "the small writes not yet joined into dataBuffer; the write-through and sendfile "
        "paths flush them before writing on their own",
        _WRITE_PATHS[:2],
        shape=isA(list),
        instance=_descriptor,
        fastPaths=('nsepoll', 'sendfile'),
    ),
    PrivateName(
        "twisted.internet.abstract:FileDescriptor._tempDataLen",
        "how many bytes _tempDataBuffer holds: part of what is still to send",
        _WRITE_PATHS,
        shape=isA(int),
        instance=_descriptor,
        fastPaths=('nsepoll', 'sendfile'),
    ),
    PrivateName(
        "twisted.internet.abstract:FileDescriptor._writeDisconnecting",
        "whether loseConnection waits for the buffer: a fast path must not write then",
        _WRITE_PATHS[:3],
        shape=isA(bool),
        instance=_descriptor,
        fastPaths=('nsepoll', 'sendfile'),
    ),
    PrivateName(
        "twisted.internet.tcp:Port._logger",
        "the listening port's Logger, replaced to demote accept-error lines",
        ("services.net.listener",),
        shape=isA(Logger),
    ),
    PrivateName(
        "twisted.internet.tcp:Port._fromListeningDescriptor",
        "adopting a listening TCP socket with the reactor's own connection class",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.unix:Port._fromListeningDescriptor",
        "adopting a listening UNIX socket (and keeping its file) with our classes",
        ("services.nsepoll._reactor", "services.net.listener"),
    ),
    PrivateName(
        "twisted.internet.udp:Port._fromListeningDescriptor",
        "adopting a bound UDP socket with the leaner datagram port",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.tcp:Server._fromConnectedSocket",
        "adopting a connected TCP socket with the reactor's own connection class",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.unix:Server._fromConnectedSocket",
        "adopting a connected UNIX socket with the reactor's own connection class",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.udp:_sockErrReadIgnore",
        "the recvfrom errors the lean UDP read loop ignores, as udp.Port does",
        ("services.nsepoll._reactor",),
        shape=isA(list, tuple, set, frozenset),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.udp:_sockErrReadRefuse",
        "the recvfrom errors the lean UDP read loop reports as connectionRefused",
        ("services.nsepoll._reactor",),
        shape=isA(list, tuple, set, frozenset),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.udp:Port._connectedAddr",
        "whether a UDP port is connected: sendto is skipped then",
        ("services.nsepoll._reactor",),
        shape=lambda value: value is None or isinstance(value, tuple),
        instance=_udpPort,
        fastPaths=('nsepoll',),
    ),
)
