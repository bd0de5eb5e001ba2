# -*- test-case-name: tests.unit.echo.test_throughput -*-
"""
C{netservices throughput HOST}: an iperf-like test against the small
services: upload to discard, download from chargen (C{-R}), both at once
(C{--bidir}), round trips to echo (C{--latency}), or datagram round trips
to UDP echo with loss and jitter (C{--udp}).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    ensureDeferred,
    gatherResults,
)
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.task import LoopingCall, deferLater

from services.cli import exits
from services.cli.throughputreport import jitter, row, rttStats, rttText, writeStreamSummary
from services.echo import ProbeTimeout, TCPProber, UDPProber
from services.echo._throughput import Download, Intervals, StreamResult, Upload

__all__ = ["EXAMPLES", "register", "run"]

#: Examples for `netservices --help`.
EXAMPLES = ("netservices throughput 127.0.0.1 -t 5 -P 4",)

EPILOG = f"""\
examples:
  netservices throughput 127.0.0.1                 upload to discard for 10 s
  netservices throughput 127.0.0.1 -R -t 5 -P 4    download from chargen, 4 streams
  netservices throughput 127.0.0.1 --bidir --json
  netservices throughput 127.0.0.1 -i 0 --close-timeout 60 --discard-port 9
  netservices throughput 127.0.0.1 -R --chargen-port 19
  netservices throughput 127.0.0.1 --latency -l 1024 --echo-port 7
  netservices throughput 127.0.0.1 --udp --rate 50 --wait 5

The daemon's services for it (and [udp-echo] enabled = yes for --udp):
  twistd -n netservices --discard tcp:10009:interface=127.0.0.1 \\
      --chargen tcp:10019:interface=127.0.0.1

exit status:
{exits.exitCodesText(exits.THROUGHPUT_CODES, {
    exits.FAILURE: "any other error",
    exits.USAGE: "bad command line (an unknown option, a malformed value)",
    exits.TIMEOUT: "timed out (a connection attempt, the server not closing after the upload), or no datagram came back (--udp)",
    exits.RECEIVE: "a connection broke while measuring",
})}
"""


def register(subparsers: Any) -> None:
    """
    Add the C{throughput} command.
    """
    p = subparsers.add_parser(
        "throughput",
        help="measure throughput and latency against discard, chargen and echo",
        description=(
            "Measure what a path carries, as iperf3 does, against the small services: "
            "upload to a discard server (the default), download from a chargen server "
            "(-R), both (--bidir), TCP round trips to an echo server (--latency) or UDP "
            "round trips to a UDP echo server with loss and jitter (--udp).  Rates count "
            "what the peer took: an upload ends with a half-close and counts once the "
            "discard server has closed in return, after reading everything; intervals "
            "count what the peer's TCP acknowledged.  Bytes in KBytes/MBytes (1024), "
            "rates in Kbits/Mbits/Gbits per second (1000)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("host", metavar="HOST", help="the server's host name or address")
    p.add_argument("-t", "--time", type=_positive(float), default=10.0, metavar="SECONDS",
                   help="how long to measure (default: 10)")
    p.add_argument("-P", "--parallel", type=_positive(int), default=1, metavar="N",
                   help="streams (connections) at once, per direction (default: 1)")
    p.add_argument("-i", "--interval", type=_nonNegative, default=1.0, metavar="SECONDS",
                   help="report every this many seconds (default: 1; 0: only the total)")
    p.add_argument("--json", action="store_true", help="print one JSON document at the end")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-R", "--reverse", action="store_true", help="download from chargen")
    mode.add_argument("--bidir", action="store_true", help="upload and download at once")
    mode.add_argument("--latency", action="store_true", help="TCP round trips to echo")
    mode.add_argument("--udp", action="store_true", help="UDP round trips to UDP echo")
    p.add_argument("--rate", type=_positive(float), default=50.0, metavar="N",
                   help="--udp: datagrams per second (default: 50, within UDP echo's limits)")
    p.add_argument("--wait", type=_positive(float), default=2.0, metavar="SECONDS",
                   help="--udp: a datagram not back within this long is lost (default: 2)")
    p.add_argument("-l", "--length", type=_positive(int), default=64, metavar="BYTES",
                   help="--latency, --udp: bytes per probe (default: 64)")
    p.add_argument("--discard-port", type=_port, default=10009, metavar="PORT",
                   help="the discard server's port (default: 10009)")
    p.add_argument("--chargen-port", type=_port, default=10019, metavar="PORT",
                   help="the chargen server's port (default: 10019)")
    p.add_argument("--echo-port", type=_port, default=8007, metavar="PORT",
                   help="the echo server's TCP and UDP port (default: 8007)")
    p.add_argument("--close-timeout", type=_positive(float), default=30.0, metavar="SECONDS",
                   help="how long an upload waits for the discard server to close after "
                   "the half-close (default: 30)")
    p.set_defaults(run=run)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            allowed = "a whole number >= 1" if kind is int else "a number > 0"
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}")
        return value

    return parse


def _nonNegative(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _positive(float)(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def run(reactor: Any, args: argparse.Namespace) -> Deferred[int]:
    """
    Run the test chosen by C{args}; fires with the exit status.
    """
    return ensureDeferred(throughput(reactor, args, sys.stdout, sys.stderr))


async def throughput(reactor: Any, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """
    Measure, print the figures (as text while it runs, or as one JSON
    document), and return the exit status.
    """
    try:
        if args.udp:
            return await _udp(reactor, args, stdout)
        if args.latency:
            return await _latency(reactor, args, stdout)
        return await _streams(reactor, args, stdout, stderr)
    except Exception as e:
        port = args.echo_port if args.udp or args.latency else (
            args.chargen_port if args.reverse else args.discard_port)  # fmt: skip
        code, message = exits.describe(e, f"{args.host}:{port}")
        stderr.write(f"netservices throughput: {message}\n")
        return code


async def _connect(reactor: Any, args: argparse.Namespace, port: int, protocol: Any) -> Any:
    endpoint = HostnameEndpoint(reactor, args.host, port, timeout=10)
    return await connectProtocol(endpoint, protocol)


async def _streams(reactor: Any, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """
    Upload, download or both: C{args.parallel} streams per direction.
    """
    kinds: list[tuple[str, type, int]] = []
    if not args.reverse:
        kinds.append(("upload", Upload, args.discard_port))
    if args.reverse or args.bidir:
        kinds.append(("download", Download, args.chargen_port))
    streams: list[tuple[str, Any]] = []
    for direction, cls, port in kinds:
        for _ in range(args.parallel):
            stream = cls(reactor)
            await _connect(reactor, args, port, stream)
            streams.append((direction, stream))
    text = not args.json
    if text:
        where = ", ".join(f"{d} port {p}" for d, _, p in kinds)
        count = len(streams)
        stdout.write(f"Connecting to host {args.host}, {where}: {count} stream{'s' * (count > 1)} "
                     f"for {args.time:g} s\n[  ID] Interval           Transfer     Bitrate\n")  # fmt: skip
    startedAt = reactor.seconds()
    intervals = Intervals([s for _, s in streams], startedAt)

    def report() -> None:
        start, end, counts = intervals.read(reactor.seconds())
        if text:
            for i, n in enumerate(counts):
                stdout.write(row(str(i + 1), start, end, n, streams[i][0] if args.bidir else "") + "\n")
            if len(counts) > 1:
                stdout.write(row("SUM", start, end, sum(counts)) + "\n")
            stdout.flush()

    ticker = LoopingCall(report)
    ticker.clock = reactor
    if args.interval:
        ticker.start(args.interval, now=False)
    await deferLater(reactor, args.time, lambda: None)
    if ticker.running:
        ticker.stop()
    lastEnd = intervals.rows[-1][1] if intervals.rows else 0.0
    if args.interval and reactor.seconds() - startedAt - lastEnd > 0.005:
        report()
    for _, stream in streams:
        stream.finish()
    waiting = gatherResults([s.done for _, s in streams])
    timer = reactor.callLater(args.close_timeout, waiting.cancel)
    try:
        results: list[StreamResult] = await waiting
    except CancelledError:
        stderr.write(
            f"netservices throughput: the server did not close {args.close_timeout:g} s after the "
            "upload's half-close: is it a discard server?\n"
        )
        return exits.TIMEOUT
    finally:
        if timer.active():
            timer.cancel()
    return writeStreamSummary(args, streams, results, intervals, stdout)


async def _latency(reactor: Any, args: argparse.Namespace, stdout: IO[str]) -> int:
    """
    Back-to-back TCP round trips to echo on C{args.parallel} connections.
    """
    probers = [TCPProber(reactor, args.length, timeout=10) for _ in range(args.parallel)]
    for prober in probers:
        await _connect(reactor, args, args.echo_port, prober)
    if not args.json:
        stdout.write(f"Round trips to {args.host} echo port {args.echo_port}, {args.length} bytes, "
                     f"{args.parallel} connection{'s' * (args.parallel > 1)}, {args.time:g} s\n")  # fmt: skip
    startedAt = reactor.seconds()
    endAt = startedAt + args.time
    rtts: list[float] = []
    window: list[float] = []
    rows: list[dict[str, Any]] = []

    async def loop(prober: TCPProber) -> None:
        seq = 0
        while reactor.seconds() < endAt:
            seq += 1
            rtt = await prober.probe(seq)
            rtts.append(rtt)
            window.append(rtt)

    def report() -> None:
        now = reactor.seconds() - startedAt
        row = dict(rttStats(window), start=rows[-1]["end"] if rows else 0.0, end=now)
        rows.append(row)
        window.clear()
        if not args.json:
            stdout.write(f"[ RTT] {row['start']:6.2f}-{row['end']:<6.2f} sec  {rttText(row)}\n")

    ticker = LoopingCall(report)
    ticker.clock = reactor
    if args.interval:
        ticker.start(args.interval, now=False)
    try:
        await gatherResults([ensureDeferred(loop(p)) for p in probers])
    finally:
        if ticker.running:
            ticker.stop()
        for prober in probers:
            prober.transport.loseConnection()  # type: ignore[union-attr]
    lastEnd = rows[-1]["end"] if rows else 0.0
    if args.interval and window and reactor.seconds() - startedAt - lastEnd > 0.005:
        report()
    total = rttStats(rtts)
    if args.json:
        stdout.write(json.dumps({"intervals": rows, "end": {"round_trips": total}}, indent=2) + "\n")
    else:
        stdout.write("- " * 30 + f"\n[ SUM]   0.00-{reactor.seconds() - startedAt:<6.2f} sec  {rttText(total)}\n")
    return exits.OK


async def _udp(reactor: Any, args: argparse.Namespace, stdout: IO[str]) -> int:
    """
    Numbered datagrams to UDP echo at C{args.rate} a second; those not
    back within C{args.wait} seconds are lost.
    """
    prober = UDPProber(reactor, args.length, timeout=args.wait)
    # A connected port: replies come only from the server, and a refusal shows.
    listening = reactor.listenUDP(0, prober, interface="::" if ":" in args.host else "0.0.0.0")
    listening.connect(args.host, args.echo_port)
    if not args.json:
        stdout.write(f"UDP round trips to {args.host} echo port {args.echo_port}, {args.length} bytes, "
                     f"{args.rate:g} a second for {args.time:g} s\n")  # fmt: skip
    results: dict[int, float | None] = {}
    waiting: list[Deferred[Any]] = []
    count = max(1, int(args.time * args.rate))

    def send(seq: int) -> None:
        def answered(rtt: float) -> None:
            results[seq] = rtt

        def lost(reason: Any) -> None:
            reason.trap(ProbeTimeout)
            results[seq] = None

        waiting.append(prober.probe(seq).addCallbacks(answered, lost))

    sent = 0

    def tick() -> None:
        nonlocal sent
        sent += 1
        send(sent)
        if sent >= count:
            sender.stop()

    sender = LoopingCall(tick)
    sender.clock = reactor
    try:
        await sender.start(1.0 / args.rate)
        await DeferredList(waiting, consumeErrors=False, fireOnOneErrback=True)
    finally:
        await prober.close()
    rtts = [rtt for _, rtt in sorted(results.items()) if rtt is not None]
    received = len(rtts)
    end = dict(rttStats(rtts), sent=sent, received=received, lost=sent - received,  # type: ignore[arg-type]
               lost_percent=100.0 * (sent - received) / sent, jitter_ms=jitter(rtts) * 1e3)  # fmt: skip
    if args.json:
        stdout.write(json.dumps({"end": {"udp": end}}, indent=2) + "\n")
    else:
        stdout.write(f"{sent} sent, {received} received, {sent - received} lost "
                     f"({end['lost_percent']:.1f}%), jitter {end['jitter_ms']:.3f} ms, "
                     f"{rttText(end)}\n")  # fmt: skip
    return exits.OK if received else exits.TIMEOUT
