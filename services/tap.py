# -*- test-case-name: tests.test_tap -*-
"""
C{twistd netservices}: command-line options and the service tree.

This module only composes: it reads the configuration, applies the flags on
top, and asks each service module to build its service.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.application.service import IServiceCollection, MultiService
from twisted.logger import Logger
from twisted.python import usage

from services import __version__, logs
from services.config import (
    Config,
    ConfigError,
    loadConfig,
    parseText,
    replaceSection,
)
from services.discovery import makeDiscoveryService
from services.echo import makeEchoService
from services.listen import ListenError
from services.stats import ConnectionStats, DiscoveryStats, UdpEchoStats
from services.udpecho import makeUdpEchoService

__all__ = ["NetservicesService", "Options", "makeService"]


class Options(usage.Options):
    """
    Options of C{twistd netservices}.  Values come from the built-in
    defaults, then the C{--config} file, then the flags.
    """

    synopsis = "[options]"
    longdesc = (
        "Run the netservices daemon: an RFC 862 echo service over TCP, IPv6 or "
        "UNIX sockets, with more services to come, all on one reactor.  "
        "Without --config it runs on the built-in defaults, which listen on "
        "127.0.0.1 only (echo on tcp:8007).  Flags override the file.  "
        "Example: twistd -n netservices --config tap.conf "
        "--echo tcp:7007:interface=127.0.0.1 --echo unix:/tmp/echo.sock"
    )

    optParameters = [
        ["config", "c", None, "Read settings from this tap.conf (INI) file."],
        [
            "log-level",
            None,
            None,
            "Lowest level of netservices events to log: debug, info, warn, error "
            "or critical (overrides [log] level).",
        ],
        [
            "discovery-port",
            None,
            None,
            "Announce to and answer on this UDP port (overrides [discovery] port; "
            "instances share it).",
        ],
    ]
    optFlags = [
        ["no-echo", None, "Do not run the echo service."],
        # discovery flags here
        ["no-discovery", None, "Do not run the discovery service."],
        ["no-udp-echo", None, "Do not run the UDP echo service."],
        # web flags here
    ]

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["echo"] = []
        self.settings = Config()

    def opt_version(self) -> None:
        """
        Print the netservices version and exit.
        """
        print(f"netservices {__version__}")
        raise SystemExit(0)

    def opt_echo(self, description: str) -> None:
        """
        Listen for echo on this endpoint (repeatable; replaces [echo] listen).
        """
        self["echo"].append(description)

    def opt_udp_echo(self, description: str) -> None:
        """
        Echo datagrams on udp:PORT[:interface=ADDR], or PORT on 127.0.0.1 (repeatable).
        """
        self.setdefault("udp-echo", []).append(description)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse the command line.  A configuration error ends the process with
        a one-line message and exit status 1, without the usage text: the
        message says exactly what to fix.
        """
        try:
            usage.Options.parseOptions(self, options)
        except ConfigError as e:
            raise SystemExit(f"netservices: error: {e}") from None

    def postOptions(self) -> None:
        """
        Load the configuration file, apply the flags, check what combines.

        @raise ConfigError: when the file or a flag holds a bad value.
        @raise usage.UsageError: when flags contradict each other.
        """
        config = loadConfig(self["config"]) if self["config"] else Config()
        if self["echo"] and self["no-echo"]:
            raise usage.UsageError("--echo and --no-echo contradict each other")
        if self["echo"]:
            listen = sum((self._value("--echo", "echo", "listen", d) for d in self["echo"]), ())
            config = replaceSection(config, "echo", enabled=True, listen=listen)
        if self["no-echo"]:
            config = replaceSection(config, "echo", enabled=False)
        # discovery overrides here
        config = self._discoveryOverrides(config)
        # web overrides here
        if self["log-level"] is not None:
            level = self._value("--log-level", "log", "level", self["log-level"])
            config = replaceSection(config, "log", level=level)
        self.settings = config

    def _discoveryOverrides(self, config: Config) -> Config:
        udpEcho = self.get("udp-echo", [])
        if self["discovery-port"] is not None and self["no-discovery"]:
            raise usage.UsageError("--discovery-port and --no-discovery contradict each other")
        if udpEcho and self["no-udp-echo"]:
            raise usage.UsageError("--udp-echo and --no-udp-echo contradict each other")
        if self["discovery-port"] is not None:
            port = self._value("--discovery-port", "discovery", "port", self["discovery-port"])
            config = replaceSection(config, "discovery", enabled=True, port=port)
        if self["no-discovery"]:
            config = replaceSection(config, "discovery", enabled=False)
        if udpEcho:
            listen = sum((self._value("--udp-echo", "udp-echo", "listen", d) for d in udpEcho), ())
            config = replaceSection(config, "udp-echo", enabled=True, listen=listen)
        if self["no-udp-echo"]:
            config = replaceSection(config, "udp-echo", enabled=False)
        discovery = config.discovery
        if discovery.enabled and discovery.ttl <= discovery.interval:
            raise ConfigError(
                f"{config.source}: [discovery] ttl = {discovery.ttl!r}: expected more than "
                f"interval ({discovery.interval:g} s), or peers forget each other between announces"
            )
        return config

    @staticmethod
    def _value(flag: str, section: str, key: str, text: str) -> Any:
        try:
            return parseText(section, key, text)
        except ValueError as e:
            raise ConfigError(f"command line: {flag} {text!r}: {e}") from None


class NetservicesService(MultiService):
    """
    The root of the netservices tree: one child per enabled service.

    @ivar config: the configuration the tree was built from.
    @ivar stats: each service's counters, by service name.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, config: Config) -> None:
        MultiService.__init__(self)
        self.config = config
        self.stats: dict[str, Any] = {}

    def privilegedStartService(self) -> None:
        """
        Apply the log level and start listening.  If a listener cannot
        start, end the process with one line that names it.
        """
        logs.setLevel(self.config.log.level)
        self._log.info(
            "netservices {version} starting with {source} ({services})",
            version=__version__,
            source=self.config.source,
            services=", ".join(s.name for s in self) or "no services enabled",
        )
        try:
            MultiService.privilegedStartService(self)
        except ListenError as e:
            raise SystemExit(f"netservices: error: {e}") from None


def buildService(config: Config, reactor: Any = None) -> NetservicesService:
    """
    Build the whole service tree for C{config}, listening with C{reactor}
    (the global reactor if L{None}).
    """
    root = NetservicesService(config)
    if config.echo.enabled:
        stats = root.stats["echo"] = ConnectionStats()
        makeEchoService(config.echo, reactor, stats).setServiceParent(root)
    # discovery services here
    if config.discovery.enabled:
        discoveryStats = root.stats["discovery"] = DiscoveryStats()
        makeDiscoveryService(config.discovery, reactor, discoveryStats).setServiceParent(root)
    if config.udp_echo.enabled:
        udpEchoStats = root.stats["udp-echo"] = UdpEchoStats()
        makeUdpEchoService(config.udp_echo, reactor, udpEchoStats).setServiceParent(root)
    # web service here (last: it reads the whole tree)
    return root


def makeService(options: Options) -> IServiceCollection:
    """
    The twistd entry point: the service tree for parsed C{options}.
    """
    return buildService(options.settings)
