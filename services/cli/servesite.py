# -*- test-case-name: tests.unit.cli.test_serve -*-
"""
The site of C{netservices serve}: the web service's L{LimitedSite} with its
access log on standard output.
"""

from __future__ import annotations

from typing import IO, Any

from services.web import HTTPLimits, LimitedSite

__all__ = ["LineWriter", "StdoutSite"]


class StdoutSite(LimitedSite):
    """
    A L{LimitedSite} whose access log is standard output, a line at a time.
    """

    def __init__(self, resource: Any, out: IO[str], reactor: Any) -> None:
        LimitedSite.__init__(self, resource, HTTPLimits(), accessLog="-", reactor=reactor)
        self._out = out

    def openLogFile(self, path: Any) -> Any:
        """
        The access log is standard output, whatever C{path}.
        """
        return LineWriter(self._out)


class LineWriter:
    """
    Writes each access log line through at once (standard output may be a
    pipe, which would hold lines back).
    """

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, text: str) -> None:
        """
        Write and flush.
        """
        self._out.write(text)
        self._out.flush()

    def close(self) -> None:
        """
        Leave standard output open.
        """
