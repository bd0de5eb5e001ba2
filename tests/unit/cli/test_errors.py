# -*- test-case-name: tests.unit.cli.test_errors -*-
"""
Tests for what the C{netservices} commands say about a bad command line:
one line naming the command and what to fix, for every option of every
command, and each command's own exit statuses in its --help.
"""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import TestCase

from services import cli
from services.cli import echo, fetch

SEE = "; see netservices {} --help"

#: A bad command line, its exit status and the whole line on stderr
#: (C{{see}} stands for "; see netservices COMMAND --help").
BAD: tuple[tuple[str, int, str], ...] = (
    ("fetch", 2, "the following arguments are required: URL{see}"),
    ("fetch ftp://x/", 2, "unsupported URL 'ftp://x/': expected http://HOST/... or https://HOST/..."),
    ("fetch http://h/ -X", 2, "argument -X/--request: needs a value{see}"),
    ("fetch http://h/ -q novalue", 2, "-q 'novalue': expected NAME=VALUE"),
    ("fetch http://h/ -d novalue", 2, "-d 'novalue': expected NAME=VALUE"),
    ("fetch http://h/ --json '[1'", 2, "--json: not valid JSON: Expecting ',' delimiter: line 1 column 3 (char 2)"),
    ("fetch http://h/ --json 1 -d a=b", 2, "-d and --json cannot be combined"),
    ("fetch http://h/ -H nocolon", 2, "-H 'nocolon': expected 'Name: value'"),
    ("fetch http://h/ -A", 2, "argument -A/--user-agent: needs a value{see}"),
    ("fetch http://h/ -u", 2, "argument -u/--user: needs a value{see}"),
    ("fetch http://h/ -x ftp://p", 2, "unsupported proxy URL 'ftp://p': only http:// proxies are supported"),
    ("fetch http://h/ --cacert missing.pem", 2, "--cacert missing.pem: cannot read it: no such file or directory"),
    (
        "fetch http://h/ --cacert junk.pem",
        2,
        "--cacert junk.pem: not a PEM file of CA certificates (no -----BEGIN CERTIFICATE----- line)",
    ),
    ("fetch http://h/ -k=1", 2, "argument -k/--insecure: takes no value (got '1'){see}"),
    ("fetch http://h/ --location=1", 2, "argument -L/--location: takes no value (got '1'){see}"),
    ("fetch http://h/ --max-redirs x", 2, "argument --max-redirs: 'x' is not a whole number >= 0{see}"),
    ("fetch http://h/ -m 0", 2, "argument -m/--max-time: '0' is not a number of seconds > 0{see}"),
    ("fetch http://h/ --retry -1", 2, "argument --retry: '-1' is not a whole number >= 0{see}"),
    (
        "fetch http://h/ --max-size lots",
        2,
        "argument --max-size: 'lots': expected a size in bytes such as 65536, 64K or 1MiB{see}",
    ),
    (
        "fetch http://h/ -o /nonexistent/dir/file",
        23,
        "-o /nonexistent/dir/file: cannot write: the directory /nonexistent/dir does not exist",
    ),
    ("fetch http://h/ --compressed=1", 2, "argument --compressed: takes no value (got '1'){see}"),
    ("fetch http://h/ --keep-error=1", 2, "argument --keep-error: takes no value (got '1'){see}"),
    ("fetch http://h/ --include=1", 2, "argument -i/--include: takes no value (got '1'){see}"),
    ("fetch http://h/ --fail=1", 2, "argument -f/--fail: takes no value (got '1'){see}"),
    ("fetch http://h/ --verbose=1", 2, "argument -v/--verbose: takes no value (got '1'){see}"),
    ("fetch http://h/ --bogus", 2, "unknown option --bogus{see}"),
    ("fetch http://h/ --locatoin", 2, "unknown option --locatoin (did you mean --location?){see}"),
    ("echo", 2, "expected HOST PORT, or --unix PATH"),
    ("echo --unix", 2, "argument --unix: needs a value{see}"),
    ("echo --unix p h 7", 2, "--unix PATH takes no HOST PORT and no --udp"),
    ("echo h 7 --dgram", 2, "--dgram and --seqpacket go with --unix PATH"),
    ("echo --unix p --dgram --seqpacket", 2, "argument --seqpacket: not allowed with argument --dgram{see}"),
    ("echo h 7 --udp --size 70000", 2, "--size: at most 65507 bytes in a datagram"),
    ("echo h notaport", 2, "argument PORT: 'notaport' is not a port from 1 to 65535{see}"),
    ("echo h 7 --udp=1", 2, "argument --udp: takes no value (got '1'){see}"),
    ("echo h 7 --count 0", 2, "argument --count: '0' is not a whole number >= 1{see}"),
    ("echo h 7 --interval x", 2, "argument --interval: 'x' is not a number of seconds >= 0{see}"),
    ("echo h 7 --size 300000", 2, "argument --size: '300000' is not a probe size in bytes from 8 to 204800{see}"),
    ("echo h 7 --timeout 0", 2, "argument --timeout: '0' is not a number of seconds > 0{see}"),
    ("echo h 7 --udpp", 2, "unknown option --udpp (did you mean --udp?){see}"),
    ("resolve", 2, "the following arguments are required: NAME{see}"),
    ("resolve h --service", 2, "argument --service: needs a value{see}"),
    ("resolve h --proto sctp", 2, "argument --proto: invalid choice: 'sctp' (choose from 'tcp', 'udp'){see}"),
    ("resolve h --bogus", 2, "unknown option --bogus{see}"),
    ("discover --timeout 0", 2, "argument --timeout: expected a number of seconds > 0{see}"),
    ("discover --json=1", 2, "argument --json: takes no value (got '1'){see}"),
    (
        "discover --broadcast nope",
        2,
        (
            "argument --broadcast: expected auto, an IPv4 broadcast address such as "
            "127.255.255.255 or 192.168.1.255, <broadcast>, or a multicast group in "
            "239.255.0.0/16{see}"
        ),
    ),
    ("discover --interface", 2, "argument --interface: needs a value{see}"),
    ("discover --family x", 2, "argument --family: invalid choice: 'x' (choose from '4', '6', 'any'){see}"),
    ("discover --port 0", 2, "argument --port: expected a whole number from 1 to 65535{see}"),
    ("discover --bogus", 2, "unknown option --bogus{see}"),
    (
        "discover --mdns http",
        2,
        "argument --mdns: 'http': expected a service type such as _http._tcp, or all{see}",
    ),
    ("ping", 2, "the following arguments are required: HOST{see}"),
    ("ping h -c 0", 2, "argument -c: '0' is not a whole number >= 1{see}"),
    ("ping h -i x", 2, "argument -i: 'x' is not a number of seconds >= 0{see}"),
    ("ping h -W 0", 2, "argument -W: '0' is not a number of seconds > 0{see}"),
    ("ping h -s 70000", 2, "argument -s: '70000' is not a payload size in bytes from 0 to 65507{see}"),
    ("ping h -t 0", 2, "argument -t: '0' is not a TTL from 1 to 255{see}"),
    ("ping h -4 -6", 2, "argument -6: not allowed with argument -4{see}"),
    ("ping h -q=1", 2, "argument -q: takes no value (got '1'){see}"),
    ("ping h --json=1", 2, "argument --json: takes no value (got '1'){see}"),
    ("ping h --bogus", 2, "unknown option --bogus{see}"),
    ("serve . notaport", 2, "argument PORT: 'notaport' is not a port from 0 to 65535{see}"),
    (
        "serve . 8000 --bind nope",
        2,
        "argument --bind: 'nope' is not an IP address; expected e.g. 127.0.0.1, 0.0.0.0 or ::1{see}",
    ),
    ("serve . 8000 --bogus", 2, "unknown option --bogus{see}"),
    ("throughput", 2, "the following arguments are required: HOST{see}"),
    ("throughput h -t 0", 2, "argument -t/--time: '0' is not a number > 0{see}"),
    ("throughput h -P 0", 2, "argument -P/--parallel: '0' is not a whole number >= 1{see}"),
    ("throughput h -i x", 2, "argument -i/--interval: 'x' is not a number > 0{see}"),
    ("throughput h --json=1", 2, "argument --json: takes no value (got '1'){see}"),
    ("throughput h -R=1", 2, "argument -R/--reverse: takes no value (got '1'){see}"),
    ("throughput h --bidir=1", 2, "argument --bidir: takes no value (got '1'){see}"),
    ("throughput h --latency=1", 2, "argument --latency: takes no value (got '1'){see}"),
    ("throughput h --udp=1", 2, "argument --udp: takes no value (got '1'){see}"),
    ("throughput h --rate x", 2, "argument --rate: 'x' is not a number > 0{see}"),
    ("throughput h --wait x", 2, "argument --wait: 'x' is not a number > 0{see}"),
    ("throughput h -l 0", 2, "argument -l/--length: '0' is not a whole number >= 1{see}"),
    ("throughput h --discard-port x", 2, "argument --discard-port: 'x' is not a port from 1 to 65535{see}"),
    ("throughput h --chargen-port x", 2, "argument --chargen-port: 'x' is not a port from 1 to 65535{see}"),
    ("throughput h --echo-port x", 2, "argument --echo-port: 'x' is not a port from 1 to 65535{see}"),
    ("throughput h --close-timeout x", 2, "argument --close-timeout: 'x' is not a number > 0{see}"),
    ("throughput h --bogus", 2, "unknown option --bogus{see}"),
)


class BadCommandLineTests(TestCase):
    """
    Every option of every command answers a bad value with one line on
    stderr, and the exit status of a bad command line.
    """

    def run_(self, line: str) -> tuple[int, str]:
        """
        The exit status and stderr of C{netservices LINE}, up to the point
        where a request would be sent.
        """
        argv = shlex.split(line)
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        try:
            args, extra = cli.buildParser().parse_known_args(argv)
            if extra:
                cli.buildParser().commands[args.command].error(
                    "unrecognized arguments: " + " ".join(extra)
                )
        except SystemExit as e:
            return int(e.code or 0), stderr.getvalue()
        if argv[0] == "echo":
            done = ensureDeferred(echo.echo(None, args, io.StringIO(), stderr))
        else:
            self.assertEqual(argv[0], "fetch", f"{line!r} was accepted")
            done = ensureDeferred(fetch.fetch(None, args, {}, io.BytesIO(), stderr))
        return self.successResultOf(done), stderr.getvalue()

    def test_table(self) -> None:
        """
        Each line of L{BAD} exits with its status and exactly its message.
        """
        Path("junk.pem").write_text("not a certificate\n")
        for line, status, message in BAD:
            command = shlex.split(line)[0]
            expected = f"netservices {command}: " + message.format(see=SEE.format(command)) + "\n"
            self.assertEqual(self.run_(line), (status, expected), line)

    def test_everyOptionCovered(self) -> None:
        """
        L{BAD} has a bad input for every option of every command.
        """
        parser = cli.buildParser()
        for name, command in parser.commands.items():
            lines = [shlex.split(line)[1:] for line, _, _ in BAD if line.split()[0] == name]
            given = {arg.partition("=")[0] for args in lines for arg in args if arg.startswith("-")}
            for action in command._actions:
                if action.option_strings and "--help" not in action.option_strings:
                    self.assertTrue(set(action.option_strings) & given, (name, action.option_strings))

    def test_unknownOptionAfterArguments(self) -> None:
        """
        An unknown option after a command's arguments is the command's
        error, not the top-level usage (argparse blames the top level).
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as caught:
            cli.main(["fetch", "http://127.0.0.1:1/", "--bogus"])
        self.assertEqual(caught.exception.code, 2)
        self.assertEqual(
            stderr.getvalue(), "netservices fetch: unknown option --bogus" + SEE.format("fetch") + "\n"
        )


    def test_blankExtraArgument(self) -> None:
        """
        A blank extra argument (argparse's message joins the arguments, so
        nothing of it is left to name) is still one line, not a traceback.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as caught:
            cli.main(["resolve", "localhost", " "])
        self.assertEqual(caught.exception.code, 2)
        self.assertEqual(
            stderr.getvalue(),
            "netservices resolve: unexpected blank argument ' '" + SEE.format("resolve") + "\n",
        )


class ExitStatusHelpTests(TestCase):
    """
    Each command's --help lists its own exit statuses.
    """

    def epilog(self, name: str) -> str:
        return cli.buildParser().commands[name].epilog or ""

    def test_echo(self) -> None:
        """
        echo lists what an echo can end with, not fetch's HTTP and TLS
        statuses.
        """
        text = self.epilog("echo")
        for status in ("  1  ", "  2  ", "  6  ", "  7  ", " 28  ", " 56  "):
            self.assertIn(status, text)
        for status in (" 22  ", " 23  ", " 35  ", " 47  ", " 60  ", " 63  "):
            self.assertNotIn(status, text)

    def test_resolve(self) -> None:
        """
        resolve lists 0, 1, 2 and 6 only.
        """
        statuses = [line.split()[0] for line in self.epilog("resolve").split("exit status:")[1].splitlines() if line.strip()]
        self.assertEqual(statuses, ["0", "1", "2", "6"])

    def test_fetch(self) -> None:
        """
        fetch lists every status.
        """
        text = self.epilog("fetch")
        for status in (" 22  ", " 23  ", " 35  ", " 47  ", " 60  ", " 63  "):
            self.assertIn(status, text)
