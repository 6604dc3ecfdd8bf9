"""``hub doctor`` reads the ledger; it never creates, migrates nor writes one (review r8).

The systemd unit runs ``hub doctor`` before every start of the consumer: a doctor that opened the
ledger for writing made an empty ledger at a mistyped path (and said "ok"), and would migrate a
production schema. Each case runs on SQLite and on PostgreSQL (``ledger_url``), through the
command an operator types.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from hub.ledger import Ledger
from hub.ledger.models import SCHEMA_REVISION, VERSION_TABLE
from hub.ops.cli import EXIT_FAILURE
from hub.ops.cli import main as hub_main
from tests.integration.ledger.ledger_samples import sample_batch


def _doctor(tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``hub doctor``'s ledger line (the broker is unreachable: doctor fails as a whole)."""
    config = tmp_path / "hub.toml"
    config.write_text(f"[broker]\nurl = 'amqp://guest:guest@127.0.0.1:1/'\n"
                      f"[ledger]\nurl = '{url}'\n", encoding="utf-8")
    assert hub_main(["--config", str(config), "doctor"]) == EXIT_FAILURE
    lines = capsys.readouterr().out.splitlines()
    found = [line for line in lines if line[5:].startswith("ledger:")]
    assert len(found) == 1, lines
    return found[0]


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _mistyped(url: str, tmp_path: Path) -> str:
    """``url`` with a typo: a SQLite file in a directory that does not exist; for PostgreSQL
    the fresh schema itself, where no hub ever made a ledger."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'typo' / 'ledgr.sqlite3'}"
    return url


def test_doctor_fails_on_a_mistyped_ledger_and_creates_nothing(
        ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a ledger URL where there is no ledger
    url = _mistyped(ledger_url, tmp_path)
    # When the operator runs hub doctor
    line = _doctor(tmp_path, url, capsys)
    # Then the ledger check fails in one line that says there is no ledger there
    assert line.startswith("FAIL ledger: no ledger at"), line
    assert "hub run" in line
    # And nothing was made: no file, no directory, no table
    if url.startswith("sqlite"):
        assert not (tmp_path / "typo").exists()
    else:
        assert _tables(url) == set()


def test_doctor_does_not_migrate_a_ledger_at_an_older_schema(
        ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from alembic import command

    from hub.ledger.migrate import alembic_config

    # Given a ledger an older hub made (schema r0001)
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "r0001")
    engine.dispose()
    before = _tables(ledger_url)
    # When the operator runs hub doctor
    line = _doctor(tmp_path, ledger_url, capsys)
    # Then the check fails and says how to upgrade; the schema is the one it was
    assert line.startswith("FAIL ledger:"), line
    assert "has schema r0001" in line
    assert _tables(ledger_url) == before
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608
                                ).scalars().all() == ["r0001"]
    finally:
        engine.dispose()
    assert SCHEMA_REVISION != "r0001"


def test_doctor_reads_a_ledger_at_the_current_schema_without_writing_it(
        ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the ledger of a running hub, with events in it
    with Ledger.open(ledger_url) as ledger:
        documents, events = sample_batch(0, 1)
        ledger.write(documents, events)
        count = len(ledger.events())
    sqlite_file = Path(ledger_url[len("sqlite:///"):]) if ledger_url.startswith("sqlite") \
        else None
    before = sqlite_file.read_bytes() if sqlite_file is not None else b""
    # When the operator runs hub doctor
    line = _doctor(tmp_path, ledger_url, capsys)
    # Then the ledger check passes, and wrote nothing
    assert line.startswith("ok   ledger: ledger opens at"), line
    assert "has events" in line
    with Ledger.open(ledger_url, read_only=True) as ledger:
        assert len(ledger.events()) == count
    if sqlite_file is not None:
        assert sqlite_file.read_bytes() == before


@pytest.mark.postgres
def test_doctor_never_shows_the_ledger_password(
        postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a PostgreSQL URL with a password (refused or ignored by the server: either way)
    url = postgres_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    assert "s3cret-pw" in url
    # When the operator runs hub doctor, Then the password is nowhere in its line
    line = _doctor(tmp_path, url, capsys)
    assert "s3cret-pw" not in line, line
