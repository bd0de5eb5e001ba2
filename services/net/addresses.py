# -*- test-case-name: tests.test_listen -*-
"""
Socket addresses as people read them in logs, C{/status} and the CLI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describeAddress"]


def describeAddress(address: Any) -> str:
    """
    A short, familiar text for a socket address: C{127.0.0.1:8007},
    C{[::1]:8007}, C{unix:/run/x.sock}.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return f"unix:{name or '(unnamed)'}"
