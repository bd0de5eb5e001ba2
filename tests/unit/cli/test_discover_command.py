"""
Tests for C{netservices discover} (L{services.cli.discover}) and the
L{services.discovery.discover} client under it, over a memory reactor.
"""

from __future__ import annotations

import io
import json
import socket
import sys
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import SynchronousTestCase

from services.cli import buildParser
from services.cli.discover import formatTable, run
from services.config import LIMITED_BROADCAST
from services.discovery import discover
from services.discovery._wire import ANNOUNCE, REPLY, Message, decode, encode, query
from tests.support import freePort
from tests.udpsupport import UdpMemoryReactor

ALPHA = "a" * 32
BETA = "b" * 32


def reply(nonce: str, id: str = ALPHA, name: str = "alpha", ports: int = 8007) -> bytes:
    """
    A reply datagram echoing C{nonce}.
    """
    return encode(Message(REPLY, id, name, 15, {"echo": (ports,), "web": (8080,)}, nonce))


class DiscoverTests(SynchronousTestCase):
    """
    L{discover} queries, listens until the timeout, and returns the peers.
    """

    def setUp(self) -> None:
        """
        A memory reactor and a free discovery port.
        """
        self.reactor = UdpMemoryReactor()
        self.port = freePort(socket.SOCK_DGRAM)

    def start(self, timeout: float = 2.0) -> Deferred[list[dict[str, Any]]]:
        """
        Start L{discover} on the broadcast address.
        """
        return ensureDeferred(discover(self.reactor, ("127.255.255.255", self.port), timeout))

    def test_queryAndReplies(self) -> None:
        """
        A padded query goes to the broadcast address from a loopback
        socket; replies that echo its nonce are the result, with their ages.
        """
        d = self.start()
        client, receiver = self.reactor.datagramPorts
        self.assertEqual(client.host[0], "127.0.0.1")
        self.assertEqual(receiver.host, ("127.255.255.255", self.port))
        [(data, address)] = client.written
        self.assertEqual(address, ("127.255.255.255", self.port))
        self.assertEqual(len(data), 1200)
        nonce = decode(data).nonce
        client.protocol.datagramReceived(reply(nonce), ("127.0.0.1", self.port))
        client.protocol.datagramReceived(reply("0" * 16, BETA, "forged"), ("127.0.0.1", 5555))
        self.reactor.advance(1)
        self.assertEqual(len(client.written), 2, "a second query halfway")
        self.assertNoResult(d)
        self.reactor.advance(1)
        [peer] = self.successResultOf(d)
        self.assertEqual(peer["name"], "alpha")
        self.assertEqual(peer["services"], {"echo": [8007], "web": [8080]})
        self.assertEqual(peer["age"], 2.0)
        self.assertFalse(client.listening)
        self.assertFalse(receiver.listening)

    def test_announces(self) -> None:
        """
        Announces heard on the broadcast address count too.
        """
        d = self.start()
        receiver = self.reactor.datagramPorts[1]
        announce = encode(Message(ANNOUNCE, BETA, "beta", 15, {"echo": (7007,)}))
        receiver.protocol.datagramReceived(announce, ("127.0.0.1", self.port))
        self.reactor.pump([1, 1])
        self.assertEqual([p["name"] for p in self.successResultOf(d)], ["beta"])

    def test_answersNothing(self) -> None:
        """
        The client answers no query and announces nothing.
        """
        d = self.start()
        client, receiver = self.reactor.datagramPorts
        receiver.protocol.datagramReceived(b"x", ("127.0.0.1", 6000))
        receiver.protocol.datagramReceived(query("1" * 16), ("127.0.0.1", 6000))
        self.reactor.pump([1, 1])
        self.assertEqual(self.successResultOf(d), [])
        self.assertEqual(len(client.written), 2)
        self.assertEqual(receiver.written, [])

    def test_unicastTarget(self) -> None:
        """
        Querying one host's address, the client does not bind that address
        (it would take the queries meant for the instances there).
        """
        d = ensureDeferred(discover(self.reactor, ("127.0.0.1", self.port), 1.0))
        self.assertEqual(len(self.reactor.datagramPorts), 1)
        self.reactor.pump([0.5, 0.5])
        self.successResultOf(d)

    def test_sendError(self) -> None:
        """
        A query the system refuses is an L{OSError}, after the sockets are
        closed.
        """
        self.reactor.writeError = OSError(101, "Network is unreachable")
        failure = self.failureResultOf(self.start(), OSError)
        self.assertEqual(failure.value.strerror, "Network is unreachable")
        self.assertFalse(any(p.listening for p in self.reactor.datagramPorts))


def peer(name: str, age: float, **services: list[int]) -> dict[str, Any]:
    """
    A peer dictionary as L{discover} gives them.
    """
    return {
        "name": name,
        "id": ALPHA,
        "address": "127.0.0.1:8009",
        "services": services,
        "age": age,
        "ttl": 15,
    }


class CommandTests(SynchronousTestCase):
    """
    C{netservices discover} parses its options, prints a table or JSON
    lines, and says by its status whether it found anything.
    """

    def setUp(self) -> None:
        """
        A memory reactor, and stderr captured.
        """
        self.reactor = UdpMemoryReactor()
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def parse(self, *args: str) -> Any:
        """
        Parse C{netservices discover ARGS}.
        """
        return buildParser().parse_args(["discover", *args])

    def test_parser(self) -> None:
        """
        The defaults query this host's broadcast address on 8009 for 2 s;
        every option is documented and the help has examples.
        """
        args = self.parse()
        self.assertEqual(
            (args.timeout, args.json, args.broadcast, args.port),
            (2.0, False, "127.255.255.255", 8009),
        )
        args = self.parse(
            "--timeout", "0.5", "--json", "--broadcast", LIMITED_BROADCAST, "--port", "9"
        )
        self.assertEqual(
            (args.timeout, args.json, args.broadcast, args.port), (0.5, True, LIMITED_BROADCAST, 9)
        )
        parser = buildParser()
        subparsers = next(a for a in parser._actions if a.dest == "command")
        discoverParser = subparsers.choices["discover"]  # type: ignore[attr-defined]
        self.assertIn("examples:", discoverParser.epilog)
        self.assertTrue(discoverParser.description)
        for action in discoverParser._actions:
            self.assertTrue(action.help, action.dest)

    def test_badOptions(self) -> None:
        """
        Bad values are usage errors (status 2) that say what is allowed.
        """
        for args, message in (
            (["--timeout", "0"], "expected a number of seconds > 0"),
            (["--port", "70000"], "expected a whole number from 1 to 65535"),
            (["--broadcast", "everyone"], "expected auto, an IPv4 broadcast address"),
            (["--family", "5"], "invalid choice: '5'"),
        ):
            with self.assertRaises(SystemExit) as caught:
                self.parse(*args)
            self.assertEqual(caught.exception.code, 2)
            self.assertIn(message, self.stderr.getvalue())

    def run_(self, *args: str) -> tuple[Deferred[int], io.StringIO]:
        """
        Start the command on a free port; its result and its output.
        """
        out = io.StringIO()
        port = str(freePort(socket.SOCK_DGRAM))
        d = ensureDeferred(run(self.reactor, self.parse("--port", port, *args), out))
        return d, out

    def answer(self) -> None:
        """
        Answer the query with replies from alpha and beta.
        """
        client = self.reactor.datagramPorts[0]
        nonce = decode(client.written[0][0]).nonce
        client.protocol.datagramReceived(reply(nonce), ("127.0.0.1", 8009))
        client.protocol.datagramReceived(reply(nonce, BETA, "beta", 7007), ("127.0.0.1", 8009))

    def test_table(self) -> None:
        """
        Found instances are printed as a table; the status is 0.
        """
        d, out = self.run_()
        self.answer()
        self.reactor.pump([1, 1])
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(
            out.getvalue().splitlines(),
            [
                "NAME   ADDRESS         IPV4                                    IPV6  AGE",
                "alpha  127.0.0.1:8009  echo:127.0.0.1:8007 web:127.0.0.1:8080  -     2.0s",
                "beta   127.0.0.1:8009  echo:127.0.0.1:7007 web:127.0.0.1:8080  -     2.0s",
            ],
        )

    def test_json(self) -> None:
        """
        With C{--json}, one JSON object per instance and line.
        """
        d, out = self.run_("--json")
        self.answer()
        self.reactor.pump([1, 1])
        self.assertEqual(self.successResultOf(d), 0)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual([p["name"] for p in lines], ["alpha", "beta"])
        self.assertEqual(lines[1]["services"], {"echo": [7007], "web": [8080]})
        self.assertEqual(
            set(lines[0]),
            {"name", "id", "address", "services", "endpoints", "via", "age", "ttl"},
        )

    def test_nothingFound(self) -> None:
        """
        When nothing answers, the status is 1 and stderr says where it
        looked; stdout stays empty.
        """
        d, out = self.run_("--timeout", "0.5", "--broadcast", "127.0.0.1")
        self.reactor.pump([0.25, 0.25])
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(out.getvalue(), "")
        self.assertRegex(
            self.stderr.getvalue(),
            r"^netservices discover: no instance answered on 127\.0\.0\.1:\d+ within 0\.5 s\n$",
        )

    def test_sendError(self) -> None:
        """
        A query that cannot be sent gives one line on stderr and status 1.
        """
        self.reactor.writeError = OSError(101, "Network is unreachable")
        d, _out = self.run_()
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("error: cannot query 127.255.255.255:", self.stderr.getvalue())
        self.assertIn("Network is unreachable", self.stderr.getvalue())

    def test_formatTable(self) -> None:
        """
        Columns are aligned; each family's endpoints have a column, and a
        family (or an instance) with none shows C{-}; an instance described
        without endpoints is reached at the address it was heard from.
        """
        dual = peer("dual", 1.0)
        dual["endpoints"] = {"echo": ["198.18.0.1:7", "[2001:db8::1]:7"], "web": ["[2001:db8::1]:8"]}
        table = formatTable([peer("a-long-name", 0.25, echo=[7, 8]), peer("b", 12.0), dual])
        self.assertEqual(
            table.splitlines(),
            [
                "NAME         ADDRESS         IPV4                          IPV6" + " " * 38 + "AGE",
                "a-long-name  127.0.0.1:8009  echo:127.0.0.1:7,127.0.0.1:8  -" + " " * 41 + "0.2s",
                "b            127.0.0.1:8009  -                             -" + " " * 41 + "12.0s",
                (
                    "dual         127.0.0.1:8009  echo:198.18.0.1:7             "
                    "echo:[2001:db8::1]:7 web:[2001:db8::1]:8  1.0s"
                ),
            ],
        )
