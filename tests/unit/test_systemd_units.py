"""The systemd units of deploy/systemd/ say and do what the operator expects of them."""

from __future__ import annotations

import configparser
from pathlib import Path

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text(encoding="utf-8"))
    return parser


def test_the_nightly_backup_runs_with_a_umask_that_keeps_its_files_private() -> None:
    # (the backup holds every document's exact bytes; hub.ledger.backup makes its own file
    # 0600 too, this covers anything else the run creates)
    service = _unit("edxml-hub-ledger-backup.service")["Service"]
    assert service["UMask"] == "0077"


def test_the_crl_refresh_unit_does_not_claim_to_write_crl_files() -> None:
    # `hub doctor` reads the CRL files and fetches the distribution points in memory: it writes
    # no file, so the unit must not promise fresh files in [trust] crls.
    text = (UNITS / "edxml-hub-crl-refresh.service").read_text(encoding="utf-8")
    assert "into /etc/edxml-hub/trust/crls" not in text
    assert "writes no file" in text
    assert _unit("edxml-hub-crl-refresh.service")["Service"]["ExecStart"].endswith(" doctor")


def test_the_consumer_creates_its_ledger_and_blobs_readable_by_its_account_only() -> None:
    # The live SQLite ledger and the blob store hold every document's exact bytes: with
    # systemd's default umask (0022) they would be world-readable (hub.ledger.blobs makes its
    # own files 0600 too; this covers the ledger file, its WAL and anything else it creates).
    service = _unit("edxml-hub@.service")["Service"]
    assert service["UMask"] == "0077"
    assert service["StateDirectory"] == "edxml-hub"
    assert service["StateDirectoryMode"] == "0700"
