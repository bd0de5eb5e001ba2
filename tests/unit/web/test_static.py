"""
Tests for L{services.web._static}: static files like C{python -m http.server},
through L{treq.testing.StubTreq}, and nothing outside the root ever.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any

from treq.testing import StubTreq
from twisted.web.http import datetimeToString
from twisted.web.resource import Resource

from services.web import StaticFile
from services.web._regularfile import entityTag

from tests.support import temporaryDirectory
from tests.webfakes import StubTestCase, header

NUMBERS = "".join(f"{i}\n" for i in range(1000)).encode()
SECRET = b"secret outside the root\n"


class StaticTestCase(StubTestCase):
    """
    A served tree under C{www/} and files next to it that must never be
    served::

        www/index.html   www/numbers.txt   www/style.css   www/data.weird
        www/sub/a.txt    www/withindex/index.html
        www/inside -> sub/a.txt          (a link that stays inside)
        www/escape -> ../outside/secret.txt, www/escapedir -> ../outside
        www/sibling -> ../www2/secret.txt (a path that shares the prefix)
        outside/secret.txt   www2/secret.txt
    """

    def setUp(self) -> None:
        StubTestCase.setUp(self)
        base = temporaryDirectory(self)
        www = base / "www"
        for directory in (www / "sub", www / "withindex", base / "outside", base / "www2"):
            directory.mkdir(parents=True)
        (www / "index.html").write_bytes(b"<h1>index</h1>\n")
        (www / "numbers.txt").write_bytes(NUMBERS)
        (www / "style.css").write_bytes(b"body {}\n")
        (www / "data.weird").write_bytes(b"\x00\x01")
        (www / "sub" / "a.txt").write_bytes(b"a\n")
        (www / "withindex" / "index.html").write_bytes(b"sub index\n")
        (base / "outside" / "secret.txt").write_bytes(SECRET)
        (base / "www2" / "secret.txt").write_bytes(SECRET)
        os.symlink("sub/a.txt", www / "inside")
        os.symlink("../outside/secret.txt", www / "escape")
        os.symlink("../outside", www / "escapedir")
        os.symlink("../www2/secret.txt", www / "sibling")
        self.base = base
        self.www = www

    def stub(self, **settings: Any) -> StubTreq:
        tree = Resource()
        tree.putChild(b"static", StaticFile(str(self.www), **settings))
        return StubTreq(tree)

    def get(
        self, path: str, stub: StubTreq | None = None, method: str = "GET", **kwargs: Any
    ) -> tuple[Any, bytes]:
        kwargs.setdefault("allow_redirects", False)
        return self.fetch(stub or self.stub(), method, "http://web/static/" + path, **kwargs)


class ServingTests(StaticTestCase):
    """
    Files are served with their type, length and validators.
    """

    def test_indexPage(self) -> None:
        """
        A directory's index.html is its page.
        """
        stub = self.stub()
        response, body = self.get("", stub)
        self.assertEqual((response.code, body), (200, b"<h1>index</h1>\n"))
        self.assertEqual(header(response, "content-type"), "text/html")
        response, body = self.get("withindex/", stub)
        self.assertEqual((response.code, body), (200, b"sub index\n"))

    def test_mimeTypes(self) -> None:
        """
        The Content-Type comes from the extension; unknown extensions are
        application/octet-stream, never text/html.
        """
        stub = self.stub()
        for name, expected in [
            ("numbers.txt", "text/plain"),
            ("style.css", "text/css"),
            ("data.weird", "application/octet-stream"),
        ]:
            response, _ = self.get(name, stub)
            self.assertEqual(header(response, "content-type"), expected, name)

    def test_wholeFile(self) -> None:
        """
        GET sends the whole file with its length, Last-Modified, ETag and
        Accept-Ranges.
        """
        response, body = self.get("numbers.txt")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, NUMBERS)
        self.assertEqual(response.length, len(NUMBERS))
        stat = (self.www / "numbers.txt").stat()
        self.assertEqual(header(response, "etag"), entityTag(stat.st_size, stat.st_mtime).decode())
        self.assertEqual(header(response, "accept-ranges"), "bytes")
        self.assertIsNotNone(header(response, "last-modified"))

    def test_head(self) -> None:
        """
        HEAD has the GET headers (length, type, ETag) and no body.
        """
        response, body = self.get("numbers.txt", method="HEAD")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"")
        self.assertEqual(header(response, "content-length"), str(len(NUMBERS)))
        self.assertEqual(header(response, "content-type"), "text/plain")
        self.assertIsNotNone(header(response, "etag"))

    def test_otherMethods(self) -> None:
        """
        Other methods on files, directories and listings get 405 with
        C{Allow: GET, HEAD}.
        """
        stub = self.stub(listing=True)
        for path in ("numbers.txt", "", "sub/", "sub"):
            for method in ("POST", "PUT", "DELETE", "PROPFIND"):
                response, _ = self.get(path, stub, method=method)
                self.assertEqual(response.code, 405, (method, path))
                self.assertEqual(header(response, "allow"), "GET, HEAD", (method, path))

    def test_missing(self) -> None:
        """
        A missing file, or a file used as a directory, is a 404.
        """
        stub = self.stub()
        for path in ("nope.txt", "numbers.txt/x", "sub/nope/x"):
            response, _ = self.get(path, stub)
            self.assertEqual(response.code, 404, path)

    def test_fifo(self) -> None:
        """
        Only regular files and directories are served: a FIFO (which would
        block on open) is a 404.
        """
        os.mkfifo(self.www / "pipe")
        response, _ = self.get("pipe")
        self.assertEqual(response.code, 404)

    def test_rootIsASymlink(self) -> None:
        """
        The configured directory may itself be a symbolic link.
        """
        link = self.base / "link-to-www"
        os.symlink(self.www, link)
        tree = Resource()
        tree.putChild(b"static", StaticFile(str(link)))
        response, body = self.fetch(StubTreq(tree), "GET", "http://web/static/sub/a.txt")
        self.assertEqual((response.code, body), (200, b"a\n"))


class RedirectTests(StaticTestCase):
    """
    A directory's URL without its slash redirects to the URL with it.
    """

    def test_redirect(self) -> None:
        """
        /dir answers 301 to /dir/, keeping the query.
        """
        stub = self.stub()
        response, _ = self.get("sub", stub)
        self.assertEqual(response.code, 301)
        self.assertEqual(header(response, "location"), "/static/sub/")
        response, _ = self.get("sub?a=1&b=%20", stub)
        self.assertEqual(header(response, "location"), "/static/sub/?a=1&b=%20")

    def test_mountRedirects(self) -> None:
        """
        The mount point itself redirects to its slash form.
        """
        response, _ = self.fetch(self.stub(), "GET", "http://web/static", allow_redirects=False)
        self.assertEqual(response.code, 301)
        self.assertEqual(header(response, "location"), "/static/")


class RangeTests(StaticTestCase):
    """
    Single and multiple byte ranges.
    """

    def test_single(self) -> None:
        """
        One range: 206 with Content-Range and just those bytes.
        """
        response, body = self.get("numbers.txt", headers={"Range": "bytes=10-19"})
        self.assertEqual(response.code, 206)
        self.assertEqual(body, NUMBERS[10:20])
        self.assertEqual(header(response, "content-range"), f"bytes 10-19/{len(NUMBERS)}")

    def test_suffix(self) -> None:
        """
        A suffix range gives the last bytes.
        """
        response, body = self.get("numbers.txt", headers={"Range": "bytes=-4"})
        self.assertEqual((response.code, body), (206, NUMBERS[-4:]))

    def test_multiple(self) -> None:
        """
        Several ranges: 206 multipart/byteranges, one part per range, each
        with its Content-Range.
        """
        response, body = self.get("numbers.txt", headers={"Range": "bytes=0-4,100-109"})
        self.assertEqual(response.code, 206)
        contentType = header(response, "content-type") or ""
        match = re.match(r'multipart/byteranges; boundary="([^"]+)"', contentType)
        assert match is not None, contentType
        boundary = match.group(1).encode()
        self.assertEqual(response.length, len(body))
        parts = [p for p in body.split(b"--" + boundary) if p.strip(b"\r\n-")]
        self.assertEqual(len(parts), 2)
        size = len(NUMBERS)
        for part, (start, end) in zip(parts, [(0, 4), (100, 109)]):
            headers, _, content = part.partition(b"\r\n\r\n")
            self.assertIn(b"content-range: bytes %d-%d/%d" % (start, end, size), headers.lower())
            self.assertEqual(content.removesuffix(b"\r\n"), NUMBERS[start : end + 1])

    def test_unsatisfiable(self) -> None:
        """
        A range past the end: 416 with the size in Content-Range.
        """
        response, _ = self.get("numbers.txt", headers={"Range": "bytes=100000-"})
        self.assertEqual(response.code, 416)
        self.assertEqual(header(response, "content-range"), f"bytes */{len(NUMBERS)}")

    def test_malformedIgnored(self) -> None:
        """
        A malformed Range header is ignored: the whole file.
        """
        response, body = self.get("numbers.txt", headers={"Range": "lines=1-2"})
        self.assertEqual((response.code, body), (200, NUMBERS))


class ConditionalTests(StaticTestCase):
    """
    Last-Modified / If-Modified-Since, ETag / If-None-Match, If-Range.
    """

    def validators(self, stub: StubTreq) -> tuple[str, str]:
        response, _ = self.get("numbers.txt", stub)
        etag, modified = header(response, "etag"), header(response, "last-modified")
        assert etag is not None and modified is not None
        return etag, modified

    def test_ifModifiedSince(self) -> None:
        """
        If-Modified-Since at Last-Modified: 304 without a body; an older
        date: 200.
        """
        stub = self.stub()
        _, modified = self.validators(stub)
        response, body = self.get("numbers.txt", stub, headers={"If-Modified-Since": modified})
        self.assertEqual((response.code, body), (304, b""))
        old = datetimeToString(1_000_000_000).decode()
        response, body = self.get("numbers.txt", stub, headers={"If-Modified-Since": old})
        self.assertEqual((response.code, body), (200, NUMBERS))

    def test_ifNoneMatch(self) -> None:
        """
        If-None-Match with the ETag (alone, weak, in a list, or C{*}): 304
        with the ETag and no body, for GET and HEAD.
        """
        stub = self.stub()
        etag, _ = self.validators(stub)
        for value in (etag, "W/" + etag, f'"other", {etag}', "*"):
            for method in ("GET", "HEAD"):
                response, body = self.get(
                    "numbers.txt", stub, method=method, headers={"If-None-Match": value}
                )
                self.assertEqual((response.code, body), (304, b""), (value, method))
                self.assertEqual(header(response, "etag"), etag)

    def test_ifNoneMatchOtherVersion(self) -> None:
        """
        If-None-Match naming another version: 200, even when
        If-Modified-Since alone would say 304 (If-None-Match wins).
        """
        stub = self.stub()
        _, modified = self.validators(stub)
        response, body = self.get(
            "numbers.txt",
            stub,
            headers={"If-None-Match": '"stale"', "If-Modified-Since": modified},
        )
        self.assertEqual((response.code, body), (200, NUMBERS))

    def test_etagChangesWithContent(self) -> None:
        """
        The ETag is stable while the file is unchanged and changes when it
        is rewritten; the old ETag then no longer matches.
        """
        stub = self.stub()
        first, _ = self.validators(stub)
        self.assertEqual(self.validators(stub)[0], first)
        path = self.www / "numbers.txt"
        path.write_bytes(NUMBERS + b"more\n")
        os.utime(path, (1_700_000_000, 1_700_000_000))
        second, _ = self.validators(stub)
        self.assertNotEqual(first, second)
        response, body = self.get("numbers.txt", stub, headers={"If-None-Match": first})
        self.assertEqual(response.code, 200)
        self.assertEqual(body, NUMBERS + b"more\n")

    def test_ifRange(self) -> None:
        """
        If-Range with the current ETag or date honours Range; with another
        version it sends the whole file.
        """
        stub = self.stub()
        etag, modified = self.validators(stub)
        for value in (etag, modified):
            response, body = self.get(
                "numbers.txt", stub, headers={"Range": "bytes=0-1", "If-Range": value}
            )
            self.assertEqual((response.code, body), (206, NUMBERS[:2]), value)
        for value in ('"stale"', "W/" + etag, datetimeToString(1_000_000_000).decode()):
            response, body = self.get(
                "numbers.txt", stub, headers={"Range": "bytes=0-1", "If-Range": value}
            )
            self.assertEqual((response.code, body), (200, NUMBERS), value)


class ListingTests(StaticTestCase):
    """
    Directory listings are off unless turned on.
    """

    def test_off(self) -> None:
        """
        By default a directory without index.html is 403, and its files are
        still served.
        """
        stub = self.stub()
        response, body = self.get("sub/", stub)
        self.assertEqual(response.code, 403)
        self.assertNotIn(b"a.txt", body)
        response, body = self.get("sub/a.txt", stub)
        self.assertEqual((response.code, body), (200, b"a\n"))

    def test_on(self) -> None:
        """
        With listing on, the directory is an HTML page linking its files.
        """
        response, body = self.get("sub/", self.stub(listing=True))
        self.assertEqual(response.code, 200)
        self.assertIn("text/html", header(response, "content-type") or "")
        self.assertIn(b'href="a.txt"', body)

    def test_escapingEntriesHidden(self) -> None:
        """
        The listing leaves out links that lead outside the root, unless
        symbolic links may be followed.
        """
        os.remove(self.www / "index.html")
        response, body = self.get("", self.stub(listing=True))
        self.assertEqual(response.code, 200)
        self.assertIn(b'href="inside"', body)
        for name in (b"escape", b"escapedir", b"sibling"):
            self.assertNotIn(b'href="' + name, body)
        response, body = self.get("", self.stub(listing=True, followSymlinks=True))
        self.assertIn(b'href="escape"', body)

    def test_namesEscaped(self) -> None:
        """
        File names are HTML-escaped in the listing.
        """
        (self.www / "sub" / "<b>&.txt").write_bytes(b"x")
        _, body = self.get("sub/", self.stub(listing=True))
        self.assertNotIn(b"<b>&", body)
        self.assertIn(b"&lt;b&gt;&amp;.txt", body)

    def test_listingHasNoChildren(self) -> None:
        """
        A path below a listing (C{dir//x}) is a 404.
        """
        response, _ = self.get("sub//a.txt", self.stub(listing=True))
        self.assertEqual(response.code, 404)


class ContainmentTests(StaticTestCase):
    """
    Nothing outside the root is served, whatever the encoding.
    """

    TRAVERSALS = [
        "../outside/secret.txt",
        "%2e%2e/outside/secret.txt",
        "%2E%2E/outside/secret.txt",
        ".%2e/outside/secret.txt",
        "%2e./outside/secret.txt",
        "%2e%2e%2foutside%2fsecret.txt",
        "..%2foutside%2fsecret.txt",
        "..%2Foutside%2Fsecret.txt",
        "%252e%252e/outside/secret.txt",
        "..%5coutside%5csecret.txt",
        "%c0%ae%c0%ae/outside/secret.txt",
        "%c0%2e%c0%2e/outside/secret.txt",
        "sub/../../outside/secret.txt",
        "sub/%2e%2e/%2e%2e/outside/secret.txt",
        "..",
        "%2e%2e",
        "%2e%2e/",
        "%2fetc%2fpasswd",
        "..%00/outside/secret.txt",
        "....//outside/secret.txt",
    ]

    def assertRefused(self, stub: StubTreq, path: str) -> None:
        response, body = self.get(path, stub)
        self.assertIn(response.code, (400, 404), path)
        self.assertNotIn(SECRET, body, path)

    def test_traversal(self) -> None:
        """
        C{..} in every encoding (plain, percent-encoded in any case, double
        encoded, with encoded slashes or backslashes, overlong UTF-8) is a
        404, never the file and never a 500.
        """
        stub = self.stub(listing=True)
        for path in self.TRAVERSALS:
            self.assertRefused(stub, path)

    def test_traversalWithFollowSymlinks(self) -> None:
        """
        Following symbolic links does not open the door to C{..}.
        """
        stub = self.stub(listing=True, followSymlinks=True)
        for path in self.TRAVERSALS:
            self.assertRefused(stub, path)

    def test_nul(self) -> None:
        """
        A NUL byte anywhere in a name is a 404, not a 500 (and nothing is
        logged as an error, which would fail this test).
        """
        stub = self.stub()
        for path in ("a%00b", "numbers.txt%00", "numbers.txt%00.html", "sub%00/a.txt", "%00"):
            response, _ = self.get(path, stub)
            self.assertEqual(response.code, 404, path)

    def test_undecodable(self) -> None:
        """
        A name that is not UTF-8 is a 404, and nothing is logged as an
        error.
        """
        response, _ = self.get("%ff%fe")
        self.assertEqual(response.code, 404)

    def test_symlinksEscapingRefused(self) -> None:
        """
        Symbolic links whose real path leaves the root are 404s, including
        a sibling directory that shares the root's name as a prefix; links
        that stay inside are served.
        """
        stub = self.stub()
        for path in ("escape", "escapedir/secret.txt", "escapedir/", "sibling"):
            self.assertRefused(stub, path)
        response, body = self.get("inside", stub)
        self.assertEqual((response.code, body), (200, b"a\n"))

    def test_plainPathsResolvedOnce(self) -> None:
        """
        A file reached through plain directories is checked with one
        C{lstat()} per segment, without resolving its whole path again
        (the root's real path is known); a link to a directory inside the
        root is followed, and what is below it is checked in full.
        """
        os.symlink("sub", self.www / "sublink")
        stub = self.stub()
        resolved: list[str] = []
        realpath = os.path.realpath
        self.patch(os.path, "realpath", lambda p: resolved.append(p) or realpath(p))
        response, body = self.get("sub/a.txt", stub)
        self.assertEqual((response.code, body), (200, b"a\n"))
        self.assertEqual(resolved, [])
        response, body = self.get("sublink/a.txt", stub)
        self.assertEqual((response.code, body), (200, b"a\n"))
        self.assertNotEqual(resolved, [])
        for path in ("escapedir/secret.txt", "sublink/../../outside/secret.txt"):
            self.assertRefused(stub, path)

    def test_followSymlinks(self) -> None:
        """
        With follow_symlinks, links may lead outside the root.
        """
        stub = self.stub(followSymlinks=True)
        for path in ("escape", "escapedir/secret.txt", "sibling"):
            response, body = self.get(path, stub)
            self.assertEqual((response.code, body), (200, SECRET), path)

    def test_indexLinkEscaping(self) -> None:
        """
        An index.html that links outside the root is refused too.
        """
        os.remove(self.www / "withindex" / "index.html")
        os.symlink("../../outside/secret.txt", self.www / "withindex" / "index.html")
        self.assertRefused(self.stub(), "withindex/")

    def test_unreadable(self) -> None:
        """
        A file the daemon may not read is a 403.  (Root reads every file
        whatever its mode, so as root the refusal comes from the open call.)
        """
        path = self.www / "numbers.txt"
        path.chmod(0)
        self.addCleanup(path.chmod, 0o644)
        if os.geteuid() == 0:

            def refuse(self: StaticFile) -> Any:
                raise PermissionError(errno.EACCES, "Permission denied", self.path)

            self.patch(StaticFile, "openForReading", refuse)
        response, _ = self.get("numbers.txt")
        self.assertEqual(response.code, 403)
