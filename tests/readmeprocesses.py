# -*- test-case-name: tests.integration.test_readme -*-
"""
The processes that README.md's examples start, as tests/integration/test_readme.py runs
them: child interpreters for Python blocks, shell commands, and the daemons
and servers of shell blocks (see L{tests.readmeblocks} for the blocks and
their rewriting, L{tests.readmeruns} for the checks).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.readmeblocks import (
    DEFAULT_PORTS,
    SHELL_KINDS,
    Block,
    Sandbox,
    commandName,
    isDaemon,
    isServe,
    shellCommands,
)
from tests.support import ROOT, defaultSignals, waitUntil

#: How long one command or program of an example may take.
TIME_BOUND = 30.0

#: Printed by the wrapper of a Python example once its reactor runs.
RUNNING = "--- the example's reactor is running ---"

_PYTHON_WRAPPER = f"""
import sys
from twisted.internet import reactor
reactor.callWhenRunning(lambda: print({RUNNING!r}, flush=True))
source = open(sys.argv[1], encoding="utf-8").read()
exec(compile(source, sys.argv[2], "exec"), {{"__name__": "__main__"}})
"""


def binDirectory() -> Path:
    """
    The directory of the test interpreter's scripts (C{twistd},
    C{netservices}): what the README calls C{.venv/bin}.
    """
    return Path(sys.executable).parent


def environment() -> dict[str, str]:
    """
    The environment of an example: ours, without proxy variables, with
    L{binDirectory} first on C{PATH} and the repository on C{PYTHONPATH}.
    """
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PATH"] = str(binDirectory()) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def pythonCommand(block: Block, sandbox: Sandbox) -> list[str]:
    """
    The command that runs a Python example, rewritten, from a file of the
    sandbox; it prints L{RUNNING} when its reactor runs.
    """
    path = sandbox.directory / f"example-{block.line}.py"
    path.write_text(sandbox.rewrite(block.text), encoding="utf-8")
    return [sys.executable, "-c", _PYTHON_WRAPPER, str(path), f"README.md line {block.line}"]


def startsReactor(block: Block) -> bool:
    """
    Whether a Python example runs its reactor for ever (a server), rather
    than to the end of its work (C{react(main)}, or no reactor at all).
    """
    return re.search(r"^reactor\.run\(\)", block.text, re.MULTILINE) is not None


def startsDaemon(block: Block) -> bool:
    """
    Whether a shell example starts a daemon of its own.
    """
    return block.kind in SHELL_KINDS and any(isDaemon(c.text) for c in shellCommands(block))


def daemonCommand(text: str, sandbox: Sandbox) -> tuple[str, bool]:
    """
    A daemon command line as the test runs it, and whether it stays in the
    foreground.  The rewritten command gets C{--config} with the sandbox's
    tap.conf when it has none (the built-in defaults are that file, bar the
    ports); C{make run} runs the Makefile's recipe with the test's
    interpreter, without installing anything; C{netservices serve} runs as
    written; a comment and a trailing C{&} are dropped (the test runs every
    daemon in the background).
    """
    text = re.sub(r"\s+#.*$", "", sandbox.rewrite(text)).strip().removesuffix("&").strip()
    if isServe(text):
        return text.removeprefix(".venv/bin/"), True
    config = sandbox.tapConf()
    if commandName(text) == "make run":
        quoted = shlex.quote(f"--config {config}")
        return f"make -C {shlex.quote(str(ROOT))} run STAMP= BIN={binDirectory()} ARGS={quoted}", True
    words = text.split()
    words[0] = words[0].removeprefix(".venv/bin/")
    where = words.index("netservices")
    foreground = "-n" in words[:where] or "--nodaemon" in words[:where]
    if not {"-c", "--config"} & {w.split("=")[0] for w in words[where:]}:
        words.insert(where + 1, f"--config {config}")
    return " ".join(words), foreground


def shellLine(text: str, sandbox: Sandbox) -> str:
    """
    A client command line as the test runs it: C{netservices discover}
    given the default C{--port 8009} when it relies on it, then rewritten,
    and C{.venv/bin/} found next to the test interpreter.
    """
    if re.search(r"\bnetservices discover\b", text) and "--port" not in text:
        text = re.sub(r"\bnetservices discover\b", "netservices discover --port 8009", text)
    return re.sub(r"(?<![\w/])\.venv/bin/", f"{binDirectory()}/", sandbox.rewrite(text))


#: Opens loopback URLs without the proxies of the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Running:
    """
    A daemon an example started, in its own process group, with its output
    in a file of the sandbox.

    @ivar process: the command (twistd, or make running twistd).
    @ivar pid: the daemon's process id (a daemonized twistd's, from its
        pidfile), or L{None} while it is not known.
    """

    def __init__(self, command: str, sandbox: Sandbox, foreground: bool) -> None:
        self.command = command
        self.sandbox = sandbox
        self.foreground = foreground
        self.outputPath = sandbox.directory / f"daemon-{time.monotonic_ns()}.out"
        # Open as long as the daemon runs; closed by stop().
        self._output = open(self.outputPath, "wb")  # noqa: SIM115
        # exec: the signals the test sends go to the daemon, not to a shell.
        self.process = subprocess.Popen(
            "exec " + command,
            shell=True,
            cwd=sandbox.directory,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=defaultSignals,
        )
        self.pid: int | None = self.process.pid if foreground else None
        self.stopped = False

    def output(self) -> str:
        """
        What the command and (when daemonized) twistd.log say so far.
        """
        text = self.outputPath.read_text(errors="replace")
        log = self.sandbox.directory / "twistd.log"
        if not self.foreground and log.exists():
            text += log.read_text(errors="replace")
        return text

    def waitUntilServing(self) -> None:
        """
        Wait until the daemon serves: its C{/health} says every service
        listens, or, with C{--no-web}, it listens on every port its command
        names.
        """
        if not self.foreground:
            status = self.process.wait(TIME_BOUND)
            if status != 0:
                raise AssertionError(f"{self.command!r} exited with {status}:\n{self.output()}")
            pidfile = self.sandbox.directory / "twistd.pid"
            written = waitUntil(
                lambda: pidfile.exists() and pidfile.read_text().strip(), TIME_BOUND, "twistd.pid"
            )
            self.pid = int(str(written))
        if "--no-web" in self.command.split() or isServe(self.command):
            self.waitUntilListening()
        else:
            self.waitUntilHealthy()
        taken = self.defaultPortsTaken()
        if taken:
            raise AssertionError(f"{self.command!r} listens on the default ports {taken}")

    def waitUntilListening(self) -> None:
        """
        Wait until the daemon listens on every sandbox port its command
        names.
        """
        named = {port for port in self.sandbox.ports.values() if re.search(rf"\b{port}\b", self.command)}

        def listening() -> bool:
            self.checkAlive()
            return named <= self.boundPorts()

        waitUntil(listening, TIME_BOUND, f"{self.command!r} to listen on {sorted(named)}")

    def checkAlive(self) -> None:
        """
        Fail if the daemon (in the foreground) has exited.
        """
        if self.foreground and self.process.poll() is not None:
            raise AssertionError(f"{self.command!r} exited with {self.process.returncode}:\n{self.output()}")

    def waitUntilHealthy(self) -> None:
        """
        Wait until the daemon's C{/health} on the sandbox's web port answers
        200: every service listens.
        """
        url = f"http://127.0.0.1:{self.sandbox.ports[8080]}/health"

        def healthy() -> bool:
            self.checkAlive()
            try:
                with _direct.open(url, timeout=5) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        waitUntil(healthy, TIME_BOUND, f"{url} to answer 200 for {self.command!r}")

    def boundPorts(self) -> set[int]:
        """
        The ports that the daemon (or a process it started) has bound.
        """
        assert self.pid is not None
        top = psutil.Process(self.pid)
        ports = set()
        for process in [top, *top.children(recursive=True)]:
            ports |= {c.laddr.port for c in process.net_connections("inet") if c.laddr}
        return ports

    def defaultPortsTaken(self) -> list[int]:
        """
        The default ports that the daemon (or a process it started) has
        bound: an example must name every port it uses, so that the test
        can give it free ones.
        """
        return sorted(self.boundPorts() & set(DEFAULT_PORTS))

    def stop(self) -> int | None:
        """
        SIGTERM the daemon and wait until it and its process group are gone;
        return the command's exit status (L{None} for a daemonized twistd,
        which is not our child).  Only the command itself gets the signal:
        make passes it on to the twistd it runs.  Once stopped, it stays so.
        """
        if self.stopped:
            return self.process.returncode if self.foreground else None
        self.stopped = True
        try:
            if self.pid is not None:
                os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            if self.foreground:
                status = self.process.wait(TIME_BOUND)
                waitUntil(lambda: not _groupAlive(self.process.pid), TIME_BOUND, "the daemon to exit")
                return status
            if self.pid is not None:
                waitUntil(lambda: not _alive(self.pid), TIME_BOUND, f"twistd {self.pid} to exit")
            return None
        finally:
            if self.process.poll() is None or _groupAlive(self.process.pid):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self._output.close()


def _groupAlive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run(command: str | list[str], sandbox: Sandbox, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """
    Run a client command (a shell line, or an argument list) in the sandbox
    to completion, within L{TIME_BOUND}.
    """
    return subprocess.run(
        command,
        shell=isinstance(command, str),
        cwd=sandbox.directory,
        env=environment(),
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=TIME_BOUND,
        check=False,
    )
