# -*- test-case-name: tests.unit.discovery.test_mdns_browse -*-
"""
C{netservices discover --mdns [TYPE ...]}: list DNS-SD instances heard
over multicast DNS.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["formatInstances", "runMDNS"]


def formatInstances(instances: Sequence[dict[str, Any]]) -> str:
    """
    The instances as a table with a header: name, type, host, addresses,
    port, TXT (C{key=value} separated by spaces) and the interface they
    were heard on.
    """
    rows = [("NAME", "TYPE", "HOST", "ADDRESSES", "PORT", "INTERFACE", "TXT")]
    for found in instances:
        txt = " ".join(f"{k}={v}" if v else k for k, v in found["txt"].items())
        rows.append(
            (
                found["name"],
                found["type"],
                found["host"] or "-",
                ",".join(found["addresses"]) or "-",
                str(found["port"] or "-"),
                found["interface"],
                txt or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[6]
        for row in rows
    )


async def runMDNS(reactor: Any, args: argparse.Namespace, out: TextIO) -> int:
    """
    Browse, print, and return the exit status: 0 if an instance was found,
    1 if none was (or the types are not service types).
    """
    from services.discovery import INSTANCE_TYPE, browse

    types = args.mdns or [INSTANCE_TYPE]
    try:
        instances = await browse(reactor, types, args.timeout)
    except ValueError as e:
        print(f"netservices discover: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"netservices discover: error: cannot browse: {e.strerror or e}", file=sys.stderr)
        return 1
    if not instances:
        print(
            f"netservices discover: no DNS-SD instance of {' '.join(types)} answered within "
            f"{args.timeout:g} s",
            file=sys.stderr,
        )
        return 1
    if args.json:
        for found in instances:
            print(json.dumps(found), file=out)
    else:
        print(formatInstances(instances), file=out)
    return 0
