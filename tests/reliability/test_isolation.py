"""
Reliability battery, item 12 (the part that tests/unit/net/test_lifecycle.py does not
cover): an exception in one connection's handler never affects the other
connections or the other services.

The daemon here is a real C{twistd -n} running the netservices service tree
from a C{.tac} file, in which one echo listener's protocol raises on a
chosen payload: a bug in a handler, which no input can trigger in the real
protocols.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from services.config import SECTIONS

from tests.reliabilitysupport import LimitedDaemon
from tests.support import freePort, twistdCommand, waitUntil

_TAC = '''\
from twisted.application.service import Application
from twisted.web.resource import Resource

import dataclasses

from services.config import SECTIONS, Config, replaceSection
from services.echo import Echo, EchoSettings, makeEchoService
from services.daemon.tree import buildService


class FaultyEcho(Echo):
    """Echo, with a bug: raises on a payload that starts with BOOM."""

    def dataReceived(self, data):
        if data.startswith(b"BOOM"):
            raise RuntimeError("a bug in one connection's handler")
        Echo.dataReceived(self, data)


class FaultyPage(Resource):
    """A web page with a bug: raises while rendering."""

    isLeaf = True

    def render_GET(self, request):
        raise RuntimeError("a bug in one request's handler")


config = replaceSection(Config(), "echo", listen=("tcp:{faulty}:interface=127.0.0.1",))
for section, cls in SECTIONS.items():  # the other services take fixed ports: off
    if section != "echo" and "enabled" in {{f.name for f in dataclasses.fields(cls)}}:
        config = replaceSection(config, section, enabled=False)
if "web" in SECTIONS:
    config = replaceSection(config, "web", enabled=True, listen=("tcp:{web}:interface=127.0.0.1",))
root = buildService(config, handleSignals=True)
root.getServiceNamed("echo").factory.protocol = FaultyEcho
if "web" in SECTIONS:
    root.getServiceNamed("web").site.resource.putChild(b"faulty", FaultyPage())
other = makeEchoService(EchoSettings(listen=("tcp:{other}:interface=127.0.0.1",)))
other.setName("other-echo")
other.setServiceParent(root)
application = Application("netservices-isolation")
root.setServiceParent(application)
'''


class TacDaemon(LimitedDaemon):
    """
    A real C{twistd -n -y FILE} running a C{.tac} file.
    """

    def __init__(self, tac: str) -> None:
        directory = Path(tempfile.mkdtemp(prefix="netservices-tac-"))
        (directory / "netservices.tac").write_text(tac)
        self.directory = directory
        self.logPath = directory / "twistd.log"
        self._output = open(directory / "output", "wb")
        command = twistdCommand() + [
            "--pidfile=", "--logfile", str(self.logPath), "-n", "-y", "netservices.tac",
        ]
        self.process = subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL,
            stdout=self._output, stderr=subprocess.STDOUT,
        )
        import psutil

        self.psutil = psutil.Process(self.process.pid)


def httpStatus(sock: socket.socket, path: bytes = b"/", close: bool = False) -> int:
    """
    Send one GET on C{sock} (kept alive unless C{close}) and read its
    response; its status code.
    """
    sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            break
        body += data
    return int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else 0


def echoes(sock: socket.socket, payload: bytes) -> bool:
    """
    Whether C{sock} echoes C{payload} back now.
    """
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        data = sock.recv(65536)
        if not data:
            return False
        received += data
    return received == payload


class HandlerExceptionTests(SynchronousTestCase):
    """
    Item 12: a handler's exception stays within its own connection.
    """

    def test_exceptionInOneConnection(self) -> None:
        """
        Item 12: when one connection's handler raises, only that connection
        is closed (and when a web page's handler raises, only that request
        gets a 500, without the error's text); the other open connections of
        the same listener, the other services' connections (a second echo
        service, the web service) and new connections all keep working,
        the daemon keeps running, and it later stops at once on SIGTERM (the
        failed connections left nothing behind to drain).
        """
        faulty, other, web = freePort(), freePort(), freePort()
        daemon = TacDaemon(_TAC.format(faulty=faulty, other=other, web=web))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(faulty)
        daemon.waitForTCP(other)
        hasWeb = "web" in SECTIONS
        if hasWeb:
            daemon.waitForTCP(web)
            page = socket.create_connection(("127.0.0.1", web), timeout=5)
            self.addCleanup(page.close)
            self.assertEqual(httpStatus(page), 200)
        same = socket.create_connection(("127.0.0.1", faulty), timeout=5)
        self.addCleanup(same.close)
        neighbour = socket.create_connection(("127.0.0.1", other), timeout=5)
        self.addCleanup(neighbour.close)
        self.assertTrue(echoes(same, b"before"))
        self.assertTrue(echoes(neighbour, b"before"))

        for attempt in range(20):
            with socket.create_connection(("127.0.0.1", faulty), timeout=5) as victim:
                victim.sendall(b"BOOM %d" % attempt)
                try:
                    self.assertEqual(victim.recv(100), b"")
                except ConnectionResetError:
                    pass  # the reactor may reset rather than close it
        waitUntil(lambda: daemon.log().count("a bug in one connection's handler") >= 20, 10,
                  "the daemon to log the 20 failures")
        if hasWeb:
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", web), timeout=5) as victim:
                    self.assertEqual(httpStatus(victim, b"/faulty", close=True), 500)
                    self.assertNotIn(b"a bug", victim.recv(65536))
            # The kept-alive connection opened before still works, as do new ones.
            self.assertEqual(httpStatus(page), 200)
            with socket.create_connection(("127.0.0.1", web), timeout=5) as fresh:
                self.assertEqual(httpStatus(fresh), 200)

        self.assertTrue(echoes(same, b"after" * 1000))
        self.assertTrue(echoes(neighbour, b"after" * 1000))
        with socket.create_connection(("127.0.0.1", faulty), timeout=5) as fresh:
            self.assertTrue(echoes(fresh, b"new connection"))
        daemon.assertAlive()

        # The failed connections were forgotten like any closed one: with the
        # others closed, SIGTERM finds nothing to drain and exits at once
        # rather than after the 10 s grace period.
        same.close()
        neighbour.close()
        if hasWeb:
            page.close()
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        status = daemon.process.wait(15)
        stopped = time.monotonic() - started
        self.assertIn(status, (0, -signal.SIGTERM))
        self.assertLess(stopped, 5)
        print(f"\nitem 12: 20 echo connections and 20 web requests raised in their handler; "
              f"the other connections and new ones kept working; SIGTERM then exited in {stopped:.2f} s")
