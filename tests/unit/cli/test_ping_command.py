"""
Tests of C{netservices ping} (L{services.cli.ping}) on a fake ICMP
socket and a Clock: iputils' output and exit statuses.
"""

from __future__ import annotations

import errno
import io
import json
import socket
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import SynchronousTestCase

from services.cli import buildParser
from services.cli.ping import formatTime, pingCommand
from tests.pingfakes import FakeSocketFactory, TriggerReactor, replyTo, ttlAncillary


class PingCommandTests(SynchronousTestCase):
    """
    The command's lines, statistics and exit statuses.
    """

    def ping(
        self,
        *argv: str,
        refuse: tuple[int, ...] = (),
        euid: int = 0,
        answer: bool = True,
        seconds: int = 30,
        sendError: OSError | None = None,
    ) -> Any:
        """
        Run C{netservices ping ARGV}, answering every request at once when
        C{answer}, advancing the clock a second at a time; the exit status,
        stdout and stderr.
        """
        args = buildParser().parse_args(["ping", *argv])
        reactor = self.reactor = TriggerReactor()
        factory = FakeSocketFactory(refuse, sendError)
        stdout, stderr = io.StringIO(), io.StringIO()
        done: list[int] = []
        ensureDeferred(
            pingCommand(reactor, args, stdout, stderr, factory, lambda: euid)
        ).addCallback(done.append)
        answered = 0
        for _ in range(seconds):
            if done:
                break
            for skt in factory.opened:
                while answer and answered < len(skt.sent):
                    message = replyTo(skt.sent[answered][0], skt.family)
                    skt.incoming.append((message, ttlAncillary(64, skt.family), 0, (args.host, 0)))
                    answered += 1
                reactor.getReaders()[0].doRead()
            reactor.advance(1)
        if not done:
            reactor.fire("before", "shutdown")  # Ctrl-C
        return done[0], stdout.getvalue(), stderr.getvalue()

    def test_output(self) -> None:
        """
        The first line, one line per reply and the statistics block read as
        iputils writes them; some reply means exit status 0.
        """
        code, out, _ = self.ping("-c", "2", "127.0.0.1")
        lines = out.splitlines()
        self.assertEqual(lines[0], "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.")
        self.assertEqual(lines[1], "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.000 ms")
        self.assertEqual(lines[2], "64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.000 ms")
        self.assertEqual(lines[3:6], [
            "",
            "--- 127.0.0.1 ping statistics ---",
            "2 packets transmitted, 2 received, 0% packet loss, time 1000ms",
        ])
        self.assertEqual(lines[6], "rtt min/avg/max/mdev = 0.000/0.000/0.000/0.000 ms")
        self.assertEqual(code, 0)

    def test_ipv6Quiet(self) -> None:
        """
        IPv6's first line is iputils' own; C{-q} prints no reply lines.
        """
        code, out, _ = self.ping("-6", "-q", "-c", "1", "-s", "100", "::1")
        self.assertEqual(out.splitlines()[:3], ["PING ::1(::1) 100 data bytes", "", "--- ::1 ping statistics ---"])
        self.assertEqual(code, 0)

    def test_noReply(self) -> None:
        """
        No reply: 100% packet loss, no rtt line, exit status 1.
        """
        code, out, _ = self.ping("-c", "2", "-W", "1", "127.0.0.1", answer=False)
        self.assertIn("2 packets transmitted, 0 received, 100% packet loss", out)
        self.assertNotIn("rtt", out)
        self.assertEqual(code, 1)

    def test_sendError(self) -> None:
        """
        A request that cannot be sent gets iputils' line and counts as an
        error; with no reply, the exit status is 1.
        """
        unreachable = OSError(errno.ENETUNREACH, "Network is unreachable")
        code, out, _ = self.ping("-c", "2", "127.0.0.1", sendError=unreachable)
        self.assertIn("ping: sendmsg: icmp_seq=1: Network is unreachable\n", out)
        self.assertIn("2 packets transmitted, 0 received, +2 errors, 100% packet loss", out)
        self.assertEqual(code, 1)

    def test_json(self) -> None:
        """
        C{--json} prints one object with the counts and each reply.
        """
        code, out, _ = self.ping("--json", "-c", "2", "127.0.0.1")
        result = json.loads(out)
        self.assertEqual((result["transmitted"], result["received"], result["socket"]), (2, 2, "dgram"))
        self.assertEqual([r["seq"] for r in result["replies"]], [1, 2])
        self.assertEqual(code, 0)

    def test_unavailable(self) -> None:
        """
        With no ICMP socket permitted, one line says what to enable and the
        exit status is 2.
        """
        code, out, err = self.ping("-c", "1", "127.0.0.1", refuse=(socket.SOCK_DGRAM, socket.SOCK_RAW))
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("ping_group_range", err)
        self.assertIn("CAP_NET_RAW", err)
        self.assertEqual((code, out), (2, ""))

    def test_userInterval(self) -> None:
        """
        Intervals below 0.2 s are for root only, as in iputils.
        """
        code, _, err = self.ping("-c", "1", "-i", "0.1", "127.0.0.1", euid=1000)
        self.assertEqual(code, 2)
        self.assertIn("need root", err)
        self.assertEqual(self.ping("-c", "1", "-i", "0.1", "127.0.0.1", euid=0)[0], 0)

    def test_wrongFamily(self) -> None:
        """
        C{-4} with an IPv6 address is an error, exit status 2.
        """
        code, _, err = self.ping("-4", "-c", "1", "::1")
        self.assertEqual(code, 2)
        self.assertIn("IPv6 address", err)

    def test_interrupted(self) -> None:
        """
        Without C{-c} the command runs until the reactor shuts down (Ctrl-C),
        then prints the statistics.
        """
        code, out, _ = self.ping("-i", "1", "127.0.0.1", seconds=3)
        self.assertIn("4 packets transmitted, 3 received, 25% packet loss", out)
        self.assertEqual(code, 0)

    def test_formatTime(self) -> None:
        """
        Times have iputils' precision: fewer decimals as they grow.
        """
        self.assertEqual([formatTime(t) for t in (0.0456, 1.234, 12.34, 123.4)],
                         ["0.046", "1.23", "12.3", "123"])
