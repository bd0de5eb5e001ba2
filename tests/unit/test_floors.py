"""
Tests for the declared dependency floors: C{tests/floors.txt}, which
C{make test-floors} installs, pins exactly the floors of C{pyproject.toml}.
"""

from __future__ import annotations

import re
import tomllib

from twisted.trial.unittest import SynchronousTestCase

from tests.support import ROOT

_FLOOR = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][^,;\s]*)")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declaredFloors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        match = _FLOOR.match(requirement)
        if match is None:
            raise AssertionError(f"no floor in {requirement!r}")
        floors[_normalized(match.group(1))] = match.group(2)
    return floors


def _pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "tests" / "floors.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normalized(name)] = version
    return pins


class FloorsTests(SynchronousTestCase):
    """
    The floors file and the declared floors agree.
    """

    def test_everyFloorPinned(self) -> None:
        """
        Every runtime and test dependency of pyproject.toml has a floor,
        and floors.txt pins that very release; it pins nothing else but
        service-identity (Twisted[tls]'s).
        """
        declared = _declaredFloors()
        pinned = _pinned()
        self.assertIn("twisted", declared)
        for name, version in declared.items():
            self.assertEqual(pinned.get(name), version, name)
        self.assertEqual(set(pinned) - set(declared), {"service-identity"})
