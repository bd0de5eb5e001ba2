"""
The status page in a real browser: headless Chromium loads C{/status} from
a live daemon, runs the page's script and shows what a held echo
connection and the page's own refreshes did.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.support import (
    Daemon,
    chromiumExecutable,
    freePort,
    headlessChromium,
    isolatedConfig,
)


class BrowserTests(TestCase):
    """
    Chromium renders the live page.
    """

    def setUp(self) -> None:
        chromiumExecutable()
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.echoPort, self.webPort = freePort(), freePort()
        self.daemon = Daemon(
            [],
            isolatedConfig(
                echo=f"listen = tcp:{self.echoPort}:interface=127.0.0.1",
                web=f"listen = tcp:{self.webPort}:interface=127.0.0.1",
            ),
        )
        self.addCleanup(self.daemon.stop)
        self.daemon.waitForLog(f"web listening on tcp:{self.webPort}")
        self.daemon.waitForLog(f"echo listening on tcp:{self.echoPort}")
        self.url = f"http://127.0.0.1:{self.webPort}/status"

    def holdEchoConnection(self) -> str:
        """
        Open an echo connection from 127.0.0.3, echo a few bytes on it and
        keep it open for the rest of the test; return its address.
        """
        client = socket.socket()
        self.addCleanup(client.close)
        client.settimeout(10)
        client.bind(("127.0.0.3", 0))
        client.connect(("127.0.0.1", self.echoPort))
        client.sendall(b"held open")
        received = b""
        while len(received) < 9:
            received += client.recv(64)
        return f"127.0.0.3:{client.getsockname()[1]}"

    def test_renderedAndRefreshed(self) -> None:
        """
        With its script run, the page shows every service listening, the
        connection a client holds open (its address, the echo's local
        endpoint and its bytes), and has refreshed at least twice: the web
        service's request counter, which each refresh moves, has a rate
        above zero between the last two.  A screenshot is saved.
        """
        held = self.holdEchoConnection()
        with urllib.request.urlopen(self.url) as response:  # JSON, as before
            self.assertEqual(response.headers["content-type"], "application/json")
            before = json.load(response)
        self.assertEqual(before["connections"]["byService"]["echo"], 1)

        dom = headlessChromium(self.url, self.directory, "--dump-dom").stdout.decode()
        refreshes = re.search(r"refresh #(\d+)", dom)
        self.assertIsNotNone(refreshes, dom)
        self.assertGreaterEqual(int(refreshes.group(1)), 2)
        for service, port in (("echo", self.echoPort), ("web", self.webPort)):
            self.assertIn(
                f'<td>{service}</td><td class="up">listening</td><td>127.0.0.1:{port}</td>', dom
            )
        row = re.search(
            rf"<tr><td>echo</td><td>{re.escape(held)}</td><td>127\.0\.0\.1:{self.echoPort}</td>"
            r'<td class="n">[0-9.]+</td><td class="n">9</td><td class="n">9</td><td>reading</td>',
            dom,
        )
        self.assertIsNotNone(row, dom)
        requests = re.search(
            r'<td>requests</td><td class="n">(\d+)</td><td class="n">([0-9.]+)</td>', dom
        )
        self.assertIsNotNone(requests, dom)
        self.assertGreater(int(requests.group(1)), before["services"]["web"]["counters"]["requests"])
        self.assertGreater(float(requests.group(2)), 0)

        screenshot = self.directory / "status-page.png"
        headlessChromium(
            self.url, self.directory, "--window-size=1200,1500", f"--screenshot={screenshot}"
        )
        self.assertEqual(screenshot.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
