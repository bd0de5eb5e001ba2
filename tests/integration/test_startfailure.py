# -*- test-case-name: tests.integration.test_startfailure -*-
"""
A start-up that fails, with real C{twistd} processes, in the foreground
and daemonized: one line on standard error, exit status 1, and nothing
left behind (no pidfile, no log file, no UNIX socket file or its lock, no
discovery announce sent).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.support import freePort, isolatedConfig, runTwistd

#: A certificate file that holds no certificate.
NOT_PEM = "this is not a PEM file\n"


class StartFailureTests(TestCase):
    """
    Every start-up error ends C{twistd netservices} the same way, whether
    it runs in the foreground or daemonizes: the parent process that the
    user (or an init script) started exits with status 1 and the one-line
    error on its standard error, and the directory holds only what was
    there before.
    """

    maxDiff = None

    def directory(self) -> Path:
        path = Path(self.mktemp()).absolute()
        path.mkdir()
        return path

    def assertFailsCleanly(
        self, config: str, expected: str, files: dict[str, str] | None = None
    ) -> None:
        """
        Run twistd in the foreground, then daemonized, on C{config} (in a
        fresh directory holding C{files}) and check how each fails.
        """
        for mode in ("foreground", "daemonized"):
            directory = self.directory()
            (directory / "tap.conf").write_text(config.replace("@DIR@", str(directory)))
            for name, text in (files or {}).items():
                (directory / name).write_text(text)
            before = sorted(os.listdir(directory))
            twistdArgs = [f"--pidfile={directory / 'twistd.pid'}"]
            if mode == "foreground":
                twistdArgs.append("-n")
            else:
                twistdArgs.append(f"--logfile={directory / 'twistd.log'}")
            result = runTwistd(["--config", "tap.conf"], cwd=str(directory), twistdArgs=twistdArgs)
            self.assertEqual(
                (result.returncode, result.stderr, result.stdout),
                (1, expected.replace("@DIR@", str(directory)) + "\n", ""),
                mode,
            )
            self.assertEqual(sorted(os.listdir(directory)), before, mode)

    def test_badConfig(self) -> None:
        """
        A bad value in tap.conf.
        """
        self.assertFailsCleanly(
            isolatedConfig(echo="idle_timeout = abc"),
            "netservices: error: tap.conf: [echo] idle_timeout = 'abc': expected a number of "
            "seconds, e.g. 30 or 0.5",
        )

    def test_missingStaticDirectory(self) -> None:
        """
        A C{static_dir} that does not exist.
        """
        self.assertFailsCleanly(
            isolatedConfig(web="listen = unix:web.sock\nstatic_dir = missing"),
            "netservices: error: tap.conf: [web] static_dir = 'missing': expected the path of an "
            "existing directory (or nothing, for none)",
        )

    def test_portInUse(self) -> None:
        """
        A port in use, after UNIX stream, SEQPACKET and datagram listeners
        and the discovery port were bound: their socket files (and the
        stream socket's lock) are removed, and discovery has announced
        nothing.
        """
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        announces = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(announces.close)
        announces.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        announces.bind(("127.255.255.255", 0))
        config = isolatedConfig(
            echo="listen = unix:echo.sock unixseq:echo.seq",
            discovery=f"port = {announces.getsockname()[1]}",
            udp_echo="enabled = yes\nlisten = unixgram:echo.dgram",
            web=f"listen = tcp:{port}:interface=127.0.0.1",
        )
        self.assertFailsCleanly(
            config,
            f"netservices: error: web: cannot listen on tcp:{port}:interface=127.0.0.1: "
            "address already in use",
        )
        # Sent datagrams are queued on loopback at once: none is there.
        announces.setblocking(False)
        self.assertRaises(BlockingIOError, announces.recv, 2048)

    def test_unreadableCertificate(self) -> None:
        """
        An C{ssl:} listener whose certificate file holds no certificate,
        after a UNIX listener was bound.
        """
        port = freePort()
        config = isolatedConfig(
            echo=f"listen = unix:echo.sock ssl:{port}:interface=127.0.0.1",
            tls="certificate = cert.pem",
        )
        self.assertFailsCleanly(
            config,
            f"netservices: error: echo: cannot listen on ssl:{port}:interface=127.0.0.1: "
            "no PEM certificate in cert.pem",
            {"cert.pem": NOT_PEM},
        )

    def test_systemdSocketMissing(self) -> None:
        """
        A C{systemd:} listener without systemd's sockets, after a UNIX
        listener was bound.
        """
        self.assertFailsCleanly(
            isolatedConfig(echo="listen = unix:echo.sock systemd:index=0"),
            "netservices: error: echo: cannot listen on systemd:index=0: no socket at index 0 "
            "from systemd (systemd passed 0 socket(s); start netservices through its .socket unit)",
        )
