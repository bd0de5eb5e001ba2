# -*- test-case-name: tests.unit.config.test_config -*-
"""
The sections of tap.conf: one frozen dataclass each, and L{Config}, which
holds one of each.

Each field of a section is one key: its default is the built-in default,
and its metadata says how to parse the text (a parser of
L{services.config.parsers} or L{services.config.netparsers}), what is
allowed and what the key does.  The repository's C{tap.conf} spells out the
same values (a test keeps them equal).  Field order is the order tap.conf
documents them in.

Why one module: the sections are declarations, not logic (about 40 lines
each, most of them the text of the documentation), and L{Config},
L{SECTIONS} and the order of tap.conf bind them together; split by service,
a reader would lose the one place that says what tap.conf holds, and the
small services' sections share their keys through inheritance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from services import dataclass  # dataclasses', compiling nothing at import
from services.config.netparsers import (
    parseBroadcast,
    parseEndpoints,
    parseFamilies,
    parseInterfaceNames,
    parseIPv4,
    parseNetworks,
    parseOptionalUdpEndpoints,
    parseUdpEndpoints,
)
from services.config.parsers import (
    Parser,
    choice,
    intRange,
    parseBool,
    parseDirectory,
    parseHeaderValue,
    parseMount,
    parseOptionalName,
    parseOptionalPath,
    parseOptionalReadableFile,
    parsePositiveSeconds,
    parseQuotesFile,
    parseRate,
    parseSeconds,
    parseSize,
)


__all__ = [
    "LOOPBACK_NETWORKS",
    "REFUSED_KEYS",
    "SECTIONS",
    "SMALL_SERVICES",
    "ChargenConfig",
    "Config",
    "DaytimeConfig",
    "DiscardConfig",
    "DiscoveryConfig",
    "EchoConfig",
    "LogConfig",
    "MDNSConfig",
    "NetservicesConfig",
    "QotdConfig",
    "SmallServiceConfig",
    "TLSConfig",
    "TimeConfig",
    "UdpEchoConfig",
    "WebConfig",
]


def _setting(default: Any, parse: Parser, allowed: str, doc: str) -> Any:
    """
    Declare one configuration key: its default, its parser, a short phrase
    saying which values are allowed, and a one-line description.
    """
    return field(default=default, metadata={"parse": parse, "allowed": allowed, "doc": doc})


#: The sources trusted to send PROXY protocol headers by default: loopback.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class EchoConfig:
    """
    C{[echo]}: the RFC 862 echo service over stream sockets.
    """

    enabled: bool = _setting(True, parseBool, "yes or no", "Run the echo service.")
    listen: tuple[str, ...] = _setting(
        ("tcp:8007:interface=127.0.0.1",),
        parseEndpoints,
        "one or more Twisted server endpoint strings",
        "Where to listen: endpoint strings separated by spaces or newlines.",
    )
    idle_timeout: float = _setting(
        300.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Close a connection that has sent nothing for this long.",
    )
    send_timeout: float = _setting(
        60.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Drop a connection whose peer reads none of its echo for this long.",
    )
    trusted_proxies: tuple[str, ...] = _setting(
        LOOPBACK_NETWORKS,
        parseNetworks,
        "one or more IP addresses or CIDR networks",
        "Who may send a PROXY header to a haproxy: listener; others are closed and counted.",
    )
    max_connections: int = _setting(
        10000,
        intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while this many are open.",
    )
    backlog: int = _setting(
        1024,
        intRange(1, 65535),
        "a whole number from 1 to 65535",
        "Listen queue length, unless an endpoint sets its own backlog=.",
    )
    sndbuf: int = _setting(
        0,
        parseSize,
        "a size in bytes (0 keeps the kernel default)",
        "SO_SNDBUF for accepted connections.",
    )
    rcvbuf: int = _setting(
        0,
        parseSize,
        "a size in bytes (0 keeps the kernel default)",
        "SO_RCVBUF for accepted connections.",
    )
    reuseport: bool = _setting(
        False,
        parseBool,
        "yes or no",
        "Set SO_REUSEPORT on TCP listeners, so several processes share a port.",
    )
    nodelay: bool = _setting(
        True,
        parseBool,
        "yes or no",
        "Set TCP_NODELAY on TCP connections: each echo leaves at once instead of its "
        "last partial packet waiting for the peer's acknowledgement (Nagle's algorithm).",
    )


@dataclass(frozen=True)
class DiscoveryConfig:
    """
    C{[discovery]}: announce this instance over UDP broadcast, answer
    queries, and keep a table of the other instances heard.
    """

    enabled: bool = _setting(True, parseBool, "yes or no", "Run the discovery service.")
    port: int = _setting(
        8009,
        intRange(1, 65535),
        "a UDP port from 1 to 65535",
        "The UDP port every instance shares (SO_REUSEADDR), announces to and answers on.",
    )
    interface: str = _setting(
        "127.0.0.1",
        parseIPv4,
        "an IPv4 address (0.0.0.0: all)",
        "The local address to bind and send from.",
    )
    broadcast: str = _setting(
        "auto",
        parseBroadcast,
        "auto, an IPv4 broadcast address, <broadcast>, or a group in 239.255.0.0/16",
        "Where announces go: auto, the broadcast address of each interface that "
        "interface covers (127.255.255.255 for 127.0.0.1); a group: multicast on each.",
    )
    ipv6: bool = _setting(
        False,
        parseBool,
        "yes or no",
        "Also announce and answer over IPv6, by multicast to ff02::114 on each "
        "IPv6 interface.",
    )
    interval: float = _setting(
        5.0,
        parsePositiveSeconds,
        "seconds > 0",
        "Announce this often.",
    )
    ttl: int = _setting(
        15,
        intRange(1, 3600),
        "whole seconds from 1 to 3600, more than interval",
        "Peers forget this instance after this long without hearing it.",
    )
    name: str = _setting(
        "",
        parseOptionalName,
        "1 to 64 printable characters, or empty",
        "The name announced; empty: the host name.",
    )
    source_rate: float = _setting(
        1.0,
        parseRate,
        "a number per second > 0",
        "Replies per second to one source address, on average.",
    )
    source_burst: int = _setting(
        5,
        intRange(1, 1_000_000),
        "a whole number >= 1",
        "Replies one source address may get at once.",
    )
    global_rate: float = _setting(
        50.0,
        parseRate,
        "a number per second > 0",
        "Replies per second to all sources together.",
    )
    max_peer_ttl: int = _setting(
        60,
        intRange(1, 3600),
        "whole seconds from 1 to 3600",
        "Forget a peer after at most this long (or ttl, if longer) without news, "
        "whatever ttl it announces.",
    )
    max_peers_per_source: int = _setting(
        16,
        intRange(1, 1024),
        "a whole number from 1 to 1024",
        "Peers one source (address and port) may place in the table.",
    )
    max_ports_per_source: int = _setting(
        64,
        intRange(1, 1024),
        "a whole number from 1 to 1024",
        "Distinct ports one source may announce (and so have the loop guards refuse).",
    )


@dataclass(frozen=True)
class MDNSConfig:
    """
    C{[mdns]}: advertise our services by DNS-SD over multicast DNS (RFC 6762,
    RFC 6763) on 224.0.0.251 and ff02::fb port 5353.
    """

    enabled: bool = _setting(False, parseBool, "yes or no", "Run the mDNS responder.")
    interfaces: tuple[str, ...] = _setting(
        ("all",),
        parseInterfaceNames,
        "all, or one or more interface names",
        "The interfaces to advertise on; all: every one that is up and can multicast, "
        "loopback aside.",
    )
    name: str = _setting(
        "",
        parseOptionalName,
        "1 to 64 printable characters, or empty",
        "The instance name claimed; empty: [discovery] name, else the host name.",
    )
    families: tuple[str, ...] = _setting(
        ("ipv4", "ipv6"),
        parseFamilies,
        "ipv4, ipv6, or both",
        "The address families to advertise over.",
    )


@dataclass(frozen=True)
class UdpEchoConfig:
    """
    C{[udp-echo]}: the RFC 862 echo service over UDP.
    """

    enabled: bool = _setting(False, parseBool, "yes or no", "Run the UDP echo service.")
    listen: tuple[str, ...] = _setting(
        ("udp:8007:interface=127.0.0.1",),
        parseUdpEndpoints,
        "one or more udp:PORT[:interface=ADDRESS] (udp6: for IPv6) or unixgram:PATH[:mode=OCTAL]",
        "Where to listen: UDP endpoints separated by spaces or newlines.",
    )
    source_rate: float = _setting(
        100.0,
        parseRate,
        "a number per second > 0",
        "Datagrams per second echoed to one source address, on average.",
    )
    source_burst: int = _setting(
        200,
        intRange(1, 1_000_000),
        "a whole number >= 1",
        "Datagrams one source address may get echoed at once.",
    )
    global_rate: float = _setting(
        2000.0,
        parseRate,
        "a number per second > 0",
        "Datagrams per second echoed to all sources together.",
    )


#: The classic small services, each a section of its own (off by default).
SMALL_SERVICES = ("discard", "chargen", "daytime", "time", "qotd")


def _listen(port: int) -> Any:
    return _setting(
        (f"tcp:{port}:interface=127.0.0.1",),
        parseEndpoints,
        "one or more Twisted server endpoint strings",
        "Where to listen: endpoint strings separated by spaces or newlines.",
    )


def _udp(port: int) -> Any:
    return _setting(
        (),
        parseOptionalUdpEndpoints,
        "udp:PORT[:interface=ADDRESS] (udp6: for IPv6), space separated, or nothing",
        f"Also answer over UDP here (e.g. udp:{port}:interface=127.0.0.1); empty: no UDP.",
    )


@dataclass(frozen=True)
class SmallServiceConfig:
    """
    The keys every small service section (C{[discard]}, C{[chargen]},
    C{[daytime]}, C{[time]}, C{[qotd]}) has: a stream service like
    C{[echo]}, off by default.
    """

    enabled: bool = _setting(False, parseBool, "yes or no", "Run the service.")
    listen: tuple[str, ...] = _listen(10009)
    max_connections: int = _setting(
        1000,
        intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while this many are open.",
    )
    backlog: int = _setting(
        1024,
        intRange(1, 65535),
        "a whole number from 1 to 65535",
        "Listen queue length, unless an endpoint sets its own backlog=.",
    )
    sndbuf: int = _setting(
        0, parseSize, "a size in bytes (0 keeps the kernel default)", "SO_SNDBUF of connections."
    )
    rcvbuf: int = _setting(
        0, parseSize, "a size in bytes (0 keeps the kernel default)", "SO_RCVBUF of connections."
    )
    reuseport: bool = _setting(
        False, parseBool, "yes or no", "Set SO_REUSEPORT on TCP listeners."
    )


@dataclass(frozen=True)
class DiscardConfig(SmallServiceConfig):
    """
    C{[discard]}: RFC 863, every byte received is counted and thrown away.
    """

    listen: tuple[str, ...] = _listen(10009)
    idle_timeout: float = _setting(
        300.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Close a connection that has sent nothing for this long.",
    )
    udp: tuple[str, ...] = _udp(10009)


@dataclass(frozen=True)
class ChargenConfig(SmallServiceConfig):
    """
    C{[chargen]}: RFC 864, the character pattern for as long as the client
    reads it.  Stream sockets only: UDP chargen is an amplifier.
    """

    listen: tuple[str, ...] = _listen(10019)
    send_timeout: float = _setting(
        60.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Close a connection whose client has read nothing for this long.",
    )
    rate: int = _setting(
        0,
        parseSize,
        "bytes per second, e.g. 1M (0 means no limit)",
        "Send at most this many bytes per second on each connection.",
    )


#: Keys that a section leaves out on purpose, and why.
REFUSED_KEYS = {
    ("chargen", "udp"): (
        "chargen is not offered over UDP: one forged datagram makes it flood its "
        "victim (CERT CA-1996-01); use chargen over TCP, or [udp-echo]"
    ),
}


@dataclass(frozen=True)
class _AnswerConfig(SmallServiceConfig):
    """
    The keys of the services that send one short answer and close: the
    send timeout and UDP, with UDP echo's rate limits.
    """

    send_timeout: float = _setting(
        10.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Abort a connection whose answer is not sent after this long "
        "(a TLS handshake or PROXY header that never completes).",
    )
    udp: tuple[str, ...] = _udp(10013)
    source_rate: float = _setting(
        10.0,
        parseRate,
        "a number per second > 0",
        "Datagrams per second answered to one source address, on average.",
    )
    source_burst: int = _setting(
        20,
        intRange(1, 1_000_000),
        "a whole number >= 1",
        "Datagrams one source address may get answered at once.",
    )
    global_rate: float = _setting(
        500.0,
        parseRate,
        "a number per second > 0",
        "Datagrams per second answered to all sources together.",
    )


@dataclass(frozen=True)
class DaytimeConfig(_AnswerConfig):
    """
    C{[daytime]}: RFC 867, the date and time in UTC as one line of text.
    """

    listen: tuple[str, ...] = _listen(10013)
    udp: tuple[str, ...] = _udp(10013)


@dataclass(frozen=True)
class TimeConfig(_AnswerConfig):
    """
    C{[time]}: RFC 868, the seconds since 1900 as a 32-bit number.
    """

    listen: tuple[str, ...] = _listen(10037)
    udp: tuple[str, ...] = _udp(10037)


@dataclass(frozen=True)
class QotdConfig(_AnswerConfig):
    """
    C{[qotd]}: RFC 865, a short message, the same all day.
    """

    listen: tuple[str, ...] = _listen(10017)
    udp: tuple[str, ...] = _udp(10017)
    quotes: str = _setting(
        "",
        parseQuotesFile,
        "the path of a text file, or nothing (the built-in quote)",
        "Quotes separated by blank lines, at most 512 bytes each; one a day in turn.",
    )


@dataclass(frozen=True)
class WebConfig:
    """
    C{[web]}: the HTTP service (hello, static files, status, health,
    metrics).
    """

    enabled: bool = _setting(True, parseBool, "yes or no", "Run the web service.")
    listen: tuple[str, ...] = _setting(
        ("tcp:8080:interface=127.0.0.1",),
        parseEndpoints,
        "one or more Twisted server endpoint strings",
        "Where to listen: endpoint strings separated by spaces or newlines.",
    )
    static_dir: str = _setting(
        "",
        parseDirectory,
        "the path of an existing directory, or nothing (no static files)",
        "Serve the files under this directory; empty serves none.",
    )
    static_mount: str = _setting(
        "/static/",
        parseMount,
        "a URL path such as /static/, not under /status, /health or /metrics",
        "The URL path where static_dir is served.",
    )
    listing: bool = _setting(
        False,
        parseBool,
        "yes or no",
        "List a directory's files when it has no index.html (no: 403 Forbidden).",
    )
    follow_symlinks: bool = _setting(
        False,
        parseBool,
        "yes or no",
        "Serve symbolic links whose target is outside static_dir.",
    )
    header_timeout: float = _setting(
        10.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Answer 408 and close when a request's headers take longer than this.",
    )
    idle_timeout: float = _setting(
        60.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Close a connection that sends nothing for this long (keep-alive included).",
    )
    send_timeout: float = _setting(
        60.0,
        parseSeconds,
        "seconds >= 0 (0 disables)",
        "Abort a response whose client reads none of it for this long.",
    )
    max_body: int = _setting(
        1024**2,
        parseSize,
        "a size in bytes (0 means no limit)",
        "Answer 413 to a request whose body is larger than this.",
    )
    max_connections: int = _setting(
        1024,
        intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while this many are open.",
    )
    max_connections_per_peer: int = _setting(
        256,
        intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while one IP address has this many open.",
    )
    backlog: int = _setting(
        1024,
        intRange(1, 65535),
        "a whole number from 1 to 65535",
        "Listen queue length, unless an endpoint sets its own backlog=.",
    )
    access_log: str = _setting(
        "",
        parseOptionalPath,
        "a file path, or nothing (no access log)",
        "Append one line per request, in Combined Log Format, to this file.",
    )
    server_header: str = _setting(
        "netservices",
        parseHeaderValue,
        "at most 128 printable ASCII characters, or nothing (no Server header)",
        "The Server header of every response; empty sends none.",
    )
    trusted_proxies: tuple[str, ...] = _setting(
        LOOPBACK_NETWORKS,
        parseNetworks,
        "one or more IP addresses or CIDR networks",
        "Who may send a PROXY header to a haproxy: listener; others are closed and counted.",
    )
    http2: bool = _setting(
        True,
        parseBool,
        "yes or no",
        "Offer HTTP/2 (ALPN h2) beside HTTP/1.1 on ssl: listeners.",
    )
    max_streams: int = _setting(
        100,
        intRange(1, 1_000_000),
        "a whole number from 1 to 1000000",
        "Requests (streams) one HTTP/2 connection may have open at once.",
    )


@dataclass(frozen=True)
class LogConfig:
    """
    C{[log]}: what netservices itself logs.
    """

    level: str = _setting(
        "info",
        choice("debug", "info", "warn", "error", "critical"),
        "debug, info, warn, error or critical",
        "Lowest level of netservices' own events to log (debug shows every connection).",
    )


@dataclass(frozen=True)
class NetservicesConfig:
    """
    C{[netservices]}: the daemon as a whole.
    """

    shutdown_grace: float = _setting(
        10.0,
        parseSeconds,
        "seconds >= 0",
        "On SIGTERM, how long open connections may take to finish before they are aborted.",
    )

    workers: int = _setting(
        1,
        intRange(1, 256),
        "a whole number from 1 to 256",
        "Worker processes sharing every stream listener; above 1, a parent binds "
        "the listeners, supervises the workers and restarts any that dies.",
    )
    reactor: str = _setting(
        "nsepoll",
        choice("nsepoll", "twisted"),
        "nsepoll or twisted",
        "The event loop when twistd is not given --reactor: nsepoll (Twisted's epoll "
        "reactor with a leaner data path, services/nsepoll/_reactor.py) or twisted (Twisted's "
        "default for the platform).  Where epoll is missing, twisted is used.",
    )


@dataclass(frozen=True)
class TLSConfig:
    """
    C{[tls]}: the certificate of C{ssl:} listeners.
    """

    certificate: str = _setting(
        "",
        parseOptionalReadableFile,
        "the path of a readable PEM file, or empty",
        "Server certificate, followed by its intermediate certificates "
        "(and the private key when key is empty).",
    )
    key: str = _setting(
        "",
        parseOptionalReadableFile,
        "the path of a readable PEM file, or empty (the key is in the certificate file)",
        "Private key of the certificate.",
    )
    minimum_version: str = _setting(
        "1.2",
        choice("1.2", "1.3"),
        "1.2 or 1.3",
        "Oldest TLS version accepted.",
    )


#: Section name to its dataclass, in the order tap.conf documents them.
SECTIONS: Mapping[str, type] = {
    "echo": EchoConfig,
    "web": WebConfig,
    "discovery": DiscoveryConfig,
    "udp-echo": UdpEchoConfig,
    "mdns": MDNSConfig,
    "log": LogConfig,
    "netservices": NetservicesConfig,
    "tls": TLSConfig,
    "discard": DiscardConfig,
    "chargen": ChargenConfig,
    "daytime": DaytimeConfig,
    "time": TimeConfig,
    "qotd": QotdConfig,
}


@dataclass(frozen=True)
class Config:
    """
    The whole configuration: one attribute per section.

    @ivar source: where the values came from (a path, or C{"<defaults>"}).
    """

    echo: EchoConfig = EchoConfig()
    web: WebConfig = WebConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    udp_echo: UdpEchoConfig = UdpEchoConfig()
    mdns: MDNSConfig = MDNSConfig()
    log: LogConfig = LogConfig()
    netservices: NetservicesConfig = NetservicesConfig()
    tls: TLSConfig = TLSConfig()
    discard: DiscardConfig = DiscardConfig()
    chargen: ChargenConfig = ChargenConfig()
    daytime: DaytimeConfig = DaytimeConfig()
    time: TimeConfig = TimeConfig()
    qotd: QotdConfig = QotdConfig()
    source: str = "<defaults>"
