"""
Tests for L{services.nsepoll._reactor} (the C{nsepoll} reactor) and its twistd
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

from services.nsepoll import _reactor as nsreactor

from tests.support import RecordingProducer, buildReactor, servicesImportedBy


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
        The C{nsepoll} reactor installer names L{services.nsepoll}, whose
        C{install} installs L{services.nsepoll._reactor.NetservicesReactor}.
        """
        installers = {r.shortName: r for r in getPlugins(IReactorInstaller)}
        self.assertEqual(installers["nsepoll"].moduleName, "services.nsepoll")

    def test_dropinImportsNothingOfOurs(self) -> None:
        """
        Importing the dropin does not import the services package.
        """
        self.assertEqual(servicesImportedBy("netservices_reactor.py"), [])
        self.assertIsNotNone(importlib.util.find_spec("services.nsepoll._reactor"))

    def test_listedByTwistd(self) -> None:
        """
        C{twistd --help-reactors} lists nsepoll.
        """
        from tests.support import twistdCommand

        out = subprocess.run(twistdCommand() + ["--help-reactors"], capture_output=True,
                             text=True, timeout=60)
        self.assertIn("nsepoll", out.stdout)


class ReactorTests(SynchronousTestCase):
    """
    The reactor's ports and its event loop.
    """

    def test_tcpConnectionsFlushed(self) -> None:
        """
        listenTCP gives connections that the reactor flushes: an accepted
        connection's writes reach the peer at the flush, without
        registering for writability.
        """
        reactor = buildReactor(self)
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.assertIsInstance(port, nsreactor.Port)
        client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        self.addCleanup(client.close)
        select.select([port.socket], [], [], 5)
        port.doRead()
        (connection,) = [s for s in reactor.getReaders() if isinstance(s, nsreactor.Server)]
        connection.write(b"flushed")
        reactor._flush()
        self.assertEqual(client.recv(10), b"flushed")
        self.assertEqual(reactor.getWriters(), [])

    def test_adoptedSockets(self) -> None:
        """
        Adopted listening sockets (TCP, UNIX, UDP) and adopted connections
        get this reactor's classes.
        """
        reactor = buildReactor(self)
        with socket.socket() as tcpSocket:
            tcpSocket.bind(("127.0.0.1", 0))
            tcpSocket.listen()
            tcpSocket.setblocking(False)
            port = reactor.adoptStreamPort(tcpSocket.fileno(), socket.AF_INET,
                                           Factory.forProtocol(Protocol))
        self.assertIsInstance(port, nsreactor.Port)
        with socket.socket(socket.AF_UNIX) as unixSocket:
            unixSocket.bind(self.mktemp())
            unixSocket.listen()
            unixSocket.setblocking(False)
            port = reactor.adoptStreamPort(unixSocket.fileno(), socket.AF_UNIX,
                                           Factory.forProtocol(Protocol))
        self.assertIsInstance(port, nsreactor.UNIXPort)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udpSocket:
            udpSocket.bind(("127.0.0.1", 0))
            udpSocket.setblocking(False)
            udpPort = reactor.adoptDatagramPort(udpSocket.fileno(), socket.AF_INET, Recorder())
        self.addCleanup(udpPort.stopListening)
        self.assertIsInstance(udpPort, nsreactor.DatagramPort)
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        with ours:
            ours.setblocking(False)
            connection = reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX,
                                                       Factory.forProtocol(Protocol))
        self.assertIsInstance(connection, nsreactor.UNIXServer)
        self.assertRaises(error.UnsupportedAddressFamily, reactor.adoptDatagramPort,
                          0, socket.AF_UNIX, Recorder())

    def test_hostAddressAskedOnce(self) -> None:
        """
        A connection's local address is read from the kernel once.
        """
        reactor = buildReactor(self)
        connection, client = accepted(self, reactor)
        calls = []
        real = connection.socket

        class Counting:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def getsockname(self) -> Any:
                calls.append(True)
                return real.getsockname()

        connection.socket = Counting()  # type: ignore[assignment]
        self.addCleanup(setattr, connection, "socket", real)
        first, second = connection.getHost(), connection.getHost()
        self.assertEqual(first, second)
        self.assertEqual((first.host, first.port), client.getpeername())
        self.assertEqual(len(calls), 1)

    def test_unixPort(self) -> None:
        """
        listenUNIX gives connections of the write-through kind.
        """
        reactor = buildReactor(self)
        path = self.mktemp()
        port = reactor.listenUNIX(path, Factory.forProtocol(Protocol))
        self.assertIsInstance(port, nsreactor.UNIXPort)
        self.assertIs(port.transport, nsreactor.UNIXServer)
        self.assertTrue(issubclass(nsreactor.UNIXServer, nsreactor.FlushMixin))

    def fakeEvents(self, reactor: nsreactor.NetservicesReactor,
                   events: list[tuple[int, int]], selectables: dict[int, Any]) -> None:
        """
        Make C{reactor}'s next poll return C{events} for C{selectables}.
        """

        class FakePoller:
            def poll(self, timeout: float, maxEvents: int) -> list[tuple[int, int]]:
                return events

        reactor._poller.close()
        reactor._poller = FakePoller()  # type: ignore[assignment]
        reactor._selectables.update(selectables)
        self.addCleanup(lambda: [reactor._selectables.pop(fd) for fd in selectables])
        self.addCleanup(lambda: setattr(reactor, "_poller", select.epoll()))

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

        writable = select.EPOLLOUT
        self.fakeEvents(reactor, [(1001, writable), (999, writable), (1002, writable)],
                        {1001: object(), 1002: object()})
        reactor._doReadOrWrite = handle  # type: ignore[method-assign]
        with capturedLogs() as events:
            reactor.doPoll(0)
        self.assertEqual(handled, [1001, 1002])
        failures = [e for e in events if e.get("log_failure") is not None]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["log_level"], LogLevel.critical)
        self.assertIsInstance(failures[0]["log_failure"].value, RuntimeError)
        self.flushLoggedErrors(RuntimeError)

    def test_readErrorsDisconnect(self) -> None:
        """
        On the read-only fast path, as in Twisted's own handling: an
        exception from C{doRead} is logged and disconnects that selectable
        with it, a true return value disconnects it cleanly, a selectable
        whose descriptor went away is disconnected without a read, and the
        loop goes on with the next event.
        """
        reactor = buildReactor(self)

        class Selectable:
            def __init__(self, fd: int, result: Any, raises: bool = False) -> None:
                self.fd, self.result, self.raises = fd, result, raises
                self.reads = 0
                self.lost: list[Any] = []

            def fileno(self) -> int:
                return self.fd

            def doRead(self) -> Any:
                self.reads += 1
                if self.raises:
                    raise self.result
                return self.result

            def connectionLost(self, reason: Failure) -> None:
                self.lost.append(reason.value)

        boom = RuntimeError("broken protocol")
        broken = Selectable(1001, boom, raises=True)
        done = Selectable(1002, error.ConnectionDone())
        gone = Selectable(-1, None)
        fine = Selectable(1004, None)
        readable = select.EPOLLIN
        self.fakeEvents(reactor, [(1001, readable), (1002, readable), (1003, readable),
                                  (1004, readable)],
                        {1001: broken, 1002: done, 1003: gone, 1004: fine})
        reactor.doPoll(0)
        self.assertEqual([broken.reads, done.reads, gone.reads, fine.reads], [1, 1, 0, 1])
        self.assertEqual(broken.lost, [boom])
        self.assertIsInstance(done.lost[0], error.ConnectionDone)
        self.assertIsInstance(gone.lost[0], error.ConnectionFdescWentAway)
        self.assertEqual(fine.lost, [])
        self.assertEqual([f.value for f in self.flushLoggedErrors()], [boom])


def accepted(test: SynchronousTestCase, reactor: nsreactor.NetservicesReactor,
             protocol: Any = None) -> tuple[nsreactor.Server, socket.socket]:
    """
    A connection accepted by C{reactor}'s TCP port (with C{protocol}) and
    the client's end of it.
    """
    protocol = protocol if protocol is not None else Protocol()
    port = reactor.listenTCP(0, Factory.forProtocol(lambda: protocol), interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
    test.addCleanup(client.close)
    select.select([port.socket], [], [], 5)
    port.doRead()
    (connection,) = [s for s in reactor.getReaders() if isinstance(s, nsreactor.Server)]
    return connection, client


class FlushTests(SynchronousTestCase):
    """
    Connections are flushed by the reactor after each batch of events and after the
    timed calls: writes are coalesced, stay in order, and register for
    writability only when the kernel does not take everything.
    """

    def test_writesOfOneEventAreOneSend(self) -> None:
        """
        Several writes made while handling one event are nothing on the wire
        until the flush, then arrive together, in order, with no
        writability registration.
        """
        reactor = buildReactor(self)
        connection, client = accepted(self, reactor)
        connection.write(b"HTTP/1.1 200 OK\r\n")
        connection.writeSequence([b"Content-Length: 5\r\n", b"\r\n"])
        connection.write(b"hello")
        client.setblocking(False)
        self.assertRaises(BlockingIOError, client.recv, 100)
        self.assertEqual(reactor.getWriters(), [])
        reactor._flush()
        client.setblocking(True)
        self.assertEqual(client.recv(100), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        self.assertEqual(reactor.getWriters(), [])

    def test_eventHandlingFlushes(self) -> None:
        """
        doPoll flushes what a read event's handler wrote (an echo).
        """
        reactor = buildReactor(self)

        class Echo(Protocol):
            def dataReceived(self, data: bytes) -> None:
                self.transport.write(data)

        connection, client = accepted(self, reactor, Echo())
        client.sendall(b"ping")
        for _ in range(100):
            reactor.doPoll(0.05)
            client.setblocking(False)
            try:
                data = client.recv(10)
                break
            except BlockingIOError:
                continue
        self.assertEqual(data, b"ping")
        self.assertEqual(reactor.getWriters(), [])

    def test_timedCallsFlushed(self) -> None:
        """
        What a timed call writes is flushed when the timed calls have run.
        """
        reactor = buildReactor(self)
        connection, client = accepted(self, reactor)
        reactor.callLater(0, connection.write, b"later")
        reactor.runUntilCurrent()
        self.assertEqual(client.recv(10), b"later")

    def test_partialSendRegistersAndKeepsOrder(self) -> None:
        """
        When the kernel takes only part, the rest stays queued, the
        connection registers for writability, later writes queue behind,
        a streaming producer is paused past the buffer size, and draining
        delivers everything in order and unregisters.
        """
        reactor = buildReactor(self)
        connection, client = accepted(self, reactor)
        connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        producer = RecordingProducer()
        connection.registerProducer(producer, True)
        payload = bytes(range(256)) * 4096
        connection.write(payload)
        self.assertEqual(producer.calls, ["pause"])
        reactor._flush()
        self.assertEqual(reactor.getWriters(), [connection])
        connection.write(b"tail")
        self.assertEqual(reactor._toFlush, [])  # already registered: no flush
        received = bytearray()
        client.setblocking(False)
        for _ in range(10_000):
            if len(received) == len(payload) + 4:
                break
            select.select([client], [connection.socket], [], 0.05)
            connection.doWrite()
            try:
                while True:
                    received += client.recv(1 << 20)
            except BlockingIOError:
                pass
        self.assertEqual(bytes(received), payload + b"tail")
        self.assertEqual(reactor.getWriters(), [])
        self.assertEqual(producer.calls[0], "pause")
        self.assertEqual(producer.calls[-1], "resume")

    def test_loseConnectionFlushesThenCloses(self) -> None:
        """
        loseConnection after a write: the flush sends the bytes, then the
        connection closes.
        """
        reactor = buildReactor(self)
        lost = []

        class Closing(Protocol):
            def connectionLost(self, reason: Failure) -> None:
                lost.append(reason.type)

        connection, client = accepted(self, reactor, Closing())
        connection.write(b"bye")
        connection.loseConnection()
        reactor._flush()
        self.assertEqual(client.recv(10), b"bye")
        self.assertEqual(client.recv(10), b"")
        self.assertEqual(lost, [error.ConnectionDone])

    def test_closedConnectionNotFlushed(self) -> None:
        """
        A connection lost before its flush is skipped.
        """
        reactor = buildReactor(self)
        connection, _ = accepted(self, reactor)
        connection.write(b"never")
        connection.connectionLost(Failure(error.ConnectionDone()))
        reactor._flush()
        self.assertEqual(reactor._toFlush, [])


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


class ReactorChoiceTests(SynchronousTestCase):
    """
    C{twistd netservices} runs on nsepoll unless C{[netservices] reactor}
    says C{twisted} or twistd is given C{--reactor}.
    """

    def run_python(self, code: str) -> str:
        """
        Run C{code} in a fresh interpreter (no reactor installed yet) and
        return what it printed.
        """
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, check=True)
        return out.stdout.strip()

    def test_installsNsepollFirst(self) -> None:
        """
        In a process with no reactor yet, C{nsepoll} installs
        L{nsreactor.NetservicesReactor} as the global reactor.
        """
        code = (
            "from services.daemon.tap import installConfiguredReactor\n"
            "print(installConfiguredReactor('nsepoll'))\n"
            "from twisted.internet import reactor\n"
            "print(type(reactor).__name__)\n"
        )
        self.assertEqual(self.run_python(code).split(), ["True", "NetservicesReactor"])

    def test_leavesAnInstalledReactor(self) -> None:
        """
        A reactor installed before (here, the tests' own) stays: nothing
        is installed and no error is raised.  C{twisted} never installs.
        """
        from services.daemon.tap import installConfiguredReactor
        from twisted.internet import reactor

        self.assertFalse(installConfiguredReactor("nsepoll"))
        self.assertFalse(installConfiguredReactor("twisted"))
        from twisted.internet import reactor as after

        self.assertIs(after, reactor)

    def test_libraryParsingInstallsNothing(self) -> None:
        """
        Parsing L{services.daemon.tap.Options} outside twistd (a program of its
        own, or a test) leaves the choice of reactor to that program.
        """
        code = (
            "import sys\n"
            "from services.daemon.tap import Options\n"
            "Options().parseOptions(['--no-echo'])\n"
            "print('twisted.internet.reactor' in sys.modules)\n"
        )
        self.assertEqual(self.run_python(code), "False")

    def assertRunsOn(self, name: str, args: list[str], netservices: str) -> None:
        """
        A real C{twistd} with twistd options C{args} and the
        C{[netservices]} section C{netservices} logs that it runs on the
        reactor class C{name}.
        """
        from tests.support import Daemon, isolatedConfig

        daemon = Daemon([], isolatedConfig(netservices=netservices), twistdArgs=args)
        self.addCleanup(daemon.stop)
        daemon.waitForLog(f") on {name}")

    def test_twistdDefault(self) -> None:
        """
        With neither the key nor C{--reactor}, twistd netservices runs on
        nsepoll.
        """
        self.assertRunsOn("NetservicesReactor", [], "")

    def test_configTwisted(self) -> None:
        """
        C{[netservices] reactor = twisted} runs on Twisted's own reactor
        (epoll on Linux).
        """
        self.assertRunsOn("EPollReactor", [], "reactor = twisted")

    def test_flagWins(self) -> None:
        """
        twistd's C{--reactor} wins over C{[netservices] reactor}.
        """
        self.assertRunsOn("PollReactor", ["--reactor=poll"], "reactor = nsepoll")


class Collecting(Protocol):
    """
    Keeps what it receives and how its connection ended.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lost.append(reason)


class LeanServerTests(SynchronousTestCase):
    """
    The TCP connections' own read path and their log prefix and C{repr},
    made when asked for.
    """

    def test_readHandsDataToProtocol(self) -> None:
        """
        C{doRead} hands what it reads to the protocol; with nothing to read
        it returns nothing; at the end of the peer's data it returns the
        reason the connection is done.
        """
        reactor = buildReactor(self)
        protocol = Collecting()
        connection, client = accepted(self, reactor, protocol)
        self.assertIsNone(connection.doRead())
        client.sendall(b"hello")
        select.select([connection.socket], [], [], 5)
        self.assertIsNone(connection.doRead())
        self.assertEqual(protocol.received, [b"hello"])
        client.shutdown(socket.SHUT_WR)
        select.select([connection.socket], [], [], 5)
        self.assertIsInstance(connection.doRead(), error.ConnectionDone)

    def test_namesAsTwistedMakesThem(self) -> None:
        """
        C{logstr}, C{logPrefix()} and C{repr} are those of Twisted's own
        connection, without being kept by the connection.
        """
        reactor = buildReactor(self)
        connection, client = accepted(self, reactor)
        port = connection.server.getHost().port
        host = client.getsockname()[0]
        self.assertEqual(connection.logstr, f"Protocol,{connection.sessionno},{host}")
        self.assertEqual(connection.logPrefix(), connection.logstr)
        self.assertEqual(repr(connection), f"<Protocol #{connection.sessionno} on {port}>")
        self.assertNotIn("logstr", vars(connection))
        self.assertNotIn("repstr", vars(connection))

    def test_adoptedConnectionKeepsItsRepr(self) -> None:
        """
        An adopted connection, whose C{repr} names its local port (not a
        listening port's), keeps it.
        """
        reactor = buildReactor(self)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            client = socket.create_connection(listener.getsockname(), timeout=5)
            self.addCleanup(client.close)
            ours, _ = listener.accept()
        with ours:
            ours.setblocking(False)
            connection = reactor.adoptStreamConnection(ours.fileno(), socket.AF_INET,
                                                       Factory.forProtocol(Protocol))
        local = connection.socket.getsockname()[1]
        self.assertEqual(repr(connection), f"<Protocol #{connection.sessionno} on {local}>")


class MainLoopTests(SynchronousTestCase):
    """
    The main loop polls only, unless timed calls are due, new ones were
    made, a thread called in or the reactor stops; it runs all of those as
    Twisted's loop does.
    """

    def test_timedAndThreadCallsRun(self) -> None:
        """
        Timed calls run at their time, in order, new ones made by timed
        calls too; calls from threads run; C{stop} ends the loop and fires
        the shutdown triggers.
        """
        reactor = buildReactor(self)
        calls: list[str] = []
        reactor.addSystemEventTrigger("before", "shutdown", calls.append, "shutdown")

        def first() -> None:
            calls.append("first")
            reactor.callLater(0.01, second)

        def second() -> None:
            calls.append("second")
            reactor.callFromThread(third)

        def third() -> None:
            calls.append("third")
            reactor.stop()

        reactor.callLater(0.02, first)
        cancelled = reactor.callLater(0.01, calls.append, "cancelled")
        cancelled.cancel()
        reactor.callLater(0.5, reactor.crash)  # bounds the test if the loop misbehaves
        reactor.run(installSignalHandlers=False)
        self.assertEqual(calls, ["first", "second", "third", "shutdown"])

    def test_errorsLoggedAndLoopGoesOn(self) -> None:
        """
        An error escaping from a turn of the loop is logged as Twisted logs
        it, and the loop goes on.
        """
        reactor = buildReactor(self)
        turns = []
        poll = reactor.doIteration

        def failingOnce(timeout: Any) -> None:
            turns.append(timeout)
            if len(turns) == 1:
                raise RuntimeError("broken poll")
            poll(timeout)

        reactor.doIteration = failingOnce  # type: ignore[method-assign]
        reactor.callLater(0.01, reactor.stop)
        with capturedLogs() as events:
            reactor.run(installSignalHandlers=False)
        self.assertGreater(len(turns), 1)
        failures = [e for e in events if e.get("log_failure") is not None]
        self.assertEqual([f["log_format"] for f in failures], ["Unexpected error in main loop"])
        self.assertEqual(failures[0]["log_namespace"], "twisted.internet.base")
        self.assertIn("Main loop terminated.", [e.get("log_format") for e in events])
        self.flushLoggedErrors(RuntimeError)

    def test_loopHandlesReadEvents(self) -> None:
        """
        The loop's own poll (it does not call C{doPoll}) hands read events
        to the connections, flushes what they wrote once the events are
        handled, and disconnects a connection whose protocol raised, with
        the error logged.
        """
        reactor = buildReactor(self)
        handled: list[bytes] = []
        lost: list[Any] = []

        class Echoing(Protocol):
            def dataReceived(self, data: bytes) -> None:
                handled.append(data)
                if data == b"boom":
                    raise RuntimeError("broken protocol")
                self.transport.write(data)  # type: ignore[union-attr]

            def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
                lost.append(reason.value)
                if len(lost) == 1:
                    reactor.stop()

        port = reactor.listenTCP(0, Factory.forProtocol(Echoing), interface="127.0.0.1")
        self.addCleanup(lambda: port.connected and port.connectionLost(None))
        address = ("127.0.0.1", port.getHost().port)
        fine = socket.create_connection(address, timeout=5)
        self.addCleanup(fine.close)
        fine.sendall(b"ping")
        broken = socket.create_connection(address, timeout=5)
        self.addCleanup(broken.close)
        broken.sendall(b"boom")
        reactor.callLater(5, reactor.crash)  # bounds the test if the loop misbehaves
        reactor.run(installSignalHandlers=False)
        self.assertEqual(sorted(handled), [b"boom", b"ping"])
        self.assertEqual(fine.recv(4), b"ping")
        self.assertIsInstance(lost[0], RuntimeError)
        self.assertEqual(broken.recv(4), b"")
        self.assertEqual([f.value for f in self.flushLoggedErrors(RuntimeError)], [lost[0]])
