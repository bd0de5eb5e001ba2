"""
C{netservices ping} against loopback, next to iputils C{ping} on the same
target in the same test, on both kinds of ICMP socket.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest, TestCase

from services.client import PingOptions, ping
from tests.clientservers import cliCommand, cliEnvironment
from tests.support import ROOT, canIsolateNetwork, hasIPv6Loopback, isolatedNetwork

#: Few requests, close together, each waited for at most 2 s: fast, and
#: loopback always answers.
_OPTIONS = ["-c", "3", "-i", "0.2", "-W", "2"]
_REPLY = re.compile(r"^(\d+) bytes from (\S+): icmp_seq=(\d+) ttl=(\d+) time=[\d.]+ ms$", re.MULTILINE)
_RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) received")


def _iputils() -> str:
    found = shutil.which("ping")
    if found is None:
        raise SkipTest("iputils ping is not installed (sh tests/system-deps.sh)")
    return found


def _side_by_side(target: str, wrap: list[str] | None = None) -> tuple[subprocess.CompletedProcess[str], ...]:
    """
    Run iputils C{ping} and C{netservices ping} on C{target} at the same
    time, each in C{wrap} (a namespace) if given.
    """
    wrap = wrap or []
    commands = [[_iputils(), *_OPTIONS, target], [*cliCommand(), "ping", *_OPTIONS, target]]
    children = [
        subprocess.Popen(wrap + c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=cliEnvironment(), cwd=str(ROOT))
        for c in commands
    ]
    done = []
    for child, command in zip(children, commands):
        out, err = child.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(command, child.returncode, out, err))
    return tuple(done)


class LoopbackTests(TestCase):
    """
    Both pings get the same replies from 127.0.0.1 and ::1.
    """

    def setUp(self) -> None:
        if os.geteuid() != 0:
            raise SkipTest("needs root for raw ICMP sockets and namespaces")

    def assertAgree(self, target: str, wrap: list[str] | None = None) -> dict[str, object]:
        """
        iputils and netservices both get every reply, in lines of the
        same form, and both exit 0; returns netservices' JSON of a third run.
        """
        theirs, ours = _side_by_side(target, wrap)
        self.assertEqual((theirs.returncode, ours.returncode), (0, 0), (theirs.stderr, ours.stderr))
        self.assertEqual(_RECEIVED.search(ours.stdout).groups(), ("3", "3"))  # type: ignore[union-attr]
        self.assertEqual(
            _RECEIVED.search(theirs.stdout).groups(), _RECEIVED.search(ours.stdout).groups()  # type: ignore[union-attr]
        )
        ourLines = [m[:3] for m in _REPLY.findall(ours.stdout)]
        self.assertEqual(ourLines, [m[:3] for m in _REPLY.findall(theirs.stdout)])
        self.assertEqual(ourLines, [("64", target, str(n)) for n in (1, 2, 3)])
        self.assertIn(f"--- {target} ping statistics ---", ours.stdout)
        self.assertIn("rtt min/avg/max/mdev = ", ours.stdout)
        run = subprocess.run([*(wrap or []), *cliCommand(), "ping", "--json", *_OPTIONS, target],
                             check=False, capture_output=True, text=True, env=cliEnvironment(), timeout=60)
        return json.loads(run.stdout)  # type: ignore[no-any-return]

    def test_ipv4(self) -> None:
        """
        On 127.0.0.1, here (a raw socket for root, unless the machine
        allows root's group ICMP datagram sockets).
        """
        result = self.assertAgree("127.0.0.1")
        self.assertEqual(result["received"], 3)

    def test_ipv6(self) -> None:
        """
        On ::1, here.
        """
        if not hasIPv6Loopback():
            raise SkipTest("no IPv6 loopback")
        self.assertEqual(self.assertAgree("::1")["received"], 3)

    def test_datagramSockets(self) -> None:
        """
        Where C{ping_group_range} allows them (in a namespace of the test's
        own), the unprivileged datagram socket is chosen, on both families.
        """
        if not canIsolateNetwork():
            raise SkipTest("cannot make a network namespace here")
        wrap = isolatedNetwork([], pingGroups=True)
        for target in ("127.0.0.1", "::1"):
            result = self.assertAgree(target, wrap)
            self.assertEqual((result["socket"], result["received"]), ("dgram", 3))

    def test_neitherSocket(self) -> None:
        """
        For a user with neither kind of socket, one line names both ways to
        enable one, and the exit status is 2.
        """
        if not canIsolateNetwork() or shutil.which("setpriv") is None:
            raise SkipTest("cannot make a network namespace here")
        nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]
        run = subprocess.run(isolatedNetwork(nobody + cliCommand() + ["ping", "-c", "1", "127.0.0.1"]),
                             check=False, capture_output=True, text=True, env=cliEnvironment(), timeout=60)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertEqual(run.stdout, "")
        self.assertIn("net.ipv4.ping_group_range", run.stderr)
        self.assertIn("CAP_NET_RAW", run.stderr)


class RawSocketTests(TestCase):
    """
    The raw socket path forced through the library, under the real reactor.
    """

    async def test_raw(self) -> None:
        """
        C{socketKind="raw"} pings 127.0.0.1 and ::1 through
        C{getprotobyname}'s raw ICMP sockets, replies matched among every
        ICMP packet of the host.
        """
        if os.geteuid() != 0:
            raise SkipTest("raw ICMP sockets need root")
        options = PingOptions(count=2, interval=0.2, timeout=5, size=1000, socketKind="raw")
        targets = ["127.0.0.1"] + (["::1"] if hasIPv6Loopback() else [])
        for target in targets:
            result = await ping(reactor, target, options)
            self.assertEqual((result.socketKind, result.received, result.malformed), ("raw", 2, 0))
            self.assertEqual({r.size for r in result.replies}, {1008})
            family = socket.AF_INET6 if ":" in target else socket.AF_INET
            self.assertEqual(result.family, family)
