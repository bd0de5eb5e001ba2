# -*- test-case-name: tests.integration.test_bench -*-
"""
One measurement of one server: the load generators (the C one, wrk,
h2load, the download clients) run against it for a fixed time, checked
for errors, into a L{Sample} with the CPU use of both sides.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lineups import DOWNLOAD_SIZE, PIPELINE_SCRIPT, Client, bigDigest, fileDigest
from machine import (
    CLIENT_CPU, HOST, IDLE_CONNECTIONS, LOADGEN, SERVER_CPU, busyPercent, cpuSeconds, cpuTicks,
    pinned, rssBytes,
)
from servers import Server

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


@dataclass(frozen=True)
class ClientRun:
    """
    One timed run of a load client against a server: what it printed, its
    exit code, and the CPU readings a L{Sample} is made of.
    """

    output: str
    returncode: int
    serverBusy: float
    clientBusy: float
    serverPercent: float
    clientPercent: float

    def sample(self, rate: float) -> Sample:
        """
        The sample of this run at C{rate}.
        """
        return Sample(rate, self.serverBusy, self.clientBusy, self.serverPercent, self.clientPercent)


def clientRun(server: Server, command: list[str]) -> ClientRun:
    """
    Run C{command} on the client CPU to its end, reading how busy both
    CPUs were and the CPU the server process and the client used.
    """
    before = cpuTicks()
    serverBefore = cpuSeconds(server.pid)
    began = time.monotonic()
    process = subprocess.Popen(pinned(CLIENT_CPU, command),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - began
    after = cpuTicks()
    serverSeconds = cpuSeconds(server.pid) - serverBefore
    return ClientRun(output, os.waitstatus_to_exitcode(status),
                     busyPercent(before, after, SERVER_CPU), busyPercent(before, after, CLIENT_CPU),
                     100 * serverSeconds / seconds, 100 * (usage.ru_utime + usage.ru_stime) / seconds)


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
        run = clientRun(server, [*wrk, f"-d{max(1, round(options.duration))}s", *(script or [url])])
        match = re.search(r"Requests/sec:\s*([\d.]+)", run.output)
        if run.returncode != 0 or match is None:
            raise MeasurementError(f"wrk failed against {server.label}: {run.output}")
        problems = wrkProblems(run.output, pipeline)
        if problems:
            raise MeasurementError(f"wrk against {server.label}: {'; '.join(problems)}")
        return run.sample(float(match.group(1)))

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
        run = clientRun(server, [*h2load, f"-D{max(1, round(options.duration))}", url])
        output = run.output
        match = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
        if run.returncode != 0 or match is None or "Application protocol: h2" not in output:
            raise MeasurementError(f"h2load failed against {server.label}: {output}")
        if not re.search(r" 0 failed, 0 errored, 0 timeout", output) or "2xx" not in output:
            raise MeasurementError(f"h2load against {server.label}: {output}")
        return run.sample(float(match.group(1)))

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
