# -*- test-case-name: tests.lab.test_mdns -*-
"""
python-zeroconf, a DNS-SD implementation written by others, as a peer of
our mDNS responder in lab hosts: L{browse} is called with
L{tests.netlab.Host.call} (JSON in and out), L{main} registers a service, or
watches a type, until its standard input closes (C{python -m
tests.labzeroconf register ...} or C{watch ...} under
L{tests.netlab.Host.popen}).

Both are bounded in time; python-zeroconf speaks on the lab host's
interfaces only (the lab's namespaces have no link out).
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any


def browse(types: list[str], expected: int, timeout: float = 15.0) -> dict[str, Any]:
    """
    Browse C{types} (C{_http._tcp.local.}) with python-zeroconf's
    C{ServiceBrowser} until C{expected} instances are found or C{timeout}
    passes, then resolve each with C{ServiceInfo}.

    @return: instance name to its C{server}, C{addresses}, C{port} and
        C{txt} (or L{None} if it did not resolve).
    """
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf

    zc = Zeroconf(ip_version=IPVersion.All)
    found: dict[str, str] = {}

    def changed(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        found[name] = service_type

    try:
        browser = ServiceBrowser(zc, types, handlers=[changed])
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        browser.cancel()
        resolved: dict[str, Any] = {}
        for name, kind in sorted(found.items()):
            info = zc.get_service_info(kind, name, timeout=3000)
            resolved[name] = info and {
                "server": info.server,
                "addresses": sorted(info.parsed_addresses()),
                "port": info.port,
                "txt": {
                    k.decode(): (v or b"").decode() for k, v in info.properties.items() if k
                },
            }
        return resolved
    finally:
        zc.close()


def register(kind: str, name: str, port: int, address: str, limit: float) -> None:
    """
    Register C{name} of type C{kind} at C{address:port} with TXT
    C{by=zeroconf}; print C{registered NAME} once it is, and unregister
    when standard input closes or C{limit} seconds pass.
    """
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    zc = Zeroconf(ip_version=IPVersion.V4Only)
    info = ServiceInfo(
        kind,
        f"{name}.{kind}",
        port=port,
        addresses=[socket.inet_aton(address)],
        properties={"by": "zeroconf"},
        server=f"zc-{port}.local.",
    )
    try:
        zc.register_service(info, allow_name_change=False)
        print("registered", info.name, flush=True)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and sys.stdin.readline():
            pass
        zc.unregister_service(info)
    finally:
        zc.close()


def watch(kind: str, limit: float) -> None:
    """
    Browse C{kind} with python-zeroconf's C{ServiceBrowser} and print one
    line per change (C{Added NAME}, C{Removed NAME}) as it comes, for
    C{limit} seconds or until standard input closes.
    """
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf

    zc = Zeroconf(ip_version=IPVersion.V4Only)

    def changed(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        print(state_change.name, name, flush=True)

    try:
        browser = ServiceBrowser(zc, kind, handlers=[changed])
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and sys.stdin.readline():
            pass
        browser.cancel()
    finally:
        zc.close()


def main(argv: list[str]) -> None:
    """
    C{register KIND NAME PORT ADDRESS LIMIT} or C{watch KIND LIMIT}.
    """
    if argv[:1] == ["register"]:
        kind, name, port, address, limit = argv[1:]
        register(kind, name, int(port), address, float(limit))
    elif argv[:1] == ["watch"]:
        watch(argv[1], float(argv[2]))
    else:
        raise SystemExit(
            "usage: python -m tests.labzeroconf register KIND NAME PORT ADDRESS LIMIT | watch KIND LIMIT"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
