# -*- test-case-name: tests.test_tap -*-
"""
C{twistd netservices}: command-line options and the service tree.

This module only composes: it reads the configuration, applies the flags on
top, and asks each service module to build its service.  Service modules are
imported only when their service is enabled, which keeps start-up short.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from twisted.application.service import IServiceCollection, MultiService
from twisted.logger import Logger
from twisted.python import usage

from services import __version__, logs
from services.config import (
    SECTIONS,
    SMALL_SERVICES,
    Config,
    ConfigError,
    loadConfig,
    parseText,
    replaceSection,
)
from services.net.drain import installHangupHandler, reopenLogFiles, stopOnEarlyTerm
from services.net.listen import (
    ListenContext,
    ListenError,
    closeAtOnce,
    listeningPorts,
    ownSocketLocks,
    parseListen,
)
from services.daemon.small import SmallServiceOptions, addSmallServices
from services.stats import ConnectionStats, DiscoveryStats, UdpEchoStats, WebStats
from services.daemon.values import tlsFiles

if TYPE_CHECKING:
    from services.daemon.workers import WorkerSpec

__all__ = ["NetservicesService", "Options", "makeService"]

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
        you mean --echo?)}.
        """
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
            from services.daemon.workers import WorkerSpec

            try:
                self.worker = WorkerSpec.fromArgument(self["worker"])
            except ValueError as e:
                raise usage.UsageError(f"--worker: {e}") from None
        if self["log-level"] is not None:
            level = self._value("--log-level", "log", "level", self["log-level"])
            config = replaceSection(config, "log", level=level)
        self.settings = config
        if getattr(self, "parent", None) is not None:
            installConfiguredReactor(config.netservices.reactor)

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
    options are parsed, before netservices' options: it wins.  Otherwise
    nothing has imported C{twisted.internet.reactor} yet and C{nsepoll} is
    installed here; C{twisted} leaves the choice to Twisted.  Where epoll is
    missing, or the running Twisted lacks an internal nsepoll needs (with one
    warning, see L{services._twisted.fastPath}), Twisted's default is used.

    @param name: C{"nsepoll"} or C{"twisted"}.
    @return: whether this installed a reactor.
    """
    import sys

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


class NetservicesService(MultiService):
    """
    The root of the netservices tree: one child per enabled service.

    @ivar config: the configuration the tree was built from.
    @ivar stats: each service's counters, by service name.
    @ivar reopenables: files with a C{reopen()} method (access logs) that
        SIGHUP reopens along with twistd's own log file.
    @ivar startedAt: when the service started (the reactor's clock), or
        L{None} before.
    @ivar worker: in a worker process of C{--workers}, what its parent told
        it (L{WorkerSpec.runtime} holds every worker's counters); else
        L{None}.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, config: Config, reactor: Any = None, handleSignals: bool = False) -> None:
        MultiService.__init__(self)
        self.config = config
        self.stats: dict[str, Any] = {}
        self.reopenables: list[Any] = []
        self.startedAt: float | None = None
        self._reactor = reactor
        self._handleSignals = handleSignals
        self._restoreSignals: Any = None
        self._restoreLog: Any = None
        self.worker: WorkerSpec | None = None
        self._bound = False

    def privilegedStartService(self) -> None:
        """
        Apply the log level, handle SIGHUP (before listening, so that a
        client that can connect can also rotate the logs) and bind every
        listener of the tree, once: L{makeService} does it before twistd
        writes its pidfile and daemonizes, and twistd's own call is then
        a no-op.  Nothing talks yet: the reactor is not running.

        @raise ListenError: naming the listener that cannot start, after
            every listener bound so far was closed (a UNIX socket's file
            and lock removed with it).
        """
        if self._bound:
            return
        logs.setLevel(self.config.log.level)
        if self._handleSignals and self._restoreSignals is None:
            restoreHangup = installHangupHandler(self._clock(), self.reopenLogs)
            restoreTerm = stopOnEarlyTerm(self._clock())
            self._restoreSignals = lambda: (restoreTerm(), restoreHangup())
        self._log.info(
            "netservices {version} starting with {source} ({services}) on {reactor}",
            version=__version__,
            reactor=type(self._clock()).__name__,
            source=self.config.source,
            services=", ".join(s.name for s in self) or "no services enabled",
        )
        quiet = logs.quietPortChatter() if self._handleSignals else None
        try:
            MultiService.privilegedStartService(self)
        except BaseException:
            self._closeListeners()
            raise
        finally:
            if quiet is not None:
                quiet()
        self._bound = True

    def _closeListeners(self) -> None:
        """
        Undo a start-up that failed half-way, before the reactor runs:
        close every listener bound so far, stop handling SIGHUP.
        """
        for service in self:
            closeListeners = getattr(service, "closeListeners", None)
            if closeListeners is not None:
                closeListeners()
            for port in listeningPorts(service):
                closeAtOnce(port)
        if self._restoreSignals is not None:
            self._restoreSignals()
            self._restoreSignals = None

    def startService(self) -> None:
        """
        Start every service.
        """
        self.startedAt = self._clock().seconds()
        # twistd may have daemonized since the listeners were bound.
        ownSocketLocks(listeningPorts(self))
        if self._handleSignals and self._restoreLog is None:
            self._restoreLog = logs.quietPortChatter()
        MultiService.startService(self)

    def _clock(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            return reactor
        return self._reactor

    def stopService(self) -> Any:
        """
        Stop every service (each drains its connections).
        """
        self._log.info(
            "netservices stopping: listeners closed, open connections have {grace} s to finish",
            grace=self.config.netservices.shutdown_grace,
        )
        if self._restoreSignals is not None:
            self._restoreSignals()
            self._restoreSignals = None
        stopped = MultiService.stopService(self)
        restoreLog, self._restoreLog = self._restoreLog, None
        if restoreLog is not None:
            # Once the ports have closed (and said so).
            stopped.addBoth(lambda result: (restoreLog(), result)[1])
        return stopped

    def reopenLogs(self) -> int:
        """
        Reopen twistd's log file and our access logs (after logrotate).
        """
        return reopenLogFiles(self.reopenables)


def listenContext(
    config: Config, worker: WorkerSpec | None, environ: Mapping[str, str]
) -> ListenContext:
    """
    What every listener of this process shares: the C{[tls]} files, the
    sockets systemd passed, or those a parent handed down to a worker.
    """
    tls = tlsFiles(config.tls)
    if worker is not None:
        return ListenContext(tls=tls, inherited=worker.inherited)
    if not usesSystemd(config):
        # Asking Twisted for systemd's sockets loads every endpoint parser
        # plugin; without a systemd: listener they would go unused.
        return ListenContext(tls=tls)
    from services.daemon.workers import systemdSockets

    return ListenContext(tls=tls, systemd=systemdSockets(environ))


def usesSystemd(config: Config) -> bool:
    """
    Whether an enabled service listens on a socket passed by systemd
    (a C{systemd:} description, under any C{haproxy:} layer).
    """
    for name in SECTIONS:
        section = getattr(config, name.replace("-", "_"))
        if not getattr(section, "enabled", False):
            continue
        for description in getattr(section, "listen", ()):
            try:
                if parseListen(description).kind == "systemd":
                    return True
            except ValueError:
                continue
    return False


def buildService(
    config: Config,
    reactor: Any = None,
    handleSignals: bool = False,
    worker: WorkerSpec | None = None,
    environ: Mapping[str, str] | None = None,
) -> NetservicesService:
    """
    Build the whole service tree for C{config}, listening with C{reactor}
    (the global reactor if L{None}).  With C{handleSignals} (the tree is
    the process's, under twistd), SIGHUP reopens the log files while the
    tree runs, and Twisted's own lines about ports starting and closing
    are left out of the log (L{logs.quietPortChatter}).

    With C{[netservices] workers} above 1 the tree is a supervisor of worker
    processes; C{worker} is set in each of those.

    @param environ: the process environment, for systemd's C{LISTEN_FDS}
        and the workers' environment.
    """
    environ = {} if environ is None else environ
    root = NetservicesService(config, reactor, handleSignals)
    root.worker = worker
    context = listenContext(config, worker, environ)
    supervising = worker is None and config.netservices.workers > 1
    if supervising:
        from services.daemon.workers import WorkerSupervisor

        if reactor is None:
            from twisted.internet import reactor
        supervisor = WorkerSupervisor(config, reactor, context, environ)
        supervisor.setServiceParent(root)
        root.reopenables.append(supervisor)  # SIGHUP goes on to the workers
    elif config.echo.enabled:
        from services.echo._tcp import makeEchoService

        stats = root.stats["echo"] = ConnectionStats()
        grace = config.netservices.shutdown_grace
        makeEchoService(config.echo, reactor, stats, grace, context).setServiceParent(root)
    # Datagram services run once per instance: in the parent when there are
    # workers, so that one instance answers one query once.
    if worker is None and config.discovery.enabled:
        from services.discovery._service import makeDiscoveryService

        discoveryStats = root.stats["discovery"] = DiscoveryStats()
        makeDiscoveryService(config.discovery, reactor, discoveryStats).setServiceParent(root)
    if worker is None and config.udp_echo.enabled:
        from services.echo._udp import makeUdpEchoService

        udpEchoStats = root.stats["udp-echo"] = UdpEchoStats()
        makeUdpEchoService(config.udp_echo, reactor, udpEchoStats).setServiceParent(root)
    addSmallServices(root, config, reactor, context, not supervising, worker is None)
    if supervising:
        _addMDNS(root, config, reactor, worker)
        return root
    # The web service comes last: its pages read the whole tree.
    if config.web.enabled:
        from services.web._service import makeWebService

        webStats = root.stats["web"] = WebStats()
        web = makeWebService(config.web, root, reactor, webStats, context)
        web.setServiceParent(root)
        root.reopenables.append(web)  # its access log
    _addMDNS(root, config, reactor, worker)
    return root


def _addMDNS(root: NetservicesService, config: Config, reactor: Any, worker: Any) -> None:
    """
    Add the mDNS responder when C{[mdns]} enables it, after the services it
    advertises (it reads their listeners), once per instance like the other
    datagram services.
    """
    if worker is not None or not config.mdns.enabled:
        return
    from services.discovery._mdns import makeMDNSService

    service = makeMDNSService(config.mdns, config.discovery.name, reactor)
    root.stats["mdns"] = service.stats
    service.setServiceParent(root)


def makeService(options: Options) -> IServiceCollection:
    """
    The twistd entry point: the service tree for parsed C{options}, with
    every listener bound.

    Binding here, before twistd writes its pidfile and daemonizes, means a
    listener that cannot start is reported by the process the user (or an
    init script) started: one line on standard error and exit status 1,
    with nothing left behind.  Once daemonized, twistd's parent would wait
    for ever for a child that failed this way.
    """
    root = buildService(
        options.settings, handleSignals=True, worker=options.worker, environ=os.environ
    )
    if options.worker is not None:
        # Signals for the parent's process group (Ctrl-C in a terminal) are
        # the parent's to handle: it stops its workers in order.
        os.setpgid(0, 0)
    try:
        root.privilegedStartService()
    except ListenError as e:
        raise SystemExit(f"netservices: error: {e}") from None
    if options.worker is None:
        return root
    from twisted.internet import reactor

    from services.daemon.workers import workerProcess

    return workerProcess(root, options.worker, reactor)
