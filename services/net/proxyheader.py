# -*- test-case-name: tests.unit.net.test_proxyprotocol -*-
"""
The PROXY protocol (versions 1 and 2) in front of any stream protocol.

A load balancer such as HAProxy (C{send-proxy}, C{send-proxy-v2}) opens each
connection with a header that names the real client.  L{ProxyHeaderFactory}
wraps a protocol factory so that the wrapped protocol only exists once that
header has been read: its factory's C{buildProtocol} gets the real client's
address, and its transport's C{getPeer()} and C{getHost()} return the
addresses from the header from C{connectionMade} on.

It differs from L{twisted.protocols.haproxy.HAProxyWrappingFactory}, whose
parsers it reuses, in five ways:

  - the wrapped protocol is built and connected after the header, not
    before (there, C{connectionMade} sees the balancer's address);
  - a header split across several reads is reassembled (Twisted issue 8287);
  - a malformed header closes the connection quietly (a debug event and a
    count), with no traceback;
  - a connection that sends no complete header within C{headerTimeout}
    seconds (3 by default) is closed and counted;
  - only trusted sources may send a header (C{trusted}: addresses and
    networks, loopback by default; a UNIX socket peer is local and
    trusted): a header names any client address it likes, so a connection
    from anywhere else is closed before anything is read, and counted
    (C{proxyUntrusted}).  Twisted's wrapper believes every header.

Use it in your own application::

    from services.net.proxyheader import ProxyHeaderEndpoint
    endpoint = ProxyHeaderEndpoint(
        serverFromString(reactor, "tcp:8007"), reactor, trusted=["10.0.0.5", "127.0.0.1"]
    )
    endpoint.listen(EchoFactory())
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import alsoProvides, directlyProvides, implementer, providedBy

from services import logs
from services._twisted.haproxy import V2_SIGNATURE, InvalidProxyHeader, ProxyInfo, parseV1, parseV2
from services.net.addresses import Network, describeAddress, isTrusted, trustedNetworks
from services.net.defaults import defaultReactor
from services.stats import ConnectionStats

__all__ = [
    "HEADER_TIMEOUT",
    "LOOPBACK",
    "MalformedHeader",
    "ProxyHeaderEndpoint",
    "ProxyHeaderFactory",
    "ProxyHeaderProtocol",
    "ProxyInfo",
    "parseHeader",
]

#: Seconds a connection may take to send its whole PROXY header.
HEADER_TIMEOUT = 3.0

_V1_PREFIX = b"PROXY "
_V1_MAX = 107  # the longest version 1 header, CRLF included
_V2_FIXED = 16  # signature, version/command, family/protocol, length

#: The sources trusted to send PROXY headers unless told otherwise.
LOOPBACK = ("127.0.0.0/8", "::1")

class MalformedHeader(ValueError):
    """
    The bytes at the start of a connection are not a valid PROXY header; the
    message says why.
    """


class ProxyStats(TypingProtocol):
    """
    Where L{ProxyHeaderFactory} counts the connections it closes.
    """

    proxyMalformed: int
    proxyTimedOut: int
    proxyUntrusted: int


def _checkAddress(address: IAddress | None, family: type) -> None:
    if address is None:
        return
    host, port = address.host, address.port  # type: ignore[attr-defined]
    expected = 4 if family is IPv4Address else 6
    if ipaddress.ip_address(host).version != expected or not 0 <= port <= 65535:
        raise ValueError(host)


def _parseV1(line: bytes) -> ProxyInfo:
    if line.split(b" ", 2)[:2] == [b"PROXY", b"UNKNOWN"]:
        # Valid with or without addresses after it; V1Parser wants them.
        return ProxyInfo(line, None, None)
    info = parseV1(line)
    if info.source is not None:
        # V1Parser takes any text for addresses and ports; check them.
        if len(line.split(b" ")) != 6:
            raise ValueError("wrong number of fields")
        _checkAddress(info.source, type(info.source))
        _checkAddress(info.destination, type(info.source))
    return info


def parseHeader(data: bytes) -> tuple[ProxyInfo, bytes] | None:
    """
    Parse the PROXY header (version 1 or 2) at the start of C{data}.

    @return: L{None} while C{data} is a valid but incomplete beginning of a
        header; else the parsed header and the bytes that follow it.
    @raise MalformedHeader: when C{data} cannot begin a valid header.
    """
    if not data:
        return None
    try:
        if V2_SIGNATURE.startswith(data[:12]):
            if len(data) < _V2_FIXED:
                return None
            if data[12] >> 4 != 2:
                raise MalformedHeader("unsupported PROXY version 2 variant")
            size = _V2_FIXED + int.from_bytes(data[14:16], "big")
            if len(data) < size:
                return None
            return parseV2(data[:size]), data[size:]
        if _V1_PREFIX.startswith(data[:6]):
            end = data.find(b"\r\n", 0, _V1_MAX)
            if end < 0:
                if len(data) >= _V1_MAX:
                    raise MalformedHeader("no CRLF within 107 bytes")
                return None
            return _parseV1(data[:end]), data[end + 2 :]
    except MalformedHeader:
        raise
    except (InvalidProxyHeader, ValueError, KeyError, UnicodeError) as e:
        raise MalformedHeader(f"invalid PROXY header ({e.__class__.__name__})") from None
    raise MalformedHeader("not a PROXY protocol header")


class ProxyHeaderProtocol(ProtocolWrapper):
    """
    Reads the PROXY header, then builds the wrapped protocol with the real
    client's address and relays everything to it.

    @ivar info: the parsed header, once read.
    """

    _log = Logger(observer=logs.observer)
    factory: ProxyHeaderFactory
    wrappedProtocol: IProtocol | None  # type: ignore[assignment]
    info: ProxyInfo | None = None
    _timer: Any = None

    def __init__(self, factory: ProxyHeaderFactory) -> None:
        self.factory = factory
        self.wrappedProtocol = None
        self._headerBytes = b""

    def makeConnection(self, transport: Any) -> None:
        """
        Take the transport and wait for the header; the wrapped protocol is
        not connected yet.
        """
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)

    def connectionMade(self) -> None:
        """
        Close a connection from an untrusted source at once; otherwise
        start the header timer.
        """
        factory = self.factory
        if not isTrusted(self.transport.getPeer(), factory.trusted):  # type: ignore[union-attr]
            factory.stats.proxyUntrusted += 1
            self._close("not a trusted PROXY protocol source (trusted_proxies)")
            return
        self._timer = factory.reactor.callLater(factory.headerTimeout, self._headerTimedOut)

    def dataReceived(self, data: bytes) -> None:
        """
        Collect header bytes until the header is complete.  After that the
        wrapped protocol's own C{dataReceived} replaces this method.
        """
        if self.wrappedProtocol is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        if self.disconnecting:
            return
        self._headerBytes += data
        try:
            parsed = parseHeader(self._headerBytes)
        except MalformedHeader as e:
            self.factory.stats.proxyMalformed += 1
            self._close("{reason}", reason=e)
            return
        if parsed is not None:
            self._headerBytes = b""
            self._headerReceived(*parsed)

    def _headerReceived(self, info: ProxyInfo, rest: bytes) -> None:
        self._timer.cancel()
        self.info = info
        protocol = self.factory.wrappedFactory.buildProtocol(self.getPeer())
        if protocol is None:  # refused, e.g. by a connection limit
            self.loseConnection()
            return
        self.wrappedProtocol = protocol
        if IHalfCloseableProtocol.providedBy(protocol):
            alsoProvides(self, IHalfCloseableProtocol)
        # From now on reads and writes skip this wrapper: no extra call per
        # chunk on the data path.
        self.dataReceived = protocol.dataReceived  # type: ignore[method-assign]
        self.write = self.transport.write  # type: ignore[method-assign, union-attr]
        self.writeSequence = self.transport.writeSequence  # type: ignore[method-assign, union-attr]
        protocol.makeConnection(self)
        if rest:
            protocol.dataReceived(rest)

    def _headerTimedOut(self) -> None:
        self.factory.stats.proxyTimedOut += 1
        self._close("no PROXY header within {timeout} seconds", timeout=self.factory.headerTimeout)

    def _close(self, why: str, **fields: Any) -> None:
        self._log.debug(
            "PROXY protocol: closing {peer}: " + why,
            peer=describeAddress(self.transport.getPeer()),  # type: ignore[union-attr]
            **fields,
        )
        self.loseConnection()

    def getPeer(self) -> IAddress:
        """
        The real client's address from the header, or the connection's own
        peer when the header names none (C{LOCAL}, C{UNKNOWN}).
        """
        info = self.info
        if info is not None and info.source is not None:
            return info.source
        return self.transport.getPeer()  # type: ignore[union-attr, no-any-return]

    def getHost(self) -> IAddress:
        """
        The address the client connected to, from the header, or the
        connection's own host address.
        """
        info = self.info
        if info is not None and info.destination is not None:
            return info.destination
        return self.transport.getHost()  # type: ignore[union-attr, no-any-return]

    def readConnectionLost(self) -> None:
        """
        Relay a half-close to a wrapped protocol that handles it.
        """
        self.wrappedProtocol.readConnectionLost()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        """
        Relay a half-close to a wrapped protocol that handles it.
        """
        self.wrappedProtocol.writeConnectionLost()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        """
        Stop the header timer and tell the wrapped protocol, if it was ever
        connected.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.factory.unregisterProtocol(self)
        protocol, self.wrappedProtocol = self.wrappedProtocol, None
        for name in ("dataReceived", "write", "writeSequence"):
            self.__dict__.pop(name, None)
        if protocol is not None:
            protocol.connectionLost(reason)


class ProxyHeaderFactory(WrappingFactory):
    """
    Wraps a protocol factory so that every connection starts with a PROXY
    header.

    @ivar reactor: the time source of the header timeout.
    @ivar stats: where malformed headers (C{proxyMalformed}) and header
        timeouts (C{proxyTimedOut}) are counted.
    @ivar headerTimeout: seconds allowed for the whole header.
    @ivar trusted: the networks whose connections may send a header; the
        others are closed and counted (C{proxyUntrusted}).
    """

    protocol = ProxyHeaderProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        reactor: IReactorTime | None = None,
        stats: ProxyStats | None = None,
        headerTimeout: float = HEADER_TIMEOUT,
        trusted: Iterable[str | Network] = LOOPBACK,
    ) -> None:
        WrappingFactory.__init__(self, wrappedFactory)  # type: ignore[arg-type]
        self.trusted = trustedNetworks(trusted)
        self.reactor: IReactorTime = defaultReactor(reactor)
        self.stats: ProxyStats = ConnectionStats() if stats is None else stats
        self.headerTimeout = headerTimeout

    def logPrefix(self) -> str:
        """
        The wrapped factory's prefix, marked as behind the PROXY protocol.
        """
        wrapped = self.wrappedFactory
        prefix = getattr(wrapped, "logPrefix", lambda: wrapped.__class__.__name__)()
        return f"{prefix} (PROXY)"

    def buildProtocol(self, addr: IAddress | None) -> ProxyHeaderProtocol:  # type: ignore[override]
        """
        A protocol that waits for the header; the wrapped factory builds its
        protocol once the real client's address is known.
        """
        return self.protocol(self)


@implementer(IStreamServerEndpoint)
class ProxyHeaderEndpoint:
    """
    A server endpoint whose connections start with a PROXY header: listens
    on C{wrapped} with every factory wrapped in a L{ProxyHeaderFactory}
    that trusts C{trusted} (see there).
    """

    def __init__(
        self,
        wrapped: IStreamServerEndpoint,
        reactor: IReactorTime | None = None,
        stats: ProxyStats | None = None,
        headerTimeout: float = HEADER_TIMEOUT,
        trusted: Iterable[str | Network] = LOOPBACK,
    ) -> None:
        self.wrapped = wrapped
        self.trusted = trustedNetworks(trusted)
        self._reactor = reactor
        self._stats = stats
        self._headerTimeout = headerTimeout

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint.
        """
        factory = ProxyHeaderFactory(
            protocolFactory, self._reactor, self._stats, self._headerTimeout, self.trusted
        )
        return self.wrapped.listen(factory)
