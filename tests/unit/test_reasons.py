"""Every reason code has a Vietnamese and an English text and an operator action."""

from __future__ import annotations

import re

import pytest

from hub.reasons import CATALOGUE, Reason, render_markdown


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_every_reason_code_has_both_texts_and_an_action(reason: Reason) -> None:
    info = CATALOGUE[reason]
    assert info.vi.strip()
    assert info.en.strip()
    assert info.action.strip()
    assert info.vi != info.en


def test_reason_codes_are_stable_upper_snake_case_strings() -> None:
    for reason in Reason:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", reason.value)
        assert reason.value == reason.name


def test_the_readme_table_lists_every_code() -> None:
    table = render_markdown()
    for reason in Reason:
        assert f"`{reason.value}`" in table
