"""
A bounded slowloris client for the reliability battery: many connections
that each send the start of a request and then drip one more header byte
per interval, never finishing it.  It records when the server closes each
one, and meanwhile times ordinary requests on fresh connections.

Only ever talks to loopback, and stops after C{duration} seconds whatever
happens.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass

_START = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@dataclass(frozen=True)
class SlowlorisResult:
    """
    What one L{slowloris} run saw.

    @ivar lifetimes: for each attacking connection, the seconds from its
        connect until the server closed it, or L{None} if it was still open
        when the run ended.
    @ivar answered: the response times of the ordinary requests, in seconds
        (L{None} for one that got no response within its timeout).
    @ivar failedToConnect: attacking connections that never connected.
    """

    lifetimes: tuple[float | None, ...]
    answered: tuple[float | None, ...]
    failedToConnect: int


def timedGet(port: int, path: str = "/", timeout: float = 2.0) -> float | None:
    """
    Send one ordinary GET on a fresh connection and return the seconds until
    the whole response head arrived, or L{None} after C{timeout}.
    """
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            received = b""
            while b"\r\n\r\n" not in received:
                data = s.recv(65536)
                if not data:
                    break
                received += data
    except OSError:
        return None
    if not received.startswith(b"HTTP/1.1 200"):
        return None
    return time.monotonic() - started


def slowloris(
    port: int,
    count: int,
    interval: float = 1.0,
    duration: float = 10.0,
    probeEvery: float = 0.5,
    path: str = "/",
    sources: tuple[str, ...] = ("127.0.0.1",),
) -> SlowlorisResult:
    """
    Open C{count} connections to C{127.0.0.1:port}; each sends a request
    line and the start of a header, then one byte every C{interval}
    seconds.  Every C{probeEvery} seconds an ordinary GET of C{path} is
    timed.  Ends after C{duration} seconds, or once the server has closed
    every attacking connection.  The attacking connections come from the
    loopback C{sources} addresses in turn (as from several hosts), the
    ordinary requests from 127.0.0.1.
    """
    if any(not source.startswith("127.") for source in sources):
        raise ValueError("slowloris only runs from loopback addresses")
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    lifetimes: list[float | None] = []
    answered: list[float | None] = []
    failed = 0
    started = time.monotonic()
    for i in range(count):
        s = socket.socket()
        s.bind((sources[i % len(sources)], 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        opened[s] = time.monotonic()
        selector.register(s, selectors.EVENT_READ)
    nextDrip = nextProbe = time.monotonic()
    connectedSent: set[socket.socket] = set()
    try:
        while opened and time.monotonic() - started < duration:
            now = time.monotonic()
            if now >= nextDrip:
                for s in list(opened):
                    try:
                        s.send(b"a" if s in connectedSent else _START)
                        connectedSent.add(s)
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        pass  # closed by the server: the read side records it
                nextDrip = now + interval
            if now >= nextProbe:
                answered.append(timedGet(port, path))
                nextProbe = time.monotonic() + probeEvery
            for key, _ in selector.select(0.05):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    lifetimes.append(time.monotonic() - opened.pop(s))
                    if s not in connectedSent:
                        failed += 1
                    selector.unregister(s)
                    s.close()
        lifetimes.extend(None for _ in opened)
    finally:
        for s in opened:
            s.close()
        selector.close()
    return SlowlorisResult(tuple(lifetimes), tuple(answered), failed)
