# -*- test-case-name: tests.unit.cli.test_serve -*-
"""
C{netservices serve [DIR] [PORT]}: share a directory over HTTP in one
command, as C{python -m http.server} does, with the web service's static
files (L{services.web.StaticFile}: C{index.html}, listings, ranges,
C{ETag}, nothing outside the directory) and its limits
(L{services.web.LimitedSite}).  The access log goes to standard
output; Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import sys
from typing import IO, Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint

from services.cli import exits

__all__ = ["EXAMPLES", "register", "run"]

#: Examples for `netservices --help`.
EXAMPLES = ("netservices serve ~/public 8000",)

EPILOG = f"""\
examples:
  netservices serve                      the current directory on http://127.0.0.1:8000/
  netservices serve ~/public 8081
  netservices serve . 8000 --bind 0.0.0.0   share it with the network (every IPv4 address)
  netservices serve . 8000 --bind ::1

exit status:
{exits.exitCodesText(exits.SERVE_CODES, {
    exits.OK: "success (stopped by Ctrl-C or SIGTERM)",
    exits.FAILURE: "cannot listen (the port is in use, or not permitted)",
    exits.USAGE: "bad command line (an unknown option, a malformed value, DIR not a directory)",
})}
"""


def register(subparsers: Any) -> None:
    """
    Add the C{serve} command.
    """
    p = subparsers.add_parser(
        "serve",
        help="share a directory over HTTP",
        description=(
            "Serve the files under DIR over HTTP until Ctrl-C: index.html as a "
            "directory's page, a listing otherwise, byte ranges, ETag and 304, "
            "nothing outside DIR (symbolic links that leave it are 404s).  One "
            "Combined Log Format line per request on standard output.  Only this "
            "host can connect unless --bind says otherwise."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "directory", metavar="DIR", nargs="?", default=".",
        help="the directory to share (default: the current directory)",
    )
    p.add_argument(
        "port", metavar="PORT", nargs="?", type=_port, default=8000,
        help="the TCP port (default: 8000; 0: any free port)",
    )
    p.add_argument(
        "--bind", metavar="ADDR", type=_address, default="127.0.0.1",
        help="the local address to listen on (default: 127.0.0.1, this host only; "
        "0.0.0.0 or :: for every address)",
    )
    p.set_defaults(run=run)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return int(text)


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IP address; expected e.g. 127.0.0.1, 0.0.0.0 or ::1"
        ) from None


def _reach(bind: str) -> str:
    """
    Who can connect, for the start-up line.
    """
    address = ipaddress.ip_address(bind)
    if address.is_loopback:
        return "this host only; --bind 0.0.0.0 to share it with the network"
    if address.is_unspecified:
        return "every address of this host: the network can reach it"
    return f"the network, on {bind}"


def run(reactor: Any, args: argparse.Namespace) -> Deferred[int] | int:
    """
    Serve C{args.directory} on C{args.bind}:C{args.port} until the reactor
    stops.
    """
    return serve(reactor, args, sys.stdout, sys.stderr)


def serve(reactor: Any, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> Any:
    """
    Listen and serve; return the status if that fails at once, else a
    Deferred that fires with 0 once the reactor shuts down (Ctrl-C) and the
    port is closed.
    """
    directory = os.path.abspath(args.directory)
    if not os.path.isdir(directory):
        stderr.write(f"netservices serve: {args.directory}: not a directory\n")
        return exits.USAGE
    # Imported here: building the command line imports every command, and
    # the other commands have no use for a web server.
    from services.cli.servesite import StdoutSite
    from services.net.addresses import describeAddress
    from services.web import StaticFile

    site = StdoutSite(StaticFile(directory, listing=True, followSymlinks=False), stdout, reactor)
    kind = TCP6ServerEndpoint if ":" in args.bind else TCP4ServerEndpoint
    endpoint = kind(reactor, args.port, interface=args.bind)
    listening = endpoint.listen(site)
    failed: list[Any] = []
    listening.addErrback(failed.append)
    if failed:
        reason = failed[0].value
        detail = getattr(reason, "socketError", None) or reason
        advice = "choose another PORT"
        if isinstance(detail, OSError) and detail.errno == errno.EADDRNOTAVAIL:
            advice = "--bind an address of this host"
        if isinstance(detail, OSError) and detail.strerror:
            detail = detail.strerror.lower()
        stderr.write(
            f"netservices serve: cannot listen on {args.bind} port {args.port}: {detail}; "
            f"{advice}\n"
        )
        return exits.FAILURE
    port = listening.result
    host = describeAddress(port.getHost())
    url = f"http://{host}/"
    stdout.write(f"Serving {directory} on {url} ({_reach(args.bind)}). Ctrl-C stops.\n")
    stdout.flush()
    done: Deferred[int] = Deferred()

    def stop() -> Deferred[Any]:
        stopped = maybeDeferred(port.stopListening)
        stopped.addCallback(lambda _: stdout.write("Stopped.\n"))
        stopped.addBoth(lambda _: done.callback(exits.OK))
        return stopped

    reactor.addSystemEventTrigger("before", "shutdown", stop)
    return done
