# -*- test-case-name: tests.lab.test_lab -*-
"""
Echo throughput across hosts of the network lab, for the record (not a
test: nothing is asserted on time).  As root:

    .venv/bin/python -m tests.labthroughput [--repeat 3] [--megabytes 100]

A daemon in one host echoes; L{tests.echoload.echoLoad} in another host
sends random bytes and checks the sha256 of the echo.  The same load
against the daemon from inside its own host (loopback) is the baseline.
Prints one Markdown row per case: payload megabytes per second one way,
the median of the repetitions.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile

from tests.netlab import Lab, escape, labUnavailable, removeLeftovers
from tests.support import isolatedConfig

MB = 1024 * 1024


def measure(repeat: int, megabytes: int) -> list[tuple[str, float]]:
    """
    Build a two-host lab and measure each case C{repeat} times.

    @return: (case, median MB/s) pairs.
    """
    removeLeftovers()
    directory = tempfile.mkdtemp(prefix="nslab-throughput-")
    lab = Lab(directory)
    try:
        lan = lab.segment("lan")
        server, client = lab.host("server", lan), lab.host("client", lan)
        v4, v6 = server.ipv4(lan), server.ipv6(lan)
        daemon = server.daemon(
            isolatedConfig(echo=f"listen = tcp:7007\n tcp6:7007:interface={escape(v6)}"), limit=600
        )
        daemon.waitForTCP(7007, v4)
        cases = [
            ("loopback, same host, 1 connection", server, "127.0.0.1", 1),
            ("across hosts, IPv4, 1 connection", client, v4, 1),
            ("across hosts, IPv6, 1 connection", client, v6, 1),
            ("across hosts, IPv4, 8 connections", client, v4, 8),
        ]
        results = []
        for name, host, address, clients in cases:
            size = megabytes * MB // clients
            rates = []
            for _ in range(repeat):
                result = host.call(
                    "tests.labclients.load", address, 7007, clients, size, 120, timeout=150
                )
                if result["errors"]:
                    raise SystemExit(f"{name}: {result['errors'][0]}")
                rates.append(clients * size / MB / result["seconds"])
            results.append((name, statistics.median(rates)))
        return results
    finally:
        lab.teardown()
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    """
    Parse the options, measure, print the table.
    """
    parser = argparse.ArgumentParser(prog="python -m tests.labthroughput", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each case")
    parser.add_argument("--megabytes", type=int, default=100, help="payload per repetition")
    args = parser.parse_args(argv)
    reason = labUnavailable()
    if reason is not None:
        sys.stderr.write(f"labthroughput: {reason}\n")
        return 1
    print(f"| echo, {args.megabytes} MiB each way, median of {args.repeat} | MiB/s |")
    print("|---|---|")
    for name, rate in measure(args.repeat, args.megabytes):
        print(f"| {name} | {rate:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
