# -*- test-case-name: tests.integration.test_bench -*-
"""
The report of a benchmark run: a markdown table of medians, ratios and CPU
use, the targets met and missed (judged on the default reactor), the floors,
the change of every netservices row since the previous report
(L{compare}), a PNG chart, and the summary in README.md.
"""

from __future__ import annotations

import datetime
import platform
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Target:
    """
    A goal: C{subject}'s median on C{workload} compared with C{peer}'s.

    @ivar ratio: the ratio to reach (subject / peer for throughput,
        peer / subject when lower is better).
    @ivar slack: for lower-is-better figures, an absolute allowance added to
        the peer's figure instead of a ratio (RSS: + 0.5 KiB).
    @ivar subject: the netservices variant the verdict is given for; the
        other variants' figures are shown for information.
    """

    text: str
    workload: str
    peer: str
    ratio: float = 1.0
    slack: float | None = None
    subject: str = "netservices"


MINIMAL = "Twisted minimal"

#: The goals, each for netservices as it runs by default (on nsepoll).
TARGETS = [
    Target("TCP echo ping-pong, 100 connections >= 1.0x uvloop", "echo-pp100", "uvloop"),
    Target("TCP echo ping-pong, 1 connection >= 1.0x uvloop", "echo-pp1", "uvloop"),
    Target("TCP echo streaming >= 1.0x uvloop", "echo-stream", "uvloop"),
    Target("TCP echo streaming >= 1.0x asyncio", "echo-stream", "asyncio"),
    Target("HTTP hello, wrk -c50 >= 1.0x aiohttp (uvloop)", "http-hello", "aiohttp (uvloop)"),
    Target("HTTP hello, 16 pipelined >= 1.0x aiohttp (uvloop)", "http-pipeline",
           "aiohttp (uvloop)"),
    Target("UDP window 32 >= 1.1x uvloop", "udp", "uvloop", 1.1),
    Target("RSS per idle connection at 10,000 <= uvloop's", "rss", "uvloop"),
    Target("Start-up to the first accept (echo only) <= the minimal Twisted .tac", "startup",
           "Twisted minimal"),
]

#: Earlier goals that still hold as floors, checked for every netservices
#: variant (Twisted's epoll reactor included, which must not fall back).
FLOORS = [
    Target("TCP echo, 100 connections >= 1.0x asyncio", "echo-pp100", "asyncio"),
    Target("HTTP hello >= 1.0x aiohttp", "http-hello", "aiohttp"),
    Target("Static 1 MiB >= 0.9x nginx", "static", "nginx", 0.9),
    Target("Start-up to the first accepted connection <= twistd web", "startup", "twistd web"),
    Target("RSS per idle connection <= minimal Twisted + 0.5 KiB", "rss", MINIMAL, slack=0.5),
]

#: Every workload: netservices >= 0.95x the minimal Twisted server.
FEATURES_RATIO = 0.95


def subjects(labels: Sequence[str]) -> list[str]:
    """
    The netservices variants among C{labels}.
    """
    return [label for label in labels if label.startswith("netservices")]


def variantTag(label: str) -> str:
    """
    The short name of a netservices variant: C{--reactor epoll}, C{echo +
    web}, or C{netservices} for the default.
    """
    return label.removeprefix("netservices").strip().strip("()") or "netservices"


def med(samples: Sequence[Any], attribute: str = "value") -> float:
    """
    The median of one attribute.
    """
    return statistics.median(getattr(s, attribute) for s in samples)


def ratio(workload: Any, subject: str, peer: str) -> float | None:
    """
    How much better C{subject} did than C{peer} (>1 is better), or None.
    """
    if subject not in workload.samples or peer not in workload.samples:
        return None
    mine, theirs = med(workload.samples[subject]), med(workload.samples[peer])
    if not mine or not theirs:
        return None
    return mine / theirs if workload.higherIsBetter else theirs / mine


def fmt(value: float) -> str:
    """
    A figure with a sensible number of digits.
    """
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def judge(target: Target, workload: Any, subject: str) -> tuple[str, bool] | None:
    """
    What C{subject} measured against C{target} and whether that meets it,
    or None when either side has no figures.
    """
    r = ratio(workload, subject, target.peer)
    if r is None:
        return None
    if target.slack is not None:
        mine = med(workload.samples[subject])
        theirs = med(workload.samples[target.peer])
        return f"{fmt(mine)} vs {fmt(theirs)} {workload.unit}", mine <= theirs + target.slack
    met = r >= target.ratio
    # Two decimals would show 0.998x as a missed "1.00x".
    shown = f"{r:.2f}x" if (round(r, 2) >= target.ratio) == met else f"{r:.3f}x"
    if not workload.higherIsBetter:
        mine = med(workload.samples[subject])
        theirs = med(workload.samples[target.peer])
        return f"{shown} ({fmt(mine)} vs {fmt(theirs)} {workload.unit})", met
    return shown, met


def verdict(met: bool) -> str:
    """
    The table's word for a target met or missed.
    """
    return "met" if met else "**missed**"


def targetRows(workloads: Sequence[Any]) -> list[tuple[str, str, str, str]]:
    """
    (target, measured, verdict, the other variants for information) for
    every target whose workload ran: the verdict is for the target's
    subject (netservices on nsepoll) only.
    """
    byName = {w.name: w for w in workloads}
    rows = []
    for target in TARGETS:
        workload = byName.get(target.workload)
        if workload is None:
            continue
        judged = judge(target, workload, target.subject)
        measured, ok = ("no figures", "**missed**") if judged is None else (
            judged[0], verdict(judged[1]))
        others = []
        for other in subjects(list(workload.samples)):
            if other != target.subject and (seen := judge(target, workload, other)):
                others.append(f"{seen[0]} [{variantTag(other)}]")
        rows.append((target.text, measured, ok, "; ".join(others) or "-"))
    return rows


def floorRows(workloads: Sequence[Any]) -> list[tuple[str, str, str, str]]:
    """
    (floor, netservices variant, measured, verdict) for every floor and
    every variant with figures: the earlier goals, and >= 0.95x the
    minimal Twisted server on every workload.
    """
    byName = {w.name: w for w in workloads}
    rows = []
    for target in FLOORS:
        workload = byName.get(target.workload)
        if workload is None:
            continue
        for subject in subjects(list(workload.samples)):
            if (judged := judge(target, workload, subject)) is not None:
                rows.append((target.text, subject, judged[0], verdict(judged[1])))
    minimal = Target("", "", MINIMAL, FEATURES_RATIO)
    for workload in workloads:
        for subject in subjects(list(workload.samples)):
            if (judged := judge(minimal, workload, subject)) is not None:
                rows.append((f"{workload.title}: >= {FEATURES_RATIO}x minimal Twisted", subject,
                             judged[0].split(" (")[0], verdict(judged[1])))
    return rows


def resultsTable(workloads: Sequence[Any]) -> list[str]:
    """
    The markdown table of every workload and server.
    """
    lines = [
        "| workload | server | median | min - max | server process (CPU 0 busy) "
        "| generator process (CPU 1 busy) | netservices ÷ it |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for workload in workloads:
        labels = list(workload.samples)
        mine = subjects(labels)
        for index, label in enumerate(labels):
            samples = workload.samples[label]
            values = [s.value for s in samples]
            cpu = (f"{med(samples, 'serverProcess'):.0f}% ({med(samples, 'serverCpu'):.0f}%)",
                   f"{med(samples, 'clientProcess'):.0f}% ({med(samples, 'clientCpu'):.0f}%)")
            if workload.unit in ("KiB", "ms"):
                cpu = ("-", "-")
            ratios = []
            for subject in mine:
                if subject != label:
                    r = ratio(workload, subject, label)
                    if r is not None:
                        tag = variantTag(subject)
                        ratios.append(f"{r:.2f}x" if len(mine) == 1 else f"{r:.2f}x [{tag}]")
            title = (f"{workload.title} ({workload.unit}, "
                     f"{'higher' if workload.higherIsBetter else 'lower'} is better)")
            lines.append(
                f"| {title if index == 0 else ''} | {label} | "
                f"{fmt(statistics.median(values))} | {fmt(min(values))} - {fmt(max(values))} | "
                f"{cpu[0]} | {cpu[1]} | {'; '.join(ratios) or '-'} |"
            )
    return lines


def summaryTable(workloads: Sequence[Any]) -> list[str]:
    """
    One row per workload: netservices' medians and, for each peer, its
    median with netservices' ratio to it.
    """
    lines = [
        "| workload | netservices | other netservices variant | peers: median (netservices ÷ peer) |",
        "|---|---:|---:|---|",
    ]
    for workload in workloads:
        labels = list(workload.samples)
        mine = subjects(labels)
        if not mine:
            continue
        main, others = mine[0], mine[1:]
        variant = "; ".join(f"{fmt(med(workload.samples[o]))} [{variantTag(o)}]"
                            for o in others) or "-"
        peers = []
        for label in labels:
            if label in mine:
                continue
            ratios = ", ".join(f"{r:.2f}x" for r in (ratio(workload, m, label) for m in mine)
                               if r is not None)
            peers.append(f"{label} {fmt(med(workload.samples[label]))} ({ratios})")
        lines.append(f"| {workload.title} ({workload.unit}) | {fmt(med(workload.samples[main]))} "
                     f"| {variant} | {'; '.join(peers)} |")
    return lines


def chart(workloads: Sequence[Any], path: Path) -> None:
    """
    One bar chart per workload, medians with min-max whiskers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [w for w in workloads if w.samples]
    if not shown:
        return
    columns = 3
    rows = (len(shown) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax, workload in zip(axes.flat, shown):
        labels = list(workload.samples)
        medians = [med(workload.samples[label]) for label in labels]
        lows = [m - min(s.value for s in workload.samples[label]) for m, label in zip(medians, labels)]
        highs = [max(s.value for s in workload.samples[label]) - m for m, label in zip(medians, labels)]
        colours = ["tab:red" if label.startswith("netservices") else "tab:gray" for label in labels]
        ax.barh(range(len(labels)), medians, xerr=[lows, highs], color=colours, capsize=3)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels([label.replace("netservices --reactor ", "netservices\n--reactor ")
                            for label in labels], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{workload.title}\n({workload.unit}, "
                     f"{'higher' if workload.higherIsBetter else 'lower'} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        for i, m in enumerate(medians):
            ax.text(m * 0.02, i, fmt(m), va="center", fontsize=7, color="white")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def environment(options: Any, loadBefore: str, loadAfter: str) -> list[str]:
    """
    What the figures were measured on.
    """
    import twisted

    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"Twisted {twisted.__version__}, {platform.system()} {platform.release()}, "
        f"{_cpuModel()}",
        f"- servers pinned to CPU 0, generators to CPU 1 (taskset); {options.reps} alternating "
        f"repetitions of {options.duration:g} s after a {options.warmup:g} s warm-up; medians",
        f"- load average before the run: {loadBefore}; after: {loadAfter}",
    ]


def _cpuModel() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    match = re.search(r"model name\s*:\s*(.+)", text)
    return match.group(1).strip() if match else platform.machine()


def writeReport(workloads: Sequence[Any], options: Any, output: Path, loadBefore: str,
                loadAfter: str, updateReadme: bool, previous: Path | None = None) -> Path:
    """
    Write C{output/<date>.md} and C{.png}, comparing netservices' rows with
    the C{previous} report; put the summary into README.md.
    """
    from compare import comparisonSection

    output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    markdown, png = output / f"{stamp}.md", output / f"{stamp}.png"
    chart(workloads, png)
    summary = [
        "| target | netservices (nsepoll) | | other variants, for information |",
        "|---|---:|---|---|",
        *[f"| {t} | {m} | {ok} | {info} |" for t, m, ok, info in targetRows(workloads)],
    ]
    floors = [
        "| floor | netservices | measured | |",
        "|---|---|---:|---|",
        *[f"| {t} | {s} | {m} | {ok} |" for t, s, m, ok in floorRows(workloads)],
    ]
    notes = [f"- {w.name}: {n}" for w in workloads for n in w.notes]
    text = [
        f"# Benchmarks, {stamp}",
        "",
        *environment(options, loadBefore, loadAfter),
        "",
        "## Targets",
        "",
        ("Each target is judged on netservices as it runs by default (the nsepoll reactor); "
         "the other variants' figures are there for information."),
        "",
        *summary,
        "",
        "## Floors",
        "",
        "Earlier targets that still hold, for every netservices variant.",
        "",
        *floors,
        "",
        *comparisonSection(workloads, previous, loadBefore),
        "## Results",
        "",
        *resultsTable(workloads),
        "",
        f"![chart]({png.name})",
        "",
        *(["## Notes", "", *notes, ""] if notes else []),
    ]
    markdown.write_text("\n".join(text) + "\n")
    if updateReadme:
        readme(output, markdown, png, options, loadBefore, loadAfter, workloads, summary)
    print(f"bench: wrote {markdown} and {png}")
    return markdown


def readme(output: Path, markdown: Path, png: Path, options: Any, loadBefore: str,
           loadAfter: str, workloads: Sequence[Any], summary: list[str]) -> None:
    """
    Replace the generated part of README.md's Performance section.
    """
    root = Path(__file__).resolve().parent.parent
    path = root / "README.md"
    text = path.read_text()
    try:
        relative = markdown.resolve().relative_to(root)
        chartPath = png.resolve().relative_to(root)
    except ValueError:
        return
    block = "\n".join([
        README_START,
        f"Latest run ([full table]({relative}), chart below):",
        "",
        *environment(options, loadBefore, loadAfter),
        "",
        *summaryTable(workloads),
        "",
        "Ratios list netservices as it runs by default (on nsepoll) first, then the variant",
        "(on Twisted's epoll reactor, or with echo + web for start-up); above 1 is better for",
        "netservices. Targets, judged on nsepoll (the other variants for information):",
        "",
        *summary,
        "",
        f"![benchmark chart]({chartPath})",
        README_END,
    ])
    if README_START in text:
        text = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END),
                      lambda m: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Performance\n\n" + block + "\n"
    path.write_text(text)
