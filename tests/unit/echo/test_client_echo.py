"""
Tests of the echo clients (L{services.echo._client}) and of
C{netservices echo} against a real C{twistd -n netservices}.
"""

from __future__ import annotations

import errno
import socket

from twisted.internet import error, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from services.cli import exits
from services.echo._client import (
    EchoMismatch,
    ProbeTimeout,
    Summary,
    TCPPipe,
    TCPProber,
    UDPPipe,
    UDPProber,
    payload,
)
from tests.clientservers import UDPEcho, cliEnvironment, runCLI
from tests.support import Daemon, freePort, isolatedConfig


class PayloadTests(SynchronousTestCase):
    """
    Probe payloads.
    """

    def test_size(self) -> None:
        """
        A payload has the size asked for and starts with its number.
        """
        for size in (8, 9, 64, 1400):
            self.assertEqual(len(payload(7, size)), size)
        self.assertEqual(payload(258, 8)[:4], b"\x00\x00\x01\x02")
        self.assertNotEqual(payload(1, 64), payload(2, 64))

    def test_summary(self) -> None:
        """
        The summary counts losses and gives min/avg/max.
        """
        summary = Summary(4, (0.001, 0.003, 0.002))
        self.assertEqual((summary.received, summary.lost), (3, 1))
        self.assertEqual(summary.minAvgMax(), (0.001, 0.002, 0.003))
        self.assertIsNone(Summary(2, ()).minAvgMax())


class TCPProberTests(SynchronousTestCase):
    """
    L{TCPProber} over a L{StringTransport}, timed by a L{Clock}.
    """

    def setUp(self) -> None:
        """
        A prober of 16-byte probes on a L{StringTransport}.
        """
        self.clock = Clock()
        self.prober = TCPProber(self.clock, size=16, timeout=2.0)
        self.transport = StringTransport()
        self.prober.makeConnection(self.transport)

    def test_roundTrip(self) -> None:
        """
        The probe is written; its echo, even in pieces, fires the round-trip
        time.
        """
        d = self.prober.probe(1)
        sent = self.transport.value()
        self.assertEqual(sent, payload(1, 16))
        self.clock.advance(0.25)
        self.prober.dataReceived(sent[:5])
        self.assertNoResult(d)
        self.prober.dataReceived(sent[5:])
        self.assertEqual(self.successResultOf(d), 0.25)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout(self) -> None:
        """
        No echo within the timeout fails with L{ProbeTimeout}.
        """
        d = self.prober.probe(1)
        self.clock.advance(2.0)
        self.failureResultOf(d, ProbeTimeout)

    def test_mismatch(self) -> None:
        """
        Different bytes back fail with L{EchoMismatch}.
        """
        d = self.prober.probe(1)
        self.prober.dataReceived(b"z" * 16)
        self.failureResultOf(d, EchoMismatch)

    def test_lost(self) -> None:
        """
        A lost connection fails the probe in flight and later ones.
        """
        d = self.prober.probe(1)
        self.prober.connectionLost(Failure(error.ConnectionLost()))
        self.failureResultOf(d, error.ConnectionLost)
        self.failureResultOf(self.prober.probe(2), error.ConnectionLost)


class FakeUDP:
    """
    A connected UDP transport that records datagrams.
    """

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.stopped = False

    def write(self, data: bytes) -> None:
        """
        Record C{data}.
        """
        self.written.append(data)

    def stopListening(self) -> None:
        """
        Note the stop.
        """
        self.stopped = True


class UDPProberTests(SynchronousTestCase):
    """
    L{UDPProber} matches replies to probes and reports refusals.
    """

    def setUp(self) -> None:
        """
        A prober of 32-byte probes on a L{FakeUDP}.
        """
        self.clock = Clock()
        self.prober = UDPProber(self.clock, size=32, timeout=1.0)
        self.transport = FakeUDP()
        self.prober.makeConnection(self.transport)  # type: ignore[arg-type]

    def test_matching(self) -> None:
        """
        Replies fire their own probe, in any order; strangers are ignored.
        """
        first, second = self.prober.probe(1), self.prober.probe(2)
        self.clock.advance(0.5)
        self.prober.datagramReceived(b"garbage", ("127.0.0.1", 7))
        self.prober.datagramReceived(self.transport.written[1], ("127.0.0.1", 7))
        self.assertEqual(self.successResultOf(second), 0.5)
        self.assertNoResult(first)
        self.clock.advance(0.5)
        self.failureResultOf(first, ProbeTimeout)

    def test_refused(self) -> None:
        """
        C{connectionRefused} fails the waiting probes with ECONNREFUSED.
        """
        d = self.prober.probe(1)
        self.prober.connectionRefused()
        failure = self.failureResultOf(d, error.ConnectionRefusedError)
        self.assertEqual(failure.value.osError, errno.ECONNREFUSED)

    def test_closedByReactor(self) -> None:
        """
        A port the reactor closed by itself (what the poll and epoll
        reactors do on ICMP port unreachable) counts as refused, and so do
        later probes.
        """
        d = self.prober.probe(1)
        self.prober.doStop()
        self.failureResultOf(d, error.ConnectionRefusedError)
        self.failureResultOf(self.prober.probe(2), error.ConnectionRefusedError)

    def test_close(self) -> None:
        """
        L{close} stops listening and is not a refusal.
        """
        self.successResultOf(self.prober.close())
        self.assertTrue(self.transport.stopped)


class PipeTests(SynchronousTestCase):
    """
    L{TCPPipe} and L{UDPPipe} pass data through and know when the echo is
    complete.
    """

    def test_tcp(self) -> None:
        """
        The pipe completes once finished and everything came back.
        """
        out: list[bytes] = []
        pipe = TCPPipe(out.append)
        transport = StringTransport()
        pipe.makeConnection(transport)
        pipe.send(b"hello ")
        pipe.send(b"world")
        pipe.finish()
        self.assertNoResult(pipe.done)
        pipe.dataReceived(b"hello world")
        self.assertEqual(self.successResultOf(pipe.done), 11)
        self.assertEqual(b"".join(out), b"hello world")
        self.assertTrue(transport.disconnecting)

    def test_tcpServerCloses(self) -> None:
        """
        A server that closes ends the pipe with what came back.
        """
        pipe = TCPPipe(lambda data: None)
        pipe.makeConnection(StringTransport())
        pipe.send(b"abc")
        pipe.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.successResultOf(pipe.done), 0)

    def test_udp(self) -> None:
        """
        Each chunk is a datagram; the pipe completes when all came back.
        """
        out: list[bytes] = []
        pipe = UDPPipe(out.append)
        transport = FakeUDP()
        pipe.makeConnection(transport)  # type: ignore[arg-type]
        pipe.send(b"one\n")
        pipe.send(b"two\n")
        pipe.finish()
        self.assertEqual(transport.written, [b"one\n", b"two\n"])
        pipe.datagramReceived(b"one\n", None)
        self.assertNoResult(pipe.done)
        pipe.datagramReceived(b"two\n", None)
        self.assertEqual(self.successResultOf(pipe.done), 2)
        self.assertEqual(out, [b"one\n", b"two\n"])


class EchoCommandTests(TestCase):
    """
    C{netservices echo} against a real C{twistd -n netservices} echo
    service, and against a local UDP echo.
    """

    timeout = 60

    async def echo(self, *args: str, stdin: bytes | None = None) -> tuple[str, str, int]:
        """
        Run C{netservices echo ARGS}; (stdout, stderr, status).
        """
        out, err, code = await runCLI(reactor, ["echo", *args], env=cliEnvironment(), stdin=stdin)
        return out.decode(), err.decode(), code

    def daemon(self) -> int:
        """
        Start a real C{twistd -n netservices} echo on a free port; return the port.
        """
        port = freePort()
        # Only the echo service: the others would take the default ports.
        daemon = Daemon([], isolatedConfig(echo=f"listen = tcp:{port}:interface=127.0.0.1"))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        return port

    async def test_stdin(self) -> None:
        """
        Standard input comes back on standard output.
        """
        port = self.daemon()
        data = b"hello\nworld\n" + bytes(range(256)) * 64
        out, err, code = await runCLI(reactor, ["echo", "127.0.0.1", str(port)], env=cliEnvironment(), stdin=data)
        self.assertEqual((code, err), (0, b""))
        self.assertEqual(out, data)

    async def test_probes(self) -> None:
        """
        --count N prints N round trips and the min/avg/max.
        """
        port = self.daemon()
        out, err, code = await self.echo("127.0.0.1", str(port), "--count", "3", "--interval", "0.05", "--size", "100")
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        for seq in (1, 2, 3):
            self.assertTrue(lines[seq - 1].startswith(f"100 bytes from 127.0.0.1:{port}: seq={seq} time="), out)
        self.assertIn("3 probes sent, 3 echoed, 0% lost", out)
        self.assertRegex(lines[-1], r"^rtt min/avg/max = [\d.]+/[\d.]+/[\d.]+ ms$")

    async def test_refused(self) -> None:
        """
        A closed port reports the errno and its name, as connect_ex would:
        111 ECONNREFUSED, exit 7.
        """
        port = freePort()
        _out, err, code = await self.echo("127.0.0.1", str(port), "--count", "1")
        self.assertEqual(code, exits.CONNECT)
        self.assertEqual(
            err,
            f"netservices echo: cannot connect to 127.0.0.1:{port}: "
            "errno 111 (ECONNREFUSED): Connection refused\n",
        )

    async def test_udpProbes(self) -> None:
        """
        --udp probes a UDP echo server.
        """
        listening = reactor.listenUDP(0, UDPEcho(), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        out, err, code = await self.echo("127.0.0.1", str(port), "--udp", "--count", "2", "--interval", "0.05")
        self.assertEqual(code, 0, err)
        self.assertIn("2 probes sent, 2 echoed, 0% lost", out)

    async def test_udpStdin(self) -> None:
        """
        Over UDP each line of standard input is a datagram, echoed back.
        """
        listening = reactor.listenUDP(0, UDPEcho(), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        out, err, code = await self.echo("127.0.0.1", str(port), "--udp", stdin=b"one\ntwo\nthree")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "one\ntwo\nthree")

    async def test_udpRefused(self) -> None:
        """
        A UDP port with nothing behind it answers ICMP port unreachable:
        exit 7 with ECONNREFUSED.
        """
        port = freePort(kind=socket.SOCK_DGRAM)
        _out, err, code = await self.echo("127.0.0.1", str(port), "--udp", "--count", "1")
        self.assertEqual(code, exits.CONNECT, err)
        self.assertIn("errno 111 (ECONNREFUSED)", err)
