# -*- test-case-name: tests.test_config -*-
"""
tap.conf: parse and validate the configuration once, into frozen values.

Each section of the INI file maps to a frozen dataclass below; each field of
that dataclass is one key, and its metadata says how to parse the text and
what is allowed.  The built-in defaults are the dataclass defaults, and the
repository's C{tap.conf} spells out the same values (a test keeps them equal).

Nothing else in the package reads files or the environment for configuration:
L{loadConfig} is the only door.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

__all__ = [
    "Config",
    "ConfigError",
    "EchoConfig",
    "LogConfig",
    "NetservicesConfig",
    "TLSConfig",
    "SECTIONS",
    "SMALL_SERVICES",
    "loadConfig",
    "parseConfig",
    "parseText",
    "parseValue",
    "replaceSection",
]


class ConfigError(ValueError):
    """
    A configuration value is unusable.  The message is one line that names
    where the value came from, the section, the key, the bad value and what is
    allowed.
    """


class _Invalid(ValueError):
    """
    Raised by a value parser: the message says what is allowed.
    """


Parser = Callable[[str], Any]


def _setting(default: Any, parse: Parser, allowed: str, doc: str) -> Any:
    """
    Declare one configuration key: its default, its parser, a short phrase
    saying which values are allowed, and a one-line description.
    """
    return field(default=default, metadata={"parse": parse, "allowed": allowed, "doc": doc})


# Value parsers.  Each takes the raw text and returns the value, or raises
# _Invalid with a message that says what is allowed.

_BOOLEANS = configparser.RawConfigParser.BOOLEAN_STATES


def parseBool(text: str) -> bool:
    """
    Parse yes/no, true/false, on/off, 1/0 (any case).
    """
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise _Invalid("expected yes or no (also true/false, on/off, 1/0)") from None


def parseSeconds(text: str) -> float:
    """
    Parse a non-negative number of seconds; C{0} means "never".
    """
    try:
        value = float(text)
    except ValueError:
        raise _Invalid("expected a number of seconds, e.g. 30 or 0.5") from None
    if not (value >= 0 and value != float("inf")):
        raise _Invalid("expected a finite number of seconds >= 0")
    return value


def parsePositiveSeconds(text: str) -> float:
    """
    Parse a number of seconds greater than zero.
    """
    value = parseSeconds(text)
    if value <= 0:
        raise _Invalid("expected a number of seconds > 0")
    return value


def _intRange(low: int, high: int) -> Parser:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise _Invalid(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise _Invalid(f"expected a whole number from {low} to {high}")
        return value

    return parse


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parseSize(text: str) -> int:
    """
    Parse a size in bytes, with an optional binary suffix: C{65536},
    C{64K}, C{64KiB}, C{1M}, C{1MiB}, C{2G}.
    """
    match = _SIZE.match(text)
    if match is None:
        raise _Invalid("expected a size in bytes such as 65536, 64K or 1MiB")
    number, unit = match.groups()
    return int(number) * _UNITS[(unit or "")[:1].lower()]


def parsePort(text: str) -> int:
    """
    Parse a UDP or TCP port number, 0 (any free port) to 65535.
    """
    return _intRange(0, 65535)(text)


def parseName(text: str) -> str:
    """
    Parse a short free-form name: printable, at most 64 characters.
    """
    value = text.strip()
    if not value or len(value) > 64 or not value.isprintable():
        raise _Invalid("expected 1 to 64 printable characters")
    return value


def _choice(*choices: str) -> Parser:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise _Invalid("expected one of " + ", ".join(choices))
        return value

    return parse


def parseEndpoint(text: str) -> str:
    """
    Check one server endpoint description (C{tcp:8007}, C{unix:/run/x.sock},
    C{ssl:8443}, C{systemd:index=0}, C{haproxy:tcp:8007}...) with Twisted's
    own parsers, without binding or reading certificate files (that happens
    when listening starts).
    """
    # Imported here: the command-line clients read this module for its
    # parsers and have no use for the listeners (nor their imports).
    from services.net.listen import checkEndpoint

    description = text.strip()
    try:
        checkEndpoint(description)
    except Exception as e:  # parsers raise ValueError, TypeError, KeyError, OSError...
        reason = str(e) or e.__class__.__name__
        raise _Invalid(
            f"not a server endpoint ({reason}); expected e.g. "
            "tcp:8007:interface=127.0.0.1, tcp6:8007:interface=\\:\\:1 "
            "or unix:/run/netservices.sock:mode=660"
        ) from None
    return description


def parseEndpoints(text: str) -> tuple[str, ...]:
    """
    Parse one or more endpoint descriptions separated by whitespace or
    newlines.
    """
    values = tuple(parseEndpoint(part) for part in text.split())
    if not values:
        raise _Invalid("expected at least one endpoint, e.g. tcp:8007:interface=127.0.0.1")
    return values


def parseOptionalPath(text: str) -> str:
    """
    Parse a filesystem path; empty means "none".
    """
    return text.strip()


def parseNetworks(text: str) -> tuple[str, ...]:
    """
    Parse one or more IP addresses or CIDR networks (C{127.0.0.0/8 ::1
    10.0.0.5}), separated by spaces, commas or newlines; each comes back in
    its network form (C{10.0.0.5/32}).
    """
    import ipaddress

    items = text.replace(",", " ").split()
    try:
        networks = tuple(str(ipaddress.ip_network(item, strict=False)) for item in items)
    except ValueError:
        networks = ()
    if not networks:
        raise _Invalid(
            "expected one or more IP addresses or CIDR networks, e.g. 127.0.0.0/8 ::1 10.0.0.5"
        )
    return networks


#: The sources trusted to send PROXY protocol headers by default: loopback.
_LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")

# The sections.  Field order is the order tap.conf documents them in.


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
        _LOOPBACK_NETWORKS,
        parseNetworks,
        "one or more IP addresses or CIDR networks",
        "Who may send a PROXY header to a haproxy: listener; others are closed and counted.",
    )
    max_connections: int = _setting(
        10000,
        _intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while this many are open.",
    )
    backlog: int = _setting(
        1024,
        _intRange(1, 65535),
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




def _isIPv4(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def parseIPv4(text: str) -> str:
    """
    Parse an IPv4 address in dotted form; C{0.0.0.0} means every address.
    """
    value = text.strip()
    if not _isIPv4(value):
        raise _Invalid("expected an IPv4 address such as 127.0.0.1 (0.0.0.0: all)")
    return value


#: The keyword for the limited broadcast address, every host on the local
#: network segment (C{255.255.255.255}).
LIMITED_BROADCAST = "<broadcast>"
LIMITED_BROADCAST_ADDRESS = "255.255.255.255"


#: The keyword for the broadcast address of each interface, read from the
#: kernel.
AUTO_BROADCAST = "auto"


def parseBroadcast(text: str) -> str:
    """
    Parse where broadcasts go: C{auto} (the broadcast address of each
    interface), an IPv4 address (C{127.255.255.255}, a subnet's broadcast
    address) or C{<broadcast>} (255.255.255.255).
    """
    value = text.strip()
    if value.lower() == AUTO_BROADCAST:
        return AUTO_BROADCAST
    if value != LIMITED_BROADCAST and not _isIPv4(value):
        raise _Invalid(
            "expected auto, an IPv4 broadcast address such as 127.255.255.255 or "
            f"192.168.1.255, {LIMITED_BROADCAST}, or a multicast group in 239.255.0.0/16"
        )
    first = int(value.split(".")[0]) if value != LIMITED_BROADCAST else 0
    if 224 <= first <= 239 and not value.startswith("239.255."):
        raise _Invalid(
            "expected a multicast group in 239.255.0.0/16 (organization-local scope), "
            "such as 239.255.0.9"
        )
    return value


def parseHeaderValue(text: str) -> str:
    """
    Parse an HTTP header value: printable ASCII, at most 128 characters, or
    nothing (no header).
    """
    value = text.strip()
    if len(value) > 128 or not all(" " <= c <= "~" for c in value):
        raise _Invalid("expected at most 128 printable ASCII characters, or nothing")
    return value


def parseOptionalName(text: str) -> str:
    """
    Parse a short name, or nothing (the empty string).
    """
    return parseName(text) if text.strip() else ""


def parseRate(text: str) -> float:
    """
    Parse a rate per second greater than zero.
    """
    try:
        value = float(text)
    except ValueError:
        raise _Invalid("expected a number per second > 0, e.g. 10 or 0.5") from None
    if not (0 < value < float("inf")):
        raise _Invalid("expected a finite number per second > 0")
    return value


def parseUdpEndpoints(text: str) -> tuple[str, ...]:
    """
    Parse one or more UDP endpoint descriptions (C{udp:8007:interface=127.0.0.1},
    C{udp6:8007:interface=\\:\\:1}, a bare port on 127.0.0.1, or
    C{unixgram:PATH[:mode=OCTAL]}), separated by whitespace or newlines, into
    their canonical text.
    """
    return _udpEndpoints(text, unixgram=True)


def _udpEndpoints(text: str, unixgram: bool) -> tuple[str, ...]:
    from services.net.datagram import parseUdpEndpoint
    from services.echo._unixgram import isUnixDatagram, parseUnixDatagram

    forms = "a port or udp:PORT[:interface=ADDRESS] (udp6: for IPv6)"
    if unixgram:
        forms += " or unixgram:PATH[:mode=OCTAL]"
    parts = text.split()
    values = []
    for part in parts:
        try:
            if isUnixDatagram(part) and unixgram:
                parseUnixDatagram(part)
                values.append(part)
                continue
            if not part.isdigit() and part.split(":")[0].lower() not in ("udp", "udp6"):
                raise ValueError(f"expected {forms}")
            values.append(str(parseUdpEndpoint(part)))
        except ValueError as e:
            raise _Invalid(f"{part!r}: {e}" if len(parts) > 1 else str(e)) from None
    if not values:
        raise _Invalid("expected at least one endpoint, e.g. udp:8007:interface=127.0.0.1")
    return tuple(values)


@dataclass(frozen=True)
class DiscoveryConfig:
    """
    C{[discovery]}: announce this instance over UDP broadcast, answer
    queries, and keep a table of the other instances heard.
    """

    enabled: bool = _setting(True, parseBool, "yes or no", "Run the discovery service.")
    port: int = _setting(
        8009,
        _intRange(1, 65535),
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
        _intRange(1, 3600),
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
        _intRange(1, 1_000_000),
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
        _intRange(1, 3600),
        "whole seconds from 1 to 3600",
        "Forget a peer after at most this long (or ttl, if longer) without news, "
        "whatever ttl it announces.",
    )
    max_peers_per_source: int = _setting(
        16,
        _intRange(1, 1024),
        "a whole number from 1 to 1024",
        "Peers one source (address and port) may place in the table.",
    )
    max_ports_per_source: int = _setting(
        64,
        _intRange(1, 1024),
        "a whole number from 1 to 1024",
        "Distinct ports one source may announce (and so have the loop guards refuse).",
    )


def parseInterfaceNames(text: str) -> tuple[str, ...]:
    """
    Parse C{all} or one or more interface names (C{eth0 wlan0}), separated
    by spaces or commas.
    """
    names = tuple(text.replace(",", " ").split())
    if names == ("all",):
        return names
    if not names or any(
        n == "all" or len(n) > 15 or not all(c.isalnum() or c in "-_.@" for c in n) for n in names
    ):
        raise _Invalid("expected all, or one or more interface names such as eth0")
    return names


def parseFamilies(text: str) -> tuple[str, ...]:
    """
    Parse C{ipv4}, C{ipv6} or both (C{ipv4 ipv6}).
    """
    families = tuple(dict.fromkeys(text.replace(",", " ").lower().split()))
    if not families or any(f not in ("ipv4", "ipv6") for f in families):
        raise _Invalid("expected ipv4, ipv6, or both: ipv4 ipv6")
    return families


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
        _intRange(1, 1_000_000),
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


def parseOptionalUdpEndpoints(text: str) -> tuple[str, ...]:
    """
    Parse UDP endpoint descriptions as L{parseUdpEndpoints} does, without
    C{unixgram:} (the small services answer over UDP only), or nothing
    (no UDP listener).
    """
    return _udpEndpoints(text, unixgram=False) if text.strip() else ()


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
        _intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while this many are open.",
    )
    backlog: int = _setting(
        1024,
        _intRange(1, 65535),
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
_REFUSED_KEYS = {
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
        _intRange(1, 1_000_000),
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


#: RFC 865: a quote should be shorter than 512 characters.
MAX_QUOTE = 512


def readQuotes(path: str) -> tuple[str, ...]:
    """
    The quotes of a quotes file: paragraphs separated by blank lines, each
    kept as written (lines joined with CRLF).

    @raise OSError: when the file cannot be read.
    @raise ValueError: when it is not UTF-8, holds no quote, or a quote is
        longer than L{MAX_QUOTE} bytes; the message says which.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    quotes = []
    for paragraph in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        lines = [line.rstrip() for line in paragraph.strip("\n").split("\n")]
        quote = "\r\n".join(lines).strip()
        if not quote:
            continue
        if len(quote.encode("utf-8")) > MAX_QUOTE:
            raise ValueError(
                f"the quote that starts {quote[:30]!r} is longer than {MAX_QUOTE} bytes"
            )
        quotes.append(quote)
    if not quotes:
        raise ValueError("the file holds no quote")
    return tuple(quotes)


def parseQuotesFile(text: str) -> str:
    """
    Parse the path of a file of quotes (see L{readQuotes}), made absolute;
    empty means the built-in quote.
    """
    path = text.strip()
    if not path:
        return ""
    try:
        readQuotes(path)
    except (OSError, UnicodeDecodeError):
        raise _Invalid(
            "expected the path of a readable UTF-8 text file (or nothing, for the built-in quote)"
        ) from None
    except ValueError as e:
        raise _Invalid(f"{e}; expected quotes separated by blank lines") from None
    return str(Path(path).absolute())


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



#: First path segments the web service uses itself, so a static mount may not.
_WEB_RESERVED = frozenset({"status", "health", "metrics"})
_MOUNT_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@-]+$")


def parseMount(text: str) -> str:
    """
    Parse the URL path where static files are mounted, e.g. C{/static/} or
    C{/files/pub/}: one or more plain path segments, returned in the
    canonical form C{/a/b/}.
    """
    segments = [s for s in text.strip().split("/") if s]
    allowed = (
        "expected a URL path such as /static/ or /files/pub/ (plain segments, "
        "not /, . or .., and not under /status, /health or /metrics)"
    )
    if not segments or segments[0] in _WEB_RESERVED:
        raise _Invalid(allowed)
    for segment in segments:
        if segment in (".", "..") or not _MOUNT_SEGMENT.match(segment):
            raise _Invalid(allowed)
    return "/" + "/".join(segments) + "/"


def parseDirectory(text: str) -> str:
    """
    Parse the path of an existing directory, made absolute; empty means
    "none".
    """
    path = text.strip()
    if not path:
        return ""
    try:
        isDirectory = Path(path).is_dir()
    except (OSError, ValueError):  # a name too long, a NUL byte...
        isDirectory = False
    if not isDirectory:
        raise _Invalid("expected the path of an existing directory (or nothing, for none)")
    return str(Path(path).absolute())


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
        _intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while this many are open.",
    )
    max_connections_per_peer: int = _setting(
        256,
        _intRange(0, 10_000_000),
        "a whole number >= 0 (0 means no limit)",
        "Close new connections at once while one IP address has this many open.",
    )
    backlog: int = _setting(
        1024,
        _intRange(1, 65535),
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
        _LOOPBACK_NETWORKS,
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
        _intRange(1, 1_000_000),
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
        _choice("debug", "info", "warn", "error", "critical"),
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
        _intRange(1, 256),
        "a whole number from 1 to 256",
        "Worker processes sharing every stream listener; above 1, a parent binds "
        "the listeners, supervises the workers and restarts any that dies.",
    )
    reactor: str = _setting(
        "nsepoll",
        _choice("nsepoll", "twisted"),
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
        parseOptionalPath,
        "a path to a PEM file, or empty",
        "Server certificate, followed by its intermediate certificates "
        "(and the private key when key is empty).",
    )
    key: str = _setting(
        "",
        parseOptionalPath,
        "a path to a PEM file, or empty (the key is in the certificate file)",
        "Private key of the certificate.",
    )
    minimum_version: str = _setting(
        "1.2",
        _choice("1.2", "1.3"),
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


def _attribute(section: str) -> str:
    return section.replace("-", "_")


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def parseText(section: str, key: str, text: str) -> Any:
    """
    Parse one value of C{[section] key}.

    @raise ValueError: with a message that says what is allowed.
    """
    parse: Parser = _fields(SECTIONS[section])[key].metadata["parse"]
    return parse(text)


def parseValue(source: str, section: str, key: str, text: str) -> Any:
    """
    Parse one value of C{[section] key}, raising L{ConfigError} that names
    C{source}, the section, the key, the value and what is allowed.
    """
    try:
        return parseText(section, key, text)
    except _Invalid as e:
        raise ConfigError(f"{source}: [{section}] {key} = {text.strip()!r}: {e}") from None


#: What starts a comment: a whole line, or the rest of a line after
#: whitespace.
_COMMENT_PREFIXES = ("#", ";")


def _syntaxProblem(error: configparser.Error) -> str:
    """
    Say what is wrong with the INI syntax, and where, in one line.
    """
    if isinstance(error, configparser.MissingSectionHeaderError):
        return (
            f"line {error.lineno}: {error.line.strip()!r} is outside any section; "
            "start the file with a section header such as [echo]"
        )
    if isinstance(error, configparser.DuplicateOptionError):
        return f"line {error.lineno}: [{error.section}] {error.option} is set twice"
    if isinstance(error, configparser.DuplicateSectionError):
        return f"line {error.lineno}: section [{error.section}] appears twice"
    if isinstance(error, configparser.ParsingError):
        lineno, quoted = error.errors[0]  # the line, as repr() shows it
        line = quoted[1:-1].replace("\\n", "").strip()
        return f"line {lineno}: cannot parse {line!r}; expected key = value"
    return " ".join(str(error).split())


def parseConfig(text: str, source: str = "<string>") -> Config:
    """
    Parse the text of a tap.conf into a L{Config}.  Keys that are absent keep
    their defaults.

    @raise ConfigError: for a syntax error, an unknown section or key, or a
        bad value.
    """
    # A "#" or ";" starts a comment on its own line, or after whitespace at
    # the end of a value (configparser only cuts an inline prefix that follows
    # whitespace), so "tcp:8007  # local only" is "tcp:8007" while endpoint
    # strings and paths that hold "#" or ";" themselves keep them.
    parser = configparser.RawConfigParser(
        strict=True, delimiters=("=",), comment_prefixes=_COMMENT_PREFIXES,
        inline_comment_prefixes=_COMMENT_PREFIXES,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=source)
    except configparser.Error as e:
        raise ConfigError(f"{source}: {_syntaxProblem(e)}") from None
    sections: dict[str, Any] = {}
    for name in parser.sections():
        cls = SECTIONS.get(name)
        if cls is None:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(f"{source}: unknown section [{name}]; known sections: {known}")
        fields = _fields(cls)
        values = {}
        for key, raw in parser.items(name):
            if (name, key) in _REFUSED_KEYS:
                raise ConfigError(f"{source}: [{name}] {key}: {_REFUSED_KEYS[name, key]}")
            if key not in fields:
                known = ", ".join(fields)
                raise ConfigError(f"{source}: [{name}] unknown key {key!r}; known keys: {known}")
            values[key] = parseValue(source, name, key, raw)
        sections[_attribute(name)] = cls(**values)
    return Config(source=source, **sections)


def loadConfig(path: str | Path) -> Config:
    """
    Read and parse the tap.conf at C{path}.

    @raise ConfigError: when the file cannot be read or is not valid.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the configuration file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    return parseConfig(text, source)


def replaceSection(config: Config, section: str, **changes: Any) -> Config:
    """
    Return C{config} with some keys of one section replaced, e.g. by
    command-line flags.
    """
    attribute = _attribute(section)
    updated = dataclasses.replace(getattr(config, attribute), **changes)
    return dataclasses.replace(config, **{attribute: updated})


def describe(section: str) -> Sequence[tuple[str, str, str, Any]]:
    """
    List C{(key, allowed, doc, default)} for every key of a section; the
    documentation and the tests read it.
    """
    return [
        (f.name, f.metadata["allowed"], f.metadata["doc"], f.default)
        for f in dataclasses.fields(SECTIONS[section])
    ]
