# -*- test-case-name: tests.unit.web.test_web -*-
"""
What C{/status} and C{/health} say about one service of the tree, wherever
the service runs: the web service reads it from the tree of its own
process, and a supervisor of workers writes it for the services that run
in the parent (discovery, UDP echo) so that every worker can show them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.net.addresses import describeAddress
from services.net.listener import isListening, listeningPorts

__all__ = ["PARENT_STATE", "readParentState", "serviceHealth", "serviceStatus", "treeState"]

#: The file in a supervisor's runtime directory with its own services' state.
PARENT_STATE = "parent.json"


def serviceStatus(service: Any, stats: Mapping[str, Any]) -> dict[str, Any]:
    """
    C{/status}'s entry for C{service}: whether it listens, its addresses,
    its counters (from C{stats}, by service name) and whatever its
    C{statusDetails()} adds (discovery: its peers).
    """
    entry: dict[str, Any] = {
        "listening": isListening(service),
        "addresses": [describeAddress(p.getHost()) for p in listeningPorts(service)],
    }
    counters = stats.get(service.name)
    if counters is not None:
        entry["counters"] = counters.snapshot()
    details = getattr(service, "statusDetails", None)
    if details is not None:
        entry.update(details())
    return entry


def serviceHealth(service: Any) -> tuple[str, list[str]]:
    """
    C{/health}'s state of C{service}: C{"not listening"}, C{"degraded"}
    with the reasons its C{healthProblems()} gives, or C{"listening"}.
    """
    found = getattr(service, "healthProblems", None)
    reasons = list(found()) if found is not None else []
    if not isListening(service):
        return "not listening", reasons
    return ("degraded" if reasons else "listening"), reasons


def treeState(services: Any, stats: Mapping[str, Any]) -> dict[str, Any]:
    """
    The status entry and health of each of C{services}, by name, as
    JSON-serializable values (what a supervisor writes to L{PARENT_STATE}).
    """
    found: dict[str, Any] = {}
    for service in services:
        state, reasons = serviceHealth(service)
        found[service.name] = {
            "status": serviceStatus(service, stats),
            "health": state,
            "problems": reasons,
        }
    return found


def readParentState(runtime: str | Path) -> dict[str, Any]:
    """
    What the supervisor last wrote to L{PARENT_STATE} in C{runtime}, or
    nothing if it has not (yet).
    """
    try:
        found = json.loads((Path(runtime) / PARENT_STATE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
