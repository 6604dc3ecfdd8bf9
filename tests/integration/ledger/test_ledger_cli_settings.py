"""``hub``'s ledger commands and their inputs: the global ``--config`` is the settings of
``evidence verify`` as of every other ledger command, and a restore reads its backup before it
touches — let alone creates — the target ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.ledger import Ledger
from hub.ledger.urls import sqlite_file
from hub.ops.cli import EXIT_OK, EXIT_USAGE, main
from tests.integration.ledger.ledger_samples import sample_batch
from tests.integration.ledger.operator_certs import OPERATOR, from_signer
from tests.pki_fixtures import GeneratedPki


def test_the_global_config_gives_evidence_verify_its_operator_trust_anchors(
    tmp_path: Path, pki: GeneratedPki, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a ledger whose checkpoints the operator signed, and settings naming the operator's
    # CA and organization
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    db = tmp_path / "ledger.sqlite3"
    operator = from_signer(pki.org(OPERATOR))
    with Ledger.open(f"sqlite:///{db}", checkpoint_every=8, checkpoint_signer=operator.sign,
                     checkpoint_cert_pem=operator.pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
    config = tmp_path / "hub.toml"
    config.write_text(f"[ledger]\nurl = 'sqlite:///{db}'\n"
                      f"[trust]\nroots = ['{pki.paths.root_cert}']\n"
                      f"intermediates = ['{pki.paths.issuing_ca_cert}']\n"
                      f"[hub]\noperator_organ_id = '{OPERATOR}'\n", encoding="utf-8")
    bundle = tmp_path / "bundle.zip"
    assert main(["--config", str(config), "evidence", "export", "2/UBND-VP",
                 "--output", str(bundle)]) == EXIT_OK
    capsys.readouterr()
    # When an auditor verifies the bundle with the hub's global --config
    code = main(["--config", str(config), "evidence", "verify", str(bundle)])
    # Then the settings' anchors judge the signer, as `ledger verify --config` would
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.startswith("ok: document ")
    assert "UNVERIFIED" not in captured.out
    assert "no operator trust anchor" not in captured.err


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return list(conn.scalars(text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema()")))
            return list(conn.scalars(text("SELECT name FROM sqlite_master")))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backup", ["missing", "not a zip", "a directory"])
def test_a_restore_from_a_backup_it_cannot_read_leaves_the_target_as_it_was(
    backup: str, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a backup path that is no readable backup, and no ledger at the target yet
    path = tmp_path / "backup.zip"
    if backup == "not a zip":
        path.write_bytes(b"PK\x03\x04 not really")
    elif backup == "a directory":
        path.mkdir()
    config = tmp_path / "hub.toml"
    config.write_text(f"[ledger]\nblob_dir = '{tmp_path / 'blobs'}'\n", encoding="utf-8")
    # When it is restored into the target
    code = main(["--config", str(config), "ledger", "restore", str(path), "--url", ledger_url])
    # Then the restore is refused in one line naming the file
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1, err
    assert err[0].startswith(f"hub: {path}: not a ledger backup")
    # and the target was neither created nor migrated
    db = sqlite_file(ledger_url)
    if db is not None:
        assert not db.exists()
    else:
        assert _tables(ledger_url) == []
