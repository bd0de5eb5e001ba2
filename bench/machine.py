# -*- test-case-name: tests.integration.test_bench -*-
"""
The bench's machine: where its files are, the CPUs servers and generators
are pinned to, the tools and the load generator it installs or builds,
and what it reads of the system while it measures (how busy each CPU was,
a process's CPU seconds and resident memory).
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Sequence


BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / "build"
RESULTS = BENCH / "results"
PEERS = BENCH / "peers"
LOADGEN = BUILD / "loadgen"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
SERVER_CPU = "0"
CLIENT_CPU = "1"
HOST = "127.0.0.1"
IDLE_CONNECTIONS = 10_000


def ensureTools() -> None:
    """
    Install the Debian tools and the Python packages of the C{bench} extra
    that are missing, and check gcc.
    """
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx-light"),
                                     ("h2load", "nghttp2-client"))
               if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        if shutil.which("apt-get") is None:
            raise SystemExit(f"bench: install {' '.join(missing)} with your package manager")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        print(f"bench: installing {' '.join(missing)}", file=sys.stderr)
        subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", *missing], check=True,
                       timeout=600, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    try:
        import aiohttp  # noqa: F401
        import matplotlib  # noqa: F401
        import uvloop  # noqa: F401
    except ImportError:
        print("bench: installing the bench extra", file=sys.stderr)
        subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[bench]"],
                       check=True, timeout=900)
    if shutil.which("gcc") is None:
        raise SystemExit("bench: gcc is needed to build bench/loadgen.c")


def compileBytecode() -> None:
    """
    Write the bytecode of netservices' own modules, as installing a package
    does: with an editable install under C{PYTHONDONTWRITEBYTECODE} every
    start would compile them from source again (about 25 ms of start-up),
    while Twisted's installed modules start from their bytecode.
    """
    import compileall

    for directory in (ROOT / "services", ROOT / "twisted"):
        if directory.is_dir():
            compileall.compile_dir(str(directory), quiet=1)


def buildLoadgen() -> Path:
    """
    Compile C{bench/loadgen.c} into C{bench/build/loadgen} when it is
    missing or older than its source.
    """
    source = BENCH / "loadgen.c"
    if not LOADGEN.exists() or LOADGEN.stat().st_mtime < source.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(LOADGEN), str(source)],
                       check=True, timeout=120)
    return LOADGEN


def raiseFileLimit(needed: int) -> None:
    """
    Raise this process's RLIMIT_NOFILE (inherited by the servers and
    generators it starts) to at least C{needed}, within the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def freePort(kind: int = socket.SOCK_STREAM) -> int:
    """
    A port free on 127.0.0.1 now.
    """
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pinned(cpu: str, command: Sequence[str]) -> list[str]:
    """
    C{command} run on one CPU with taskset.
    """
    return ["taskset", "-c", cpu, *command]


def loadAverage() -> str:
    """
    The 1, 5 and 15 minute load averages.
    """
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpuTicks() -> dict[str, tuple[int, int]]:
    """
    (busy, total) clock ticks of the server and client CPUs so far, from
    /proc/stat.  Busy includes the kernel's softirq work, which on loopback
    is most of the networking and which no process is charged for.
    """
    ticks = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name in (f"cpu{SERVER_CPU}", f"cpu{CLIENT_CPU}"):
                values = [int(v) for v in fields]
                idle = values[3] + values[4]
                ticks[name[3:]] = (sum(values[:8]) - idle, sum(values[:8]))
    return ticks


def busyPercent(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
                cpu: str) -> float:
    """
    How busy C{cpu} was between two L{cpuTicks} readings, in %.
    """
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return 100.0 * busy / total if total else 0.0


def cpuSeconds(pid: int) -> float:
    """
    User plus system CPU seconds of a process and its children.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


def rssBytes(pid: int) -> int:
    """
    Resident memory of a process and its children.
    """
    import psutil

    process = psutil.Process(pid)
    return int(process.memory_info().rss + sum(c.memory_info().rss for c in process.children(True)))
