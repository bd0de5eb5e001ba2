# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
TLS: the client's trust root for an extra CA bundle, and ALPN on Twisted
releases older than 26.4.

Twisted's public trust roots are either the platform's (L{platformTrust})
or a given list of certificates, not both; L{platformAndFileTrust} gives
both, by providing C{IOpenSSLTrustRoot}, an interface Twisted keeps in its
private C{_sslverify} module, whose one method is private by name too.

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

from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.interfaces import (
    IProtocolFactory,
    IProtocolNegotiationFactory,
    IReactorTime,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from services._twisted import TWISTED_VERSION, PrivateName

__all__ = ["ALPN_PER_CONNECTION", "PRIVATE_NAMES", "platformAndFileTrust", "serverTLSFactory"]

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


def serverTLSFactory(
    options: Any, protocolFactory: IProtocolFactory, clock: IReactorTime | None = None
) -> TLSMemoryBIOFactory:
    """
    A server-side L{TLSMemoryBIOFactory} over C{protocolFactory}, with the
    ALPN protocols it offers (HTTP/2 for a Site) set on C{options}'s context.

    @param options: L{twisted.internet.ssl.CertificateOptions}.
    @param clock: the clock the transports schedule their write flushes
        on; L{None} for the global reactor.
    """
    if not (ALPN_PER_CONNECTION and IProtocolNegotiationFactory.providedBy(protocolFactory)):
        return TLSMemoryBIOFactory(options, False, protocolFactory, clock)
    # Twisted < 26.4 would set the wrapped factory's protocols on the shared
    # context for every connection: a Site offers h2 whenever the h2 package
    # is installed, which would bypass our choice (HTTP/2 off, or only with
    # our limited connection).  The options' own protocols, which we chose,
    # are on the context already (CertificateOptions sets them when it makes
    # it), so the per-connection step is skipped.
    return _ALPNSetOnce(options, False, protocolFactory, clock)


@implementer(IOpenSSLTrustRoot)
class _PlatformAndFile:
    """
    Trust the platform's certificate authorities and those of one more
    PEM bundle, with pyOpenSSL's public calls.
    """

    def __init__(self, cafile: str) -> None:
        self._cafile = cafile

    def _addCACertsToContext(self, context: Any) -> None:
        # Twisted private: the one method of IOpenSSLTrustRoot, which
        # optionsForClientTLS calls on the context it makes.
        context.set_default_verify_paths()
        context.load_verify_locations(self._cafile)


def platformAndFileTrust(cafile: str) -> Any:
    """
    A trust root for L{twisted.internet.ssl.optionsForClientTLS}'s
    C{trustRoot}: the platform's certificate authorities and those of the
    PEM bundle C{cafile} (read when a connection's context is made).
    """
    return _PlatformAndFile(cafile)


def _isTrustRootInterface(value: Any) -> bool:
    from zope.interface.interface import InterfaceClass

    return isinstance(value, InterfaceClass) and "_addCACertsToContext" in value.names()


PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet._sslverify:IOpenSSLTrustRoot",
        "the interface (and its one method, _addCACertsToContext) of a trust root: "
        "platform CAs plus a --cacert bundle, for the client (platformAndFileTrust)",
        ("services._twisted.tls",),
        shape=_isTrustRootInterface,
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
