"""
Integration tests: a real C{twistd -n netservices} echo service on loopback
ports and UNIX sockets, driven by plain sockets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import select
import socket
import time
from pathlib import Path

import psutil
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.echoload import echoLoad
from tests.support import (
    Daemon,
    canConnect,
    freePort,
    hasIPv6Loopback,
    isolatedConfig,
    roundTrip,
    runTwistd,
    waitUntil,
)


class EchoDaemonTests(SynchronousTestCase):
    """
    A real daemon echoes on every kind of listener.
    """

    def start(self, *listen: str, extra: str = "") -> Daemon:
        daemon = Daemon([], config=isolatedConfig(echo="listen = " + " ".join(listen) + "\n" + extra))
        self.addCleanup(daemon.stop)
        daemon.waitForLog("echo listening on", timeout=20)
        return daemon

    def test_tcpUnixAndHalfClose(self) -> None:
        """
        One daemon listens on TCP and on a UNIX socket at once; both echo
        every byte, and a half-closed client gets its whole echo.
        """
        port = freePort()
        # AF_UNIX paths are limited to 107 bytes: keep this one short.
        directory = Path(tempfile.mkdtemp(prefix="ns-"))
        self.addCleanup(shutil.rmtree, directory, True)
        path = directory / "echo.sock"
        daemon = self.start(f"tcp:{port}:interface=127.0.0.1", f"unix:{path}:mode=600")
        daemon.waitForTCP(port)
        payload = os.urandom(300_000)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            self.assertEqual(roundTrip(s, payload), payload)
        waitUntil(path.exists, 10, "the UNIX socket")
        self.assertEqual(path.stat().st_mode & 0o777, 0o600)
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(path))
            self.assertEqual(roundTrip(s, b"over unix"), b"over unix")

    def test_ipv6Loopback(self) -> None:
        """
        A tcp6 listener on ::1 echoes.
        """
        if not hasIPv6Loopback():
            raise SkipTest("this machine has no IPv6 loopback (::1)")
        port = freePort(host="::1")
        self.start(f"tcp6:{port}:interface=\\:\\:1")
        waitUntil(lambda: canConnect("::1", port), 15, "the tcp6 listener")
        with socket.create_connection(("::1", port), timeout=10) as s:
            self.assertEqual(roundTrip(s, b"over ipv6"), b"over ipv6")

    def test_hundredConcurrentClients(self) -> None:
        """
        Item 1: 100 concurrent clients each send 1 MB in random chunk sizes while
        reading: every echo is byte-identical (sha256) and nothing fails.
        """
        port = freePort()
        daemon = self.start(f"tcp:{port}:interface=127.0.0.1")
        daemon.waitForTCP(port)
        result = echoLoad(("127.0.0.1", port), clients=100, size=1_000_000, timeout=120)
        print(f"\nitem 1: {result.ok} of 100 clients x 1 MB echoed intact in {result.seconds:.2f} s, "
              f"{len(result.errors)} errors")
        self.assertEqual(result.errors, ())
        self.assertEqual(result.ok, 100)

    def test_unreadUploadKeepsMemoryBounded(self) -> None:
        """
        Item 2: a client that sends 200 MB without reading is held back by
        TCP flow control within 16 MB sent, the server's RSS grows by less
        than 20 MB, and once the client reads, every byte comes back in
        order (sha256 equal).
        """
        port = freePort()
        daemon = self.start(f"tcp:{port}:interface=127.0.0.1")
        daemon.waitForTCP(port)
        server = psutil.Process(daemon.process.pid)
        baseline = server.memory_info().rss
        total = 200 * 1024 * 1024
        block = os.urandom(1024 * 1024)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(sock.close)
        sock.setblocking(False)
        sentDigest = hashlib.sha256()
        receivedDigest = hashlib.sha256()
        sent = received = 0

        def sendSome() -> bool:
            nonlocal sent
            piece = block[sent % len(block) :][: total - sent]
            try:
                n = sock.send(piece)
            except BlockingIOError:
                return False
            sentDigest.update(piece[:n])
            sent += n
            return True

        # Phase 1: send without reading until the sender has been blocked
        # for a whole second.
        lastProgress = time.monotonic()
        deadline = lastProgress + 60
        while sent < total and time.monotonic() < deadline:
            select.select([], [sock], [], 0.1)
            if sendSome():
                lastProgress = time.monotonic()
            elif time.monotonic() - lastProgress > 1.0:
                break
        blockedAt = sent
        peak = max(baseline, server.memory_info().rss)
        self.assertLess(blockedAt, total, "the sender was never held back")
        self.assertLess(blockedAt, 16 * 1024 * 1024, f"the sender was blocked only after {blockedAt} bytes")

        # Phase 2: read everything back while sending the rest.
        deadline = time.monotonic() + 120
        while received < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 0.5)
            if writable:
                sendSome()
            if readable:
                data = sock.recv(1 << 20)
                if not data:
                    break
                receivedDigest.update(data)
                received += len(data)
                if received % (8 << 20) < len(data):
                    peak = max(peak, server.memory_info().rss)
        peak = max(peak, server.memory_info().rss)
        self.assertEqual(received, total)
        self.assertEqual(receivedDigest.hexdigest(), sentDigest.hexdigest())
        growth = peak - baseline
        print(f"\nitem 2: sender blocked after {blockedAt / 2**20:.1f} MB, "
              f"server RSS growth {growth / 2**20:.1f} MB")
        self.assertLess(growth, 20 * 1024 * 1024, f"server RSS grew by {growth} bytes")

    def test_sigtermExitsCleanly(self) -> None:
        """
        SIGTERM stops the daemon with no traceback in its log.
        """
        port = freePort()
        daemon = Daemon([], config=isolatedConfig(echo=f"listen = tcp:{port}:interface=127.0.0.1\n"))
        daemon.waitForTCP(port)
        status = daemon.stop()
        self.assertIn(status, (0, -15))


class UserErrorTests(SynchronousTestCase):
    """
    Mistakes stop twistd with one line and a non-zero status.
    """

    def test_badConfigValue(self) -> None:
        """
        A bad value in the file: exit 1, one line naming file, section, key,
        value and what is allowed, no traceback.
        """
        path = Path(self.mktemp()).absolute()
        path.write_text("[echo]\nidle_timeout = soon\n")
        result = runTwistd(["--config", str(path)])
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr.strip(),
            f"netservices: error: {path}: [echo] idle_timeout = 'soon': "
            "expected a number of seconds, e.g. 30 or 0.5",
        )
        self.assertNotIn("Traceback", result.stdout + result.stderr)

    def test_badEndpointFlag(self) -> None:
        """
        A bad endpoint on the command line: exit 1 and one line.
        """
        result = runTwistd(["--echo", "tcp:port"])
        self.assertEqual(result.returncode, 1)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn("--echo 'tcp:port': not a server endpoint", lines[0])

    def test_portInUse(self) -> None:
        """
        A port already in use: exit 1 with one line naming the endpoint.
        """
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            path = Path(self.mktemp()).absolute()
            path.write_text(isolatedConfig(echo=f"listen = tcp:{port}:interface=127.0.0.1\n"))
            result = runTwistd(["--config", str(path)])
        self.assertEqual(result.returncode, 1)
        output = result.stdout + result.stderr
        self.assertIn(
            f"netservices: error: echo: cannot listen on tcp:{port}:interface=127.0.0.1: "
            "address already in use",
            output,
        )
        self.assertNotIn("Traceback", output)
