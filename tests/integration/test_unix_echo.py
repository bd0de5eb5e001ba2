"""
The UNIX datagram and SEQPACKET echo listeners in a real
C{twistd -n netservices}, driven by C{netservices echo --unix}.
"""

from __future__ import annotations

import os
import signal
import stat
import tempfile

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from services.cli import exits
from tests.clientservers import cliEnvironment, runCLI
from tests.support import Daemon, isolatedConfig


class UnixEchoDaemonTests(TestCase):
    """
    One daemon with a C{unixseq:} echo and a C{unixgram:} UDP echo.
    """

    timeout = 120

    def setUp(self) -> None:
        # The sockets go in a directory of the test's own, which it can
        # look into after the daemon (and its directory) is gone.
        self.directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, self.directory)
        self.seq = os.path.join(self.directory, "echo.seq")
        self.dgram = os.path.join(self.directory, "echo.dgram")
        config = isolatedConfig(
            echo=f"listen = unixseq:{self.seq}:mode=660",
            udp_echo=f"enabled = yes\nlisten = unixgram:{self.dgram}:mode=600",
        )
        self.daemon = Daemon([], config=config)
        self.addCleanup(self.daemon.stop)
        self.daemon.waitForLog("udp-echo listening on unixgram:")
        self.daemon.waitForLog("echo listening on unixseq:")

    async def echo(self, *args: str, stdin: bytes | None = None) -> tuple[str, str, int]:
        """
        Run C{netservices echo ARGS}; (stdout, stderr, status).
        """
        out, err, code = await runCLI(reactor, ["echo", *args], env=cliEnvironment(), stdin=stdin)
        return out.decode(), err.decode(), code

    async def test_echoesThenCleanShutdown(self) -> None:
        """
        Probes of 8 B (the smallest probe), 4 KiB and 200 KiB over
        SEQPACKET, 60 KiB datagrams, and standard input line by line over
        both; the files have their modes, and a clean shutdown (SIGTERM)
        removes them.
        """
        self.assertEqual(stat.S_IMODE(os.stat(self.seq).st_mode), 0o660)
        self.assertEqual(stat.S_IMODE(os.stat(self.dgram).st_mode), 0o600)
        for size in ("8", "4096", str(200 * 1024)):
            out, err, code = await self.echo(
                "--unix", self.seq, "--seqpacket", "--count", "2", "--interval", "0.05", "--size", size
            )
            self.assertEqual(code, exits.OK, err)
            self.assertIn("2 probes sent, 2 echoed, 0% lost", out)
        out, err, code = await self.echo("--unix", self.dgram, "--dgram", "--count", "2",
                                         "--interval", "0.05", "--size", "60000")
        self.assertEqual(code, exits.OK, err)
        self.assertIn("2 probes sent, 2 echoed, 0% lost", out)
        for kind in ("--seqpacket", "--dgram"):
            path = self.seq if kind == "--seqpacket" else self.dgram
            out, err, code = await self.echo("--unix", path, kind, stdin=b"one\ntwo\n")
            self.assertEqual((out, code), ("one\ntwo\n", exits.OK), err)
        self.daemon.process.send_signal(signal.SIGTERM)
        self.daemon.process.wait(30)
        self.assertIn("Server Shut Down", self.daemon.log())
        self.assertEqual(os.listdir(self.directory), [])

    async def test_wrongKind(self) -> None:
        """
        A datagram client at the SEQPACKET socket is told it is the wrong
        kind of socket, exit status 7.
        """
        _, err, code = await self.echo("--unix", self.seq, "--dgram", "--count", "1")
        self.assertEqual(code, exits.CONNECT)
        self.assertIn("EPROTOTYPE", err)


class UnixSeqWorkersTests(TestCase):
    """
    A C{unixseq:} listener shared by workers.
    """

    timeout = 120

    async def test_workers(self) -> None:
        """
        The parent binds the socket and the workers accept on it; after a
        clean shutdown its file is gone.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        path = os.path.join(directory, "echo.seq")
        config = isolatedConfig(echo=f"listen = unixseq:{path}:mode=600", netservices="workers = 2")
        daemon = Daemon([], config=config)
        self.addCleanup(daemon.stop)
        daemon.waitForLog("[worker-1] echo listening on unixseq:")
        daemon.waitForLog("[worker-2] echo listening on unixseq:")
        for _ in range(3):
            out, err, code = await runCLI(
                reactor, ["echo", "--unix", path, "--seqpacket", "--count", "1"], env=cliEnvironment()
            )
            self.assertEqual(code, exits.OK, err)
            self.assertIn(b"1 probes sent, 1 echoed", out)
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(60)
        self.assertEqual(os.listdir(directory), [])
