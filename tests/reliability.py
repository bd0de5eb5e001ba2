"""
Helpers for the reliability battery (C{tests/test_reliability_*.py}): a
daemon with a descriptor limit, resource limits for the test process, and
measurements of the server process alone (RSS, CPU, descriptors).

Every measurement is of the daemon's own process, never of the machine: other
test runs share the CPUs.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
from twisted.trial.unittest import SkipTest

from services.config import SECTIONS

from .support import Daemon, twistdCommand

MB = 1024 * 1024


def onlyConfig(**sections: str) -> str:
    """
    A tap.conf with the given sections (name to body text; underscores
    stand for dashes) and every other service that has an C{enabled} key
    turned off, whatever services this version of netservices has.
    """
    text = []
    for name, cls in SECTIONS.items():
        body = sections.pop(name.replace("-", "_"), None)
        if body is not None:
            text.append(f"[{name}]\n{body}\n")
        elif "enabled" in {f.name for f in dataclasses.fields(cls)}:
            text.append(f"[{name}]\nenabled = no\n")
    if sections:
        raise ValueError(f"no such sections: {', '.join(sections)}")
    return "\n".join(text)


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
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-reliability-"))
        self.logPath = self.directory / "twistd.log"
        command = twistdCommand() + ["--pidfile=", "--logfile", str(self.logPath), "-n", "netservices"]
        if config is not None:
            path = self.directory / "tap.conf"
            path.write_text(config)
            command += ["--config", str(path)]
        command += list(args)
        environment = dict(os.environ)
        environment.pop("NETSERVICES_CONFIG", None)
        environment.update(env or {})
        self._output = open(self.directory / "output", "wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=environment,
            preexec_fn=None if nofile is None else _limitDescriptors(nofile),
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
