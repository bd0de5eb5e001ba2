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

# The bench is in modules, each imported from this directory: machine (paths,
# CPU pinning, tools, the load generator, CPU and memory readings), servers
# (server processes: netservices, the peers, nginx), lineups (who is measured
# on each workload, and the files served), measures (one measurement of one
# server), workloads (the workloads and how a run goes through them), report
# and compare (the report, and its comparison with the previous one).  This
# module is the entry point, and keeps the names the bench's tests use.

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from lineups import Client, benchCertificate, fetchClients, httpsServers, pipelineServers
from machine import (
    BENCH, IDLE_CONNECTIONS, RESULTS, ROOT, buildLoadgen, compileBytecode, ensureTools,
    loadAverage, raiseFileLimit,
)
from measures import MeasurementError, Options, Sample, fetchOnce, wrkMeasure, wrkProblems
from servers import Server, stopChildren
from workloads import Workload, runWorkload, workloads

__all__ = [
    "Client",
    "MeasurementError",
    "Options",
    "Sample",
    "Server",
    "Workload",
    "benchCertificate",
    "compileBytecode",
    "fetchClients",
    "fetchOnce",
    "httpsServers",
    "main",
    "pipelineServers",
    "workloads",
    "wrkMeasure",
    "wrkProblems",
]


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
