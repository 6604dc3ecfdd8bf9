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
