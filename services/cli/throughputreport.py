# -*- test-case-name: tests.unit.echo.test_throughput -*-
"""
How C{netservices throughput} writes its figures: iperf3's columns (bytes in
powers of 1024, rates in powers of 1000), the totals of its streams as text
or as one JSON document, and the round-trip statistics with RFC 3550's
jitter.
"""

from __future__ import annotations

import argparse
import json
from itertools import pairwise
from typing import IO, Any

from services.cli import exits
from services.echo._throughput import Intervals, StreamResult

__all__ = [
    "figures",
    "formatBits",
    "formatBytes",
    "jitter",
    "row",
    "rttStats",
    "rttText",
    "writeStreamSummary",
]


def formatBytes(n: float) -> str:
    """
    iperf3's transfer column: C{512 KBytes}, C{1.10 GBytes} (powers of 1024).
    """
    for unit, size in (("GBytes", 1024**3), ("MBytes", 1024**2), ("KBytes", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.2f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n:.0f} Bytes"


def formatBits(bps: float) -> str:
    """
    iperf3's bitrate column: C{9.45 Gbits/sec} (powers of 1000).
    """
    for unit, size in (("Gbits", 1e9), ("Mbits", 1e6), ("Kbits", 1e3)):
        if bps >= size:
            value = bps / size
            return f"{value:.2f} {unit}/sec" if value < 100 else f"{value:.0f} {unit}/sec"
    return f"{bps:.0f} bits/sec"


def row(label: str, start: float, end: float, count: int, note: str = "") -> str:
    """
    One line of iperf3's table: C{[  ID] Interval  Transfer  Bitrate}, and
    a note.
    """
    seconds = end - start
    rate = 8 * count / seconds if seconds > 0 else 0.0
    line = f"[{label:>4}] {start:6.2f}-{end:<6.2f} sec  {formatBytes(count):>12}  {formatBits(rate):>15}"
    return f"{line}  {note}".rstrip()


def figures(count: int, seconds: float) -> dict[str, Any]:
    """
    The JSON figures of C{count} bytes in C{seconds}.
    """
    return {"bytes": count, "seconds": round(seconds, 6),
            "bits_per_second": 8 * count / seconds if seconds > 0 else 0.0}  # fmt: skip


def writeStreamSummary(
    args: argparse.Namespace,
    streams: list[tuple[str, Any]],
    results: list[StreamResult],
    intervals: Intervals,
    stdout: IO[str],
) -> int:
    """
    Write the streams' totals (as text, or the whole run as one JSON
    document with C{--json}); return the exit status: a stream that broke
    is L{exits.RECEIVE}.
    """
    sums: dict[str, dict[str, Any]] = {}
    for direction in ("upload", "download"):
        mine = [r for (d, _), r in zip(streams, results) if d == direction]
        if mine:
            total, seconds = sum(r.bytes for r in mine), max(r.seconds for r in mine)
            key = "sum_sent" if direction == "upload" else "sum_received"
            sums[key] = figures(total, seconds)
    errors = [r.error for r in results if r.error]
    if args.json:
        document = {
            "start": {"host": args.host, "streams": args.parallel, "seconds": args.time,
                      "directions": sorted({d for d, _ in streams})},
            "intervals": [
                {"start": round(a, 6), "end": round(b, 6),
                 "streams": [dict(figures(n, b - a), id=i + 1) for i, n in enumerate(counts)],
                 "sum": figures(sum(counts), b - a)}
                for a, b, counts in intervals.rows
            ],
            "end": {"streams": [dict(figures(r.bytes, r.seconds), id=i + 1, direction=d, error=r.error)
                                for i, ((d, _), r) in enumerate(zip(streams, results))], **sums},
        }  # fmt: skip
        stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        stdout.write("- " * 30 + "\n")
        for i, ((direction, _), r) in enumerate(zip(streams, results)):
            note = "read by the peer" if direction == "upload" else "received"
            note = f"{direction}: {note}" if args.bidir else note
            stdout.write(row(str(i + 1), 0.0, r.seconds, r.bytes, r.error or note) + "\n")
        for key, summed in sums.items():
            if len(results) > 1:
                label = "sender: read by the peer" if key == "sum_sent" else "receiver"
                stdout.write(row("SUM", 0.0, summed["seconds"], summed["bytes"], label) + "\n")
    return exits.RECEIVE if errors else exits.OK


def rttStats(rtts: list[float]) -> dict[str, Any]:
    """
    The count, minimum, average and maximum (in ms) of round-trip times
    C{rtts} (in seconds).
    """
    if not rtts:
        return {"count": 0}
    return {"count": len(rtts), "min_ms": min(rtts) * 1e3, "avg_ms": sum(rtts) / len(rtts) * 1e3,
            "max_ms": max(rtts) * 1e3}  # fmt: skip


def rttText(s: dict[str, Any]) -> str:
    """
    L{rttStats} as text.
    """
    if not s["count"]:
        return "no round trips"
    return f"{s['count']} round trips  min/avg/max {s['min_ms']:.3f}/{s['avg_ms']:.3f}/{s['max_ms']:.3f} ms"


def jitter(rtts: list[float]) -> float:
    """
    RFC 3550's interarrival jitter over successive round-trip times: the
    smoothed mean of their differences, in seconds.
    """
    j = 0.0
    for previous, current in pairwise(rtts):
        j += (abs(current - previous) - j) / 16
    return j
