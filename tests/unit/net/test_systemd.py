# -*- test-case-name: tests.unit.net.test_systemd -*-
"""
Tests for systemd socket activation: C{systemd:} endpoints over sockets
passed as C{LISTEN_FDS}, C{LISTEN_FDNAMES} and C{LISTEN_PID}, and the unit
files in contrib/systemd.
"""

from __future__ import annotations

import configparser
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase, TestCase

from services.config import parseConfig
from services.net.systemd import namedSockets, systemdSockets
from tests.support import ROOT, Daemon, isolatedConfig, roundTrip, twistdCommand


def echoOnce(connect: socket.socket, address: object, payload: bytes) -> bytes:
    """
    Connect, send C{payload}, half-close and read the whole echo.
    """
    with connect as s:
        s.settimeout(10)
        s.connect(address)
        return roundTrip(s, payload)


class ActivatedDaemon(Daemon):
    """
    A C{twistd -n netservices} started the way systemd starts a
    socket-activated service: listening sockets from descriptor 3 on, with
    C{LISTEN_FDS}, C{LISTEN_FDNAMES} and C{LISTEN_PID} (set to the daemon's
    own process id by the wrapper that execs it).
    """

    def __init__(self, sockets: Sequence[tuple[str, socket.socket]], args: Sequence[str], config: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-test-"))
        self.logPath = self.directory / "twistd.log"
        path = self.directory / "tap.conf"
        path.write_text(config)
        command = twistdCommand() + [
            "--pidfile=", "--logfile", str(self.logPath), "-n", "netservices",
            "--config", str(path), *args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        env["LISTEN_FDS"] = str(len(sockets))
        env["LISTEN_FDNAMES"] = ":".join(name for name, _ in sockets)
        fds = ",".join(str(s.fileno()) for _, s in sockets)
        self._output = open(self.directory / "output", "wb")
        # A small exec wrapper puts the sockets at 3, 4... and sets
        # LISTEN_PID to its own process id, which twistd keeps after exec.
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ACTIVATE, fds, *command],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=[s.fileno() for _, s in sockets],
        )


_ACTIVATE = """
import os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
copies = [os.dup(fd) for fd in fds]
for i, fd in enumerate(copies):
    if fd != 3 + i:
        os.dup2(fd, 3 + i)
    os.set_inheritable(3 + i, True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def listeningTCP() -> socket.socket:
    """
    A TCP socket listening on a free loopback port, as systemd would pass.
    """
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


class SystemdSocketsTests(SynchronousTestCase):
    """
    Tests for L{namedSockets} and L{systemdSockets}.
    """

    def test_named(self) -> None:
        """
        Descriptors get the names of C{LISTEN_FDNAMES}, in order.
        """
        self.assertEqual(namedSockets([3, 4], "echo:web"), (("echo", 3), ("web", 4)))

    def test_withoutNames(self) -> None:
        """
        Without (or with mismatched) C{LISTEN_FDNAMES} the sockets are kept,
        named C{unknown}, so C{systemd:index=N} still works.
        """
        self.assertEqual(namedSockets([3, 4], None), (("unknown", 3), ("unknown", 4)))
        self.assertEqual(namedSockets([3], "a:b"), (("unknown", 3),))

    def test_notActivated(self) -> None:
        """
        A process that systemd did not start has no sockets from it.
        """
        self.assertEqual(systemdSockets({}), ())


class UnitFilesTests(SynchronousTestCase):
    """
    The unit files in contrib/systemd agree with each other and with the
    README's tap.conf snippet.
    """

    def read(self, name: str) -> configparser.RawConfigParser:
        """
        Parse a unit file of contrib/systemd.
        """
        parser = configparser.RawConfigParser(strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(ROOT / "contrib" / "systemd" / name)
        return parser

    def test_units(self) -> None:
        """
        The service requires the socket, runs twistd in the foreground and
        lets the parent stop its workers (KillMode=mixed); the socket's
        listeners match C{systemd:index=0} and C{index=1} in the tap.conf
        snippet its comment gives, which parses.
        """
        service = self.read("netservices.service")
        self.assertIn("netservices.socket", service["Unit"]["Requires"])
        self.assertIn("--nodaemon", service["Service"]["ExecStart"])
        self.assertIn(" netservices ", service["Service"]["ExecStart"])
        self.assertEqual(service["Service"]["KillMode"], "mixed")
        text = (ROOT / "contrib" / "systemd" / "netservices.socket").read_text()
        self.assertEqual(text.count("\nListenStream="), 2)
        snippet = "[echo]\nlisten = systemd:index=0\n[web]\nlisten = systemd:index=1\n"
        self.assertIn(snippet.replace("\n", "\n#   ").rstrip("# "), text.replace("#   [echo]", "[echo]"))
        parseConfig(snippet.split("[web]")[0])


class ActivationTests(TestCase):
    """
    A real daemon started with sockets the way systemd passes them.
    """

    def test_tcpAndUnix(self) -> None:
        """
        Echo serves on a TCP socket chosen by name and a UNIX socket chosen
        by index; stopping the daemon leaves the UNIX socket's file, which
        belongs to systemd, in place.
        """
        tcp = listeningTCP()
        self.addCleanup(tcp.close)
        unixPath = Path(tempfile.mkdtemp()) / "echo.sock"
        self.addCleanup(lambda: unixPath.unlink(missing_ok=True))
        unixSocket = socket.socket(socket.AF_UNIX)
        self.addCleanup(unixSocket.close)
        unixSocket.bind(str(unixPath))
        unixSocket.listen(16)

        daemon = ActivatedDaemon(
            [("echo", tcp), ("local", unixSocket)],
            [],
            isolatedConfig(echo="listen = systemd:name=echo systemd:domain=UNIX:index=1"),
        )
        self.addCleanup(daemon.stop)
        daemon.waitForLog("echo listening on systemd:domain=UNIX:index=1")
        address = tcp.getsockname()
        tcp.close()  # only the daemon's copy is left
        self.assertEqual(echoOnce(socket.socket(), address, b"over tcp"), b"over tcp")
        self.assertEqual(
            echoOnce(socket.socket(socket.AF_UNIX), str(unixPath), b"over unix"), b"over unix"
        )
        # twistd ends itself with the signal it got, once stopped cleanly.
        self.assertIn(daemon.stop(), (0, -15))
        self.assertNotIn("Traceback", daemon.log())
        self.assertTrue(unixPath.exists())

    def test_workers(self) -> None:
        """
        Echo and web serve on sockets from systemd, by index; with workers,
        the parent hands those sockets to them.
        """
        echoSocket, webSocket = listeningTCP(), listeningTCP()
        self.addCleanup(echoSocket.close)
        self.addCleanup(webSocket.close)
        daemon = ActivatedDaemon(
            [("netservices", echoSocket), ("netservices", webSocket)],
            ["--workers", "2"],
            isolatedConfig(echo="listen = systemd:index=0", web="listen = systemd:index=1"),
        )
        self.addCleanup(daemon.stop)
        for worker in (1, 2):
            daemon.waitForLog(f"[worker-{worker}] web listening on systemd:index=1")
        echoAddress, (host, webPort) = echoSocket.getsockname(), webSocket.getsockname()
        echoSocket.close()
        webSocket.close()
        for i in range(5):
            self.assertEqual(echoOnce(socket.socket(), echoAddress, b"%d" % i), b"%d" % i)
        connection = http.client.HTTPConnection(host, webPort, timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        connection.close()
        self.assertEqual(response.status, 200)
        self.assertIn(b"Hello World", body)

    def test_notActivated(self) -> None:
        """
        A C{systemd:} listener without systemd's sockets stops the daemon
        with one line saying so.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        conf = Path(tempfile.mkdtemp()) / "tap.conf"
        self.addCleanup(shutil.rmtree, conf.parent)
        conf.write_text(isolatedConfig(echo="listen = systemd:index=0"))
        command = twistdCommand() + ["--pidfile=", "-n", "netservices", "--config", str(conf)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env, cwd=tempfile.gettempdir())
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(
            "netservices: error: echo: cannot listen on systemd:index=0: no socket at index 0 "
            "from systemd (systemd passed 0 socket(s)",
            output,
        )
        self.assertNotIn("Traceback", output)
