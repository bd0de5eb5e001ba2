# -*- test-case-name: tests.integration.test_readme -*-
"""
Running the C{python} and shell examples of README.md and checking what
they do (L{tests.readmeblocks} finds and rewrites the blocks,
L{tests.readmeprocesses} starts their processes).

Each run raises C{AssertionError} with a message that names the block and
what it did, or returns when the example behaved as documented.  Runs are
mostly waiting (for child interpreters to start, for daemons to serve, for
discovery to listen), so L{Lookahead} runs the next few of them at once,
each in its own sandbox, while the tests take their results in order.
"""

from __future__ import annotations

import contextlib
import errno
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psutil

from tests import readmeblocks as rb
from tests import readmeprocesses as proc
from tests.support import defaultSignals, waitUntil


def check(condition: object, message: str) -> None:
    """
    Fail with C{message} unless C{condition} is true.
    """
    if not condition:
        raise AssertionError(message)


class BlockRun:
    """
    One run of one example, in a sandbox of its own; what it starts is
    stopped, and the sandbox removed, when the run ends.

    A block that starts a server (a Python program that runs its reactor,
    a shell block with a C{twistd} or C{make run} command) gets it on the
    sandbox's ports; any other block that uses an example port runs against
    the daemon of C{make run} (the repository's tap.conf) on those ports.
    Either way the daemon writes an access log, and no request of an
    example may get a 404: an example that does points at nothing.
    """

    def __init__(self, block: rb.Block, cleanups: contextlib.ExitStack) -> None:
        check(rb.unsafeReasons(block) == [], f"{block.name}: not safe to run: {rb.unsafeReasons(block)}")
        self.block = block
        self.cleanups = cleanups
        self.sandbox = rb.Sandbox()
        cleanups.callback(self.sandbox.remove)
        if proc.startsDaemon(block) or (block.kind == "python" and proc.startsReactor(block)):
            return
        if re.search(r"\b({})\b".format("|".join(map(str, rb.EXAMPLE_PORTS))), block.text):
            self.daemon("twistd -n netservices")

    def daemon(self, command: str) -> proc.Running:
        """
        Start a daemon command of the example and wait until it serves; it
        is stopped (and must end cleanly) when the run ends, unless the run
        stops it first.
        """
        text, foreground = proc.daemonCommand(command, self.sandbox)
        running = proc.Running(text, self.sandbox, foreground)
        self.cleanups.callback(self.stop, running)
        running.waitUntilServing()
        return running

    def stop(self, running: proc.Running) -> None:
        """
        Stop a daemon: a twistd ends on SIGTERM with no traceback in what it
        logged, by the signal itself (twistd re-raises the signal it stopped
        on, so that its parent sees it), and C{make run} ends with 0.
        """
        if running.stopped:
            return
        status = running.stop()
        if status is not None:
            check(status in (0, -signal.SIGTERM), f"{running.command!r} ended with {status}:\n{running.output()}")
        check("Traceback" not in running.output(), f"{running.command!r} logged:\n{running.output()}")

    def checkNotFound(self) -> None:
        """
        No request of the example got a 404.
        """
        missing = self.sandbox.notFound()
        check(not missing, f"{self.block.name}: requests for nothing: {missing}")

    def shell(self) -> None:
        """
        Run each command of a shell block in order: a daemon command starts
        a daemon (which replaces the block's previous one); any other exits
        with its documented status (C{# exit N}, else 0) and prints what
        C{# prints:} shows (the whole output, but for a final newline) or
        what the transcript shows.
        """
        running: proc.Running | None = None
        for command in rb.shellCommands(self.block):
            if rb.isDaemon(command.text):
                if running is not None:
                    self.stop(running)
                running = self.daemon(command.text)
                continue
            line = proc.shellLine(command.text, self.sandbox)
            result = proc.run(line, self.sandbox)
            where = f"{self.block.name}: {line!r}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            check(result.returncode == command.exitStatus, f"exit status {result.returncode}, not "
                  f"{command.exitStatus}: {where}")
            check("Traceback" not in result.stderr, where)
            if command.prints is not None:
                expected = self.sandbox.rewrite(command.prints)
                check(result.stdout.removesuffix("\n") == expected, f"expected {expected!r}: {where}")
            if command.output is not None:
                expected = self.sandbox.rewrite(command.output)
                check(rb.outputMatches(expected, result.stdout), f"expected:\n{expected}\n{where}")
        if running is not None:
            self.stop(running)
        self.checkNotFound()

    def python(self) -> None:
        """
        Run a Python block, rewritten, in a child interpreter: a server (it
        runs its reactor) must listen on the block's ports or socket files
        and answer there, then stop cleanly on SIGINT (Ctrl-C); any other
        program exits 0 by itself.  Either prints, in order, what its
        C{# prints:} comments show, and no traceback.
        """
        command = proc.pythonCommand(self.block, self.sandbox)
        if proc.startsReactor(self.block):
            out, err, status = self.server(command)
        else:
            result = proc.run(command, self.sandbox)
            out, err, status = result.stdout, result.stderr, result.returncode
        where = f"{self.block.name}\nstdout: {out}\nstderr: {err}"
        check(status == 0, f"exit status {status}: {where}")
        check("Traceback" not in err and "Unhandled" not in err + out, where)
        printed = [line.strip() for line in out.splitlines() if line != proc.RUNNING]
        expected = [self.sandbox.rewrite(c.prints or "") for c in pythonPrints(self.block)]
        check(inOrder(expected, printed), f"expected, in order: {expected}\n{where}")
        self.checkNotFound()

    def server(self, command: list[str]) -> tuple[str, str, int]:
        """
        Start a server program, wait until its reactor runs, check that it
        serves, then stop it with SIGINT; return its output and status.
        """
        out, err = self.sandbox.directory / "server.out", self.sandbox.directory / "server.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=self.sandbox.directory,
                env=proc.environment(),
                stdout=stdout,
                stderr=stderr,
                preexec_fn=defaultSignals,
            )
        self.cleanups.callback(_kill, process)

        def running() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{self.block.name}: exited with {process.returncode}: {err.read_text()}")
            return proc.RUNNING in out.read_text()

        waitUntil(running, proc.TIME_BOUND, "the example's reactor to run")
        self.serving(process.pid)
        process.send_signal(signal.SIGINT)
        status = process.wait(proc.TIME_BOUND)
        return out.read_text(), err.read_text(), status

    def serving(self, pid: int) -> None:
        """
        A running server is bound to one of the block's ports or UNIX socket
        files at least, and each stream or SEQPACKET listener among them
        answers a line.
        """
        ports = {new for old, new in self.sandbox.ports.items() if re.search(rf"\b{old}\b", self.block.text)}
        here = re.escape(str(self.sandbox.directory))
        files = [Path(p) for p in re.findall(rf"{here}/[\w./-]+", self.sandbox.rewrite(self.block.text))]
        bound = {c.laddr.port: c for c in psutil.Process(pid).net_connections("inet")}
        sockets = [f for f in files if f.is_socket()]
        check(ports & set(bound) or sockets, f"{self.block.name}: listens on none of {ports} {files}: {bound}")
        for port in ports & set(bound):
            if bound[port].type == socket.SOCK_STREAM:
                answers(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", port))
        for path in sockets:
            answers(socket.AF_UNIX, unixType(path), str(path))


def runBlock(block: rb.Block) -> None:
    """
    Run one C{python} or C{sh} example to its end.
    """
    with contextlib.ExitStack() as cleanups:
        run = BlockRun(block, cleanups)
        if block.kind == "python":
            run.python()
        else:
            run.shell()


def answers(family: int, kind: int, address: tuple[str, int] | str) -> None:
    """
    A listener answers a line (an echo echoes it; a web server answers 400,
    so the access log shows no 404 for the example).
    """
    with socket.socket(family, kind) as s:
        s.settimeout(proc.TIME_BOUND)
        s.connect(address)
        s.sendall(b"hello\r\n\r\n")
        check(s.recv(1024), f"{address} does not answer")


def unixType(path: Path) -> int:
    """
    The socket type of the UNIX listener at C{path}: stream or SEQPACKET
    (a connection of the wrong type is refused with C{EPROTOTYPE}).
    """
    for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
        with socket.socket(socket.AF_UNIX, kind) as s:
            try:
                s.connect(str(path))
            except OSError as e:
                if e.errno == errno.EPROTOTYPE:
                    continue
                raise
            return kind
    raise AssertionError(f"{path}: neither a stream nor a SEQPACKET listener")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def pythonPrints(block: rb.Block) -> list[rb.Command]:
    """
    The lines of a Python block with a C{# prints:} comment.
    """
    return [c for c in map(rb.Command, block.text.splitlines()) if c.prints is not None]


def inOrder(expected: list[str], lines: list[str]) -> bool:
    """
    Whether each expected line is among C{lines}, in order (C{...} standing
    for any text).
    """
    remaining = iter(lines)
    return all(any(rb.outputMatches(want, line) for line in remaining) for want in expected)


class Lookahead:
    """
    Run C{run(item)} for the items of a sequence in threads, starting each
    item's run when the result of one of the C{ahead} items before it is
    asked for, so that the runs overlap while results are taken in order.
    Only items whose results are asked for, or that closely follow one, are
    ever run.
    """

    def __init__(self, items: Sequence[rb.Block], run: Callable[[rb.Block], None], ahead: int) -> None:
        self._items = list(items)
        self._run = run
        self._ahead = ahead
        self._futures: dict[rb.Block, Future[None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(ahead + 1, thread_name_prefix="readme")

    def result(self, item: rb.Block, timeout: float) -> None:
        """
        Wait for the run of C{item} (raising what it raised), having started
        it and the next C{ahead} items' runs if they were not.
        """
        index = self._items.index(item)
        with self._lock:
            for following in self._items[index : index + self._ahead + 1]:
                if following not in self._futures:
                    self._futures[following] = self._pool.submit(self._run, following)
        self._futures[item].result(timeout)
