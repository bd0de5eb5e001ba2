# -*- test-case-name: tests.unit.echo.test_echo -*-
"""
The values the echo family's services are built from: where they listen,
their timeouts, caps and rate limits, as plain frozen values.

A service takes one of these, never a section of C{tap.conf}: the daemon
maps each section to its value (L{services.daemon.values}), and an
application of your own builds one directly::

    from services.echo import EchoSettings, makeEchoService

    service = makeEchoService(EchoSettings(listen=("tcp:7007:interface=127.0.0.1",)))

The defaults are those of the daemon's own configuration.
"""

from __future__ import annotations


from services import dataclass
from services.net.sockets import SocketOptions

__all__ = ["EchoSettings", "SmallServiceSettings", "UdpEchoSettings"]


@dataclass(frozen=True)
class EchoSettings:
    """
    What the stream echo service (L{services.echo.makeEchoService}) is
    built from.

    @ivar listen: the server endpoint strings to listen on.
    @ivar idleTimeout: seconds of silence before a connection is closed;
        L{None} or 0 for never.
    @ivar sendTimeout: seconds a peer may read none of its echo before its
        connection is dropped; L{None} or 0 for never.
    @ivar maxConnections: connections open at once, beyond which new ones
        are closed; L{None} or 0 for no limit.
    @ivar noDelay: whether TCP connections get C{TCP_NODELAY}.
    @ivar trustedProxies: the addresses and networks a C{haproxy:} listener
        takes a PROXY header from; L{None} for loopback only.
    @ivar socketOptions: the listen queue, buffer sizes and
        C{SO_REUSEPORT} of every listener.
    """

    listen: tuple[str, ...] = ("tcp:8007:interface=127.0.0.1",)
    idleTimeout: float | None = 300.0
    sendTimeout: float | None = 60.0
    maxConnections: int | None = 10000
    noDelay: bool = True
    trustedProxies: tuple[str, ...] | None = None
    socketOptions: SocketOptions = SocketOptions(backlog=1024)


@dataclass(frozen=True)
class UdpEchoSettings:
    """
    What the datagram echo service (L{services.echo.makeUdpEchoService})
    is built from.

    @ivar listen: C{udp:}, C{udp6:} and C{unixgram:} endpoints.
    @ivar sourceRate: datagrams per second echoed to one source, on average.
    @ivar sourceBurst: datagrams one source may get echoed at once.
    @ivar globalRate: datagrams per second echoed to all sources together.
    """

    listen: tuple[str, ...] = ("udp:8007:interface=127.0.0.1",)
    sourceRate: float = 100.0
    sourceBurst: int = 200
    globalRate: float = 2000.0


@dataclass(frozen=True)
class SmallServiceSettings:
    """
    What one small service (discard, chargen, daytime, time or qotd;
    L{services.echo.makeSmallService} and
    L{services.echo.makeSmallUdpService}) is built from.

    @ivar listen: the server endpoint strings of its stream listeners.
    @ivar timeout: discard's idle timeout, chargen's send timeout (paused
        for that long), or the seconds daytime, time and qotd have to send
        their answer; L{None} or 0 for never.
    @ivar maxConnections: connections open at once, beyond which new ones
        are closed; L{None} or 0 for no limit.
    @ivar socketOptions: the listen queue, buffer sizes and
        C{SO_REUSEPORT} of every stream listener.
    @ivar rate: chargen's bytes per second per connection; 0 for no limit.
    @ivar quotes: qotd's quotes, one a day in turn; none for the built-in
        one.
    @ivar udp: the C{udp:} endpoints it also answers on (not chargen's).
    @ivar sourceRate: datagrams per second answered to one source, on
        average.
    @ivar sourceBurst: datagrams one source may get answered at once.
    @ivar globalRate: datagrams per second answered to all sources together.
    """

    listen: tuple[str, ...] = ()
    timeout: float | None = None
    maxConnections: int | None = 1000
    socketOptions: SocketOptions = SocketOptions(backlog=1024)
    rate: int = 0
    quotes: tuple[str, ...] = ()
    udp: tuple[str, ...] = ()
    sourceRate: float = 10.0
    sourceBurst: int = 20
    globalRate: float = 500.0
