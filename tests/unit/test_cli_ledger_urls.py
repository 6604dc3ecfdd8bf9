"""A ledger URL the database layer cannot use is a configuration error (exit 3) in one line.

Every command that opens the ledger says so the same way, whether it only reads it (``ledger
verify``), creates or migrates it (``ledger migrate``, ``ledger restore``) or serves from it
(``api serve``): never ``internal error`` (exit 70), never the driver's multi-line message,
never the password. A database that is merely down stays "unavailable" (exit 4).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hub.ops.cli import EXIT_CONFIG, EXIT_UNAVAILABLE, main

# The URL's password, which must never be printed.
PASSWORD = "s3cret-pw"

UNUSABLE_URLS = {
    "not a URL": "foo",
    "an unknown driver": f"postgresql+nosuchdriver://nobody:{PASSWORD}@127.0.0.1:5432/nonedb",
    # psycopg2 refuses an unknown option with a message of three lines (SQLAlchemy's
    # "Background on this error" paragraph).
    "an option the driver refuses":
        f"postgresql+psycopg2://nobody:{PASSWORD}@127.0.0.1:5432/nonedb?bogus=1",
    # SQLAlchemy maps a plain postgresql:// to psycopg 3, which the hub does not install.
    "a driver that is not installed": f"postgresql://nobody:{PASSWORD}@127.0.0.1:5432/nonedb",
}

COMMANDS = {
    "ledger verify": ["ledger", "verify"],
    "ledger migrate": ["ledger", "migrate"],
    "ledger restore": ["ledger", "restore", "backup.zip"],
    "api serve": ["api", "serve"],
}


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f"[broker]\nurl = 'amqp://guest:guest@127.0.0.1:1/'\n"
                    f"[ledger]\nurl = '{url}'\n"
                    f"[api]\nstate_dir = '{tmp_path / 'api-state'}'\n", encoding="utf-8")
    return path


def _command(command: str, tmp_path: Path) -> list[str]:
    """The command's arguments; a restore gets a real backup (of an empty ledger): it reads
    the backup before it opens the target."""
    if command != "ledger restore":
        return COMMANDS[command]
    from hub.ledger import Ledger
    from hub.ledger.backup import backup

    with Ledger.open(f"sqlite:///{tmp_path / 'source.sqlite3'}") as source:
        backup(source, tmp_path / "backup.zip")
    return [str(tmp_path / a) if a == "backup.zip" else a for a in COMMANDS[command]]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("problem", sorted(UNUSABLE_URLS))
def test_an_unusable_ledger_url_is_one_configuration_line_with_exit_code_3(
    problem: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if problem == "a driver that is not installed" and importlib.util.find_spec("psycopg"):
        pytest.skip("psycopg 3 is installed here: postgresql:// is a usable URL")
    # Given settings whose ledger URL the database layer cannot use
    config = _config(tmp_path, UNUSABLE_URLS[problem])
    # When a command opens the ledger
    code, err = _run(["--config", str(config), *_command(command, tmp_path)], capsys)
    # Then it says so in one line, as a configuration error, without the password
    assert code == EXIT_CONFIG, err
    assert len(err) == 1, err
    assert err[0].startswith("hub: configuration:"), err
    assert "cannot open the ledger" in err[0]
    assert "internal error" not in err[0]
    assert PASSWORD not in err[0]


@pytest.mark.parametrize("command", ["ledger migrate", "ledger restore"])
def test_a_database_that_does_not_answer_is_still_unavailable_not_a_configuration_error(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a usable URL of a PostgreSQL server that is not there (nothing listens on port 1)
    config = _config(tmp_path, f"postgresql+psycopg2://nobody:{PASSWORD}@127.0.0.1:1/nonedb")
    # When a command that creates or migrates the ledger runs
    code, err = _run(["--config", str(config), *_command(command, tmp_path)], capsys)
    # Then the database is unavailable (exit 4): the settings may well be right
    assert code == EXIT_UNAVAILABLE, err
    assert len(err) == 1, err
    assert PASSWORD not in err[0]
