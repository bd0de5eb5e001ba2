"""
Integration test: one real C{twistd -n netservices} running every small
service over TCP, TLS, a UNIX socket, a PROXY-protocol listener and UDP, driven
by plain sockets and read back through C{/status}.
"""

from __future__ import annotations

import json
import shutil
import ssl
import socket
import struct
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from services.echo._smallanswers import EPOCH_1900, chargenPattern

from tests.support import Daemon, freePort, isolatedConfig, makeCertificate, readAll, waitUntil


def ask(port: int, request: bytes) -> bytes:
    """
    Send one UDP datagram to C{127.0.0.1:port} and return the answer.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(request, ("127.0.0.1", port))
        return s.recvfrom(65535)[0]


class SmallServicesDaemonTests(SynchronousTestCase):
    """
    A real daemon serves discard, chargen, daytime, time and qotd.
    """

    def setUp(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ns-"))
        self.ports = {
            name: freePort() for name in ("discard", "chargen", "chargen-tls", "daytime", "time", "web")
        }
        self.udp = {name: freePort(socket.SOCK_DGRAM) for name in ("discard", "daytime", "time", "qotd")}
        self.qotdPath = self.directory / "qotd.sock"
        quotes = self.directory / "quotes.txt"
        quotes.write_text("The same all day.\n")
        self.certificate, key = makeCertificate(self.directory)
        p, u = self.ports, self.udp
        config = isolatedConfig(
            tls=f"certificate = {self.certificate}\nkey = {key}",
            web=f"listen = tcp:{p['web']}:interface=127.0.0.1",
            discard=f"enabled = yes\nlisten = tcp:{p['discard']}:interface=127.0.0.1\n"
            f"udp = udp:{u['discard']}:interface=127.0.0.1",
            chargen=f"enabled = yes\nlisten = tcp:{p['chargen']}:interface=127.0.0.1 "
            f"ssl:{p['chargen-tls']}:interface=127.0.0.1",
            daytime=f"enabled = yes\nlisten = haproxy:tcp:{p['daytime']}:interface=127.0.0.1\n"
            f"udp = udp:{u['daytime']}:interface=127.0.0.1",
            time=f"enabled = yes\nlisten = tcp:{p['time']}:interface=127.0.0.1\n"
            f"udp = udp:{u['time']}:interface=127.0.0.1",
            qotd=f"enabled = yes\nlisten = unix:{self.qotdPath}\nudp = udp:{u['qotd']}:interface=127.0.0.1\n"
            f"quotes = {quotes}",
        )
        self.daemon = Daemon([], config=config)
        self.daemon.waitForLog("web listening on", timeout=30)

        self.addCleanup(shutil.rmtree, self.directory, True)
        self.addCleanup(self.daemon.stop)

    def test_everyService(self) -> None:
        """
        One daemon (one start-up for the lot) serves each small service on
        its listener; each check below says what it pins.
        """
        self.checkDiscard()
        self.checkChargen()
        self.checkDaytimeThroughProxyHeader()
        self.checkTime()
        self.checkQotdOverUnixSocket()
        self.checkUdp()

    def connect(self, name: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.ports[name]), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.ports['web']}/status"
        with urllib.request.urlopen(url, timeout=10) as response:
            document: dict[str, Any] = json.load(response)["services"]
        return document

    def checkDiscard(self) -> None:
        """
        Discard reads everything a client sends, closes once the client
        half-closes, and has counted every byte by then.
        """
        before = self.status()["discard"]["counters"]["bytesIn"]
        sock = self.connect("discard")
        sock.sendall(b"x" * 3_000_000)
        sock.shutdown(socket.SHUT_WR)
        self.assertEqual(readAll(sock), b"")
        self.assertEqual(self.status()["discard"]["counters"]["bytesIn"], before + 3_000_000)

    def checkChargen(self) -> None:
        """
        Chargen streams the RFC 864 pattern without a break, over TCP and
        over TLS.
        """
        expected = b"".join(chargenPattern(i, 50_000) for i in range(0, 1_000_000, 50_000))
        context = ssl.create_default_context(cafile=str(self.certificate))
        context.check_hostname = False
        for name in ("chargen", "chargen-tls"):
            sock = self.connect(name)
            if name == "chargen-tls":
                sock = context.wrap_socket(sock)
                self.addCleanup(sock.close)
            data = b""
            while len(data) < 1_000_000:
                data += sock.recv(65536)
            self.assertEqual(data[:1_000_000], expected, name)

    def checkDaytimeThroughProxyHeader(self) -> None:
        """
        Daytime behind a PROXY-protocol listener answers one line of the
        date in UTC, then closes.
        """
        sock = self.connect("daytime")
        sock.sendall(b"PROXY TCP4 198.18.0.1 127.0.0.1 40000 13\r\n")
        line = readAll(sock)
        self.assertRegex(
            line.decode("ascii"), r"^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$"
        )

    def checkTime(self) -> None:
        """
        Time answers 4 bytes: the seconds since 1900, read between the
        moments the client connected and got its answer.
        """
        earliest = int(time.time())
        sock = self.connect("time")
        answer = readAll(sock)
        latest = int(time.time()) + 1
        self.assertEqual(len(answer), 4)
        (seconds,) = struct.unpack("!I", answer)
        self.assertTrue(earliest + EPOCH_1900 <= seconds <= latest + EPOCH_1900, seconds)

    def checkQotdOverUnixSocket(self) -> None:
        """
        Qotd answers the configured quote on a UNIX socket.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qotdPath))
            self.assertEqual(readAll(sock), b"The same all day.\r\n")

    def checkUdp(self) -> None:
        """
        Over UDP, a request padded to the answer's size gets one answer;
        a smaller one gets none (counted), and discard counts datagrams.
        """
        self.assertEqual(ask(self.udp["qotd"], b"\0" * 64), b"The same all day.\r\n")
        self.assertEqual(len(ask(self.udp["time"], b"\0" * 4)), 4)
        self.assertTrue(ask(self.udp["daytime"], b"\0" * 64).endswith(b"-UTC\r\n"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\0", ("127.0.0.1", self.udp["time"]))
            s.sendto(b"x" * 1000, ("127.0.0.1", self.udp["discard"]))
        waitUntil(
            lambda: self.status()["udp-time"]["counters"]["smallRequests"] == 1
            and self.status()["udp-discard"]["counters"]["bytesIn"] == 1000,
            what="the small request and the discarded datagram to be counted",
        )
        counters = self.status()["udp-time"]["counters"]
        self.assertEqual((counters["answered"], counters["received"]), (1, 2))
