# -*- test-case-name: tests.unit.web.test_metrics,tests.unit.web.test_web -*-
"""
Counters that services update and that C{/status} and C{/metrics} read.

They are plain attributes so that the data path pays one integer addition
per event; readers take a L{snapshot}.

Why one module: every service's counters are declared here and nowhere
else (tests.unit.test_stats checks it), so that C{/status} and C{/metrics}
have one place to read what each field means, and the decorator that makes
the slotted classes without compiling methods at import sits beside the
only classes it is for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

__all__ = [
    "ConnectionStats",
    "Counters",
    "DatagramAnswerStats",
    "DiscoveryStats",
    "MDNSStats",
    "UdpEchoStats",
    "WebStats",
]


_C = TypeVar("_C", bound="type[Counters]")


class Counters:
    """
    Base of the counters classes: a snapshot of every field, and which
    fields are current values (gauges) rather than running totals.

    The methods C{@dataclass(slots=True)} would compile for each class at
    import (C{__init__}, C{__repr__}, C{__eq__}) are written here once
    and read the class's fields (see L{dataclass} below).
    """

    __slots__ = ()

    #: The names of the fields that are current values, not totals.
    gauges: ClassVar[frozenset[str]] = frozenset({"current"})

    #: Each field's name and default, in order (set by L{dataclass}).
    __counterFields__: ClassVar[tuple[tuple[str, Any], ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        table = cls.__counterFields__
        if len(args) > len(table):
            raise TypeError(
                f"{cls.__qualname__}.__init__() takes from 1 to {len(table) + 1} positional "
                f"arguments but {len(args) + 1} were given"
            )
        names = [name for name, _ in table]
        for name in kwargs:
            if name not in names:
                raise TypeError(
                    f"{cls.__qualname__}.__init__() got an unexpected keyword argument {name!r}"
                )
            if names.index(name) < len(args):
                raise TypeError(
                    f"{cls.__qualname__}.__init__() got multiple values for argument {name!r}"
                )
        for index, (name, default) in enumerate(table):
            value = args[index] if index < len(args) else kwargs.get(name, default)
            setattr(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self.__counterFields__)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return all(
                getattr(self, name) == getattr(other, name) for name, _ in self.__counterFields__
            )
        return NotImplemented

    def snapshot(self) -> dict[str, int]:
        """
        A copy of every counter, by name.
        """
        return asdict(self)  # type: ignore[call-overload]


@dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)
class _Reference:
    """
    One class made by the standard decorator, for what L{_slotted}
    copies: its parameters record and its fields' kind.
    """

    field: int = 0


def _slotted(cls: type[Counters]) -> Any:
    """
    What C{dataclasses.dataclass(init=False, repr=False, eq=False,
    slots=True)} makes of a counters class whose fields are all C{int}
    with an C{int} default (beside C{ClassVar}s, which this module's
    C{ClassVar} names): a new class with those
    slots, the same fields, C{__match_args__} and parameters record.  The
    standard decorator matches each string annotation against
    C{ClassVar} and C{InitVar} with regular expressions and builds the
    class twice; L{None} for any other class, which it makes instead.
    """
    namespace = cls.__dict__
    annotations = namespace.get("__annotations__", {})
    if cls.__bases__ != (Counters,) or type(cls) is not type or not namespace.get("__doc__"):
        return None
    names = []
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name, annotation in annotations.items():
        if annotation == "int" and type(namespace.get(name)) is int:
            names.append(name)
            kind, onlyByKeyword = _FIELD, False
        elif annotation.startswith("ClassVar[") and "InitVar" not in annotation and name in namespace:
            kind, onlyByKeyword = _FIELD_CLASSVAR, dataclasses.MISSING
        else:
            return None
        field = dataclasses.field(default=namespace[name])
        field.name, field.type, field.kw_only = name, annotation, onlyByKeyword
        field._field_type = kind  # type: ignore[attr-defined]
        fields[name] = field
    body = {k: v for k, v in namespace.items() if k not in names and k not in ("__dict__", "__weakref__")}
    body["__slots__"] = tuple(names)
    body["__dataclass_fields__"] = fields
    body["__dataclass_params__"] = _Reference.__dataclass_params__  # type: ignore[attr-defined]
    body.setdefault("__match_args__", tuple(names))
    made = type(cls.__name__, cls.__bases__, body)
    made.__qualname__ = cls.__qualname__
    return made


_FIELD = dataclasses.fields(_Reference)[0]._field_type  # type: ignore[attr-defined]
_FIELD_CLASSVAR = dataclasses._FIELD_CLASSVAR  # type: ignore[attr-defined]


if TYPE_CHECKING:
    from dataclasses import dataclass
else:

    def dataclass(*, slots: bool) -> Any:
        """
        C{@dataclass(slots=True)} for the counters classes: the standard
        decorator collects the fields and adds the slots, L{Counters} has
        the methods, so that none is compiled at import.
        """
        if not slots:
            raise TypeError("the counters classes have slots")

        def counters(cls: _C) -> _C:
            made = _slotted(cls)
            if made is None:
                made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
            made.__counterFields__ = tuple((f.name, f.default) for f in dataclasses.fields(made))
            made.__hash__ = None  # mutable and compared by value, as a dataclass
            return made

        return counters


@dataclass(slots=True)
class ConnectionStats(Counters):
    """
    Counters of a stream service.

    @ivar current: connections open now.
    @ivar accepted: connections accepted since start.
    @ivar refused: connections closed at once because of the connection limit.
    @ivar timedOut: connections closed by the idle timeout.
    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes written back.
    @ivar proxyMalformed: connections closed for a malformed PROXY header
        (C{haproxy:} listeners).
    @ivar proxyTimedOut: connections closed for sending no PROXY header in
        time (C{haproxy:} listeners).
    @ivar oversize: records dropped for being larger than the largest one
        echoed whole (C{unixseq:} listeners).
    @ivar sendTimeouts: connections aborted because the peer read none of
        its echo for C{send_timeout} (while the echo was paused).
    @ivar proxyUntrusted: connections closed because they came to a
        C{haproxy:} listener from outside C{trusted_proxies}.
    """

    current: int = 0
    accepted: int = 0
    refused: int = 0
    timedOut: int = 0
    bytesIn: int = 0
    bytesOut: int = 0
    proxyMalformed: int = 0
    proxyTimedOut: int = 0
    oversize: int = 0
    sendTimeouts: int = 0
    proxyUntrusted: int = 0


@dataclass(slots=True)
class WebStats(Counters):
    """
    Counters of the web service.

    @ivar current: connections open now.
    @ivar accepted: connections accepted since start.
    @ivar refused: connections closed at once because of a connection limit
        (total or per peer).
    @ivar requests: responses sent, one per line of the access log (408
        and 413 answers included).
    @ivar responses2xx: successful responses.
    @ivar responses3xx: redirects and C{304 Not Modified}.
    @ivar responses4xx: client errors.
    @ivar responses5xx: server errors.
    @ivar headerTimeouts: connections answered C{408} and closed because the
        request headers did not arrive within C{header_timeout}.
    @ivar bodyTooLarge: requests answered C{413} because the body was larger
        than C{max_body}.
    @ivar idleTimeouts: connections closed after C{idle_timeout} of silence.
    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes of response bodies sent.
    @ivar proxyMalformed: connections closed for a malformed PROXY header
        (C{haproxy:} listeners).
    @ivar proxyTimedOut: connections closed for sending no PROXY header in
        time (C{haproxy:} listeners).
    @ivar sendTimeouts: connections aborted because their client read none
        of a response for C{send_timeout}.
    @ivar accessLogErrors: access log lines that could not be written (a
        full disk...); their requests were answered.
    @ivar proxyUntrusted: connections closed because they came to a
        C{haproxy:} listener from outside C{trusted_proxies}.
    @ivar http2Errors: HTTP/2 connections closed for a protocol error or
        abuse: floods of control frames or of stream resets, endless
        CONTINUATION frames, oversized (HPACK bomb) headers, more streams
        than C{max_streams}.
    """

    current: int = 0
    accepted: int = 0
    refused: int = 0
    requests: int = 0
    responses2xx: int = 0
    responses3xx: int = 0
    responses4xx: int = 0
    responses5xx: int = 0
    headerTimeouts: int = 0
    bodyTooLarge: int = 0
    idleTimeouts: int = 0
    bytesIn: int = 0
    bytesOut: int = 0
    proxyMalformed: int = 0
    proxyTimedOut: int = 0
    sendTimeouts: int = 0
    accessLogErrors: int = 0
    proxyUntrusted: int = 0
    http2Errors: int = 0


@dataclass(slots=True)
class DiscoveryStats(Counters):
    """
    Counters of the discovery service.

    @ivar received: datagrams received.
    @ivar oversize: datagrams dropped for being larger than the protocol's
        1200-byte limit.
    @ivar foreign: datagrams dropped for not being ours (not our JSON, or
        another version).
    @ivar malformed: datagrams of our protocol with a missing or bad field.
    @ivar own: our own datagrams, heard back and ignored.
    @ivar announcesSent: announces broadcast.
    @ivar announcesHeard: announces from other instances.
    @ivar queriesHeard: queries received.
    @ivar repliesSent: replies sent to queries.
    @ivar repliesHeard: replies to our own queries.
    @ivar unsolicited: replies that answer no query of ours, dropped.
    @ivar loopGuarded: queries not answered because of their source port
        (below 1024, or one of our service ports).
    @ivar rateLimited: queries not answered because of the rate limits.
    @ivar smallQueries: queries not answered because the reply would have
        been larger than the query.
    @ivar sendErrors: datagrams the system refused to send.
    @ivar errors: datagrams whose handling failed unexpectedly.
    @ivar peers: peers known now.
    @ivar peersExpired: peers forgotten after their ttl.
    @ivar peersRefused: new peers not recorded because the table was full,
        or held as many peers from their source as it may.
    @ivar portsRefused: announced ports left out of a peer's entry because
        its source had announced as many ports as it may.
    @ivar ttlCapped: announces and replies whose ttl was cut to our limit.
    """

    received: int = 0
    oversize: int = 0
    foreign: int = 0
    malformed: int = 0
    own: int = 0
    announcesSent: int = 0
    announcesHeard: int = 0
    queriesHeard: int = 0
    repliesSent: int = 0
    repliesHeard: int = 0
    unsolicited: int = 0
    loopGuarded: int = 0
    rateLimited: int = 0
    smallQueries: int = 0
    sendErrors: int = 0
    errors: int = 0
    peers: int = 0
    peersExpired: int = 0
    peersRefused: int = 0
    portsRefused: int = 0
    ttlCapped: int = 0

    gauges: ClassVar[frozenset[str]] = frozenset({"peers"})


@dataclass(slots=True)
class MDNSStats(Counters):
    """
    Counters of the mDNS responders.

    @ivar received: packets received.
    @ivar malformed: packets that are not mDNS messages (they do not parse,
        or have an opcode other than 0), dropped.
    @ivar offLink: packets from a source address not on the link, ignored.
    @ivar queries: queries answered (with at least one record).
    @ivar suppressed: records left out because the querier knew them.
    @ivar rateLimited: replies not sent because of the rate limits (per
        record, or per source).
    @ivar packetsSent: packets sent.
    @ivar tooLarge: records left out because they would not fit a packet.
    @ivar conflicts: name conflicts that made us rename.
    @ivar sendErrors: packets the system refused to send.
    @ivar errors: packets whose handling failed unexpectedly.
    """

    received: int = 0
    malformed: int = 0
    offLink: int = 0
    queries: int = 0
    suppressed: int = 0
    rateLimited: int = 0
    packetsSent: int = 0
    tooLarge: int = 0
    conflicts: int = 0
    sendErrors: int = 0
    errors: int = 0


@dataclass(slots=True)
class UdpEchoStats(Counters):
    """
    Counters of the UDP echo service.

    @ivar received: datagrams received.
    @ivar echoed: datagrams sent back.
    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes sent back.
    @ivar oversize: datagrams that filled the receive buffer (possibly cut
        short), dropped.
    @ivar loopGuarded: datagrams not echoed because of their source port
        (below 1024, or one of our service ports).
    @ivar rateLimited: datagrams not echoed because of the rate limits.
    @ivar sendErrors: echoes the system refused to send.
    @ivar unbound: datagrams from an unbound UNIX socket (no address to
        echo to), dropped.
    """

    received: int = 0
    echoed: int = 0
    bytesIn: int = 0
    bytesOut: int = 0
    oversize: int = 0
    loopGuarded: int = 0
    rateLimited: int = 0
    sendErrors: int = 0
    unbound: int = 0


@dataclass(slots=True)
class DatagramAnswerStats(Counters):
    """
    Counters of a small service over UDP (discard, daytime, time, qotd).

    @ivar received: datagrams received.
    @ivar answered: answers sent (discard sends none).
    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes of answers sent.
    @ivar oversize: datagrams that filled the receive buffer, dropped.
    @ivar smallRequests: requests not answered because the answer would
        have been larger than the request.
    @ivar loopGuarded: requests not answered because of their source port
        (below 1024, or one of our service ports).
    @ivar rateLimited: requests not answered because of the rate limits.
    @ivar sendErrors: answers the system refused to send.
    """

    received: int = 0
    answered: int = 0
    bytesIn: int = 0
    bytesOut: int = 0
    oversize: int = 0
    smallRequests: int = 0
    loopGuarded: int = 0
    rateLimited: int = 0
    sendErrors: int = 0
