"""
Integration tests: real C{twistd -n netservices} processes on one host
sharing a discovery port, the real C{netservices discover}, and UDP echo
over real sockets.  Traffic goes to 127.0.0.1 and 127.255.255.255 only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import time

from twisted.trial.unittest import TestCase

from services.config import SECTIONS
from services.discovery._wire import newNonce, query
from tests.clientservers import cliCommand
from tests.support import Daemon, freePort, waitUntil

#: Sections this module configures itself.
_KNOWN = {"echo", "discovery", "udp-echo", "log"}

#: Every datagram a discovery instance receives is logged once at debug
#: level by one of these.
_DATAGRAM = re.compile(
    r"discovery: (announce|query|reply) from |discovery: dropped \d+ bytes from .*: "
    r"(foreign|malformed|larger)"
)


def otherListeners() -> tuple[str, dict[str, int]]:
    """
    Configuration that moves every other stream service that runs by
    default (the web service) to a free loopback port, so that two
    daemons can run side by side; and those ports, by section.
    """
    text, ports = "", {}
    for section, cls in SECTIONS.items():
        if section in _KNOWN:
            continue
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        if defaults.get("enabled", True) is not True:
            continue  # off by default: setting its listen does not start it
        for f in dataclasses.fields(cls):
            default = f.default
            if (
                f.name == "listen"
                and isinstance(default, tuple)
                and str(default[0]).startswith("tcp")
            ):
                ports[section] = freePort()
                text += f"[{section}]\nlisten = tcp:{ports[section]}:interface=127.0.0.1\n"
    return text, ports


class Instance:
    """
    One daemon with its own echo port and name, on a shared discovery port.
    """

    def __init__(
        self, test: TestCase, name: str, discoveryPort: int, interval: float, *args: str
    ) -> None:
        self.name = name
        self.discoveryPort = discoveryPort
        self.echoPort = freePort()
        extra, self.ports = otherListeners()
        self.ports["echo"] = self.echoPort
        ttl = max(3, int(interval * 3))
        config = f"[discovery]\nname = {name}\ninterval = {interval:g}\nttl = {ttl}\n"
        self.daemon = Daemon(
            [
                "--echo",
                f"tcp:{self.echoPort}:interface=127.0.0.1",
                "--discovery-port",
                str(discoveryPort),
                *args,
            ],
            config + extra,
        )
        test.addCleanup(self.daemon.stop)

    def waitListening(self) -> None:
        """
        Wait until the daemon's discovery service listens.
        """
        self.daemon.waitForLog("discovery listening on")

    def datagrams(self) -> int:
        """
        How many datagrams discovery has received so far (debug log).
        """
        return len(_DATAGRAM.findall(self.daemon.log()))


class DiscoveryIntegrationTests(TestCase):
    """
    Two daemons on one host share the discovery port and find each other.
    """

    timeout = 60

    def startPair(
        self, interval: float = 1.0, *args: str, port: int | None = None
    ) -> tuple[int, Instance, Instance]:
        """
        Start alpha, then beta once alpha listens, on a shared free port
        (or C{port}).
        """
        port = port or freePort(socket.SOCK_DGRAM)
        alpha = Instance(self, "alpha", port, interval, *args)
        alpha.waitListening()
        # beta starts once alpha listens, so alpha hears beta's first announce.
        beta = Instance(self, "beta", port, interval, *args)
        beta.waitListening()
        return port, alpha, beta

    def test_findEachOther(self) -> None:
        """
        Each daemon hears the other's broadcast announces on the shared
        port and logs it with its services' real ports.
        """
        port, alpha, beta = self.startPair()
        alpha.daemon.waitForLog("discovery: found beta (")
        beta.daemon.waitForLog("discovery: found alpha (")
        self.assertRegex(
            alpha.daemon.log(),
            rf"found beta \(\w+\) at 127\.0\.0\.1:{port}: .*echo:{beta.echoPort}",
        )
        self.assertRegex(
            beta.daemon.log(),
            rf"found alpha \(\w+\) at 127\.0\.0\.1:{port}: .*echo:{alpha.echoPort}",
        )
        self.assertNotIn("Traceback", alpha.daemon.log() + beta.daemon.log())

    def test_discoverCommand(self) -> None:
        """
        C{netservices discover --json} lists both daemons, each with the
        ports its services listen on, and exits 0.
        """
        port, alpha, beta = self.startPair(interval=5.0)
        result = subprocess.run(
            cliCommand()
            + [
                "discover",
                "--json",
                "--port",
                str(port),
                "--broadcast",
                "127.255.255.255",
                "--timeout",
                "1.5",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        found = {p["name"]: p for p in map(json.loads, result.stdout.splitlines())}
        self.assertEqual(set(found), {"alpha", "beta"})
        for instance in (alpha, beta):
            peer = found[instance.name]
            self.assertEqual(peer["address"], f"127.0.0.1:{port}")
            for service, number in instance.ports.items():
                self.assertEqual(peer["services"][service], [number])
            self.assertNotIn("discovery", peer["services"])

        table = subprocess.run(
            cliCommand() + ["discover", "--port", str(port), "--timeout", "1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.assertEqual(table.returncode, 0, table.stderr)
        lines = table.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "ADDRESS", "IPV4", "IPV6", "AGE"])
        self.assertTrue(lines[1].startswith("alpha "), lines)
        self.assertIn(f"echo:127.0.0.1:{alpha.echoPort}", lines[1])
        self.assertTrue(lines[2].startswith("beta "), lines)

    def test_discoverNothing(self) -> None:
        """
        With nobody on the port, C{netservices discover} exits 1 and says so.
        """
        port = freePort(socket.SOCK_DGRAM)
        result = subprocess.run(
            cliCommand() + ["discover", "--port", str(port), "--timeout", "0.5"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertIn(f"no instance answered on 127.255.255.255:{port}", result.stderr)

    def forger(self, port: int) -> socket.socket:
        """
        A socket on 127.0.0.1:C{port} that can send as if from an instance
        there.  It must be bound before the instances: on Linux, a datagram
        to an address that several sockets share (C{SO_REUSEADDR}) goes to
        the one bound last, so any answer to the forged query reaches an
        instance, not the forger.
        """
        forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(forger.close)
        forger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        forger.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        forger.bind(("127.0.0.1", port))
        return forger

    def forge(self, forger: socket.socket, destination: tuple[str, int]) -> float:
        """
        Send a query from C{forger} to C{destination}; return when.
        """
        forger.sendto(query(newNonce()), destination)
        return time.monotonic()

    def countWindow(self, sent: float, *instances: Instance) -> int:
        """
        Wait until 2 s have passed since C{sent} (a loop, if there were
        one, would show in that window); the datagrams the instances
        received in all.
        """
        waitUntil(lambda: time.monotonic() - sent >= 2.0, 5, "the 2 s window")
        return sum(i.datagrams() for i in instances)

    def test_forgedQuerySharedPort(self) -> None:
        """
        A query forged to come from the shared discovery port (as if one
        instance asked the other) starts no loop: both drop it, and fewer
        than 10 datagrams reach them in the 2 s that follow.
        """
        forger = self.forger(freePort(socket.SOCK_DGRAM))
        port = forger.getsockname()[1]
        _, alpha, beta = self.startPair(30.0, "--log-level", "debug", port=port)
        alpha.daemon.waitForLog("discovery: found beta (")
        before = alpha.datagrams() + beta.datagrams()
        sent = self.forge(forger, ("127.255.255.255", port))
        for instance in (alpha, beta):
            instance.daemon.waitForLog(
                "query not answered: source port is one of our service ports"
            )
        received = self.countWindow(sent, alpha, beta) - before
        self.assertLess(received, 10)
        self.assertEqual(received, 2, "each instance received the forged query, and nothing else")
        self.assertNotIn("reply from", alpha.daemon.log() + beta.daemon.log())

    def test_forgedQueryOtherPort(self) -> None:
        """
        Two instances on different discovery ports: a query sent to the
        first, forged to come from the second's port, gets one reply, which
        the second drops as unsolicited (replies are never answered), so no
        loop starts: fewer than 10 datagrams in 2 s.
        """
        forger = self.forger(freePort(socket.SOCK_DGRAM))
        betaPort = forger.getsockname()[1]
        alpha = Instance(self, "alpha", freePort(socket.SOCK_DGRAM), 30.0, "--log-level", "debug")
        beta = Instance(self, "beta", betaPort, 30.0, "--log-level", "debug")
        alpha.waitListening()
        beta.waitListening()
        before = alpha.datagrams() + beta.datagrams()
        sent = self.forge(forger, ("127.0.0.1", alpha.discoveryPort))
        beta.daemon.waitForLog(f"unsolicited reply from 127.0.0.1:{alpha.discoveryPort}")
        received = self.countWindow(sent, alpha, beta) - before
        self.assertLess(received, 10)
        self.assertEqual(received, 2, "the forged query, one reply, and nothing else")


class UdpEchoIntegrationTests(TestCase):
    """
    UDP echo in a real daemon returns large datagrams whole.
    """

    timeout = 60

    def test_largeDatagrams(self) -> None:
        """
        8193-byte, 60000-byte and 65507-byte (the IPv4 maximum) datagrams
        come back intact: Twisted's default 8192-byte buffer would have cut
        them short.
        """
        port = freePort(socket.SOCK_DGRAM)
        daemon = Daemon(
            [
                "--no-discovery",
                "--echo",
                f"tcp:{freePort()}:interface=127.0.0.1",
                "--udp-echo",
                str(port),
            ],
            otherListeners()[0] or None,
        )
        self.addCleanup(daemon.stop)
        daemon.waitForLog("udp-echo listening on")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.settimeout(10)
            for size in (8193, 60000, 65507):
                data = os.urandom(size)
                client.sendto(data, ("127.0.0.1", port))
                echoed, source = client.recvfrom(65536)
                self.assertEqual(source, ("127.0.0.1", port))
                self.assertEqual(len(echoed), size)
                self.assertEqual(echoed, data)
