"""``hub console user …``: accounts from the shell, passwords never on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.ledger import EventKind, Ledger
from hub.ops.cli import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f"[ledger]\nurl = 'sqlite:///{tmp_path / 'ledger.sqlite3'}'\n"
                    f"[console]\nusers = '{tmp_path / 'users.sqlite3'}'\n", encoding="utf-8")
    return path


def test_an_account_is_added_from_a_password_file_listed_disabled_and_recorded(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "password"
    secret.write_text("mật khẩu đủ dài lắm\n", encoding="utf-8")
    c = ["--config", str(config), "console", "user"]
    assert main([*c, "add", "nguyen", "--role", "operator", "--password-file", str(secret),
                 "--actor", "root"]) == 0
    assert main([*c, "disable", "nguyen", "--actor", "root"]) == 0
    assert main([*c, "ls"]) == 0
    out = capsys.readouterr().out
    assert "nguyen" in out
    assert "disabled" in out
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        done = [(e.actor, dict(e.detail)["action"]) for e in ledger.events(
            kind=EventKind.OPERATOR_ACTION)]
    assert done == [("root", "user_added"), ("root", "user_disabled")]


def test_without_a_terminal_or_a_password_file_no_account_is_added(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(config), "console", "user", "add", "nguyen", "--role",
                 "auditor"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["hub: no terminal to type the password on: give --password-file FILE "
                   "(or - for standard input)"]
    assert main(["--config", str(config), "console", "user", "ls"]) == 0
    assert "nguyen" not in capsys.readouterr().out
