# -*- test-case-name: tests.unit.daemon.test_tap -*-
"""
C{twistd netservices}: its command-line options and L{makeService}, the
entry point twistd calls.

The options read the configuration and apply the flags on top (L{Options});
L{makeService} installs the configured reactor, builds the service tree
(L{services.daemon.tree}) and binds its listeners.  Only here does an error
end the process: one line, C{netservices: error: ...}, and exit status 1.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import IServiceCollection
from twisted.python import usage

from services import __version__
from services.config import (
    SMALL_SERVICES,
    Config,
    ConfigError,
    loadConfig,
    parseText,
    replaceSection,
)
from services.daemon.small import SmallServiceOptions
from services.daemon.tree import buildService
from services.net.listener import ListenError

if TYPE_CHECKING:
    from services.daemon.workerprocess import WorkerSpec

__all__ = ["Options", "installConfiguredReactor", "makeService"]

#: Options set by the netservices parent on its workers' command lines,
#: left out of --help and of suggestions.
HIDDEN = frozenset({"worker"})


def _isTwistdOption(flag: str) -> bool:
    """
    Whether C{flag} (C{--logfile}, C{-l}) is one of twistd's own options,
    which go before C{netservices} on the command line.
    """
    from twisted.scripts.twistd import ServerOptions

    options = ServerOptions()
    if flag.startswith("--"):
        return flag[2:] in {name.rstrip("=") for name in options.longOpt}
    return len(flag) == 2 and flag[1] in options.shortOpt.replace(":", "")


class Options(SmallServiceOptions, usage.Options):
    """
    Options of C{twistd netservices}.  Values come from the built-in
    defaults, then the C{--config} file, then the flags.
    """

    synopsis = "[options]"
    longdesc = (
        "Run the netservices daemon, all on one reactor: an RFC 862 echo service "
        "over TCP, IPv6, UNIX or TLS sockets, UDP discovery (and UDP echo), and "
        "an HTTP service (hello, static files, /status, /health, /metrics); off "
        "until asked for, the RFC small services discard, chargen, daytime, time "
        "and qotd (--discard ENDPOINT...).  "
        "Without --config it runs on the built-in defaults, which listen on "
        "127.0.0.1 only (echo tcp:8007, web tcp:8080, discovery udp:8009).  "
        "Flags override the file.  The reactor is nsepoll unless twistd is given "
        "--reactor NAME (before 'netservices') or the file says [netservices] "
        "reactor = twisted.  Example: twistd -n netservices --config tap.conf "
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
            "static",
            None,
            None,
            "Serve the files under this directory at [web] static_mount "
            "(overrides [web] static_dir).",
        ],
        [
            "discovery-port",
            None,
            None,
            "Announce to and answer on this UDP port (overrides [discovery] port; "
            "instances share it).",
        ],
        [
            "workers",
            None,
            None,
            "Run this many worker processes sharing every stream listener, under a "
            "supervising parent (overrides [netservices] workers).",
        ],
        [
            "worker",
            None,
            None,
            "Internal: set by the parent of --workers on each worker process (not in --help).",
        ],
    ]
    optFlags = [
        ["no-echo", None, "Do not run the echo service."],
        ["no-web", None, "Do not run the web service."],
        ["no-discovery", None, "Do not run the discovery service."],
        ["no-udp-echo", None, "Do not run the UDP echo service."],
    ]

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self.settings = Config()
        self.worker: WorkerSpec | None = None

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
        self.setdefault("echo", []).append(description)

    def opt_web(self, description: str) -> None:
        """
        Listen for HTTP on this endpoint (repeatable; replaces [web] listen).
        """
        self.setdefault("web", []).append(description)

    def opt_udp_echo(self, description: str) -> None:
        """
        Echo datagrams on udp:PORT[:interface=ADDR], PORT (127.0.0.1) or unixgram:PATH (repeatable).
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
        except usage.UsageError as e:
            raise SystemExit(
                f"netservices: error: {self._explain(str(e))}; see twistd netservices --help"
            ) from None

    def parseArgs(self, *args: str) -> None:
        """
        Refuse arguments that are not options (Twisted's own message,
        C{Wrong number of arguments.}, names neither the argument nor the
        fix).
        """
        if args:
            raise usage.UsageError(
                f"unexpected argument {args[0]!r}: netservices takes only options, "
                "such as --echo ENDPOINT"
            )

    def _explain(self, message: str) -> str:
        """
        Say what is wrong with the command line in our words: getopt's
        C{option --ehco not recognized} becomes C{unknown option --ehco (did
        you mean --echo?)}.  Characters that cannot be printed (a newline in
        an argument) are shown escaped, so that the error stays one line.
        """
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        match = re.fullmatch(
            r"option (-[^ ]+) (not recognized|requires argument|not a unique prefix"
            r"|must not have an argument)",
            message,
        )
        if match is None:
            return message
        flag, problem = match.groups()
        if problem == "requires argument":
            return f"{flag} needs a value"
        if problem == "must not have an argument":
            return f"{flag} takes no value"
        known = [f"--{name.rstrip('=')}" for name in self.longOpt if name.rstrip("=") not in HIDDEN]
        if problem == "not a unique prefix":
            candidates = ", ".join(name for name in known if name.startswith(flag))
            return f"ambiguous option {flag}: {candidates}"
        if _isTwistdOption(flag):
            return (
                f"{flag} is an option of twistd: put it before 'netservices' "
                f"(twistd {flag} ... netservices ...)"
            )
        import difflib  # only for a mistyped option

        names = {name.lstrip("-"): name for name in known}
        close = difflib.get_close_matches(flag.lstrip("-"), list(names), n=1)
        suggestion = f" (did you mean {names[close[0]]}?)" if close else ""
        return f"unknown option {flag}{suggestion}"

    def getUsage(self, width: int | None = None) -> str:
        """
        The usage text, without the options a parent process sets
        internally (C{--worker}).
        """
        everything = self.longOpt
        self.longOpt = [name for name in everything if name.rstrip("=") not in HIDDEN]
        try:
            return usage.Options.getUsage(self, width)
        finally:
            self.longOpt = everything

    def postOptions(self) -> None:
        """
        Load the configuration file, apply the flags, check what combines.

        @raise ConfigError: when the file or a flag holds a bad value.
        @raise usage.UsageError: when flags contradict each other.
        """
        config = loadConfig(self["config"]) if self["config"] else Config()
        for section in ("echo", "web", "udp-echo", *SMALL_SERVICES):
            config = self._listenFlags(config, section)
        if self["static"] is not None:
            directory = self._value("--static", "web", "static_dir", self["static"])
            config = replaceSection(config, "web", static_dir=directory)
        config = self._discoveryFlags(config)
        if self["workers"] is not None:
            workers = self._value("--workers", "netservices", "workers", self["workers"])
            config = replaceSection(config, "netservices", workers=workers)
        if self["worker"] is not None:
            from services.daemon.workerprocess import WorkerSpec

            try:
                self.worker = WorkerSpec.fromArgument(self["worker"])
            except ValueError as e:
                raise usage.UsageError(f"--worker: {e}") from None
        if self["log-level"] is not None:
            level = self._value("--log-level", "log", "level", self["log-level"])
            config = replaceSection(config, "log", level=level)
        self.settings = config

    def _listenFlags(self, config: Config, section: str) -> Config:
        """
        Apply C{--SECTION ENDPOINT} (repeatable: replaces C{listen} and
        enables the service) and C{--no-SECTION}.
        """
        given, disabled = self.get(section, []), self[f"no-{section}"]
        if given and disabled:
            raise usage.UsageError(f"--{section} and --no-{section} contradict each other")
        if given:
            listen = sum((self._value(f"--{section}", section, "listen", d) for d in given), ())
            config = replaceSection(config, section, enabled=True, listen=listen)
        if disabled:
            config = replaceSection(config, section, enabled=False)
        return config

    def _discoveryFlags(self, config: Config) -> Config:
        """
        Apply C{--discovery-port} and C{--no-discovery}, and check that
        peers outlive the announce interval.
        """
        if self["discovery-port"] is not None and self["no-discovery"]:
            raise usage.UsageError("--discovery-port and --no-discovery contradict each other")
        if self["discovery-port"] is not None:
            port = self._value("--discovery-port", "discovery", "port", self["discovery-port"])
            config = replaceSection(config, "discovery", enabled=True, port=port)
        if self["no-discovery"]:
            config = replaceSection(config, "discovery", enabled=False)
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


def installConfiguredReactor(name: str) -> bool:
    """
    Install the C{[netservices] reactor} as the global reactor, unless one
    is installed already.

    Under twistd, C{--reactor NAME} installs its reactor while twistd's own
    options are parsed, before L{makeService} calls this: it wins.
    Otherwise nothing has imported C{twisted.internet.reactor} yet and
    C{nsepoll} is installed here; C{twisted} leaves the choice to Twisted.
    Where epoll is missing, or the running Twisted lacks an internal nsepoll
    needs (with one warning, see L{services._twisted.fastPath}), Twisted's
    default is used.

    @param name: C{"nsepoll"} or C{"twisted"}.
    @return: whether this installed a reactor.
    """
    if name != "nsepoll" or "twisted.internet.reactor" in sys.modules:
        return False
    from services._twisted import fastPath

    if not fastPath("nsepoll"):  # a Twisted without what it builds on: stock epoll
        return False
    from services import nsepoll

    try:
        nsepoll.install()
    except ImportError:  # pragma: no cover (no epoll on this platform)
        return False
    return True


def makeService(options: Options) -> IServiceCollection:
    """
    The twistd entry point: the service tree for parsed C{options}, with
    every listener bound.

    Binding here, before twistd writes its pidfile and daemonizes, means a
    listener that cannot start is reported by the process the user (or an
    init script) started: one line on standard error and exit status 1,
    with nothing left behind.  Once daemonized, twistd's parent would wait
    for ever for a child that failed this way.

    The configured reactor (C{[netservices] reactor}) is installed first,
    before anything imports the global one: twistd calls this after
    parsing its options (where C{--reactor} installs its own, which wins)
    and before it runs the reactor.  Parsing the options installs nothing,
    so that a program that parses them for itself keeps its choice.

    @raise SystemExit: with the one-line message, when the tree cannot
        start.
    """
    installConfiguredReactor(options.settings.netservices.reactor)
    try:
        root = buildService(
            options.settings, handleSignals=True, worker=options.worker, environ=os.environ
        )
        if options.worker is not None:
            # Signals for the parent's process group (Ctrl-C in a terminal)
            # are the parent's to handle: it stops its workers in order.
            os.setpgid(0, 0)
        root.privilegedStartService()
    except (ConfigError, ListenError) as e:
        raise SystemExit(f"netservices: error: {e}") from None
    if options.worker is None:
        return root
    from services.daemon.workerprocess import workerProcess

    return workerProcess(root, options.worker, root.reactor)
