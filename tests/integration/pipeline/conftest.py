from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import make_pki
from tests.pg import fresh_schema


@pytest.fixture(scope="session")
def pipeline_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("pipeline-pki"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The pipeline's ledger: every test that takes it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with fresh_schema() as url:
        yield url
