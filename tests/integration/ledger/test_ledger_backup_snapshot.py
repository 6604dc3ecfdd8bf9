"""A backup is one snapshot of the ledger even while a hub keeps writing to it: every table and
the head in ``backup.json`` are read as of one instant, so the backup restores and verifies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table

from hub.ledger import Ledger
from hub.ledger import backup as backup_module
from hub.ledger.backup import backup, restore
from hub.ledger.models import Document
from tests.integration.ledger.ledger_samples import sample_batch


def test_a_backup_taken_while_the_hub_commits_restores_and_verifies(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ledger with rows in it, and a second connection writing as a running hub does
    with Ledger.open(ledger_url) as writer:
        writer.write(*sample_batch(0, 2))
        before = writer.head()
        reader = Ledger.open(ledger_url, read_only=True, must_exist=True)
        encode = backup_module._encode
        committed: list[int] = []

        def commit_between_reads(table: Table, row: Any) -> dict[str, Any]:
            # The head's table is read: a batch is committed before the documents are.
            if table is Document.__table__ and not committed:
                writer.write(*sample_batch(2, 1))
                committed.append(writer.head()[0])
            return encode(table, row)

        monkeypatch.setattr(backup_module, "_encode", commit_between_reads)
        # When a backup is taken meanwhile
        with reader:
            counts = backup(reader, tmp_path / "backup.zip")
        assert len(committed) == 1  # the write landed mid-backup
        assert committed[0] > before[0]
    # Then it holds the ledger as it was when it began, and restores into one that verifies
    assert counts["ledger_documents"] == 2
    target_url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    with Ledger.open(target_url) as target:
        restore(tmp_path / "backup.zip", target)
        assert target.head() == before
        result = target.verify()
        assert result.ok, result.problem
        assert result.rows == before[0]
