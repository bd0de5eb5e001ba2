# -*- test-case-name: tests.unit.web.test_http2 -*-
"""
L{HTTP2Factory}: the factory of an C{ssl:} web listener that offers HTTP/2.
Each connection starts as the site's HTTP/1.1 channel behind a
L{NegotiatingChannel}, which hands the connection over to a
L{LimitedH2Connection} when ALPN chose C{h2} (see L{services.web._http2}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IAddress, IProtocol
from twisted.internet.protocol import Factory
from twisted.python.components import proxyForInterface

from services.web._channel import LimitedChannel
from services.web._http2 import LimitedH2Connection
from services.web._site import LimitedSite

__all__ = ["HTTP2Factory", "NegotiatingChannel"]


class NegotiatingChannel(proxyForInterface(IProtocol, "_channel")):  # type: ignore[misc]
    """
    A connection of an C{ssl:} listener: the site's L{LimitedChannel} until
    the first bytes after the handshake show that ALPN chose C{h2}; then a
    L{LimitedH2Connection} takes over the connection, its place in the
    site's counters and registry, and the transport.
    """

    _negotiated = False

    def __init__(self, channel: LimitedChannel) -> None:
        self._channel = channel

    def dataReceived(self, data: bytes) -> None:
        """
        On the first bytes, switch to HTTP/2 if ALPN chose it.
        """
        if not self._negotiated:
            self._negotiated = True
            if getattr(self._channel.transport, "negotiatedProtocol", None) == b"h2":
                self._switch()
        self._channel.dataReceived(data)

    def _switch(self) -> None:
        old: LimitedChannel = self._channel
        site = old.factory
        transport = old.transport
        # The producer HTTPChannel registered with its transport, which the
        # new connection takes over (as Twisted's own switch does).
        networkProducer: Any = old.networkProducer
        networkProducer.unregisterProducer()
        old.abandon()
        new: Any = LimitedH2Connection(site.reactor)
        new.requestFactory = old.requestFactory
        new.site = site
        new.factory = site
        new.timeOut = site.timeOut
        new.callLater = site.reactor.callLater
        new.peer, new.peerHost = old.peer, old.peerHost
        new.connectedAt, new.bytesIn = old.connectedAt, old.bytesIn
        site.channels.pop(old, None)
        site.channels[new] = None  # type: ignore[index]
        self._channel = new
        new.makeConnection(transport)
        networkProducer.registerProducer(new, True)


class HTTP2Factory(Factory):
    """
    The factory of an C{ssl:} listener that offers HTTP/2: the site's
    channels, each ready to switch to L{LimitedH2Connection} (see
    L{NegotiatingChannel}).

    @ivar site: the L{LimitedSite} that counts, limits and serves.
    """

    noisy = False

    def __init__(self, site: LimitedSite) -> None:
        self.site = site

    def doStart(self) -> None:
        """
        Start the site (its access log) with this listener.
        """
        self.site.doStart()

    def doStop(self) -> None:
        """
        Stop the site with this listener.
        """
        self.site.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """
        A site's channel behind a L{NegotiatingChannel}, or L{None} when a
        connection cap is reached.
        """
        channel = self.site.buildProtocol(addr)
        if channel is None:
            return None
        return NegotiatingChannel(channel)
