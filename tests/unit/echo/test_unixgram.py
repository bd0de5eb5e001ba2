"""
Tests of the UNIX datagram echo (L{services.echo._unixgram}): its rules on a
memory port, and a real C{unixgram:} listener built from C{[udp-echo]}.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from services.config import ConfigError, parseConfig
from services.echo import UdpEchoSettings, UnixDatagramEcho, makeUdpEchoService
from services.net.datagram import SourceLimiter, parseUnixDatagram
from tests.support import turnUntil
from tests.udpsupport import MemoryDatagramTransport


def build(rate: float = 100.0, burst: int = 200) -> tuple[UnixDatagramEcho, MemoryDatagramTransport]:
    """
    A L{UnixDatagramEcho} on a memory port at C{/run/echo.dgram}.
    """
    protocol = UnixDatagramEcho(SourceLimiter(Clock(), rate, burst, 1000.0), ["/run/echo.dgram"])
    transport = MemoryDatagramTransport(protocol)
    protocol.makeConnection(transport)
    return protocol, transport


class RulesTests(SynchronousTestCase):
    """
    The UDP echo's rules, for UNIX addresses.
    """

    def test_echo(self) -> None:
        """
        A datagram goes back whole to its sender's bound address.
        """
        protocol, transport = build()
        protocol.datagramReceived(b"hello", "/tmp/client.sock")
        self.assertEqual(transport.written, [(b"hello", "/tmp/client.sock")])
        self.assertEqual((protocol.stats.echoed, protocol.stats.bytesOut), (1, 5))

    def test_unbound(self) -> None:
        """
        A sender without an address is counted and gets nothing.
        """
        protocol, transport = build()
        for unbound in ("", None, b""):
            protocol.datagramReceived(b"x", unbound)
        self.assertEqual((transport.written, protocol.stats.unbound), ([], 3))

    def test_oversize(self) -> None:
        """
        A datagram that fills the receive buffer is dropped, not echoed cut.
        """
        protocol, transport = build()
        protocol.datagramReceived(b"x" * protocol.maxPacketSize, "/tmp/c")
        self.assertEqual((transport.written, protocol.stats.oversize), ([], 1))

    def test_loopGuard(self) -> None:
        """
        Nothing is echoed to one of our own echo sockets.
        """
        protocol, transport = build()
        protocol.datagramReceived(b"x", "/run/../run/echo.dgram")
        self.assertEqual((transport.written, protocol.stats.loopGuarded), ([], 1))

    def test_rateLimit(self) -> None:
        """
        Past its burst, a sender gets no more echoes; others still do.
        """
        protocol, transport = build(rate=1, burst=2)
        for _ in range(3):
            protocol.datagramReceived(b"x", "/tmp/a")
        protocol.datagramReceived(b"y", "/tmp/b")
        self.assertEqual(len(transport.written), 3)
        self.assertEqual(protocol.stats.rateLimited, 1)


class ConfigTests(SynchronousTestCase):
    """
    C{unixgram:} in C{[udp-echo] listen}.
    """

    def test_accepted(self) -> None:
        """
        C{unixgram:PATH[:mode=OCTAL]} is kept as written, next to UDP ones.
        """
        config = parseConfig("[udp-echo]\nlisten = unixgram:/run/e.dgram:mode=660 udp:7\n")
        self.assertEqual(config.udp_echo.listen, ("unixgram:/run/e.dgram:mode=660", "udp:7"))
        self.assertEqual(parseUnixDatagram("unixgram:/x"), ("/x", 0o666))

    def test_errors(self) -> None:
        """
        A bad mode or an unknown option is a one-line error naming the
        section, the key and what is allowed.
        """
        for text in ("unixgram:/x:mode=999", "unixgram:/x:lock=1", "unixgram:"):
            e = self.assertRaises(ConfigError, parseConfig, f"[udp-echo]\nlisten = {text}\n")
            self.assertIn("[udp-echo] listen", str(e))
            self.assertEqual(len(str(e).splitlines()), 1)


class ListenerTests(TestCase):
    """
    A real C{unixgram:} listener.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, self.directory)
        self.path = os.path.join(self.directory, "echo.dgram")

    def client(self, name: str | None) -> socket.socket:
        """
        A non-blocking client socket, bound to C{name} in the test's
        directory unless L{None}.
        """
        skt = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(skt.close)
        if name is not None:
            path = os.path.join(self.directory, name)
            skt.bind(path)
            self.addCleanup(os.unlink, path)
        skt.setblocking(False)
        return skt

    async def test_echoModeAndCleanShutdown(self) -> None:
        """
        Datagrams of 1 B, 4 KiB and 60 KiB come back whole to the bound
        sender; an unbound sender's datagram is counted and dropped; the
        file has C{mode=} and is removed when the service stops.
        """
        settings = UdpEchoSettings(listen=(f"unixgram:{self.path}:mode=620",))
        service = makeUdpEchoService(settings, reactor)
        service.startService()
        stopped = False

        def stop() -> object:
            return None if stopped else service.stopService()

        self.addCleanup(stop)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o620)
        bound, unbound = self.client("client.sock"), self.client(None)
        unbound.sendto(b"lost", self.path)
        sent = [b"x", os.urandom(4096), os.urandom(60 * 1024)]
        for data in sent:
            bound.sendto(data, self.path)
        echoed: list[bytes] = []

        def read() -> bool:
            try:
                while True:
                    echoed.append(bound.recv(70000))
            except BlockingIOError:
                return len(echoed) >= len(sent)

        await turnUntil(reactor, read, what="the echoes")
        self.assertEqual(echoed, sent)
        stats = service.stats  # type: ignore[attr-defined]
        self.assertEqual((stats.unbound, stats.echoed), (1, 3))
        stopped = True
        await service.stopService()
        self.assertFalse(os.path.exists(self.path))
