# -*- test-case-name: tests.test_listen -*-
"""
Stream listeners from endpoint strings, with the socket options a server
author reaches for and that Twisted's endpoint strings do not offer.

  - C{backlog}: added to C{tcp:}, C{tcp6:}, C{unix:} and C{ssl:} descriptions
    that do not set C{backlog=} themselves.
  - C{SO_SNDBUF} / C{SO_RCVBUF}: set on the listening socket through its
    handle right after it is bound; Linux copies them to every accepted
    connection.
  - C{SO_REUSEPORT}: must be set before C{bind()}, so a TCP endpoint is
    listened on with L{services._twisted.endpoints.listenTCPReusingPort}.

A description is read as layers over one listening socket (L{parseListen}):

  - C{haproxy:DESCRIPTION}: connections start with a PROXY header
    (L{services.net.proxyheader}, which fixes Twisted's own wrapper);
  - C{ssl:PORT:...}: TLS over C{tcp:PORT:...}, with the certificate and key of
    C{[tls]} (or the description's C{privateKey=}/C{certKey=}) and a minimum
    protocol version (L{services.net.tls});
  - C{systemd:index=N}, C{systemd:name=NAME}: a socket passed by systemd socket
    activation, resolved when listening starts, of any address family;
  - C{unixseq:PATH[:mode=...]}: a UNIX C{SOCK_SEQPACKET} socket
    (L{services.net.seqpacket}), records kept whole;
  - any socket may instead be one a parent process bound and handed down
    (C{--workers}): L{ListenContext.inherited}.

When the process runs out of file descriptors, Twisted's accept loop
accepts and closes each new connection at once (it keeps a reserve
descriptor for that, so it never spins), and logs three lines at info level
for each: under a connection flood, a log line per attempt.
L{AcceptErrorLog} passes those on at debug level and warns once a minute
with a count instead.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Iterable, Sequence

from twisted.application.service import Service
from twisted.internet import fdesc, tcp, unix
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    quoteStringArgument,
    serverFromString,
)
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTCP,
    IStreamServerEndpoint,
)
from twisted.logger import ILogObserver, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs
from services._twisted.endpoints import listenTCPReusingPort
from services.net.tls import TLSError, TLSFiles, TLSServerEndpoint, certificateOptions

__all__ = [
    "AcceptErrorLog",
    "AdoptedEndpoint",
    "ListenContext",
    "ListenError",
    "ListenSpec",
    "ListenerService",
    "SocketOptions",
    "SystemdEndpoint",
    "checkEndpoint",
    "closeAtOnce",
    "describeAddress",
    "endpointFor",
    "isListening",
    "listeningPorts",
    "ownSocketLocks",
    "parseListen",
    "socketEndpoint",
]

_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})


def describeAddress(address: Any) -> str:
    """
    A short, familiar text for a socket address: C{127.0.0.1:8007},
    C{[::1]:8007}, C{unix:/run/x.sock}.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return f"unix:{name or '(unnamed)'}"


class ListenError(CannotListenError):
    """
    A listener could not start: names the service and the endpoint string
    as the user wrote it.
    """

    def __init__(self, service: str, description: str, reason: BaseException) -> None:
        self.service = service
        self.description = description
        self.reason = reason
        CannotListenError.__init__(self, None, description, reason)

    def __str__(self) -> str:
        detail = getattr(self.reason, "socketError", None) or self.reason
        if isinstance(detail, OSError) and detail.strerror:
            detail = detail.strerror.lower()
        return f"{self.service}: cannot listen on {self.description}: {detail}"


@dataclass(frozen=True)
class SocketOptions:
    """
    Options applied to every listener of one service.

    @ivar backlog: the listen queue length when the description sets none.
    @ivar sndbuf: C{SO_SNDBUF} in bytes, 0 for the kernel default.
    @ivar rcvbuf: C{SO_RCVBUF} in bytes, 0 for the kernel default.
    @ivar reuseport: set C{SO_REUSEPORT} on TCP listeners.
    """

    backlog: int = 50
    sndbuf: int = 0
    rcvbuf: int = 0
    reuseport: bool = False


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """
    A TCP server endpoint that binds with C{SO_REUSEPORT}, so that several
    processes (or several ports in one process) accept on the same address.
    """

    def __init__(
        self, reactor: IReactorTCP, port: int, backlog: int, interface: str
    ) -> None:
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._interface = interface

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen with C{SO_REUSEADDR} and C{SO_REUSEPORT} set before C{bind()}.
        """
        try:
            port = listenTCPReusingPort(
                self._reactor, self._port, protocolFactory, self._backlog, self._interface
            )
        except Exception:
            return fail()
        return succeed(port)


def withBacklog(description: str, backlog: int) -> str:
    """
    Add C{backlog=N} to an endpoint description of a type that takes one,
    unless it already sets it.
    """
    kind = description.split(":", 1)[0].lower()
    if kind in _BACKLOG_TYPES and "backlog=" not in description:
        return f"{description}:backlog={backlog}"
    return description


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


@dataclass(frozen=True)
class ListenSpec:
    """
    One endpoint description, read as layers over one listening socket.

    @ivar description: the description as written.
    @ivar socket: the description of the listening socket alone
        (C{tcp:}, C{tcp6:}, C{unix:}, C{systemd:}...).
    @ivar proxy: whether connections start with a PROXY header.
    @ivar tls: for C{ssl:}, the file arguments of the description
        (C{privateKey}, C{certKey}, C{extraCertChain}, C{dhParameters}) as
        sorted pairs; L{None} without TLS.
    """

    description: str
    socket: str
    proxy: bool = False
    tls: tuple[tuple[str, str], ...] | None = None

    @property
    def kind(self) -> str:
        """
        The type of the listening socket's description: C{tcp}, C{unix},
        C{systemd}...
        """
        return self.socket.partition(":")[0].lower()


_SSL_FILES = frozenset({"privateKey", "certKey", "extraCertChain", "dhParameters"})
_SSL_SOCKET = ("interface", "backlog")


def splitArguments(text: str) -> tuple[list[str], dict[str, str]]:
    """
    Split the arguments of an endpoint description like Twisted does:
    C{:} separates them, C{key=value} are keyword arguments, a backslash
    escapes the next character.
    """
    args: list[str] = []
    kwargs: dict[str, str] = {}
    current: list[str] = []
    key: str | None = None
    chars = iter(text)

    def flush() -> None:
        value = "".join(current)
        if key is None:
            args.append(value)
        else:
            kwargs[key] = value

    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            flush()
            current, key = [], None
        elif c == "=" and key is None:
            key, current = "".join(current), []
        else:
            current.append(c)
    if text:
        flush()
    return args, kwargs


def parseListen(description: str) -> ListenSpec:
    """
    Read an endpoint description as its layers.

    @raise ValueError: for a C{haproxy:} or C{ssl:} description that is not
        well formed.
    """
    kind, _, rest = description.partition(":")
    kind = kind.lower()
    if kind == "haproxy":
        inner = parseListen(rest)
        if inner.proxy:
            raise ValueError("haproxy: appears twice")
        return replace(inner, description=description, proxy=True)
    if kind != "ssl":
        return ListenSpec(description, description)
    args, kwargs = splitArguments(rest)
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) > 65535:
        raise ValueError("ssl: takes one port number, e.g. ssl:8443:interface=127.0.0.1")
    unknown = sorted(set(kwargs) - _SSL_FILES - set(_SSL_SOCKET))
    if unknown:
        raise ValueError(
            f"ssl: does not take {unknown[0]}= (the minimum TLS version is "
            "[tls] minimum_version)"
        )
    interface = kwargs.get("interface", "")
    parts = ["tcp6" if ":" in interface else "tcp", args[0]]
    parts += [f"{k}={quoteStringArgument(kwargs[k])}" for k in _SSL_SOCKET if k in kwargs]
    files = tuple(sorted((k, v) for k, v in kwargs.items() if k in _SSL_FILES))
    return ListenSpec(description, ":".join(parts), tls=files)


def _systemdArguments(description: str) -> tuple[str | None, int | None, str | None]:
    """
    The domain, index and name of a C{systemd:} description.
    """
    args, kwargs = splitArguments(description.partition(":")[2])
    unknown = sorted(set(kwargs) - {"domain", "index", "name"})
    if args or unknown:
        raise ValueError("systemd: takes index=N or name=NAME, and optionally domain=INET")
    domain, index, name = kwargs.get("domain"), kwargs.get("index"), kwargs.get("name")
    if (index is None) == (name is None):
        raise ValueError("systemd: takes exactly one of index= and name=")
    if index is not None and not index.isdigit():
        raise ValueError("systemd: index= must be a whole number >= 0")
    if domain is not None and domain.upper() not in ("INET", "INET6", "UNIX"):
        raise ValueError("systemd: domain= must be INET, INET6 or UNIX")
    return domain, None if index is None else int(index), name


class _CheckOnly:
    """
    Stands in for a reactor while a description is checked: parsing only
    stores the reactor.
    """


def checkEndpoint(description: str) -> None:
    """
    Check the syntax of a server endpoint description without binding,
    reading certificate files or looking for systemd's sockets.

    @raise ValueError: (or another exception from Twisted's parsers) with a
        message saying what is wrong.
    """
    spec = parseListen(description)
    if spec.kind == "systemd":
        _systemdArguments(spec.socket)
        return
    if spec.kind == "unixseq":
        from services.net.seqpacket import parseSeqpacketDescription

        parseSeqpacketDescription(spec.socket)
        return
    if spec.kind in ("tcp", "tcp6", "unix"):
        _checkSocketArguments(spec.kind, spec.socket)
    serverFromString(_CheckOnly(), spec.socket)


def _checkSocketArguments(kind: str, description: str) -> None:
    """
    Check the values Twisted's C{tcp:}, C{tcp6:} and C{unix:} parsers take
    as they are, so that a mistake is reported in words (Twisted's own
    messages are C{int()}'s, or come from C{bind()} at start-up).

    @raise ValueError: naming the value and what is allowed.
    """
    args, kwargs = splitArguments(description.partition(":")[2])
    if kind == "unix":
        if not (args[:1] or [kwargs.get("address", "")])[0]:
            raise ValueError("unix: needs a path, e.g. unix:/run/netservices/echo.sock")
        return
    port = args[0] if args else kwargs.get("port", "")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{kind}: port {port!r} is not a whole number from 0 to 65535")
    interface = kwargs.get("interface")
    if interface and not (isIPAddress(interface) or isIPv6Address(interface)):
        raise ValueError(f"{kind}: interface={interface} is not an IP address")


class _UNIXPortKeepingFile(unix.Port):  # type: ignore[misc]
    """
    A UNIX listening port whose socket file belongs to someone else
    (systemd, a parent process): stopping it leaves the file in place, where
    Twisted's own port would remove it.
    """

    def connectionLost(self, reason: Failure) -> None:
        tcp.Port.connectionLost(self, reason)


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
                port = _UNIXPortKeepingFile._fromListeningDescriptor(
                    self._reactor, self.fileno, protocolFactory
                )
                port.startListening()
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
        self._domain, self._index, self._name = _systemdArguments(description)
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
        from services.net.seqpacket import SeqpacketServerEndpoint

        return SeqpacketServerEndpoint.fromDescription(
            reactor, spec.socket, options.backlog, fileno
        )
    if fileno is not None:
        return AdoptedEndpoint(reactor, fileno)
    if spec.kind == "systemd":
        return SystemdEndpoint(reactor, spec.socket, context.systemd)
    endpoint = serverFromString(reactor, withBacklog(spec.socket, options.backlog))
    if options.reuseport and isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint)):
        # Twisted's TCP endpoints keep their arguments in these attributes
        # and offer no other way to pass a binding to listenTCP.
        endpoint = ReusePortEndpoint(
            reactor, endpoint._port, endpoint._backlog, endpoint._interface
        )
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
        from services.net.proxyheader import LOOPBACK, ProxyHeaderEndpoint

        trusted = LOOPBACK if trustedProxies is None else trustedProxies
        endpoint = ProxyHeaderEndpoint(endpoint, reactor, stats, trusted=trusted)
    if spec.tls is not None:
        # Outside the PROXY layer: the header comes before the TLS handshake.
        files = partial(tlsFiles, spec, context)
        endpoint = TLSServerEndpoint(endpoint, lambda: certificateOptions(files(), alpn))
    return endpoint


def applyBufferSizes(port: IListeningPort, options: SocketOptions) -> None:
    """
    Set C{SO_SNDBUF} and C{SO_RCVBUF} on a listening port's socket, which
    accepted connections inherit.  Ports without a socket (in memory, for
    tests) are left alone.
    """
    skt = getattr(port, "socket", None)
    if not isinstance(skt, socket.socket):
        return
    if options.sndbuf:
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.sndbuf)
    if options.rcvbuf:
        skt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, options.rcvbuf)


#: How Twisted's accept loop starts the events it logs for every connection
#: it cannot keep (twisted.internet.tcp._accept).
_ACCEPT_EVENTS = ("EMFILE", "Re-reserving EMFILE", "Could not accept new connection")


@implementer(ILogObserver)
class AcceptErrorLog:
    """
    The log observer of one listening port: its events about connections
    closed at once for lack of file descriptors go on at debug level, and a
    warning with their count at most every C{every} seconds; its other
    events go on unchanged.

    @ivar closed: connections closed at once so far.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, serviceName: str, clock: Any, every: float = 60.0) -> None:
        self.serviceName = serviceName
        self.clock = clock
        self.every = every
        self.closed = 0
        self._warnedAt: float | None = None
        self._warnedCount = 0

    def __call__(self, event: dict[str, Any]) -> None:
        """
        Pass C{event} on, demoted if it is about one refused connection.
        """
        text = event.get("log_format") or ""
        if not text.startswith(_ACCEPT_EVENTS):
            globalLogPublisher(event)
            return
        logs.observer(dict(event, log_level=LogLevel.debug))
        exhausted = text.startswith("EMFILE") or event.get("acceptError") in ("EMFILE", "ENFILE")
        if not exhausted:
            return
        if text.startswith(("EMFILE recovery", "Could not accept")):
            self.closed += 1
        now = self.clock.seconds()
        if self._warnedAt is None:
            self._log.warn(
                "{service}: out of file descriptors: closing new connections at once "
                "until some are free",
                service=self.serviceName,
            )
        elif now - self._warnedAt >= self.every:
            self._log.warn(
                "{service}: out of file descriptors: {count} new connections closed at once "
                "in the last {seconds:.0f} s",
                service=self.serviceName,
                count=self.closed - self._warnedCount,
                seconds=now - self._warnedAt,
            )
        else:
            return
        self._warnedAt = now
        self._warnedCount = self.closed


def quietAcceptErrors(port: Any, serviceName: str) -> None:
    """
    Route the log events of a listening port through an L{AcceptErrorLog}
    (ports without their own logger, or without a reactor, are left as
    they are).
    """
    logger = getattr(port, "_logger", None)
    clock = getattr(port, "reactor", None)
    if isinstance(logger, Logger) and clock is not None:
        port._logger = Logger(
            namespace=logger.namespace, source=port, observer=AcceptErrorLog(serviceName, clock)
        )


class ListenerService(Service):
    """
    Listens on one endpoint for the life of the service.

    A failure to listen at start-up (a port in use, a permission denied)
    raises L{ListenError} from C{privilegedStartService}, naming the
    endpoint, instead of being logged and forgotten.  A failure that comes
    later (an endpoint that listens asynchronously) is logged.

    This is L{twisted.application.internet.StreamServerEndpointService}
    with synchronous errors; it is not a subclass because importing
    C{twisted.application.internet} also imports its client service's state
    machine library, a twentieth of the daemon's start-up.

    @ivar endpoint: the endpoint to listen on.
    @ivar factory: the factory of the connections.
    @ivar port: the listening port once listening, else L{None}.
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        serviceName: str,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        options: SocketOptions = SocketOptions(),
    ) -> None:
        self.serviceName = serviceName
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.options = options
        self.port: IListeningPort | None = None
        self._waitingForPort: Deferred[IListeningPort | None] | None = None

    def privilegedStartService(self) -> None:
        """
        Listen now, and raise L{ListenError} if that fails at once.
        """
        Service.privilegedStartService(self)
        failed: list[Failure] = []
        try:
            waiting = self.endpoint.listen(self.factory)
        except Exception as e:
            raise ListenError(self.serviceName, self.description, e) from e
        waiting.addErrback(failed.append)
        if failed:
            e = failed[0].value
            raise ListenError(self.serviceName, self.description, e) from e
        waiting.addCallback(self._listening)
        self._waitingForPort = waiting
        waiting.addErrback(self._lateFailure)

    def _lateFailure(self, reason: Failure) -> None:
        if not reason.check(CancelledError):
            self._log.failure(
                "{service}: cannot listen on {endpoint}",
                reason,
                service=self.serviceName,
                endpoint=self.description,
            )

    def startService(self) -> None:
        """
        Start listening, unless C{privilegedStartService} did already.
        """
        Service.startService(self)
        if self._waitingForPort is None:
            self.privilegedStartService()

    def _listening(self, port: IListeningPort) -> IListeningPort:
        applyBufferSizes(port, self.options)
        quietAcceptErrors(port, self.serviceName)
        self.port = port
        self._log.info(
            "{service} listening on {endpoint} ({address})",
            service=self.serviceName,
            endpoint=self.description,
            address=describeAddress(port.getHost()),
        )
        return port

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening (or stop trying to).
        """
        Service.stopService(self)
        self.port = None
        waiting, self._waitingForPort = self._waitingForPort, None
        if waiting is None:
            return None
        waiting.cancel()

        def stop(port: IListeningPort | None) -> Deferred[None] | None:
            return None if port is None else port.stopListening()

        return waiting.addCallback(stop)


def closeAtOnce(port: Any) -> None:
    """
    Close a listening port now, before the reactor runs (a start-up that
    failed half-way): C{stopListening} would only close the socket on the
    reactor's next turn, which never comes, and a UNIX socket's file and
    its lock would stay behind.  Ports that are not file descriptors (in
    memory, for tests) are asked to C{stopListening}.
    """
    stopReading = getattr(port, "stopReading", None)
    connectionLost = getattr(port, "connectionLost", None)
    if stopReading is None or connectionLost is None or not getattr(port, "connected", False):
        port.stopListening()
        return
    # Twisted's UNIX stream ports remove their file; its datagram ports
    # leave it to their owner, which here gives up before it ever runs.
    path = port.port if isinstance(port, unix.DatagramPort) else None
    # What stopListening schedules for the next turn, done at once.
    stopReading()
    connectionLost(Failure(ConnectionDone("start-up failed")))
    if isinstance(path, (str, bytes)) and path and path[:1] not in ("\0", b"\0"):
        try:
            os.unlink(path)
        except OSError:
            pass


def listeningPorts(service: Any) -> list[Any]:
    """
    The ports a service and its descendants are listening on now.

    Any service in the tree with a C{port} attribute (L{ListenerService}, or a
    UDP service that keeps its L{twisted.internet.interfaces.IListeningPort})
    contributes it once it is not L{None}.
    """
    found = []
    port = getattr(service, "port", None)
    if port is not None:
        found.append(port)
    for child in getattr(service, "services", ()):
        found.extend(listeningPorts(child))
    return found


def ownSocketLocks(ports: Iterable[Any]) -> int:
    """
    Make the lock files of UNIX listening ports (C{PATH.lock}, a symbolic
    link to the owner's process id) name this process, after twistd has
    daemonized: the ports were bound, and their locks taken, by the process
    that forked it, so the daemon could not release them at shutdown
    (Twisted only removes a lock its own process holds) and left them
    behind, naming a process id that another process may get.

    @return: how many locks were moved to this process.
    """
    moved = 0
    mine = str(os.getpid())
    for port in ports:
        lock = getattr(port, "lockFile", None)
        if lock is None or not lock.locked:
            continue
        name = os.fsdecode(lock.name)
        try:
            if os.readlink(name) == mine:
                continue
            temporary = f"{name}.{mine}"
            os.symlink(mine, temporary)
            os.replace(temporary, name)  # atomically, as the lock stays held
        except OSError:
            continue
        moved += 1
    return moved


def isListening(service: Any) -> bool:
    """
    Whether every listener in a service's tree is listening (and there is
    at least one).
    """
    listeners = []

    def walk(s: Any) -> None:
        if hasattr(s, "port"):
            listeners.append(s.port)
        for child in getattr(s, "services", ()):
            walk(child)

    walk(service)
    return bool(listeners) and all(p is not None for p in listeners)
