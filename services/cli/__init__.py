# -*- test-case-name: tests.unit.cli.test_errors,tests.integration.test_client_cli -*-
"""
The C{netservices} command: a thin layer over the library.

Each subcommand lives in its own module under L{services.cli} and
exposes C{register(subparsers)}, which adds its parser and sets C{run} to a
function C{run(reactor, args) -> Deferred[int] | int} (or an C{async def}).
L{main} runs it under L{twisted.internet.task.react}, which owns the
reactor, and exits with the status it returns.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

from services import __version__
from services.cli.arguments import CommandParser

__all__ = ["main", "buildParser", "COMMANDS"]

#: The modules that provide subcommands, in the order --help lists them.
COMMANDS: Sequence[str] = (
    "services.cli.fetch",
    "services.cli.echo",
    "services.cli.resolve",
    "services.cli.discover",
    "services.cli.ping",
    "services.cli.serve",
    "services.cli.throughput",
)


def buildParser() -> CommandParser:
    """
    The argument parser of C{netservices} with every subcommand.
    """
    parser = CommandParser(
        prog="netservices",
        description=(
            "Clients for the netservices daemon and for any server that speaks "
            "the same protocols.  The daemon itself runs under twistd: "
            "`twistd -n netservices --help`."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"netservices {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = subparsers.choices
    examples = []
    for name in COMMANDS:
        module = importlib.import_module(name)
        module.register(subparsers)
        examples += [f"  {line}" for line in getattr(module, "EXAMPLES", ())]
    parser.epilog = (
        "examples:\n" + "\n".join(examples) + "\n\n" if examples else ""
    ) + "`netservices COMMAND --help` shows each command's options, examples and exit statuses."
    return parser


def _exitWith(status: object) -> None:
    """
    Turn a command's non-zero status into the process's exit status (react
    exits 0 on success).
    """
    if isinstance(status, int) and status:
        raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Parse C{argv} (default: C{sys.argv[1:]}) and run the chosen command
    under C{react}; exits the process with the command's status.
    """
    parser = buildParser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse blames the top-level parser for a command's unknown
        # option: the command's own parser says it, with its --help.
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        raise SystemExit(2)

    from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
    from twisted.internet.task import react

    def _main(reactor: Any) -> Deferred[Any]:
        d = maybeDeferred(run, reactor, args)
        d.addCallback(lambda r: ensureDeferred(r) if hasattr(r, "__await__") else r)
        return d.addCallback(_exitWith)

    react(_main)

