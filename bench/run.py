# -*- test-case-name: tests.integration.test_bench -*-
"""
Benchmarks of netservices against its peers, side by side in one run.

    make bench                       # everything, about 10 minutes
    .venv/bin/python bench/run.py --quick --only echo-pp100,udp

Installs what it needs when missing (Debian: wrk, nginx-light; PyPI: the
C{bench} extra), builds the C load generator C{bench/loadgen.c} into
C{bench/build/}, then for each workload starts every server pinned to CPU 0,
drives it from CPU 1, alternating the servers for C{--reps} repetitions, and
writes C{bench/results/<date>.md} (a table of medians, ratios, and the CPU
use of both sides, the targets, and the change of every netservices row
since the previous report) with a PNG chart, and copies the summary into
README.md.

Only loopback traffic (127.0.0.1); every server, generator and loop is
bounded in time, and the whole run stops starting measurements once
C{--budget} seconds have passed.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

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



# --------------------------------------------------------------------------
# Setup: tools, the load generator, resource limits


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


# --------------------------------------------------------------------------
# Servers


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


@dataclass
class Server:
    """
    One server process of a peer, pinned to the server CPU.

    @ivar label: the peer's name in the table.
    @ivar command: what to run.
    @ivar port: where it listens.
    @ivar udp: whether C{port} is a UDP port.
    """

    label: str
    command: list[str]
    port: int
    udp: bool = False
    path: str = "/"
    cwd: Path | None = None
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    logPath: Path | None = None
    startedIn: float = 0.0

    def start(self, workdir: Path, timeout: float = 30.0) -> Server:
        """
        Start the process and wait until it answers on its port.
        """
        self.logPath = workdir / f"{re.sub(r'[^a-z0-9]+', '-', self.label.lower())}-{self.port}.log"
        log = open(self.logPath, "wb")
        began = time.monotonic()
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, self.command), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.cwd or workdir, start_new_session=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        log.close()
        deadline = began + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited: {self.logPath.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.label} did not answer on port {self.port}")
            time.sleep(0.002)
        self.startedIn = time.monotonic() - began
        return self

    def answers(self) -> bool:
        """
        Whether the server accepts a connection (or echoes a datagram) now.
        """
        kind = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as s:
            s.settimeout(0.05)
            try:
                s.connect((HOST, self.port))
                if self.udp:
                    s.send(b"probe")
                    return s.recv(64) == b"probe"
                return True
            except OSError:
                return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """
        SIGTERM the server and wait for it (SIGKILL after 10 s).
        """
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def stopChildren() -> None:
    """
    End the processes this run started that are still running (servers
    lead process groups of their own; generators do not).
    """
    import psutil

    def signal_(child: Any, number: int) -> None:
        try:
            if os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, number)
            else:
                child.send_signal(number)
        except (OSError, psutil.Error):
            pass

    children = psutil.Process().children()
    for child in children:
        signal_(child, signal.SIGTERM)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        signal_(child, signal.SIGKILL)


def netservicesConfig(workdir: Path, name: str, **sections: dict[str, str]) -> Path:
    """
    Write a tap.conf that enables only the given sections (name to keys) and
    turns every other service off, at log level warn.
    """
    from services.config import SECTIONS, sectionFields

    lines = []
    for section in SECTIONS:
        keys = dict(sections.get(section.replace("-", "_"), {}))
        if section == "log":
            keys.setdefault("level", "warn")
        elif "enabled" in sectionFields(section):
            keys.setdefault("enabled", "yes" if section.replace("-", "_") in sections else "no")
        if keys:
            lines.append(f"[{section}]")
            lines += [f"{k} = {v}" for k, v in keys.items()]
            lines.append("")
    path = workdir / f"{name}.conf"
    path.write_text("\n".join(lines))
    return path


def twistd(config: Path, reactor: str | None = None) -> list[str]:
    """
    The command line of C{twistd -n netservices} with C{config}.
    """
    command = [str(BIN / "twistd"), "--pidfile=", "--logfile=-"]
    if reactor:
        command.append(f"--reactor={reactor}")
    return command + ["-n", "netservices", "--config", str(config)]


def hasReactor(name: str) -> bool:
    """
    Whether C{twistd --reactor NAME} is installed.
    """
    try:
        from twisted.application.reactors import getReactorTypes

        return any(r.shortName == name for r in getReactorTypes())
    except Exception:
        return False


#: The reactor netservices is also measured on: Twisted's own epoll reactor
#: (netservices runs on nsepoll unless told otherwise).
TWISTED_REACTOR = "epoll"


def configSections() -> set[str]:
    """
    The tap.conf sections this checkout of netservices knows.
    """
    from services.config import SECTIONS

    return set(SECTIONS)


def netservices(workdir: Path, sections: Callable[[int], dict[str, dict[str, str]]],
                udp: bool = False, path: str = "/", reactors: bool = True) -> list[Server]:
    """
    netservices as configured (on nsepoll) and, when C{reactors} is true,
    on Twisted's epoll reactor; C{sections(port)} gives the configuration
    for a port.
    """
    servers = []
    for label, reactor in (("netservices", None), (f"netservices --reactor {TWISTED_REACTOR}", TWISTED_REACTOR)):
        if reactor and (not reactors or not hasReactor(reactor)):
            continue
        port = freePort(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        config = netservicesConfig(workdir, f"ns-{port}", **sections(port))
        servers.append(Server(label, twistd(config, reactor), port, udp=udp, path=path))
    return servers


def peer(label: str, script: str, *args: str, udp: bool = False, path: str = "/") -> Server:
    """
    A peer server from bench/peers, on a free port.
    """
    port = freePort(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    return Server(label, [PYTHON, str(PEERS / script), args[0], str(port), *args[1:]], port,
                  udp=udp, path=path)


def echoServers(workdir: Path, echoKeys: dict[str, str] | None = None) -> list[Server]:
    """
    The TCP echo servers compared: netservices (on nsepoll, its default, and
    on Twisted's epoll reactor), minimal Twisted, asyncio and uvloop.
    """
    servers = netservices(workdir, lambda port: {"echo": {
        "listen": f"tcp:{port}:interface={HOST}", "max_connections": "0", **(echoKeys or {})}})
    port = freePort()
    servers.append(Server("Twisted minimal", [PYTHON, str(PEERS / "twisted_servers.py"),
                                              "tcp-echo", str(port)], port))
    port = freePort()
    servers.append(Server("asyncio", [PYTHON, str(PEERS / "asyncio_servers.py"),
                                      "tcp-echo", str(port)], port))
    port = freePort()
    servers.append(Server("uvloop", [PYTHON, str(PEERS / "asyncio_servers.py"),
                                     "tcp-echo", str(port), "--uvloop"], port))
    return servers


def udpServers(workdir: Path) -> list[Server]:
    """
    UDP echo: netservices' [udp-echo] (rate limits raised out of the way),
    minimal Twisted, asyncio and uvloop.
    """
    servers = []
    if "udp-echo" in configSections():
        servers += netservices(workdir, lambda port: {"udp_echo": {
            "listen": f"udp:{port}:interface={HOST}", **UDP_ECHO_LIMITS}}, udp=True)
    servers.append(peer("Twisted minimal", "twisted_servers.py", "udp-echo", udp=True))
    servers.append(peer("asyncio", "asyncio_servers.py", "udp-echo", udp=True))
    servers.append(peer("uvloop", "asyncio_servers.py", "udp-echo", "--uvloop", udp=True))
    return servers


#: [udp-echo] rate limits high enough that the benchmark measures the echo.
UDP_ECHO_LIMITS = {"source_rate": "1000000", "source_burst": "1000000", "global_rate": "1000000"}


def webServers(workdir: Path) -> list[Server]:
    """
    HTTP hello: netservices' [web], a minimal twisted.web site, aiohttp and
    the stdlib's http.server.
    """
    servers = []
    if "web" in configSections():
        servers += netservices(workdir, lambda port: {"web": {
            "listen": f"tcp:{port}:interface={HOST}", "max_connections": "0",
            "max_connections_per_peer": "0"}})
    servers.append(peer("Twisted minimal", "twisted_servers.py", "http-hello"))
    servers.append(peer("aiohttp", "asyncio_servers.py", "http-hello"))
    servers.append(peer("aiohttp (uvloop)", "asyncio_servers.py", "http-hello", "--uvloop"))
    servers.append(peer("stdlib http.server", "stdlib_http.py", "http-hello"))
    servers[-1].command.pop(2)  # stdlib_http.py takes the port only
    return servers


#: How many requests the pipelining workload's wrk script sends per batch.
PIPELINE_DEPTH = 16
PIPELINE_SCRIPT = BENCH / "pipeline.lua"


def pipelineServers(workdir: Path) -> list[Server]:
    """
    HTTP hello with pipelining: netservices' [web] with its default limits
    (only the total connection cap is lifted, as on the other web rows;
    the per-peer cap of 256 is above wrk's 50 connections), a minimal
    twisted.web site, aiohttp and aiohttp on uvloop.
    """
    servers = []
    if "web" in configSections():
        servers += netservices(workdir, lambda port: {"web": {
            "listen": f"tcp:{port}:interface={HOST}", "max_connections": "0"}})
    servers.append(peer("Twisted minimal", "twisted_servers.py", "http-hello"))
    servers.append(peer("aiohttp", "asyncio_servers.py", "http-hello"))
    servers.append(peer("aiohttp (uvloop)", "asyncio_servers.py", "http-hello", "--uvloop"))
    return servers


def httpsServers(workdir: Path) -> list[Server]:
    """
    HTTPS hello over HTTP/1.1 keep-alive: netservices' [web] on an ssl:
    listener, nginx with TLS, aiohttp and aiohttp on uvloop with TLS, all
    with the same certificate (L{benchCertificate}).
    """
    cert, key = benchCertificate(workdir)
    servers = []
    if "web" in configSections():
        servers += netservices(workdir, lambda port: {"web": {
            "listen": f"ssl:{port}:interface={HOST}:privateKey={key}:certKey={cert}",
            "max_connections": "0", "max_connections_per_peer": "0"}})
    servers.append(nginx(workdir, workdir, tls=(cert, key)))
    tls = ("--certificate", str(cert), "--key", str(key))
    servers.append(peer("aiohttp", "asyncio_servers.py", "http-hello", *tls))
    servers.append(peer("aiohttp (uvloop)", "asyncio_servers.py", "http-hello", "--uvloop", *tls))
    return servers


def benchCertificate(workdir: Path) -> tuple[Path, Path]:
    """
    A self-signed certificate and key for 127.0.0.1 (made once, with
    openssl), readable by nginx's workers.
    """
    cert, key = workdir / "bench.crt", workdir / "bench.key"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "1", "-subj", f"/CN={HOST}"],
                       check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o644)
    return cert, key


def http2Servers(workdir: Path) -> list[Server]:
    """
    HTTP/2 hello over TLS: netservices' [web] on an ssl: listener, and nginx.
    """
    cert, key = benchCertificate(workdir)
    servers = []
    if "web" in configSections() and "http2" in _webKeys():
        servers += netservices(workdir, lambda port: {"web": {
            "listen": f"ssl:{port}:interface={HOST}:privateKey={key}:certKey={cert}",
            "max_connections": "0", "max_connections_per_peer": "0"}}, reactors=False)
    servers.append(nginx(workdir, workdir, tls=(cert, key)))
    return servers


def _webKeys() -> set[str]:
    from services.config import sectionFields

    return set(sectionFields("web"))


STATIC_FILE = "file.bin"
STATIC_SIZE = 1 << 20
DOWNLOAD_SIZE = 512 << 20


def staticDirectory(workdir: Path) -> Path:
    """
    A directory with a 1 MiB file of random bytes, readable by nginx's
    worker user.
    """
    directory = workdir / "static"
    if not directory.exists():
        directory.mkdir()
        (directory / STATIC_FILE).write_bytes(os.urandom(STATIC_SIZE))
        os.chmod(directory, 0o755)
        os.chmod(directory / STATIC_FILE, 0o644)
    return directory


def nginx(workdir: Path, root: Path, label: str = "nginx",
          tls: tuple[Path, Path] | None = None) -> Server:
    """
    nginx (one worker, sendfile on, no access log) serving C{root}; with
    C{tls} (certificate, key), HTTPS with HTTP/2 (ALPN; HTTP/1.1 without
    it) and TLS 1.3 (nginx before 1.23.4 offers only up to TLS 1.2 unless
    told), and C{/} answering "Hello World".
    """
    port = freePort()
    listen, extra = f"{HOST}:{port}", ""
    if tls is not None:
        listen += " ssl http2"
        extra = (f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};\n"
                 "        ssl_protocols TLSv1.2 TLSv1.3;\n"
                 '        location = / { default_type text/html; return 200 "Hello World"; }')
    prefix = workdir / f"nginx-{port}"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ application/octet-stream bin; }}
    client_body_temp_path {prefix};
    proxy_temp_path {prefix};
    fastcgi_temp_path {prefix};
    uwsgi_temp_path {prefix};
    scgi_temp_path {prefix};
    server {{
        listen {listen};
        root {root};
        {extra}
    }}
}}
""")
    os.chmod(prefix, 0o755)
    return Server(label, [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(prefix), "-c",
                          str(conf), "-e", str(prefix / "error.log")], port)


def staticServers(workdir: Path) -> list[Server]:
    """
    A 1 MiB static file: netservices' [web] static_dir, a minimal twisted.web
    static.File, and nginx.
    """
    directory = staticDirectory(workdir)
    servers = []
    if "web" in configSections():
        servers += netservices(workdir, lambda port: {"web": {
            "listen": f"tcp:{port}:interface={HOST}", "static_dir": str(directory),
            "max_connections": "0", "max_connections_per_peer": "0"}},
            path=f"/static/{STATIC_FILE}")
    servers.append(peer("Twisted minimal", "twisted_servers.py", "static", str(directory),
                        path=f"/{STATIC_FILE}"))
    server = nginx(workdir, directory)
    server.path = f"/{STATIC_FILE}"
    servers.append(server)
    return servers


def startupServers(workdir: Path) -> list[Server]:
    """
    What start-up is compared on, all under twistd except asyncio:
    netservices with echo only and with echo and web, twistd web, and the
    minimal Twisted echo as a .tac file.
    """
    servers = netservices(workdir, lambda port: {"echo": {"listen": f"tcp:{port}:interface={HOST}"}},
                          reactors=False)
    if "web" in configSections():
        (server,) = netservices(workdir, lambda port: {
            "echo": {"listen": f"tcp:{port}:interface={HOST}"},
            "web": {"listen": f"tcp:{freePort()}:interface={HOST}"}}, reactors=False)
        server.label = "netservices (echo + web)"
        servers.append(server)
    port = freePort()
    servers.append(Server("twistd web", [str(BIN / "twistd"), "--pidfile=", "--logfile=-", "-n",
                                         "web", "--listen", f"tcp:{port}:interface={HOST}",
                                         "--path", str(staticDirectory(workdir))], port))
    port = freePort()
    servers.append(Server("Twisted minimal", [str(BIN / "twistd"), "--pidfile=", "--logfile=-",
                                              "-n", "-y", str(PEERS / "echo.tac")], port,
                          env={"BENCH_PORT": str(port)}))
    servers.append(peer("asyncio", "asyncio_servers.py", "tcp-echo"))
    return servers


@dataclass(frozen=True)
class Client:
    """
    A download client: C{command(url, output)} fetches C{url} into
    C{output}.
    """

    label: str
    command: Callable[[str, str], list[str]]


def fetchClients() -> list[Client]:
    """
    netservices fetch -o, the minimal treq download, and curl -o.
    """
    clients = []
    if (ROOT / "services" / "cli" / "fetch.py").exists():
        clients.append(Client("netservices fetch", lambda url, out: [
            str(BIN / "netservices"), "fetch", "-o", out, url]))
    clients.append(Client("Twisted minimal", lambda url, out: [
        PYTHON, str(PEERS / "treq_fetch.py"), url, out]))
    clients.append(Client("curl", lambda url, out: ["curl", "-sS", "-o", out, url]))
    return clients


# --------------------------------------------------------------------------
# Measurements


@dataclass(frozen=True)
class Sample:
    """
    One measurement of one server.

    @ivar value: the workload's figure (higher is better unless the
        workload says otherwise).
    @ivar serverCpu: how busy the server's CPU was in the window, in %
        (everything on it: the server, the kernel's network work, and any
        other process).
    @ivar clientCpu: the same for the generator's CPU.
    @ivar serverProcess: the server process's own CPU time in the window,
        in % of the window.
    @ivar clientProcess: the same for the generator process.
    """

    value: float
    serverCpu: float
    clientCpu: float
    serverProcess: float = 0.0
    clientProcess: float = 0.0


class MeasurementError(Exception):
    """
    A generator reported an error (a wrong byte, a stall, a failed request).
    """


def runLoadgen(server: Server, args: Sequence[str], timeout: float) -> tuple[dict[str, Any], float, float]:
    """
    Run the load generator against C{server} and return its report and how
    busy the server's and the generator's CPUs were in the measured window.
    """
    command = pinned(CLIENT_CPU, [str(LOADGEN), *args, "-p", str(server.port)])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        before = cpuTicks()
        serverBefore = cpuSeconds(server.pid)
        if first != "measuring":
            raise MeasurementError(f"loadgen: {first} {process.stderr.read() if process.stderr else ''}")
        line = process.stdout.readline()
        after = cpuTicks()
        serverSeconds = cpuSeconds(server.pid) - serverBefore
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    report = json.loads(line) if line.strip().startswith("{") else {"error": line}
    if process.returncode != 0 or "error" in report:
        stderr = process.stderr.read() if process.stderr else ""
        raise MeasurementError(f"loadgen failed against {server.label}: {report} {stderr}")
    report["serverSeconds"] = serverSeconds
    return report, busyPercent(before, after, SERVER_CPU), busyPercent(before, after, CLIENT_CPU)


@dataclass
class Workload:
    """
    One row group of the table.

    @ivar name: short name, used by C{--only}.
    @ivar title: what the table says.
    @ivar unit: the unit of the figure.
    @ivar servers: builds the servers (given a work directory).
    @ivar measure: measures one server once.
    @ivar subject: the label whose ratios to the others are reported.
    @ivar higherIsBetter: whether a bigger figure is better.
    """

    name: str
    title: str
    unit: str
    servers: Callable[[Path], list[Server]]
    measure: Callable[[Server, Options], Sample]
    higherIsBetter: bool = True
    restartEachRep: bool = False
    minReps: int = 1
    clients: Callable[[], list[Client]] | None = None
    measureClient: Callable[[Server, Client, Options], Sample] | None = None
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    """
    How long and how often to measure.
    """

    duration: float
    warmup: float
    reps: int
    budget: float
    started: float
    workdir: Path


def echoMeasure(mode: str, *args: str) -> Callable[[Server, Options], Sample]:
    """
    A measurement with the C load generator in C{mode}.
    """

    def measure(server: Server, options: Options) -> Sample:
        report, serverCpu, clientCpu = runLoadgen(
            server,
            [mode, *args, "-w", str(options.warmup), "-d", str(options.duration)],
            timeout=options.duration + options.warmup + 30,
        )
        seconds = report["seconds"]
        value = report["bytes"] / seconds / 2**20 if mode == "stream" else report["ops"] / seconds
        return Sample(value, serverCpu, clientCpu, 100 * report["serverSeconds"] / seconds,
                      100 * report["cpu"] / seconds)

    return measure


def rssMeasure(server: Server, options: Options) -> Sample:
    """
    Hold C{IDLE_CONNECTIONS} idle connections open on a fresh server: its
    RSS growth per connection, in KiB.
    """
    time.sleep(0.2)
    baseline = rssBytes(server.pid)
    command = pinned(CLIENT_CPU, [str(LOADGEN), "hold", "-c", str(IDLE_CONNECTIONS),
                                  "-d", "60", "-p", str(server.port)])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        if not line.startswith("ready"):
            raise MeasurementError(f"loadgen hold: {line} {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.5)
        held = rssBytes(server.pid)
        process.stdin.close()
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Sample((held - baseline) / IDLE_CONNECTIONS / 1024, 0.0, 0.0)


def wrkMeasure(path: str | None, connections: int, expectBody: bytes | None = None,
               expectFile: Callable[[], Path] | None = None, pipeline: int = 0,
               tls: bool = False) -> Callable[[Server, Options], Sample]:
    """
    Requests per second that wrk gets for C{path} with C{connections}
    keep-alive connections and one thread, after a one-second warm-up; the
    body is checked once first.  With C{pipeline}, each connection sends
    that many requests at once (C{bench/pipeline.lua}), and every response
    must be a 200 with the expected body.  With C{tls}, over HTTPS: the
    first check also requires TLS 1.3.
    """

    def measure(server: Server, options: Options) -> Sample:
        url = f"{'https' if tls else 'http'}://{HOST}:{server.port}"
        url += server.path if path is None else path
        version, body = fetchOnce(url)
        if expectBody is not None and body != expectBody:
            raise MeasurementError(f"{server.label} answered {body[:100]!r}")
        if expectFile is not None and body != expectFile().read_bytes():
            raise MeasurementError(f"{server.label} served a different file")
        if tls and version != "TLSv1.3":
            raise MeasurementError(f"{server.label} negotiated {version}, not TLSv1.3")
        wrk = ["wrk", "-t1", f"-c{connections}", "--timeout", "5s"]
        script: list[str] = []
        if pipeline:
            script = ["-s", str(PIPELINE_SCRIPT), url, "--", str(pipeline)]
            if expectBody is not None:
                script.append(expectBody.decode())
        subprocess.run(pinned(CLIENT_CPU, [*wrk, "-d1s", *(script or [url])]),
                       capture_output=True, timeout=30, check=False)
        before = cpuTicks()
        serverBefore = cpuSeconds(server.pid)
        began = time.monotonic()
        process = subprocess.Popen(
            pinned(CLIENT_CPU, [*wrk, f"-d{max(1, round(options.duration))}s", *(script or [url])]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - began
        after = cpuTicks()
        serverSeconds = cpuSeconds(server.pid) - serverBefore
        match = re.search(r"Requests/sec:\s*([\d.]+)", output)
        if process.returncode != 0 or match is None:
            raise MeasurementError(f"wrk failed against {server.label}: {output}")
        problems = wrkProblems(output, pipeline)
        if problems:
            raise MeasurementError(f"wrk against {server.label}: {'; '.join(problems)}")
        return Sample(float(match.group(1)), busyPercent(before, after, SERVER_CPU),
                      busyPercent(before, after, CLIENT_CPU), 100 * serverSeconds / seconds,
                      100 * (usage.ru_utime + usage.ru_stime) / seconds)

    return measure


def fetchOnce(url: str) -> tuple[str | None, bytes]:
    """
    GET C{url} once: the TLS version negotiated (None over plain HTTP) and
    the body.  The client offers every TLS version it has, as wrk does, so
    the version is what the server picks; the self-signed certificate is
    not verified.
    """
    import http.client
    import ssl
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(parts.hostname or HOST, parts.port, timeout=10,
                                                 context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path or "/")
        # Before the response: a server that closes after it (HTTP/1.0)
        # leaves the connection without its socket.
        version = connection.sock.version() if isinstance(connection.sock, ssl.SSLSocket) else None
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as e:
        raise MeasurementError(f"GET {url}: {e}") from e
    finally:
        connection.close()
    if response.status != 200:
        raise MeasurementError(f"GET {url}: {response.status} {response.reason}")
    return version, body


def wrkProblems(output: str, pipeline: int = 0) -> list[str]:
    """
    What wrk's C{output} reports as gone wrong: socket errors, responses
    other than 2xx or 3xx and, for a pipelined run, responses other than a
    200 with the expected body or a depth other than C{pipeline}.
    """
    problems = re.findall(r"(Socket errors:.*|Non-2xx or 3xx responses: \d+)", output)
    if pipeline:
        match = re.search(r"pipeline: depth=(\d+) responses=(\d+) bad=(\d+)", output)
        if match is None:
            problems.append(f"no pipeline summary from {PIPELINE_SCRIPT.name}")
        elif int(match.group(1)) != pipeline or not int(match.group(2)) or int(match.group(3)):
            problems.append(f"{match.group(0)} (expected depth={pipeline}, no bad responses)")
    return problems


def h2loadMeasure(connections: int, streams: int) -> Callable[[Server, Options], Sample]:
    """
    Requests per second that h2load gets for C{/} over HTTPS with HTTP/2,
    on C{connections} connections of C{streams} concurrent streams each,
    after a one-second warm-up.
    """

    def measure(server: Server, options: Options) -> Sample:
        url = f"https://{HOST}:{server.port}/"
        h2load = ["h2load", "-t1", f"-c{connections}", f"-m{streams}"]
        subprocess.run(pinned(CLIENT_CPU, [*h2load, "-D1", url]), capture_output=True, timeout=30, check=False)
        before = cpuTicks()
        serverBefore = cpuSeconds(server.pid)
        began = time.monotonic()
        process = subprocess.Popen(
            pinned(CLIENT_CPU, [*h2load, f"-D{max(1, round(options.duration))}", url]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - began
        after = cpuTicks()
        serverSeconds = cpuSeconds(server.pid) - serverBefore
        match = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
        if process.returncode != 0 or match is None or "Application protocol: h2" not in output:
            raise MeasurementError(f"h2load failed against {server.label}: {output}")
        if not re.search(r" 0 failed, 0 errored, 0 timeout", output) or "2xx" not in output:
            raise MeasurementError(f"h2load against {server.label}: {output}")
        return Sample(float(match.group(1)), busyPercent(before, after, SERVER_CPU),
                      busyPercent(before, after, CLIENT_CPU), 100 * serverSeconds / seconds,
                      100 * (usage.ru_utime + usage.ru_stime) / seconds)

    return measure


def startupMeasure(server: Server, options: Options) -> Sample:
    """
    Milliseconds from starting the process to its first accepted
    connection (the server was just started by the runner).
    """
    return Sample(server.startedIn * 1000, 0.0, 0.0)


def fetchMeasure(workdir: Path) -> Callable[[Server, Client, Options], Sample]:
    """
    MiB/s of one whole download (process start to exit) of the big file.
    """

    def measure(server: Server, client: Client, options: Options) -> Sample:
        digest = bigDigest(workdir)
        output = Path("/dev/shm" if Path("/dev/shm").is_dir() else workdir) / f"bench-{os.getpid()}.out"
        url = f"http://{HOST}:{server.port}/big.bin"
        try:
            before = cpuTicks()
            serverBefore = cpuSeconds(server.pid)
            childrenBefore = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.monotonic()
            process = subprocess.Popen(pinned(CLIENT_CPU, client.command(url, str(output))),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                _, errors = process.communicate(timeout=120)
            finally:
                if process.poll() is None:
                    process.kill()
            seconds = time.monotonic() - began
            after = cpuTicks()
            serverSeconds = cpuSeconds(server.pid) - serverBefore
            childrenAfter = resource.getrusage(resource.RUSAGE_CHILDREN)
            clientSeconds = (childrenAfter.ru_utime - childrenBefore.ru_utime
                             + childrenAfter.ru_stime - childrenBefore.ru_stime)
            if process.returncode != 0:
                raise MeasurementError(f"{client.label} failed: {errors[-500:]!r}")
            if output.stat().st_size != DOWNLOAD_SIZE or fileDigest(output) != digest:
                raise MeasurementError(f"{client.label} wrote a different file")
        finally:
            output.unlink(missing_ok=True)
        return Sample(DOWNLOAD_SIZE / seconds / 2**20, busyPercent(before, after, SERVER_CPU),
                      busyPercent(before, after, CLIENT_CPU), 100 * serverSeconds / seconds,
                      100 * clientSeconds / seconds)

    return measure


def fileDigest(path: Path) -> str:
    """
    The sha256 of a file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Workloads


def workloads(workdir: Path) -> list[Workload]:
    """
    Every workload, in the order of the table.
    """
    return [
        Workload("echo-pp1", "TCP echo ping-pong, 1 connection, 64 B", "round trips/s",
                 echoServers, echoMeasure("pingpong", "-c", "1", "-s", "64")),
        Workload("echo-pp100", "TCP echo ping-pong, 100 connections, 64 B", "round trips/s",
                 echoServers, echoMeasure("pingpong", "-c", "100", "-s", "64")),
        Workload("echo-stream", "TCP echo streaming, 64 KiB writes", "MiB/s echoed",
                 echoServers, echoMeasure("stream", "-c", "1", "-s", "65536")),
        Workload("udp", "UDP echo, 32 datagrams of 64 B in flight", "datagrams/s",
                 udpServers, echoMeasure("udp", "-W", "32", "-s", "64")),
        Workload("http-hello", "HTTP hello, wrk -c50 keep-alive", "requests/s",
                 webServers, wrkMeasure("/", 50, expectBody=b"Hello World")),
        Workload("http-pipeline", f"HTTP hello, wrk -c50, {PIPELINE_DEPTH} requests pipelined",
                 "requests/s", pipelineServers,
                 wrkMeasure("/", 50, expectBody=b"Hello World", pipeline=PIPELINE_DEPTH)),
        Workload("https-hello", "HTTPS hello, TLS 1.3, keep-alive, wrk -c50", "requests/s",
                 httpsServers, wrkMeasure("/", 50, expectBody=b"Hello World", tls=True)),
        Workload("http2", "HTTP/2 hello over TLS, h2load 4 connections x 8 streams",
                 "requests/s", http2Servers, h2loadMeasure(4, 8)),
        Workload("static", "Static 1 MiB file, wrk -c10 keep-alive", "requests/s",
                 staticServers, wrkMeasure(None, 10, expectFile=lambda: staticDirectory(workdir)
                                           / STATIC_FILE)),
        Workload("fetch", "Download of 512 MiB from nginx (client on CPU 1)", "MiB/s",
                 lambda w: [nginx(w, bigDirectory(w))], lambda s, o: Sample(0, 0, 0),
                 clients=fetchClients, measureClient=fetchMeasure(workdir)),
        Workload("rss", f"RSS per idle connection at {IDLE_CONNECTIONS:,} connections", "KiB",
                 echoServers, rssMeasure, higherIsBetter=False, restartEachRep=True),
        Workload("startup", "Start-up to the first accepted connection", "ms",
                 startupServers, startupMeasure, higherIsBetter=False, restartEachRep=True,
                 minReps=5),
    ]


def bigDirectory(workdir: Path) -> Path:
    """
    A directory with the download workload's file (random bytes).
    """
    directory = workdir / "big"
    if not directory.exists():
        directory.mkdir()
        block = os.urandom(1 << 20)
        with open(directory / "big.bin", "wb") as f:
            for i in range(DOWNLOAD_SIZE >> 20):
                f.write(block[i % 251:] + block[: i % 251])
        os.chmod(directory, 0o755)
        os.chmod(directory / "big.bin", 0o644)
    return directory


@functools.cache
def bigDigest(workdir: Path) -> str:
    """
    The sha256 of the download workload's file (created on first use).
    """
    return fileDigest(bigDirectory(workdir) / "big.bin")


# --------------------------------------------------------------------------
# Running


def runWorkload(workload: Workload, options: Options) -> None:
    """
    Start the workload's servers and measure each of them C{options.reps}
    times, alternating; stop them.
    """
    servers = workload.servers(options.workdir)
    try:
        if workload.clients is not None:
            return runClients(workload, servers[0], options)
        if not workload.restartEachRep:
            for server in servers:
                server.start(options.workdir)
        else:
            for server in servers:  # untimed: caches (plugins, bytecode, page cache) warm up
                server.start(options.workdir)
                server.stop()
        for rep in range(max(options.reps, workload.minReps)):
            order = servers[rep % len(servers):] + servers[: rep % len(servers)]
            for server in order:
                if time.monotonic() - options.started > options.budget:
                    workload.notes.append("time budget reached: fewer repetitions")
                    return
                if workload.restartEachRep:
                    server.start(options.workdir)
                try:
                    sample = workload.measure(server, options)
                except (MeasurementError, RuntimeError, subprocess.TimeoutExpired) as e:
                    workload.notes.append(f"{server.label}: {e}")
                    print(f"bench: {workload.name}: {e}", file=sys.stderr)
                    continue
                finally:
                    if workload.restartEachRep:
                        server.stop()
                workload.samples.setdefault(server.label, []).append(sample)
                print(f"bench: {workload.name} {server.label}: {sample.value:,.1f} {workload.unit} "
                      f"(server {sample.serverProcess:.0f}%, CPU 0 {sample.serverCpu:.0f}% busy; "
                      f"client {sample.clientProcess:.0f}%, CPU 1 {sample.clientCpu:.0f}% busy)",
                      file=sys.stderr)
    finally:
        for server in servers:
            server.stop()


def runClients(workload: Workload, server: Server, options: Options) -> None:
    """
    Start the workload's one server and measure each client against it
    C{options.reps} times, alternating.
    """
    assert workload.clients is not None and workload.measureClient is not None
    clients = workload.clients()
    server.start(options.workdir)
    for rep in range(options.reps):
        for client in clients[rep % len(clients):] + clients[: rep % len(clients)]:
            if time.monotonic() - options.started > options.budget:
                workload.notes.append("time budget reached: fewer repetitions")
                return
            try:
                sample = workload.measureClient(server, client, options)
            except (MeasurementError, subprocess.TimeoutExpired) as e:
                workload.notes.append(f"{client.label}: {e}")
                print(f"bench: {workload.name}: {e}", file=sys.stderr)
                continue
            workload.samples.setdefault(client.label, []).append(sample)
            print(f"bench: {workload.name} {client.label}: {sample.value:,.1f} {workload.unit}",
                  file=sys.stderr)


def median(samples: list[Sample], attribute: str = "value") -> float:
    """
    The median of one attribute of C{samples}.
    """
    return statistics.median(getattr(s, attribute) for s in samples)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Parse the command line, run the workloads, write the report.
    """
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per server (default 5)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="measured seconds per run (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds (default 0.5)")
    parser.add_argument("--budget", type=float, default=840,
                        help="start no measurement after this many seconds (default 840)")
    parser.add_argument("--quick", action="store_true",
                        help="1 repetition of 1 second each, to try the bench itself")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--previous", type=Path, default=None,
                        help="the report to compare netservices' rows with (default: the "
                             "newest in bench/results when the run starts)")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.duration = 1, 1.0
    ensureTools()
    compileBytecode()
    buildLoadgen()
    raiseFileLimit(IDLE_CONNECTIONS * 2 + 1000)
    sys.path.insert(0, str(ROOT))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    workdir = Path(tempfile.mkdtemp(prefix="netservices-bench-"))
    atexit.register(shutil.rmtree, workdir, True)  # runs last: after the children are gone
    atexit.register(stopChildren)
    os.chmod(workdir, 0o755)
    options = Options(args.duration, args.warmup, max(1, args.reps), args.budget,
                      time.monotonic(), workdir)
    chosen = [w for w in workloads(workdir) if not args.only or w.name in args.only.split(",")]
    from compare import previousReport

    previous = args.previous or previousReport(RESULTS)
    loadBefore = loadAverage()
    for workload in chosen:
        print(f"bench: {workload.name}: {workload.title}", file=sys.stderr)
        runWorkload(workload, options)
    from report import writeReport

    writeReport(chosen, options, args.output, loadBefore, loadAverage(), not args.no_readme,
                previous)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    raise SystemExit(main())
