# -*- test-case-name: tests.unit.web.test_httplimits -*-
"""
L{LimitedRequest}: the request of a L{LimitedSite<services.web._site.LimitedSite>},
with its body limit and the site's cached C{Date} and C{Server} headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.python.failure import Failure
from twisted.web.http import unquote
from twisted.web.server import Request

from services._twisted.webbase import IEncodingResource, answerStar, setEncoder

if TYPE_CHECKING:
    from services.web._channel import LimitedChannel

__all__ = ["LimitedRequest"]


class LimitedRequest(Request):
    """
    A request that stops taking a chunked body once it exceeds the
    channel's C{maxBody}, and takes its C{Date} header from the site's
    per-second cache.
    """

    channel: LimitedChannel
    _bodyReceived = 0

    def process(self) -> None:
        """
        Find the resource and render it, as L{Request.process} does, with
        the C{Date} header formatted once a second by the site instead of
        once per request.
        """
        self.site = site = self.channel.site
        server = site.limits.serverHeader
        if server:
            self.setHeader(b"Server", server)
        self.setHeader(b"Date", site.httpDate())
        self.prepath = []
        self.postpath = list(map(unquote, self.path[1:].split(b"/")))
        if self.path == b"*":
            answerStar(self)
            return
        try:
            resource = site.getResourceFor(self)
            if IEncodingResource.providedBy(resource):
                encoder = resource.getEncoder(self)
                if encoder is not None:
                    setEncoder(self, encoder)
            self.render(resource)
        except BaseException:  # noqa: BLE001 (as Request.process: every failure is a 500)
            self.processingFailed(Failure())

    def handleContentChunk(self, data: bytes) -> None:
        """
        Store a piece of the body, unless the body is now too large: then
        the channel answers 413 and this request never runs.
        """
        self._bodyReceived += len(data)
        limit = self.channel.factory.limits.maxBody
        if limit and self._bodyReceived > limit:
            self.channel.bodyTooLarge()
            return
        Request.handleContentChunk(self, data)
