# -*- test-case-name: tests.unit.cli.test_discover_command -*-
"""
C{netservices discover}: list the netservices instances that answer a
broadcast query or announce themselves.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence, TextIO


__all__ = ["formatTable", "register", "run"]

EPILOG = """\
examples:
  netservices discover                        # instances on this host (127.255.255.255:8009)
  netservices discover --json --timeout 5     # one JSON object per instance and line
  netservices discover --broadcast auto       # every interface: IPv4 broadcast, IPv6 multicast
  netservices discover --interface eth0 --family 6   # IPv6 multicast on eth0 only
  netservices discover --broadcast 192.168.1.255 --port 8009   # one LAN, IPv4
  netservices discover --mdns                 # netservices instances by DNS-SD over mDNS
  netservices discover --mdns _http._tcp _ipp._tcp   # any DNS-SD types
  netservices discover --mdns all --json      # every type, like avahi-browse -a

exit status: 0 if at least one instance was found, 1 if none was.
"""


def _serviceType(text: str) -> str:
    """
    A DNS-SD service type of C{--mdns}, checked by the browser's own rule
    (imported only when the option is given).
    """
    from services.discovery import normalType

    return normalType(text)


def _argument(parse: str | Callable[[str], Any]) -> Callable[[str], Any]:
    """
    An argparse type that parses with C{parse}: a function, or the name of
    a parser of L{services.config} (imported only when the option is given,
    so that the other commands start without it).
    """

    def convert(text: str) -> Any:
        """
        Parse an option's value, as an argparse type.
        """
        if isinstance(parse, str):
            from services import config

            function = getattr(config, parse)
        else:
            function = parse
        try:
            return function(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = parse if isinstance(parse, str) else parse.__name__
    return convert


def _discoveryPort(text: str) -> int:
    """
    Parse a port as C{[discovery] port} does.
    """
    from services.config import parseText

    port: int = parseText("discovery", "port", text)
    return port


def register(subparsers: Any) -> None:
    """
    Add the C{discover} subcommand.
    """
    parser = subparsers.add_parser(
        "discover",
        help="find netservices instances by UDP broadcast",
        description=(
            "Send a discovery query (padded to 1200 bytes, so instances may answer it) to a "
            "broadcast address, listen for replies and announces until the timeout, and list "
            "every instance heard: its name, address, services with their ports, and how long "
            "ago it was heard."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timeout",
        type=_argument("parsePositiveSeconds"),
        default=2.0,
        metavar="S",
        help="seconds to listen for replies and announces (default: 2)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per instance and line instead of a table",
    )
    parser.add_argument(
        "--broadcast",
        type=_argument("parseBroadcast"),
        default="127.255.255.255",
        metavar="ADDR",
        help=(
            "where to send the IPv4 query: a broadcast address, <broadcast> (255.255.255.255), "
            "a single host, a multicast group of 239.255.0.0/16 (sent on every interface that "
            "can multicast), or auto: the broadcast address of every interface, and IPv6 "
            "multicast (ff02::114) on every IPv6 interface too (default: 127.255.255.255, "
            "this host only)"
        ),
    )
    parser.add_argument(
        "--interface",
        metavar="NAME|ADDR",
        help=(
            "query by this interface only (its name, or one of its addresses): its IPv4 "
            "broadcast address (with --broadcast auto) and IPv6 multicast on it"
        ),
    )
    parser.add_argument(
        "--family",
        choices=("4", "6", "any"),
        default="any",
        help="query over IPv4, IPv6 or both (default: any)",
    )
    parser.add_argument(
        "--port",
        type=_argument(_discoveryPort),
        default=8009,
        metavar="P",
        help="the discovery port of the instances (default: 8009)",
    )
    parser.add_argument(
        "--mdns",
        nargs="*",
        metavar="TYPE",
        type=_argument(_serviceType),
        help=(
            "browse DNS-SD over multicast DNS instead, on every interface that can multicast: "
            "instances of these service types (such as _http._tcp; none: _netservices._tcp; "
            "all: every type), with host, addresses, port and TXT"
        ),
    )
    parser.set_defaults(run=_runAndExit)


async def _runAndExit(reactor: Any, args: argparse.Namespace) -> int:
    # twisted.internet.task.react exits 0 whatever the value main's Deferred
    # fires with; only a SystemExit carries another status out of it.
    status = await run(reactor, args)
    if status:
        raise SystemExit(status)
    return status


def _byFamily(peer: dict[str, Any], ipv6: bool) -> str:
    found = []
    endpoints = peer.get("endpoints")
    if endpoints is None:  # from an older library: the address it was heard from
        host = peer["address"].rpartition(":")[0]
        endpoints = {n: [f"{host}:{p}" for p in ports] for n, ports in peer["services"].items()}
    for name, listed in endpoints.items():
        mine = [e for e in listed if e.startswith("[") == ipv6]
        if mine:
            found.append(f"{name}:{','.join(mine)}")
    return " ".join(found) or "-"


def formatTable(peers: Sequence[dict[str, Any]]) -> str:
    """
    The instances as a table with a header: name, the address it was
    heard from (ADDRESS), its endpoints that can be reached from here (IPv4, then
    IPv6: C{service:host:port,...}), and age.
    """
    rows = [("NAME", "ADDRESS", "IPV4", "IPV6", "AGE")]
    for peer in peers:
        rows.append(
            (
                peer["name"],
                peer["address"],
                _byFamily(peer, False),
                _byFamily(peer, True),
                f"{peer['age']:.1f}s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]
        for row in rows
    )


async def run(reactor: Any, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """
    Discover, print, and return the exit status: 0 if an instance was
    found, 1 if none was (or the query could not be sent).
    """
    from services.discovery import discover

    out = out or sys.stdout
    if getattr(args, "mdns", None) is not None:
        from services.cli.discover_mdns import runMDNS

        return await runMDNS(reactor, args, out)
    where = f"{args.broadcast}:{args.port}"
    try:
        peers = await discover(
            reactor,
            (args.broadcast, args.port),
            args.timeout,
            family=getattr(args, "family", "any"),
            interface=getattr(args, "interface", None),
        )
    except ValueError as e:
        print(f"netservices discover: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        reason = e.strerror or e
        print(f"netservices discover: error: cannot query {where}: {reason}", file=sys.stderr)
        return 1
    if not peers:
        print(
            f"netservices discover: no instance answered on {where} within {args.timeout:g} s",
            file=sys.stderr,
        )
        return 1
    if args.json:
        for peer in peers:
            print(json.dumps(peer), file=out)
    else:
        print(formatTable(peers), file=out)
    return 0
