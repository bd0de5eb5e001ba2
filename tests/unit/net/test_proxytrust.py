"""
Tests for the trusted sources of PROXY protocol headers
(L{services.net.addresses.isTrusted}, C{trusted_proxies}): a connection to
a C{haproxy:} listener from outside them is closed before a byte is read,
and counted.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from services.config import ConfigError, parseConfig
from services.net.addresses import isTrusted, trustedNetworks
from services.net.endpoints import endpointFor
from services.net.proxyheader import ProxyHeaderFactory
from services.net.sockets import SocketOptions
from services.stats import ConnectionStats

LISTENER = IPv4Address("TCP", "127.0.0.1", 8007)
HEADER = b"PROXY TCP4 203.0.113.9 127.0.0.1 56324 8007\r\n"


class Recorder(Protocol):
    """
    Records what it receives.
    """

    received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class IsTrustedTests(SynchronousTestCase):
    """
    L{isTrusted} matches a peer's IP address against networks.
    """

    def test_loopbackDefault(self) -> None:
        """
        The default networks are loopback: 127.0.0.0/8, ::1 and IPv4-mapped
        loopback are trusted, other addresses are not; a UNIX socket peer
        (on this host) is.
        """
        loopback = trustedNetworks(("127.0.0.0/8", "::1"))
        self.assertTrue(isTrusted(IPv4Address("TCP", "127.0.0.9", 1), loopback))
        self.assertTrue(isTrusted(IPv6Address("TCP", "::1", 1), loopback))
        self.assertTrue(isTrusted(IPv6Address("TCP", "::ffff:127.0.0.1", 1), loopback))
        self.assertTrue(isTrusted(UNIXAddress(b"/run/x.sock"), loopback))
        self.assertFalse(isTrusted(IPv4Address("TCP", "192.0.2.7", 1), loopback))
        self.assertFalse(isTrusted(IPv6Address("TCP", "2001:db8::7", 1), loopback))

    def test_networks(self) -> None:
        """
        Addresses and CIDR networks, host bits allowed.
        """
        networks = trustedNetworks(("10.0.0.5", "192.0.2.1/24", "2001:db8::/32"))
        for host in ("10.0.0.5", "192.0.2.200", "2001:db8::7"):
            self.assertTrue(isTrusted(IPv4Address("TCP", host, 1), networks), host)
        self.assertFalse(isTrusted(IPv4Address("TCP", "10.0.0.6", 1), networks))


class FactoryTests(SynchronousTestCase):
    """
    L{ProxyHeaderFactory} refuses connections from untrusted sources.
    """

    def connect(self, source: str, **kwargs: object) -> tuple[StringTransport, list[Recorder]]:
        self.stats = ConnectionStats()
        built: list[Recorder] = []

        class Wrapped(Factory):
            def buildProtocol(self, addr: object) -> Recorder:
                built.append(Recorder())
                return built[-1]

        factory = ProxyHeaderFactory(Wrapped(), MemoryReactorClock(), self.stats, **kwargs)  # type: ignore[arg-type]
        peer = IPv4Address("TCP", source, 40000)
        protocol = factory.buildProtocol(peer)
        transport = StringTransport(hostAddress=LISTENER, peerAddress=peer)
        protocol.makeConnection(transport)
        protocol.dataReceived(HEADER + b"hello")
        return transport, built

    def test_untrustedRefused(self) -> None:
        """
        A valid header from a source outside the trusted networks (loopback
        by default) is never read: the connection is closed at once, the
        wrapped protocol never built, and it is counted.
        """
        transport, built = self.connect("192.0.2.7")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(built, [])
        self.assertEqual(self.stats.proxyUntrusted, 1)
        self.assertEqual(self.stats.proxyMalformed, 0)

    def test_trustedServed(self) -> None:
        """
        From a trusted source (loopback by default, or a configured
        network), the header is read and the data relayed.
        """
        for source, kwargs in (("127.0.0.1", {}), ("192.0.2.7", {"trusted": ["192.0.2.0/24"]})):
            transport, built = self.connect(source, **kwargs)
            self.assertFalse(transport.disconnecting, source)
            self.assertEqual([r.received for r in built], [b"hello"])
            self.assertEqual(self.stats.proxyUntrusted, 0)

    def test_endpointFor(self) -> None:
        """
        L{endpointFor} gives a C{haproxy:} listener the trusted networks it
        is passed, and loopback without them.
        """
        reactor = MemoryReactorClock()
        for trusted, expected in ((None, 2), (["10.0.0.5"], 1)):
            endpoint = endpointFor(reactor, "haproxy:tcp:8007", SocketOptions(),
                                   trustedProxies=trusted)
            self.assertEqual(len(endpoint.trusted), expected)  # type: ignore[attr-defined]


class ConfigTests(SynchronousTestCase):
    """
    C{trusted_proxies} in C{[echo]} and C{[web]}.
    """

    def test_parsed(self) -> None:
        """
        Addresses and networks separated by spaces or commas, in network
        form.
        """
        config = parseConfig("[web]\ntrusted_proxies = 10.0.0.5, 192.0.2.0/24 ::1\n")
        self.assertEqual(config.web.trusted_proxies, ("10.0.0.5/32", "192.0.2.0/24", "::1/128"))
        self.assertEqual(config.echo.trusted_proxies, ("127.0.0.0/8", "::1/128"))

    def test_bad(self) -> None:
        """
        Anything else is a one-line error naming the section and key.
        """
        for value in ("", "example.com", "10.0.0.0/33"):
            with self.assertRaises(ConfigError) as cm:
                parseConfig(f"[echo]\ntrusted_proxies = {value}\n", "tap.conf")
            message = str(cm.exception)
            self.assertIn("[echo] trusted_proxies", message)
            self.assertIn("IP addresses or CIDR networks", message)
            self.assertNotIn("\n", message)
