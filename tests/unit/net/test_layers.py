# -*- test-case-name: tests.unit.net.test_layers -*-
"""
Tests for the layered endpoint descriptions of L{services.net.descriptions} and
L{services.net.endpoints}:
C{haproxy:}, C{ssl:} and C{systemd:} over a listening socket, and sockets
handed down by a parent.
"""

from __future__ import annotations

import os
import socket

from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from services.config import ConfigError, parseConfig
from services.echo import EchoSettings, makeEchoService
from services.net.descriptions import ListenSpec, checkEndpoint, parseListen, splitArguments
from services.net.endpoints import (
    AdoptedEndpoint,
    ListenContext,
    SystemdEndpoint,
    endpointFor,
    tlsFiles,
)
from services.net.sockets import ReusePortEndpoint, SocketOptions
from services.net.proxyheader import ProxyHeaderEndpoint, ProxyHeaderFactory
from services.stats import ConnectionStats
from services.net.tls import TLSError, TLSFiles, TLSServerEndpoint


class ParseListenTests(SynchronousTestCase):
    """
    Tests for L{parseListen} and L{splitArguments}.
    """

    def test_plain(self) -> None:
        """
        A description without layers is its own socket.
        """
        spec = parseListen("tcp:8007:interface=127.0.0.1")
        self.assertEqual(spec, ListenSpec("tcp:8007:interface=127.0.0.1", "tcp:8007:interface=127.0.0.1"))
        self.assertEqual(spec.kind, "tcp")

    def test_haproxy(self) -> None:
        """
        C{haproxy:} marks the layer and keeps the inner description, escapes
        included, as the socket.
        """
        spec = parseListen("haproxy:tcp6:8007:interface=\\:\\:1")
        self.assertTrue(spec.proxy)
        self.assertEqual(spec.socket, "tcp6:8007:interface=\\:\\:1")
        self.assertIsNone(spec.tls)

    def test_ssl(self) -> None:
        """
        C{ssl:} becomes TLS over C{tcp:} (or C{tcp6:} for an IPv6
        interface), keeping the socket arguments and moving the file
        arguments to the TLS layer.
        """
        spec = parseListen("ssl:8443:interface=127.0.0.1:backlog=5:privateKey=k.pem")
        self.assertEqual(spec.socket, "tcp:8443:interface=127.0.0.1:backlog=5")
        self.assertEqual(spec.tls, (("privateKey", "k.pem"),))
        spec = parseListen("haproxy:ssl:8443:interface=\\:\\:1")
        self.assertEqual(spec.socket, "tcp6:8443:interface=\\:\\:1")
        self.assertEqual(spec.tls, ())
        self.assertTrue(spec.proxy)

    def test_sslErrors(self) -> None:
        """
        C{ssl:} without one port, or with an option it does not take
        (C{sslmethod=}: the minimum version is configured), is refused.
        """
        for description in ["ssl:", "ssl:x", "ssl:1:2", "ssl:8443:sslmethod=TLSv1_METHOD"]:
            self.assertRaises(ValueError, parseListen, description)
        self.assertRaises(ValueError, parseListen, "haproxy:haproxy:tcp:1")

    def test_splitArguments(self) -> None:
        """
        Arguments split like Twisted's: colons separate, C{=} makes a
        keyword argument, a backslash escapes.
        """
        self.assertEqual(
            splitArguments("8443:interface=\\:\\:1:a=b=c"),
            (["8443"], {"interface": "::1", "a": "b=c"}),
        )
        self.assertEqual(splitArguments(""), ([], {}))


class CheckEndpointTests(SynchronousTestCase):
    """
    Tests for L{checkEndpoint}, which tap.conf uses for C{listen}.
    """

    def test_noSideEffects(self) -> None:
        """
        C{ssl:} descriptions are checked without reading certificate files
        and C{systemd:} ones without looking for systemd's sockets.
        """
        for description in [
            "ssl:8443:interface=127.0.0.1",
            "ssl:8443:privateKey=/nonexistent/key.pem",
            "systemd:index=0",
            "systemd:domain=INET6:name=echo",
            "haproxy:systemd:name=echo",
            "haproxy:unix:/tmp/x.sock",
        ]:
            checkEndpoint(description)

    def test_errors(self) -> None:
        """
        Bad systemd arguments and unknown types are errors; tap.conf reports
        them with the section and key.
        """
        for description in [
            "systemd:domain=INET",
            "systemd:index=0:name=x",
            "systemd:index=x",
            "systemd:domain=IPX:index=0",
            "systemd:0",
            "bogus:1",
        ]:
            self.assertRaises(Exception, checkEndpoint, description)
        with self.assertRaises(ConfigError) as caught:
            parseConfig("[echo]\nlisten = systemd:domain=INET\n", "tap.conf")
        self.assertIn("tap.conf: [echo] listen = 'systemd:domain=INET'", str(caught.exception))


class EndpointForTests(SynchronousTestCase):
    """
    Tests for the endpoints L{endpointFor} builds.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.options = SocketOptions(backlog=7)

    def test_haproxy(self) -> None:
        """
        C{haproxy:} gives our PROXY endpoint over the inner endpoint, with
        the service's stats, and the inner one keeps the backlog and
        C{SO_REUSEPORT} options.
        """
        stats = ConnectionStats()
        endpoint = endpointFor(
            self.reactor,
            "haproxy:tcp:8007:interface=127.0.0.1",
            SocketOptions(backlog=7, reuseport=True),
            stats=stats,
        )
        self.assertIsInstance(endpoint, ProxyHeaderEndpoint)
        self.assertIsInstance(endpoint.wrapped, ReusePortEndpoint)
        endpoint.listen(Factory())
        port, factory, backlog, interface = self.reactor.tcpServers[0]
        self.assertIsInstance(factory, ProxyHeaderFactory)
        self.assertIs(factory.stats, stats)
        self.assertEqual(backlog, 7)

    def test_ssl(self) -> None:
        """
        C{ssl:} gives TLS over a TCP endpoint; over C{haproxy:}, the PROXY
        layer is under TLS (the header precedes the handshake).
        """
        endpoint = endpointFor(self.reactor, "ssl:8443:interface=\\:\\:1", self.options)
        self.assertIsInstance(endpoint, TLSServerEndpoint)
        self.assertIsInstance(endpoint.wrapped, TCP6ServerEndpoint)
        endpoint = endpointFor(self.reactor, "haproxy:ssl:8443", self.options)
        self.assertIsInstance(endpoint, TLSServerEndpoint)
        self.assertIsInstance(endpoint.wrapped, ProxyHeaderEndpoint)
        self.assertIsInstance(endpoint.wrapped.wrapped, TCP4ServerEndpoint)

    def test_sslWithoutCertificate(self) -> None:
        """
        Listening on C{ssl:} without a certificate anywhere fails with a
        message that says where to set one.
        """
        endpoint = endpointFor(self.reactor, "ssl:8443", self.options)
        failure = self.failureResultOf(endpoint.listen(Factory()), TLSError)
        self.assertIn("[tls] certificate", failure.getErrorMessage())
        self.assertEqual(self.reactor.tcpServers, [])

    def test_tlsFiles(self) -> None:
        """
        The description's own files win over C{[tls]}; C{certKey} defaults
        to C{privateKey} (one file with both); the minimum version always
        comes from C{[tls]}.
        """
        context = ListenContext(tls=TLSFiles("c.pem", "k.pem", minimumVersion="1.3"))
        self.assertEqual(
            tlsFiles(parseListen("ssl:1"), context),
            TLSFiles("c.pem", "k.pem", minimumVersion="1.3"),
        )
        self.assertEqual(
            tlsFiles(parseListen("ssl:1:privateKey=both.pem"), context),
            TLSFiles("both.pem", "", minimumVersion="1.3"),
        )
        self.assertEqual(
            tlsFiles(parseListen("ssl:1:privateKey=k2.pem:certKey=c2.pem:extraCertChain=ch.pem"), context),
            TLSFiles("c2.pem", "k2.pem", chain="ch.pem", minimumVersion="1.3"),
        )

    def test_systemd(self) -> None:
        """
        C{systemd:} descriptions become L{SystemdEndpoint}s over the
        context's sockets; an inherited socket replaces any description.
        """
        context = ListenContext(systemd=(("echo", 3), ("web", 4)), inherited=(("tcp:8007", 9),))
        endpoint = endpointFor(self.reactor, "systemd:name=web", self.options, context)
        self.assertIsInstance(endpoint, SystemdEndpoint)
        self.assertEqual(endpoint.fileno(), 4)
        endpoint = endpointFor(self.reactor, "tcp:8007", self.options, context)
        self.assertIsInstance(endpoint, AdoptedEndpoint)
        self.assertEqual(endpoint.fileno, 9)

    def test_systemdMissing(self) -> None:
        """
        A C{systemd:} listener that systemd passed no socket for fails with
        a message saying what systemd passed.
        """
        endpoint = SystemdEndpoint(self.reactor, "systemd:index=1", (("netservices", 3),))
        failure = self.failureResultOf(endpoint.listen(Factory()), ValueError)
        self.assertIn("no socket at index 1 from systemd (systemd passed 1 socket(s)", failure.getErrorMessage())
        endpoint = SystemdEndpoint(self.reactor, "systemd:name=web", (("echo", 3),))
        failure = self.failureResultOf(endpoint.listen(Factory()), ValueError)
        self.assertIn("no socket named 'web'", failure.getErrorMessage())

    def test_echoServiceLayers(self) -> None:
        """
        The echo service passes its stats to C{haproxy:} listeners.
        """
        stats = ConnectionStats()
        settings = EchoSettings(listen=("haproxy:tcp:8007",))
        makeEchoService(settings, self.reactor, stats).privilegedStartService()
        factory = self.reactor.tcpServers[0][1]
        self.assertIs(factory.stats, stats)


class AdoptedEndpointTests(SynchronousTestCase):
    """
    Tests for L{AdoptedEndpoint} with real sockets (no connection made).
    """

    def test_adoptsAnyFamily(self) -> None:
        """
        The address family comes from the socket itself; the original
        descriptor is closed once adopted.
        """
        for family, address in [(socket.AF_INET, ("127.0.0.1", 0)), (socket.AF_INET6, ("::1", 0))]:
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.bind(address)
            except OSError:
                continue
            s.listen(1)
            fileno = s.detach()
            reactor = MemoryReactorClock()
            self.successResultOf(AdoptedEndpoint(reactor, fileno).listen(Factory()))
            [(adopted, adoptedFamily, factory)] = reactor.adoptedPorts
            self.assertEqual((adopted, adoptedFamily), (fileno, family))
            self.assertRaises(OSError, os.fstat, fileno)

    def test_notListening(self) -> None:
        """
        A descriptor that is not a listening stream socket is refused.
        """
        with socket.socket() as s:
            endpoint = AdoptedEndpoint(MemoryReactorClock(), s.fileno())
            failure = self.failureResultOf(endpoint.listen(Factory()), ValueError)
            self.assertIn("not a listening stream socket", failure.getErrorMessage())
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        failure = self.failureResultOf(AdoptedEndpoint(MemoryReactorClock(), r).listen(Factory()))
        self.assertIn("not a socket", failure.getErrorMessage())
