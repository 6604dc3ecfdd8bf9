"""The acceptance mutation suite: every kind of tampering is caught by ``verify``.

The ledger (fixture ``signed_ledger``) holds 30 entries: 6 envelopes, each followed by its
events, written in three batches, with signed checkpoints at rows 10, 20 and 30 (one write is
10 entries). Each case tampers with the database directly, as an operator with SQL access could.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, select, text, update

from hub.ledger import Ledger, chain
from hub.ledger.models import Checkpoint, Document, Event
from hub.ledger.verify import document_entry_from_row, entries, event_entry_from_row
from tests.integration.ledger.ledger_samples import OperatorKey


def rehash_from(conn: Connection, start: int) -> str:
    """The clever attacker: recompute every hash from ``start`` on so the links agree."""
    link = chain.GENESIS
    for seq, kind, row in list(entries(conn, 10**9)):
        if seq >= start:
            is_doc = kind == "document"
            entry = document_entry_from_row(row) if is_doc else event_entry_from_row(row)
            entry_hash = chain.entry_hash(entry)
            link = chain.link(link, entry_hash)
            table = Document if is_doc else Event
            conn.execute(update(table).where(table.seq == seq)
                         .values(entry_hash=entry_hash, chain_hash=link))
        else:
            link = row.chain_hash
    conn.execute(text("UPDATE ledger_head SET chain_hash=:c"), {"c": link})
    return link


def edit_an_event(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_events SET organ_id='000.99.99.H27' WHERE seq=14"))


def edit_a_document(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_documents SET sender='000.99.99.H27' WHERE seq=11"))


def edit_a_report(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_documents SET report=:r WHERE seq=11"),
                 {"r": '{"accepted":false}'})


def edit_and_rehash_one_row(conn: Connection) -> None:
    edit_an_event(conn)
    row = next(r for s, _k, r in entries(conn, 14) if s == 14)
    entry_hash = chain.entry_hash(event_entry_from_row(row))
    prev = next(r for s, _k, r in entries(conn, 13) if s == 13).chain_hash
    conn.execute(text("UPDATE ledger_events SET entry_hash=:e, chain_hash=:c WHERE seq=14"),
                 {"e": entry_hash, "c": chain.link(prev, entry_hash)})


def edit_and_rehash_the_whole_tail(conn: Connection) -> None:
    edit_an_event(conn)
    rehash_from(conn, 14)


def delete_a_row(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_events WHERE seq=14"))


def reorder_two_rows(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_events SET seq=-1 WHERE seq=14"))
    conn.execute(text("UPDATE ledger_events SET seq=14 WHERE seq=15"))
    conn.execute(text("UPDATE ledger_events SET seq=15 WHERE seq=-1"))


def truncate_the_tail(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_events WHERE seq > 25"))


def truncate_and_fix_the_head(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_events WHERE seq > 25"))
    last = conn.execute(text("SELECT chain_hash FROM ledger_events WHERE seq=25")).scalar_one()
    conn.execute(text("UPDATE ledger_head SET seq=25, chain_hash=:c"), {"c": last})


def forge_a_checkpoint_head(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_checkpoints SET head=:h WHERE seq=20"), {"h": "ab" * 32})


def forge_a_checkpoint_signature(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_checkpoints SET signature=:s WHERE seq=20"),
                 {"s": b"\x00" * 256})


def remove_the_latest_checkpoint(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_checkpoints WHERE seq=30"))


def swap_envelope_bytes(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_documents SET raw=:r WHERE seq=11"),
                 {"r": b"<edXMLEnvelope n='forged'/>"})


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable[[Connection], None]
    first_bad_row: int
    words: str


MUTATIONS = [
    Mutation("edit an event", edit_an_event, 14, "modified"),
    Mutation("edit a document", edit_a_document, 11, "modified"),
    Mutation("edit a validation report", edit_a_report, 11, "modified"),
    Mutation("edit and rehash one row", edit_and_rehash_one_row, 15, "breaks the chain"),
    Mutation("edit and rehash the tail", edit_and_rehash_the_whole_tail, 20, "checkpoint"),
    Mutation("delete a row", delete_a_row, 14, "missing"),
    Mutation("reorder two rows", reorder_two_rows, 14, "modified"),
    Mutation("truncate the tail", truncate_the_tail, 26, "truncated"),
    Mutation("truncate and fix the head", truncate_and_fix_the_head, 26, "truncated"),
    Mutation("forge a checkpoint head", forge_a_checkpoint_head, 20, "checkpoint"),
    Mutation("forge a checkpoint signature", forge_a_checkpoint_signature, 20, "signature"),
    Mutation("remove the latest checkpoint", remove_the_latest_checkpoint, 30, "checkpoint"),
    Mutation("swap envelope bytes", swap_envelope_bytes, 11, "swapped"),
]


def test_an_untouched_ledger_verifies(signed_ledger: Ledger, operator_key: OperatorKey) -> None:
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert result.ok, result.problem
    assert result.rows == 30
    assert result.signed_checkpoints == 3


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_tampering_is_detected_and_the_first_bad_row_named(
    signed_ledger: Ledger, operator_key: OperatorKey, mutation: Mutation
) -> None:
    with signed_ledger.engine.begin() as conn:
        mutation.apply(conn)
    result = signed_ledger.verify(verify_signature=operator_key.check, require_signed=True)
    assert not result.ok
    assert result.first_bad_row == mutation.first_bad_row, result.problem
    assert mutation.words in (result.problem or "")


def test_a_chain_rewritten_and_re_signed_by_another_key_is_detected(
    signed_ledger: Ledger, operator_key: OperatorKey, intruder_key: OperatorKey
) -> None:
    # Given an intruder who rewrites the tail and signs fresh checkpoints with their own key
    with signed_ledger.engine.begin() as conn:
        edit_an_event(conn)
        rehash_from(conn, 14)
        for seq, _kind, row in list(entries(conn, 30)):
            if seq in (20, 30):
                at = conn.execute(select(Checkpoint.at).where(Checkpoint.seq == seq)).scalar_one()
                payload = chain.checkpoint_payload(seq, row.chain_hash, chain.utc_text(at))
                conn.execute(
                    text("UPDATE ledger_checkpoints SET head=:h, signature=:s, cert_pem=:c"
                         " WHERE seq=:q"),
                    {"h": row.chain_hash, "s": intruder_key.sign(payload),
                     "c": intruder_key.cert_pem, "q": seq})
    # When verified against the operator's certificate (not the one stored beside it)
    result = signed_ledger.verify(verify_signature=operator_key.check)
    # Then the first re-signed checkpoint is refused
    assert result.first_bad_row == 20
    assert "signature" in (result.problem or "")
    # and trusting whatever certificate is stored would have been fooled: that is why the
    # CLI checks against the configured operator certificate
    assert signed_ledger.verify().ok


def test_a_swapped_blob_file_is_detected(
    ledger_url: str, operator_key: OperatorKey, tmp_path: object
) -> None:
    import hashlib
    from pathlib import Path

    from hub.ledger import DocumentIn
    from tests.integration.ledger.ledger_samples import T0, envelope_bytes

    blob_dir = Path(str(tmp_path)) / "blobs"
    with Ledger.open(ledger_url, blob_dir=blob_dir, blob_threshold=10) as ledger:
        raw = envelope_bytes(1, size=100)
        digest = hashlib.sha256(raw).hexdigest()
        ledger.write([DocumentIn("A", "1", digest, "envelope", raw, T0)], [])
        (blob_dir / digest[:2] / digest).write_bytes(b"forged")
        result = ledger.verify()
        assert result.first_bad_row == 1
        assert "swapped" in (result.problem or "")
