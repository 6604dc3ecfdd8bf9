"""The canonical encoding and hash chain (pure; no database)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub.ledger import chain


def test_canonical_json_sorts_keys_without_spaces_and_keeps_unicode() -> None:
    assert chain.canonical_json({"b": 1, "a": "Hà Tĩnh"}) == '{"a":"Hà Tĩnh","b":1}'.encode()


def test_a_float_never_reaches_the_canonical_form() -> None:
    assert chain.canonical_text({"score": 0.5, "n": 2}) == '{"n":2,"score":"0.5"}'


def test_timestamps_are_utc_with_six_fraction_digits() -> None:
    hanoi = timezone(timedelta(hours=7))
    assert chain.utc_text(datetime(2024, 3, 1, 15, 0, tzinfo=hanoi)) == (
        "2024-03-01T08:00:00.000000Z")
    with pytest.raises(ValueError, match="timezone"):
        chain.utc_text(datetime(2024, 3, 1))


def test_a_link_hashes_the_previous_link_and_the_entry_hash_as_bytes() -> None:
    entry = chain.event_entry(seq=1, kind="received", message_id="m", at="2024-03-01T08:00:00"
                              ".000000Z", digest=None, organ_id=None, reason=None, actor="hub",
                              detail="{}")
    entry_hash = hashlib.sha256(chain.canonical_json(entry)).hexdigest()
    assert chain.entry_hash(entry) == entry_hash
    assert chain.link(chain.GENESIS, entry_hash) == hashlib.sha256(
        bytes(32) + bytes.fromhex(entry_hash)).hexdigest()


def test_changing_any_field_changes_the_entry_hash() -> None:
    base = {"seq": 3, "kind": "delivered", "message_id": "m", "at": "t", "digest": "d",
            "organ_id": "o", "reason": None, "actor": "hub", "detail": "{}"}
    reference = chain.entry_hash(chain.event_entry(**base))  # type: ignore[arg-type]
    for key in base:
        changed = dict(base, **{key: 4 if key == "seq" else "x"})
        assert chain.entry_hash(chain.event_entry(**changed)) != reference, key  # type: ignore[arg-type]


def test_the_checkpoint_payload_is_canonical_json() -> None:
    payload = chain.checkpoint_payload(1000, "ab" * 32, "2024-03-01T08:00:00.000000Z")
    assert payload.startswith(b'{"at":"2024-03-01T08:00:00.000000Z","head":"abab')
    assert b'"ledger":"edxml-hub","seq":1000,"type":"checkpoint","v":1}' in payload


def test_the_ledger_package_never_imports_pika() -> None:
    code = ("import sys, hub.ledger, hub.ledger.evidence, hub.ledger.report, hub.ledger.backup, "
            "hub.ops.ledger_cli; print('pika' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_utc_now_round_trips() -> None:
    now = datetime.now(UTC)
    assert datetime.fromisoformat(chain.utc_text(now).replace("Z", "+00:00")) == now
