"""
A seeded, bounded HTTP/1.1 request mutator and a loopback driver for it.

L{mutatedRequests} turns a small corpus of valid requests into malformed
ones: byte flips, insertions of interesting bytes, deletions, truncations,
odd line endings, bad methods and versions, duplicate and oversized headers,
contradictory framing (Content-Length and Transfer-Encoding), broken chunked
bodies and traversal paths.  The same seed gives the same requests, so a
failure is reproduced by its seed and index.

L{fuzz} sends them to a server on loopback over many concurrent
connections, reads what comes back, and counts the status codes.  Nothing
here ever sends anywhere but the address it is given, and every run is
bounded in count, size and time.

Run it by hand against any HTTP server on loopback::

    python -m tests.httpfuzz 127.0.0.1 8080 --count 5000 --seed 7
"""

from __future__ import annotations

import argparse
import random
import re
import selectors
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: The largest request the mutator produces.
MAX_REQUEST = 64 * 1024

#: Paths worth asking for: every resource of the web service, and some
#: that do not exist.
PATHS = (
    b"/", b"/static/", b"/static/index.html", b"/static/sub/", b"/status", b"/health",
    b"/metrics", b"/nope", b"/static/../etc/passwd", b"/%2e%2e/", b"/?q=1&r=%00",
    b"/static/%c0%ae%c0%ae/", b"//", b"/static//index.html", b"*", b"http://127.0.0.1/",
)

METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH",
           b"CONNECT", b"get", b"G\x00T", b"", b"GET GET", b"X" * 300, b"\xff\xfe")

VERSIONS = (b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/1.1x",
            b"http/1.1", b"HTTP/", b"", b"HTTP/1.1 HTTP/1.1", b"HTTP/01.1", b"HTTP/1.1\x00")

INTERESTING = (b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\0", b"\xff", b"\xc0\xae", b"%", b"%00",
               b"%2f", b"../", b" ", b"\t", b":", b";", b",", b"\x7f", b"\x1b[31m", b"A" * 1000,
               b"\r\n ", b"\xe2\x80\xa8", b"0", b"-1", b"+", b"chunked", b"Content-Length: 5\r\n")

CONTENT_LENGTHS = (b"-1", b"+3", b"0x10", b"3.0", b" 3", b"3 3", b"99999999999999999999", b"",
                   b"1e3", b"\xd9\xa3", b"3, 3", b"0")

TRANSFER_ENCODINGS = (b"chunked", b"Chunked", b" chunked", b"chunked, identity", b"identity",
                      b"gzip, chunked", b"xchunked", b"chunked\x00", b"chunked, chunked")

CHUNKED_BODIES = (b"5\r\nhello\r\n0\r\n\r\n", b"ffffffffffffffffff\r\nx\r\n", b"5;ext=1\r\nhello\r\n0\r\n\r\n",
                  b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"0x5\r\nhello\r\n0\r\n\r\n",
                  b"5\nhello\n0\n\n", b"0\r\nTrailer: x\r\n\r\n", b"G\r\n\r\n")


def corpus(host: bytes) -> list[bytes]:
    """
    The valid requests that mutations start from.
    """
    h = b"Host: " + host + b"\r\n"
    close = b"Connection: close\r\n"
    requests = []
    for path in PATHS[:7]:
        requests.append(b"GET " + path + b" HTTP/1.1\r\n" + h + close + b"\r\n")
        requests.append(b"HEAD " + path + b" HTTP/1.1\r\n" + h + close + b"\r\n")
    requests += [
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET /static/index.html HTTP/1.1\r\n" + h + b"Range: bytes=0-3,5-\r\n" + close + b"\r\n",
        b"GET /static/ HTTP/1.1\r\n" + h + b"If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
        + close + b"\r\n",
        b"POST / HTTP/1.1\r\n" + h + b"Content-Length: 5\r\nContent-Type: text/plain\r\n" + close
        + b"\r\nhello",
        b"POST / HTTP/1.1\r\n" + h + b"Transfer-Encoding: chunked\r\n" + close + b"\r\n"
        + CHUNKED_BODIES[0],
        b"GET / HTTP/1.1\r\n" + h + b"\r\nGET /health HTTP/1.1\r\n" + h + close + b"\r\n",
        b"OPTIONS * HTTP/1.1\r\n" + h + close + b"\r\n",
        b"GET /status HTTP/1.1\r\n" + h + b"Accept: application/json\r\nUser-Agent: fuzz\r\n"
        + b"Cookie: a=b; c=d\r\n" + close + b"\r\n",
    ]
    return requests


def _lines(request: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = request.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body if sep else b""


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _setRequestLine(rng: random.Random, request: bytes) -> bytes:
    lines, body = _lines(request)
    parts = lines[0].split(b" ")
    method, path, version = (parts + [b"", b"", b""])[:3]
    choice = rng.randrange(3)
    if choice == 0:
        method = rng.choice(METHODS)
    elif choice == 1:
        path = rng.choice(PATHS) + (rng.choice(INTERESTING) if rng.random() < 0.5 else b"")
    else:
        version = rng.choice(VERSIONS)
    lines[0] = b" ".join(p for p in (method, path, version) if p or rng.random() < 0.3)
    return _join(lines, body)


def _headerMischief(rng: random.Random, request: bytes) -> bytes:
    lines, body = _lines(request)
    choice = rng.randrange(9)
    if choice == 0 and len(lines) > 1:  # duplicate a header
        lines.insert(rng.randrange(1, len(lines) + 1), rng.choice(lines[1:]))
    elif choice == 1:  # many headers
        lines += [b"X-Fuzz-%d: %d" % (i, i) for i in range(rng.choice((50, 99, 100, 101, 150)))]
    elif choice == 2:  # one huge header
        lines.append(b"X-Big: " + b"a" * rng.choice((8000, 16 * 1024, 17 * 1024, 40 * 1024)))
    elif choice == 3:
        lines.append(b"Content-Length: " + rng.choice(CONTENT_LENGTHS))
    elif choice == 4:
        lines.append(b"Transfer-Encoding: " + rng.choice(TRANSFER_ENCODINGS))
        body = rng.choice(CHUNKED_BODIES)
    elif choice == 5:  # header without a colon, with spaces, folded
        lines.append(rng.choice((b"NoColon", b"Bad Name: x", b" folded", b": empty", b"X:\x00",
                                 b"Host: a\r\n Host: b", b"X-\xff: y")))
    elif choice == 6:  # no Host, or two
        lines = [ln for ln in lines if not ln.lower().startswith(b"host:")]
        if rng.random() < 0.5:
            lines += [b"Host: a", b"Host: b"]
    elif choice == 7:
        lines.append(b"Expect: 100-continue")
        lines.append(b"Content-Length: " + str(rng.choice((10, 10**9))).encode())
    else:
        lines.append(b"Range: bytes=" + rng.choice((b"0-", b"-1", b"5-1", b"0-0,0-0" * 200, b"x",
                                                     b"99999999999999999999-")))
    return _join(lines, body)


def _byteMischief(rng: random.Random, request: bytes) -> bytes:
    data = bytearray(request)
    choice = rng.randrange(6)
    where = rng.randrange(len(data) + 1)
    if choice == 0 and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1:
        data[where:where] = rng.choice(INTERESTING)
    elif choice == 2 and data:
        end = min(len(data), where + rng.randint(1, 20))
        del data[where:end]
    elif choice == 3:
        del data[where:]
    elif choice == 4:
        data = bytearray(bytes(data).replace(b"\r\n", rng.choice((b"\n", b"\r", b"\n\r", b"\r\r\n"))))
    else:
        data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(data)


def mutate(rng: random.Random, request: bytes) -> bytes:
    """
    Apply one to four random mutations to C{request}, keeping it under
    L{MAX_REQUEST} bytes.
    """
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(10)
        if kind < 2:
            request = _setRequestLine(rng, request)
        elif kind < 6:
            request = _headerMischief(rng, request)
        elif kind < 9:
            request = _byteMischief(rng, request)
        else:
            request = request + mutate(rng, rng.choice(corpus(b"127.0.0.1")))  # pipelined
    return request[:MAX_REQUEST]


def mutatedRequests(seed: int, count: int, host: bytes = b"127.0.0.1") -> Iterator[bytes]:
    """
    Yield C{count} requests: mostly mutated, one in ten left valid.  The
    same C{seed} gives the same requests.
    """
    rng = random.Random(seed)
    base = corpus(host)
    for _ in range(count):
        request = rng.choice(base)
        yield request if rng.random() < 0.1 else mutate(rng, request)


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})[ \r]")


def statuses(response: bytes) -> list[int]:
    """
    The status codes of the responses in C{response}, in order: each
    response starts with a status line; its body is skipped by its
    Content-Length (or its chunked framing), so body text never counts.
    """
    codes = []
    rest = response
    while rest:
        match = _STATUS.match(rest)
        if match is None:
            break
        codes.append(int(match.group(1)))
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
        if re.search(rb"\r\ntransfer-encoding:\s*chunked", head, re.IGNORECASE):
            end = rest.find(b"\r\n0\r\n\r\n")
            rest = b"" if end < 0 else rest[end + 7:]
        elif length is not None:
            rest = rest[int(length.group(1)):]
        else:
            break
        # A HEAD response has a Content-Length but no body: resynchronize.
        if rest and not rest.startswith(b"HTTP/"):
            found = rest.find(b"HTTP/1.")
            rest = b"" if found < 0 else rest[found:]
    return codes


@dataclass
class FuzzResult:
    """
    What one L{fuzz} run saw.

    @ivar sent: requests sent.
    @ivar codes: how many responses had each status code.
    @ivar silent: requests that got no response before the idle timeout
        (the server waits for more input, which is fine).
    @ivar refused: connections that failed to connect or were reset before
        any response.
    @ivar serverErrors: C{(index, status, request)} of every 5xx response.
    @ivar tracebacks: C{(index, request)} of every response that shows a
        Python traceback.
    @ivar seconds: wall time of the run.
    """

    sent: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    silent: int = 0
    refused: int = 0
    serverErrors: list[tuple[int, int, bytes]] = field(default_factory=list)
    tracebacks: list[tuple[int, bytes]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Slot:
    index: int
    request: bytes
    sock: socket.socket
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    lastActivity: float = 0.0
    started: float = 0.0


def fuzz(
    port: int,
    count: int,
    seed: int,
    host: str = "127.0.0.1",
    concurrency: int = 64,
    idle: float = 0.5,
    timeout: float = 600.0,
    onProgress: Callable[[int], object] | None = None,
) -> FuzzResult:
    """
    Send C{count} mutated requests (L{mutatedRequests}) to C{host:port},
    C{concurrency} connections at a time, one request per connection.  A
    connection ends when the server closes it, or after C{idle} seconds
    without a byte from the server (then it counts as silent if nothing
    came back).  The whole run stops after C{timeout} seconds.
    """
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError("fuzz only sends to loopback")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    requests = mutatedRequests(seed, count, host.encode())
    selector = selectors.DefaultSelector()
    result = FuzzResult()
    started = time.monotonic()
    deadline = started + timeout
    active: dict[socket.socket, _Slot] = {}
    index = 0

    def finish(slot: _Slot, refused: bool = False) -> None:
        selector.unregister(slot.sock)
        slot.sock.close()
        del active[slot.sock]
        data = bytes(slot.received)
        codes = statuses(data)
        if refused and not data:
            result.refused += 1
        elif not codes:
            result.silent += 1
        for code in codes:
            result.codes[code] += 1
            if code >= 500:
                result.serverErrors.append((slot.index, code, slot.request))
        if b"Traceback (most recent call last)" in data:
            result.tracebacks.append((slot.index, slot.request))

    try:
        while (index < count or active) and time.monotonic() < deadline:
            while index < count and len(active) < concurrency:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.connect_ex((host, port))
                now = time.monotonic()
                slot = _Slot(index, next(requests), sock, lastActivity=now, started=now)
                active[sock] = slot
                selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, slot)
                index += 1
                result.sent += 1
                if onProgress is not None and index % 1000 == 0:
                    onProgress(index)
            for key, events in selector.select(0.05):
                slot = key.data
                try:
                    if events & selectors.EVENT_WRITE:
                        slot.sent += slot.sock.send(slot.request[slot.sent:slot.sent + 65536])
                        if slot.sent >= len(slot.request):
                            selector.modify(slot.sock, selectors.EVENT_READ, slot)
                    if events & selectors.EVENT_READ:
                        data = slot.sock.recv(65536)
                        if not data:
                            finish(slot)
                            continue
                        slot.received += data
                        slot.lastActivity = time.monotonic()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    finish(slot, refused=True)
            now = time.monotonic()
            for slot in [s for s in active.values() if now - s.lastActivity > idle]:
                finish(slot)
    finally:
        for slot in list(active.values()):
            finish(slot)
        selector.close()
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    """
    Fuzz an HTTP server on loopback from the command line.
    """
    parser = argparse.ArgumentParser(description="Send seeded mutated HTTP requests to loopback.")
    parser.add_argument("host", choices=["127.0.0.1", "::1", "localhost"])
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = fuzz(args.port, args.count, args.seed, args.host)
    print(f"{result.sent} sent in {result.seconds:.1f} s; codes {dict(sorted(result.codes.items()))}; "
          f"silent {result.silent}; refused {result.refused}")
    for index, code, request in result.serverErrors[:20]:
        print(f"  #{index}: {code} for {request[:200]!r}")


if __name__ == "__main__":
    main()
