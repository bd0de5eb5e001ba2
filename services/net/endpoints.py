# -*- test-case-name: tests.unit.net.test_layers -*-
"""
Server endpoints from endpoint descriptions (L{endpointFor}): the layers
that L{services.net.descriptions.parseListen} reads, over a listening socket
that is bound here, passed by systemd (L{SystemdEndpoint}) or handed down
by a parent process (L{AdoptedEndpoint}, C{--workers}:
L{ListenContext.inherited}).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import field
from functools import partial
from typing import Any

from twisted.internet import fdesc
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from zope.interface import implementer

from services import dataclass
from services._twisted.transports import adoptUNIXPortKeepingFile
from services.net.descriptions import ListenSpec, parseListen, systemdArguments
from services.net.sockets import SocketOptions, withBacklog, withReusePort
from services.net.tls import TLSError, TLSFiles, TLSServerEndpoint, certificateOptions

__all__ = [
    "AdoptedEndpoint",
    "ListenContext",
    "SystemdEndpoint",
    "endpointFor",
    "socketEndpoint",
    "socketFamily",
    "tlsFiles",
]


@dataclass(frozen=True)
class ListenContext:
    """
    What every listener of one process shares, beyond its service's
    L{SocketOptions}.

    @ivar tls: the C{[tls]} certificate, key and minimum version for
        C{ssl:} descriptions that name no files of their own.
    @ivar systemd: the sockets systemd passed (C{LISTEN_FDS}), as
        C{(name, file descriptor)} in order.
    @ivar inherited: sockets bound by a parent process, as
        C{(description, file descriptor)}: a listener whose description is
        here adopts that socket instead of binding its own.
    """

    tls: TLSFiles = TLSFiles("")
    systemd: tuple[tuple[str, int], ...] = ()
    inherited: tuple[tuple[str, int], ...] = field(default=())

    def inheritedFor(self, description: str) -> int | None:
        """
        The file descriptor handed down for C{description}, if any.
        """
        for known, fileno in self.inherited:
            if known == description:
                return fileno
        return None


def socketFamily(fileno: int) -> int:
    """
    The address family of the listening stream socket C{fileno}.

    @raise ValueError: if C{fileno} is not a listening stream socket.
    """
    try:
        with socket.socket(fileno=os.dup(fileno)) as s:
            listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            family, kind = s.family, s.type
    except OSError:
        raise ValueError(f"file descriptor {fileno} is not a socket") from None
    if kind != socket.SOCK_STREAM or not listening:
        raise ValueError(f"file descriptor {fileno} is not a listening stream socket")
    return int(family)


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """
    Listens on a socket that is already bound and listening (from systemd,
    or from a parent process), whatever its address family.  The original
    file descriptor is closed once adopted.
    """

    def __init__(self, reactor: Any, fileno: int) -> None:
        self._reactor = reactor
        self.fileno = fileno

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Adopt the socket and accept connections on it.
        """
        try:
            family = socketFamily(self.fileno)
            fdesc.setNonBlocking(self.fileno)
            if family == socket.AF_UNIX:
                # The socket's file belongs to whoever bound it: it stays
                # when the port stops.
                port = adoptUNIXPortKeepingFile(self._reactor, self.fileno, protocolFactory)
            else:
                port = self._reactor.adoptStreamPort(self.fileno, family, protocolFactory)
            os.close(self.fileno)
        except Exception:
            return fail()
        return succeed(port)


@implementer(IStreamServerEndpoint)
class SystemdEndpoint:
    """
    Listens on a socket passed by systemd socket activation, chosen by
    C{index=} or C{name=} (C{FileDescriptorName=}) when listening starts.
    """

    def __init__(self, reactor: Any, description: str, sockets: Sequence[tuple[str, int]]) -> None:
        self._reactor = reactor
        self._domain, self._index, self._name = systemdArguments(description)
        self._sockets = tuple(sockets)

    def fileno(self) -> int:
        """
        The file descriptor this description names.

        @raise ValueError: when systemd passed no such socket.
        """
        passed = f"systemd passed {len(self._sockets)} socket(s)"
        if self._name is not None:
            for name, fileno in self._sockets:
                if name == self._name:
                    return fileno
            names = ", ".join(sorted({n for n, _ in self._sockets})) or "none"
            raise ValueError(f"no socket named {self._name!r} from systemd ({passed}, named {names})")
        assert self._index is not None
        if self._index >= len(self._sockets):
            raise ValueError(
                f"no socket at index {self._index} from systemd ({passed}; "
                "start netservices through its .socket unit)"
            )
        return self._sockets[self._index][1]

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Find the socket, check its family against C{domain=}, adopt it.
        """
        try:
            fileno = self.fileno()
            if self._domain is not None:
                expected = getattr(socket, "AF_" + self._domain.upper())
                if socketFamily(fileno) != expected:
                    raise ValueError(f"the socket from systemd is not domain={self._domain}")
        except Exception:
            return fail()
        return AdoptedEndpoint(self._reactor, fileno).listen(protocolFactory)


def socketEndpoint(
    reactor: Any, spec: ListenSpec, options: SocketOptions, context: ListenContext
) -> IStreamServerEndpoint:
    """
    The endpoint of the listening socket alone of C{spec}: handed down by a
    parent, passed by systemd, or bound here with C{options} applied (all
    but the buffer sizes, which need a bound socket).
    """
    fileno = context.inheritedFor(spec.description)
    if spec.kind == "unixseq":
        # SOCK_SEQPACKET: Twisted has no such endpoint; ours also adopts.
        from services.net.seqpacket import SeqpacketServerEndpoint  # only for unixseq:

        return SeqpacketServerEndpoint.fromDescription(
            reactor, spec.socket, options.backlog, fileno
        )
    if fileno is not None:
        return AdoptedEndpoint(reactor, fileno)
    if spec.kind == "systemd":
        return SystemdEndpoint(reactor, spec.socket, context.systemd)
    endpoint = serverFromString(reactor, withBacklog(spec.socket, options.backlog))
    if options.reuseport:
        endpoint = withReusePort(reactor, endpoint)
    return endpoint


def tlsFiles(spec: ListenSpec, context: ListenContext) -> TLSFiles:
    """
    The certificate and key of an C{ssl:} listener: the description's own
    C{privateKey=}/C{certKey=} (as in Twisted, C{certKey} defaults to
    C{privateKey}), else those of C{[tls]}.

    @raise TLSError: when neither names a certificate.
    """
    files = dict(spec.tls or ())
    defaults = context.tls
    if "privateKey" in files or "certKey" in files:
        key = files.get("privateKey", "")
        certificate = files.get("certKey", key)
        chain = files.get("extraCertChain", "")
    elif defaults.certificate:
        certificate, key, chain = defaults.certificate, defaults.key, defaults.chain
    else:
        raise TLSError(
            "no certificate: set [tls] certificate and key in tap.conf, "
            "or privateKey= and certKey= in the endpoint"
        )
    return TLSFiles(
        certificate=certificate,
        key=key if key != certificate else "",
        chain=chain,
        minimumVersion=defaults.minimumVersion,
        dhParameters=files.get("dhParameters", defaults.dhParameters),
    )


def endpointFor(
    reactor: Any,
    description: str,
    options: SocketOptions,
    context: ListenContext = ListenContext(),
    stats: Any = None,
    trustedProxies: Sequence[str] | None = None,
    alpn: Sequence[bytes] = (),
) -> IStreamServerEndpoint:
    """
    Build the server endpoint for C{description} with C{options} applied
    (all but the buffer sizes, which need a bound socket).

    @param context: the TLS files and inherited sockets of this process.
    @param stats: where a C{haproxy:} listener counts malformed and missing
        PROXY headers (C{proxyMalformed}, C{proxyTimedOut}), and connections
        from untrusted sources (C{proxyUntrusted}).
    @param trustedProxies: the addresses and networks a C{haproxy:}
        listener accepts connections from; L{None} for loopback only.
    @param alpn: for C{ssl:}, the protocols offered by ALPN (none: no ALPN).
    """
    spec = parseListen(description)
    endpoint = socketEndpoint(reactor, spec, options, context)
    if spec.proxy:
        from services.net.proxyheader import LOOPBACK, ProxyHeaderEndpoint  # only for haproxy:

        trusted = LOOPBACK if trustedProxies is None else trustedProxies
        endpoint = ProxyHeaderEndpoint(endpoint, reactor, stats, trusted=trusted)
    if spec.tls is not None:
        # Outside the PROXY layer: the header comes before the TLS handshake.
        files = partial(tlsFiles, spec, context)
        endpoint = TLSServerEndpoint(
            endpoint, lambda: certificateOptions(files(), alpn), reactor=reactor
        )
    return endpoint
