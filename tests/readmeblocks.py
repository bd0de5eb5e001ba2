# -*- test-case-name: tests.integration.test_readme -*-
"""
The fenced examples of README.md, as tests/integration/test_readme.py runs them.

Every fenced block of the README is one of:

  - C{ini}: a tap.conf snippet, loaded by L{services.config.parseConfig};
  - C{python}: a program, run in a child interpreter;
  - C{sh}: shell commands, run one by one (a C{$ } prompt marks a
    transcript, whose other lines are the expected output);
  - anything else, or any block that needs what a test cannot have (another
    host, a LAN, the internet, systemd, root...): marked in the README by an
    HTML comment on the line before the fence, C{<!-- not run: REASON -->},
    and only checked to carry that mark.

Examples use the daemon's default ports and paths under /etc, /srv, /run,
/var/log and /tmp; a test never takes those.  L{Sandbox} rewrites them in
the text of a block, visibly and in one place: every port of L{EXAMPLE_PORTS}
(as a whole number) becomes a free loopback port, and every path under
L{REBASED} moves into the test's temporary directory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT, freePort

README = ROOT / "README.md"

#: The ports examples use: the daemon's defaults (echo 8007, web 8080,
#: discovery 8009) and those of the examples that start their own servers.
EXAMPLE_PORTS = (8007, 8080, 8009, 7007, 7008, 8443, 8000, 10009, 10013, 10017, 10019, 10037)

#: The daemon's default ports, which no daemon of an example may take.
DEFAULT_PORTS = (8007, 8080, 8009)

#: Absolute paths that examples use, moved under the test's directory.
REBASED = ("/etc/netservices", "/srv", "/run/netservices", "/var/log/netservices", "/tmp")

#: The kinds of block that hold shell commands.
SHELL_KINDS = ("sh", "console")

#: The kinds of block the test runs.
RUN_KINDS = ("ini", "python", *SHELL_KINDS)

_FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[\w-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
_HEADING = re.compile(r"^(#{2,4}) (?P<title>.+)$")


@dataclasses.dataclass(frozen=True)
class Block:
    """
    One fenced block of the README.

    @ivar line: the line number of its opening fence (1-based).
    @ivar kind: its info string (C{ini}, C{python}, C{sh}, C{json}...), or
        C{""}.
    @ivar text: its content, without the fences and the list indentation.
    @ivar heading: the title of the section it is in.
    @ivar notRun: the reason of its C{<!-- not run: ... -->} mark, C{""} for
        a mark without a reason, or L{None} when it has no mark.
    """

    line: int
    kind: str
    text: str
    heading: str
    notRun: str | None

    @property
    def name(self) -> str:
        """
        How failures name the block: C{README.md line N (sh)}.
        """
        return f"README.md line {self.line} ({self.kind or 'no language'})"


def readmeBlocks(path: Path = README) -> list[Block]:
    """
    Every fenced block of the README, in order.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _HEADING.match(line)
        if match:
            heading = match.group("title")
        fence = _FENCE.match(line)
        if fence is None:
            index += 1
            continue
        indent = len(fence.group("indent"))
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index][indent:])
            index += 1
        start = index - len(body)
        blocks.append(
            Block(start, fence.group("info"), "\n".join(body) + "\n", heading, _markBefore(lines, start - 1))
        )
        index += 1
    return blocks


def _markBefore(lines: list[str], fence: int) -> str | None:
    """
    The reason of the C{not run} mark on the last non-blank line before the
    fence at index C{fence}, if there is one.
    """
    for line in reversed(lines[:fence]):
        if line.strip():
            match = _MARK.match(line)
            return match.group("reason") if match else None
    return None


# What a runnable block may reach: loopback only.

_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s'\"]*@)?(\[[^\]]*\]|[^/:\s'\"]+)")
_QUOTED_IPV4 = re.compile(r"""["'](\d+\.\d+\.\d+\.\d+)["']""")
_SH_ADDRESS = re.compile(r"(?<![\w.:/])(\d+\.\d+\.\d+\.\d+)(?![\w.])")

#: Commands a shell example may run; anything else needs a mark.
SHELL_COMMANDS = frozenset(
    {"twistd", "netservices", "curl", "printf", "mkdir", "head", "cat", "python3", "make run", "openssl req"}
)


def _loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback


def unsafeReasons(block: Block) -> list[str]:
    """
    Why running C{block} could reach beyond loopback or this test (an
    address or URL that is not loopback, a command the test does not know),
    in words; empty when it is safe to run.
    """
    reasons = []
    for match in _URL_HOST.finditer(block.text):
        if not _loopback(match.group(1)):
            reasons.append(f"the URL host {match.group(1)!r} is not loopback")
    pattern = _SH_ADDRESS if block.kind in SHELL_KINDS else _QUOTED_IPV4
    for match in pattern.finditer(block.text):
        address = ipaddress.ip_address(match.group(1))
        if not address.is_loopback and not address.is_unspecified:
            reasons.append(f"the address {match.group(1)} is not loopback")
    if block.kind in SHELL_KINDS:
        for command in shellCommands(block):
            for program, words in programs(command.text):
                if program not in SHELL_COMMANDS:
                    reasons.append(f"the test does not run {program!r}")
                host = _hostArgument(program, words)
                if host is not None and not _loopback(host):
                    reasons.append(f"the host {host!r} is not loopback")
    return reasons


def _hostArgument(program: str, words: list[str]) -> str | None:
    """
    The host a command names without a URL: C{netservices echo HOST} and
    C{netservices resolve NAME} (URLs are checked on their own).
    """
    arguments = [w for w in words[1:] if not w.startswith("-")]
    if program != "netservices" or "--unix" in words:  # a socket file, no host
        return None
    if arguments[:1] in (["echo"], ["resolve"]) and len(arguments) > 1:
        return arguments[1]
    return None


def programs(text: str) -> list[tuple[str, list[str]]]:
    """
    Each simple command of a command line (its pipelines and lists
    included): its program, as L{commandName} names it, and its words
    (redirections left out).
    """
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    # Words are everything but the shell's operators, quotes and spaces.
    lexer.wordchars = "".join(c for c in map(chr, range(33, 127)) if c not in "();<>|&'\"\\#")
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: no telling what it runs
        return [(text, [])]
    names: list[tuple[str, list[str]]] = []
    words: list[str] = []
    for token in tokens + [";"]:
        if token in ("|", "||", "&&", ";", "&"):
            if words:
                names.append((commandName(" ".join(words)), words))
            words = []
        elif not (words and words[-1] in (">", ">>", "<")):
            words.append(token)
        else:
            words[-1:] = []  # a redirection and its file
    return names


# Shell blocks.


@dataclasses.dataclass(frozen=True)
class Command:
    """
    One command of a shell block.

    @ivar text: the command line (continuations joined), without a C{$ }
        prompt.
    @ivar output: the output a transcript shows after it, or L{None}.
    """

    text: str
    output: str | None = None

    @property
    def prints(self) -> str | None:
        """
        What a C{# prints: TEXT} comment says the command prints.
        """
        match = re.search(r"#\s*prints:\s*(.*?)\s*$", self.text)
        return match.group(1) if match else None

    @property
    def exitStatus(self) -> int:
        """
        The exit status a C{# exit N} comment documents, else 0.
        """
        match = re.search(r"#.*\bexit (\d+)\b", self.text)
        return int(match.group(1)) if match else 0


def shellCommands(block: Block) -> list[Command]:
    """
    The commands of a shell block, with a transcript's expected output.
    """
    lines = block.text.splitlines()
    transcript = any(line.startswith("$ ") for line in lines)
    joined: list[str] = []
    for line in lines:
        command = bool(joined) and (joined[-1].startswith("$ ") or not transcript)
        if command and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + line.strip()
        elif command and not _quotesClosed(joined[-1]):
            joined[-1] += "\n" + line
        else:
            joined.append(line)
    commands: list[Command] = []
    if not transcript:
        return [Command(line.strip()) for line in joined if line.strip()]
    for line in joined:
        if line.startswith("$ "):
            commands.append(Command(line[2:].strip(), ""))
        elif commands:
            last = commands[-1]
            commands[-1] = dataclasses.replace(last, output=(last.output or "") + line + "\n")
    return commands


def _quotesClosed(text: str) -> bool:
    """
    Whether every quote of a command line is closed (else its next line
    belongs to it, as in the shell).
    """
    try:
        shlex.split(text.removeprefix("$ "), comments=True)
    except ValueError:
        return False
    return True


def commandName(text: str) -> str:
    """
    The program a command line runs (after variable assignments and a
    C{.venv/bin/} prefix), or C{make run} and C{openssl req}, the only uses
    of those programs that examples may run.
    """
    words = [w for w in text.split() if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
    if not words:
        return ""
    program = words[0].removeprefix(".venv/bin/")
    if (program, words[1:2]) in (("make", ["run"]), ("openssl", ["req"])):
        return f"{program} {words[1]}"
    return program


def isDaemon(text: str) -> bool:
    """
    Whether a command line starts a server that runs until it is stopped:
    the daemon (C{twistd ... netservices}, C{make run}) or C{netservices
    serve}.
    """
    return commandName(text) in ("twistd", "make run") or isServe(text)


def isServe(text: str) -> bool:
    """
    Whether a command line is C{netservices serve}.
    """
    return re.match(r"^(\.venv/bin/)?netservices serve\b", text.strip()) is not None


def outputMatches(expected: str, actual: str) -> bool:
    """
    Whether C{actual} is the C{expected} output of a transcript: the same
    words, whatever the runs of spaces between them, where C{...} stands for
    any text (as doctest's C{ELLIPSIS}).
    """
    pieces = [r"\s+".join(map(re.escape, part.split())) for part in expected.split("...")]
    pattern = "".join(
        piece if i == 0 else (r"(?:.|\n)*?" + piece) for i, piece in enumerate(pieces)
    )
    return re.fullmatch(r"\s*" + pattern + r"\s*", actual) is not None


# Ports and paths.


#: The ports handed to sandboxes so far: examples run side by side, and two
#: sandboxes must never get the same port.
_handedOut: set[int] = set()
_handing = threading.Lock()


def _freeOnBoth() -> int:
    """
    A loopback port free for TCP and for UDP right now, and not given to
    another sandbox of this process.
    """
    while True:
        port = freePort()  # free for TCP and UDP, outside the ephemeral range
        with _handing:
            if port not in _handedOut:
                _handedOut.add(port)
                return port


class Sandbox:
    """
    A temporary directory and a free port for each of L{EXAMPLE_PORTS}, and
    the rewriting of example text to use them.

    @ivar directory: the temporary directory (the examples' working
        directory).
    @ivar ports: example port to the free port that replaces it.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-readme-"))
        self.ports = {port: _freeOnBoth() for port in EXAMPLE_PORTS}
        for prefix in REBASED:
            (self.directory / prefix.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def rewrite(self, text: str) -> str:
        """
        C{text} with every example port replaced by its free port and every
        path under L{REBASED} moved into the directory.
        """
        ports = "|".join(map(str, self.ports))
        text = re.sub(
            rf"(?<![\w.])({ports})(?![\w.])", lambda m: str(self.ports[int(m.group(1))]), text
        )
        prefixes = "|".join(map(re.escape, REBASED))
        return re.sub(
            rf"(?<![\w.~/-])({prefixes})(?=/|\b)",
            lambda m: str(self.directory) + m.group(1),
            text,
        )

    def tapConf(self) -> Path:
        """
        Write the repository's tap.conf, rewritten, with an access log (to
        find requests that got a 404), as C{tap.conf} of the directory and
        as its C{/etc/netservices/tap.conf}; return the first.
        """
        text = self.rewrite((ROOT / "tap.conf").read_text())
        # Absolute: make run's daemon runs in the repository.
        text = re.sub(r"(?m)^access_log =.*$", f"access_log = {self.directory / 'access.log'}", text)
        path = self.directory / "tap.conf"
        path.write_text(text)
        shutil.copy(path, self.directory / "etc" / "netservices" / "tap.conf")
        return path

    def notFound(self) -> list[str]:
        """
        The access log's lines of requests that got a 404.
        """
        log = self.directory / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if re.search(r'" 404 ', line)]

    def remove(self) -> None:
        """
        Remove the directory.
        """
        shutil.rmtree(self.directory, ignore_errors=True)


def blocksOf(kind: str) -> Iterator[Block]:
    """
    The unmarked blocks of one kind, which the test runs.
    """
    return (b for b in readmeBlocks() if b.kind == kind and b.notRun is None)
