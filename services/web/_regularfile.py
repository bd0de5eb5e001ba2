# -*- test-case-name: tests.unit.web.test_static_lean -*-
"""
The lean path of the static files: L{RegularFile} answers the common
request, a whole regular file by C{GET} on a plain connection, with one
C{open} and C{fstat} and C{os.sendfile}; every other request goes to the
full L{StaticFile<services.web._static.StaticFile>}.  And L{entityTag}, the
C{ETag} of a file both paths send.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any

from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from zope.interface import implementer

from services.web._sendfile import SendfileProducer, canSendfile

if TYPE_CHECKING:
    from services.web._static import StaticFile

__all__ = ["RegularFile", "entityTag"]

#: Request headers that make a GET conditional or partial: such requests
#: take the full path of C{StaticFile.render_GET}.
_CONDITIONAL = (b"range", b"if-none-match", b"if-modified-since")

#: How L{RegularFile} opens a file: never through a symbolic link swapped in
#: since the lstat() that found a regular file, never blocking on a FIFO.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(
    os, "O_NONBLOCK", 0
)


def entityTag(size: int, mtime: float) -> bytes:
    """
    The strong entity tag of a file's current content, from its size and
    modification time (as common servers do), quotes included.
    """
    return b'"%x-%x"' % (int(mtime * 1_000_000), size)


def _typeAndEncoding(
    name: str, types: dict[str, str], encodings: dict[str, str], defaultType: str
) -> tuple[str, str | None]:
    """
    The content type and encoding of a file named C{name}, as
    L{twisted.web.static.getTypeAndEncoding} finds them (C{.tar.gz}: the
    type of C{.tar}, encoding C{gzip}), without building a C{FilePath}.
    """
    base, ext = os.path.splitext(name)
    ext = ext.lower()
    encoding = encodings.get(ext)
    if encoding is not None:
        ext = os.path.splitext(base)[1].lower()
    return types.get(ext, defaultType), encoding


@implementer(IResource)
class RegularFile:
    """
    A regular file, found by L{StaticFile.getChild} as a plain entry of a
    directory inside the root (no symbolic link on the way).

    The common request, a whole-file C{GET} without conditions on a plain
    TCP or UNIX connection, is answered here: the file is opened once
    (C{open} and C{fstat}, as nginx does), the headers come from that
    C{fstat}, so that they describe exactly the bytes sent, and the body is
    sent by L{SendfileProducer}.  Every other request (C{HEAD}, C{Range},
    C{If-None-Match}, C{If-Modified-Since}, other methods, TLS or PROXY
    connections, a file that changed kind or cannot be opened) is answered
    by a full L{StaticFile}, exactly as before.

    @ivar parent: the L{StaticFile} of the directory.
    @ivar path: the file's path.
    @ivar info: the file's C{lstat()} status, from C{getChild}.
    """

    isLeaf = False

    def __init__(self, parent: StaticFile, path: str, info: os.stat_result) -> None:
        self.parent = parent
        self.path = path
        self.info = info

    def getChildWithDefault(self, name: bytes, request: IRequest) -> IResource:
        """
        A file has no children (C{/file.txt/x}, C{/file.txt/}): 404.
        """
        return self.parent.childNotFound

    def putChild(self, path: bytes, child: IResource) -> None:
        """
        A file cannot have children.
        """
        raise NotImplementedError("a file has no children")

    def full(self, changed: bool = False) -> StaticFile:
        """
        The L{StaticFile} for this file, which serves every kind of request.
        It stats the file again.

        @param changed: whether the file is no longer what C{getChild}
            found (a regular file, no link): then its whole real path is
            checked against the root again.
        """
        if changed:
            return self.parent._similar(self.path)
        return self.parent._similar(
            self.path, os.path.join(self.parent._real or "", os.path.basename(self.path))
        )

    def render(self, request: IRequest) -> Any:
        """
        Send the whole file, or hand the request to L{full}.
        """
        if request.method != b"GET" or not canSendfile(request):
            return self.full().render(request)
        headers = request.requestHeaders  # type: ignore[attr-defined]
        for name in _CONDITIONAL:
            if headers.hasHeader(name):
                return self.full().render(request)
        try:
            fd = os.open(self.path, _OPEN_FLAGS)
        except OSError:
            # Gone, unreadable (403), or a link swapped in since getChild
            # (ELOOP from O_NOFOLLOW): the full path decides.
            return self.full(changed=True).render(request)
        try:
            info = os.fstat(fd)
        except OSError:
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return self.full(changed=True).render(request)
        try:
            parent = self.parent
            contentType, encoding = _typeAndEncoding(
                os.path.basename(self.path),
                parent.contentTypes,
                parent.contentEncodings,
                parent.defaultType,
            )
            size = info.st_size
            request.setHeader(b"etag", entityTag(size, info.st_mtime))
            request.setHeader(b"accept-ranges", b"bytes")
            request.setLastModified(info.st_mtime)
            request.setHeader(b"content-length", b"%d" % (size,))
            if contentType:
                request.setHeader(b"content-type", contentType.encode("ascii"))
            if encoding:
                request.setHeader(b"content-encoding", encoding.encode("ascii"))
        except BaseException:
            os.close(fd)
            raise
        SendfileProducer(request, fd, size).start()
        return server.NOT_DONE_YET
