# -*- test-case-name: tests.unit.client.test_limits -*-
"""
L{download}: a response body streamed to a file with bounded memory,
through a temporary file beside it that is renamed once complete, so a
failed or refused download never leaves a partial file, and nothing
already at the temporary name (a file, a symbolic link) is written through.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

from services.client._api import request
from services.client._errors import HTTPStatusError
from services.client._response import Response

__all__ = ["download"]


def download(
    client: Any,
    url: str,
    path: str | os.PathLike[str],
    *,
    method: str = "GET",
    keepError: bool = False,
    onResponse: Callable[[Response], object] | None = None,
    **kwargs: Any,
) -> Deferred[Response]:
    """
    Stream a response body to a file, with bounded memory.

    The body is written to a new file of a random name beside C{path}
    (C{path.<random>.part}, created exclusively: never through an existing
    file or symbolic link), renamed to C{path} once complete (replacing
    C{path} itself, even when it is a symbolic link); on failure it is
    removed.  A C{path} that is a character device or a pipe
    (C{/dev/null}, C{/dev/stdout}) is written to directly.  An error status
    (400 or more) is not saved: the call fails with L{HTTPStatusError} and
    C{path} is left as it was, unless C{keepError}.  Takes the keyword
    arguments of L{request} (C{progress}, C{timeout}, C{maxSize},
    C{compressed}, C{reactor}...), except C{sink}.

    @return: fires with the L{Response} (its C{received} is the file size);
        fails with L{HTTPStatusError}, an L{OSError} naming C{path}, or an
        error of L{request}.
    """
    target = Path(path)
    part: Path | None
    try:
        handle = _openStream(target)
        part = None
        if handle is None:
            handle, part = _createPart(target)
    except OSError as e:
        return fail(_naming(e, target))

    def checked(response: Response) -> None:
        if onResponse is not None:
            onResponse(response)
        if response.status >= 400 and not keepError:
            raise HTTPStatusError(response.status, response.phrase, response.url, str(target))

    def write(data: bytes) -> None:
        try:
            handle.write(data)
        except OSError as e:
            raise _naming(e, target) from None

    def done(result: Response | Failure) -> Response | Failure:
        try:
            handle.close()
            if part is not None and not isinstance(result, Failure):
                os.replace(part, target)
        except OSError as e:
            result = Failure(_naming(e, target))
        if part is not None and isinstance(result, Failure):
            part.unlink(missing_ok=True)
        return result

    return request(client, method, url, sink=write, onResponse=checked, **kwargs).addBoth(done)


#: How the temporary file of L{download} is opened: created, and only if
#: nothing (not even a dangling symbolic link) has its name.
_PART_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _openStream(target: Path) -> Any:
    """
    C{target} opened for writing if it is a character device or a pipe
    (C{/dev/null}, C{/dev/stdout}), which a rename must not replace; else
    L{None}.  It is opened without creating or truncating anything, and
    checked after opening, so a link swapped in meanwhile is never written
    through.
    """
    try:
        if not _isStream(os.stat(target).st_mode):
            return None
        descriptor = os.open(target, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    if not _isStream(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return None
    return os.fdopen(descriptor, "wb")


def _isStream(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _createPart(target: Path) -> tuple[Any, Path]:
    """
    Create the temporary file of a download beside C{target}: a random
    name, opened with C{O_EXCL | O_NOFOLLOW}, so that nothing planted there
    is ever written through.  (L{tempfile.mkstemp} would do, but makes the
    file 0600 and the download keeps the mode of the temporary file;
    C{0o666} here is narrowed by the umask, as for any new file.)
    """
    for _ in range(16):
        part = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        try:
            descriptor = os.open(part, _PART_FLAGS, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(descriptor, "wb"), part
    raise FileExistsError(errno.EEXIST, "no free name for a temporary file", str(target))


def _naming(error: OSError, target: Path) -> OSError:
    """
    C{error} as raised for C{target} (not its temporary file).
    """
    return OSError(error.errno, error.strerror or str(error), str(target))
