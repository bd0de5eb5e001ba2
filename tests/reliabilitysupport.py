"""
Helpers for the reliability battery (C{tests/reliability/test_*.py}): a
daemon with a descriptor limit, resource limits for the test process, and
measurements of the server process alone (RSS, CPU, descriptors).

Every measurement is of the daemon's own process, never of the machine: other
test runs share the CPUs.
"""

from __future__ import annotations

import resource
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from twisted.trial.unittest import SkipTest

from services.config import SECTIONS

from .support import Daemon, freePort, isolatedConfig

MB = 1024 * 1024


#: A tap.conf with only the given services on (see L{isolatedConfig}).
onlyConfig = isolatedConfig


def requireServices(*names: str) -> None:
    """
    Skip the calling test unless this netservices has these services.
    """
    missing = [name for name in names if name not in SECTIONS]
    if missing:
        raise SkipTest(f"this version of netservices has no {', '.join(missing)} service")


class LimitedDaemon(Daemon):
    """
    A real C{twistd -n netservices} like L{Daemon}, started with its own
    C{RLIMIT_NOFILE} (set in the child between fork and exec) and extra
    environment variables.

    @ivar psutil: the daemon's process, for measurements.
    """

    def __init__(
        self,
        args: Sequence[str],
        config: str | None = None,
        nofile: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        Daemon.__init__(
            self,
            args,
            config,
            env=env,
            preexec=None if nofile is None else _limitDescriptors(nofile),
        )
        self.psutil = psutil.Process(self.process.pid)

    def rss(self) -> int:
        """
        The daemon's resident set size now, in bytes.
        """
        return int(self.psutil.memory_info().rss)

    def descriptors(self) -> int:
        """
        How many file descriptors the daemon has open now.
        """
        return int(self.psutil.num_fds())

    def established(self, port: int) -> int:
        """
        How many TCP connections the daemon holds established on its local
        C{port}.
        """
        return sum(
            1
            for c in self.psutil.net_connections("tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )

    def cpuSeconds(self) -> float:
        """
        CPU time (user + system) the daemon has used so far.
        """
        times = self.psutil.cpu_times()
        return float(times.user + times.system)

    def waitIdle(self, quiet: float = 0.3, timeout: float = 30.0) -> None:
        """
        Wait until the daemon used no CPU for C{quiet} seconds (it finished
        what it was doing), or C{timeout} seconds passed.
        """
        deadline = time.monotonic() + timeout
        used = self.cpuSeconds()
        while time.monotonic() < deadline:
            time.sleep(quiet)  # a measurement window, not a wait for a condition
            now = self.cpuSeconds()
            if now - used < 0.01:
                return
            used = now

    def assertAlive(self) -> None:
        """
        Fail with the log if the daemon has exited.
        """
        if self.process.poll() is not None:
            raise AssertionError(f"twistd exited with {self.process.returncode}:\n{self.log()}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """
        Send C{signum} to the daemon.
        """
        self.process.send_signal(signum)


def _limitDescriptors(nofile: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return limit


def raiseDescriptorLimit(wanted: int) -> Callable[[], None]:
    """
    Raise this process's soft C{RLIMIT_NOFILE} to C{wanted} (at most the hard
    limit); child processes inherit it.

    @return: a function that restores the previous soft limit.
    @raise AssertionError: when the hard limit is below C{wanted}.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise AssertionError(f"RLIMIT_NOFILE hard limit {hard} is below the {wanted} this test needs")
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return lambda: None
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def cpuPercent(daemon: LimitedDaemon, window: float) -> float:
    """
    The daemon's CPU use over the next C{window} seconds, in percent of one
    core (this process waits meanwhile).
    """
    before, started = daemon.cpuSeconds(), time.monotonic()
    time.sleep(window)  # a measurement window, not a wait for a condition
    return 100.0 * (daemon.cpuSeconds() - before) / (time.monotonic() - started)


def assertNoTraceback(daemon: Daemon) -> None:
    """
    Fail when the daemon's log shows a traceback or an unhandled error.
    """
    log = daemon.log()
    for marker in ("Traceback", "Unhandled Error", "Unhandled error"):
        if marker in log:
            raise AssertionError(f"{marker!r} in the twistd log:\n{log[-5000:]}")


def unreadPipeline(
    port: int, data: bytes, stalled: float = 1.0, limit: float = 60.0
) -> tuple[socket.socket, int]:
    """
    Open a connection with a small receive buffer, send C{data} (many
    pipelined requests) and read nothing: send until everything is sent or
    the server has taken nothing for C{stalled} seconds (it stopped
    reading), within C{limit} seconds in all.

    @return: the open connection (the caller reads or closes it) and the
        bytes sent.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + limit
    view = memoryview(data)
    while sent < len(data) and time.monotonic() < deadline:
        _, writable, _ = select.select([], [s], [], stalled)
        if not writable:
            break  # the server reads nothing more
        try:
            sent += s.send(view[sent : sent + 65536])
        except BlockingIOError:
            continue
    return s, sent


def readResponses(
    s: socket.socket, expected: int, rest: bytes = b"", timeout: float = 60.0
) -> tuple[int, int]:
    """
    Send C{rest} (from a thread) while reading from C{s} until C{expected}
    C{200} status lines arrived, the server closed, or C{timeout}; return
    the status lines and the bytes read.
    """
    s.setblocking(True)
    s.settimeout(timeout)
    # The small buffer was for holding the server back; reading back
    # hundreds of MB through it would take minutes on a loaded machine.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sender = threading.Thread(target=_sendQuietly, args=(s, rest), daemon=True)
    sender.start()
    seen = total = 0
    tail = b""
    marker = b"HTTP/1.1 200 OK\r\n"
    try:
        while seen < expected:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            window = tail + chunk
            seen += window.count(marker) - tail.count(marker)
            tail = window[-(len(marker) - 1) :]
    except (TimeoutError, ConnectionResetError):
        pass
    sender.join(timeout)
    return seen, total


def _sendQuietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:
        pass


def staticWebDaemon(test: Any, root: Path, extra: str = "") -> tuple[LimitedDaemon, int]:
    """
    Start a daemon (stopped when C{test} ends) running only the web
    service on a free loopback port, serving C{root} as its static files,
    with the extra C{[web]} lines C{extra}.
    """
    requireServices("web")
    port = freePort()
    daemon = LimitedDaemon([], config=onlyConfig(
        web=f"listen = tcp:{port}:interface=127.0.0.1\nstatic_dir = {root}\n{extra}"
    ))
    test.addCleanup(daemon.stop)
    daemon.waitForTCP(port)
    return daemon, port
