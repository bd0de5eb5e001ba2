# -*- test-case-name: tests.unit.web.test_httplimits -*-
"""
The answers a connection gives by itself, outside any request (400, 408,
413), and L{RejectedRequest}: such an answer as the access log and the
counters see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IAddress

if TYPE_CHECKING:
    from services._twisted.webbase import LimitedChannelBase

__all__ = ["RejectedRequest", "errorBody", "errorResponse"]


def errorBody(code: int, reason: bytes) -> bytes:
    """
    The plain-text body of an answer given outside any request.
    """
    return b"%d %s\n" % (code, reason)


def errorResponse(code: int, reason: bytes) -> bytes:
    """
    A complete C{HTTP/1.1} response with a short plain-text body that
    closes the connection, for answers given outside any request.
    """
    body = errorBody(code, reason)
    return (
        b"HTTP/1.1 %d %s\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n"
        b"\r\n" % (code, reason, len(body))
    ) + body


class RejectedRequest:
    """
    A request that the channel answered itself (400, 408, 413), as the access
    log formatter sees it: what was received of its request line and
    headers, and the answer.
    """

    def __init__(self, channel: LimitedChannelBase, code: int, sentLength: int) -> None:
        self.code = code
        self.sentLength = sentLength
        # A client that never sent its request line has none.
        self.method, self.uri, self.clientproto = channel.requestLine()
        self._peer = channel.transport.getPeer()  # type: ignore[union-attr]
        self._request = channel.requests[-1] if channel.requests else None

    def getClientAddress(self) -> IAddress:
        """
        The client's address.
        """
        return self._peer  # type: ignore[no-any-return]

    def getHeader(self, name: bytes) -> bytes | None:
        """
        A request header received before the answer, if any.
        """
        if self._request is None:
            return None
        header: bytes | None = self._request.getHeader(name)
        return header

