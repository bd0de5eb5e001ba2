# -*- test-case-name: tests.unit.echo.test_client_echo -*-
"""
C{netservices echo HOST PORT}: talk to an echo server (RFC 862) over TCP or
UDP, sending standard input or timed probes; C{netservices echo --unix PATH}
over a UNIX stream, datagram (C{--dgram}) or SEQPACKET (C{--seqpacket})
socket.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.task import deferLater

from services.cli import exits
from services.cli.arguments import number, wholeNumber
from services.cli.echostdio import Stdio, pipeStdio
from services.echo import (
    MIN_PROBE_SIZE,
    EchoMismatch,
    ProbeTimeout,
    Summary,
    TCPPipe,
    TCPProber,
    UDPPipe,
    UDPProber,
)
# The module, not the package: the package loads treq, which echo needs not.
from services.client._resolve import resolveAddresses

__all__ = ["EXAMPLES", "register", "run"]

#: Examples for `netservices --help`.
EXAMPLES = (
    "printf 'hello\\n' | netservices echo 127.0.0.1 8007",
    "netservices echo 127.0.0.1 8007 --count 3 --interval 0.2",
)

EPILOG = f"""\
examples:
  printf 'hello\\n' | netservices echo 127.0.0.1 8007
  netservices echo 127.0.0.1 8007 --count 5 --interval 0.2 --size 1024
  netservices echo localhost 8007 --udp --count 3
  netservices echo --unix /run/netservices/echo.seq --seqpacket --count 3
  printf 'hello\\n' | netservices echo --unix /run/netservices/echo.dgram --dgram

exit status:
{exits.exitCodesText(exits.ECHO_CODES, {
    exits.FAILURE: "any other error (an echo that differs from what was sent)",
    exits.USAGE: "bad command line (an unknown option, a malformed value)",
    exits.TIMEOUT: "timed out (--timeout), or some probes got no echo",
    exits.RECEIVE: "the connection broke while receiving",
})}
"""


def register(subparsers: Any) -> None:
    """
    Add the C{echo} command.
    """
    p = subparsers.add_parser(
        "echo",
        help="send stdin or probes to an echo server",
        description=(
            "Send standard input to an echo server and print what comes back "
            "(over UDP, each line is one datagram); or, with --count, send N probes "
            "and print each round-trip time and the min/avg/max, as ping does.  A "
            "failed connection reports the errno and its name, as connect_ex would."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("host", metavar="HOST", nargs="?", help="the echo server's host name or address")
    p.add_argument("port", metavar="PORT", nargs="?", type=_port, help="its port, e.g. 8007")
    p.add_argument("--udp", action="store_true", help="use UDP instead of TCP")
    p.add_argument(
        "--unix", metavar="PATH",
        help="connect to the UNIX socket at PATH instead of HOST PORT (a stream socket, "
        "unless --dgram or --seqpacket)",
    )
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--dgram", action="store_true",
                      help="with --unix: a datagram socket (each line of stdin is one datagram)")
    kind.add_argument("--seqpacket", action="store_true",
                      help="with --unix: a SEQPACKET socket (each line of stdin is one record)")
    p.add_argument(
        "--count", type=_positive, metavar="N",
        help="send N probes instead of standard input, e.g. --count 5",
    )
    p.add_argument(
        "--interval", type=_seconds, default=1.0, metavar="S",
        help="seconds between probes (default: 1), e.g. --interval 0.2",
    )
    p.add_argument(
        "--size", type=_size, default=64, metavar="B",
        help=f"bytes per probe, {MIN_PROBE_SIZE} to {_MAX_DATAGRAM} over datagrams, up to "
        f"{_MAX_RECORD} over streams and SEQPACKET (default: 64), e.g. --size 1400",
    )
    p.add_argument(
        "--timeout", type=_positiveSeconds, default=2.0, metavar="S",
        help="seconds to wait for a connection and for each echo (default: 2), e.g. --timeout 5",
    )
    p.set_defaults(run=run)


#: The largest probe over UDP and UNIX datagrams, and over streams and
#: SEQPACKET records.
_MAX_DATAGRAM, _MAX_RECORD = 65507, 200 * 1024

_port = wholeNumber(1, 65535, "a port")
_positive = wholeNumber(1)
_seconds = number(0, inclusive=True)
_positiveSeconds = number(0, inclusive=False)
_size = wholeNumber(MIN_PROBE_SIZE, _MAX_RECORD, "a probe size in bytes")


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run(reactor: Any, args: argparse.Namespace) -> Deferred[int]:
    """
    Run C{echo}; fires with the exit status.
    """
    return ensureDeferred(echo(reactor, args, sys.stdout, sys.stderr))


async def echo(reactor: Any, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """
    Connect, then probe or pipe standard input.
    """
    problem = _usageProblem(args)
    if problem:
        stderr.write(f"netservices echo: {problem}\n")
        return exits.USAGE
    if args.unix is not None:
        return await _unixEcho(reactor, args, stdout, stderr)
    where = _where(args.host, args.port)
    try:
        if args.udp:
            addresses = await resolveAddresses(reactor, args.host, args.port, "UDP")
            address = addresses[0]
            if args.count:
                prober = UDPProber(reactor, args.size, args.timeout)
                _listenUDP(reactor, prober, address.host, args.port)
                return await _probe(reactor, args, prober, True, stdout, stderr, where)
            stdio = Stdio(datagrams=True)
            udpPipe = UDPPipe(sink=stdio.write)
            _listenUDP(reactor, udpPipe, address.host, args.port)
            try:
                return await pipeStdio(reactor, args, stdio, udpPipe, stderr, where)
            finally:
                await udpPipe.close()
        endpoint = HostnameEndpoint(reactor, args.host, args.port, timeout=args.timeout)
        return await _streamEcho(reactor, args, endpoint, False, stdout, stderr, where)
    except Exception as e:
        code, message = exits.describe(e, where)
        stderr.write(f"netservices echo: {message}\n")
        return code


async def _streamEcho(
    reactor: Any,
    args: argparse.Namespace,
    endpoint: Any,
    records: bool,
    stdout: IO[str],
    stderr: IO[str],
    where: str,
) -> int:
    """
    Probe, or pipe standard input, over a connection from C{endpoint}; with
    C{records} (SEQPACKET), each line of standard input is one record.
    """
    if args.count:
        prober = TCPProber(reactor, args.size, args.timeout)
        await connectProtocol(endpoint, prober)
        try:
            return await _probe(reactor, args, prober, False, stdout, stderr, where)
        finally:
            prober.transport.loseConnection()  # type: ignore[union-attr]
    stdio = Stdio(datagrams=records)
    pipe = TCPPipe(sink=stdio.write)
    await connectProtocol(endpoint, pipe)
    try:
        return await pipeStdio(reactor, args, stdio, pipe, stderr, where)
    finally:
        pipe.transport.loseConnection()  # type: ignore[union-attr]


def _usageProblem(args: argparse.Namespace) -> str | None:
    """
    What is wrong with the combination of arguments, if anything.
    """
    if (args.udp or args.dgram) and args.size > _MAX_DATAGRAM:
        return f"--size: at most {_MAX_DATAGRAM} bytes in a datagram"
    if args.unix is not None:
        if args.host is not None or args.udp:
            return "--unix PATH takes no HOST PORT and no --udp"
        return None
    if args.dgram or args.seqpacket:
        return "--dgram and --seqpacket go with --unix PATH"
    if args.host is None or args.port is None:
        return "expected HOST PORT, or --unix PATH"
    return None


async def _unixEcho(
    reactor: Any, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]
) -> int:
    """
    Probe or pipe standard input over the UNIX socket at C{args.unix}.
    """
    from twisted.internet.endpoints import UNIXClientEndpoint

    from services.echo import UnixDatagramClient
    from services.net.seqpacket import SeqpacketClientEndpoint

    where = f"unix:{args.unix}"
    try:
        if args.dgram:
            datagram: Any = UDPProber(reactor, args.size, args.timeout) if args.count else None
            stdio = Stdio(datagrams=True)
            if datagram is None:
                datagram = UDPPipe(sink=stdio.write)
            client = UnixDatagramClient(reactor, args.unix, datagram)
            try:
                if args.count:
                    return await _probe(reactor, args, datagram, True, stdout, stderr, where)
                try:
                    return await pipeStdio(reactor, args, stdio, datagram, stderr, where)
                finally:
                    await datagram.close()
            finally:
                client.close()
        endpoint: Any = (
            SeqpacketClientEndpoint(reactor, args.unix)
            if args.seqpacket
            else UNIXClientEndpoint(reactor, args.unix, timeout=args.timeout)
        )
        return await _streamEcho(reactor, args, endpoint, args.seqpacket, stdout, stderr, where)
    except Exception as e:
        code, message = exits.describe(e, where)
        stderr.write(f"netservices echo: {message}\n")
        return code


#: The largest datagram the client reads: Twisted's default of 8192 bytes
#: would cut longer echoes short (--size goes up to 65507).
MAX_DATAGRAM = 65535


def _listenUDP(reactor: Any, protocol: Any, host: str, port: int) -> None:
    listening = reactor.listenUDP(
        0, protocol, interface="::" if ":" in host else "0.0.0.0", maxPacketSize=MAX_DATAGRAM
    )
    listening.connect(host, port)


async def _probe(
    reactor: Any,
    args: argparse.Namespace,
    prober: Any,
    datagrams: bool,
    stdout: IO[str],
    stderr: IO[str],
    where: str,
) -> int:
    """
    Send C{args.count} probes and print each result and the summary.
    With C{datagrams}, a lost probe is not the end, and the prober is closed
    at the end.
    """
    rtts: list[float] = []
    sent = 0
    failure: tuple[int, str] | None = None
    try:
        for seq in range(1, args.count + 1):
            started = reactor.seconds()
            sent += 1
            try:
                rtt = await prober.probe(seq)
            except ProbeTimeout:
                stdout.write(f"no echo from {where}: seq={seq} timed out after {args.timeout:g} s\n")
                if not datagrams:  # a stream that lost a probe is unusable
                    break
            except EchoMismatch as e:
                failure = (exits.FAILURE, f"{where}: {e}")
                break
            else:
                rtts.append(rtt)
                stdout.write(f"{args.size} bytes from {where}: seq={seq} time={rtt * 1000:.3f} ms\n")
            stdout.flush()
            if seq < args.count:
                await deferLater(reactor, max(0.0, args.interval - (reactor.seconds() - started)))
    finally:
        if datagrams:
            await prober.close()
    summary = Summary(sent, tuple(rtts))
    _printSummary(summary, where, stdout)
    if failure is not None:
        stderr.write(f"netservices echo: {failure[1]}\n")
        return failure[0]
    return exits.OK if summary.lost == 0 else exits.TIMEOUT


def _printSummary(summary: Summary, where: str, stdout: IO[str]) -> None:
    lost = 100.0 * summary.lost / summary.sent if summary.sent else 0.0
    stdout.write(f"--- {where} echo statistics ---\n")
    stdout.write(f"{summary.sent} probes sent, {summary.received} echoed, {lost:.0f}% lost\n")
    times = summary.minAvgMax()
    if times is not None:
        low, avg, high = (t * 1000 for t in times)
        stdout.write(f"rtt min/avg/max = {low:.3f}/{avg:.3f}/{high:.3f} ms\n")
    stdout.flush()
