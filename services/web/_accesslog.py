# -*- test-case-name: tests.test_accesslog -*-
"""
The web service's access log file, shared by every process that writes it.

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

from twisted.logger import Logger

from services import logs

__all__ = ["AccessLogFile"]

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


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
