"""``hub console user …``: accounts from the shell, passwords never on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from hub.console.users import UserStore
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


# -- a refused change is not in the ledger -----------------------------------------------------
# Each case: Given an account "nguyen" (made without the CLI, so the ledger starts empty), when
# the command is refused, then it says why in one line, exits 2, and the ledger holds no
# operator_action row (the audit row is written only for a change that is going to be made).

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
GOOD = "mật khẩu đủ dài lắm"


@dataclass(frozen=True)
class Refusal:
    argv: tuple[str, ...]
    password: str | None
    """Written to a file passed as ``--password-file`` (None: no password asked)."""
    error: str
    """What the last line of stderr says."""


REFUSALS = [
    pytest.param(Refusal(("add", "alice", "--role", "admin"), "short",
                         "hub: a password needs at least 10 characters"),
                 id="add with a short password"),
    pytest.param(Refusal(("add", "Bad Name!", "--role", "admin"), GOOD,
                         "hub: 'Bad Name!' is not a usable login name: 1 to 64 characters of "
                         "a-z, 0-9, '.', '-', '_', '@'"),
                 id="add with a bad name"),
    pytest.param(Refusal(("add", "alice", "--role", "root"), GOOD,
                         "hub console user add: error: argument --role: invalid choice: 'root'"),
                 id="add with a bad role"),
    pytest.param(Refusal(("add", "Nguyen", "--role", "auditor"), GOOD,
                         "hub: there is already an account 'nguyen'"),
                 id="add of an account that exists"),
    pytest.param(Refusal(("passwd", "nguyen"), "short",
                         "hub: a password needs at least 10 characters"),
                 id="passwd with a short password"),
    pytest.param(Refusal(("passwd", "alice"), GOOD, "hub: no account 'alice'"),
                 id="passwd of an unknown account"),
    pytest.param(Refusal(("role", "alice", "admin"), None, "hub: no account 'alice'"),
                 id="role of an unknown account"),
    pytest.param(Refusal(("disable", "alice"), None, "hub: no account 'alice'"),
                 id="disable of an unknown account"),
    pytest.param(Refusal(("enable", "alice"), None, "hub: no account 'alice'"),
                 id="enable of an unknown account"),
]


def operator_actions(tmp_path: Path) -> list[tuple[str, dict[str, str]]]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        return [(e.actor, dict(e.detail)) for e in ledger.events(kind=EventKind.OPERATOR_ACTION)]


@pytest.fixture
def nguyen(config: Path, tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    store.add("nguyen", "operator", GOOD)
    store.close()


@pytest.mark.usefixtures("nguyen")
@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_account_change_says_why_and_writes_no_ledger_row(
    case: Refusal, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "console", "user", *case.argv, "--actor", "root"]
    if case.password is not None:
        secret = tmp_path / "password"
        secret.write_text(case.password + "\n", encoding="utf-8")
        argv += ["--password-file", str(secret)]
    capsys.readouterr()

    code = main(argv)

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(case.error)
    assert operator_actions(tmp_path) == []
    store = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    try:
        assert [u.name for u in store.users()] == ["nguyen"]
        assert store.authenticate("nguyen", GOOD) is not None  # its password is unchanged
    finally:
        store.close()


def _state(tmp_path: Path, name: str) -> tuple[str, bool] | None:
    store = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    try:
        user = store.get(name)
        return None if user is None else (user.role.value, user.active)
    finally:
        store.close()


@pytest.mark.usefixtures("nguyen")
@pytest.mark.parametrize(("argv", "name", "action", "at_audit", "after"), [
    pytest.param(("add", "Thanh.Tra", "--role", "auditor"), "thanh.tra", "user_added",
                 None, ("auditor", True), id="add"),
    pytest.param(("role", "NGUYEN", "admin"), "nguyen", "role_changed",
                 ("operator", True), ("admin", True), id="role"),
    pytest.param(("disable", "nguyen"), "nguyen", "user_disabled",
                 ("operator", True), ("operator", False), id="disable"),
])
def test_an_accepted_account_change_is_in_the_ledger_before_it_is_made(
    argv: tuple[str, ...], name: str, action: str, at_audit: tuple[str, bool] | None,
    after: tuple[str, bool], config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a spy on the ledger that looks at the account when the audit row is written
    seen: list[tuple[str, bool] | None] = []
    write = Ledger.write

    def spy(self: Ledger, *a: Any, **kw: Any) -> Any:
        seen.append(_state(tmp_path, name))
        return write(self, *a, **kw)

    monkeypatch.setattr(Ledger, "write", spy)
    secret = tmp_path / "password"
    secret.write_text(GOOD + "\n", encoding="utf-8")
    extra = ["--password-file", str(secret)] if argv[0] == "add" else []

    # When the change is made from the shell
    assert main(["--config", str(config), "console", "user", *argv, "--actor", "root",
                 *extra]) == 0

    # Then the row, with the account's canonical name, was written before the change
    assert seen == [at_audit]
    assert _state(tmp_path, name) == after
    [(actor, detail)] = operator_actions(tmp_path)
    assert (actor, detail["action"], detail["user"]) == ("root", action, name)


@pytest.mark.parametrize("value", ["99999", "0", "-1", "http", "8470.5"])
def test_a_port_out_of_range_is_one_line_and_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    # When the console is to be served on a port no socket can have
    code = main(["--config", str(config), "console", "serve", f"--port={value}"])
    # Then one line says so, exit 2, before anything is opened
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "is not a TCP port (1 to 65535)" in err[0]
