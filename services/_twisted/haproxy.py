# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
twisted.protocols.haproxy: the PROXY header parsers and their result, which
L{services.net.proxyheader} uses under its own wrapper (Twisted exports only
the wrapper and its endpoint), here under public names.
"""

from __future__ import annotations

from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser

from services._twisted import PrivateName, isA

__all__ = [
    "PRIVATE_NAMES",
    "V2_SIGNATURE",
    "InvalidProxyHeader",
    "ProxyInfo",
    "parseV1",
    "parseV2",
]

#: Parse a whole version 1 (text) header, without its CRLF, into a
#: L{ProxyInfo}; raises L{InvalidProxyHeader} (or C{ValueError}...).
parseV1 = V1Parser.parse

#: Parse a whole version 2 (binary) header into a L{ProxyInfo}.
parseV2 = V2Parser.parse

#: The twelve bytes every version 2 header starts with.
V2_SIGNATURE: bytes = V2Parser.PREFIX

_USERS = ("services.net.proxyheader",)

PRIVATE_NAMES = (
    PrivateName(
        "twisted.protocols.haproxy._v1parser:V1Parser.parse",
        "parsing a PROXY protocol version 1 (text) header",
        _USERS,
    ),
    PrivateName(
        "twisted.protocols.haproxy._v2parser:V2Parser.parse",
        "parsing a PROXY protocol version 2 (binary) header",
        _USERS,
    ),
    PrivateName(
        "twisted.protocols.haproxy._v2parser:V2Parser.PREFIX",
        "the binary header's signature, to tell version 2 from version 1 early",
        _USERS,
        shape=isA(bytes),
    ),
    PrivateName(
        "twisted.protocols.haproxy._info:ProxyInfo",
        "the parsed header: source and destination addresses",
        _USERS,
        shape=isA(type),
    ),
    PrivateName(
        "twisted.protocols.haproxy._exceptions:InvalidProxyHeader",
        "the error of a malformed header, counted and dropped",
        _USERS,
        shape=lambda value: isinstance(value, type) and issubclass(value, Exception),
    ),
)
