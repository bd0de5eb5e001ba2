# -*- test-case-name: tests.integration.test_bench -*-
"""
Server processes: L{Server} starts one pinned to the server CPU and waits
until it answers; L{netservices}, L{peer} and L{nginx} build the servers
of netservices (with its own tap.conf), of the peers in C{bench/peers/}
and of nginx.  L{stopChildren} ends whatever a run leaves behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from machine import BIN, HOST, PEERS, PYTHON, SERVER_CPU, freePort, pinned

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
