"""Backup/restore round trips that still verify."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub.ledger import DocumentIn, Ledger
from hub.ledger.backup import BackupError, backup, restore
from hub.ledger.subscribers import export_registry, history, import_registry
from tests.integration.ledger.ledger_samples import T0, OperatorKey, envelope_bytes, sample_batch
from tests.integration.ledger.test_subscribers_registry import AN, BINH, SEAL, sheet


def test_a_restored_ledger_verifies(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path
) -> None:
    # Given a ledger holding a packet in the blob store too
    raw = envelope_bytes(99, size=2_000_000)
    digest = hashlib.sha256(raw).hexdigest()
    signed_ledger.write([DocumentIn("A", "big", digest, "envelope", raw, T0)], [])
    counts = backup(signed_ledger, tmp_path / "backup.zip")
    assert counts["ledger_documents"] == 7
    # When it is restored into a fresh SQLite ledger
    target_url = f"sqlite:///{tmp_path / 'restored' / 'ledger.sqlite3'}"
    with Ledger.open(target_url, blob_dir=tmp_path / "restored" / "blobs") as target:
        restore(tmp_path / "backup.zip", target)
        # Then it verifies, signatures included, and holds the same head and bytes
        result = target.verify(verify_signature=operator_key.check, require_signed=True)
        assert result.ok, result.problem
        assert target.head() == signed_ledger.head()
        assert target.raw(digest) == raw
        # and refuses a second restore on top
        with pytest.raises(BackupError, match="not empty"):
            restore(tmp_path / "backup.zip", target)


def test_a_sqlite_backup_restores_into_the_ledger_under_test(
    tmp_path: Path, ledger_url: str
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    with Ledger.open(source_url) as source:
        source.write(*sample_batch(0, 5))
        backup(source, tmp_path / "b.zip")
    with Ledger.open(ledger_url) as target:
        restore(tmp_path / "b.zip", target)
        assert target.verify().rows == 25
        assert len(target.documents()) == 5


def test_the_subscriber_registry_and_its_history_survive_a_backup_and_restore(
    tmp_path: Path, ledger_url: str
) -> None:
    # Given a ledger whose certificate office imported its registry twice (a change recorded)
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    with Ledger.open(source_url) as source:
        source.write(*sample_batch(0, 2))
        import_registry(source, sheet(AN, BINH, SEAL), source="thang-1.csv")
        import_registry(source, sheet(AN.replace("đã bàn giao", "thu hồi"), BINH, SEAL),
                        source="thang-2.csv")
        before = (export_registry(source, headers="en"), [h.to_dict() for h in history(source)])
        backup(source, tmp_path / "b.zip")
    # When it is restored (SQLite and PostgreSQL)
    with Ledger.open(ledger_url) as target:
        restore(tmp_path / "b.zip", target)
        # Then the registry, its dates and every recorded change are as they were
        after = (export_registry(target, headers="en"), [h.to_dict() for h in history(target)])
        assert after == before
        assert len(before[1]) > 3
