"""
Tests for L{services.net.listener} and L{services.net.sockets}: listeners of
endpoint strings with socket options.
"""

from __future__ import annotations

import socket

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase, SynchronousTestCase

from services import logs
from services.net.addresses import describeAddress
from services.net.endpoints import endpointFor
from services.net.listener import (
    AcceptErrorLog,
    ListenerService,
    isListening,
    listeningPorts,
    quietAcceptErrors,
)
from services.net.sockets import ReusePortEndpoint, SocketOptions, withBacklog


class BacklogTests(SynchronousTestCase):
    """
    The configured backlog is added where the description sets none.
    """

    def test_added(self) -> None:
        """
        tcp, tcp6, unix and ssl descriptions get backlog=N.
        """
        self.assertEqual(withBacklog("tcp:80", 9), "tcp:80:backlog=9")
        self.assertEqual(withBacklog("unix:/x", 9), "unix:/x:backlog=9")
        self.assertEqual(withBacklog("TCP6:80", 9), "TCP6:80:backlog=9")

    def test_kept(self) -> None:
        """
        A description's own backlog wins; other types are untouched.
        """
        self.assertEqual(withBacklog("tcp:80:backlog=3", 9), "tcp:80:backlog=3")
        self.assertEqual(withBacklog("systemd:domain=INET:index=0", 9), "systemd:domain=INET:index=0")


class AddressTests(SynchronousTestCase):
    """
    Addresses are described the way people write them.
    """

    def test_describe(self) -> None:
        """
        IPv4, IPv6 and UNIX addresses.
        """
        self.assertEqual(describeAddress(IPv4Address("TCP", "127.0.0.1", 80)), "127.0.0.1:80")
        self.assertEqual(describeAddress(IPv6Address("TCP", "::1", 80)), "[::1]:80")
        self.assertEqual(describeAddress(UNIXAddress(b"/tmp/s")), "unix:/tmp/s")
        self.assertEqual(describeAddress(UNIXAddress(None)), "unix:(unnamed)")


class TreeTests(SynchronousTestCase):
    """
    listeningPorts and isListening walk a service tree.
    """

    def test_walk(self) -> None:
        """
        Listening ports are found at any depth; isListening needs all.
        """
        reactor = MemoryReactorClock()
        a = ListenerService("a", "tcp:1", endpointFor(reactor, "tcp:1", SocketOptions()), Factory())
        self.assertEqual(listeningPorts(a), [])
        self.assertFalse(isListening(a))
        a.privilegedStartService()
        self.assertEqual(len(listeningPorts(a)), 1)
        self.assertTrue(isListening(a))


    def test_secure(self) -> None:
        """
        A listener is secure when its description is C{ssl:}, behind a
        PROXY header or not.
        """
        reactor = MemoryReactorClock()
        endpoint = endpointFor(reactor, "tcp:1", SocketOptions())
        for description, secure in [
            ("tcp:1", False),
            ("unix:/tmp/x", False),
            ("ssl:8443:interface=127.0.0.1", True),
            ("haproxy:ssl:8443", True),
            ("haproxy:tcp:8080", False),
        ]:
            service = ListenerService("web", description, endpoint, Factory())
            self.assertEqual(service.secure, secure, description)


class RealSocketTests(TestCase):
    """
    Socket options on real loopback sockets.
    """

    def listen(self, description: str, options: SocketOptions) -> ListenerService:
        from twisted.internet import reactor

        service = ListenerService(
            "test", description, endpointFor(reactor, description, options), Factory.forProtocol(Protocol), options
        )
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def test_bufferSizesInherited(self) -> None:
        """
        SO_SNDBUF and SO_RCVBUF set on the listener reach accepted
        connections (Linux doubles the value it is given).
        """
        from twisted.internet import reactor

        options = SocketOptions(sndbuf=96 * 1024, rcvbuf=80 * 1024)
        accepted: Deferred[socket.socket] = Deferred()

        class Grab(Protocol):
            def connectionMade(self) -> None:
                accepted.callback(self.transport.getHandle())  # type: ignore[union-attr]

        service = ListenerService(
            "test",
            "tcp:0:interface=127.0.0.1",
            endpointFor(reactor, "tcp:0:interface=127.0.0.1", options),
            Factory.forProtocol(Grab),
            options,
        )
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        port = service.port.getHost().port  # type: ignore[union-attr]
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)

        def check(skt: socket.socket) -> None:
            self.assertEqual(skt.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), 2 * 96 * 1024)
            self.assertEqual(skt.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), 2 * 80 * 1024)

        return accepted.addCallback(check)

    def test_reusePortSharesAPort(self) -> None:
        """
        Two reuse-port listeners bind the same TCP port; without the option
        the second fails with an error naming the endpoint.
        """
        first = self.listen("tcp:0:interface=127.0.0.1", SocketOptions(reuseport=True))
        port = first.port.getHost().port  # type: ignore[union-attr]
        description = f"tcp:{port}:interface=127.0.0.1"
        second = self.listen(description, SocketOptions(reuseport=True))
        self.assertEqual(second.port.getHost().port, port)  # type: ignore[union-attr]
        self.assertIsInstance(second.endpoint, ReusePortEndpoint)
        with self.assertRaises(Exception) as cm:
            self.listen(description, SocketOptions(reuseport=False))
        self.assertIn(f"cannot listen on {description}", str(cm.exception))


class AcceptErrorLogTests(SynchronousTestCase):
    """
    L{AcceptErrorLog}: Twisted's per-connection events at EMFILE become
    debug events and a warning at most once a minute.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.observer = AcceptErrorLog("echo", self.clock)
        self.logger = Logger(namespace="twisted.internet.tcp.Port", observer=self.observer)
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, "info")

    def exhaust(self, connections: int) -> None:
        """
        Log what Twisted's accept loop logs at EMFILE for C{connections}
        new connections.
        """
        for i in range(connections):
            self.logger.info("EMFILE encountered; releasing reserved file descriptor.")
            self.logger.info("EMFILE recovery: Closed socket from {address}", address=("h", i))
            self.logger.info("Re-reserving EMFILE recovery file descriptor.")

    def test_demotedAndCounted(self) -> None:
        """
        Per-connection events go on at debug level; one warning says the
        process is out of descriptors; a minute later, the next event brings
        one more, which says how many connections were closed meanwhile.
        """
        with capturedLogs() as events:
            self.exhaust(100)
            self.clock.advance(30)
            self.exhaust(10)
            self.clock.advance(31)
            self.exhaust(1)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(
            [formatEvent(e) for e in warnings],
            [
                "echo: out of file descriptors: closing new connections at once until some are free",
                "echo: out of file descriptors: 110 new connections closed at once in the last 61 s",
            ],
        )
        demoted = [e for e in events if e["log_level"] == LogLevel.debug]
        self.assertEqual(len(demoted), 3 * 111)
        self.assertEqual(self.observer.closed, 111)

    def test_otherEventsUnchanged(self) -> None:
        """
        The port's other events reach the log as they were; accept errors
        that are not about descriptors are demoted without a warning.
        """
        with capturedLogs() as events:
            self.logger.info("{factory} starting on {port}", factory="F", port=1)
            self.logger.info("Could not accept new connection ({acceptError})",
                             acceptError="ECONNABORTED")
        self.assertEqual([e["log_level"] for e in events], [LogLevel.info, LogLevel.debug])

    def test_installedOnListeningPorts(self) -> None:
        """
        A L{ListenerService} routes its port's events through an
        L{AcceptErrorLog}.
        """
        port = tcp.Port(0, Factory(), reactor=MemoryReactorClock())  # built, never listening
        quietAcceptErrors(port, "echo")
        self.assertIsInstance(port._logger.observer, AcceptErrorLog)
        self.assertEqual(port._logger.namespace, "twisted.internet.tcp.Port")
