"""
Tests for L{services.reactor} (the C{nsepoll} reactor) and its twistd
dropin.  Unit tests build a reactor object without running it and drive its
ports by hand; integration tests run C{twistd --reactor nsepoll}.
"""

from __future__ import annotations

import importlib.util
import select
import socket
import subprocess
import sys
from typing import Any

from twisted.application.reactors import IReactorInstaller
from twisted.internet import error
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.logger import LogLevel, capturedLogs
from twisted.plugin import getPlugins
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from services import reactor as nsreactor

from .support import ROOT


def buildReactor(test: SynchronousTestCase) -> nsreactor.NetservicesReactor:
    """
    A L{nsreactor.NetservicesReactor} that is never run nor installed, and
    whose descriptors are closed when the test ends.
    """
    reactor = nsreactor.NetservicesReactor()

    def close() -> None:
        for selectable in reactor.removeAll():
            if selectable is not reactor.waker:
                selectable.connectionLost(Failure(error.ConnectionDone()))
        reactor.waker.connectionLost(None)
        reactor._poller.close()

    test.addCleanup(close)
    return reactor


class Recorder(DatagramProtocol):
    """
    Records the datagrams it receives.
    """

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Any]] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append((datagram, addr))
        if datagram == b"boom":
            raise ValueError("a protocol bug")


class PluginTests(SynchronousTestCase):
    """
    twistd finds the reactor by name, and scanning the dropin imports
    nothing of ours.
    """

    def test_found(self) -> None:
        """
        The C{nsepoll} reactor installer names L{services.reactor}.
        """
        installers = {r.shortName: r for r in getPlugins(IReactorInstaller)}
        self.assertEqual(installers["nsepoll"].moduleName, "services.reactor")

    def test_dropinImportsNothingOfOurs(self) -> None:
        """
        Importing the dropin does not import the services package.
        """
        path = ROOT / "twisted" / "plugins" / "netservices_reactor.py"
        code = (
            "import sys, importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('d', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "print(sorted(m for m in sys.modules if m == 'services' or m.startswith('services.')))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "[]")
        self.assertIsNotNone(importlib.util.find_spec("services.reactor"))

    def test_listedByTwistd(self) -> None:
        """
        C{twistd --help-reactors} lists nsepoll.
        """
        from .support import twistdCommand

        out = subprocess.run(twistdCommand() + ["--help-reactors"], capture_output=True,
                             text=True, timeout=60)
        self.assertIn("nsepoll", out.stdout)


class ReactorTests(SynchronousTestCase):
    """
    The reactor's ports and its event loop.
    """

    def test_tcpConnectionsWriteThrough(self) -> None:
        """
        listenTCP gives connections of the write-through kind, and an
        accepted connection's writes reach the peer without a reactor turn.
        """
        reactor = buildReactor(self)
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.assertIsInstance(port, nsreactor.Port)
        client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        self.addCleanup(client.close)
        select.select([port.socket], [], [], 5)
        port.doRead()
        (connection,) = [s for s in reactor.getReaders() if isinstance(s, nsreactor.Server)]
        connection.write(b"direct")
        self.assertEqual(client.recv(10), b"direct")
        self.assertEqual(reactor.getWriters(), [])

    def test_unixPort(self) -> None:
        """
        listenUNIX gives connections of the write-through kind.
        """
        reactor = buildReactor(self)
        path = self.mktemp()
        port = reactor.listenUNIX(path, Factory.forProtocol(Protocol))
        self.assertIsInstance(port, nsreactor.UNIXPort)
        self.assertIs(port.transport, nsreactor.UNIXServer)

    def test_handlerErrorsAreLogged(self) -> None:
        """
        An exception escaping from the handling of one event is logged and
        the loop goes on with the next event.
        """
        reactor = buildReactor(self)
        handled = []

        def handle(selectable: Any, fd: int, event: int) -> None:
            handled.append(fd)
            if fd == 1001:
                raise RuntimeError("broken selectable")

        class FakePoller:
            def poll(self, timeout: float, maxEvents: int) -> list[tuple[int, int]]:
                return [(1001, select.EPOLLIN), (999, select.EPOLLIN), (1002, select.EPOLLIN)]

        reactor._poller.close()
        reactor._poller = FakePoller()  # type: ignore[assignment]
        reactor._selectables[1001] = reactor._selectables[1002] = object()  # type: ignore[assignment]
        reactor._doReadOrWrite = handle  # type: ignore[method-assign]
        self.addCleanup(lambda: [reactor._selectables.pop(fd) for fd in (1001, 1002)])
        self.addCleanup(lambda: setattr(reactor, "_poller", select.epoll()))
        with capturedLogs() as events:
            reactor.doPoll(0)
        self.assertEqual(handled, [1001, 1002])
        failures = [e for e in events if e.get("log_failure") is not None]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["log_level"], LogLevel.critical)
        self.assertIsInstance(failures[0]["log_failure"].value, RuntimeError)
        self.flushLoggedErrors(RuntimeError)


class DatagramPortTests(SynchronousTestCase):
    """
    The UDP port reads every queued datagram and remembers the hosts it
    validated.
    """

    def listen(self) -> tuple[nsreactor.DatagramPort, Recorder, socket.socket]:
        reactor = buildReactor(self)
        protocol = Recorder()
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1", maxPacketSize=65535)
        self.addCleanup(port.stopListening)
        self.assertIsInstance(port, nsreactor.DatagramPort)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(5)
        self.addCleanup(peer.close)
        return port, protocol, peer

    def test_readsEveryDatagram(self) -> None:
        """
        One read event hands every queued datagram to the protocol, in
        order, with the sender's address; a protocol error is logged and the
        next datagram is still delivered.
        """
        port, protocol, peer = self.listen()
        address = ("127.0.0.1", port.getHost().port)
        for payload in (b"one", b"boom", b"three"):
            peer.sendto(payload, address)
        select.select([port.socket], [], [], 5)
        with capturedLogs() as events:
            port.doRead()
        self.assertEqual([d for d, _ in protocol.received], [b"one", b"boom", b"three"])
        self.assertEqual(protocol.received[0][1], peer.getsockname())
        self.assertEqual(len([e for e in events if e.get("log_failure") is not None]), 1)
        self.flushLoggedErrors(ValueError)

    def test_writeChecksEachHostOnce(self) -> None:
        """
        A hostname is refused like udp.Port refuses it; a valid address is
        checked once, then later datagrams to it go straight to sendto.
        """
        port, _, peer = self.listen()
        self.assertRaises(error.InvalidAddressError, port.write, b"x", ("localhost", 9))
        port.write(b"first", peer.getsockname())
        self.assertEqual(port._checkedHosts, {"127.0.0.1"})
        port.write(b"second", peer.getsockname())
        self.assertEqual(peer.recv(100), b"first")
        self.assertEqual(peer.recv(100), b"second")

    def test_checkedHostsBounded(self) -> None:
        """
        The memory of checked hosts never grows past its bound.
        """
        port, _, peer = self.listen()
        port._maxCheckedHosts = 3
        for i in range(10):
            port.write(b"x", (f"127.0.0.{i + 1}", peer.getsockname()[1]))
        self.assertLessEqual(len(port._checkedHosts), 3)
