"""A file the hub must read as text but that is not UTF-8 is one line with its exit code.

The settings file (given with ``--config`` or ``HUB_CONFIG``) and the directory it names are
the operator's: a Windows-1258 or Latin-1 copy of them is a mistake to name, never an
``internal error`` (exit 70).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.ops.cli import EXIT_CONFIG, EXIT_USAGE, main

NOT_UTF8 = b"\xff\xfe"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize("via", ["--config", "HUB_CONFIG"])
def test_a_settings_file_that_is_not_utf8_is_one_configuration_line_with_exit_code_3(
    via: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a settings file that is not UTF-8
    config = tmp_path / "hub.toml"
    config.write_bytes(NOT_UTF8)
    if via == "HUB_CONFIG":
        monkeypatch.setenv("HUB_CONFIG", str(config))
        argv = ["doctor"]
    else:
        monkeypatch.delenv("HUB_CONFIG", raising=False)
        argv = ["--config", str(config), "doctor"]
    # When a command loads it
    code, err = _run(argv, capsys)
    # Then one line names the file and the problem: a configuration error
    assert code == EXIT_CONFIG, err
    assert len(err) == 1, err
    assert err[0].startswith(f"hub: configuration: {config}: "), err
    assert "not UTF-8" in err[0]


def test_a_configured_directory_that_is_not_utf8_stops_sync_directory_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given settings for the axis whose [hub] directory is not UTF-8 (nothing listens on port 1:
    # the directory is read before the axis is asked)
    (tmp_path / "directory.toml").write_bytes(NOT_UTF8)
    (tmp_path / "axis-secret").write_text("secret\n", encoding="utf-8")
    config = tmp_path / "hub.toml"
    config.write_text("[hub]\ndirectory = 'directory.toml'\n"
                      "[axis]\nurl = 'http://127.0.0.1:1/'\nsystem_id = 'sys'\n"
                      "secret_file = 'axis-secret'\n", encoding="utf-8")
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    output = tmp_path / "out.toml"
    # When the directory is synchronized with the axis
    code, err = _run(["--config", str(config), "axis", "sync-directory", str(output)], capsys)
    # Then one line names the file, with the code of the same file's other read errors
    assert code == EXIT_USAGE, err
    assert len(err) == 1, err
    assert err[0].startswith(f"hub: {tmp_path / 'directory.toml'}: "), err
    assert "not UTF-8" in err[0]
    assert not output.exists()
