# -*- test-case-name: tests.unit.daemon.test_tap -*-
"""
The service tree of C{twistd netservices}, built from a L{Config}: its root
(L{NetservicesService}) and one child per enabled service.

This module only composes: each service's values come from
L{services.daemon.values}, and service modules are imported only when
their service is enabled, which keeps start-up short.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.logger import Logger

from services import __version__, logs
from services.config import SECTIONS, Config
from services.daemon.small import addSmallServices
from services.daemon.values import tlsFiles, workerPool
from services.net.defaults import defaultReactor
from services.daemon.signals import installHangupHandler, reopenLogFiles, stopOnEarlyTerm
from services.net.descriptions import parseListen
from services.net.endpoints import ListenContext
from services.net.listener import closeAtOnce, listeningPorts, ownSocketLocks
from services.net.systemd import systemdSockets
from services.stats import ConnectionStats, DiscoveryStats, UdpEchoStats, WebStats

if TYPE_CHECKING:
    from services.daemon.workerprocess import WorkerSpec

__all__ = ["NetservicesService", "buildService", "listenContext", "usesSystemd"]


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
    @ivar reactor: the reactor the tree runs on.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, config: Config, reactor: Any = None, handleSignals: bool = False) -> None:
        """
        @param config: the configuration the tree is built from.
        @param reactor: the reactor it runs on: its clock dates the
            start, and the signal handlers call into it.
        @param handleSignals: handle SIGHUP and an early SIGTERM (the tree
            is the process's).
        """
        MultiService.__init__(self)
        self.config = config
        self.stats: dict[str, Any] = {}
        self.reopenables: list[Any] = []
        self.startedAt: float | None = None
        self.reactor = defaultReactor(reactor)
        self._handleSignals = handleSignals
        self._restoreSignals: Any = None
        self._restoreLog: Any = None
        self.worker: WorkerSpec | None = None
        self._bound = False

    def privilegedStartService(self) -> None:
        """
        Apply the log level, handle SIGHUP (before listening, so that a
        client that can connect can also rotate the logs) and bind every
        listener of the tree, once: L{services.daemon.tap.makeService}
        does it before twistd writes its pidfile and daemonizes, and
        twistd's own call is then a no-op.  Nothing talks yet: the reactor is not running.

        @raise ListenError: naming the listener that cannot start, after
            every listener bound so far was closed (a UNIX socket's file
            and lock removed with it).
        """
        if self._bound:
            return
        logs.setLevel(self.config.log.level)
        if self._handleSignals and self._restoreSignals is None:
            restoreHangup = installHangupHandler(self.reactor, self.reopenLogs)
            restoreTerm = stopOnEarlyTerm(self.reactor)
            self._restoreSignals = lambda: (restoreTerm(), restoreHangup())
        self._log.info(
            "netservices {version} starting with {source} ({services}) on {reactor}",
            version=__version__,
            reactor=type(self.reactor).__name__,
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
        self.startedAt = self.reactor.seconds()
        # twistd may have daemonized since the listeners were bound.
        ownSocketLocks(listeningPorts(self))
        if self._handleSignals and self._restoreLog is None:
            self._restoreLog = logs.quietPortChatter()
        MultiService.startService(self)

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

    Nothing is bound yet: the tree's C{privilegedStartService} binds every
    listener (L{services.daemon.tap.makeService} calls it before twistd
    daemonizes), and raises L{ListenError} naming the one that cannot
    start.  Nothing here ends the process: an application that embeds the
    tree handles the errors as it sees fit.

    @param environ: the process environment, for systemd's C{LISTEN_FDS}
        and the workers' environment.
    """
    environ = {} if environ is None else environ
    reactor = defaultReactor(reactor)
    root = NetservicesService(config, reactor, handleSignals)
    root.worker = worker
    context = listenContext(config, worker, environ)
    supervising = worker is None and config.netservices.workers > 1
    if supervising:
        from services.daemon.workers import WorkerSupervisor

        supervisor = WorkerSupervisor(workerPool(config), reactor, context, environ)
        supervisor.setServiceParent(root)
        root.reopenables.append(supervisor)  # SIGHUP goes on to the workers
    elif config.echo.enabled:
        from services.daemon.values import echoSettings
        from services.echo import makeEchoService

        stats = root.stats["echo"] = ConnectionStats()
        grace = config.netservices.shutdown_grace
        echo = makeEchoService(echoSettings(config.echo), reactor, stats, grace, context)
        echo.setServiceParent(root)
    # Datagram services run once per instance: in the parent when there are
    # workers, so that one instance answers one query once.
    if worker is None and config.discovery.enabled:
        from services.daemon.values import discoverySettings
        from services.discovery import makeDiscoveryService

        discoveryStats = root.stats["discovery"] = DiscoveryStats()
        settings = discoverySettings(config.discovery)
        makeDiscoveryService(settings, reactor, discoveryStats).setServiceParent(root)
    if worker is None and config.udp_echo.enabled:
        from services.daemon.values import udpEchoSettings
        from services.echo import makeUdpEchoService

        udpEchoStats = root.stats["udp-echo"] = UdpEchoStats()
        udpEcho = makeUdpEchoService(udpEchoSettings(config.udp_echo), reactor, udpEchoStats)
        udpEcho.setServiceParent(root)
    addSmallServices(root, config, reactor, context, not supervising, worker is None)
    if supervising:
        _addMDNS(root, config, reactor, worker)
        return root
    # The web service comes last: its pages read the whole tree.
    if config.web.enabled:
        from services.daemon.values import webSettings, webWorkerReports
        from services.web import makeWebService

        webStats = root.stats["web"] = WebStats()
        workers = webWorkerReports(worker)
        web = makeWebService(webSettings(config.web), root, reactor, webStats, context, workers)
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
    from services.daemon.values import mdnsSettings
    from services.discovery import makeMDNSService

    service = makeMDNSService(mdnsSettings(config.mdns, config.discovery.name), reactor)
    root.stats["mdns"] = service.stats
    service.setServiceParent(root)
