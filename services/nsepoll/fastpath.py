# -*- test-case-name: tests.unit.nsepoll.test_fastpath -*-
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
one it may be used with (checked once, when the connection is made).
Every guarantee of the transport is kept:

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

from typing import Any

from twisted.internet import tcp

# It reads the transport's write buffer, a Twisted internal: it lives with
# the others, and is called straight from there (no call of ours between).
from services._twisted.transports import writeDirectly

__all__ = ["canWriteDirectly", "writeDirectly"]

try:
    from twisted.internet import unix
except ImportError:  # pragma: no cover (platforms without AF_UNIX)
    _PLAIN: tuple[type, ...] = (tcp.Server,)
else:
    _PLAIN = (tcp.Server, unix.Server)


def canWriteDirectly(transport: Any) -> bool:
    """
    Whether C{transport} is a plain socket connection of the kind
    L{writeDirectly} knows: exactly Twisted's TCP or UNIX server transport
    (not a subclass, a wrapper or a fake), or a subclass that declares
    itself equivalent with a true C{_plainSocketTransport} class attribute
    (the nsepoll reactor's connections, L{services._twisted.reactor.FlushMixin}).
    """
    cls = type(transport)
    return cls in _PLAIN or getattr(cls, "_plainSocketTransport", False) is True
