# -*- test-case-name: tests.integration.test_bench -*-
"""
The workloads, in the order of the report's table, and how a run
measures them: every server of a workload (or every client, for the
download) in turn, alternating, for the repetitions asked, within the
time budget.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lineups import (
    PIPELINE_DEPTH, STATIC_FILE, Client, bigDirectory, echoServers, fetchClients, http2Servers,
    httpsServers, pipelineServers, startupServers, staticDirectory, staticServers, udpServers,
    webServers,
)
from machine import IDLE_CONNECTIONS
from measures import (
    MeasurementError, Options, Sample, echoMeasure, fetchMeasure, h2loadMeasure, rssMeasure,
    startupMeasure, wrkMeasure,
)
from servers import Server, nginx

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
