"""``hub api credentials``: a secret is shown once and stored only as a hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.ops.cli import EXIT_USAGE, main


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f"[api]\ncredentials_file = '{tmp_path / 'creds.toml'}'\n", encoding="utf-8")
    return path


def test_adding_a_system_prints_its_secret_once_and_listing_never_does(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(cfg), "api", "credentials", "add", "stc-eoffice",
                 "--organization", "H27.03"]) == 0
    out = capsys.readouterr().out
    secret = out.split("secret ", 1)[1].split()[0]
    assert secret not in (tmp_path / "creds.toml").read_text()
    assert main(["--config", str(cfg), "api", "credentials", "ls"]) == 0
    listed = capsys.readouterr().out
    assert "stc-eoffice  000.00.03.H27" in listed  # stored under the primary code
    assert secret not in listed


def test_a_system_for_a_body_the_hub_does_not_serve_is_refused_in_one_line(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(cfg), "api", "credentials", "add", "x",
                 "--organization", "000.00.00.G09"])  # a ministry, reached through the axis
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1
    assert "not a body this hub serves" in err[0]


@pytest.mark.parametrize(("value", "says"), [
    ("1e400d", "too long"),        # a float infinity
    ("99999999999d", "too long"),  # more days than a timedelta holds
    ("9999999d", "too long"),      # a timedelta, but the old secret's end is past the year 9999
    ("nand", "not a duration"),
    ("-1d", "not a duration"),
], ids=["infinite", "more than a timedelta", "past the year 9999", "NaN", "negative"])
def test_a_keep_old_for_that_is_not_a_usable_duration_is_one_usage_line(
    value: str, says: str, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(cfg), "api", "credentials", "rotate", "stc-eoffice",
                 f"--keep-old-for={value}"])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1, err
    assert "Traceback" not in captured.err + captured.out
    assert value in err[0]
    assert says in err[0]


def test_a_rotation_kept_for_a_week_prints_the_new_secret(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(cfg), "api", "credentials", "add", "stc-eoffice",
                 "--organization", "H27.03"]) == 0
    capsys.readouterr()
    assert main(["--config", str(cfg), "api", "credentials", "rotate", "stc-eoffice",
                 "--keep-old-for", "7d"]) == 0
    assert "system stc-eoffice: secret " in capsys.readouterr().out
