# -*- test-case-name: tests.unit.web.test_web -*-
"""
Small twisted.web resources with one job each: the hello page, JSON
documents, and the C{405 Method Not Allowed} answer they share.

twisted.web answers C{501 Not Implemented} to methods it does not know
(anything but GET, HEAD and POST) even when the resource exists; these
resources answer C{405} with an C{Allow} header for every method they do not
serve, as RFC 9110 asks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from twisted.web import pages
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

__all__ = ["GetResource", "Hello", "JSONResource", "methodNotAllowed", "notFound"]

#: What the hello page says, as the classic C{BaseHTTPServer} example did.
HELLO = b"Hello World"


def notFound() -> IResource:
    """
    The 404 page for a path nothing serves (for every method and every path
    below it).
    """
    return pages.notFound("Not Found", "Nothing is served at this path.")


def methodNotAllowed(request: IRequest, allowed: Sequence[bytes]) -> bytes:
    """
    Answer C{405 Method Not Allowed} with the C{Allow} header, and return
    the body to send.
    """
    request.setResponseCode(405)
    request.setHeader(b"allow", b", ".join(allowed))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    body = b"405 Method Not Allowed: use " + b" or ".join(allowed) + b"\n"
    request.setHeader(b"content-length", b"%d" % (len(body),))
    return body


class GetResource(Resource):
    """
    A resource without children that serves GET and HEAD with
    C{render_GET} and answers 405 to every other method.
    """

    allowedMethods: Sequence[bytes] = (b"GET", b"HEAD")

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """
        Nothing is below this resource: 404.
        """
        return notFound()

    def render(self, request: IRequest) -> Any:
        """
        Dispatch GET and HEAD to C{render_GET}; answer 405 to the rest.  A
        HEAD response has the GET response's headers, Content-Length
        included, and no body.
        """
        if request.method not in self.allowedMethods:
            return methodNotAllowed(request, self.allowedMethods)
        body = self.render_GET(request)
        if request.method == b"HEAD":
            request.setHeader(b"content-length", b"%d" % (len(body),))
            return b""
        return body

    def render_GET(self, request: IRequest) -> bytes:
        """
        Subclasses say what to send.
        """
        raise NotImplementedError


class Hello(GetResource):
    """
    C{/}: "Hello World" as C{text/html;charset=UTF-8}, with its length.
    """

    def render_GET(self, request: IRequest) -> bytes:
        """
        Send the greeting (HEAD: only its headers).  twisted.web sets the
        C{Content-Length} of a GET response from the body it is given;
        L{GetResource.render} sets it for HEAD.
        """
        request.setHeader(b"content-type", b"text/html;charset=UTF-8")
        return HELLO


class JSONResource(GetResource):
    """
    A JSON document computed on each request by C{document}, which is given
    the request and returns the HTTP status code and a JSON-serializable
    value.
    """

    def __init__(self, document: Callable[[IRequest], tuple[int, Any]]) -> None:
        Resource.__init__(self)
        self.document = document

    def render_GET(self, request: IRequest) -> bytes:
        """
        Send the document, never cached.
        """
        code, value = self.document(request)
        body = json.dumps(value, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return body
