# -*- test-case-name: tests.unit.web.test_accesslog -*-
"""
The web service's access log: its line format, and its file, shared by
every process that writes it.

L{combinedLogFormat} writes Apache's Combined Log Format, with every field
escaped so that a line cannot be forged or broken.

twisted.web's C{Site} writes its access log through
L{twisted.python.logfile.LogFile}, which opens the file read-write at its
end (not in append mode) and rotates it by size by itself.  With several
worker processes each then writes at its own offset: they overwrite each
other's lines and rotate the file under each other.

L{AccessLogFile} opens the file with C{O_APPEND} and writes each line with
one C{write()}: the kernel appends every line whole at the end of the file,
whichever process writes it, so lines are never interleaved or lost.
Rotation is left to C{logrotate}: L{AccessLogFile.reopen} (on SIGHUP)
starts writing to a new file at the same path.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.logger import Logger

from services import logs

__all__ = ["AccessLogFile", "combinedLogFormat"]

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def _escape(value: bytes | str) -> str:
    """
    A request field as an access log shows it: printable ASCII as is,
    C{"} and C{\\} escaped with a backslash, other bytes as C{\\xNN} (as
    Apache does), so a line cannot be forged or broken.
    """
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    out = []
    for byte in value:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def combinedLogFormat(timestamp: str, request: Any) -> str:
    """
    One access log line in Apache's Combined Log Format (the client address
    unquoted, unlike Twisted's own formatter, so log tools read it)::

        127.0.0.1 - - [26/Nov/2026:16:51:27 +0000] "GET / HTTP/1.1" 200 11 "-" "curl/8.5.0"

    @param timestamp: the bracketed time, as L{HTTPFactory} keeps it.
    @param request: the finished request.
    """
    host = getattr(request.getClientAddress(), "host", None)
    client = _escape(host) if isinstance(host, str) else "-"
    if request.method is None:  # no request line: a RejectedRequest 408
        line = '"-"'
    else:
        # twisted.web names HTTP/2 "HTTP/2"; Apache and nginx log "HTTP/2.0".
        version = b"HTTP/2.0" if request.clientproto == b"HTTP/2" else request.clientproto
        line = f'"{_escape(request.method)} {_escape(request.uri)} {_escape(version)}"'
    referrer = _escape(request.getHeader(b"referer") or b"-")
    agent = _escape(request.getHeader(b"user-agent") or b"-")
    length = request.sentLength or "-"
    return f'{client} - - {timestamp} {line} {request.code} {length} "{referrer}" "{agent}"'


class AccessLogFile:
    """
    An access log opened for appending, one C{write()} per line.

    @ivar path: the file's absolute path.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, path: str) -> None:
        """
        Open (or create) C{path} for appending.

        @raise OSError: when it cannot be opened.
        """
        # Absolute, so that reopening finds the same file after twistd
        # changed directory (--rundir).
        self.path = os.path.abspath(path)
        self._fd: int | None = os.open(path, _FLAGS, 0o666)

    def write(self, line: str) -> None:
        """
        Append C{line} (a whole line, with its newline) in one write.

        @raise OSError: when it cannot be written (a full disk); the site
            counts and reports it.
        @raise ValueError: after L{close}.
        """
        if self._fd is None:
            raise ValueError(f"the access log {self.path} is closed")
        data = line.encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):  # only when the disk fills up mid-line
            written += os.write(self._fd, data[written:])

    def flush(self) -> None:
        """
        Nothing to flush: every line is written at once.
        """

    def reopen(self) -> None:
        """
        Open the path again (after C{logrotate} moved the file away) and
        write there from now on.  If it cannot be opened, keep writing to
        the file open now and log why.
        """
        try:
            fd = os.open(self.path, _FLAGS, 0o666)
        except OSError as e:
            self._log.warn(
                "web: cannot reopen the access log {path}: {reason}",
                path=self.path,
                reason=(e.strerror or str(e)).lower(),
            )
            return
        previous, self._fd = self._fd, fd
        if previous is not None:
            os.close(previous)

    def close(self) -> None:
        """
        Close the file; later lines are dropped.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
