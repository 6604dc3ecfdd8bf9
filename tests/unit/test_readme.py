"""The README stays true: its configuration and reason tables match the code."""

from __future__ import annotations

from pathlib import Path

from hub._readme import sync

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_tables_match_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    assert sync(text) == text, "run: python -m hub._readme"


def test_the_readme_names_exactly_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "bin/demo" in text
    assert "bin/test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "bin/test" in ci
