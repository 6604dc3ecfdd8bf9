"""SQLite WAL checkpoints made by a thread of their own, not inside the writer's commit."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ledger.walcheckpoint import SAFETY_NET_PAGES, WalCheckpointer
from tests.integration.ledger.ledger_samples import sample_batch
from tests.pg import fresh_schema

WAIT_S = 30.0


def _autocheckpoint(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _documents_in_the_database_file(path: Path, copy_dir: Path) -> int:
    """Documents in the main database file alone, without its write-ahead log: what a
    checkpoint has copied there."""
    copy_dir.mkdir()
    copy = copy_dir / "main-file-only.sqlite3"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(f"file:{copy}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM ledger_documents").fetchone()[0])
    finally:
        conn.close()


def test_in_background_mode_a_thread_checkpoints_what_the_writer_committed(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger.open(f"sqlite:///{path}", sqlite_wal_checkpoints="background") as ledger:
        checkpointer = ledger.wal_checkpointer
        assert checkpointer is not None
        assert checkpointer.running
        # The writer's own connections only keep SQLite's checkpoint as a safety net.
        assert _autocheckpoint(ledger) == SAFETY_NET_PAGES
        ledger.write(*sample_batch(0, 5))
        ledger.write(*sample_batch(10, 5))
        with ledger.engine.connect() as conn:
            written = int(conn.exec_driver_sql("SELECT count(*) FROM ledger_documents")
                          .scalar_one())
        assert written == 10
        # Each checkpoint copies what was committed when it began: within a few of them the
        # database file alone holds every document.
        done, in_file = checkpointer.checkpoints, 0
        for attempt in range(1, 20):
            assert checkpointer.wait_for(done + attempt, WAIT_S)
            in_file = _documents_in_the_database_file(path, tmp_path / f"copy{attempt}")
            if in_file == written:
                break
        assert in_file == written
        assert checkpointer.failures == 0


def test_closing_the_ledger_stops_its_checkpoint_thread(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
                         sqlite_wal_checkpoints="background")
    checkpointer = ledger.wal_checkpointer
    assert checkpointer is not None
    ledger.close()
    assert not checkpointer.running


def test_inline_mode_leaves_checkpoints_to_sqlite_in_the_committing_connection(
        tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        assert ledger.wal_checkpointer is None
        assert _autocheckpoint(ledger) == 1000  # SQLite's default


def test_a_read_only_ledger_never_checkpoints_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(f"sqlite:///{path}").close()
    with Ledger.open(f"sqlite:///{path}", read_only=True,
                     sqlite_wal_checkpoints="background") as ledger:
        assert ledger.wal_checkpointer is None


def test_a_postgresql_ledger_has_no_wal_checkpoint_thread() -> None:
    with (fresh_schema() as url,
          Ledger.open(url, sqlite_wal_checkpoints="background") as ledger):
        assert ledger.wal_checkpointer is None
        ledger.write(*sample_batch(0, 2))


def test_an_unknown_checkpoint_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inline or background"):
        Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", sqlite_wal_checkpoints="often")


def test_a_checkpointer_whose_database_is_gone_creates_nothing_says_so_and_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "removed.sqlite3"
    checkpointer = WalCheckpointer(missing, interval_s=0.01)
    checkpointer.start()
    try:
        checkpointer.committed()
        assert checkpointer.wait_for(0, WAIT_S, failures=2)
        assert checkpointer.running
    finally:
        checkpointer.close()
    assert not missing.exists()
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if "ledger_wal_checkpoint_failed" in line]
    assert len(warnings) == 1  # said once, not per attempt
