# -*- test-case-name: tests.test_twisted_internals -*-
"""
TLS: the trust-root interface the client implements, and ALPN on Twisted
releases older than 26.4.

Before 26.4, L{TLSMemoryBIOFactory} set the wrapped factory's ALPN
protocols on the shared context after creating each connection, which
pyOpenSSL 25.1 and newer refuse ("Context has already been used to create
a Connection, it cannot be mutated again"): every TLS connection to the web
service failed.  L{serverTLSFactory} sets them once, before the first
connection, on those releases: the protocols netservices chose for the
listener (HTTP/2 only with its limited connection), never the wrapped
Site's own list.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IProtocolFactory, IProtocolNegotiationFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from services._twisted import TWISTED_VERSION, PrivateName

__all__ = ["ALPN_PER_CONNECTION", "PRIVATE_NAMES", "serverTLSFactory"]

#: Whether this Twisted sets ALPN protocols on the context per connection.
ALPN_PER_CONNECTION = TWISTED_VERSION < (26, 4, 0)


class _ALPNSetOnce(TLSMemoryBIOFactory):
    """
    A server TLS factory whose context got its ALPN protocols before the
    first connection.
    """

    def _applyProtocolNegotiation(self, connection: Any) -> None:
        # Twisted private: the per-connection ALPN step of Twisted < 26.4,
        # replaced by setting the protocols once in serverTLSFactory.
        pass


def serverTLSFactory(options: Any, protocolFactory: IProtocolFactory) -> TLSMemoryBIOFactory:
    """
    A server-side L{TLSMemoryBIOFactory} over C{protocolFactory}, with the
    ALPN protocols it offers (HTTP/2 for a Site) set on C{options}'s context.

    @param options: L{twisted.internet.ssl.CertificateOptions}.
    """
    if not (ALPN_PER_CONNECTION and IProtocolNegotiationFactory.providedBy(protocolFactory)):
        return TLSMemoryBIOFactory(options, False, protocolFactory)
    # Twisted < 26.4 would set the wrapped factory's protocols on the shared
    # context for every connection: a Site offers h2 whenever the h2 package
    # is installed, which would bypass our choice (HTTP/2 off, or only with
    # our limited connection).  The options' own protocols, which we chose,
    # are on the context already (CertificateOptions sets them when it makes
    # it), so the per-connection step is skipped.
    return _ALPNSetOnce(options, False, protocolFactory)


def _isInterface(value: Any) -> bool:
    from zope.interface.interface import InterfaceClass

    return isinstance(value, InterfaceClass)


PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet._sslverify:IOpenSSLTrustRoot",
        "the interface of a trust root (platform CAs plus a --cacert bundle) for the client",
        ("services.client._agent",),
        shape=_isInterface,
    ),
) + (
    (
        PrivateName(
            "twisted.protocols.tls:TLSMemoryBIOFactory._applyProtocolNegotiation",
            "the per-connection ALPN step, skipped once the context has the protocols",
            ("services._twisted.tls",),
            verified=("25.5.0",),
        ),
    )
    if ALPN_PER_CONNECTION
    else ()
)
