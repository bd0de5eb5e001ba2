"""
Tests of the C{netservices} command line and of C{netservices fetch}
against local test servers, run as a user would: a child process.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from services import cli
from services.cli import exits
from services.cli.fetch import _statusBlock
from services.cli.fetchplan import Plan
from services.client import Response
from tests.clientservers import (
    bigDigest,
    cliEnvironment,
    makeCertificates,
    measured,
    runCLI,
    startWebServer,
)
from tests.support import freePort, temporaryDirectory


class HelpTests(SynchronousTestCase):
    """
    C{--help} documents every option, with examples and exit statuses.
    """

    def commands(self) -> dict[str, argparse.ArgumentParser]:
        """
        The subcommand parsers by name.
        """
        parser = cli.buildParser()
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    def test_commands(self) -> None:
        """
        fetch, echo and resolve are commands; the top-level help has an
        example of each.
        """
        commands = self.commands()
        for name in ("fetch", "echo", "resolve"):
            self.assertIn(name, commands)
        text = cli.buildParser().format_help()
        self.assertIn("examples:", text)
        for name in ("fetch", "echo", "resolve"):
            self.assertIn(f"netservices {name} ", text)

    def test_everyOptionDocumented(self) -> None:
        """
        Every argument of every command has help text, and each command's
        help has examples and the exit statuses.
        """
        for name, parser in self.commands().items():
            for action in parser._actions:
                self.assertTrue(action.help, f"{name} {action.option_strings or action.dest}")
            text = parser.format_help()
            examples = parser.epilog or ""
            for action in parser._actions:
                if not action.option_strings or "-h" in action.option_strings:
                    continue
                shown = "e.g." in (action.help or "") or any(
                    f" {option} " in examples or f" {option}\n" in examples
                    for option in action.option_strings
                )
                self.assertTrue(shown, f"{name} {action.option_strings} has no example")
            self.assertIn("examples:", text, name)
            self.assertIn(f"netservices {name}", text, name)
            self.assertIn("exit status:", text, name)

    def test_fetchOptions(self) -> None:
        """
        fetch has the options of the issue, curl-style.
        """
        text = self.commands()["fetch"].format_help()
        for option in ("-X", "-q", "-d", "--json", "-H", "-A", "-u", "-x", "--cacert", "-k", "-L",
                       "--max-redirs", "-m", "--retry", "--max-size", "-o", "-i", "-f", "-v"):
            self.assertIn(option, text)

    def test_onlyOwnExitCodes(self) -> None:
        """
        Only fetch's help lists the HTTP and TLS exit statuses: serve and
        throughput list the statuses they can exit with, not fetch's.
        """
        fetchOnly = (exits.HTTP_ERROR, exits.WRITE_ERROR, exits.TLS_HANDSHAKE, exits.REDIRECTS,
                     exits.TLS_VERIFY, exits.BAD_CONTENT_ENCODING, exits.TOO_LARGE)
        for name, parser in self.commands().items():
            if name == "fetch":
                continue
            statuses = (parser.epilog or "").split("exit status:")[-1]
            listed = {int(line.split()[0]) for line in statuses.splitlines()
                      if line.strip()[:1].isdigit()}
            self.assertTrue(listed, name)
            self.assertEqual(listed & set(fetchOnly), set(), name)

    def test_distinctExitCodes(self) -> None:
        """
        The documented exit statuses are distinct.
        """
        codes = [code for code, _ in exits.EXIT_CODES]
        self.assertEqual(len(codes), len(set(codes)))


def parse(*argv: str) -> argparse.Namespace:
    """
    Parse C{netservices fetch ARGV}.
    """
    return cli.buildParser().parse_args(["fetch", *argv])


class PlanTests(SynchronousTestCase):
    """
    How fetch's arguments become a request.
    """

    def test_defaults(self) -> None:
        """
        GET, with the default User-Agent, http:// assumed.
        """
        plan = Plan.fromArgs(parse("127.0.0.1:8080/x"), {})
        self.assertEqual((plan.method, plan.url), ("GET", "http://127.0.0.1:8080/x"))
        self.assertEqual(plan.userAgent, "netservices/0.1.0")

    def test_bodyMeansPost(self) -> None:
        """
        -d or --json make it a POST unless -X says otherwise.
        """
        self.assertEqual(Plan.fromArgs(parse("http://h/", "-d", "a=1"), {}).method, "POST")
        self.assertEqual(Plan.fromArgs(parse("http://h/", "--json", "1"), {}).method, "POST")
        self.assertEqual(Plan.fromArgs(parse("http://h/", "-X", "put", "--json", "1"), {}).method, "PUT")

    def test_pairs(self) -> None:
        """
        -q, -d and -H split at the first separator.
        """
        plan = Plan.fromArgs(parse("http://h/", "-q", "a=b=c", "-d", "x=", "-H", "X-T:  v: w "), {})
        self.assertEqual(plan.params, [("a", "b=c")])
        self.assertEqual(plan.form, [("x", "")])
        self.assertEqual(plan.headers, [("X-T", "v: w")])

    def test_bad(self) -> None:
        """
        Malformed values are usage errors with a message.
        """
        from services.cli.fetchplan import UnusableArgument

        for argv in (("-q", "novalue"), ("-H", "nocolon"), ("--json", "{oops"), ("-d", "a=1", "--json", "1")):
            self.assertRaises(UnusableArgument, Plan.fromArgs, parse("http://h/", *argv), {})
        self.assertRaises(UnusableArgument, Plan.fromArgs, parse("ftp://h/"), {})
        self.assertRaises(UnusableArgument, Plan.fromArgs, parse("http://h/", "-x", "socks5://p:1"), {})

    def test_where(self) -> None:
        """
        Errors name the proxy when the URL goes through one.
        """
        env = {"http_proxy": "http://127.0.0.1:3128"}
        self.assertEqual(Plan.fromArgs(parse("http://h:81/"), env).where(), "proxy 127.0.0.1:3128")
        self.assertEqual(Plan.fromArgs(parse("https://h/"), env).where(), "h:443")

    def test_statusBlock(self) -> None:
        """
        -i prints the status line and headers, CRLF-separated, as received.
        """
        response = Response(200, "OK", "HTTP/1.1", (("A", "1"), ("B", "2")), "u")
        self.assertEqual(_statusBlock(response), b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n")


class FetchTests(TestCase):
    """
    C{netservices fetch} as a child process against a local twisted.web
    server.
    """

    timeout = 120

    def setUp(self) -> None:
        """
        Start the test site.
        """
        self.web = startWebServer(reactor)
        self.addCleanup(self.web.stop)

    async def fetch(self, *args: str, env: dict[str, str] | None = None) -> tuple[bytes, str, int]:
        """
        Run C{netservices fetch ARGS}; (stdout, stderr text, status).
        """
        out, err, code = await runCLI(reactor, ["fetch", *args], env=cliEnvironment(env))
        return out, err.decode(), code

    async def test_body(self) -> None:
        """
        The body goes to stdout; the server sees the default User-Agent,
        query parameters and headers.
        """
        out, err, code = await self.fetch(self.web.url("/headers"), "-q", "q=a b", "-q", "n=1", "-H", "X-Trace: 7")
        self.assertEqual((code, err), (0, ""))
        seen = json.loads(out)
        self.assertEqual(seen["uri"], "/headers?q=a+b&n=1")
        self.assertEqual(seen["args"], {"q": ["a b"], "n": ["1"]})
        self.assertEqual(seen["headers"]["user-agent"], ["netservices/0.1.0"])
        self.assertEqual(seen["headers"]["x-trace"], ["7"])

    async def test_formJSONAuthAgent(self) -> None:
        """
        -d sends a form, --json a JSON body, -u basic credentials, -A the
        User-Agent.
        """
        out, err, code = await self.fetch(self.web.url("/headers"), "-d", "name=Ada L", "-d", "x=1&2", "-u", "ada:pw", "-A", "probe/2")
        self.assertEqual(code, 0, err)
        seen = json.loads(out)
        self.assertEqual((seen["method"], seen["body"]), ("POST", "name=Ada+L&x=1%262"))
        self.assertEqual(seen["headers"]["content-type"], ["application/x-www-form-urlencoded"])
        self.assertEqual(seen["headers"]["authorization"], ["Basic YWRhOnB3"])
        self.assertEqual(seen["headers"]["user-agent"], ["probe/2"])
        out, err, code = await self.fetch(self.web.url("/headers"), "-X", "PUT", "--json", '{"n": [1, 2]}')
        seen = json.loads(out)
        self.assertEqual((seen["method"], json.loads(seen["body"])), ("PUT", {"n": [1, 2]}))

    async def test_include(self) -> None:
        """
        -i prints the status line and headers before the body.
        """
        out, err, code = await self.fetch(self.web.url("/status/201"), "-i")
        self.assertEqual(code, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 201 Created\r\n"), head)
        self.assertIn(b"\r\nContent-Length: 11", head)
        self.assertEqual(body, b"status 201\n")

    async def test_fail(self) -> None:
        """
        With -f an error status prints one line on stderr, no body, and
        exits 22; without -f the body is printed and the exit is 0.
        """
        out, err, code = await self.fetch(self.web.url("/status/404"), "-f")
        self.assertEqual((out, code), (b"", exits.HTTP_ERROR))
        self.assertEqual(err, f"netservices fetch: HTTP error 404 Not Found: {self.web.url('/status/404')}\n")
        out, err, code = await self.fetch(self.web.url("/status/404"))
        self.assertEqual((out, code), (b"status 404\n", 0))

    async def test_redirects(self) -> None:
        """
        GET follows redirects; POST only with -L (then as GET after a
        303); --max-redirs bounds them (exit 47).
        """
        target = self.web.url("/headers")
        hop = self.web.url(f"/redirect?to={target}")
        out, err, code = await self.fetch(hop)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["uri"], "/headers")
        out, err, code = await self.fetch(self.web.url(f"/redirect?to={target}&code=303"), "-d", "a=1")
        self.assertEqual((code, out), (0, b"moved\n"))  # not followed without -L
        out, err, code = await self.fetch(self.web.url(f"/redirect?to={target}&code=303"), "-d", "a=1", "-L")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["method"], "GET")
        out, err, code = await self.fetch(self.web.url(f"/redirect?to={hop}"), "--max-redirs", "1")
        self.assertEqual(code, exits.REDIRECTS, err)
        self.assertIn("more than 1 redirects", err)

    async def test_retry(self) -> None:
        """
        --retry sends again after 503s until it succeeds.
        """
        out, err, code = await self.fetch(self.web.url("/flaky?fails=2&key=r"), "--retry", "2", "-v")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, b"attempts=3\n")
        self.assertEqual(err.count("failed (503 Service Unavailable); retry"), 2)

    async def test_trickleTimeout(self) -> None:
        """
        A server that sends its headers and then trickles its body (100
        bytes over 20 s) makes C{fetch -m 2} give up on the body: it exits
        with the timeout status before the body is complete.
        """
        out, err, code = await self.fetch(self.web.url("/trickle"), "-m", "2")
        self.assertEqual(code, exits.TIMEOUT, err)
        self.assertLess(len(out), 100)
        self.assertEqual(err, f"netservices fetch: timed out after 2 s: {self.web.url('/trickle')}\n")

    async def test_tooLarge(self) -> None:
        """
        --max-size fails with exit 63.
        """
        _out, err, code = await self.fetch(self.web.url("/big?size=100000"), "--max-size", "64K")
        self.assertEqual(code, exits.TOO_LARGE, err)
        self.assertIn("larger than 65536 bytes", err)

    async def test_refused(self) -> None:
        """
        A refused connection exits 7 with the errno and its name, in one
        line, no traceback.
        """
        port = freePort()
        _out, err, code = await self.fetch(f"http://127.0.0.1:{port}/")
        self.assertEqual(code, exits.CONNECT)
        self.assertEqual(
            err,
            f"netservices fetch: cannot connect to 127.0.0.1:{port}: "
            "errno 111 (ECONNREFUSED): Connection refused\n",
        )

    async def test_usage(self) -> None:
        """
        Bad values exit 2 with one line.
        """
        _out, err, code = await self.fetch(self.web.url("/"), "--json", "{nope")
        self.assertEqual(code, exits.USAGE)
        self.assertTrue(err.startswith("netservices fetch: --json: not valid JSON"), err)
        self.assertEqual(err.count("\n"), 1)

    async def test_outputUnwritable(self) -> None:
        """
        An output file that cannot be written exits 23, leaving nothing.
        """
        target = temporaryDirectory(self) / "missing-directory" / "out"
        _out, err, code = await self.fetch(self.web.url("/headers"), "-o", str(target))
        self.assertEqual(code, exits.WRITE_ERROR, err)
        self.assertIn("cannot write", err)

    async def test_verbose(self) -> None:
        """
        -v shows the request and the response head on stderr, curl style.
        """
        _out, err, code = await self.fetch(self.web.url("/headers"), "-v", "-u", "ada:pw")
        self.assertEqual(code, 0, err)
        self.assertIn(f"> GET {self.web.url('/headers')}\n", err)
        self.assertIn("> User-Agent: netservices/0.1.0\n", err)
        self.assertIn("> Authorization: Basic (hidden)\n", err)
        self.assertIn("< HTTP/1.1 200 OK\n", err)
        self.assertNotIn("pw", err.replace("User-Agent", ""))

    async def test_download(self) -> None:
        """
        A 100 MB download with -o keeps the client's peak RSS under 100 MB,
        and the file's sha256 matches what the server sent.
        """
        size = 100 * 1024 * 1024
        target = temporaryDirectory(self) / "big.bin"
        _out, err, _code = await runCLI(
            reactor,
            ["fetch", self.web.url(f"/big?size={size}"), "-o", str(target)],
            env=cliEnvironment(),
            measure=True,
        )
        status, rss, own = measured(err)
        self.assertEqual(status, 0, own)
        self.assertEqual(target.stat().st_size, size)
        digest = hashlib.sha256()
        with target.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        self.assertEqual(digest.hexdigest(), bigDigest(size))
        self.assertLess(rss, 100 * 1024, f"peak RSS {rss} KiB")
        target.unlink()


class TLSTests(TestCase):
    """
    C{netservices fetch} over https to a server with a certificate the
    test makes.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Make a CA and a certificate for localhost; start the site over TLS.
        """
        directory = temporaryDirectory(self)
        self.certs = makeCertificates(directory, names=("localhost",), addresses=())
        self.web = startWebServer(reactor, tls=self.certs.serverOptions())
        self.addCleanup(self.web.stop)

    async def fetch(self, *args: str) -> tuple[bytes, str, int]:
        """
        Run C{netservices fetch ARGS}; (stdout, stderr text, status).
        """
        out, err, code = await runCLI(reactor, ["fetch", *args], env=cliEnvironment())
        return out, err.decode(), code

    async def test_cacert(self) -> None:
        """
        With --cacert the test CA is trusted and the host name checked.
        """
        url = self.web.url("/headers", scheme="https", host="localhost")
        out, err, code = await self.fetch(url, "--cacert", str(self.certs.ca))
        self.assertEqual(code, 0, err)
        self.assertTrue(json.loads(out)["secure"])

    async def test_untrusted(self) -> None:
        """
        Without --cacert the certificate is untrusted: exit 60.
        """
        _out, err, code = await self.fetch(self.web.url("/", scheme="https", host="localhost"))
        self.assertEqual(code, exits.TLS_VERIFY, err)
        self.assertIn("TLS certificate verification failed", err)

    async def test_wrongHost(self) -> None:
        """
        A trusted certificate for another name fails too: exit 60.
        """
        url = self.web.url("/", scheme="https", host="127.0.0.1")
        _out, err, code = await self.fetch(url, "--cacert", str(self.certs.ca))
        self.assertEqual(code, exits.TLS_VERIFY, err)

    async def test_insecure(self) -> None:
        """
        -k skips verification, with a warning on stderr.
        """
        out, err, code = await self.fetch(self.web.url("/headers", scheme="https"), "-k")
        self.assertEqual(code, 0, err)
        self.assertIn("warning: --insecure", err)
        self.assertTrue(json.loads(out)["secure"])


class ExitTests(SynchronousTestCase):
    """
    L{cli.main} exits with the command's status.
    """

    def test_status(self) -> None:
        """
        A non-zero status becomes C{SystemExit} for C{react}; zero does not.
        """
        self.assertRaises(SystemExit, cli._exitWith, 7)
        self.assertIsNone(cli._exitWith(0))
        self.assertEqual(self.assertRaises(SystemExit, cli._exitWith, 28).code, 28)

    def test_describe(self) -> None:
        """
        Errors map to their documented statuses with one-line messages.
        """
        from twisted.internet import error

        from services.client import RequestTimeout

        self.assertEqual(exits.describe(RequestTimeout(2, "http://x/"))[0], exits.TIMEOUT)
        self.assertEqual(exits.describe(error.DNSLookupError("x"), "nohost:80"),
                         (exits.DNS, "could not resolve host nohost"))
        code, message = exits.describe(error.ConnectionRefusedError(), "h:1")
        self.assertEqual(code, exits.CONNECT)
        self.assertIn("ECONNREFUSED", message)
        self.assertEqual(exits.describe(OSError(28, "No space left on device"))[0], exits.WRITE_ERROR)
        self.assertNotIn("\n", io.StringIO(message).getvalue())
