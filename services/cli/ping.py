# -*- test-case-name: tests.unit.cli.test_ping_command -*-
"""
C{netservices ping HOST}: ICMP echo, with the options, output and exit
statuses of iputils C{ping}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import IO, Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import DNSLookupError

from services.cli.arguments import number, wholeNumber
from services.client import (
    Pinger,
    PingOptions,
    PingResult,
    PingUnavailable,
    Reply,
    resolveTarget,
)

__all__ = ["EXAMPLES", "MIN_USER_INTERVAL", "register", "run"]

#: Examples for `netservices --help`.
EXAMPLES = ("netservices ping -c 3 127.0.0.1",)

#: The shortest interval between requests for anyone but root, as iputils.
MIN_USER_INTERVAL = 0.2

#: Exit statuses, as iputils ping's.
REPLIED, NO_REPLY, ERROR = 0, 1, 2

EPILOG = """\
examples:
  netservices ping -c 3 127.0.0.1
  netservices ping -6 -c 5 -i 0.2 -s 1400 ::1
  netservices ping -c 3 -q --json localhost
  netservices ping -4 -c 2 -W 1 -t 16 localhost

socket: an unprivileged ICMP datagram socket (net.ipv4.ping_group_range),
else a raw socket (root or CAP_NET_RAW).

exit status:
    0  at least one reply came
    1  no reply came
    2  any other error (a bad option, an unknown host, no ICMP socket permitted)
"""


def register(subparsers: Any) -> None:
    """
    Add the C{ping} command.
    """
    p = subparsers.add_parser(
        "ping",
        help="send ICMP echo requests, as iputils ping",
        description=(
            "Send ICMP (IPv4) or ICMPv6 echo requests to HOST and print each reply "
            "and the statistics, as iputils ping does.  Ctrl-C stops and prints "
            "the statistics."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("host", metavar="HOST", help="the host name or address to ping")
    p.add_argument("-c", dest="count", type=_positive, metavar="COUNT",
                   help="stop after COUNT requests (default: until Ctrl-C)")
    p.add_argument("-i", dest="interval", type=_seconds, default=1.0, metavar="INTERVAL",
                   help=f"seconds between requests (default: 1; at least {MIN_USER_INTERVAL:g} "
                   "unless root)")
    p.add_argument("-W", dest="timeout", type=_positiveSeconds, default=10.0, metavar="TIMEOUT",
                   help="seconds to wait for each reply (default: 10)")
    p.add_argument("-s", dest="size", type=_size, default=56, metavar="SIZE",
                   help="payload bytes per request, 0 to 65507 (default: 56)")
    p.add_argument("-t", dest="ttl", type=_ttl, metavar="TTL",
                   help="IPv4 TTL / IPv6 hop limit of requests, 1 to 255")
    family = p.add_mutually_exclusive_group()
    family.add_argument("-4", dest="family", action="store_const", const=socket.AF_INET,
                        help="IPv4 only")
    family.add_argument("-6", dest="family", action="store_const", const=socket.AF_INET6,
                        help="IPv6 only")
    p.add_argument("-q", dest="quiet", action="store_true",
                   help="quiet: print only the first line and the statistics")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with the results instead")
    p.set_defaults(run=run)


_positive = wholeNumber(1)
_seconds = number(0, inclusive=True)
_positiveSeconds = number(0, inclusive=False)
_size = wholeNumber(0, 65507, "a payload size in bytes")
_ttl = wholeNumber(1, 255, "a TTL")


def run(reactor: Any, args: argparse.Namespace) -> Deferred[int]:
    """
    Run C{ping}; fires with the exit status.
    """
    return ensureDeferred(pingCommand(reactor, args, sys.stdout, sys.stderr))


def formatTime(ms: float) -> str:
    """
    A round-trip time in milliseconds with iputils' precision: three
    decimals below 1 ms, then fewer as it grows.
    """
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def formatReply(reply: Reply) -> str:
    """
    One reply's line, as iputils prints it, with C{(DUP!)} for a duplicate
    and C{(out of order)} for a reply that came after a later one's.
    """
    ttl = "" if reply.ttl is None else f" ttl={reply.ttl}"
    line = (
        f"{reply.size} bytes from {reply.address}: icmp_seq={reply.sequence}{ttl} "
        f"time={formatTime(reply.rtt * 1000)} ms"
    )
    if reply.duplicate:
        line += " (DUP!)"
    elif reply.reordered:
        line += " (out of order)"
    return line


def formatStatistics(host: str, result: PingResult) -> str:
    """
    The statistics block, as iputils prints it; duplicates, errors,
    reordered and malformed packets are named only when there were some.
    """
    parts = [f"{result.transmitted} packets transmitted", f"{result.received} received"]
    for count, name in (
        (result.duplicates, "duplicates"),
        (result.errors, "errors"),
        (result.reordered, "reordered"),
        (result.malformed, "malformed"),
    ):
        if count:
            parts.append(f"+{count} {name}")
    parts += [f"{result.loss:g}% packet loss", f"time {result.elapsed * 1000:.0f}ms"]
    lines = [f"--- {host} ping statistics ---", ", ".join(parts)]
    summary = result.rttSummary()
    if summary is not None:
        low, avg, high, mdev = (t * 1000 for t in summary)
        lines.append(f"rtt min/avg/max/mdev = {low:.3f}/{avg:.3f}/{high:.3f}/{mdev:.3f} ms")
    else:
        lines.append("")
    return "\n".join(lines) + "\n"


def asJSON(host: str, result: PingResult) -> dict[str, Any]:
    """
    The results as one JSON-ready object (times in milliseconds).
    """
    summary = result.rttSummary()
    return {
        "host": host,
        "address": result.address,
        "family": "ipv4" if result.family == socket.AF_INET else "ipv6",
        "socket": result.socketKind,
        "transmitted": result.transmitted,
        "received": result.received,
        "duplicates": result.duplicates,
        "reordered": result.reordered,
        "malformed": result.malformed,
        "errors": result.errors,
        "loss_percent": result.loss,
        "time_ms": round(result.elapsed * 1000, 3),
        "rtt_ms": None if summary is None else dict(
            zip(("min", "avg", "max", "mdev"), (round(t * 1000, 3) for t in summary))
        ),
        "replies": [
            {
                "seq": r.sequence,
                "bytes": r.size,
                "ttl": r.ttl,
                "time_ms": round(r.rtt * 1000, 3),
                "duplicate": r.duplicate,
                "reordered": r.reordered,
            }
            for r in result.replies
        ],
    }


def _errorLine(sequence: int | None, error: OSError) -> str:
    # As iputils words them: the system call, then the error.
    if sequence is None:
        return f"ping: recvmsg: {error.strerror}\n"
    return f"ping: sendmsg: icmp_seq={sequence}: {error.strerror}\n"


async def pingCommand(
    reactor: Any,
    args: argparse.Namespace,
    stdout: IO[str],
    stderr: IO[str],
    socketFactory: Callable[..., Any] = socket.socket,
    euid: Callable[[], int] = os.geteuid,
) -> int:
    """
    Resolve, ping, print; the exit status as iputils'.
    """
    if args.interval < MIN_USER_INTERVAL and euid() != 0:
        stderr.write(
            f"netservices ping: -i {args.interval:g}: intervals below {MIN_USER_INTERVAL:g} s "
            "need root\n"
        )
        return ERROR
    try:
        address, family = await resolveTarget(reactor, args.host, args.family)
    except (ValueError, DNSLookupError) as e:
        stderr.write(f"netservices ping: {e}\n")
        return ERROR
    printing = not (args.quiet or args.json)

    def write(text: str) -> None:
        stdout.write(text)
        stdout.flush()

    options = PingOptions(args.count, args.interval, args.timeout, args.size, args.ttl)
    pinger = Pinger(
        reactor, address, family, options,
        onReply=(lambda r: write(formatReply(r) + "\n")) if printing else None,
        onError=(lambda seq, e: write(_errorLine(seq, e))) if printing else None,
        socketFactory=socketFactory,
    )
    try:
        done = pinger.start()
    except PingUnavailable as e:
        stderr.write(f"netservices ping: {e}\n")
        return ERROR
    except OSError as e:
        stderr.write(f"netservices ping: cannot open an ICMP socket: {e.strerror}\n")
        return ERROR
    # Ctrl-C stops the reactor; the statistics are printed on the way out.
    shuttingDown: list[bool] = []

    def onShutdown() -> None:
        shuttingDown.append(True)
        pinger.stop()

    trigger = reactor.addSystemEventTrigger("before", "shutdown", onShutdown)
    if not args.json:
        if family == socket.AF_INET:
            total = args.size + 28
            write(f"PING {args.host} ({address}) {args.size}({total}) bytes of data.\n")
        else:
            write(f"PING {args.host}({address}) {args.size} data bytes\n")
    result = await done
    if not shuttingDown:
        reactor.removeSystemEventTrigger(trigger)
    if args.json:
        write(json.dumps(asJSON(args.host, result)) + "\n")
    else:
        write("\n" + formatStatistics(args.host, result))
    return REPLIED if result.received else NO_REPLY
