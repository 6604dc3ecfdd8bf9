"""``hub ledger …`` and ``hub evidence …`` end to end on a SQLite ledger."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.ledger import Ledger
from hub.ops.ledger_cli import EXIT_FAILED, EXIT_OK, main
from tests.integration.ledger.ledger_samples import OperatorKey, envelope_bytes, sample_batch


@pytest.fixture
def setup(tmp_path: Path, operator_key: OperatorKey) -> tuple[Path, Path, str]:
    """A config file, the operator certificate and the ledger URL, with 6 documents in it."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with Ledger.open(url, checkpoint_every=8, checkpoint_signer=operator_key.sign,
                     checkpoint_cert_pem=operator_key.cert_pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
    config = tmp_path / "hub.toml"
    config.write_text('[ledger]\nurl = "sqlite:///ledger.sqlite3"\nblob_dir = "blobs"\n')
    cert = tmp_path / "operator.pem"
    cert.write_bytes(operator_key.cert_pem)
    return config, cert, url


def test_ledger_verify_reports_ok_then_names_the_first_tampered_row(
    setup: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, cert, url = setup
    argv = ["ledger", "verify", "--config", str(config), "--operator-cert", str(cert)]
    assert main([*argv, "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["rows"] == 30
    ledger = Ledger.open(url)
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_events SET reason='X' WHERE seq=14"))
    ledger.close()
    assert main(argv) == EXIT_FAILED
    assert "FAILED at row 14" in capsys.readouterr().out


def test_ledger_query_finds_the_events_of_a_document(
    setup: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _cert, _url = setup
    assert main(["ledger", "query", "--config", str(config), "--document-id",
                 "000.00.00.H27,2024/03/01,2", "--json"]) == EXIT_OK
    events = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in events] == ["received", "validated", "delivered", "delivered"]
    assert main(["ledger", "query", "--config", str(config), "--documents",
                 "--organ", "000.02.01.H27"]) == EXIT_OK
    assert capsys.readouterr().out.count("UBND-VP") == 6


def test_ledger_report_writes_csv_and_svg(setup: tuple[Path, Path, str], tmp_path: Path) -> None:
    config, _cert, _url = setup
    for fmt in ("csv", "svg", "table", "json"):
        out = tmp_path / f"report.{fmt}"
        assert main(["ledger", "report", "--config", str(config), "--format", fmt,
                     "--output", str(out)]) == EXIT_OK
        assert "000.00.00.H27" in out.read_text(encoding="utf-8")


def test_ledger_backup_then_restore_verifies(
    setup: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _cert, _url = setup
    backup_zip = tmp_path / "backup.zip"
    assert main(["ledger", "backup", "--config", str(config), str(backup_zip)]) == EXIT_OK
    target = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    assert main(["ledger", "restore", "--config", str(config), "--url", target,
                 str(backup_zip)]) == EXIT_OK
    assert "restored 30 rows; chain: ok" in capsys.readouterr().out


def test_evidence_export_then_verify_offline(
    setup: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, cert, _url = setup
    bundle = tmp_path / "bundle.zip"
    assert main(["evidence", "export", "--config", str(config), "2/UBND-VP",
                 "--output", str(bundle)]) == EXIT_OK
    assert main(["evidence", "verify", str(bundle), "--operator-cert", str(cert)]) == EXIT_OK
    assert "ok: document " + hashlib.sha256(envelope_bytes(2)).hexdigest() in (
        capsys.readouterr().out)


def test_an_unknown_document_is_one_line_of_error(
    setup: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _cert, _url = setup
    assert main(["evidence", "export", "--config", str(config), "nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no document" in err
