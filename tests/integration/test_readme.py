"""
README.md's examples work as written.

Each fenced block of the README becomes a test here, found by parsing the
README (see L{tests.readmeblocks} for the rules): tap.conf snippets load,
Python programs run, shell commands exit as documented, against real
daemons on free loopback ports in a temporary directory.  A block the test
cannot run carries a C{<!-- not run: REASON -->} mark, and the tests check
the marks.
"""

from __future__ import annotations

import configparser
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from twisted.trial.unittest import TestCase

from services.config import SECTIONS, ConfigError, parseConfig, parseDirectory, parseOptionalReadableFile
from tests import readmeblocks as rb
from tests import readmeprocesses as proc
from tests import readmeruns as runs
from tests.support import waitUntil


class ReadmeParsingTests(TestCase):
    """
    The parsing and rewriting that the generated tests rely on.
    """

    def test_blocksAndMarks(self) -> None:
        """
        Blocks are found with their line, kind, section and mark, indented
        ones (in a list item) included; a mark is the last non-blank line
        before the fence.
        """
        path = Path(self.mktemp())
        path.write_text(
            "## One\n\n```sh\nnetservices --help\n```\n"
            "### Two\n<!-- not run: needs a LAN -->\n\n```ini\n[echo]\n```\n"
            "- item:\n\n  ```\n  indented\n  ```\n<!-- not run: -->\n```json\n{}\n```\n"
        )
        blocks = rb.readmeBlocks(path)
        self.assertEqual(
            [(b.line, b.kind, b.text, b.heading, b.notRun) for b in blocks],
            [
                (3, "sh", "netservices --help\n", "One", None),
                (9, "ini", "[echo]\n", "Two", "needs a LAN"),
                (14, "", "indented\n", "Two", None),
                (18, "json", "{}\n", "Two", ""),
            ],
        )

    def test_commands(self) -> None:
        """
        A shell block is one command a line (continuations joined); with a
        C{$ } prompt it is a transcript and the other lines are output;
        C{# prints:} and C{# exit N} comments document what a command does.
        """
        block = rb.Block(1, "sh", "a \\\n  b   # prints: x y\nc  # exit 22\n", "", None)
        commands = rb.shellCommands(block)
        self.assertEqual([c.text for c in commands], ["a b   # prints: x y", "c  # exit 22"])
        self.assertEqual([(c.prints, c.exitStatus) for c in commands], [("x y", 0), (None, 22)])
        transcript = rb.Block(1, "sh", "$ one\nout 1\nout 2\n$ two\n", "", None)
        self.assertEqual(
            rb.shellCommands(transcript), [rb.Command("one", "out 1\nout 2\n"), rb.Command("two", "")]
        )

    def test_outputMatches(self) -> None:
        """
        A transcript's output matches word for word, whatever the spacing,
        with C{...} standing for any text, several lines included.
        """
        self.assertTrue(rb.outputMatches("NAME  AGE\n...  1.0s\n", "NAME AGE\nvm    1.0s"))
        self.assertTrue(rb.outputMatches('{"a": "..."}\n...\n', '{"a": "b"}\nmore\nlines\n'))
        self.assertFalse(rb.outputMatches("NAME AGE\n", "NAME AGE\nextra\n"))
        self.assertFalse(rb.outputMatches("a ... c\n", "a b d\n"))

    def test_rewrite(self) -> None:
        """
        The sandbox replaces each example port, as a whole number only, by
        its free port, and moves paths under /etc/netservices, /srv, /run,
        /var/log/netservices and /tmp into its directory.
        """
        sandbox = rb.Sandbox()
        self.addCleanup(sandbox.remove)
        ports = sandbox.ports
        self.assertTrue(set(ports.values()).isdisjoint(rb.EXAMPLE_PORTS))
        text = "tcp:8007:interface=127.0.0.1 http://127.0.0.1:8080/ 18080 8080.5 (7007, 8009)"
        self.assertEqual(
            sandbox.rewrite(text),
            f"tcp:{ports[8007]}:interface=127.0.0.1 http://127.0.0.1:{ports[8080]}/ 18080 8080.5 "
            f"({ports[7007]}, {ports[8009]})",
        )
        here = sandbox.directory
        self.assertEqual(
            sandbox.rewrite('unix:/tmp/echo.sock "/srv/www" /etc/netservices/tap.conf ./srv /tmpx'),
            f'unix:{here}/tmp/echo.sock "{here}/srv/www" {here}/etc/netservices/tap.conf ./srv /tmpx',
        )

    def test_defaultPortsTaken(self) -> None:
        """
        A daemon of an example that binds a default port is found out (here
        with a free port standing for a default one, which tests never
        take).
        """
        sandbox = rb.Sandbox()
        self.addCleanup(sandbox.remove)
        port = sandbox.ports[8007]
        self.patch(proc, "DEFAULT_PORTS", (port,))
        listen = (
            "import socket, time; s = socket.socket(); "
            f"s.bind(('127.0.0.1', {port})); s.listen(); print('ok', flush=True); time.sleep(60)"
        )
        running = proc.Running(f"{sys.executable} -c {shlex.quote(listen)}", sandbox, True)
        self.addCleanup(running.stop)
        waitUntil(lambda: "ok" in running.output(), proc.TIME_BOUND, "the listener")
        self.assertEqual(running.defaultPortsTaken(), [port])

    def test_notFound(self) -> None:
        """
        The sandbox finds the access log's requests that got a 404, and
        only those.
        """
        sandbox = rb.Sandbox()
        self.addCleanup(sandbox.remove)
        self.assertEqual(sandbox.notFound(), [])
        lines = [
            '127.0.0.1 - - [03/Dec/2026:10:30:54 +0000] "GET /form HTTP/1.1" 404 167 "-" "netservices/0.1.0"',
            '127.0.0.1 - - [03/Dec/2026:10:30:54 +0000] "GET /404 HTTP/1.1" 200 11 "-" "curl/8"',
        ]
        (sandbox.directory / "access.log").write_text("\n".join(lines) + "\n")
        self.assertEqual(sandbox.notFound(), lines[:1])

    def test_unsafe(self) -> None:
        """
        A block that names a host or address beyond loopback, or a command
        the test does not know, is not safe to run.
        """

        def reasons(kind: str, text: str) -> list[str]:
            return rb.unsafeReasons(rb.Block(1, kind, text, "", None))

        self.assertEqual(reasons("sh", "netservices fetch http://127.0.0.1:8080/\ncurl -s http://[::1]/\n"), [])
        self.assertEqual(reasons("python", 'x = "0.0.0.0"; y = "127.255.255.255"\n'), [])
        self.assertEqual(
            reasons("sh", "netservices fetch https://example.com/\nnetservices discover --broadcast 192.168.1.255\n"),
            ["the URL host 'example.com' is not loopback", "the address 192.168.1.255 is not loopback"],
        )
        self.assertEqual(reasons("sh", "systemctl restart x\n"), ["the test does not run 'systemctl'"])
        self.assertEqual(
            reasons("sh", "mkdir -p d && head -c 1 /dev/zero > d/f; printf 'a|b' | rm -rf d  # x | cp\n"),
            ["the test does not run 'rm'"],
        )
        self.assertEqual(
            reasons("sh", "netservices echo example.com 7 --udp\nnetservices resolve localhost\n"),
            ["the host 'example.com' is not loopback"],
        )

    def test_daemonCommand(self) -> None:
        """
        A daemon command gets the sandbox's tap.conf unless it names one;
        C{-n} keeps it in the foreground; C{make run} runs the Makefile's
        recipe without installing.
        """
        sandbox = rb.Sandbox()
        self.addCleanup(sandbox.remove)
        config = sandbox.directory / "tap.conf"
        self.assertEqual(
            proc.daemonCommand("twistd -n --logger x netservices --no-echo &", sandbox),
            (f"twistd -n --logger x netservices --config {config} --no-echo", True),
        )
        self.assertEqual(
            proc.daemonCommand("twistd netservices --config tap.conf", sandbox),
            ("twistd netservices --config tap.conf", False),
        )
        command, foreground = proc.daemonCommand("make run", sandbox)
        self.assertTrue(foreground)
        self.assertIn(" run STAMP= BIN=", command)
        self.assertIn(f"ARGS='--config {config}'", command)
        self.assertIn(f"port = {sandbox.ports[8009]}\n", config.read_text())


class ReadmeMarksTests(TestCase):
    """
    Every block of the README runs, or says why it cannot.
    """

    def test_blocksFound(self) -> None:
        """
        The README has blocks of every kind the tests run, so the generated
        tests below are not vacuous.
        """
        kinds = [b.kind for b in rb.readmeBlocks() if b.notRun is None]
        for kind in ("ini", "python", "sh"):
            self.assertGreaterEqual(kinds.count(kind), 3, kind)

    def test_everyBlockRunsOrIsMarked(self) -> None:
        """
        A block that is not C{ini}, C{python}, C{sh} or C{console} carries a
        C{not run} mark, and every mark gives a reason.
        """
        for block in rb.readmeBlocks():
            if block.notRun is None:
                self.assertIn(block.kind, rb.RUN_KINDS, f"{block.name}: mark it <!-- not run: REASON -->")
            else:
                self.assertTrue(block.notRun, f"{block.name}: its not-run mark gives no reason")

    def test_runnableBlocksStayOnLoopback(self) -> None:
        """
        Every block that runs reaches only loopback and runs only commands
        the test knows; one that needs more (another host, a LAN, the
        internet, systemd, HAProxy, root) is marked.
        """
        for block in rb.readmeBlocks():
            if block.notRun is None and block.kind in ("python", *rb.SHELL_KINDS):
                self.assertEqual(rb.unsafeReasons(block), [], f"{block.name}: mark it <!-- not run: REASON -->")


class IniExamples(TestCase):
    """
    Each C{ini} block of the README is a valid tap.conf (a test per block,
    generated below).
    """

    def check(self, block: rb.Block) -> None:
        """
        Load the block with the config loader: its paths moved into a
        sandbox (where the directories it names exist), and completed with
        the section header of its README section when it is a fragment.
        """
        sandbox = rb.Sandbox()
        self.addCleanup(sandbox.remove)
        text = sandbox.rewrite(block.text)
        if not re.search(r"(?m)^\[", text):
            match = re.search(r"`\[([\w-]+)\]`", block.heading)
            self.assertIsNotNone(match, f"{block.name}: a fragment outside a [section] heading")
            assert match is not None
            text = f"[{match.group(1)}]\n{text}"
        self.makeDirectories(text, sandbox)
        try:
            parseConfig(text, block.name)
        except ConfigError as e:
            self.fail(str(e))

    def makeDirectories(self, text: str, sandbox: rb.Sandbox) -> None:
        """
        Create the directories the snippet's directory keys name and the
        files its readable-file keys name (they must exist), which are
        absolute paths inside the sandbox once rewritten.
        """
        parser = configparser.RawConfigParser(inline_comment_prefixes=("#", ";"))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(text)
        except configparser.Error:
            return  # parseConfig says what is wrong
        for section in parser.sections():
            fields = getattr(SECTIONS.get(section), "__dataclass_fields__", {})
            for key, value in parser.items(section):
                parse = fields[key].metadata["parse"] if key in fields else None
                if parse in (parseDirectory, parseOptionalReadableFile) and value:
                    path = Path(value)
                    self.assertTrue(path.is_relative_to(sandbox.directory), f"{value}: not in the sandbox")
                    if parse is parseDirectory:
                        path.mkdir(parents=True, exist_ok=True)
                    else:
                        # What the file holds is checked when a listener
                        # uses it, not when tap.conf is read.
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.touch()


class Examples(TestCase):
    """
    Each C{python} and C{sh} block of the README runs as documented (a test
    per block, generated below; L{tests.readmeruns} says how), in a sandbox
    of its own.  The next two blocks' runs start while a test waits for its
    own, so that their waits overlap.
    """


def _generate() -> None:
    """
    Add a test method for each runnable block of the README, named by its
    line (zero-padded, so that tests run in the README's order).
    """
    shell = sorted((b for kind in rb.SHELL_KINDS for b in rb.blocksOf(kind)), key=lambda b: b.line)
    examples = [*rb.blocksOf("python"), *shell]
    lookahead = runs.Lookahead(examples, runs.runBlock, ahead=2)

    def example(self: TestCase, block: rb.Block) -> None:
        try:
            lookahead.result(block, timeout=4 * proc.TIME_BOUND)
        except AssertionError as e:  # raised in a worker thread: a failure of this test
            raise self.failureException(str(e)) from e

    def ini(self: IniExamples, block: rb.Block) -> None:
        self.check(block)

    for kind, cls, does, body, blocks in [
        ("ini", IniExamples, "loads as tap.conf", ini, list(rb.blocksOf("ini"))),
        ("python", Examples, "runs", example, list(rb.blocksOf("python"))),
        ("sh", Examples, "runs as documented", example, shell),
    ]:
        for block in blocks:

            def test(self: TestCase, block: rb.Block = block, body: Callable[..., None] = body) -> None:
                body(self, block)

            test.__name__ = f"test_{kind}_line{block.line:04d}"
            test.__doc__ = f"The {kind} block at README.md line {block.line} ({block.heading}) {does}."
            setattr(cls, test.__name__, test)


_generate()
