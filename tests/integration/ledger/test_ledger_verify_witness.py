"""A chain cut back to a signed checkpoint, its head moved back and its derived tables rebuilt,
holds together: nothing inside the database tells it from a ledger that never grew further.
An auditor's witness does: the head (or a signed checkpoint) noted on an earlier day and given
back with ``expect`` makes verify fail unless the chain still holds that row with that hash.

The ledger (fixture ``signed_ledger``) holds 30 entries with signed checkpoints at rows 10, 20
and 30."""

from __future__ import annotations

from sqlalchemy import Connection, text

from hub.ledger import Ledger, adoption, deliveries
from hub.ledger.verify import LedgerVerdict
from tests.integration.ledger.ledger_samples import OperatorKey


def cut_back_to_row_20(conn: Connection) -> None:
    """The insider: every row and checkpoint after row 20 gone, the head moved back to the
    signed checkpoint at row 20, the derived tables rebuilt (as `hub ledger migrate` does)."""
    for table in ("ledger_events", "ledger_documents", "ledger_checkpoints"):
        conn.execute(text(f"DELETE FROM {table} WHERE seq > 20"))  # noqa: S608
    link = conn.execute(text("SELECT chain_hash FROM ledger_events WHERE seq = 20"
                             " UNION ALL SELECT chain_hash FROM ledger_documents"
                             " WHERE seq = 20")).scalar_one()
    at = conn.execute(text("SELECT at FROM ledger_checkpoints WHERE seq = 20")).scalar_one()
    conn.execute(text("UPDATE ledger_head SET seq = 20, chain_hash = :c, checkpoint_seq = 20,"
                      " checkpoint_at = :a"), {"c": link, "a": at})
    adoption.rebuild(conn)
    deliveries.rebuild(conn)


def test_the_verdict_names_the_head_and_the_last_signed_checkpoint_as_witnesses(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    result = signed_ledger.verify(verify_signature=operator_key.check,
                                  require_signed=True, jobs=1)
    assert isinstance(result, LedgerVerdict)
    assert result.ok, result.problem
    head_seq, head_hash = signed_ledger.head()
    assert (result.rows, result.head_hash) == (head_seq, head_hash) == (30, head_hash)
    assert (result.signed_through, result.signed_hash) == (30, head_hash)
    assert f"head 30:{head_hash}" in result.head_line()
    assert f"last signed checkpoint 30:{head_hash}" in result.head_line()
    assert result.to_dict()["head"] == {"seq": 30, "chain_hash": head_hash}


def test_a_chain_cut_back_to_a_signed_checkpoint_fails_against_the_head_noted_before(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    # Given the head an auditor noted on an earlier day
    noted = signed_ledger.verify(verify_signature=operator_key.check, jobs=1)
    assert isinstance(noted, LedgerVerdict)
    witness = (noted.rows, noted.head_hash)
    # When an insider cuts the chain back to the signed checkpoint at row 20
    with signed_ledger.engine.begin() as conn:
        cut_back_to_row_20(conn)
    # Then the chain alone still verifies: nothing inside the database can tell
    alone = signed_ledger.verify(verify_signature=operator_key.check,
                                 require_signed=True, jobs=1)
    assert alone.ok, alone.problem
    assert alone.rows == 20
    # but not with the witness: the verdict names the first row missing
    result = signed_ledger.verify(verify_signature=operator_key.check,
                                  require_signed=True, jobs=1, expect=[witness])
    assert not result.ok
    assert result.first_bad_row == 21
    assert "cut back" in str(result.problem)
    assert "row 30" in str(result.problem)


def test_a_witness_the_chain_still_holds_passes_and_one_it_does_not_fails_at_its_row(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    # Given the chain hash at the signed checkpoint of row 10, as an evidence bundle shows it
    with signed_ledger.engine.connect() as conn:
        at_10 = conn.execute(text("SELECT head FROM ledger_checkpoints WHERE seq = 10")
                             ).scalar_one()
    head = signed_ledger.head()
    # When verify is given it (and the head), then given another hash for row 10
    held = signed_ledger.verify(verify_signature=operator_key.check, jobs=1,
                                expect=[(10, at_10), head])
    other = signed_ledger.verify(verify_signature=operator_key.check, jobs=1,
                                 expect=[head, (10, "ab" * 32)])
    # Then the first verifies and the second fails naming row 10
    assert held.ok, held.problem
    assert not other.ok
    assert other.first_bad_row == 10
    assert "rewritten" in str(other.problem)
