# -*- test-case-name: tests.unit.net.test_datagram -*-
"""
Datagram building blocks shared by discovery and the datagram echoes.

  - L{UdpEndpoint}: C{udp:PORT:interface=ADDR} descriptions, in the style of
    Twisted's stream endpoint strings (Twisted has none for datagrams), and
    C{unixgram:PATH[:mode=OCTAL]} ones for UNIX datagram sockets
    (L{isUnixDatagram}, L{parseUnixDatagram}).
  - L{listenDatagram}: a UDP port whose socket we bind ourselves, so that it
    can carry C{SO_REUSEADDR} (Twisted's C{listenUDP} never sets it), handed
    to the reactor with C{adoptDatagramPort}.
  - L{unsafeSource} and L{SourceLimiter}: the rules that keep a UDP service
    from answering into a loop (CERT CA-1996-01, CVE-2024-2169) or from being
    used as a flood amplifier; which ports are our own is
    L{services.net.ownports}.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.internet.protocol import DatagramProtocol

__all__ = [
    "MAX_UDP_PAYLOAD",
    "SourceLimiter",
    "UdpEndpoint",
    "bindDatagramSocket",
    "isUnixDatagram",
    "listenDatagram",
    "parseUdpEndpoint",
    "parseUnixDatagram",
    "unsafeSource",
]

#: The largest UDP payload there is (IPv6 without jumbograms: 65527 bytes;
#: IPv4: 65507).  A receive buffer one byte larger never truncates.
MAX_UDP_PAYLOAD = 65535

_COLON = re.compile(r"(?<!\\):")


@dataclass(frozen=True)
class UdpEndpoint:
    """
    Where a UDP service listens.

    @ivar port: the UDP port, 0 for any free port.
    @ivar interface: the local address to bind; C{""} for every IPv4
        address (C{"::"} for every IPv6 address with C{udp6}).
    @ivar family: C{socket.AF_INET} or C{socket.AF_INET6}.
    """

    port: int
    interface: str = ""
    family: int = socket.AF_INET

    def __str__(self) -> str:
        kind = "udp6" if self.family == socket.AF_INET6 else "udp"
        if not self.interface:
            return f"{kind}:{self.port}"
        return f"{kind}:{self.port}:interface={self.interface.replace(':', chr(92) + ':')}"


def parseUdpEndpoint(text: str) -> UdpEndpoint:
    """
    Parse C{udp:PORT}, C{udp:PORT:interface=ADDR}, C{udp6:PORT:interface=ADDR}
    (colons in an IPv6 address escaped as C{\\:}, as in Twisted's endpoint
    strings), or a bare C{PORT}, which means C{udp:PORT:interface=127.0.0.1}.

    @raise ValueError: with a message that says what is allowed.
    """
    description = text.strip()
    if description.isdigit():
        return UdpEndpoint(_port(description), "127.0.0.1")
    kind, *rest = _COLON.split(description)
    family = {"udp": socket.AF_INET, "udp6": socket.AF_INET6}.get(kind.lower())
    if family is None or not rest:
        raise ValueError("expected a port or udp:PORT[:interface=ADDRESS] (udp6: for IPv6)")
    port, interface = _port(rest[0]), ""
    for option in rest[1:]:
        key, equals, value = option.partition("=")
        if key != "interface" or not equals:
            raise ValueError(f"unknown option {option!r}; the only option is interface=ADDRESS")
        interface = value.replace("\\:", ":")
    if interface:
        try:
            address = ipaddress.ip_address(interface)
        except ValueError:
            raise ValueError(f"interface {interface!r} is not an IP address") from None
        if (address.version == 6) != (family == socket.AF_INET6):
            raise ValueError(
                f"interface {interface} does not match {kind}: (udp: IPv4, udp6: IPv6)"
            )
    return UdpEndpoint(port, interface, family)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"port {text!r} is not a whole number from 0 to 65535")
    return int(text)


def isUnixDatagram(description: str) -> bool:
    """
    Whether C{description} is a C{unixgram:} one.
    """
    return description.strip().lower().startswith("unixgram:")


def parseUnixDatagram(description: str) -> tuple[str, int]:
    """
    The path and file mode of C{unixgram:PATH[:mode=OCTAL]} (mode 666 by
    default, as Twisted's C{listenUNIXDatagram}).

    @raise ValueError: saying what is allowed.
    """
    _, _, rest = description.strip().partition(":")
    path, *options = rest.split(":")
    if not path:
        raise ValueError("unixgram: needs a path, e.g. unixgram:/run/netservices/echo.dgram")
    mode = 0o666
    for option in options:
        key, equals, value = option.partition("=")
        if key != "mode" or not equals:
            raise ValueError(f"unixgram: unknown option {option!r}; the only option is mode=OCTAL")
        try:
            mode = int(value, 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o7777:
            raise ValueError(f"unixgram: mode= {value!r} is not an octal file mode, e.g. 660")
    return path, mode


def bindDatagramSocket(
    interface: str,
    port: int,
    family: int = socket.AF_INET,
    reuse: bool = False,
    v6only: bool = False,
) -> socket.socket:
    """
    A non-blocking UDP socket bound to C{(interface, port)}.

    @param reuse: set C{SO_REUSEADDR} before binding, so that several
        sockets (in one process or several) bind the same port and each
        receives every broadcast sent to it.  Linux needs nothing more.  BSD
        and macOS also need C{SO_REUSEPORT} for a second bind of a UDP port,
        which is set there; it is not set on Linux, where it would tie the
        port to one user and spread unicast datagrams over the sockets.
    @param v6only: for C{AF_INET6}, receive IPv6 datagrams only
        (C{IPV6_V6ONLY}), so that the port's IPv4 datagrams go to the IPv4
        sockets alone.
    @raise OSError: when the socket cannot be bound.
    """
    skt = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse:
            skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if not sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT"):
                skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if v6only:
            skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        skt.setblocking(False)
        skt.bind((interface, port))
    except BaseException:
        skt.close()
        raise
    return skt


def listenDatagram(
    reactor: Any,
    protocol: DatagramProtocol,
    interface: str,
    port: int,
    family: int = socket.AF_INET,
    reuse: bool = False,
    maxPacketSize: int = MAX_UDP_PAYLOAD + 1,
) -> IListeningPort:
    """
    Listen for datagrams on C{(interface, port)} with C{protocol}, through
    L{bindDatagramSocket} and the reactor's C{adoptDatagramPort}.

    C{maxPacketSize} is the receive buffer: the default holds every possible
    UDP datagram, so none is ever cut short without notice (Twisted's
    default of 8192 bytes truncates larger datagrams silently).

    @raise OSError: when the socket cannot be bound.
    """
    skt = bindDatagramSocket(interface, port, family, reuse)
    try:
        listening: IListeningPort = reactor.adoptDatagramPort(
            skt.fileno(), family, protocol, maxPacketSize
        )
    finally:
        skt.close()  # the reactor holds its own duplicate of the descriptor
    return listening


def unsafeSource(port: int, ownPorts: Collection[int]) -> str | None:
    """
    Why a datagram from source port C{port} must get no answer, or L{None}.

    Ports below 1024 belong to system services (echo, chargen, DNS, NTP...)
    that may answer an answer, and so may our own services and other
    instances of them: answering either can start a loop.
    """
    if port < 1024:
        return "privileged source port"
    if port in ownPorts:
        return "source port is one of our service ports"
    return None


class SourceLimiter:
    """
    Token buckets: one per source address and one for everything.

    A source may be answered C{sourceRate} times a second on average, in
    bursts of up to C{sourceBurst}; all sources together C{globalRate}
    times a second (bursts of one second's worth).  At most C{maxSources}
    addresses are tracked; buckets that have refilled are forgotten first,
    and while the table is still full new sources are refused.

    Each bucket is kept as the time at which it would be full again (the
    "theoretical arrival time" of the generic cell rate algorithm, which
    decides exactly as a token bucket does): a bucket of rate C{r} and
    burst C{b} full again at C{t} holds C{b - (t - now) * r} tokens, so one
    is there when C{t - now <= (b - 1) / r}, and spending it moves C{t} on by
    C{1 / r}.  That is one comparison and one addition per bucket for each
    datagram, instead of a refill computed from the elapsed time.

    A read loop that decides for many datagrams at one reading of the clock
    may keep the buckets of the source it is answering, and the shared one,
    in locals: L{bucket} and L{sharedBucket} give their full-again times,
    L{tokens} how many datagrams each may answer at that time, spending
    C{k} tokens moves a bucket on by C{k * sourceInterval}
    (C{globalInterval}), and L{keep} and L{keepShared} store them back.
    That is what L{allow} decides for each of those datagrams at that
    C{now}, up to the rounding of the sums (which C{_EPSILON} absorbs).

    @ivar sourceInterval: seconds one token of a source's bucket is worth.
    @ivar sourceTolerance: how far ahead of now a source's bucket may be
        full again and still hold a token.
    @ivar globalInterval: the same for the shared bucket.
    @ivar globalTolerance: the same for the shared bucket.
    """

    # Slack on the comparisons, so that float rounding of the sums never
    # refuses a token that the exact arithmetic would give (1 ns).
    _EPSILON = 1e-9

    def __init__(
        self,
        reactor: IReactorTime,
        sourceRate: float,
        sourceBurst: int,
        globalRate: float,
        maxSources: int = 4096,
    ) -> None:
        self.clock = reactor
        self.sourceRate = sourceRate
        self.sourceBurst = float(sourceBurst)
        self.globalRate = globalRate
        self.globalBurst = max(1.0, globalRate)
        self.maxSources = maxSources
        self.sourceInterval = 1.0 / sourceRate
        self.sourceTolerance = (self.sourceBurst - 1) / sourceRate + self._EPSILON
        self.globalInterval = 1.0 / globalRate
        self.globalTolerance = (self.globalBurst - 1) / globalRate + self._EPSILON
        # When each source's bucket, and the shared one, is full again.
        self._fullAt: dict[str, float] = {}
        self._globalFullAt = reactor.seconds()
        self._swept: float | None = None

    def allow(self, source: str, now: float | None = None) -> bool:
        """
        Whether C{source} may be answered now; if so, spend its tokens.

        @param now: the time by C{clock}, if the caller has read it already.
        """
        if now is None:
            now = self.clock.seconds()
        fullAt = self._fullAt
        own = fullAt.get(source)
        if own is None:
            if len(fullAt) >= self.maxSources and not self._forgetFull(now):
                return False
            own = fullAt[source] = now
        elif own < now:
            own = now
        elif own - now > self.sourceTolerance:
            return False
        shared = self._globalFullAt
        if shared < now:
            shared = now
        elif shared - now > self.globalTolerance:
            return False
        fullAt[source] = own + self.sourceInterval
        self._globalFullAt = shared + self.globalInterval
        return True

    def bucket(self, source: str, now: float) -> float | None:
        """
        When the bucket of C{source} is full again, or C{now} if it is full
        already; a source not seen yet gets a full bucket, as with
        L{allow}, or L{None} while the table is full (it is refused).
        """
        fullAt = self._fullAt
        own = fullAt.get(source)
        if own is None:
            if len(fullAt) >= self.maxSources and not self._forgetFull(now):
                return None
            own = fullAt[source] = now
        return own if own > now else now

    @staticmethod
    def tokens(fullAt: float, now: float, interval: float, tolerance: float) -> int:
        """
        How many tokens a bucket full again at C{fullAt} (from L{bucket} or
        L{sharedBucket}) holds at C{now}, for its C{interval} and
        C{tolerance}: how many datagrams in a row L{allow} would answer at
        C{now} as far as this bucket goes.
        """
        ahead = fullAt - now
        if ahead > tolerance:
            return 0
        return int((tolerance - ahead) / interval) + 1

    def keep(self, source: str, fullAt: float) -> None:
        """
        Store the full-again time of the bucket of C{source} (from
        L{bucket}, moved on by the tokens spent).
        """
        self._fullAt[source] = fullAt

    def sharedBucket(self, now: float) -> float:
        """
        When the shared bucket is full again, or C{now} if it is full.
        """
        shared = self._globalFullAt
        return shared if shared > now else now

    def keepShared(self, fullAt: float) -> None:
        """
        Store the full-again time of the shared bucket (from
        L{sharedBucket}, moved on by the tokens spent).
        """
        self._globalFullAt = fullAt

    def _forgetFull(self, now: float) -> bool:
        # A sweep costs one pass over the table: at most one a second.
        if self._swept is not None and now - self._swept < 1.0:
            return False
        self._swept = now
        for source, fullAt in list(self._fullAt.items()):
            if fullAt <= now:
                del self._fullAt[source]
        return len(self._fullAt) < self.maxSources

    def __len__(self) -> int:
        return len(self._fullAt)
