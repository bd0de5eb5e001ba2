# -*- test-case-name: tests.integration.test_bench -*-
"""
Who is measured on each workload: the servers of echo, UDP, HTTP
(plain, pipelined, TLS, HTTP/2), static files and start-up, the clients of
the download, and the files those serve.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from machine import BENCH, BIN, HOST, PEERS, PYTHON, ROOT, freePort
from servers import Server, configSections, netservices, nginx, peer

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


def fileDigest(path: Path) -> str:
    """
    The sha256 of a file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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
