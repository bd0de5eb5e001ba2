# -*- test-case-name: tests.unit.echo.test_smallservices -*-
"""
What the small services send: chargen's character pattern (RFC 864) and
the answers of daytime (RFC 867), time (RFC 868) and quote of the day
(RFC 865), as functions of the time now, the same over TCP and UDP.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence

__all__ = [
    "BUILTIN_QUOTE",
    "CHUNK",
    "EPOCH_1900",
    "PATTERN_CYCLE",
    "answerFor",
    "chargenPattern",
    "daytimeAnswer",
    "quoteAnswer",
    "timeAnswer",
]

#: Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01 (the Unix epoch).
EPOCH_1900 = 2208988800

#: RFC 864 on TCP: lines of 72 characters from the 95 printable ASCII ones,
#: each line starting one character further on, ending in CRLF.
_PRINTABLE = bytes(range(32, 127))
_CYCLE = b"".join(
    (_PRINTABLE * 2)[start : start + 72] + b"\r\n" for start in range(len(_PRINTABLE))
)

#: The length of the pattern's cycle of 95 lines, in bytes.
PATTERN_CYCLE = len(_CYCLE)

#: The most bytes of the pattern one L{chargenPattern} call gives (chargen
#: writes this much per call while the transport wants data).
CHUNK = 64 * 1024

# The pattern, repeated so that any CHUNK bytes of it from any offset in
# the first cycle are one slice.
_RING = _CYCLE * (CHUNK // len(_CYCLE) + 2)


def chargenPattern(offset: int, size: int) -> bytes:
    """
    C{size} bytes (at most L{CHUNK}) of the RFC 864 pattern, from byte
    C{offset} of its cycle of 95 lines.
    """
    start = offset % len(_CYCLE)
    return _RING[start : start + size]


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip


def daytimeAnswer(now: float) -> bytes:
    """
    RFC 867: the date and time in the form the RFC suggests, in UTC, in
    English whatever the locale: C{Thursday, December 3, 2026 10:19:35-UTC}.
    """
    t = time.gmtime(now)
    text = (
        f"{_DAYS[t.tm_wday]}, {_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}-UTC\r\n"
    )
    return text.encode("ascii")


def timeAnswer(now: float) -> bytes:
    """
    RFC 868: the seconds since 1900-01-01 00:00 UTC as a 32-bit big-endian
    number.  It wraps to 0 on 2036-02-07 06:28:16 UTC and counts on from
    there, modulo 2**32 (as NTP's era 1 does).
    """
    return struct.pack("!I", (int(now) + EPOCH_1900) % 2**32)


def quoteAnswer(quotes: Sequence[str]) -> Callable[[float], bytes]:
    """
    RFC 865: the answer function for C{quotes}, one a day (UTC) in turn.
    """
    encoded = tuple(q.encode("utf-8") + b"\r\n" for q in quotes)

    def answer(now: float) -> bytes:
        return encoded[int(now // 86400) % len(encoded)]

    return answer


#: The quote of L{quoteAnswer} when none is configured.
BUILTIN_QUOTE = "Simple things should be simple, complex things should be possible. (Alan Kay)"


def answerFor(name: str, quotes: Sequence[str] = ()) -> Callable[[float], bytes] | None:
    """
    The answer of small service C{name}: L{daytimeAnswer}, L{timeAnswer},
    or, for qotd, L{quoteAnswer} of C{quotes} (the built-in quote when
    there are none); L{None} for discard and chargen, which send no answer.
    """
    if name == "daytime":
        return daytimeAnswer
    if name == "time":
        return timeAnswer
    if name == "qotd":
        return quoteAnswer(quotes or (BUILTIN_QUOTE,))
    return None
