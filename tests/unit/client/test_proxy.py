"""
Tests of proxies: the proxy variables, the CONNECT tunnel, the agent's
routing, TLS policy; and real requests through Debian's tinyproxy.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.iweb import IAgent, IPolicyForHTTPS
from zope.interface.verify import verifyObject

from services.client._agent import TLSPolicy, makeAgent, makePool
from services.cli import exits
from services.client._tunnel import Proxy, ProxyError, ProxySettings, TunnelEndpoint, TunnelProtocol
from tests.clientservers import (
    TinyProxy,
    cliEnvironment,
    makeCertificates,
    requireTinyproxy,
    runCLI,
    startWebServer,
)
from tests.support import freePort, temporaryDirectory


class ProxyURLTests(SynchronousTestCase):
    """
    Parsing one proxy URL.
    """

    def test_full(self) -> None:
        """
        Scheme, host, port and credentials are read; credentials become a
        Proxy-Authorization value.
        """
        proxy = Proxy.fromURL("http://ada:p%40ss@proxy.example:3128/")
        self.assertEqual((proxy.host, proxy.port), ("proxy.example", 3128))
        self.assertEqual(proxy.authorization, b"Basic " + base64.b64encode(b"ada:p@ss"))

    def test_bare(self) -> None:
        """
        C{host:port} without a scheme is an http proxy; the port defaults
        to 80.
        """
        self.assertEqual(Proxy.fromURL("127.0.0.1:8888"), Proxy("127.0.0.1", 8888))
        self.assertEqual(Proxy.fromURL("http://proxy.example"), Proxy("proxy.example", 80))

    def test_unsupported(self) -> None:
        """
        Proxies we cannot speak to are refused with a clear message.
        """
        for url in ("https://proxy.example:443", "socks5://127.0.0.1:1080"):
            error = self.assertRaises(ProxyError, Proxy.fromURL, url)
            self.assertIn("only http:// proxies", str(error))


class EnvironmentTests(SynchronousTestCase):
    """
    The proxy variables, read as urllib reads them.
    """

    def test_lowerCaseWins(self) -> None:
        """
        Both cases are read; the lower-case one wins.
        """
        settings = ProxySettings.fromEnvironment(
            {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2", "HTTPS_PROXY": "http://s:3"}
        )
        self.assertEqual(settings.http, Proxy("lower", 2))
        self.assertEqual(settings.https, Proxy("s", 3))

    def test_emptyLowerCaseUnsets(self) -> None:
        """
        An empty lower-case variable turns the upper-case one off.
        """
        settings = ProxySettings.fromEnvironment({"HTTP_PROXY": "http://upper:1", "http_proxy": ""})
        self.assertIsNone(settings.http)

    def test_cgi(self) -> None:
        """
        In a CGI request (REQUEST_METHOD set) HTTP_PROXY is a request header
        in disguise and is ignored ("httpoxy").
        """
        settings = ProxySettings.fromEnvironment({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"})
        self.assertIsNone(settings.http)

    def test_noProxy(self) -> None:
        """
        no_proxy (or NO_PROXY) names hosts, domain suffixes, host:port, or
        C{*}.
        """
        env = {"http_proxy": "http://p:1", "https_proxy": "http://p:2", "NO_PROXY": "localhost, .internal,example.org:8080"}
        settings = ProxySettings.fromEnvironment(env)
        self.assertIsNone(settings.proxyFor("http", "localhost", 80))
        self.assertIsNone(settings.proxyFor("https", "db.internal", 443))
        self.assertIsNone(settings.proxyFor("http", "example.org", 8080))
        self.assertEqual(settings.proxyFor("http", "example.org", 80), Proxy("p", 1))
        self.assertEqual(settings.proxyFor("https", "example.com", 443), Proxy("p", 2))
        everything = ProxySettings.fromEnvironment({"http_proxy": "http://p:1", "no_proxy": "*"})
        self.assertIsNone(everything.proxyFor("http", "example.com", 80))

    def test_nothing(self) -> None:
        """
        Without variables, nothing is proxied.
        """
        self.assertIsNone(ProxySettings.fromEnvironment({}).proxyFor("http", "example.com", 80))

    def test_explicit(self) -> None:
        """
        One explicit proxy serves http and https; an empty URL means none.
        """
        settings = ProxySettings.fromURL("http://127.0.0.1:3128", "localhost")
        self.assertEqual(settings.proxyFor("https", "example.com", 443), Proxy("127.0.0.1", 3128))
        self.assertIsNone(settings.proxyFor("http", "localhost", 80))
        self.assertIsNone(ProxySettings.fromURL("").proxyFor("http", "example.com", 80))


class Recording(Protocol):
    """
    Records what a tunnelled protocol sees.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []
        self.made = False

    def connectionMade(self) -> None:
        """
        Note the connection.
        """
        self.made = True

    def dataReceived(self, data: bytes) -> None:
        """
        Record C{data}.
        """
        self.received.append(data)

    def connectionLost(self, reason: Failure) -> None:
        """
        Record the reason.
        """
        self.lost.append(reason)


class TunnelTests(SynchronousTestCase):
    """
    L{TunnelProtocol} asks for a tunnel and then passes bytes through.
    """

    def connect(self, authorization: bytes | None = None) -> tuple[TunnelProtocol, StringTransport, Recording]:
        """
        A tunnel connected to a L{StringTransport}, and its inner protocol.
        """
        inner = Recording()
        tunnel = TunnelProtocol(Factory.forProtocol(lambda: inner), b"example.com:443", authorization, b"ua/1")
        transport = StringTransport()
        tunnel.makeConnection(transport)
        return tunnel, transport, inner

    def test_request(self) -> None:
        """
        The tunnel starts with C{CONNECT host:port} and a Host header (and
        Proxy-Authorization when given).
        """
        _, transport, _ = self.connect(b"Basic eDp5")
        self.assertEqual(
            transport.value(),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
            b"User-Agent: ua/1\r\nProxy-Authorization: Basic eDp5\r\n\r\n",
        )

    def test_established(self) -> None:
        """
        After a 2xx, the tunnelled protocol is connected on the same
        transport, gets the bytes that followed the answer and all later
        ones, and its loss.
        """
        tunnel, transport, inner = self.connect()
        tunnel.dataReceived(b"HTTP/1.1 200 Connection established\r\nVia: x\r\n")
        self.assertNoResult(tunnel.established)
        tunnel.dataReceived(b"\r\nfirst")
        self.assertIs(self.successResultOf(tunnel.established), inner)
        self.assertTrue(inner.made)
        self.assertIs(inner.transport, transport)
        tunnel.dataReceived(b"second")
        self.assertEqual(inner.received, [b"first", b"second"])
        tunnel.connectionLost(Failure(Exception("bye")))
        self.assertEqual(len(inner.lost), 1)

    def test_refused(self) -> None:
        """
        A non-2xx answer fails the tunnel with L{ProxyError} carrying the
        status, and drops the connection.
        """
        tunnel, transport, inner = self.connect()
        tunnel.dataReceived(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
        failure = self.failureResultOf(tunnel.established, ProxyError)
        self.assertEqual(failure.value.status, 407)
        self.assertIn("407 Proxy Authentication Required", str(failure.value))
        self.assertTrue(transport.disconnecting)
        self.assertFalse(inner.made)

    def test_notHTTP(self) -> None:
        """
        An answer that is not HTTP fails the tunnel.
        """
        tunnel, _, _ = self.connect()
        tunnel.dataReceived(b"SSH-2.0-OpenSSH\r\n\r\n")
        self.failureResultOf(tunnel.established, ProxyError)

    def test_tooLong(self) -> None:
        """
        An endless answer fails the tunnel instead of growing memory.
        """
        tunnel, _, _ = self.connect()
        tunnel.dataReceived(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 4000)
        self.failureResultOf(tunnel.established, ProxyError)

    def test_lostBeforeAnswer(self) -> None:
        """
        A connection lost before the answer fails the tunnel with its
        reason.
        """
        tunnel, _, _ = self.connect()
        tunnel.connectionLost(Failure(ConnectionError("reset")))
        self.failureResultOf(tunnel.established, ConnectionError)

    def test_cancel(self) -> None:
        """
        Cancelling the wait drops the connection.
        """
        tunnel, transport, _ = self.connect()
        tunnel.established.cancel()
        self.assertTrue(transport.disconnecting)
        self.failureResultOf(tunnel.established, CancelledError)


class FakeEndpoint:
    """
    Connects protocols to L{StringTransport}s at once.
    """

    def __init__(self) -> None:
        self.transports: list[StringTransport] = []
        self.protocols: list[Any] = []

    def connect(self, factory: Any) -> Any:
        """
        Connect a protocol of C{factory} at once.
        """
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.transports.append(transport)
        self.protocols.append(protocol)
        return succeed(protocol)


class TunnelEndpointTests(SynchronousTestCase):
    """
    L{TunnelEndpoint} connects through the proxy's endpoint.
    """

    def test_connect(self) -> None:
        """
        C{connect} fires with the tunnelled protocol once the proxy agrees;
        IPv6 targets are bracketed.
        """
        proxy = FakeEndpoint()
        endpoint = TunnelEndpoint(proxy, "::1", 8443)
        verifyObject(IStreamClientEndpoint, endpoint)
        inner = Recording()
        d = endpoint.connect(Factory.forProtocol(lambda: inner))
        self.assertTrue(proxy.transports[0].value().startswith(b"CONNECT [::1]:8443 HTTP/1.1\r\n"))
        self.assertNoResult(d)
        proxy.protocols[0].dataReceived(b"HTTP/1.0 200 OK\r\n\r\n")
        self.assertIs(self.successResultOf(d), inner)


class AgentTests(SynchronousTestCase):
    """
    L{makeAgent} routes each request directly, through the proxy, or
    through a tunnel.
    """

    def agent(self, environ: dict[str, str]) -> tuple[Any, MemoryReactorClock]:
        """
        An agent on a memory reactor, with proxies from C{environ}.
        """
        clock = MemoryReactorClock()
        agent = makeAgent(clock, pool=makePool(clock), proxies=ProxySettings.fromEnvironment(environ))
        verifyObject(IAgent, agent)
        return agent, clock

    def test_direct(self) -> None:
        """
        Without proxies, the agent connects to the URL's port.  (The memory
        reactor resolves every name to 127.0.0.1, so ports tell the
        destinations apart.)
        """
        agent, clock = self.agent({})
        agent.request(b"GET", b"http://10.1.2.3:8080/")
        self.assertEqual(clock.tcpClients[0][1], 8080)

    def test_httpThroughProxy(self) -> None:
        """
        Plain http connects to the http proxy; a no_proxy host does not.
        """
        agent, clock = self.agent({"http_proxy": "http://127.0.0.1:3128", "no_proxy": "10.1.2.3"})
        agent.request(b"GET", b"http://10.9.9.9:8081/")
        agent.request(b"GET", b"http://10.1.2.3:8082/")
        self.assertEqual([c[1] for c in clock.tcpClients], [3128, 8082])

    def test_httpsThroughTunnel(self) -> None:
        """
        https connects to the https proxy and asks it for a tunnel to the
        origin, before any TLS.
        """
        agent, clock = self.agent({"https_proxy": "http://127.0.0.1:3129"})
        agent.request(b"GET", b"https://10.9.9.9:8443/")
        port, factory = clock.tcpClients[0][1:3]
        self.assertEqual(port, 3129)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertTrue(transport.value().startswith(b"CONNECT 10.9.9.9:8443 HTTP/1.1\r\n"))


class TLSPolicyTests(SynchronousTestCase):
    """
    L{TLSPolicy}: verification by default, an extra CA file, or none.
    """

    def test_interface(self) -> None:
        """
        It provides L{IPolicyForHTTPS}.
        """
        verifyObject(IPolicyForHTTPS, TLSPolicy())

    def test_verifies(self) -> None:
        """
        By default the connection requires a verified peer certificate.
        """
        creator = TLSPolicy().creatorForNetloc(b"example.com", 443)
        connection = creator.clientConnectionForTLS(_FakeTLS())
        self.assertTrue(connection.get_verify_mode() & SSL.VERIFY_PEER)

    def test_insecure(self) -> None:
        """
        C{verify=False} accepts any certificate.
        """
        creator = TLSPolicy(verify=False).creatorForNetloc(b"example.com", 443)
        connection = creator.clientConnectionForTLS(_FakeTLS())
        self.assertEqual(connection.get_verify_mode(), SSL.VERIFY_NONE)

    def test_badCAFile(self) -> None:
        """
        A CA file that is not PEM is refused at once.
        """
        path = temporaryDirectory(self) / "bad.pem"
        path.write_text("not a certificate")
        self.assertRaises(SSL.Error, TLSPolicy, cafile=str(path))


class _FakeTLS:
    """
    Stands in for the TLS protocol a connection creator is given.
    """

    factory = SimpleNamespace(wrappedFactory=Factory())

    def failVerification(self, reason: Any) -> None:
        pass


class TinyproxyTests(TestCase):
    """
    Real requests through a real tinyproxy to local test servers.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Start an http and an https test server and a tinyproxy.
        """
        requireTinyproxy()
        directory = temporaryDirectory(self)
        self.certs = makeCertificates(directory, names=("localhost",), addresses=())
        self.web = startWebServer(reactor)
        self.addCleanup(self.web.stop)
        self.tls = startWebServer(reactor, tls=self.certs.serverOptions())
        self.addCleanup(self.tls.stop)
        self.proxy = TinyProxy(connectPorts=(self.tls.port,))
        self.addCleanup(self.proxy.stop)

    async def fetch(self, *args: str, env: dict[str, str] | None = None) -> tuple[bytes, str, int]:
        """
        Run C{netservices fetch ARGS} with C{env} added to a proxy-free environment.
        """
        out, err, code = await runCLI(reactor, ["fetch", *args], env=cliEnvironment(env))
        return out, err.decode(), code

    async def test_httpExplicit(self) -> None:
        """
        With C{-x}, plain http goes through the proxy: the origin sees the
        proxy's Via header, and the proxy logs the request.
        """
        out, err, code = await self.fetch(self.web.url("/headers?via=x"), "-x", self.proxy.url)
        self.assertEqual(code, 0, err)
        seen = json.loads(out)
        self.assertIn("tinyproxy", " ".join(seen["headers"].get("via", [])))
        self.assertEqual(seen["headers"]["user-agent"], ["netservices/0.1.0"])
        self.assertIn(f"GET {self.web.url('/headers?via=x')}", self.proxy.log())

    async def test_httpFromEnvironment(self) -> None:
        """
        C{http_proxy} (and C{HTTP_PROXY}) send plain http through the proxy.
        """
        for name in ("http_proxy", "HTTP_PROXY"):
            out, err, code = await self.fetch(self.web.url("/headers"), env={name: self.proxy.url})
            self.assertEqual(code, 0, err)
            self.assertIn("via", json.loads(out)["headers"], name)

    async def test_httpsTunnel(self) -> None:
        """
        https goes through the proxy in a CONNECT tunnel, with TLS to the
        origin verified against the test CA and the host name.
        """
        url = self.tls.url("/headers", scheme="https", host="localhost")
        out, err, code = await self.fetch(url, "--cacert", str(self.certs.ca), env={"https_proxy": self.proxy.url})
        self.assertEqual(code, 0, err)
        seen = json.loads(out)
        self.assertTrue(seen["secure"])
        self.assertNotIn("via", seen["headers"])  # the proxy saw only ciphertext
        self.assertIn(f"CONNECT localhost:{self.tls.port}", self.proxy.log())

    async def test_httpsTunnelUpperCase(self) -> None:
        """
        C{HTTPS_PROXY} is honoured too, and -v says the tunnel is used.
        """
        url = self.tls.url("/headers", scheme="https", host="localhost")
        _out, err, code = await self.fetch(url, "--cacert", str(self.certs.ca), "-v", env={"HTTPS_PROXY": self.proxy.url})
        self.assertEqual(code, 0, err)
        self.assertIn(f"tunnel to localhost:{self.tls.port} through proxy 127.0.0.1:{self.proxy.port}", err)

    async def test_tunnelHostnameVerified(self) -> None:
        """
        Through the tunnel the certificate must still name the URL's host:
        the same server as 127.0.0.1 fails verification (exit 60).
        """
        url = self.tls.url("/headers", scheme="https", host="127.0.0.1")
        out, err, code = await self.fetch(url, "--cacert", str(self.certs.ca), env={"https_proxy": self.proxy.url})
        self.assertEqual(code, exits.TLS_VERIFY, err)
        self.assertEqual(out, b"")

    async def test_tunnelRefused(self) -> None:
        """
        A CONNECT the proxy refuses (a port outside its ConnectPort list)
        fails with exit 56 and the proxy's answer.
        """
        closed = freePort()
        url = f"https://localhost:{closed}/"
        _out, err, code = await self.fetch(url, env={"https_proxy": self.proxy.url})
        self.assertEqual(code, exits.RECEIVE, err)
        self.assertIn("the proxy refused to open a tunnel", err)
        self.assertEqual(err.count("\n"), 1)

    async def test_noProxy(self) -> None:
        """
        no_proxy sends matching hosts directly, even when the proxy
        variable names a dead proxy; without it, that proxy is used (and
        refuses: exit 7, naming the proxy).
        """
        dead = f"http://127.0.0.1:{freePort()}"
        env = {"http_proxy": dead, "no_proxy": "127.0.0.1"}
        out, err, code = await self.fetch(self.web.url("/headers"), env=env)
        self.assertEqual(code, 0, err)
        self.assertNotIn("via", json.loads(out)["headers"])
        out, err, code = await self.fetch(self.web.url("/headers"), env={"http_proxy": dead})
        self.assertEqual(code, exits.CONNECT, err)
        self.assertIn("cannot connect to proxy 127.0.0.1:", err)
        self.assertIn("ECONNREFUSED", err)

    async def test_explicitEmptyDisables(self) -> None:
        """
        C{-x ''} ignores the proxy variables.
        """
        dead = f"http://127.0.0.1:{freePort()}"
        _out, err, code = await self.fetch(self.web.url("/headers"), "-x", "", env={"http_proxy": dead})
        self.assertEqual(code, 0, err)
