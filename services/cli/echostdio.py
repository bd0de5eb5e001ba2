# -*- test-case-name: tests.unit.echo.test_client_echo -*-
"""
C{netservices echo} without C{--count}: standard input through an echo
server, and the echo to standard output (over streams as it comes, over
datagrams and SEQPACKET one line a datagram or record).
"""

from __future__ import annotations

import argparse
from typing import IO, Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from services.cli import exits

__all__ = ["Stdio", "pipeStdio"]


@implementer(IHalfCloseableProtocol)
class Stdio(Protocol):
    """
    Standard input to the pipe, the echo to standard output.

    @ivar eof: fires when standard input ends.
    @ivar closed: fires once standard output is flushed and closed.
    """

    def __init__(self, datagrams: bool) -> None:
        self.pipe: Any = None
        self._datagrams = datagrams
        self._partial = b""
        self.eof: Deferred[None] = Deferred()
        self.closed: Deferred[None] = Deferred()

    def write(self, data: bytes) -> None:
        """
        Write an echo to standard output.
        """
        self.transport.write(data)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        """
        Send standard input on: as it comes over TCP, line by line over UDP.
        """
        if not self._datagrams:
            self.pipe.send(data)
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self.pipe.send(line + b"\n")

    def readConnectionLost(self) -> None:
        """
        Standard input ended.
        """
        if self._partial:
            self.pipe.send(self._partial)
            self._partial = b""
        self.eof.callback(None)

    def writeConnectionLost(self) -> None:
        """
        Standard output closed.
        """

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        """
        Both standard input and output are closed.
        """
        if not self.eof.called:
            self.eof.callback(None)
        if not self.closed.called:
            self.closed.callback(None)


async def pipeStdio(
    reactor: Any, args: argparse.Namespace, stdio: Stdio, pipe: Any, stderr: IO[str], where: str
) -> int:
    """
    Copy standard input to the echo server and its echo to standard output,
    until standard input ends and the echo is complete.
    """
    from twisted.internet.stdio import StandardIO

    stdio.pipe = pipe
    transport = StandardIO(stdio, reactor=reactor)
    await stdio.eof
    pipe.finish()
    waiting = pipe.done
    timer = reactor.callLater(args.timeout, waiting.cancel)
    code = exits.OK
    try:
        await waiting
    except CancelledError:
        unit = "datagrams" if args.udp or args.dgram else "bytes"
        stderr.write(
            f"netservices echo: {pipe.sent - pipe.received} of {pipe.sent} {unit} "
            f"not echoed by {where} within {args.timeout:g} s\n"
        )
        code = exits.TIMEOUT
    finally:
        if timer.active():
            timer.cancel()
    transport.loseConnection()
    await stdio.closed
    return code
