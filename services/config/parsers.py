# -*- test-case-name: tests.unit.config.test_config -*-
"""
The value parsers of tap.conf, shared with the C{netservices} command line.

Each takes the raw text of one value and returns the value, or raises
L{InvalidValue} with a message that says what is allowed; the caller adds
where the text came from (a file, a section and a key, or a flag).  Parsers
of network values (endpoint strings, addresses, interfaces) are in
L{services.config.netparsers}.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_QUOTE",
    "InvalidValue",
    "Parser",
    "choice",
    "intRange",
    "parseBool",
    "parseDirectory",
    "parseHeaderValue",
    "parseMount",
    "parseName",
    "parseOptionalName",
    "parseOptionalPath",
    "parseOptionalReadableFile",
    "parsePort",
    "parsePositiveSeconds",
    "parseQuotesFile",
    "parseRate",
    "parseSeconds",
    "parseSize",
    "readQuotes",
]


class InvalidValue(ValueError):
    """
    Raised by a value parser: the message says what is allowed (and not
    where the value came from, which its caller knows).
    """


#: A value parser: the raw text of one value to the value.
Parser = Callable[[str], Any]


_BOOLEANS = configparser.RawConfigParser.BOOLEAN_STATES


def parseBool(text: str) -> bool:
    """
    Parse yes/no, true/false, on/off, 1/0 (any case).
    """
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise InvalidValue("expected yes or no (also true/false, on/off, 1/0)") from None


def parseSeconds(text: str) -> float:
    """
    Parse a non-negative number of seconds; C{0} means "never".
    """
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue("expected a number of seconds, e.g. 30 or 0.5") from None
    if not (value >= 0 and value != float("inf")):
        raise InvalidValue("expected a finite number of seconds >= 0")
    return value


def parsePositiveSeconds(text: str) -> float:
    """
    Parse a number of seconds greater than zero.
    """
    value = parseSeconds(text)
    if value <= 0:
        raise InvalidValue("expected a number of seconds > 0")
    return value


def intRange(low: int, high: int) -> Parser:
    """
    A parser of whole numbers from C{low} to C{high}, inclusive.
    """

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise InvalidValue(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise InvalidValue(f"expected a whole number from {low} to {high}")
        return value

    return parse


#: A size: digits and an optional unit.  Patterns here are compiled on
#: first use (re caches them), not at import: most tap.conf files set none.
_SIZE = r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$"


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parseSize(text: str) -> int:
    """
    Parse a size in bytes, with an optional binary suffix: C{65536},
    C{64K}, C{64KiB}, C{1M}, C{1MiB}, C{2G}.
    """
    match = re.match(_SIZE, text, re.IGNORECASE)
    if match is None:
        raise InvalidValue("expected a size in bytes such as 65536, 64K or 1MiB")
    number, unit = match.groups()
    return int(number) * _UNITS[(unit or "")[:1].lower()]


def parsePort(text: str) -> int:
    """
    Parse a UDP or TCP port number, 0 (any free port) to 65535.
    """
    return intRange(0, 65535)(text)


def parseName(text: str) -> str:
    """
    Parse a short free-form name: printable, at most 64 characters.
    """
    value = text.strip()
    if not value or len(value) > 64 or not value.isprintable():
        raise InvalidValue("expected 1 to 64 printable characters")
    return value


def choice(*choices: str) -> Parser:
    """
    A parser of one of C{choices} (any case; the value comes back in
    lower case).
    """

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise InvalidValue("expected one of " + ", ".join(choices))
        return value

    return parse


def parseOptionalPath(text: str) -> str:
    """
    Parse a filesystem path; empty means "none".
    """
    return text.strip()


def parseOptionalReadableFile(text: str) -> str:
    """
    Parse the path of a file that exists and can be read now, kept as
    written (the daemon reads it later, from the same directory); empty
    means "none".

    Only readability is checked: what the file must hold is its reader's
    business (a certificate is parsed when its listener starts), but a
    mistyped path is reported at start, even when nothing uses it yet.
    """
    path = text.strip()
    if not path:
        return ""
    try:
        # A regular file only: opening a FIFO would wait for a writer.
        if not Path(path).is_file():
            raise OSError(path)
        with open(path, "rb"):
            pass
    except (OSError, ValueError):  # missing, a directory, no permission, a NUL byte...
        raise InvalidValue("expected the path of a readable file (or nothing, for none)") from None
    return path


def parseHeaderValue(text: str) -> str:
    """
    Parse an HTTP header value: printable ASCII, at most 128 characters, or
    nothing (no header).
    """
    value = text.strip()
    if len(value) > 128 or not all(" " <= c <= "~" for c in value):
        raise InvalidValue("expected at most 128 printable ASCII characters, or nothing")
    return value


def parseOptionalName(text: str) -> str:
    """
    Parse a short name, or nothing (the empty string).
    """
    return parseName(text) if text.strip() else ""


def parseRate(text: str) -> float:
    """
    Parse a rate per second greater than zero.
    """
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue("expected a number per second > 0, e.g. 10 or 0.5") from None
    if not (0 < value < float("inf")):
        raise InvalidValue("expected a finite number per second > 0")
    return value


#: RFC 865: a quote should be shorter than 512 characters.
MAX_QUOTE = 512


def readQuotes(path: str) -> tuple[str, ...]:
    """
    The quotes of a quotes file: paragraphs separated by blank lines, each
    kept as written (lines joined with CRLF).

    @raise OSError: when the file cannot be read.
    @raise ValueError: when it is not UTF-8, holds no quote, or a quote is
        longer than L{MAX_QUOTE} bytes; the message says which.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    quotes = []
    for paragraph in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        lines = [line.rstrip() for line in paragraph.strip("\n").split("\n")]
        quote = "\r\n".join(lines).strip()
        if not quote:
            continue
        if len(quote.encode("utf-8")) > MAX_QUOTE:
            raise ValueError(
                f"the quote that starts {quote[:30]!r} is longer than {MAX_QUOTE} bytes"
            )
        quotes.append(quote)
    if not quotes:
        raise ValueError("the file holds no quote")
    return tuple(quotes)


def parseQuotesFile(text: str) -> str:
    """
    Parse the path of a file of quotes (see L{readQuotes}), made absolute;
    empty means the built-in quote.
    """
    path = text.strip()
    if not path:
        return ""
    try:
        readQuotes(path)
    except (OSError, UnicodeDecodeError):
        raise InvalidValue(
            "expected the path of a readable UTF-8 text file (or nothing, for the built-in quote)"
        ) from None
    except ValueError as e:
        raise InvalidValue(f"{e}; expected quotes separated by blank lines") from None
    return str(Path(path).absolute())


#: First path segments the web service uses itself, so a static mount may not.
_WEB_RESERVED = frozenset({"status", "health", "metrics"})


_MOUNT_SEGMENT = r"^[A-Za-z0-9._~!$&'()*+,;=:@-]+$"


def parseMount(text: str) -> str:
    """
    Parse the URL path where static files are mounted, e.g. C{/static/} or
    C{/files/pub/}: one or more plain path segments, returned in the
    canonical form C{/a/b/}.
    """
    segments = [s for s in text.strip().split("/") if s]
    allowed = (
        "expected a URL path such as /static/ or /files/pub/ (plain segments, "
        "not /, . or .., and not under /status, /health or /metrics)"
    )
    if not segments or segments[0] in _WEB_RESERVED:
        raise InvalidValue(allowed)
    for segment in segments:
        if segment in (".", "..") or not re.match(_MOUNT_SEGMENT, segment):
            raise InvalidValue(allowed)
    return "/" + "/".join(segments) + "/"


def parseDirectory(text: str) -> str:
    """
    Parse the path of an existing directory, made absolute; empty means
    "none".
    """
    path = text.strip()
    if not path:
        return ""
    try:
        isDirectory = Path(path).is_dir()
    except (OSError, ValueError):  # a name too long, a NUL byte...
        isDirectory = False
    if not isDirectory:
        raise InvalidValue("expected the path of an existing directory (or nothing, for none)")
    return str(Path(path).absolute())
