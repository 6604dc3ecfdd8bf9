"""A ledger backup holds every document's exact bytes: it is readable by its owner alone, whatever
the umask (the nightly unit's default was 0022), and so is a directory the backup creates."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ledger.backup import backup
from hub.ops.cli import main
from tests.integration.ledger.ledger_samples import sample_batch


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask of a default systemd service (0022): files world-readable unless asked."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_a_backup_and_the_directory_it_creates_are_readable_by_their_owner_only(
    tmp_path: Path, ledger_url: str
) -> None:
    with Ledger.open(ledger_url) as ledger:
        ledger.write(*sample_batch(0, 2))
        backup(ledger, tmp_path / "backups" / "nightly" / "ledger.zip")
    assert _mode(tmp_path / "backups" / "nightly") == 0o700
    assert _mode(tmp_path / "backups" / "nightly" / "ledger.zip") == 0o600


@pytest.mark.usefixtures("open_umask")
def test_a_backup_written_over_a_readable_file_is_made_private_before_it_is_written(
    tmp_path: Path, ledger_url: str
) -> None:
    # Given an older file at the path, readable by everyone
    target = tmp_path / "ledger.zip"
    target.write_bytes(b"old")
    target.chmod(0o644)
    with Ledger.open(ledger_url) as ledger:
        ledger.write(*sample_batch(0, 1))
        backup(ledger, target)
    assert _mode(target) == 0o600
    assert target.read_bytes()[:2] == b"PK"


@pytest.mark.usefixtures("open_umask")
def test_hub_ledger_backup_on_the_command_line_writes_a_private_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with Ledger.open(url) as ledger:
        ledger.write(*sample_batch(0, 1))
    config = tmp_path / "hub.toml"
    config.write_text(f'[ledger]\nurl = "{url}"\n', encoding="utf-8")
    out = tmp_path / "backups" / "ledger-x.zip"
    assert main(["--config", str(config), "ledger", "backup", str(out)]) == 0
    capsys.readouterr()
    assert _mode(out.parent) == 0o700
    assert _mode(out) == 0o600
