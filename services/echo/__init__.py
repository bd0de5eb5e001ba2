# -*- test-case-name: tests.unit.echo.test_api -*-
"""
RFC 862 echo over TCP, UDP, UNIX datagram and SEQPACKET sockets, its siblings
(discard, chargen, daytime, time, qotd), and the clients that probe them.

Everything a program of your own imports is here::

    from services.echo import EchoFactory, EchoSettings, makeEchoService

  - the stream echo: L{Echo}, L{EchoFactory}, and L{makeEchoService} to
    build an L{EchoService} of listeners from L{EchoSettings};
  - the datagram echo: L{UdpEcho}, L{UnixDatagramEcho}, and
    L{makeUdpEchoService} from L{UdpEchoSettings};
  - the small services: L{Discard}, L{Chargen}, L{Answer} with
    L{daytimeAnswer}, L{timeAnswer} and L{quoteAnswer}, all over a
    L{SmallServiceFactory}; L{DatagramAnswer} over UDP; and
    L{makeSmallService}, L{makeSmallUdpService} from
    L{SmallServiceSettings};
  - the clients: L{TCPProber}, L{UDPProber} (round-trip times),
    L{TCPPipe}, L{UDPPipe} (bytes through an echo), their L{Summary},
    L{ProbeTimeout}, L{EchoMismatch} and L{MIN_PROBE_SIZE}, and
    L{UnixDatagramClient} to use a UDP one over a UNIX datagram socket.

SEQPACKET's endpoints are the network layer's
(L{services.net.seqpacket.SeqpacketServerEndpoint}): an L{EchoFactory}
listens on them as on any other, and L{makeEchoService} on the
C{unixseq:PATH} descriptions of L{EchoSettings.listen}.

Each name is imported from its module when it is first used, so that
importing one of them (the daemon's echo-only start, the C{netservices}
command's parser) costs only the modules that one needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.echo._client import (
        MIN_PROBE_SIZE,
        EchoMismatch,
        ProbeTimeout,
        Summary,
        TCPPipe,
        TCPProber,
        UDPPipe,
        UDPProber,
    )
    from services.echo._settings import EchoSettings, SmallServiceSettings, UdpEchoSettings
    from services.echo._small import Answer, Chargen, Discard, SmallServiceFactory
    from services.echo._smallanswers import daytimeAnswer, quoteAnswer, timeAnswer
    from services.echo._smallservice import makeSmallService, makeSmallUdpService
    from services.echo._smalludp import DatagramAnswer
    from services.echo._tcp import Echo, EchoFactory, EchoService, makeEchoService
    from services.echo._udp import UdpEcho, makeUdpEchoService
    from services.echo._unixgram import UnixDatagramClient, UnixDatagramEcho

#: Where each public name is defined.
_MODULES = {
    "Echo": "_tcp",
    "EchoFactory": "_tcp",
    "EchoService": "_tcp",
    "makeEchoService": "_tcp",
    "EchoSettings": "_settings",
    "UdpEchoSettings": "_settings",
    "SmallServiceSettings": "_settings",
    "UdpEcho": "_udp",
    "makeUdpEchoService": "_udp",
    "UnixDatagramEcho": "_unixgram",
    "UnixDatagramClient": "_unixgram",
    "Discard": "_small",
    "Chargen": "_small",
    "Answer": "_small",
    "SmallServiceFactory": "_small",
    "daytimeAnswer": "_smallanswers",
    "timeAnswer": "_smallanswers",
    "quoteAnswer": "_smallanswers",
    "DatagramAnswer": "_smalludp",
    "makeSmallService": "_smallservice",
    "makeSmallUdpService": "_smallservice",
    "TCPProber": "_client",
    "UDPProber": "_client",
    "TCPPipe": "_client",
    "UDPPipe": "_client",
    "Summary": "_client",
    "ProbeTimeout": "_client",
    "EchoMismatch": "_client",
    "MIN_PROBE_SIZE": "_client",
}

__all__ = [
    "Answer",
    "Chargen",
    "DatagramAnswer",
    "Discard",
    "Echo",
    "EchoFactory",
    "EchoMismatch",
    "EchoService",
    "EchoSettings",
    "MIN_PROBE_SIZE",
    "ProbeTimeout",
    "SmallServiceFactory",
    "SmallServiceSettings",
    "Summary",
    "TCPPipe",
    "TCPProber",
    "UDPPipe",
    "UDPProber",
    "UdpEcho",
    "UdpEchoSettings",
    "UnixDatagramClient",
    "UnixDatagramEcho",
    "daytimeAnswer",
    "makeEchoService",
    "makeSmallService",
    "makeSmallUdpService",
    "makeUdpEchoService",
    "quoteAnswer",
    "timeAnswer",
]


def __getattr__(name: str) -> Any:
    """
    Import public name C{name} from its module, once.

    @raise AttributeError: for a name this package does not export.
    """
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """
    The public names, with the module's own.
    """
    return sorted({*globals(), *__all__})
