"""Poison isolation (issue 16, H1): no row can make a batch fail for ever, on either database.

Texts from packets and broker properties are stored whole (no length can truncate or refuse
them); a row the database refuses for what it holds is named by :class:`LedgerRowRejected`,
nothing of its batch is written, and the rest of the batch is written once it is left out; a
database that is down or locked stays a transient LEDGER_UNAVAILABLE.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from hub.errors import TransientError
from hub.ledger import DocumentIn, EventIn, EventKind, Ledger
from hub.ledger.records import LedgerRowRejected
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import T0, envelope_bytes, sample_batch


def _document(n: int, **changes: object) -> DocumentIn:
    raw = envelope_bytes(n)
    doc = DocumentIn("000.00.00.H27", f"000.00.00.H27,2024/03/01,{n}",
                     hashlib.sha256(raw).hexdigest(), "envelope", raw,
                     T0 + timedelta(minutes=n), code=f"{n}/UBND-VP", recipients=("000.01.01.H27",))
    return replace(doc, **changes)  # type: ignore[arg-type]


def test_a_document_id_and_code_far_over_128_characters_are_stored_whole(
    ledger_url: str,
) -> None:
    # Given the H1 envelope: a DocumentId and a Code longer than the old VARCHAR(128)
    long_id = "000.00.00.H27,2024/03/01," + "9" * 900
    long_code = "Số " + "ký-hiệu/" * 120
    doc = _document(1, document_id=long_id, code=long_code, sender="S" * 300)
    event = EventIn(EventKind.RECEIVED, "m" * 1000, T0, doc.digest, organ_id="O" * 300,
                    actor="hub-" + "a" * 300)
    with Ledger.open(ledger_url) as ledger:
        # When it is written with its events
        ledger.write([doc], [event])
        # Then every text reads back as it was given, and the chain verifies
        stored = ledger.find_document("S" * 300, long_id)
        assert stored is not None
        assert (stored.document_id, stored.code) == (long_id, long_code)
        assert ledger.events(digest=doc.digest)[0].message_id == "m" * 1000
        assert ledger.verify().ok


def test_a_row_violating_a_constraint_is_named_and_the_rest_of_its_batch_then_written(
    ledger_url: str,
) -> None:
    # Given a batch of three envelopes where the middle one lacks its sender (NOT NULL)
    docs = [_document(1), _document(2, sender=None), _document(3)]
    events = [EventIn(EventKind.RECEIVED, f"m{n}", T0, d.digest) for n, d in enumerate(docs)]
    with Ledger.open(ledger_url) as ledger:
        before = ledger.head()
        # When the batch is written
        with pytest.raises(LedgerRowRejected) as caught:
            ledger.write(docs, events)
        # Then the offending document is named, by index and by digest, and nothing was written
        assert caught.value.documents == (1,)
        assert caught.value.events == ()
        assert caught.value.digests == {docs[1].digest}
        assert "IntegrityError" in caught.value.detail
        assert ledger.head() == before
        assert ledger.documents() == []
        # and the consumer's re-planned batch (without that delivery) is written whole
        ledger.write([docs[0], docs[2]], [events[0], events[2]])
        assert len(ledger.documents()) == 2
        assert ledger.verify().ok


def test_an_event_whose_text_cannot_be_encoded_is_named_among_good_events(
    ledger_url: str,
) -> None:
    # A lone surrogate (a broker property decoded leniently) has no UTF-8 form on any backend.
    documents, events = sample_batch(0, 2)
    poisoned = [*events[:3], replace(events[3], organ_id="\ud800"), *events[4:]]
    with Ledger.open(ledger_url) as ledger:
        with pytest.raises(LedgerRowRejected) as caught:
            ledger.write(documents, poisoned)
        assert (caught.value.documents, caught.value.events) == ((), (3,))
        assert caught.value.message_ids == {events[3].message_id}
        assert ledger.head()[0] == 0


@pytest.mark.postgres
def test_on_postgresql_a_nul_character_and_an_oversized_index_entry_are_rows_not_outages(
    postgres_url: str,
) -> None:
    # Given values PostgreSQL refuses: a NUL in a text (the driver refuses it) and a Code too
    # large for its btree index entry (SQLSTATE 54000, which psycopg2 raises as an
    # OperationalError: classified by class it would have looked like an outage and looped)
    nul_in_id = _document(1, document_id="000.00.00.H27,2024/03/01,\x00")
    huge_code = _document(2, code=secrets.token_hex(4000))
    good = _document(3)
    nul_message_id = EventIn(EventKind.RECEIVED, "m\x00", T0, good.digest)
    with Ledger.open(postgres_url) as ledger:
        with pytest.raises(LedgerRowRejected) as caught:
            ledger.write([nul_in_id, huge_code, good],
                         [EventIn(EventKind.RECEIVED, "ok", T0, good.digest), nul_message_id])
        # Then both documents and the event are named, and nothing was written
        assert caught.value.documents == (0, 1)
        assert caught.value.events == (1,)
        assert ledger.head()[0] == 0
        ledger.write([good], [EventIn(EventKind.RECEIVED, "ok", T0, good.digest)])
        assert ledger.verify().ok


@pytest.mark.postgres
def test_on_postgresql_a_lock_timeout_is_transient_not_a_rejected_row(postgres_url: str) -> None:
    # Given a ledger whose sessions give up on locks after 200 ms, and another session that
    # holds the chain-head lock
    url = postgres_url + "%20-clock_timeout%3D200"
    with Ledger.open(url) as ledger:
        blocker = create_engine(postgres_url)
        with blocker.connect() as conn, conn.begin():
            conn.execute(text("SELECT * FROM ledger_head WHERE id = 1 FOR UPDATE"))
            # When the ledger writes, Then it is LEDGER_UNAVAILABLE (55P03), retried later
            with pytest.raises(TransientError) as caught:
                ledger.write(*sample_batch(0, 1))
        blocker.dispose()
        assert caught.value.reason is Reason.LEDGER_UNAVAILABLE
        ledger.write(*sample_batch(0, 1))
        assert ledger.verify().ok
