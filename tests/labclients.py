# -*- test-case-name: tests.lab.test_services -*-
"""
Clients that lab tests run inside lab hosts with L{tests.netlab.Host.call}:
each takes and returns JSON values, and is bounded in count and time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import ssl
import time
import urllib.request
from typing import Any

from tests.echoload import echoLoad


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def udpEchoes(
    address: str, port: int, sizes: list[int], attempts: int = 3, timeout: float = 2.0
) -> dict[str, str]:
    """
    Send one datagram of random bytes of each size to C{address:port} and
    wait for its echo, sending it again up to C{attempts} times when none
    comes within C{timeout} seconds.

    @return: size (as text) to C{"ok"}, or what went wrong.
    """
    results = {}
    with socket.socket(_family(address), socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((address, port))
        for size in sizes:
            payload = os.urandom(size)
            outcome = f"no echo after {attempts} attempts"
            for _ in range(attempts):
                s.send(payload)
                try:
                    echoed = s.recv(65536)
                except TimeoutError:
                    continue
                outcome = "ok" if echoed == payload else f"echo of {len(echoed)} bytes differs"
                break
            results[str(size)] = outcome
    return results


def reassembled() -> dict[str, int]:
    """
    How many datagrams this host's IPv4 and IPv6 have reassembled from
    fragments (C{ReasmOKs} of C{/proc/net/snmp}, C{Ip6ReasmOKs} of
    C{/proc/net/snmp6}).
    """
    with open("/proc/net/snmp") as f:
        lines = [line.split() for line in f if line.startswith("Ip:")]
    ipv4 = int(dict(zip(lines[0], lines[1]))["ReasmOKs"])
    with open("/proc/net/snmp6") as f:
        ipv6 = int(dict(line.split() for line in f if line.strip())["Ip6ReasmOKs"])
    return {"ipv4": ipv4, "ipv6": ipv6}


def tlsEcho(
    address: str, port: int, cafile: str, size: int, timeout: float = 20.0
) -> dict[str, Any]:
    """
    Connect to C{address:port} with TLS, verifying the server's certificate
    against C{cafile} for the name C{address}, send C{size} random bytes,
    half-close and read the echo.

    @return: C{same} (the echo's sha256 is the payload's), C{received}
        and the TLS C{version}; or C{error} when the handshake fails.
    """
    payload = os.urandom(size)
    context = ssl.create_default_context(cafile=cafile)
    digest = hashlib.sha256()
    received = 0
    deadline = time.monotonic() + timeout
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=address) as s,
        ):
            s.sendall(payload)
            while received < size and time.monotonic() < deadline:
                data = s.recv(65536)
                if not data:
                    break
                digest.update(data)
                received += len(data)
            version = s.version()
    except (ssl.SSLError, OSError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    same = digest.digest() == hashlib.sha256(payload).digest()
    return {"same": same, "received": received, "version": version}


def echoes(
    address: str, port: int, payloads: list[str], timeout: float = 10.0
) -> list[dict[str, Any]]:
    """
    One TCP connection per payload to C{address:port}: send it, half-close,
    read the echo until the server closes.

    @return: for each, the C{echo}, the client's own C{port}, and the
        C{error} that ended the connection early (a reset), or C{None}.
    """
    results = []
    for payload in payloads:
        with socket.create_connection((address, port), timeout=timeout) as s:
            clientPort = s.getsockname()[1]
            received, error = b"", None
            try:
                s.sendall(payload.encode())
                s.shutdown(socket.SHUT_WR)
                while data := s.recv(65536):
                    received += data
            except OSError as e:
                error = f"{type(e).__name__}: {e}"
            results.append({"echo": received.decode(), "port": clientPort, "error": error})
    return results


def load(address: str, port: int, clients: int, size: int, timeout: float) -> dict[str, Any]:
    """
    L{echoLoad} against C{address:port}: C{clients} connections of C{size}
    bytes each at once, checked with sha256, stopped after C{timeout}.
    """
    result = echoLoad((address, port), clients, size, timeout, family=_family(address))
    return dataclasses.asdict(result)


def statusWhen(url: str, path: list[str], expected: Any, timeout: float = 15.0) -> dict[str, Any]:
    """
    GET the JSON document at C{url} every 50 ms until its member at C{path}
    (keys from the top) equals C{expected}, for at most C{timeout} seconds.

    @return: the last document (the caller asserts on it).
    """
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document: dict[str, Any] = json.load(response)
        value: Any = document
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value == expected or time.monotonic() > deadline:
            return document
        time.sleep(0.05)


def gets(urls: list[str], timeout: float = 10.0) -> list[dict[str, Any]]:
    """
    GET each URL in turn, each on a connection of its own.

    @return: for each, the C{status} and the C{body} as text.
    """
    results = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            results.append({"status": response.status, "body": response.read().decode()})
    return results


def mdnsQuery(source: str, name: str, timeout: float = 2.0, garbage: bool = False) -> dict[str, Any]:
    """
    Send an mDNS query for the A record of C{name} (QU: answer by unicast)
    from C{source} to 224.0.0.251:5353, out of the interface that has
    C{source}, and wait up to C{timeout} seconds for an answer; with
    C{garbage}, first send a datagram that is not a DNS message.

    @return: the C{addresses} answered (empty if none came).
    """
    from twisted.names import dns

    message = dns.Message()
    message.queries = [dns.Query(name, dns.A, dns.IN | 0x8000)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        if garbage:
            s.sendto(b"\xde\xad" * 3, ("224.0.0.251", 5353))
        s.sendto(message.toStr(), ("224.0.0.251", 5353))
        s.settimeout(timeout)
        addresses: list[str] = []
        try:
            reply = dns.Message()
            reply.fromStr(s.recv(9000))
            addresses = [r.payload.dottedQuad() for r in reply.answers if r.type == dns.A]
        except TimeoutError:
            pass
    return {"addresses": addresses}
