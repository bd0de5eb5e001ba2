# -*- test-case-name: tests.unit.client.test_resolve -*-
"""
C{netservices resolve NAME}: a host's canonical name, aliases and
addresses, and a service's port, through the reactor's resolver.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from twisted.internet.defer import Deferred, ensureDeferred

from services.cli import exits
from services.client import Resolution, UnknownService, resolve

__all__ = ["EXAMPLES", "formatResolution", "lookup", "register", "run"]

#: Examples for `netservices --help`.
EXAMPLES = (
    "netservices resolve localhost --service http",
)

EPILOG = f"""\
examples:
  netservices resolve localhost
  netservices resolve localhost --service http
  netservices resolve example.org --service domain --proto udp

exit status:
{exits.exitCodesText(exits.RESOLVE_CODES, {
    exits.FAILURE: "any other error (an unknown service)",
    exits.USAGE: "bad command line (an unknown option, a malformed value)",
})}
"""


def register(subparsers: Any) -> None:
    """
    Add the C{resolve} command.
    """
    p = subparsers.add_parser(
        "resolve",
        help="look up a host name (and a service port)",
        description=(
            "Print what gethostbyname_ex and getservbyname give for NAME: its "
            "canonical name, aliases, IPv4 and IPv6 addresses, and with --service "
            "the service's port, looked up through the reactor's resolver without "
            "blocking it."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the host name (or address) to look up")
    p.add_argument(
        "--service", metavar="SERVICE",
        help="also look up this service's port in the services database, e.g. --service http",
    )
    p.add_argument(
        "--proto", default="tcp", choices=("tcp", "udp"),
        help="the protocol of --service (default: tcp), e.g. --proto udp",
    )
    p.set_defaults(run=run)


def formatResolution(result: Resolution, service: str | None, proto: str) -> str:
    """
    The text C{resolve} prints for C{result}.
    """

    def listed(values: tuple[str, ...]) -> str:
        return " ".join(values) if values else "(none)"

    lines = [
        f"name:      {result.name}",
        f"canonical: {result.canonical}",
        f"aliases:   {listed(result.aliases)}",
        f"IPv4:      {listed(result.ipv4)}",
        f"IPv6:      {listed(result.ipv6)}",
    ]
    if service is not None:
        lines.append(f"service:   {service}/{proto} port {result.port}")
    return "\n".join(lines) + "\n"


def run(reactor: Any, args: argparse.Namespace) -> Deferred[int]:
    """
    Run C{resolve}; fires with the exit status.
    """
    return ensureDeferred(lookup(reactor, args, sys.stdout, sys.stderr))


async def lookup(reactor: Any, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """
    Look up C{args.name} and print the result.
    """
    try:
        result = await resolve(reactor, args.name, args.service, args.proto)
    except UnknownService as e:
        stderr.write(f"netservices resolve: {e}\n")
        return exits.FAILURE
    except Exception as e:
        code, message = exits.describe(e, args.name)
        stderr.write(f"netservices resolve: {message}\n")
        return code
    stdout.write(formatResolution(result, args.service, args.proto))
    return exits.OK
