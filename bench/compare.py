# -*- test-case-name: tests.integration.test_bench -*-
"""
"Nothing regresses": every netservices row of this run against the same
row of the previous report.

The previous report is the newest C{bench/results/*.md} when the run
starts (or C{--previous PATH}); its Results table is read back (workload
title, server label, median, min - max).

How noise is judged: a row's change is the percentage from the previous
median to this run's.  It is told apart from noise only when the previous
median lies outside this run's own spread, the min - max of its
repetitions: on a shared 2-core machine that spread is commonly 10 to 20%
wide, and a previous median inside it is a figure this run also produced.
Outside it, a change for the worse is flagged as a possible regression (to
be confirmed with a deterministic measure: instructions or CPU seconds per
operation), a change for the better as improved.  A run of one repetition
(C{--quick}) has no spread: its changes are shown without a verdict.

Two figures beside the verdict say how far a busy machine explains a
change: netservices' ratio to a peer measured in both runs (the minimal
Twisted server first; its code did not change, and it ran alternately with
netservices under the same load), and the server process's CPU
microseconds per operation (its CPU use over the rate), which falls less
with contention than the rate does unless the server is starved of CPU.
The report also says when this run started at a load average more than 1
above the previous one's.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TITLE = re.compile(r"^(?P<title>.*) \((?P<unit>.*), (?P<better>higher|lower) is better\)$")
_SPREAD = re.compile(r"^(?P<low>[\d,.]+) - (?P<high>[\d,.]+)$")
_PROCESS = re.compile(r"^(?P<percent>[\d.]+)% \(")


@dataclass(frozen=True)
class PreviousRow:
    """
    One server's row of an earlier report's Results table.

    @ivar median: its median.
    @ivar low: the lowest repetition.
    @ivar high: the highest repetition.
    @ivar serverProcess: the median of the server process's CPU use, in %
        of the measured time, when the table gives it.
    """

    median: float
    low: float
    high: float
    serverProcess: float | None = None


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parseResults(text: str) -> dict[tuple[str, str], PreviousRow]:
    """
    The rows of the Results table of a report's markdown, keyed by
    (workload title, server label); a table cell that does not parse is
    skipped.
    """
    rows: dict[tuple[str, str], PreviousRow] = {}
    inResults, title = False, None
    for line in text.splitlines():
        if line.startswith("## "):
            inResults = line.strip() == "## Results"
            continue
        if not inResults or not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] == "workload" or cells[0].startswith("---"):
            continue
        if cells[0]:
            match = _TITLE.match(cells[0])
            title = match.group("title") if match else cells[0]
        spread = _SPREAD.match(cells[3])
        if title is None or spread is None:
            continue
        process = _PROCESS.match(cells[4]) if len(cells) > 4 else None
        try:
            rows[(title, cells[1])] = PreviousRow(
                _number(cells[2]), _number(spread.group("low")), _number(spread.group("high")),
                float(process.group("percent")) if process else None)
        except ValueError:
            continue
    return rows


def previousReport(directory: Path, before: Path | None = None) -> Path | None:
    """
    The newest report in C{directory} (by its date-stamped name), other
    than C{before}, or None.
    """
    reports = sorted(p for p in directory.glob("*.md") if p != before)
    return reports[-1] if reports else None


def comparisonRows(workloads: Sequence[Any], previous: dict[tuple[str, str], PreviousRow]
                   ) -> list[tuple[str, ...]]:
    """
    (workload, netservices variant, previous median, this median, change,
    change relative to a peer, server CPU per operation before and now,
    verdict) for every netservices row of this run.
    """
    from report import fmt, subjects

    rows = []
    for workload in workloads:
        reference = referencePeer(workload, previous)
        for label in subjects(list(workload.samples)):
            values = [s.value for s in workload.samples[label]]
            now = statistics.median(values)
            before = previous.get((workload.title, label))
            if before is None or not before.median:
                rows.append((workload.title, label, "-", fmt(now), "-", "-", "-",
                             "no such row in the previous report"))
                continue
            change = 100 * (now - before.median) / before.median
            relative = "-"
            if reference is not None:
                peerNow = statistics.median(s.value for s in workload.samples[reference])
                peerBefore = previous[(workload.title, reference)].median
                relative = (f"{100 * (now / peerNow / (before.median / peerBefore) - 1):+.1f}% "
                            f"[{reference}]")
            rows.append((workload.title, label, fmt(before.median), fmt(now), f"{change:+.1f}%",
                         relative, cpuPerOperation(workload, label, before),
                         judgeChange(values, before.median, workload.higherIsBetter)))
    return rows


def cpuPerOperation(workload: Any, label: str, before: PreviousRow) -> str:
    """
    Microseconds of the server process's CPU per operation (its CPU use
    over the rate), previously and now: less sensitive to a busy machine
    than the rate, as long as the server is not starved.  "-" for figures
    that are no rate.
    """
    now = statistics.median(s.value for s in workload.samples[label])
    process = statistics.median(s.serverProcess for s in workload.samples[label])
    if (not workload.higherIsBetter or before.serverProcess is None or not now
            or not process or not before.median):
        return "-"
    return (f"{1e4 * before.serverProcess / before.median:.1f} -> "
            f"{1e4 * process / now:.1f}")


def referencePeer(workload: Any, previous: dict[tuple[str, str], PreviousRow]) -> str | None:
    """
    The peer whose figures both this run and the previous report have for
    C{workload} (the minimal Twisted server first): its code did not
    change, so netservices' change relative to it leaves out what the
    machine's load did to both.
    """
    from report import MINIMAL, subjects

    labels = list(workload.samples)
    peers = [label for label in labels if label not in subjects(labels)]
    peers.sort(key=lambda label: label != MINIMAL)
    for label in peers:
        row = previous.get((workload.title, label))
        if row is not None and row.median and statistics.median(
                s.value for s in workload.samples[label]):
            return label
    return None


def judgeChange(values: Sequence[float], before: float, higherIsBetter: bool) -> str:
    """
    The verdict on a row whose repetitions gave C{values} and whose
    previous median was C{before}: within noise while C{before} lies in
    C{values}' min - max, otherwise improved or a possible regression.
    """
    if len(values) < 2:
        return "one repetition: no spread to judge by"
    if min(values) <= before <= max(values):
        return "within noise"
    better = (min(values) > before) == higherIsBetter
    return "improved" if better else "**possible regression**"


def comparisonSection(workloads: Sequence[Any], previous: Path | None,
                      loadBefore: str = "") -> list[str]:
    """
    The report's section on the previous report: a table, or a line saying
    there is nothing to compare with.
    """
    heading = ["## Against the previous report", ""]
    if previous is None or not previous.exists():
        return [*heading, "No previous report in bench/results to compare with.", ""]
    text = previous.read_text()
    rows = comparisonRows(workloads, parseResults(text))
    return [
        *heading,
        (f"Each netservices row against the same row of {previous.name}: the change of the "
         "median, flagged when the previous median lies outside this run's min - max "
         "(the spread of its repetitions; inside it the change cannot be told from noise). "
         "Beside it, the change of netservices' ratio to a peer measured in both runs "
         "(the minimal Twisted server where there is one), which a busier machine affects "
         "less, and the server process's CPU microseconds per operation (its CPU use "
         "over the rate), which it affects less still unless it starves the server; "
         "confirm a flagged row with instructions per operation."),
        *loadWarning(loadBefore, text),
        "",
        ("| workload | netservices | previous | now | change | relative to a peer "
         "| server CPU us per op, previous -> now | |"),
        "|---|---|---:|---:|---:|---:|---:|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
    ]


def loadWarning(loadBefore: str, previousText: str) -> list[str]:
    """
    A line saying that this run started on a machine busier than the
    previous one did (one-minute load average higher by more than 1), or
    nothing.
    """
    match = re.search(r"load average before the run: ([\d.]+)", previousText)
    if match is None or not loadBefore.split():
        return []
    try:
        now, then = float(loadBefore.split()[0]), float(match.group(1))
    except ValueError:
        return []
    if now <= then + 1:
        return []
    return ["", (f"This run started at a load average of {now:.2f}, the previous one at "
                 f"{then:.2f}: every rate may be lower for that alone.")]
