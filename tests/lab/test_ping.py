# -*- test-case-name: tests.lab.test_ping -*-
"""
C{netservices ping} across hosts of the network lab (L{tests.netlab}), next
to iputils C{ping} from the same host to the same address.
"""

from __future__ import annotations

import json
import re
import subprocess

from twisted.trial.unittest import TestCase

from tests.netlab import Lab

_RECEIVED = re.compile(rb"(\d+) packets transmitted, (\d+) received")


class LabPingTests(TestCase):
    """
    A segment with a C{target} host (address 1) and a C{pinger} host
    (address 2); nothing else is on it.
    """

    def setUp(self) -> None:
        self.lab = Lab.create(self)
        self.lan = self.lab.segment("lan")
        self.target = self.lab.host("target", self.lan)
        self.pinger = self.lab.host("pinger", self.lan)

    def both(self, *argv: str) -> tuple[subprocess.CompletedProcess[bytes], ...]:
        """
        Run iputils C{ping ARGV} and C{netservices ping ARGV} in the pinger
        host at the same time.
        """
        commands = [["ping", *argv], ["netservices", "ping", *argv]]
        children = [
            self.pinger.popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands
        ]
        done = []
        for child, command in zip(children, commands):
            out, err = child.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(command, child.returncode, out, err))
        return tuple(done)

    def test_hostAnswers(self) -> None:
        """
        The target host answers both pings, over IPv4 and IPv6: every
        request, exit status 0, and netservices' JSON says so too.
        """
        for address in (self.target.ipv4(self.lan), self.target.ipv6(self.lan)):
            theirs, ours = self.both("-c", "3", "-i", "0.2", "-W", "2", address)
            self.assertEqual((theirs.returncode, ours.returncode), (0, 0), (theirs.stderr, ours.stderr))
            self.assertEqual(_RECEIVED.search(ours.stdout).groups(), (b"3", b"3"))  # type: ignore[union-attr]
            self.assertEqual(
                _RECEIVED.search(ours.stdout).groups(), _RECEIVED.search(theirs.stdout).groups()  # type: ignore[union-attr]
            )
            self.assertIn(f"64 bytes from {address}: icmp_seq=1 ttl=64 ".encode(), ours.stdout)
            done = self.pinger.run(["netservices", "ping", "--json", "-c", "2", "-i", "0.2", "-W", "2", address])
            result = json.loads(done.stdout)
            self.assertEqual((result["address"], result["received"]), (address, 2))

    def test_unassignedAddress(self) -> None:
        """
        An address of the segment that no host has: 100% packet loss and
        exit status 1, for both pings.
        """
        unassigned = self.target.ipv4(self.lan).rsplit(".", 1)[0] + ".99"
        theirs, ours = self.both("-c", "2", "-i", "0.2", "-W", "1", unassigned)
        self.assertEqual((theirs.returncode, ours.returncode), (1, 1), (theirs.stdout, ours.stdout))
        self.assertIn(b"2 packets transmitted, 0 received", ours.stdout)
        self.assertIn(b"100% packet loss", ours.stdout)
        self.assertIn(b"100% packet loss", theirs.stdout)
        self.assertNotIn(b"rtt min/avg/max", ours.stdout)
