"""``hub axis sync-directory`` against the axis simulator: a code the axis gives to another body
is held back and the command says so with exit 1 (a scheduled sync does not pass over it);
``--rebind`` applies it, still reporting the move."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.directory import Directory
from hub.ops.cli import main
from hub.testing.axis_sim import AxisSimulator
from tests.integration.axis.harness import SECRET, SYSTEM_ID

HEALTH = {"id": "G12", "code": "G12", "code102": "000.00.00.G12", "name": "Bộ Y tế"}
CONSTRUCTION = {"id": "G11", "code": "G11", "code102": "000.00.00.G11", "name": "Bộ Xây dựng"}
# The axis now lists the construction ministry's legacy code under the health ministry
MOVED = [{**HEALTH, "code102": "000.00.00.G11"}, {**CONSTRUCTION, "code102": ""}]


def settings_for(tmp_path: Path, sim: AxisSimulator, directory: Path | None) -> Path:
    secret = tmp_path / "axis.secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    config = tmp_path / f"hub-{directory.stem if directory else 'sample'}.toml"
    hub = f"[hub]\ndirectory = '{directory}'\n" if directory else ""
    config.write_text(f"{hub}[axis]\nurl = '{sim.url}'\nsystem_id = '{SYSTEM_ID}'\n"
                      f"secret_file = '{secret}'\nverify_tls = false\n", encoding="utf-8")
    return config


def sync(config: Path, output: Path, capsys: pytest.CaptureFixture[str], *extra: str
         ) -> tuple[int, str, list[str]]:
    code = main(["--config", str(config), "axis", "sync-directory", str(output), *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def test_a_code_the_axis_moves_to_another_body_is_held_with_exit_1_until_rebind(
    sim: AxisSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a directory synced once with both ministries
    sim.set_agencies([HEALTH, CONSTRUCTION])
    first = tmp_path / "first.toml"
    code, _out, err = sync(settings_for(tmp_path, sim, None), first, capsys)
    assert (code, err) == (0, [])
    # When the axis gives 000.00.00.G11 to the health ministry
    sim.set_agencies(MOVED)
    held = tmp_path / "held.toml"
    code, out, err = sync(settings_for(tmp_path, sim, first), held, capsys)
    # Then the file is written with the code where it was, the report names the move, exit 1
    assert code == 1
    assert "NOT applied" in out
    # (the bodies the move touches are named too: each of their codes)
    assert len(err) == 1
    assert err[0].startswith("hub: 3 code(s) the axis gives to another body were not moved;")
    assert "run again with --rebind" in err[0]
    entry = Directory.from_toml(held.read_text("utf-8")).find("000.00.00.G11")
    assert entry is not None
    assert entry.name == "Bộ Xây dựng"
    # And with --rebind the move is applied and still reported, exit 0
    rebound = tmp_path / "rebound.toml"
    code, out, err = sync(settings_for(tmp_path, sim, first), rebound, capsys, "--rebind")
    assert (code, err) == (0, [])
    assert "000.00.00.G11" in out
    entry = Directory.from_toml(rebound.read_text("utf-8")).find("000.00.00.G11")
    assert entry is not None
    assert entry.name == "Bộ Y tế"
