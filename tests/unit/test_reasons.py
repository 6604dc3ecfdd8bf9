"""Every reason code has a Vietnamese and an English text and an operator action."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.reasons import CATALOGUE, Reason


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_every_reason_code_has_both_texts_and_an_action(reason: Reason) -> None:
    info = CATALOGUE[reason]
    assert info.vi.strip()
    assert info.en.strip()
    assert info.action.strip()
    assert info.vi != info.en


RELEASED = Path(__file__).resolve().parents[1] / "data" / "released_reason_codes.txt"
README = Path(__file__).resolve().parents[2] / "README.md"


def _released() -> list[str]:
    return [line.strip() for line in RELEASED.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def test_reason_codes_are_upper_snake_case_strings_named_as_their_value() -> None:
    for reason in Reason:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", reason.value)
        assert reason.value == reason.name


@pytest.mark.parametrize("code", _released())
def test_a_released_reason_code_is_never_renamed_or_removed(code: str) -> None:
    # The codes are in the ledger, in dead-letter headers and in signed receipts: once
    # released (listed in tests/data/released_reason_codes.txt) a code exists forever.
    assert Reason(code).value == code


def test_every_reason_code_is_released_on_purpose() -> None:
    # A new code is added to the released list in the same change: it becomes a promise.
    assert sorted(r.value for r in Reason) == sorted(_released())


def test_the_readme_reason_table_documents_every_code_with_its_texts() -> None:
    section = README.read_text(encoding="utf-8").split("<!-- BEGIN reasons -->")[1]
    section = section.split("<!-- END reasons -->")[0]
    rows = {cells[0].strip("` "): cells for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
             if line.startswith("| `"))}
    assert sorted(rows) == sorted(r.value for r in Reason)
    for reason in Reason:
        assert rows[reason.value][1] == reason.vi
        assert rows[reason.value][2] == reason.en
