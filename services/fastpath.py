# -*- test-case-name: tests.test_fastpath -*-
"""
Writing straight to the socket when nothing is waiting to be sent.

Twisted's stream transports never send in C{write()}: they append the bytes
to a buffer, register for writability (one C{epoll_ctl}), and send on the
next reactor turn (another C{epoll_ctl} to unregister).  For a protocol that
answers each read with a small write, such as an echo, that doubles the
system calls and delays every answer by a loop turn.

L{writeDirectly} is a C{write} for such a protocol that sends at once when
the transport's buffer is empty, and otherwise hands the bytes to the
transport's own C{write}; L{canWriteDirectly} says whether a transport is
one it may be used with (checked once, when the connection is made).  Every guarantee of the transport is kept:

  - ordering: bytes go to the socket directly only when nothing is queued
    before them;
  - backpressure: whatever the kernel does not take at once is queued by
    the transport, which pauses its producer when its buffer fills up, as
    usual;
  - errors: a failing C{send()} is not reported from C{write}; the bytes go
    to the transport, whose next write attempt finds and reports the error
    through C{connectionLost}, as usual;
  - only plain TCP and UNIX server connections of Twisted's own reactors
    take the direct path: TLS connections (whose transport is a TLS
    protocol, or whose C{TLS} flag is set by C{startTLS}), PROXY-protocol
    wrappers, in-memory test transports and any other transport get the
    transport's C{write} itself.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.internet import tcp

__all__ = ["DirectWriteMixin", "canWriteDirectly", "writeDirectly"]

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    _PLAIN: tuple[type, ...] = (tcp.Server,)
else:
    _PLAIN = (tcp.Server, unix.Server)


def canWriteDirectly(transport: Any) -> bool:
    """
    Whether C{transport} is a plain socket connection of the kind
    L{writeDirectly} knows (exactly Twisted's TCP or UNIX server transport,
    not a subclass, a wrapper or a fake).
    """
    return type(transport) in _PLAIN


def writeDirectly(transport: Any, data: bytes) -> None:
    """
    Write C{data} to C{transport}, a transport for which
    L{canWriteDirectly} is true: send it now if nothing is queued, and queue
    whatever the kernel does not take.
    """
    if (
        transport._tempDataLen
        or transport.dataBuffer
        or transport.TLS
        or transport.disconnecting
        or transport._writeDisconnecting
        or not transport.connected
        or type(data) is not bytes
    ):
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except OSError:
        # EAGAIN, or an error that the transport's next send reports.
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])



class DirectWriteMixin:
    """
    Mix into a subclass of Twisted's TCP or UNIX connection (before it) to
    give every protocol on it the direct path of L{writeDirectly}.
    """

    def write(self, data: bytes) -> None:
        """
        Send C{data} now if nothing is queued; queue what the kernel does
        not take.
        """
        t: Any = self
        if (
            t._tempDataLen
            or t.dataBuffer
            or t.TLS
            or t.disconnecting
            or t._writeDisconnecting
            or not t.connected
            or type(data) is not bytes
        ):
            super().write(data)  # type: ignore[misc]
            return
        if not data:
            return
        try:
            sent = t.socket.send(data)
        except OSError:
            sent = 0
        if sent < len(data):
            super().write(data[sent:])  # type: ignore[misc]

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        """
        Like L{write}, for several pieces.
        """
        t: Any = self
        if t._tempDataLen or t.dataBuffer or t.TLS:
            super().writeSequence(iovec)  # type: ignore[misc]
            return
        iovec = list(iovec)
        if all(type(piece) is bytes for piece in iovec):
            self.write(b"".join(iovec))
        else:
            super().writeSequence(iovec)  # type: ignore[misc]
