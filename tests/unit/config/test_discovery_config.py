"""
Tests for the C{[discovery]} and C{[udp-echo]} sections, their flags, and
their place in the service tree.
"""

from __future__ import annotations

import configparser
import dataclasses
import shutil
import socket
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from services.config import (
    LIMITED_BROADCAST,
    SECTIONS,
    Config,
    ConfigError,
    DiscoveryConfig,
    UdpEchoConfig,
    loadConfig,
    parseConfig,
)
from services.discovery import DiscoveryService, DiscoverySettings, MDNSSettings
from services.stats import DiscoveryStats, UdpEchoStats
from services.daemon.tap import Options
from services.daemon.tree import buildService
from services.daemon.values import discoverySettings, mdnsSettings
from tests.support import ROOT, freePort
from tests.udpsupport import UdpMemoryReactor

OURS = {"discovery": DiscoveryConfig, "udp-echo": UdpEchoConfig}


class SectionTests(SynchronousTestCase):
    """
    The sections parse, default, and report errors like every other.
    """

    def test_registered(self) -> None:
        """
        Both sections are known, with their attributes on L{Config}.
        """
        for name, cls in OURS.items():
            self.assertIs(SECTIONS[name], cls)
        self.assertEqual(Config().discovery, DiscoveryConfig())
        self.assertEqual(Config().udp_echo, UdpEchoConfig())

    def test_defaultsMatchTapConf(self) -> None:
        """
        The repository's tap.conf spells out exactly the built-in defaults of
        both sections.
        """
        config = loadConfig(ROOT / "tap.conf")
        self.assertEqual(config.discovery, DiscoveryConfig())
        self.assertEqual(config.udp_echo, UdpEchoConfig())

    def test_everyKeyInTapConf(self) -> None:
        """
        Every key of both sections appears in the repository's tap.conf, in
        the order of the dataclass, each after its comment.
        """
        parser = configparser.RawConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        text = (ROOT / "tap.conf").read_text()
        parser.read_string(text)
        lines = text.splitlines()
        for name, cls in OURS.items():
            keys = [f.name for f in dataclasses.fields(cls)]
            self.assertEqual(list(parser[name]), keys)
            start = lines.index(f"[{name}]")
            for key in keys:
                index = next(i for i in range(start, len(lines)) if lines[i].startswith(f"{key} ="))
                self.assertTrue(lines[index - 1].startswith(("#", "source_")), key)

    def test_defaults(self) -> None:
        """
        Discovery is on and stays on this host; UDP echo is off.
        """
        discovery = DiscoveryConfig()
        self.assertEqual(
            (discovery.enabled, discovery.port, discovery.interface, discovery.broadcast),
            (True, 8009, "127.0.0.1", "auto"),
        )
        self.assertGreater(discovery.ttl, discovery.interval)
        self.assertFalse(UdpEchoConfig().enabled)
        self.assertEqual(UdpEchoConfig().listen, ("udp:8007:interface=127.0.0.1",))

    def test_values(self) -> None:
        """
        Every key takes its values.
        """
        config = parseConfig(
            "[discovery]\nenabled = no\nport = 9100\ninterface = 0.0.0.0\n"
            f"broadcast = {LIMITED_BROADCAST}\ninterval = 0.5\nttl = 2\nname = lab box\n"
            "source_rate = 0.5\nsource_burst = 1\nglobal_rate = 10\n"
            "[udp-echo]\nenabled = yes\nlisten = 7007\n  udp6:7007:interface=\\:\\:1\n"
            "source_rate = 5\nsource_burst = 10\nglobal_rate = 20\n"
        )
        self.assertEqual(
            config.discovery,
            DiscoveryConfig(
                enabled=False,
                port=9100,
                interface="0.0.0.0",
                broadcast=LIMITED_BROADCAST,
                interval=0.5,
                ttl=2,
                name="lab box",
                source_rate=0.5,
                source_burst=1,
                global_rate=10.0,
            ),
        )
        self.assertEqual(
            config.udp_echo,
            UdpEchoConfig(
                True,
                ("udp:7007:interface=127.0.0.1", "udp6:7007:interface=\\:\\:1"),
                5.0,
                10,
                20.0,
            ),
        )

    def test_errors(self) -> None:
        """
        A bad value names the file, section, key and value, and says what
        is allowed.
        """
        cases = {
            ("discovery", "port", "0"): "expected a whole number from 1 to 65535",
            ("discovery", "interface", "::1"): (
                "expected an IPv4 address such as 127.0.0.1 (0.0.0.0: all)"
            ),
            ("discovery", "broadcast", "example.com"): (
                "expected auto, an IPv4 broadcast address such as 127.255.255.255 or 192.168.1.255, "
                f"{LIMITED_BROADCAST}, or a multicast group in 239.255.0.0/16"
            ),
            ("discovery", "broadcast", "224.0.0.1"): (
                "expected a multicast group in 239.255.0.0/16 (organization-local scope), "
                "such as 239.255.0.9"
            ),
            ("discovery", "interval", "0"): "expected a number of seconds > 0",
            ("discovery", "ttl", "7200"): "expected a whole number from 1 to 3600",
            ("discovery", "name", "x" * 65): "expected 1 to 64 printable characters",
            ("discovery", "source_rate", "0"): "expected a finite number per second > 0",
            ("discovery", "source_burst", "0"): "expected a whole number from 1 to 1000000",
            (
                "discovery",
                "global_rate",
                "fast",
            ): "expected a number per second > 0, e.g. 10 or 0.5",
            ("udp-echo", "listen", "tcp:7"): (
                "expected a port or udp:PORT[:interface=ADDRESS] (udp6: for IPv6)"
                " or unixgram:PATH[:mode=OCTAL]"
            ),
            (
                "udp-echo",
                "listen",
                "7 udp:x",
            ): "'udp:x': port 'x' is not a whole number from 0 to 65535",
            ("udp-echo", "enabled", "perhaps"): "expected yes or no (also true/false, on/off, 1/0)",
        }
        for (section, key, value), allowed in cases.items():
            with self.assertRaises(ConfigError) as caught:
                parseConfig(f"[{section}]\n{key} = {value}\n", "my.conf")
            self.assertEqual(
                str(caught.exception), f"my.conf: [{section}] {key} = {value!r}: {allowed}"
            )


def options(*args: str) -> Config:
    """
    The configuration C{twistd netservices ARGS} would run with.
    """
    parsed = Options()
    parsed.parseOptions(list(args))
    return parsed.settings


class FlagTests(SynchronousTestCase):
    """
    The command-line flags override the sections.
    """

    def configPath(self) -> Path:
        """
        A path for a tap.conf in a directory removed after the test.
        """
        directory = tempfile.mkdtemp(prefix="netservices-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        return Path(directory) / "tap.conf"

    def test_discoveryPort(self) -> None:
        """
        C{--discovery-port} sets the port and turns discovery on.
        """
        path = self.configPath()
        path.write_text("[discovery]\nenabled = no\n")
        self.assertEqual(options("--discovery-port", "9100").discovery.port, 9100)
        settings = options("--config", str(path), "--discovery-port", "9100").discovery
        self.assertEqual((settings.enabled, settings.port), (True, 9100))

    def test_noDiscovery(self) -> None:
        """
        C{--no-discovery} turns discovery off.
        """
        self.assertFalse(options("--no-discovery").discovery.enabled)

    def test_udpEcho(self) -> None:
        """
        C{--udp-echo} is repeatable, takes endpoints or ports, replaces the
        configured listeners and turns UDP echo on.
        """
        settings = options("--udp-echo", "7007", "--udp-echo", "udp:7008").udp_echo
        self.assertTrue(settings.enabled)
        self.assertEqual(settings.listen, ("udp:7007:interface=127.0.0.1", "udp:7008"))

    def test_noUdpEcho(self) -> None:
        """
        C{--no-udp-echo} turns UDP echo off, whatever the file says.
        """
        path = self.configPath()
        path.write_text("[udp-echo]\nenabled = yes\n")
        self.assertFalse(options("--config", str(path), "--no-udp-echo").udp_echo.enabled)

    def test_contradictions(self) -> None:
        """
        A flag and its C{--no-} form together end the process with one line.
        """
        for args in (
            ["--discovery-port", "9100", "--no-discovery"],
            ["--udp-echo", "7007", "--no-udp-echo"],
        ):
            with self.assertRaises(SystemExit) as caught:
                options(*args)
            self.assertIn("contradict", str(caught.exception.code))

    def test_badFlag(self) -> None:
        """
        A bad flag value ends the process with one line naming the flag.
        """
        for args, message in (
            (["--discovery-port", "x"], "command line: --discovery-port 'x': expected a whole"),
            (["--udp-echo", "tcp:7"], "command line: --udp-echo 'tcp:7': expected a port"),
        ):
            with self.assertRaises(SystemExit) as caught:
                options(*args)
            self.assertIn(message, str(caught.exception.code))

    def test_ttlNotAboveInterval(self) -> None:
        """
        A ttl no longer than the interval would forget peers between their
        announces: refused, naming the file and both keys.
        """
        path = self.configPath()
        path.write_text("[discovery]\ninterval = 10\nttl = 10\n")
        with self.assertRaises(SystemExit) as caught:
            options("--config", str(path))
        self.assertEqual(
            caught.exception.code,
            f"netservices: error: {path}: [discovery] ttl = 10: expected more than "
            "interval (10 s), or peers forget each other between announces",
        )
        path.write_text("[discovery]\nenabled = no\ninterval = 10\nttl = 10\n")
        self.assertFalse(options("--config", str(path)).discovery.enabled)


class SettingsTests(SynchronousTestCase):
    """
    L{discoverySettings} and L{mdnsSettings} turn C{[discovery]} and
    C{[mdns]} into the values the services take.
    """

    def test_defaults(self) -> None:
        """
        The sections' defaults are the settings' defaults, so that a service
        built without settings behaves as the daemon's does by default.
        """
        self.assertEqual(discoverySettings(DiscoveryConfig()), DiscoverySettings())
        self.assertEqual(mdnsSettings(parseConfig("").mdns), MDNSSettings())

    def test_everyKey(self) -> None:
        """
        Every key of C{[discovery]} but C{enabled} reaches the settings.
        """
        config = parseConfig(
            "[discovery]\nport = 9100\ninterface = 0.0.0.0\nbroadcast = 239.255.0.9\n"
            "ipv6 = yes\ninterval = 0.5\nttl = 2\nname = lab box\nsource_rate = 0.5\n"
            "source_burst = 1\nglobal_rate = 10\nmax_peer_ttl = 30\n"
            "max_peers_per_source = 3\nmax_ports_per_source = 7\n"
        )
        self.assertEqual(
            discoverySettings(config.discovery),
            DiscoverySettings(
                port=9100,
                interface="0.0.0.0",
                broadcast="239.255.0.9",
                ipv6=True,
                interval=0.5,
                ttl=2,
                name="lab box",
                sourceRate=0.5,
                sourceBurst=1,
                globalRate=10.0,
                maxPeerTtl=30,
                maxPeersPerSource=3,
                maxPortsPerSource=7,
            ),
        )

    def test_mdns(self) -> None:
        """
        C{[mdns]} gives the families as numbers, and the name of
        C{[discovery]} when its own is empty.
        """
        config = parseConfig("[mdns]\ninterfaces = eth0 eth1\nfamilies = ipv6\n")
        self.assertEqual(
            mdnsSettings(config.mdns, "beta"), MDNSSettings("beta", ("eth0", "eth1"), (6,))
        )
        named = parseConfig("[mdns]\nname = gamma\n").mdns
        self.assertEqual(mdnsSettings(named, "beta").name, "gamma")


class TreeTests(SynchronousTestCase):
    """
    L{buildService} adds the services under their names, with counters.
    """

    def build(self, *args: str) -> object:
        """
        The service tree for C{args}, over a memory reactor.
        """
        reactor = UdpMemoryReactor()
        config = options("--echo", "tcp:0:interface=127.0.0.1", *args)
        return buildService(config, reactor)

    def test_defaultTree(self) -> None:
        """
        By default discovery runs and UDP echo does not.
        """
        root = self.build("--discovery-port", str(freePort(socket.SOCK_DGRAM)))
        names = [s.name for s in root]  # type: ignore[attr-defined]
        self.assertIn("discovery", names)
        self.assertNotIn("udp-echo", names)
        discovery = root.getServiceNamed("discovery")  # type: ignore[attr-defined]
        self.assertIsInstance(discovery, DiscoveryService)
        stats = root.stats["discovery"]  # type: ignore[attr-defined]
        self.assertIsInstance(stats, DiscoveryStats)
        self.assertIs(discovery.stats, stats)
        snapshot = stats.snapshot()
        self.assertTrue(all(isinstance(v, int) for v in snapshot.values()))
        self.assertIn("repliesSent", snapshot)

    def test_udpEchoTree(self) -> None:
        """
        With C{--udp-echo}, a C{udp-echo} service with its counters.
        """
        root = self.build("--no-discovery", "--udp-echo", "udp:0:interface=127.0.0.1")
        names = [s.name for s in root]  # type: ignore[attr-defined]
        self.assertNotIn("discovery", names)
        self.assertIn("udp-echo", names)
        self.assertIsInstance(root.stats["udp-echo"], UdpEchoStats)  # type: ignore[attr-defined]
        self.assertNotIn("discovery", root.stats)  # type: ignore[attr-defined]

    def test_advertisesSiblings(self) -> None:
        """
        Discovery advertises the ports its siblings actually listen on.
        """
        root = self.build(
            "--discovery-port",
            str(freePort(socket.SOCK_DGRAM)),
            "--udp-echo",
            "udp:0:interface=127.0.0.1",
        )
        root.privilegedStartService()  # type: ignore[attr-defined]
        root.startService()  # type: ignore[attr-defined]
        self.addCleanup(root.stopService)  # type: ignore[attr-defined]
        discovery = root.getServiceNamed("discovery")  # type: ignore[attr-defined]
        udpEcho = root.getServiceNamed("udp-echo")  # type: ignore[attr-defined]
        udpPort = next(iter(udpEcho)).port.getHost().port
        advertised = discovery.advertisedPorts()
        self.assertEqual(advertised["udp-echo"], [udpPort])
        self.assertEqual(set(advertised), {"echo", "udp-echo", "web"})
