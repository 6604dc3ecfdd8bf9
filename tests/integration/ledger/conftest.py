"""Fixtures for the ledger suite: the same tests on SQLite and on PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (database ``test``); each test gets its own schema,
dropped afterwards. When the server is unreachable the PostgreSQL cases skip on a laptop and fail
in CI (``CI=true``), as dramatiq's ``check_rabbitmq`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.ledger import Ledger
from tests.integration.ledger.ledger_samples import OperatorKey, make_operator_key, sample_batch
from tests.pg import fresh_schema
from tests.pki_fixtures import GeneratedPki, session_pki


@pytest.fixture(scope="session")
def operator_key() -> OperatorKey:
    return make_operator_key()


@pytest.fixture(scope="session")
def intruder_key() -> OperatorKey:
    return make_operator_key("intruder")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the machine's PostgreSQL (:func:`tests.pg.fresh_schema`)."""
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url



@pytest.fixture
def signed_ledger(ledger_url: str, operator_key: OperatorKey, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger signing a checkpoint every 8 entries, with 6 documents (30 entries) in it."""
    ledger = Ledger.open(ledger_url, blob_dir=tmp_path / "blobs", checkpoint_every=8,
                         checkpoint_signer=operator_key.sign,
                         checkpoint_cert_pem=operator_key.cert_pem)
    for start in (0, 2, 4):
        ledger.write(*sample_batch(start, 2))
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    """The generated test PKI (specialized root, issuing CA, organizations, CRLs)."""
    return session_pki(tmp_path_factory)
