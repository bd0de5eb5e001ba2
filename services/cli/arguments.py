# -*- test-case-name: tests.unit.cli.test_errors -*-
"""
What every C{netservices} command shares about its command line: an
argument parser whose errors are one line naming the command, and the
value types of its options, whose messages say what is allowed.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

__all__ = ["CommandParser", "convert", "number", "suggestion", "wholeNumber"]


class CommandParser(argparse.ArgumentParser):
    """
    An C{ArgumentParser} whose errors are one line on standard error,
    C{PROG: MESSAGE; see PROG --help}, with exit status 2, instead of the
    usage text; an unknown option gets the closest known one suggested.

    @ivar commands: the parsers of the subcommands, by name.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        argparse.ArgumentParser.__init__(self, *args, **kwargs)
        self.commands: Mapping[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        """
        Print one line and exit with status 2.
        """
        sys.stderr.write(f"{self.prog}: {self.explain(message)}; see {self.prog} --help\n")
        raise SystemExit(2)

    def explain(self, message: str) -> str:
        """
        argparse's message in our words: C{unrecognized arguments: --ehco}
        becomes C{unknown option --ehco (did you mean --echo?)}.
        """
        explicit = re.fullmatch(r"(argument \S+): ignored explicit argument (.*)", message)
        if explicit is not None:
            return f"{explicit.group(1)}: takes no value (got {explicit.group(2)})"
        if message.endswith(": expected one argument"):
            return message.replace(": expected one argument", ": needs a value")
        match = re.fullmatch(r"unrecognized arguments: (.*)", message)
        if match is None:
            return message
        unknown = match.group(1).split()
        if not unknown:  # argparse joins the arguments: these were blank
            return f"unexpected blank argument {match.group(1)!r}"
        options = [u for u in unknown if u.startswith("-")]
        if not options:
            return f"unexpected argument {unknown[0]}"
        flag = options[0].partition("=")[0]
        known = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        return f"unknown option {flag}{suggestion(flag, known)}"


def suggestion(flag: str, known: list[str]) -> str:
    """
    C{" (did you mean --echo?)"} for the known option closest to C{flag},
    compared without their dashes (which every option shares); or nothing.
    """
    names = {name.lstrip("-"): name for name in known}
    close = difflib.get_close_matches(flag.lstrip("-"), list(names), n=1)
    return f" (did you mean {names[close[0]]}?)" if close else ""


def wholeNumber(low: int, high: int | None = None, what: str = "a whole number") -> Callable[[str], int]:
    """
    An argparse type for a whole number from C{low} (to C{high}).
    """
    allowed = f"{what} from {low} to {high}" if high is not None else f"{what} >= {low}"

    def parse(text: str) -> int:
        stripped = text.strip()
        if not stripped.isdigit() or int(stripped) < low or (high is not None and int(stripped) > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}")
        return int(stripped)

    return parse


def number(minimum: float, inclusive: bool, what: str = "a number of seconds") -> Callable[[str], float]:
    """
    An argparse type for a finite number above (or from, if C{inclusive})
    C{minimum}.
    """
    allowed = f"{what} {'>=' if inclusive else '>'} {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}")
        return value

    return parse


def convert(function: Callable[[str], Any]) -> Callable[[str], Any]:
    """
    An argparse type from a parser that raises C{ValueError} with a message
    saying what is allowed.
    """

    def parse(text: str) -> Any:
        try:
            return function(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None

    return parse
