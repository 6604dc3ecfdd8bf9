"""A SQLite ledger holds every document's exact bytes: its file, ``-wal`` and ``-shm`` are
readable by their owner alone (0600) whatever the process umask — systemd's default for a
service, 0022, would make them world-readable — as its backups and blobs are."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hub.ledger import Ledger
from tests.integration.ledger.ledger_samples import sample_batch


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_ledger_and_its_wal_are_private_whatever_the_umask(
    tmp_path: Path, umask_022: None,
) -> None:
    # Given a process whose umask lets others read what it creates
    db = tmp_path / "state" / "ledger" / "hub.sqlite3"
    # When the hub creates its ledger and writes to it (the WAL and its index in use)
    with Ledger.open(f"sqlite:///{db}") as ledger:
        ledger.write(*sample_batch(0, 2))
        # Then the database, its -wal and -shm files are the owner's alone
        assert {f.name: oct(_mode(f)) for f in _files(db)} == {
            f.name: "0o600" for f in _files(db)}
        # and so are the folders it made for them
        assert (_mode(db.parent), _mode(db.parent.parent)) == (0o700, 0o700)


def test_an_existing_ledger_others_may_read_is_made_private_when_the_hub_opens_it(
    tmp_path: Path, umask_022: None,
) -> None:
    # Given a ledger (and its WAL) made by an older hub, readable by everyone
    db = tmp_path / "hub.sqlite3"
    with Ledger.open(f"sqlite:///{db}") as ledger:
        ledger.write(*sample_batch(0, 2))
    for file in _files(db):
        file.touch()
        file.chmod(0o644)
    # When the hub opens it to write
    with capture_logs() as logs, Ledger.open(f"sqlite:///{db}") as ledger:
        ledger.write(*sample_batch(2, 1))
    # Then the files are the owner's alone, and the hub said it changed them
    assert [oct(_mode(f)) for f in _files(db) if f.exists()] == ["0o600"] * len(
        [f for f in _files(db) if f.exists()])
    made = [e for e in logs if e["event"] == "ledger_file_made_private"]
    assert {e["path"] for e in made} == {str(f) for f in _files(db)}
    assert {e["was"] for e in made} == {"0o644"}


def test_an_auditor_s_read_only_open_changes_no_mode(tmp_path: Path) -> None:
    # Given a ledger copy readable by everyone, as an auditor was handed it
    db = tmp_path / "copy.sqlite3"
    with Ledger.open(f"sqlite:///{db}") as ledger:
        ledger.write(*sample_batch(0, 1))
    db.chmod(0o644)
    # When it is opened read-only
    with Ledger.open(f"sqlite:///{db}", read_only=True) as ledger:
        assert ledger.verify().ok
    # Then its mode is the auditor's business
    assert _mode(db) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_a_ledger_of_another_owner_that_others_may_read_is_left_with_a_warning(
    tmp_path: Path,
) -> None:
    # Given a ledger others may read, owned by another account than the hub's
    db = tmp_path / "hub.sqlite3"
    with Ledger.open(f"sqlite:///{db}") as ledger:
        ledger.write(*sample_batch(0, 1))
    db.chmod(0o644)
    os.chown(db, 65534, 65534)
    # When the hub opens it
    with capture_logs() as logs, Ledger.open(f"sqlite:///{db}") as ledger:
        assert ledger.verify().ok
    # Then its mode is left to its owner, and the hub warns
    assert _mode(db) == 0o644
    warned = [e for e in logs if e["event"] == "ledger_file_not_private"]
    assert [(e["path"], e["mode"], e["owner_uid"]) for e in warned] == [
        (str(db), "0o644", 65534)]
