"""The axis tests' shared fixtures: an axis PKI per module and a simulator process per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.testing.axis_sim import AxisSimulator
from hub.testing.pki import PkiPaths
from tests.integration.axis.harness import make_axis_pki, start_simulator


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_axis_pki(tmp_path_factory.mktemp("axis-pki"))


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[AxisSimulator]:
    running = start_simulator(tmp_path / "sim")
    yield running
    running.kill()
