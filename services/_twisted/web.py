# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
twisted.web: the parts of HTTPChannel, Request, Site and static.File that
the limited channel, the access log and the lean static files build on.

This is the registry only, read by the fast-path checks at start-up (so it
imports no twisted.web module until a name is looked up); the uses are in
L{services._twisted.webbase}, imported with the web service.
"""

from __future__ import annotations

from typing import Any

from services._twisted import PrivateName, isA

__all__ = ["PRIVATE_NAMES"]


def _channel() -> Any:
    from twisted.web.http import HTTPChannel

    return HTTPChannel()


def _readingChannel() -> Any:
    # Connected, and in the middle of a request line's headers.
    from twisted.internet.testing import StringTransport

    channel = _channel()
    channel.makeConnection(StringTransport())
    channel.dataReceived(b"GET / HTTP/1.1\r\n")
    return channel


def _site() -> Any:
    from twisted.internet.task import Clock
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    site = Site(Resource(), reactor=Clock())
    site.startFactory()
    return site


def _isInterface(value: Any) -> bool:
    from zope.interface.interface import InterfaceClass

    return isinstance(value, InterfaceClass)


_CHANNEL = ("services.web._channel",)
_REQUEST = ("services.web._request",)
_SITE = ("services.web._site",)

def _headers() -> Any:
    from twisted.web.http_headers import Headers

    return Headers({b"content-length": [b"1"]})


PRIVATE_NAMES = (
    PrivateName(
        "twisted.web.http_headers:Headers._rawHeaders",
        "the headers' dict (canonical name to values), which the request path reads "
        "and sets directly for the names it knows to be canonical",
        (*_CHANNEL, *_REQUEST),
        shape=lambda value: value == {b"Content-Length": [b"1"]},
        instance=_headers,
    ),
    PrivateName(
        "twisted.web.resource:_IEncodingResource",
        "resources that compress their answer (EncodingResourceWrapper), as Request.process",
        _REQUEST,
        shape=_isInterface,
    ),
    PrivateName(
        "twisted.web.server:Request._handleStar",
        "the answer to OPTIONS *, as Request.process gives it",
        _REQUEST,
    ),
    PrivateName(
        "twisted.web.server:Request._encoder",
        "the response encoder a resource asked for, as Request.process sets it",
        _REQUEST,
        shape=lambda value: value is None,
    ),
    PrivateName(
        "twisted.web.server:Request._inFakeHead",
        "whether twisted.web renders a GET for a HEAD, whose body it drops",
        _REQUEST,
        shape=lambda value: value is False,
    ),
    PrivateName(
        "twisted.web.http:Request._disconnected",
        "whether the request's connection is lost (nothing is written then)",
        _REQUEST,
        shape=lambda value: value is False,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._buffer",
        "the request bytes not parsed yet, held while the channel is paused",
        _CHANNEL,
        shape=isA(list, bytes, bytearray),
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._version",
        "the request line's HTTP version, for the Host header rule of HTTP/1.1",
        _CHANNEL,
        shape=isA(bytes),
        instance=_readingChannel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._command",
        "the request line's method until the request is complete, for the access log "
        "line of a request the channel answers itself",
        _CHANNEL,
        shape=isA(bytes),
        instance=_readingChannel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._path",
        "the request line's path until the request is complete, for the same line",
        _CHANNEL,
        shape=isA(bytes),
        instance=_readingChannel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._receivedHeaderCount",
        "the count of the request's headers so far, which maxHeaders limits",
        _CHANNEL,
        shape=lambda value: value == 0,
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:_parseRequestLine",
        "the request line's parser (400 when it raises), for request heads parsed whole",
        _CHANNEL,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._receivedHeaderSize",
        "the bytes of the request line and headers so far, which totalHeadersSize "
        "limits (0 between requests)",
        _CHANNEL,
        shape=lambda value: value == 0,
        instance=_channel,
    ),
    PrivateName(
        "twisted.protocols.basic:LineReceiver._busyReceiving",
        "whether the line parser is handing bytes on (it queues bytes received then)",
        _CHANNEL,
        shape=lambda value: value is False,
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._abortingCall",
        "the pending abort of a connection being closed, so a send timeout adds none",
        _CHANNEL,
        shape=lambda value: value is None,
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._respondToBadRequestAndDisconnect",
        "Twisted's 400 answer, for requests the limits refuse",
        _CHANNEL,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._waitingForTransport",
        "whether the transport paused the channel (its send buffer is full)",
        _CHANNEL,
        shape=isA(bool),
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._handlingRequest",
        "whether a request is being answered: reading must stop then too",
        _CHANNEL,
        shape=isA(bool),
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._networkProducer",
        "the transport as a producer, paused while a response cannot be sent",
        _CHANNEL,
        shape=lambda value: callable(getattr(value, "pauseProducing", None)),
        instance=_readingChannel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._dataBuffer",
        "what was read while a request is answered, bounded before reading resumes",
        _CHANNEL,
        shape=isA(list),
        instance=_channel,
    ),
    PrivateName(
        "twisted.web.http:HTTPChannel._optimisticEagerReadSize",
        "how much HTTPChannel buffers while answering before it stops reading",
        _CHANNEL,
        shape=isA(int),
    ),
    PrivateName(
        "twisted.web.server:Site._openLogFile",
        "opening the access log: wrapped to keep a full disk from failing responses, "
        "and replaced by `netservices serve` to log to a stream",
        (*_SITE, "services.cli.servesite"),
    ),
    PrivateName(
        "twisted.web.server:Site._logFile",
        "the open access log, written with errors caught",
        _SITE,
        shape=lambda value: value is None or callable(getattr(value, "write", None)),
        instance=_site,
    ),
    PrivateName(
        "twisted.web.server:Site._logFormatter",
        "the access log's line formatter",
        _SITE,
        instance=_site,
    ),
    PrivateName(
        "twisted.web.server:Site._logDateTime",
        "the access log's time stamp, formatted once a second",
        _SITE,
        shape=isA(str),
        instance=_site,
    ),
    PrivateName(
        "twisted.web.static:File._setContentHeaders",
        "content type, encoding and length of a file answer, as static.File sets them",
        ("services.web._static",),
        fastPaths=('static',),
    ),
    PrivateName(
        "twisted.python.filepath:FilePath._statinfo",
        "a stat result the lean static path already has, so the file is not stat'ed again",
        ("services.web._static",),
        shape=lambda value: value is None,
        instance=lambda: __import__("twisted.python.filepath").python.filepath.FilePath("/"),
        fastPaths=('static',),
    ),
)
