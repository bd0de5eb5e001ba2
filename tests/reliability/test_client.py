"""
The reliability battery for the client side: C{netservices fetch} and
C{netservices echo} as child processes against hostile or unusual local
servers (endless response headers, a decompression bomb, planted links,
error pages, IPv6 loopback, large UDP datagrams), with the client's peak
memory measured where the attack is on memory.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest, TestCase

from services.cli import exits
from tests.clientservers import (
    EndlessHeadServer,
    TinyProxy,
    UDPEcho,
    cliEnvironment,
    gzipBomb,
    measured,
    requireTinyproxy,
    runCLI,
    startWebServer,
)
from tests.support import Daemon, freePort, hasIPv6Loopback, isolatedConfig, temporaryDirectory

#: The peak RSS a fetch that keeps its memory bounded stays under (KiB):
#: the interpreter, Twisted and treq take about 50 MB.
BOUNDED_RSS = 85 * 1024


class HostileServerTests(TestCase):
    """
    A server that attacks the client's memory makes C{fetch} fail at once
    with bounded memory, or is held to what the user asked for.
    """

    timeout = 120

    async def fetch(self, *args: str) -> tuple[int, int, str]:
        """
        Run C{netservices fetch ARGS}, measured: (status, peak RSS in KiB,
        stderr).
        """
        _out, err, _code = await runCLI(reactor, ["fetch", *args], env=cliEnvironment(), measure=True)
        status, rss, own = measured(err)
        return status, rss, own.decode()

    async def test_endlessHeaders(self) -> None:
        """
        A server that sends header lines for ever (here: up to 16 MB, for
        at most 60 s) makes C{fetch} give up after at most 1,000 lines or
        300 KiB with exit 56 and one line, having read little of them and
        with its memory bounded (it used to keep every line: 213 MB in
        10 s, ended only by C{-m}).
        """
        server = EndlessHeadServer(reactor, limit=16 * 1024 * 1024, seconds=60)
        self.addCleanup(server.stop)
        url = f"http://127.0.0.1:{server.port}/"
        target = temporaryDirectory(self) / "out"
        status, rss, err = await self.fetch(url, "-o", str(target))
        self.assertEqual(status, exits.RECEIVE, err)
        self.assertEqual(
            err.strip(), f"netservices fetch: response headers too large (more than 1000 lines): {url}"
        )
        self.assertEqual(len(server.connections), 1)
        # What the server got to send: what the client read before it gave
        # up, plus what the kernel's socket buffers took (a few MB at most).
        self.assertLess(server.connections[0].sent, 8 * 1024 * 1024)
        self.assertLess(rss, BOUNDED_RSS, f"peak RSS {rss} KiB")
        self.assertFalse(target.exists())

    async def test_decompressionBomb(self) -> None:
        """
        A gzip body of 1.2 MB that inflates to 256 MiB: without
        C{--compressed} it is saved as it came (and no Accept-Encoding was
        sent); with C{--compressed --max-size 10M} decoding stops at 10 MB
        with exit 63, the memory bounded all along (one read used to
        inflate to about 60 MB at once, before the limit was checked).
        """
        web = startWebServer(reactor)
        self.addCleanup(web.stop)
        bomb = web.site.resource.children[b"gzip-bomb"]
        directory = temporaryDirectory(self)
        raw = directory / "raw.gz"
        status, rss, err = await self.fetch(web.url("/gzip-bomb"), "-o", str(raw))
        self.assertEqual(status, 0, err)
        self.assertEqual(raw.read_bytes(), gzipBomb())
        self.assertEqual(bomb.acceptEncodings, [None])
        decoded = directory / "decoded"
        status, rss, err = await self.fetch(
            web.url("/gzip-bomb"), "--compressed", "--max-size", "10M", "-o", str(decoded)
        )
        self.assertEqual(status, exits.TOO_LARGE, err)
        self.assertIn("larger than 10485760 bytes", err)
        self.assertEqual(bomb.acceptEncodings[1], [b"gzip, deflate"])
        self.assertLess(rss, BOUNDED_RSS, f"peak RSS {rss} KiB")
        self.assertEqual(sorted(p.name for p in directory.iterdir()), ["raw.gz"])


class OutputFileTests(TestCase):
    """
    C{fetch -o} never writes through a planted link and never saves an
    error page silently.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Start the test site.
        """
        self.web = startWebServer(reactor)
        self.addCleanup(self.web.stop)

    async def test_plantedLinks(self) -> None:
        """
        With symbolic links planted at C{out} and C{out.part} (the name the
        temporary file used to have), the file they point to is untouched
        and C{out} ends up a regular file with the body.
        """
        directory = temporaryDirectory(self)
        victim = directory / "victim"
        victim.write_bytes(b"untouched")
        out = directory / "out"
        for path in (out, directory / "out.part"):
            path.symlink_to(victim)
        _out, err, code = await runCLI(reactor, ["fetch", self.web.url("/status/200"), "-o", str(out)])
        self.assertEqual(code, 0, err)
        self.assertEqual(victim.read_bytes(), b"untouched")
        self.assertFalse(out.is_symlink())
        self.assertEqual(out.read_bytes(), b"status 200\n")

    async def test_errorNotSaved(self) -> None:
        """
        A 404 with C{-o} exits 22 with one line and saves nothing;
        C{--keep-error} saves it and exits 0.
        """
        target: Path = temporaryDirectory(self) / "big.iso"
        url = self.web.url("/status/404")
        _out, err, code = await runCLI(reactor, ["fetch", url, "-o", str(target)])
        self.assertEqual(code, exits.HTTP_ERROR, err)
        self.assertEqual(
            err.decode(),
            f"netservices fetch: HTTP error 404 Not Found: {url} (not saved to {target}); "
            "--keep-error saves it\n",
        )
        self.assertFalse(target.exists())
        _out, err, code = await runCLI(reactor, ["fetch", url, "-o", str(target), "--keep-error"])
        self.assertEqual(code, 0, err)
        self.assertEqual(target.read_bytes(), b"status 404\n")


class IPv6Tests(TestCase):
    """
    C{fetch} of an IPv6 literal URL, against a real daemon on C{::1},
    directly and through a real proxy.
    """

    timeout = 90

    def setUp(self) -> None:
        """
        Start C{twistd -n netservices} with only the web service, on
        C{tcp6:PORT:interface=::1}.
        """
        if not hasIPv6Loopback():
            raise SkipTest("this machine has no IPv6 loopback")
        self.port = freePort(host="::1")
        config = isolatedConfig(web=f"listen = tcp6:{self.port}:interface=\\:\\:1")
        self.daemon = Daemon([], config)
        self.addCleanup(self.daemon.stop)
        self.daemon.waitForTCP(self.port, host="::1")
        self.url = f"http://[::1]:{self.port}/"

    async def test_direct(self) -> None:
        """
        C{fetch http://[::1]:PORT/} and C{-o} get the daemon's page (they
        failed with "Codepoint U+003A at position 1 of '::1' not allowed").
        """
        out, err, code = await runCLI(reactor, ["fetch", self.url, "-i"])
        self.assertEqual(code, 0, err)
        self.assertIn(b"\r\n\r\nHello World", out)
        target = temporaryDirectory(self) / "page.html"
        out, err, code = await runCLI(reactor, ["fetch", self.url + "health", "-o", str(target), "-f"])
        self.assertEqual(code, 0, err)
        self.assertIn(b'"status"', target.read_bytes())

    async def test_proxied(self) -> None:
        """
        Through tinyproxy (C{-x}), the IPv6 literal URL reaches the daemon.
        """
        requireTinyproxy()
        proxy = TinyProxy()
        self.addCleanup(proxy.stop)
        out, err, code = await runCLI(reactor, ["fetch", self.url, "-x", proxy.url])
        self.assertEqual(code, 0, err)
        self.assertEqual(out, b"Hello World")
        self.assertIn(f"GET {self.url}", proxy.log())


class LargeDatagramTests(TestCase):
    """
    C{netservices echo --udp --size N} for every N it accepts.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Start a UDP echo server that reads datagrams of any size.
        """
        self.udp = reactor.listenUDP(0, UDPEcho(), interface="127.0.0.1", maxPacketSize=65535)
        self.addCleanup(self.udp.stopListening)

    async def test_sizes(self) -> None:
        """
        Probes of 8,193 and 65,507 bytes (the largest UDP payload over
        IPv4) come back whole: the client read only 8,192 bytes of a
        datagram and reported the echo as different.
        """
        port = self.udp.getHost().port
        for size in (8193, 65507):
            out, err, code = await runCLI(
                reactor,
                ["echo", "127.0.0.1", str(port), "--udp", "--count", "2", "--interval", "0",
                 "--timeout", "10", "--size", str(size)],
            )
            self.assertEqual(code, 0, err)
            self.assertEqual(out.count(f"{size} bytes from 127.0.0.1:{port}: seq=".encode()), 2, out)
