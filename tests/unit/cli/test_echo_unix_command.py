"""
Tests of the argument rules of C{netservices echo --unix PATH [--dgram |
--seqpacket]} (L{services.cli.echo}).
"""

from __future__ import annotations

import io

from twisted.internet.defer import ensureDeferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from services.cli import buildParser
from services.cli import echo, exits


class UsageTests(SynchronousTestCase):
    """
    Which combinations are refused, in one line, with exit status 2.
    """

    def check(self, *argv: str) -> tuple[int, str]:
        """
        Run C{netservices echo ARGV} as far as its argument checks; the
        status and stderr.
        """
        args = buildParser().parse_args(["echo", *argv])
        stderr = io.StringIO()
        done: list[int] = []
        ensureDeferred(echo.echo(MemoryReactorClock(), args, io.StringIO(), stderr)).addCallback(
            done.append
        )
        return done[0], stderr.getvalue()

    def test_refused(self) -> None:
        """
        --unix with HOST PORT or --udp, --dgram/--seqpacket without --unix,
        neither HOST PORT nor --unix, and datagrams above 65507 bytes are
        refused.
        """
        for argv, words in (
            (("--unix", "/x", "127.0.0.1", "7"), "takes no HOST PORT"),
            (("--unix", "/x", "--udp"), "no --udp"),
            (("--seqpacket", "127.0.0.1", "7"), "go with --unix"),
            ((), "expected HOST PORT, or --unix PATH"),
            (("--unix", "/x", "--dgram", "--size", "70000"), "at most 65507"),
        ):
            code, err = self.check(*argv)
            self.assertEqual(code, exits.USAGE, argv)
            self.assertIn(words, err)
            self.assertEqual(len(err.splitlines()), 1)

    def test_exclusive(self) -> None:
        """
        --dgram and --seqpacket cannot both be given.
        """
        self.assertRaises(SystemExit, buildParser().parse_args,
                          ["echo", "--unix", "/x", "--dgram", "--seqpacket"])
