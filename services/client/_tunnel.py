# -*- test-case-name: tests.unit.client.test_proxy -*-
"""
HTTP proxies for the client: which proxy a URL goes through, and the HTTP
C{CONNECT} tunnel that carries https through one.

L{ProxySettings} reads the proxy variables the way Python's C{urllib} does
(C{http_proxy}, C{https_proxy}, C{no_proxy} and their upper-case forms, the
lower-case form winning), from a mapping the caller passes: nothing here reads
C{os.environ} by itself.

Plain http goes through the proxy with Twisted's
L{twisted.web.client.ProxyAgent}, which sends the absolute URL to the proxy.
https cannot go that way (the proxy would see the request in clear text):
L{TunnelEndpoint} connects to the proxy, asks it for a tunnel with
C{CONNECT host:port}, waits for a 2xx answer, and then hands the connection to
the protocol it was asked to connect, which for https is TLS to the origin
server (L{twisted.internet.endpoints.wrapClientTLS} around this endpoint).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

from hyperlink import URL
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs

__all__ = [
    "Proxy",
    "ProxyError",
    "ProxySettings",
    "TunnelEndpoint",
    "TunnelProtocol",
]

#: The longest proxy answer to a CONNECT that we read before giving up.
MAX_TUNNEL_RESPONSE = 16 * 1024


class ProxyError(Exception):
    """
    A proxy is unusable: its URL is malformed or of a kind we do not speak,
    or it refused to open a tunnel.

    @ivar status: the proxy's HTTP status for a refused tunnel, else L{None}.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        Exception.__init__(self, message)
        self.status = status


@dataclass(frozen=True)
class Proxy:
    """
    One HTTP proxy.

    @ivar host: its host name or address.
    @ivar port: its TCP port.
    @ivar authorization: the C{Proxy-Authorization} value for credentials in
        its URL (C{http://user:pass@proxy:3128}), else L{None}.
    """

    host: str
    port: int
    authorization: bytes | None = None

    @classmethod
    def fromURL(cls, text: str) -> Proxy:
        """
        Parse a proxy URL: C{http://[user:password@]host[:port]}, or
        C{host:port} (http assumed, as curl and urllib do).  The port
        defaults to 80.

        @raise ProxyError: for a scheme other than http, or no host.
        """
        raw = text.strip()
        if "://" not in raw:
            raw = "http://" + raw
        try:
            url = URL.from_text(raw)
        except Exception as e:
            raise ProxyError(f"bad proxy URL {text!r}: {e}") from None
        if url.scheme != "http":
            raise ProxyError(
                f"unsupported proxy URL {text!r}: only http:// proxies are supported"
            )
        if not url.host:
            raise ProxyError(f"bad proxy URL {text!r}: no host")
        authorization = None
        if url.userinfo:
            user, _, password = url.userinfo.partition(":")
            token = f"{unquote(user)}:{unquote(password)}".encode()
            authorization = b"Basic " + base64.b64encode(token)
        return cls(url.host, url.port or 80, authorization)


def _environmentProxies(environ: Mapping[str, str]) -> dict[str, str]:
    """
    The C{<scheme>_proxy} variables of C{environ}, by scheme, as
    L{urllib.request.getproxies_environment} reads them from C{os.environ}:
    lower-case names win over upper-case ones, an empty lower-case value
    unsets the scheme, and C{HTTP_PROXY} is ignored in a CGI request
    (C{REQUEST_METHOD} set: the "httpoxy" attack).
    """
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    return proxies


@dataclass(frozen=True)
class ProxySettings:
    """
    Which proxy each URL goes through.

    @ivar http: the proxy for http URLs, or L{None}.
    @ivar https: the proxy for https URLs, or L{None}.
    @ivar noProxy: the C{no_proxy} list, as written: comma-separated host
        names or domain suffixes (C{.example.com} or C{example.com}), with an
        optional C{:port}, or C{*} for every host.
    """

    http: Proxy | None = None
    https: Proxy | None = None
    noProxy: str = ""

    @classmethod
    def fromEnvironment(cls, environ: Mapping[str, str]) -> ProxySettings:
        """
        The settings of C{http_proxy}, C{https_proxy} and C{no_proxy} (or
        their upper-case forms) in C{environ}, such as C{os.environ}.

        @raise ProxyError: when a proxy variable holds a bad URL.
        """
        found = _environmentProxies(environ)
        http = found.get("http")
        https = found.get("https")
        return cls(
            Proxy.fromURL(http) if http else None,
            Proxy.fromURL(https) if https else None,
            found.get("no", ""),
        )

    @classmethod
    def fromURL(cls, url: str, noProxy: str = "") -> ProxySettings:
        """
        One proxy for both http and https URLs (an empty C{url}: none).
        """
        proxy = Proxy.fromURL(url) if url.strip() else None
        return cls(proxy, proxy, noProxy)

    def proxyFor(self, scheme: str, host: str, port: int) -> Proxy | None:
        """
        The proxy to use for a URL, or L{None} to connect directly.
        """
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None:
            return None
        if self.noProxy and self.bypass(host, port):
            return None
        return proxy

    def bypass(self, host: str, port: int) -> bool:
        """
        Whether C{no_proxy} says to connect to C{host} directly, matched by
        L{urllib.request.proxy_bypass_environment}.
        """
        return bool(proxy_bypass_environment(f"{host}:{port}", {"no": self.noProxy}))


class TunnelProtocol(Protocol):
    """
    Asks a proxy for a tunnel, then passes the connection through to the
    protocol that was to be connected.

    Until the proxy answers, the bytes received are its response head; once
    it answers 2xx, the tunnel is the other protocol's transport, and every
    byte (including any that came with the answer) goes to that protocol.

    @ivar established: fires with the tunnelled protocol when the proxy has
        agreed, or fails with L{ProxyError} or the connection's error.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        factory: IProtocolFactory,
        target: bytes,
        authorization: bytes | None = None,
        userAgent: bytes | None = None,
    ) -> None:
        self._factory = factory
        self._target = target
        self._authorization = authorization
        self._userAgent = userAgent
        self._head = b""
        self._tunnelled: IProtocol | None = None
        self.established: Deferred[IProtocol] = Deferred(self._cancel)

    def connectionMade(self) -> None:
        """
        Send C{CONNECT host:port}.
        """
        lines = [b"CONNECT " + self._target + b" HTTP/1.1", b"Host: " + self._target]
        if self._userAgent:
            lines.append(b"User-Agent: " + self._userAgent)
        if self._authorization:
            lines.append(b"Proxy-Authorization: " + self._authorization)
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        """
        Read the proxy's answer, then pass everything through.
        """
        if self._tunnelled is not None:
            self._tunnelled.dataReceived(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_TUNNEL_RESPONSE:
                self._fail(ProxyError("the proxy's answer to CONNECT is too long"))
            return
        head, rest = self._head[:end], self._head[end + 4 :]
        self._head = b""
        status = _statusOf(head)
        if status is None or not 200 <= status < 300:
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self._fail(
                ProxyError(
                    f"the proxy refused to open a tunnel to "
                    f"{self._target.decode('ascii', 'replace')}: {line or '(no answer)'}",
                    status,
                )
            )
            return
        self._log.debug(
            "proxy tunnel to {target} open", target=self._target.decode("ascii", "replace")
        )
        address: IAddress = self.transport.getPeer()  # type: ignore[union-attr]
        tunnelled = self._factory.buildProtocol(address)
        if tunnelled is None:
            self._fail(ProxyError("the tunnelled protocol factory built no protocol"))
            return
        self._tunnelled = tunnelled
        assert self.transport is not None
        tunnelled.makeConnection(self.transport)
        self.established.callback(tunnelled)
        if rest:
            tunnelled.dataReceived(rest)

    def connectionLost(self, reason: Failure = Failure(ConnectionLost())) -> None:
        """
        Tell the tunnelled protocol, or fail the tunnel if it was not open.
        """
        if self._tunnelled is not None:
            self._tunnelled.connectionLost(reason)
        elif not self.established.called:
            self.established.errback(reason)

    def _fail(self, error: Exception) -> None:
        self.transport.abortConnection()  # type: ignore[union-attr]
        if not self.established.called:
            self.established.errback(error)

    def _cancel(self, established: Deferred[IProtocol]) -> None:
        self.transport.abortConnection()  # type: ignore[union-attr]


def _statusOf(head: bytes) -> int | None:
    parts = head.split(b"\r\n", 1)[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


def _hostPort(host: str, port: int) -> bytes:
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return text.encode("idna" if not text.isascii() else "ascii")


class _TunnelFactory(Factory):
    noisy = False

    def __init__(self, tunnel: TunnelProtocol) -> None:
        self._tunnel = tunnel

    def buildProtocol(self, addr: IAddress | None) -> TunnelProtocol:
        return self._tunnel


@implementer(IStreamClientEndpoint)
class TunnelEndpoint:
    """
    A stream to C{host:port} through an HTTP proxy's C{CONNECT} tunnel.

    Wrap it with L{twisted.internet.endpoints.wrapClientTLS} to speak TLS
    to the origin server inside the tunnel::

        proxy = HostnameEndpoint(reactor, "proxy.example", 3128)
        endpoint = wrapClientTLS(
            optionsForClientTLS("example.com"),
            TunnelEndpoint(proxy, "example.com", 443),
        )
    """

    def __init__(
        self,
        proxyEndpoint: IStreamClientEndpoint,
        host: str,
        port: int,
        authorization: bytes | None = None,
        userAgent: bytes | None = None,
    ) -> None:
        """
        @param proxyEndpoint: how to reach the proxy.
        @param host: the origin server's host name or address.
        @param port: the origin server's port.
        @param authorization: a C{Proxy-Authorization} value, if the proxy
            wants credentials.
        @param userAgent: a C{User-Agent} to send with C{CONNECT}.
        """
        self._proxyEndpoint = proxyEndpoint
        self._target = _hostPort(host, port)
        self._authorization = authorization
        self._userAgent = userAgent

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect to the proxy, open the tunnel, and connect a protocol of
        C{protocolFactory} through it.

        @return: fires with that protocol once the tunnel is open; fails
            with L{ProxyError} when the proxy refuses.
        """
        tunnel = TunnelProtocol(
            protocolFactory, self._target, self._authorization, self._userAgent
        )
        connecting = self._proxyEndpoint.connect(_TunnelFactory(tunnel))

        def connected(_: object) -> Deferred[IProtocol]:
            return tunnel.established

        return connecting.addCallback(connected)
