# -*- test-case-name: tests.unit.web.test_leanrequest -*-
"""
L{LimitedRequest}: the request of a L{LimitedSite<services.web._site.LimitedSite>},
with its body limit, the site's cached C{Date} and C{Server} headers, and a
lean answer for the common case.

A resource that returns its whole body (C{bytes}) from C{render} is
answered, on an HTTP/1.1 connection, by L{LimitedRequest.render} itself:
the C{Content-Length} and default C{Content-Type} set as twisted.web sets
them, and the status line, headers and body handed to the transport in one
write (one TLS record, one C{send()}), where twisted.web checks the headers
again in two C{write} methods and writes the headers and the body apart.
Whatever that path does not cover (HEAD, a body that is not C{bytes}, an
encoder, cookies, C{Last-Modified} or C{ETag} set as attributes, a
response without a body, HTTP/2 streams) takes twisted.web's path
unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.python.failure import Failure
from twisted.web.error import UnsupportedMethod
from twisted.web.http import NO_BODY_CODES, parse_qs, unquote
from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET, Request

from services._twisted.webbase import (
    IEncodingResource,
    answerStar,
    hasPlainAnswer,
    rawHeaders,
    setEncoder,
)

if TYPE_CHECKING:
    from services.web._channel import LimitedChannel

__all__ = ["LimitedRequest"]


class _Rendered:
    """
    A resource that was rendered already: hands twisted.web's
    C{Request.render} the body it returned, so that the cases the lean path
    leaves to twisted.web are answered by its code, without rendering the
    resource twice.  Its C{repr} is the resource's, for the error page of a
    body that is not C{bytes}.
    """

    def __init__(self, body: Any, resource: IResource) -> None:
        self._body = body
        self._resource = resource

    def render(self, request: Any) -> Any:
        return self._body

    def __repr__(self) -> str:
        return repr(self._resource)


class LimitedRequest(Request):
    """
    A request that stops taking a chunked body once it exceeds the
    channel's C{maxBody}, takes its C{Date} header from the site's
    per-second cache, and sends a whole-body answer in one write.
    """

    channel: LimitedChannel
    _bodyReceived = 0

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        The request is complete: as L{Request.requestReceived}, which reads
        the body's length and type only to parse the form of a POST,
        without reading them for any other method.
        """
        if command == b"POST":
            Request.requestReceived(self, command, path, version)
            return
        self.content.seek(0, 0)
        self.method, self.uri = command, path
        self.clientproto = version
        query = path.find(b"?")
        if query < 0:
            self.path = path
            self.args = {}
        else:
            self.path = path[:query]
            self.args = parse_qs(path[query + 1 :], 1)
        self.process()

    def process(self) -> None:
        """
        Find the resource and render it, as L{Request.process} does, with
        the C{Date} header formatted once a second by the site instead of
        once per request.
        """
        self.site = site = self.channel.site
        headers = rawHeaders(self.responseHeaders)
        # Canonical names and clean values (the site sanitized its Server
        # header once): set as setHeader would store them.
        server = site.serverHeaderValue
        if server:
            headers[b"Server"] = [server]
        headers[b"Date"] = [site.httpDate()]
        self.prepath = []
        segments = self.path[1:].split(b"/")
        # unquote changes nothing without a "%": one call per segment saved.
        self.postpath = list(map(unquote, segments)) if self.path.find(b"%") >= 0 else segments
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

    def render(self, resrc: IResource) -> None:
        """
        Render C{resrc} and send its answer: a whole C{bytes} body in one
        write (L{LimitedChannel.writeResponse}), anything else as
        L{Request.render} does.
        """
        if not getattr(self.channel, "leanPath", False):
            Request.render(self, resrc)
            return
        try:
            body = resrc.render(self)
        except UnsupportedMethod:
            # twisted.web's answers: HEAD as GET, 405 or 501.  It renders
            # the resource again, which raised before doing anything.
            Request.render(self, resrc)
            return
        if body is NOT_DONE_YET:
            return
        if body.__class__ is not bytes or not self._sendWhole(body):
            Request.render(self, _Rendered(body, resrc))  # type: ignore[arg-type]

    def _sendWhole(self, body: bytes) -> bool:
        # Request.render's setHeader(Content-Length), write(body), finish(),
        # and the header logic of both Request.write methods for a response
        # they would not chunk, in one transport write.  False (nothing
        # done) for what only they handle.
        if (
            self.method == b"HEAD"
            or self.startedWriting
            or not hasPlainAnswer(self)
            or self.finished
            or self.cookies
            or self.lastModified is not None
            or self.etag is not None
            or self.code in NO_BODY_CODES
        ):
            return False
        headers = rawHeaders(self.responseHeaders)
        size = len(body)
        headers[b"Content-Length"] = [b"%d" % (size,)]
        if size and not headers.get(b"Content-Type") and self.defaultContentType is not None:
            headers[b"Content-Type"] = [self.defaultContentType]
        self.startedWriting = 1
        self.sentLength += size
        self.channel.writeResponse(
            self.clientproto, b"%d" % (self.code,), self.code_message, self.responseHeaders, body
        )
        self.finish()
        return True

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
