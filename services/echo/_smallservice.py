# -*- test-case-name: tests.unit.echo.test_smallservices -*-
"""
The small services built from their settings: a service of stream
listeners (L{makeSmallService}) and one of UDP listeners
(L{makeSmallUdpService}) for each of discard, chargen, daytime, time and
qotd.

Use them in your own application::

    from services.echo import SmallServiceSettings, makeSmallService

    settings = SmallServiceSettings(listen=("tcp:10013:interface=127.0.0.1",), timeout=10)
    makeSmallService("daytime", settings).setServiceParent(application)
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.internet.protocol import Protocol

from services.echo._settings import SmallServiceSettings
from services.echo._small import Answer, Chargen, Discard, SmallServiceFactory
from services.echo._smallanswers import answerFor
from services.echo._smalludp import DatagramAnswer
from services.echo._tcp import EchoService
from services.echo._udp import UdpEchoListener
from services.net.datagram import SourceLimiter, parseUdpEndpoint
from services.net.defaults import defaultReactor
from services.net.endpoints import ListenContext, endpointFor
from services.net.listener import ListenerService
from services.net.ownports import OwnPorts
from services.stats import ConnectionStats, DatagramAnswerStats

__all__ = ["makeSmallService", "makeSmallUdpService"]

#: The protocol of each small service over stream sockets.
_PROTOCOLS: dict[str, type[Protocol]] = {
    "discard": Discard,
    "chargen": Chargen,
    "daytime": Answer,
    "time": Answer,
    "qotd": Answer,
}


def makeSmallService(
    name: str,
    settings: SmallServiceSettings,
    reactor: Any = None,
    stats: ConnectionStats | None = None,
    grace: float = 10.0,
    context: ListenContext | None = None,
) -> EchoService:
    """
    Build small service C{name} (C{"discard"}, C{"chargen"}, C{"daytime"},
    C{"time"} or C{"qotd"}): one listener per endpoint of
    C{settings.listen}, sharing one L{SmallServiceFactory}.

    @param reactor: the reactor to listen with (an L{IReactorTime} that
        listens on the endpoints' kinds of socket); the global one if
        L{None}.
    @param stats: counters to update; new L{ConnectionStats} if L{None}.
    @param grace: seconds open connections get to finish when the service
        stops.
    @param context: the process's TLS files and inherited sockets.
    """
    reactor = defaultReactor(reactor)
    factory = SmallServiceFactory(
        name,
        _PROTOCOLS[name],
        timeout=settings.timeout,
        maxConnections=settings.maxConnections,
        reactor=reactor,
        stats=stats,
        rate=settings.rate if name == "chargen" else 0,
        answer=answerFor(name, settings.quotes),
    )
    options = settings.socketOptions
    service = EchoService(factory, grace)
    context = context or ListenContext()
    for description in settings.listen:
        endpoint = endpointFor(reactor, description, options, context, factory.stats)
        ListenerService(name, description, endpoint, factory, options).setServiceParent(service)
    return service


def makeSmallUdpService(
    name: str,
    settings: SmallServiceSettings,
    reactor: Any = None,
    stats: DatagramAnswerStats | None = None,
) -> MultiService:
    """
    Build C{udp-NAME}: one listener per endpoint of C{settings.udp}, sharing
    the rate limits (none apply to discard, which answers nothing) and the
    counters.

    @param name: C{"discard"}, C{"daytime"}, C{"time"} or C{"qotd"}.
    @param reactor: the reactor to listen with (an L{IReactorTime} and
        L{IReactorUDP}); the global one if L{None}.
    @raise ValueError: for chargen, which is not offered over UDP (one
        forged datagram makes it flood its victim).
    """
    if name == "chargen":
        raise ValueError("chargen is not offered over UDP")
    reactor = defaultReactor(reactor)
    answer = answerFor(name, settings.quotes)
    stats = stats if stats is not None else DatagramAnswerStats()
    limiter = SourceLimiter(reactor, settings.sourceRate, settings.sourceBurst, settings.globalRate)
    service = MultiService()
    service.setName(f"udp-{name}")
    fixed = [parseUdpEndpoint(d).port for d in settings.udp]
    ownPorts = OwnPorts(service, reactor, fixed=fixed)
    for description in settings.udp:
        protocol = DatagramAnswer(answer, limiter, ownPorts, stats)
        UdpEchoListener(description, protocol, reactor, f"udp-{name}").setServiceParent(service)
    return service
