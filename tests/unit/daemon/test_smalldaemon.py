"""
Tests for L{services.daemon.small}: the small services' flags and their
place in the daemon's service tree (with and without workers).
"""

from __future__ import annotations

import socket

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from services.config import SMALL_SERVICES, Config, replaceSection
from services.stats import ConnectionStats, DatagramAnswerStats
from services.daemon.tap import Options
from services.daemon.tree import buildService
from services.daemon.values import STREAM_SERVICES, streamListeners
from services.daemon.workerprocess import WorkerSpec
from tests.support import freePort
from tests.udpsupport import UdpMemoryReactor


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(["--no-echo", "--no-web", "--no-discovery", *argv])
    return options


class FlagsTests(SynchronousTestCase):
    """
    C{--NAME ENDPOINT} enables a small service on that endpoint;
    C{--no-NAME} disables it.
    """

    def test_offByDefault(self) -> None:
        """
        Every small service is off unless asked for.
        """
        settings = parse().settings
        for name in SMALL_SERVICES:
            self.assertFalse(getattr(settings, name).enabled, name)

    def test_listenFlags(self) -> None:
        """
        Each C{--NAME} is repeatable, replaces C{listen} and enables the
        service.
        """
        settings = parse("--chargen", "tcp:1019", "--chargen", "unix:/tmp/c", "--time", "tcp:1037").settings
        self.assertEqual(settings.chargen.listen, ("tcp:1019", "unix:/tmp/c"))
        self.assertTrue(settings.chargen.enabled)
        self.assertEqual(settings.time.listen, ("tcp:1037",))
        self.assertFalse(settings.qotd.enabled)

    def test_noFlag(self) -> None:
        """
        C{--no-NAME} turns off a service the file enables, and contradicts
        C{--NAME}.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[discard]\nenabled = yes\n")
        self.assertFalse(parse("--config", path, "--no-discard").settings.discard.enabled)
        with self.assertRaises(SystemExit) as caught:
            parse("--discard", "tcp:1", "--no-discard")
        self.assertIn("--discard and --no-discard contradict each other", str(caught.exception.code))

    def test_badEndpointIsOneLine(self) -> None:
        """
        A bad endpoint names the flag and says what is allowed.
        """
        with self.assertRaises(SystemExit) as caught:
            parse("--daytime", "bogus:1")
        self.assertIn("--daytime 'bogus:1'", str(caught.exception))
        self.assertNotIn("\n", str(caught.exception))

    def test_help(self) -> None:
        """
        --help lists every small service's two flags.
        """
        text = str(Options())
        for name in SMALL_SERVICES:
            self.assertIn(f"--{name}=", text)
            self.assertIn(f"--no-{name}", text)


def enableAll(config: Config, udp: bool = False) -> Config:
    for name in SMALL_SERVICES:
        changes: dict[str, object] = {"enabled": True, "listen": (f"tcp:{20000 + len(name)}",)}
        if udp and name != "chargen":
            changes["udp"] = (f"udp:{freePort(socket.SOCK_DGRAM)}:interface=127.0.0.1",)
        config = replaceSection(config, name, **changes)
    return replaceSection(config, "echo", enabled=False)


class TreeTests(SynchronousTestCase):
    """
    Each enabled small service is a child of the root with its counters in
    C{root.stats}, which /status and /metrics read.
    """

    def test_children(self) -> None:
        """
        Stream services are named after their section, their UDP services
        C{udp-NAME}; chargen has no UDP service even if asked.
        """
        config = replaceSection(enableAll(Config(), udp=True), "web", enabled=False)
        config = replaceSection(config, "discovery", enabled=False)
        root = buildService(config, UdpMemoryReactor())
        names = [s.name for s in root]
        self.assertEqual(
            names,
            ["discard", "udp-discard", "chargen", "daytime", "udp-daytime", "time", "udp-time",
             "qotd", "udp-qotd"],
        )  # fmt: skip
        self.assertIsInstance(root.stats["chargen"], ConnectionStats)
        self.assertIsInstance(root.stats["udp-qotd"], DatagramAnswerStats)

    def test_webStaysLast(self) -> None:
        """
        The web service, whose pages read the whole tree, is still built
        last.
        """
        root = buildService(enableAll(Config()), MemoryReactorClock())
        self.assertEqual([s.name for s in root][-1], "web")

    def test_workersShareTheStreamListeners(self) -> None:
        """
        With workers, the parent binds the small services' stream listeners
        for its workers and keeps their UDP services; a worker builds the
        stream services only.
        """
        self.assertEqual(STREAM_SERVICES[2:], SMALL_SERVICES)
        config = enableAll(Config(), udp=True)
        shared = [(s.service, s.description) for s in streamListeners(config)]
        self.assertIn(("chargen", "tcp:20007"), shared)
        worker = WorkerSpec(1, 2, (), "/tmp/r")
        root = buildService(config, MemoryReactorClock(), worker=worker)
        names = {s.name for s in root}
        self.assertTrue(set(SMALL_SERVICES) <= names)
        self.assertFalse({n for n in names if n.startswith("udp-")})


class ChargenUdpTests(SynchronousTestCase):
    """
    UDP chargen is refused with the reason, not as an unknown key.
    """

    def test_udpKeyRefused(self) -> None:
        """
        C{[chargen] udp} is an error that names the file, the section, the
        key and why, on one line.
        """
        from services.config import ConfigError, parseConfig

        with self.assertRaises(ConfigError) as caught:
            parseConfig("[chargen]\nudp = udp:10019\n", "/etc/tap.conf")
        message = str(caught.exception)
        self.assertTrue(message.startswith("/etc/tap.conf: [chargen] udp: "), message)
        self.assertIn("CERT CA-1996-01", message)
        self.assertNotIn("\n", message)
