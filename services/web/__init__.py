# -*- test-case-name: tests.unit.web.test_web -*-
"""
The HTTP service: a Site with limits, HTTP/2, static files, status, health and metrics.

What a program of its own needs to serve these in its own Twisted
application:

  - L{LimitedSite} and its L{HTTPLimits}: a C{twisted.web.server.Site} with a
    header deadline, a body limit, connection caps, send and idle timeouts,
    counters and an access log that never fails a response;
  - L{HTTP2Factory}: the factory of an C{ssl:} listener that offers HTTP/2
    (ALPN C{h2}) with the same limits;
  - L{StaticFile}: a C{twisted.web.static.File} with ETags, containment in
    its root, merged byte ranges and sendfile;
  - the resources: L{Hello}, L{JSONResource}, L{StatusResource} and
    L{LazyMetricsResource};
  - L{buildResource}, the whole resource tree, and L{makeWebService}, the
    service with its listeners (a L{WebService}), both built from
    L{WebSettings} (and, in a worker process, L{WorkerReports}).

L{StaticFile} and L{HTTP2Factory} are imported when first asked for:
C{twisted.web.static} reads the system's MIME types when imported, and
HTTP/2 needs the h2 package.
"""

from __future__ import annotations

from typing import Any

from services.web._metrics import LazyMetricsResource
from services.web._pages import Hello, JSONResource
from services.web._service import WebService, buildResource, makeWebService
from services.web._settings import HTTPLimits, WebSettings, WorkerReports
from services.web._site import LimitedSite
from services.web._statuspage import StatusResource

__all__ = [
    "HTTP2Factory",
    "HTTPLimits",
    "Hello",
    "JSONResource",
    "LazyMetricsResource",
    "LimitedSite",
    "StaticFile",
    "StatusResource",
    "WebService",
    "WebSettings",
    "WorkerReports",
    "buildResource",
    "makeWebService",
]

#: The names imported when first asked for, and their modules.
_LAZY = {
    "StaticFile": "services.web._static",
    "HTTP2Factory": "services.web._http2factory",
}


def __getattr__(name: str) -> Any:
    """
    Import L{StaticFile} or L{HTTP2Factory} when first asked for.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
