# -*- test-case-name: tests.unit.client.test_proxy -*-
"""
The L{IAgent} under the client: one persistent connection pool, TLS with
hostname verification, and proxies.

L{makeAgent} returns an agent that sends each request the right way:

  - directly, through L{twisted.web.client.Agent} with an endpoint per
    origin (L{twisted.internet.endpoints.HostnameEndpoint}, wrapped in TLS
    for https);
  - plain http through a proxy, with L{twisted.web.client.ProxyAgent};
  - https through a proxy, with TLS to the origin inside a C{CONNECT}
    tunnel (L{services.client._tunnel.TunnelEndpoint}).

All three share one L{HTTPConnectionPool}, so connections (tunnels too)
are reused across requests, and every connection holds the heads of its
responses to L{services.client._head.HeadLimits} (300 KiB by default, as
curl).
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.logger import Logger
from twisted.web.client import URI, Agent, HTTPConnectionPool, ProxyAgent
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import (
    IAgent,
    IAgentEndpointFactory,
    IBodyProducer,
    IPolicyForHTTPS,
    IResponse,
)
from zope.interface import implementer

from services import logs
from services._twisted.tls import platformAndFileTrust
from services.client._head import HeadLimitEndpoint, HeadLimits
from services.client._tunnel import Proxy, ProxySettings, TunnelEndpoint
from services.net.defaults import defaultReactor

__all__ = ["READ_SIZE", "TLSPolicy", "makeAgent", "makePool"]

#: The most bytes read from a connection at once: four times Twisted's
#: 64 KiB, so that a large body takes a quarter of the reads, of the turns
#: of the event loop and of the writes to its file.
READ_SIZE = 256 * 1024


@implementer(IOpenSSLClientConnectionCreator)
class _Unverified:
    """
    TLS that still sends the server name (SNI) but accepts any certificate:
    for C{--insecure} only.  Built on C{CertificateOptions(verify=False)}:
    before Twisted 26.4, L{optionsForClientTLS} checks the host name in an
    info callback that no C{set_verify} on the connection turns off.
    """

    def __init__(self, hostname: str) -> None:
        isAddress = isIPAddress(hostname) or isIPv6Address(hostname)
        self._serverName = None if isAddress else hostname.encode("idna")
        self._options = CertificateOptions(verify=False)

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._options.getContext(), None)
        connection.set_app_data(tlsProtocol)
        if self._serverName is not None:
            connection.set_tlsext_host_name(self._serverName)
        return connection


@implementer(IPolicyForHTTPS)
class TLSPolicy:
    """
    How https connections are checked: the server's certificate must chain
    to a trusted authority (the platform's, plus C{cafile} when given) and
    name the host of the URL, unless C{verify} is false.
    """

    def __init__(self, cafile: str | None = None, verify: bool = True) -> None:
        """
        @param cafile: a PEM file of extra certificate authorities to trust.
        @param verify: check certificates at all; C{False} accepts any
            certificate, for tests and emergencies only.

        @raise OpenSSL.SSL.Error: when C{cafile} is not a readable PEM
            bundle.
        """
        self.cafile = cafile
        self.verify = verify
        if cafile is not None:
            SSL.Context(SSL.TLS_CLIENT_METHOD).load_verify_locations(cafile)

    def creatorForNetloc(self, hostname: bytes, port: int) -> IOpenSSLClientConnectionCreator:
        """
        The TLS connection creator for one origin.
        """
        if not self.verify:
            return _Unverified(hostname.decode("ascii"))
        trust = platformAndFileTrust(self.cafile) if self.cafile else None
        return optionsForClientTLS(hostname.decode("ascii"), trustRoot=trust)


@implementer(IStreamClientEndpoint)
class _LargeReads:
    """
    Connects through another endpoint, then lets the connection read up to
    L{READ_SIZE} bytes at once (a transport without that setting, in
    memory for tests, is left as it is).
    """

    def __init__(self, wrapped: IStreamClientEndpoint) -> None:
        self._wrapped = wrapped

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect with C{protocolFactory}; fires with its protocol.
        """
        return self._wrapped.connect(protocolFactory).addCallback(_readLarge)


def _readLarge(protocol: IProtocol) -> IProtocol:
    transport = getattr(protocol, "transport", None)
    if getattr(transport, "bufferSize", READ_SIZE) < READ_SIZE:
        transport.bufferSize = READ_SIZE  # type: ignore[union-attr]
    return protocol


def _hostnameEndpoint(
    reactor: IReactorTime, host: str, port: int, timeout: float
) -> IStreamClientEndpoint:
    return _LargeReads(HostnameEndpoint(reactor, host, port, timeout=timeout))


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    """
    Endpoints for L{Agent}: direct, or through a proxy's tunnel for https.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        reactor: IReactorTime,
        proxies: ProxySettings,
        tls: IPolicyForHTTPS,
        connectTimeout: float,
        userAgent: bytes | None,
        headLimits: HeadLimits | None = None,
    ) -> None:
        self._reactor = reactor
        self._proxies = proxies
        self._tls = tls
        self._connectTimeout = connectTimeout
        self._userAgent = userAgent
        self._headLimits = headLimits or HeadLimits()

    def _connect(self, host: str, port: int) -> IStreamClientEndpoint:
        return _hostnameEndpoint(self._reactor, host, port, self._connectTimeout)

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        """
        The endpoint for C{uri}'s origin, with bounded response heads.
        """
        return HeadLimitEndpoint(self._originEndpoint(uri), self._headLimits)

    def _originEndpoint(self, uri: URI) -> IStreamClientEndpoint:
        host = uri.host.decode("ascii")
        if uri.scheme == b"http":
            return self._connect(host, uri.port)
        if uri.scheme != b"https":
            raise SchemeNotSupported(f"unsupported scheme: {uri.scheme.decode('ascii', 'replace')}")
        proxy = self._proxies.proxyFor("https", host, uri.port)
        if proxy is None:
            endpoint = self._connect(host, uri.port)
        else:
            self._log.debug(
                "tunnel to {host}:{port} through proxy {proxy}:{proxyPort}",
                host=host,
                port=uri.port,
                proxy=proxy.host,
                proxyPort=proxy.port,
            )
            endpoint = TunnelEndpoint(
                self._connect(proxy.host, proxy.port),
                host,
                uri.port,
                proxy.authorization,
                self._userAgent,
            )
        return wrapClientTLS(self._tls.creatorForNetloc(uri.host, uri.port), endpoint)


@implementer(IAgent)
class _ProxyingAgent:
    """
    Sends plain-http requests for proxied hosts through L{ProxyAgent}
    (adding C{Proxy-Authorization} when the proxy URL has credentials),
    and every other request through the direct-or-tunnel L{Agent}.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        agent: IAgent,
        proxies: ProxySettings,
        reactor: IReactorTime,
        pool: HTTPConnectionPool,
        connectTimeout: float,
        headLimits: HeadLimits,
    ) -> None:
        self._agent = agent
        self._proxies = proxies
        self._reactor = reactor
        self._pool = pool
        self._connectTimeout = connectTimeout
        self._headLimits = headLimits
        self._proxyAgents: dict[Proxy, IAgent] = {}

    def _proxyAgent(self, proxy: Proxy) -> IAgent:
        agent = self._proxyAgents.get(proxy)
        if agent is None:
            endpoint = HeadLimitEndpoint(
                _hostnameEndpoint(self._reactor, proxy.host, proxy.port, self._connectTimeout),
                self._headLimits,
            )
            agent = self._proxyAgents[proxy] = ProxyAgent(endpoint, self._reactor, self._pool)
        return agent

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        Send the request directly, through the proxy, or through a tunnel.
        """
        parsed = URI.fromBytes(uri)
        proxy = None
        if parsed.scheme == b"http":
            proxy = self._proxies.proxyFor("http", parsed.host.decode("ascii"), parsed.port)
        if proxy is None:
            return self._agent.request(method, uri, headers, bodyProducer)
        self._log.debug(
            "{url} through proxy {proxy}:{proxyPort}",
            url=uri.decode("ascii", "replace"),
            proxy=proxy.host,
            proxyPort=proxy.port,
        )
        if proxy.authorization:
            headers = headers.copy() if headers is not None else Headers()
            headers.setRawHeaders(b"Proxy-Authorization", [proxy.authorization])
        return self._proxyAgent(proxy).request(method, uri, headers, bodyProducer)


def makePool(
    reactor: IReactorTime | None = None, maxPerHost: int = 2, idleTimeout: int = 240
) -> HTTPConnectionPool:
    """
    A persistent connection pool: connections are kept open between
    requests, C{maxPerHost} per origin, closed after C{idleTimeout} seconds
    unused.  Call C{closeCachedConnections()} on it when done.
    """
    pool = HTTPConnectionPool(defaultReactor(reactor), persistent=True)
    pool.maxPersistentPerHost = maxPerHost
    pool.cachedConnectionTimeout = idleTimeout
    pool.retryAutomatically = True
    return pool


def makeAgent(
    reactor: IReactorTime | None = None,
    *,
    pool: HTTPConnectionPool | None = None,
    proxies: ProxySettings = ProxySettings(),
    tls: IPolicyForHTTPS | None = None,
    connectTimeout: float = 30.0,
    userAgent: bytes | None = None,
    headLimits: HeadLimits | None = None,
) -> IAgent:
    """
    The agent the client sends requests with.

    @param reactor: the reactor, which also connects TCP and resolves names
        (as L{HostnameEndpoint} needs); the global one if L{None}.
    @param pool: the connection pool; a new persistent one (L{makePool}) if
        L{None}.
    @param proxies: which proxy each URL goes through; none by default.
    @param tls: how https certificates are checked; L{TLSPolicy} (platform
        trust, hostname verification) by default.
    @param connectTimeout: seconds to wait for a TCP connection.
    @param userAgent: the C{User-Agent} to send to proxies with C{CONNECT}.
    @param headLimits: the bounds on each response's head (L{HeadLimits}'s
        defaults if L{None}); past them the request fails with
        L{services.client._head.HeadTooLarge} among its reasons.
    """
    reactor = defaultReactor(reactor)
    if pool is None:
        pool = makePool(reactor)
    limits = headLimits or HeadLimits()
    factory = _EndpointFactory(
        reactor, proxies, tls or TLSPolicy(), connectTimeout, userAgent, limits
    )
    agent = Agent.usingEndpointFactory(reactor, factory, pool)
    if proxies.http is None:
        return agent
    return _ProxyingAgent(agent, proxies, reactor, pool, connectTimeout, limits)
