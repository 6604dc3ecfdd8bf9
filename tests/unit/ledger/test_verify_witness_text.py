"""``hub ledger verify --expect SEQ:HASH``: what an auditor noted is read strictly."""

from __future__ import annotations

import pytest

from hub.ledger.verify import witness

HASH = "0123456789abcdef" * 4


def test_a_row_and_its_chain_hash_are_read_and_the_hash_lowercased() -> None:
    assert witness(f"76:{HASH.upper()}") == (76, HASH)
    assert witness(f" 1:{HASH} ") == (1, HASH)


@pytest.mark.parametrize("text", [
    HASH, f"0:{HASH}", f"-3:{HASH}", f"x:{HASH}", "76:", f"76:{HASH[:-1]}", f"76:{HASH}00",
    f"76:{HASH[:-1]}g", f"٣:{HASH}",
], ids=["no row", "row 0", "negative row", "not a number", "no hash", "short hash",
        "long hash", "not hex", "non-ASCII digit"])
def test_anything_else_is_refused_with_the_form_it_should_have(text: str) -> None:
    with pytest.raises(ValueError, match="SEQ:HASH"):
        witness(text)
