"""
pytest configuration: run in a scratch directory, as trial does.

trial runs tests inside C{_trial_temp}, so C{TestCase.mktemp()} paths are
relative to it; under pytest the same calls would litter the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _scratchDirectory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("trial"))
    yield
    os.chdir(previous)
