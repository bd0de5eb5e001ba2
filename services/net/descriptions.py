# -*- test-case-name: tests.unit.net.test_layers -*-
"""
Stream endpoint descriptions, read and checked without binding anything.

A description is read as layers over one listening socket (L{parseListen}):

  - C{haproxy:DESCRIPTION}: connections start with a PROXY header
    (L{services.net.proxyheader}, which fixes Twisted's own wrapper);
  - C{ssl:PORT:...}: TLS over C{tcp:PORT:...}, with the certificate and key of
    C{[tls]} (or the description's C{privateKey=}/C{certKey=}) and a minimum
    protocol version (L{services.net.tls});
  - C{systemd:index=N}, C{systemd:name=NAME}: a socket passed by systemd socket
    activation, resolved when listening starts, of any address family
    (L{systemdArguments});
  - C{unixseq:PATH[:mode=...]}: a UNIX C{SOCK_SEQPACKET} socket
    (L{services.net.seqpacket}), records kept whole;
  - anything else is one of Twisted's own server endpoint strings.

L{checkEndpoint} is what C{tap.conf} and the flags check a C{listen} value
with; L{services.net.endpoints} turns a description into an endpoint.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import quoteStringArgument, serverFromString

from services import dataclass

__all__ = [
    "ListenSpec",
    "checkEndpoint",
    "parseListen",
    "splitArguments",
    "systemdArguments",
]


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


def systemdArguments(description: str) -> tuple[str | None, int | None, str | None]:
    """
    The domain, index and name of a C{systemd:} description.

    @raise ValueError: saying what is allowed.
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
        systemdArguments(spec.socket)
        return
    if spec.kind == "unixseq":
        from services.net.seqpacket import parseSeqpacketDescription  # only for unixseq:

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
