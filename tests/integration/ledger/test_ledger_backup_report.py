"""Backup/restore round trips that still verify; the adoption report and its renderings."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from hub.ledger import DocumentIn, EventIn, EventKind, Ledger
from hub.ledger.backup import BackupError, backup, restore
from hub.ledger.report import adoption_report, render_csv, render_svg, render_table
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import T0, OperatorKey, envelope_bytes, sample_batch


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


def _write_adoption_sample(ledger: Ledger) -> None:
    ledger.write(*sample_batch(0, 3))  # three valid envelopes from 000.00.00.H27 in March
    for n, reason in ((10, Reason.CERT_PUBLIC_CA), (11, Reason.CERT_PUBLIC_CA),
                      (12, Reason.SIGNATURE_MISSING)):
        raw = envelope_bytes(n)
        digest = hashlib.sha256(raw).hexdigest()
        at = T0 + timedelta(days=31 * (n - 9))
        ledger.write(
            [DocumentIn("000.05.01.H27", str(n), digest, "envelope", raw, at)],
            [EventIn(EventKind.REJECTED, f"m{n}", at, digest, reason=reason)])


def test_the_adoption_report_counts_sent_valid_and_rejections(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write_adoption_sample(ledger)
        rows = adoption_report(ledger)
    by_key = {(r.organ_id, r.period): r for r in rows}
    valid = by_key[("000.00.00.H27", "2024-03")]
    assert (valid.sent, valid.signed_valid, valid.share_valid) == (3, 3, 1.0)
    april = by_key[("000.05.01.H27", "2024-04")]
    assert (april.sent, april.signed_valid) == (1, 0)
    assert april.rejections == {"CERT_PUBLIC_CA": 1}
    assert len(rows) == 4


def test_the_adoption_report_renders_as_table_csv_and_svg(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write_adoption_sample(ledger)
        rows = adoption_report(ledger, period="year")
    table = render_table(rows)
    assert "000.05.01.H27" in table
    assert "CERT_PUBLIC_CA=2" in table
    csv_text = render_csv(rows)
    assert "000.05.01.H27,2024,3,0,0.0000,CERT_PUBLIC_CA,2" in csv_text.splitlines()
    svg = render_svg(rows)
    assert svg.startswith("<svg")
    assert svg.count("<rect") == 2 * len(rows) + 1
