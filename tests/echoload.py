"""
A bounded echo load generator for integration tests: many non-blocking
connections in one thread, each sending random-sized chunks of random data
while reading the echo, checking every byte with sha256.
"""

from __future__ import annotations

import hashlib
import os
import random
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Conn:
    sock: socket.socket
    payload: bytes
    sent: int = 0
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    error: str | None = None


@dataclass(frozen=True)
class LoadResult:
    """
    What one run of L{echoLoad} saw.

    @ivar ok: connections whose echo matched byte for byte.
    @ivar errors: one message per failed connection.
    @ivar seconds: wall time of the run.
    """

    ok: int
    errors: tuple[str, ...]
    seconds: float


def echoLoad(
    address: Any,
    clients: int,
    size: int,
    timeout: float,
    family: int = socket.AF_INET,
    seed: int = 862,
    maxChunk: int = 65536,
) -> LoadResult:
    """
    Open C{clients} connections to C{address}; each sends C{size} random
    bytes in random chunk sizes (1 to C{maxChunk}) while reading, and
    compares the sha256 of what came back with what it sent.  Stops after
    C{timeout} seconds whatever happens.
    """
    rng = random.Random(seed)
    selector = selectors.DefaultSelector()
    conns = []
    start = time.monotonic()
    for _ in range(clients):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)
        conn = _Conn(sock, os.urandom(size))
        conns.append(conn)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
    open_ = len(conns)
    deadline = start + timeout
    try:
        while open_ and time.monotonic() < deadline:
            for key, events in selector.select(timeout=0.5):
                conn = key.data
                try:
                    if events & selectors.EVENT_WRITE and conn.sent < size:
                        chunk = rng.randint(1, maxChunk)
                        conn.sent += conn.sock.send(conn.payload[conn.sent : conn.sent + chunk])
                        if conn.sent == size:
                            selector.modify(conn.sock, selectors.EVENT_READ, conn)
                    if events & selectors.EVENT_READ:
                        data = conn.sock.recv(262144)
                        if not data:
                            raise ConnectionError(f"closed after {conn.received} bytes")
                        conn.digest.update(data)
                        conn.received += len(data)
                        if conn.received >= size:
                            selector.unregister(conn.sock)
                            conn.sock.close()
                            open_ -= 1
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    conn.error = f"{type(e).__name__}: {e}"
                    selector.unregister(conn.sock)
                    conn.sock.close()
                    open_ -= 1
    finally:
        for conn in conns:
            if conn.sock.fileno() != -1:
                conn.sock.close()
        selector.close()
    errors = []
    ok = 0
    for i, conn in enumerate(conns):
        if conn.error is not None:
            errors.append(f"connection {i}: {conn.error}")
        elif conn.received != size:
            errors.append(f"connection {i}: got {conn.received} of {size} bytes before the deadline")
        elif conn.digest.digest() != hashlib.sha256(conn.payload).digest():
            errors.append(f"connection {i}: sha256 differs")
        else:
            ok += 1
    return LoadResult(ok, tuple(errors), time.monotonic() - start)
