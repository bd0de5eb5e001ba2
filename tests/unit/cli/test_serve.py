"""
Tests for L{services.cli.serve}: C{netservices serve [DIR] [PORT]},
its arguments and start-up over a MemoryReactor, and a real run fetched
with curl and C{netservices fetch}.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from services.cli import buildParser
from services.cli import exits
from services.cli.serve import serve

from tests.clientservers import cliCommand, cliEnvironment
from tests.support import freePort, waitUntil


def parse(*argv: str) -> Any:
    return buildParser().parse_args(["serve", *argv])


class ArgumentsTests(SynchronousTestCase):
    """
    DIR, PORT and --bind, with their defaults.
    """

    def test_defaults(self) -> None:
        """
        The current directory, port 8000, 127.0.0.1.
        """
        args = parse()
        self.assertEqual((args.directory, args.port, args.bind), (".", 8000, "127.0.0.1"))

    def test_given(self) -> None:
        """
        DIR and PORT are positional; --bind takes an IPv4 or IPv6 address.
        """
        args = parse("/srv", "8081", "--bind", "::1")
        self.assertEqual((args.directory, args.port, args.bind), ("/srv", 8081, "::1"))

    def test_badValues(self) -> None:
        """
        A port out of range or a --bind that is not an address is a usage
        error (status 2).
        """
        for argv in (["/srv", "70000"], ["--bind", "localhost"]):
            with self.assertRaises(SystemExit) as caught:
                parse(*argv)
            self.assertEqual(caught.exception.code, 2)


class _BusyReactor(MemoryReactorClock):
    error = OSError(98, "Address already in use")

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        raise CannotListenError(interface, port, self.error)


class _ForeignAddressReactor(_BusyReactor):
    error = OSError(99, "Cannot assign requested address")


class ServeTests(SynchronousTestCase):
    """
    L{serve} listens where asked, says so in one line, and stops on
    shutdown.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.mkdir(self.directory)
        self.out, self.err = io.StringIO(), io.StringIO()

    def test_listensAndSays(self) -> None:
        """
        It listens on --bind and PORT, and the start-up line gives the URL,
        the directory and who can connect.
        """
        reactor = MemoryReactorClock()
        done = serve(reactor, parse(self.directory, "8123"), self.out, self.err)
        [(port, site, _backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8123, "127.0.0.1"))
        self.assertEqual(site.stats.requests, 0)
        line = self.out.getvalue()
        self.assertIn(f"Serving {os.path.abspath(self.directory)} on http://", line)
        self.assertIn("this host only; --bind 0.0.0.0 to share it", line)
        self.assertFalse(done.called)
        [(stop, _, _)] = reactor.triggers["before"]["shutdown"]
        stop()
        self.assertEqual(self.successResultOf(done), exits.OK)

    def test_bindSaysTheNetworkCanReachIt(self) -> None:
        """
        With --bind 0.0.0.0 the start-up line says the network can reach it.
        """
        reactor = MemoryReactorClock()
        serve(reactor, parse(self.directory, "--bind", "0.0.0.0"), self.out, self.err)
        self.assertEqual(reactor.tcpServers[0][3], "0.0.0.0")
        self.assertIn("the network can reach it", self.out.getvalue())

    def test_notADirectory(self) -> None:
        """
        A DIR that is not a directory: one line on stderr, status 2.
        """
        status = serve(MemoryReactorClock(), parse(self.directory + "/nope"), self.out, self.err)
        self.assertEqual(status, exits.USAGE)
        self.assertEqual(self.err.getvalue(), f"netservices serve: {self.directory}/nope: not a directory\n")

    def test_portInUse(self) -> None:
        """
        A port that cannot be listened on: one line that says why and what
        to do, status 1.
        """
        status = serve(_BusyReactor(), parse(self.directory, "8123"), self.out, self.err)
        self.assertEqual(status, exits.FAILURE)
        self.assertEqual(
            self.err.getvalue(),
            "netservices serve: cannot listen on 127.0.0.1 port 8123: "
            "address already in use; choose another PORT\n",
        )

    def test_addressNotLocal(self) -> None:
        """
        A --bind address this host does not have: the line says to choose
        another address, not another port.
        """
        status = serve(
            _ForeignAddressReactor(), parse(self.directory, "8123", "--bind", "192.0.2.1"),
            self.out, self.err,
        )
        self.assertEqual(status, exits.FAILURE)
        self.assertEqual(
            self.err.getvalue(),
            "netservices serve: cannot listen on 192.0.2.1 port 8123: "
            "cannot assign requested address; --bind an address of this host\n",
        )


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=cliEnvironment(), check=False
    )


class RealServeTests(SynchronousTestCase):
    """
    A real C{netservices serve} process on a free port.
    """

    def test_shareADirectory(self) -> None:
        """
        It serves a temporary directory: a listing at /, index.html as a
        directory's page, byte ranges, ETag and 304, a symbolic link out of
        the directory as 404; curl and C{netservices fetch} get the files;
        each request is a line on standard output, and Ctrl-C stops it
        with status 0.
        """
        root = Path(tempfile.mkdtemp(prefix="ns-serve-"))
        self.addCleanup(subprocess.run, ["rm", "-rf", str(root)])
        (root / "hello.txt").write_text("hello, world\n")
        (root / "site").mkdir()
        (root / "site" / "index.html").write_text("<h1>index</h1>\n")
        secret = Path(tempfile.mkdtemp(prefix="ns-outside-")) / "secret"
        secret.write_text("outside")
        self.addCleanup(subprocess.run, ["rm", "-rf", str(secret.parent)])
        (root / "escape").symlink_to(secret)
        port = freePort()
        output = root.parent / f"{root.name}.out"
        self.addCleanup(output.unlink, True)
        with open(output, "w") as out:
            process = subprocess.Popen(
                cliCommand() + ["serve", str(root), str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cliEnvironment(),
                # Ctrl-C reaches it as SIGINT, which a shell may have told
                # its background children to ignore.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        self.addCleanup(lambda: process.poll() is None and process.kill())
        waitUntil(lambda: "Ctrl-C stops" in output.read_text(), 30, "the start-up line")
        self.assertIn(f"Serving {root} on http://127.0.0.1:{port}/ (this host only", output.read_text())
        base = f"http://127.0.0.1:{port}"

        listing = _run(["curl", "-sf", f"{base}/"])
        self.assertIn("hello.txt", listing.stdout)
        self.assertEqual(_run(["curl", "-sf", f"{base}/site/"]).stdout, "<h1>index</h1>\n")
        ranged = _run(["curl", "-si", "-r", "0-4", f"{base}/hello.txt"]).stdout
        self.assertIn("206 Partial Content", ranged)
        self.assertTrue(ranged.endswith("\n\nhello"), ranged)
        etag = re.search(r"(?im)^etag: (\S+)", _run(["curl", "-sI", f"{base}/hello.txt"]).stdout)
        assert etag is not None
        again = _run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                      "-H", f"If-None-Match: {etag.group(1)}", f"{base}/hello.txt"])  # fmt: skip
        self.assertEqual(again.stdout, "304")
        escaped = _run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/escape"])
        self.assertEqual(escaped.stdout, "404")
        fetched = _run(cliCommand() + ["fetch", f"{base}/hello.txt"])
        self.assertEqual((fetched.returncode, fetched.stdout), (0, "hello, world\n"))

        process.send_signal(signal.SIGINT)
        self.assertEqual(process.wait(30), 0)
        log = output.read_text()
        self.assertIn('"GET /hello.txt HTTP/1.1" 206 5', log)
        self.assertIn('"GET /escape HTTP/1.1" 404', log)
        self.assertRegex(log, r'"GET /hello.txt HTTP/1.1" 200 13 "-" "netservices/')
        self.assertTrue(log.endswith("Stopped.\n"), log)
        self.assertNotIn("Traceback", log)
