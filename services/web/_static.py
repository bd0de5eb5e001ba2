# -*- test-case-name: tests.unit.web.test_static -*-
"""
Static files, like C{python -m http.server}, on L{twisted.web.static.File}.

L{StaticFile} keeps what C{File} does well (MIME types, single and multiple
byte ranges, C{Last-Modified} / C{If-Modified-Since}, producers that stream
large files) and adds:

  - C{ETag} / C{If-None-Match} (and C{If-Range}), which C{File} lacks;
  - containment: nothing outside the root directory is served.  C{..} in any
    encoding and names with a NUL byte or undecodable bytes are 404s (never a
    500, never a traceback in the log), and a symbolic link whose real path
    leaves the root is a 404 unless C{followSymlinks} is set;
  - only regular files and directories are served (a FIFO would block);
  - directory listings only when asked for (otherwise 403), C{index.html} as
    the default page, C{/dir} redirected to C{/dir/} with C{301};
  - 405 with C{Allow: GET, HEAD} for other methods;
  - C{application/octet-stream} for unknown types (C{File} says text/html);
  - byte ranges as nginx and Apache answer them, by L{services.web._ranges}:
    overlapping and adjacent ranges merged, at most 200 ranges, and ranges
    that add up to more than the file get the whole file once (200);
    C{File}'s own multiple-range producer can hang the connection;
  - the common request, a whole file by C{GET}, answered by
    L{RegularFile<services.web._regularfile.RegularFile>} with one C{open}
    and C{fstat} and sent with C{os.sendfile}.

Use it in your own site::

    from twisted.web.server import Site
    from services.web import StaticFile

    site = Site(StaticFile("/srv/www", listing=True))
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from collections.abc import Sequence
from typing import Any

from twisted.python.filepath import InsecurePath
from twisted.web import http, pages
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.util import redirectTo

from services._twisted import fastPath
from services._twisted.webbase import setContentHeaders, setStatInfo
from services.web._pages import methodNotAllowed, notFound
from services.web._ranges import RangeProducer, multipartBody, parseRangeHeader, selectRanges
from services.web._regularfile import RegularFile, entityTag
from services.web._sendfile import SendfileProducer, canSendfile

with warnings.catch_warnings():
    # Importing twisted.web.static builds two deprecated error pages; we
    # replace both with twisted.web.pages ones below.
    warnings.filterwarnings(
        "ignore", r"twisted\.web\.resource\._Unsafe", DeprecationWarning
    )
    from twisted.web.static import DirectoryLister, File

__all__ = ["DirectoryListing", "StaticFile"]

_GET_HEAD = (b"GET", b"HEAD")

# Names that are not plain entries of a directory: "" is its index, "." and
# ".." are not entries at all.
_SPECIAL_NAMES = ("", ".", "..")

def _tagsMatch(header: bytes, etag: bytes) -> bool:
    """
    Whether an C{If-None-Match} value matches C{etag} (weak comparison).
    """
    for candidate in header.split(b","):
        tag = candidate.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


class DirectoryListing(DirectoryLister):
    """
    Twisted's HTML directory listing, for GET and HEAD only.
    """

    def render(self, request: IRequest) -> Any:
        """
        List the directory, or answer 405 to other methods.
        """
        if request.method not in _GET_HEAD:
            return methodNotAllowed(request, _GET_HEAD)
        return DirectoryLister.render(self, request)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """
        A listing has no children (C{/dir//x}): 404.
        """
        return notFound()


class StaticFile(File):
    """
    A file or directory under C{root}, served as described in the module
    docstring.

    @ivar root: the real path (symbolic links resolved) of the served tree.
    @ivar listing: whether directories without an index page are listed.
    @ivar followSymlinks: whether symbolic links may lead outside C{root}.
    """

    indexNames = ["index.html", "index.htm"]
    # twisted.web.pages' error pages escape their text; File's do not.
    childNotFound = pages.notFound("Not Found", "No such file.")  # type: ignore[assignment]
    forbidden = pages.forbidden("Forbidden", "You may not read it.")  # type: ignore[assignment]
    listingForbidden = pages.forbidden("Forbidden", "Directory listing is turned off.")
    allowedMethods: Sequence[bytes] = _GET_HEAD

    def __init__(
        self,
        path: str,
        defaultType: str = "application/octet-stream",
        ignoredExts: Sequence[str] = (),
        registry: Any = None,
        *,
        root: str | None = None,
        listing: bool = False,
        followSymlinks: bool = False,
        _realRoot: str | None = None,
    ) -> None:
        File.__init__(self, path, defaultType, ignoredExts, registry)
        if _realRoot is not None:  # from _similar: resolved already
            self.root = _realRoot
        else:
            self.root = os.path.realpath(path if root is None else root)
        self.listing = listing
        self.followSymlinks = followSymlinks
        # The real path of self.path once it is known to be inside root:
        # the root itself, or a child that getChild resolved this request.
        self._real: str | None = self.root if root is None else None
        self._fresh = False

    def createSimilarFile(self, path: str) -> StaticFile:
        """
        A L{StaticFile} for C{path} with the same root and settings.
        """
        return self._similar(path)

    def _similar(
        self, path: str, real: str | None = None, info: os.stat_result | None = None
    ) -> StaticFile:
        # Like createSimilarFile, without resolving the root again: it is
        # self.root, already real.  real and info come from getChild's
        # lstat() of a child that is no link (see _resolve).
        similar = self.__class__(
            path,
            self.defaultType,
            self.ignoredExts,
            self.registry,
            root=self.root,
            listing=self.listing,
            followSymlinks=self.followSymlinks,
            _realRoot=self.root,
        )
        similar._real = real
        if info is not None and fastPath("static"):
            setStatInfo(similar, info)
            similar._fresh = True
        return similar

    def isAllowed(self, path: str) -> bool:
        """
        Whether C{path} may be served: its real path is inside C{root}, or
        symbolic links may be followed anywhere.
        """
        if self.followSymlinks:
            return True
        real = os.path.realpath(path)
        return os.path.commonpath([self.root, real]) == self.root

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """
        The resource for one more path segment: a L{StaticFile}, the index
        page or listing for an empty segment, or an error page.
        """
        try:
            name = path.decode("utf-8")
        except UnicodeDecodeError:
            return self.childNotFound
        if "\x00" in name:
            return self.childNotFound
        if (
            self._real is not None
            and name not in _SPECIAL_NAMES
            and os.sep not in name
            and fastPath("static")
        ):
            # The common case, a plain name in a directory known to be
            # inside the root: one lstat() says what it is (ENOTDIR if this
            # is no directory, like the isdir() check below).
            child = os.path.join(self.path, name)
            try:
                info = os.lstat(child)
            except (OSError, ValueError):
                return self.childNotFound
            if stat.S_ISREG(info.st_mode):
                return RegularFile(self, child, info)
            if stat.S_ISDIR(info.st_mode):
                return self._similar(child, os.path.join(self._real, name), info)
            # Links, FIFOs and the like: resolved in full below.
        self.restat(reraise=False)
        if not self.isdir():
            return self.childNotFound
        if name:
            try:
                child = self.child(name)
            except InsecurePath:
                return self.childNotFound
        else:
            index = self.childSearchPreauth(*self.indexNames)
            if index is None:
                return self.directoryListing()
            child = index
        return self._resolve(child.path)

    def _resolve(self, path: str) -> IResource:
        """
        The resource for C{path}, an entry of this directory, or 404 if it
        does not exist or leads outside the root.

        An entry that is not a symbolic link, in a directory whose real path
        is known to be inside the root, is inside the root too: one
        C{lstat()} says so, and gives the entry's real path for the next
        segment and its status for C{render_GET}.  Links, and directories
        reached through one, take the full path resolution.
        """
        try:
            info = os.lstat(path)
        except (OSError, ValueError):
            return self.childNotFound
        if (
            self._real is not None
            and not stat.S_ISLNK(info.st_mode)
            and os.path.dirname(path) == self.path
        ):
            return self._similar(path, os.path.join(self._real, os.path.basename(path)), info)
        if not os.path.exists(path) or not self.isAllowed(path):
            return self.childNotFound
        return self._similar(path)

    def listNames(self) -> list[str]:
        """
        The directory's entries, without those that lead outside the root.
        """
        return [
            name
            for name in File.listNames(self)
            if self.isAllowed(os.path.join(self.path, name))
        ]

    def directoryListing(self) -> IResource:
        """
        The HTML listing of this directory, or 403 when listings are off.
        """
        if not self.listing:
            return self.listingForbidden
        return DirectoryListing(
            self.path, self.listNames(), self.contentTypes, self.contentEncodings, self.defaultType
        )

    def render(self, request: IRequest) -> Any:
        """
        Serve GET and HEAD; answer 405 to other methods.
        """
        if request.method not in self.allowedMethods:
            return methodNotAllowed(request, self.allowedMethods)
        return File.render(self, request)

    def render_GET(self, request: IRequest) -> Any:
        """
        Send the file (or the requested ranges of it), or C{304 Not
        Modified}, or redirect a directory to its URL with a slash.
        """
        if self._fresh:
            # getChild stat'ed it during this request; File.render_GET
            # stats it again before opening.
            self._fresh = False
        else:
            self.restat(reraise=False)
        if not (self.isfile() or self.isdir()):
            return self.childNotFound.render(request)
        if self._real is None and not self.isAllowed(self.path):
            return self.childNotFound.render(request)
        if self.isdir():
            return self.redirect(request)
        mtime = self.getModificationTime()
        etag = entityTag(self.getsize(), mtime)
        request.setHeader(b"etag", etag)
        ifNoneMatch = request.getHeader(b"if-none-match")
        if ifNoneMatch is not None:
            if _tagsMatch(ifNoneMatch, etag):
                request.setLastModified(mtime)
                request.setResponseCode(http.NOT_MODIFIED)
                return b""
            # RFC 9110 13.1.3: If-None-Match takes precedence.
            request.requestHeaders.removeHeader(b"if-modified-since")
        self._checkIfRange(request, etag, mtime)
        self._checkRange(request)
        return File.render_GET(self, request)

    render_HEAD = render_GET

    def makeProducer(self, request: IRequest, fileForReading: Any) -> Any:
        """
        Set the status and content headers, and return the producer of the
        body: a whole file on a plain TCP or UNIX connection is sent with
        C{os.sendfile} (see L{services.web._sendfile}); ranges, and TLS or PROXY
        connections, get a L{RangeProducer}.
        """
        if not fastPath("static"):  # a Twisted without File's internals we use
            return File.makeProducer(self, request, fileForReading)
        size = self.getFileSize()
        byteRange = request.getHeader(b"range")
        ranges = None
        if byteRange is not None:
            ranges = selectRanges(parseRangeHeader(byteRange), size)  # _checkRange parsed it
        if ranges is None:
            setContentHeaders(self, request, size)
            request.setResponseCode(http.OK)
            if canSendfile(request):
                return SendfileProducer(request, fileForReading, size)
            return RangeProducer(request, fileForReading, [(b"", 0, size)])
        if not ranges:
            request.setResponseCode(http.REQUESTED_RANGE_NOT_SATISFIABLE)
            request.setHeader(b"content-range", b"bytes */%d" % (size,))
            request.setHeader(b"content-length", b"0")
            return RangeProducer(request, fileForReading, [])
        request.setResponseCode(http.PARTIAL_CONTENT)
        if len(ranges) == 1:
            offset, length = ranges[0]
            setContentHeaders(self, request, length)
            request.setHeader(
                b"content-range", b"bytes %d-%d/%d" % (offset, offset + length - 1, size)
            )
            return RangeProducer(request, fileForReading, [(b"", offset, length)])
        contentType = (self.type or "application/octet-stream").encode("ascii")
        boundary = os.urandom(12).hex().encode("ascii")
        parts, trailer, length = multipartBody(ranges, size, contentType, boundary)
        request.setHeader(b"content-type", b'multipart/byteranges; boundary="%s"' % (boundary,))
        request.setHeader(b"content-length", b"%d" % (length,))
        if self.encoding:
            request.setHeader(b"content-encoding", self.encoding.encode("ascii"))
        return RangeProducer(request, fileForReading, parts, trailer)

    def _checkIfRange(self, request: IRequest, etag: bytes, mtime: float) -> None:
        """
        Ignore the Range header when C{If-Range} names another version.
        """
        ifRange = request.getHeader(b"if-range")
        if ifRange is None or request.getHeader(b"range") is None:
            return
        ifRange = ifRange.strip()
        if ifRange.startswith((b'"', b"W/")):
            current = ifRange == etag
        else:
            current = ifRange == http.datetimeToString(math.ceil(mtime))
        if not current:
            request.requestHeaders.removeHeader(b"range")  # type: ignore[attr-defined]

    def _checkRange(self, request: IRequest) -> None:
        """
        Ignore (RFC 9110 14.2 allows it) a Range header that is not a
        usable byte range: C{File} logs a malformed one at info level and
        fails with a 500 on one that is not ASCII, and answers C{bytes=}
        (no range at all) with a 500.
        """
        byteRange = request.getHeader(b"range")
        if byteRange is None:
            return
        try:
            usable = byteRange.isascii() and bool(parseRangeHeader(byteRange))
        except ValueError:
            usable = False
        if not usable:
            request.requestHeaders.removeHeader(b"range")  # type: ignore[attr-defined]

    def redirect(self, request: IRequest) -> bytes:
        """
        Redirect (301) a directory's URL to the same URL with a slash.
        """
        path, question, query = request.uri.partition(b"?")  # type: ignore[attr-defined]
        body: bytes = redirectTo(path + b"/" + question + query, request)
        request.setResponseCode(http.MOVED_PERMANENTLY)
        return body
