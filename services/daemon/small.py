# -*- test-case-name: tests.unit.daemon.test_smalldaemon -*-
"""
The daemon's side of the small services: their C{twistd netservices} flags
and their place in the service tree.

Nothing here is imported by the data path; L{addSmallServices} imports the
service modules only when a small service is enabled.
"""

from __future__ import annotations

from typing import Any

from services.config import SMALL_SERVICES, Config
from services.net.endpoints import ListenContext
from services.stats import ConnectionStats, DatagramAnswerStats

__all__ = ["SmallServiceOptions", "addSmallServices"]

_RFCS = {"discard": 863, "chargen": 864, "daytime": 867, "time": 868, "qotd": 865}


def _listenOption(name: str) -> Any:
    def opt(self: Any, description: str) -> None:
        self.setdefault(name, []).append(description)

    opt.__doc__ = (
        f"Listen for {name} (RFC {_RFCS[name]}) on this endpoint "
        f"(repeatable; replaces [{name}] listen and enables it)."
    )
    return opt


class SmallServiceOptions:
    """
    The flags of the small services, mixed into
    L{services.daemon.tap.Options}: C{--NAME ENDPOINT} (repeatable) and
    C{--no-NAME} for each of L{SMALL_SERVICES}.
    """

    optFlags = [[f"no-{name}", None, f"Do not run the {name} service."] for name in SMALL_SERVICES]

    opt_discard = _listenOption("discard")
    opt_chargen = _listenOption("chargen")
    opt_daytime = _listenOption("daytime")
    opt_time = _listenOption("time")
    opt_qotd = _listenOption("qotd")


def addSmallServices(
    root: Any,
    config: Config,
    reactor: Any,
    context: ListenContext,
    streams: bool = True,
    datagrams: bool = True,
) -> None:
    """
    Add the enabled small services to C{root} (a
    L{services.daemon.tap.NetservicesService}), each with its counters in
    C{root.stats}: C{NAME} for its stream listeners, C{udp-NAME} for its
    UDP ones (C{[NAME] udp}).

    @param streams: add the stream listeners (not in a parent of workers:
        its workers do).
    @param datagrams: add the UDP listeners (not in a worker: its parent
        does, so that one request gets one answer).
    """
    enabled = [n for n in SMALL_SERVICES if getattr(config, n).enabled]
    if not enabled:
        return
    from services.daemon.values import smallServiceSettings
    from services.echo import makeSmallService, makeSmallUdpService

    grace = config.netservices.shutdown_grace
    for name in enabled:
        settings = smallServiceSettings(name, getattr(config, name))
        if streams:
            stats = root.stats[name] = ConnectionStats()
            makeSmallService(name, settings, reactor, stats, grace, context).setServiceParent(root)
        if datagrams and settings.udp:
            udpStats = root.stats[f"udp-{name}"] = DatagramAnswerStats()
            makeSmallUdpService(name, settings, reactor, udpStats).setServiceParent(root)
