# -*- test-case-name: tests.integration.test_workers -*-
"""
The listeners a parent of C{--workers} binds once and hands down to its
workers: what each is (L{SharedListener}), the checks that spare every
worker a mistake it would die of (L{checkForWorkers}), and binding one
without accepting on it (L{bindShared}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from services.net.descriptions import parseListen
from services.net.endpoints import (
    ListenContext,
    SystemdEndpoint,
    socketEndpoint,
    socketFamily,
    tlsFiles,
)
from services.net.listener import closeAtOnce
from services.net.sockets import SocketOptions, applyBufferSizes
from services.net.tls import certificateOptions

__all__ = ["SharedListener", "bindShared", "checkForWorkers"]


@dataclass(frozen=True)
class SharedListener:
    """
    One stream listener the parent binds and its workers accept on.

    @ivar service: the service it belongs to (C{"echo"}, C{"web"}...).
    @ivar description: its endpoint string.
    @ivar options: its service's socket options.
    @ivar accessLog: the access log a worker opens to serve it (the web
        service's), or empty.
    """

    service: str
    description: str
    options: SocketOptions
    accessLog: str = ""


class _Unused(Factory):
    """
    The factory of the parent's listening ports, which never accept.
    """

    noisy = False

    def logPrefix(self) -> str:
        return "shared listener"


def checkForWorkers(listener: SharedListener, context: ListenContext) -> None:
    """
    Check now what each worker will need to serve C{listener}, so that a
    mistake stops the parent at start-up, with one line, instead of every
    worker, over and over: its certificate and key (C{ssl:}), and its
    access log.

    @raise Exception: a L{TLSError} or L{ValueError} saying what is wrong.
    """
    spec = parseListen(listener.description)
    if spec.tls is not None:
        certificateOptions(tlsFiles(spec, context))
    if listener.accessLog:
        from services.web._accesslog import AccessLogFile

        try:
            AccessLogFile(listener.accessLog).close()
        except OSError as e:
            raise ValueError(
                f"cannot open the access log {listener.accessLog}: "
                f"{(e.strerror or str(e)).lower()}"
            ) from None


def bindShared(
    listener: SharedListener, reactor: Any, context: ListenContext
) -> tuple[int, IListeningPort | None]:
    """
    Bind C{listener}'s socket (or find the one systemd passed) without
    accepting on it: the workers accept, not the parent.

    @param reactor: the reactor to listen with.
    @return: the socket's descriptor, and the port to close when the
        parent stops (L{None} for systemd's socket, which is systemd's).
    @raise Exception: whatever the endpoint raises, or L{ValueError} for a
        listener that has no socket to share.
    """
    spec = parseListen(listener.description)
    if spec.kind == "systemd":
        fileno = SystemdEndpoint(reactor, spec.socket, context.systemd).fileno()
        socketFamily(fileno)
        return fileno, None
    result: list[Any] = []
    socketEndpoint(reactor, spec, listener.options, context).listen(_Unused()).addBoth(
        result.append
    )
    [port] = result
    if isinstance(port, Failure):
        port.raiseException()
    if not callable(getattr(port, "fileno", None)):
        closeAtOnce(port)
        raise ValueError("workers can only share socket listeners")
    port.stopReading()  # the workers accept, not the parent
    applyBufferSizes(port, listener.options)
    return int(port.fileno()), port
