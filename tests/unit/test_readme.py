"""The README stays true: its configuration and reason tables match the code."""

from __future__ import annotations

from pathlib import Path

from hub.testing.readme import sync

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_tables_match_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    assert sync(text) == text, "run: python -m hub.testing.readme"


def test_the_readme_tables_are_there_not_only_their_markers() -> None:
    text = README.read_text(encoding="utf-8")
    config = text.split("<!-- BEGIN config -->", 1)[1].split("<!-- END config -->", 1)[0]
    reasons = text.split("<!-- BEGIN reasons -->", 1)[1].split("<!-- END reasons -->", 1)[0]
    assert "| `url` |" in config
    assert "`SIGNATURE_INVALID`" in reasons


def test_an_empty_section_is_filled() -> None:
    filled = sync("a\n<!-- BEGIN config -->\n<!-- END config -->\nb\n")
    assert "| `url` |" in filled
    assert sync(filled) == filled


def test_the_readme_names_exactly_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "bin/demo" in text
    assert "bin/test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "bin/test" in ci
