# -*- test-case-name: tests.unit.discovery.test_wire -*-
"""
The discovery wire format, version 1.

Every datagram is one compact JSON object in UTF-8, at most
L{MAX_DATAGRAM} bytes, whose C{"netservices"} member is the version
(the magic that tells our datagrams from anything else on the port) and
whose C{"type"} says what it is::

    {"netservices":1,"type":"announce","id":"<32 hex>","name":"alpha",
     "ttl":15,"services":{"echo":[8007],"web":[8080]},
     "endpoints":{"echo":["198.18.0.1:8007"],"web":["198.18.0.1:8080"]}}
    {"netservices":1,"type":"query","nonce":"<16 to 64 hex>","pad":"....."}
    {"netservices":1,"type":"reply","id":"<32 hex>","name":"alpha",
     "ttl":15,"services":{"echo":[8007]},"nonce":"<the query's nonce>"}

Members that a version does not know are ignored, so version 1 may grow
optional members; anything else is a new version.  C{"endpoints"} is such
a member: where each service can be reached from where the datagram is
heard (C{host:port}, C{[host]:port} for IPv6).  An instance that sends no
endpoints is reached at the datagram's source address on each port of its
C{"services"}.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = [
    "ANNOUNCE",
    "ForeignDatagram",
    "MAGIC",
    "MAX_DATAGRAM",
    "MAX_ENDPOINTS",
    "MalformedDatagram",
    "Message",
    "QUERY",
    "REPLY",
    "VERSION",
    "decode",
    "encode",
    "isEndpoint",
    "isServiceName",
    "newInstanceId",
    "newNonce",
    "query",
]

#: The member that marks our datagrams; its value is the version.
MAGIC = "netservices"
#: The version this module speaks.
VERSION = 1
#: No datagram of the protocol is larger (it fits any path's MTU).
MAX_DATAGRAM = 1200
#: Message types.
ANNOUNCE, QUERY, REPLY = "announce", "query", "reply"
#: At most this many services, and ports per service, in a message.
MAX_SERVICES = 16
MAX_PORTS = 16
#: At most this many endpoints per service in a message.
MAX_ENDPOINTS = 16

_ID = re.compile(r"[0-9a-f]{32}")
_NONCE = re.compile(r"[0-9a-f]{16,64}")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ForeignDatagram(ValueError):
    """
    The datagram is not of this protocol (or of another version of it).
    """


class MalformedDatagram(ValueError):
    """
    The datagram claims to be of this protocol but a member is missing or
    wrong.
    """


@dataclass(frozen=True)
class Message:
    """
    One datagram of the protocol.

    @ivar type: L{ANNOUNCE}, L{QUERY} or L{REPLY}.
    @ivar id: the sender's instance id, 32 hex digits (announce, reply).
    @ivar name: the sender's name (announce, reply).
    @ivar ttl: seconds the sender may be remembered (announce, reply).
    @ivar services: service name to its port numbers (announce, reply).
    @ivar nonce: chosen by a query, echoed by its replies.
    @ivar endpoints: service name to C{host:port} endpoints (announce,
        reply), or L{None} when the sender gave none.
    """

    type: str
    id: str = ""
    name: str = ""
    ttl: int = 0
    services: Mapping[str, Sequence[int]] = field(default_factory=dict)
    nonce: str = ""
    endpoints: Mapping[str, Sequence[str]] | None = None


def newInstanceId() -> str:
    """
    A fresh random instance id.
    """
    return uuid.uuid4().hex


def newNonce() -> str:
    """
    A fresh random nonce for a query.
    """
    return secrets.token_hex(8)


def encode(message: Message) -> bytes:
    """
    The datagram for an announce or a reply.

    @raise ValueError: if it would be larger than L{MAX_DATAGRAM}.
    """
    body: dict[str, Any] = {
        MAGIC: VERSION,
        "type": message.type,
        "id": message.id,
        "name": message.name,
        "ttl": message.ttl,
        "services": {name: list(ports) for name, ports in message.services.items()},
    }
    if message.endpoints is not None:
        body["endpoints"] = {name: list(found) for name, found in message.endpoints.items()}
    if message.type == REPLY:
        body["nonce"] = message.nonce
    data = _dumps(body)
    if len(data) > MAX_DATAGRAM:
        raise ValueError(f"a {message.type} of {len(data)} bytes exceeds {MAX_DATAGRAM}")
    return data


def query(nonce: str, size: int = MAX_DATAGRAM) -> bytes:
    """
    A query datagram padded to C{size} bytes (or as small as it can be, if
    C{size} is smaller), so that it may be answered: no reply is ever
    larger than its query.
    """
    data = _dumps({MAGIC: VERSION, "type": QUERY, "nonce": nonce})
    room = min(size, MAX_DATAGRAM) - len(data) - len(',"pad":""')
    if room >= 0:
        data = data[:-1] + b',"pad":"' + b"." * room + b'"}'
    return data


def decode(data: bytes) -> Message:
    """
    Read one datagram.

    @raise ForeignDatagram: if it is not ours.
    @raise MalformedDatagram: if it is ours but unusable.
    """
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ForeignDatagram("not UTF-8 JSON") from None
    if not isinstance(body, dict) or MAGIC not in body:
        raise ForeignDatagram(f"no {MAGIC!r} member")
    version = body[MAGIC]
    if type(version) is not int or version != VERSION:
        raise ForeignDatagram("another version of the protocol")
    kind = body.get("type")
    if kind == QUERY:
        return Message(QUERY, nonce=_nonce(body))
    if kind not in (ANNOUNCE, REPLY):
        raise MalformedDatagram("unknown type")
    return Message(
        kind,
        id=_text(body, "id", _ID),
        name=_name(body),
        ttl=_ttl(body),
        services=_services(body),
        nonce=_nonce(body) if kind == REPLY else "",
        endpoints=_endpoints(body),
    )


def isServiceName(name: str) -> bool:
    """
    Whether C{name} may name a service on the wire: 1 to 32 lowercase
    letters, digits, C{.}, C{_} or C{-}, starting with a letter or digit.
    """
    return isinstance(name, str) and _SERVICE.fullmatch(name) is not None


def _text(body: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = body.get(key)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise MalformedDatagram(f"missing or bad {key}")
    return value


def _nonce(body: dict[str, Any]) -> str:
    return _text(body, "nonce", _NONCE)


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable():
        raise MalformedDatagram("missing or bad name")
    return name


def _isPort(value: Any) -> bool:
    return type(value) is int and 1 <= value <= 65535


def _ttl(body: dict[str, Any]) -> int:
    ttl = body.get("ttl")
    if type(ttl) is not int or not 1 <= ttl <= 3600:
        raise MalformedDatagram("missing or bad ttl")
    return ttl


def _services(body: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    services = body.get("services")
    if not isinstance(services, dict) or len(services) > MAX_SERVICES:
        raise MalformedDatagram("missing or bad services")
    found = {}
    for name, ports in services.items():
        if (
            _SERVICE.fullmatch(name) is None
            or not isinstance(ports, list)
            or len(ports) > MAX_PORTS
            or not all(_isPort(p) for p in ports)
        ):
            raise MalformedDatagram("bad service entry")
        found[name] = tuple(ports)
    return found


def isEndpoint(text: Any) -> bool:
    """
    Whether C{text} is an endpoint of the wire: C{a.b.c.d:port} or
    C{[IPv6]:port}, with a port from 1 to 65535.
    """
    if not isinstance(text, str) or len(text) > 47:
        return False
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        return False
    try:
        if host.startswith("[") and host.endswith("]"):
            return ipaddress.ip_address(host[1:-1]).version == 6
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


def _endpoints(body: dict[str, Any]) -> dict[str, tuple[str, ...]] | None:
    endpoints = body.get("endpoints")
    if endpoints is None:
        return None
    if not isinstance(endpoints, dict) or len(endpoints) > MAX_SERVICES:
        raise MalformedDatagram("bad endpoints")
    found = {}
    for name, texts in endpoints.items():
        if (
            _SERVICE.fullmatch(name) is None
            or not isinstance(texts, list)
            or len(texts) > MAX_ENDPOINTS
            or not all(isEndpoint(t) for t in texts)
        ):
            raise MalformedDatagram("bad endpoints entry")
        found[name] = tuple(texts)
    return found
