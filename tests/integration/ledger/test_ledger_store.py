"""Writing to and reading from the ledger, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from hub.errors import TransientError
from hub.ledger import DocumentIn, EventIn, EventKind, Ledger
from hub.ledger.records import LedgerRowRejected
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import T0, OperatorKey, envelope_bytes, sample_batch


def test_a_written_document_is_found_by_sender_and_document_id(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        documents, events = sample_batch(0, 3)
        ledger.write(documents, events)
        found = ledger.find_document("000.00.00.H27", "000.00.00.H27,2024/03/01,1")
        assert found is not None
        assert found.digest == documents[1].digest
        assert found.recipients == ("000.01.01.H27", "000.02.01.H27")
        assert found.received_at == documents[1].received_at
        assert ledger.raw(found.digest) == documents[1].raw
        assert ledger.report(found.digest) == {"accepted": True, "reason": "OK"}
        assert ledger.find_document("000.00.00.H27", "nope") is None


def test_the_batch_look_up_finds_exactly_the_pairs_asked_for_the_first_one_sent(
    ledger_url: str,
) -> None:
    with Ledger.open(ledger_url) as ledger:
        docs = []
        for n, (sender, document_id) in enumerate([("A", "x"), ("B", "y"), ("A", "y")]):
            raw = envelope_bytes(100 + n)
            docs.append(DocumentIn(sender, document_id, hashlib.sha256(raw).hexdigest(),
                                   "envelope", raw, T0 + timedelta(seconds=n)))
        ledger.write(docs, [])
        # A later document under an existing key does not replace the first one
        again = envelope_bytes(200)
        ledger.write([DocumentIn("A", "x", hashlib.sha256(again).hexdigest(), "envelope",
                                 again, T0 + timedelta(seconds=9))], [])
        # (B, x) is asked for: B and x each exist, the pair does not
        found = ledger.find_documents([("A", "x"), ("B", "x"), ("A", "y")])
        assert set(found) == {("A", "x"), ("A", "y")}
        assert found[("A", "x")].digest == docs[0].digest
        assert found[("A", "y")].digest == docs[2].digest


def test_the_batch_look_up_searches_the_index_and_never_scans_the_ledger(tmp_path: Path) -> None:
    # A scan per batch grows with the ledger: a million documents would be read per batch.
    url = f"sqlite:///{tmp_path / 'plan.sqlite3'}"
    with Ledger.open(url) as ledger:
        statements: list[str] = []
        run_rows = ledger._sql.rows  # the driver statements run on the DBAPI cursor

        def remember(conn: Any, statement: str, parameters: Any = ()) -> list[Any]:
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append(statement)
            return run_rows(conn, statement, parameters)

        setattr(ledger._sql, "rows", remember)  # noqa: B010 - mypy checks no signature here
        ledger.find_documents([("A", "x"), ("B", "y")])
        setattr(ledger._sql, "rows", run_rows)  # noqa: B010
        assert statements
        with ledger.engine.connect() as conn:
            for statement in statements:
                plan = conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, ("A", "B", "x", "y", "refused")).fetchall()
                details = " ".join(str(row[3]) for row in plan)
                assert "SCAN" not in details, details
                assert "USING INDEX ix_ledger_documents_sender_document_id" in details


def test_writing_the_same_digest_twice_keeps_one_document(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        documents, events = sample_batch(0, 2)
        ledger.write(documents, events)
        ledger.write(documents + documents, [])
        assert len(ledger.documents()) == 2
        assert ledger.head()[0] == 2 + len(events)
        assert ledger.verify().ok


def test_delivered_to_lists_the_recipients_with_a_delivered_event(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        raw = envelope_bytes(1)
        digest = hashlib.sha256(raw).hexdigest()
        ledger.write(
            [DocumentIn("A", "1", digest, "envelope", raw, T0, recipients=("B", "C"))],
            [EventIn(EventKind.ROUTED, "m", T0, digest, organ_id="B"),
             EventIn(EventKind.ROUTED, "m", T0, digest, organ_id="C"),
             EventIn(EventKind.DELIVERED, "m", T0, digest, organ_id="B")])
        assert ledger.delivered_to(digest) == frozenset({"B"})
        states = {d.organ_id: d.state for d in ledger.deliveries(digest=digest)}
        assert states == {"B": "delivered", "C": "routed"}


def test_events_are_filtered_by_organization_period_kind_and_reason(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        ledger.write(*sample_batch(0, 4))
        digest = hashlib.sha256(envelope_bytes(9)).hexdigest()
        ledger.write([], [EventIn(EventKind.REJECTED, "m9", T0, digest,
                                  reason=Reason.SIGNATURE_INVALID, detail={"score": 0.5})])
        assert len(ledger.events(organ_id="000.01.01.H27")) == 4
        assert len(ledger.events(since=T0 + timedelta(minutes=2))) == 8
        assert len(ledger.events(until=T0 + timedelta(minutes=1))) == 5
        rejected = ledger.events(kind=EventKind.REJECTED)
        assert [e.reason for e in rejected] == ["SIGNATURE_INVALID"]
        assert rejected[0].detail == {"score": "0.5"}
        assert ledger.events(reason="SIGNATURE_INVALID") == rejected
        assert len(ledger.events(limit=3)) == 3


def test_documents_are_found_by_code_and_by_recipient(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        ledger.write(*sample_batch(0, 3))
        assert [d.code for d in ledger.documents(code="2/UBND-VP")] == ["2/UBND-VP"]
        assert len(ledger.documents(organ_id="000.02.01.H27")) == 3
        assert len(ledger.documents(organ_id="000.00.00.H27")) == 3
        assert ledger.documents(organ_id="000.09.09.H27") == []


def test_large_packets_go_to_the_blob_store_and_read_back_exactly(
    ledger_url: str, tmp_path: Path
) -> None:
    with Ledger.open(ledger_url, blob_dir=tmp_path / "blobs", blob_threshold=100) as ledger:
        raw = envelope_bytes(1, size=5000)
        digest = hashlib.sha256(raw).hexdigest()
        ledger.write([DocumentIn("A", "1", digest, "envelope", raw, T0)], [])
        assert (tmp_path / "blobs" / digest[:2] / digest).read_bytes() == raw
        assert ledger.raw(digest) == raw
        assert ledger.verify().ok


def test_checkpoints_are_signed_every_n_entries(
    ledger_url: str, operator_key: OperatorKey
) -> None:
    with Ledger.open(ledger_url, checkpoint_every=8, checkpoint_signer=operator_key.sign,
                     checkpoint_cert_pem=operator_key.cert_pem) as ledger:
        for start in range(0, 6, 2):
            ledger.write(*sample_batch(start, 2))  # 10 entries per write
        result = ledger.verify(verify_signature=operator_key.check, require_signed=True)
        assert result.ok, result.problem
        assert (result.rows, result.checkpoints, result.signed_checkpoints) == (30, 3, 3)


def test_a_forced_checkpoint_covers_the_head(ledger_url: str, operator_key: OperatorKey) -> None:
    with Ledger.open(ledger_url, checkpoint_signer=operator_key.sign,
                     checkpoint_cert_pem=operator_key.cert_pem) as ledger:
        ledger.write(*sample_batch(0, 1))
        ledger.checkpoint()
        ledger.checkpoint()  # nothing new: no second checkpoint
        result = ledger.verify(require_signed=True)
        assert result.ok
        assert result.checkpoints == 1


def test_a_naive_timestamp_is_refused_as_that_row(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger, pytest.raises(LedgerRowRejected,
                                                          match="timezone") as caught:
        ledger.write([], [EventIn(EventKind.RECEIVED, "m", T0),
                          EventIn(EventKind.RECEIVED, "m", T0.replace(tzinfo=None))])
    assert (caught.value.documents, caught.value.events) == ((), (1,))


def test_a_digest_that_is_not_the_hash_of_the_bytes_is_refused_as_that_row(
    ledger_url: str,
) -> None:
    with Ledger.open(ledger_url) as ledger, pytest.raises(LedgerRowRejected,
                                                          match="SHA-256") as caught:
        ledger.write([DocumentIn("A", "1", "0" * 64, "envelope", b"x", T0)], [])
    assert caught.value.documents == (0,)


def test_concurrent_writers_keep_one_consistent_chain(ledger_url: str) -> None:
    # Given four writers (as four consumer processes would be), each with its own engine
    Ledger.open(ledger_url).close()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            with Ledger.open(ledger_url) as ledger:
                for batch in range(5):
                    ledger.write(*sample_batch(1000 * worker + 10 * batch, 3))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    # Then every entry is chained once, in one order
    with Ledger.open(ledger_url) as ledger:
        result = ledger.verify()
        assert result.ok, result.problem
        assert result.rows == 4 * 5 * 3 * 5


def test_an_unreachable_postgresql_is_a_transient_ledger_error() -> None:
    with pytest.raises(TransientError) as caught:
        Ledger.open("postgresql+psycopg2://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert caught.value.reason is Reason.LEDGER_UNAVAILABLE


def test_a_locked_sqlite_ledger_is_a_transient_ledger_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with Ledger.open(url, sqlite_busy_timeout_ms=50) as ledger:
        blocker = create_engine(url, connect_args={"isolation_level": None})
        with blocker.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            with pytest.raises(TransientError) as caught:
                ledger.write(*sample_batch(0, 1))
            conn.exec_driver_sql("ROLLBACK")
        blocker.dispose()
        assert caught.value.reason is Reason.LEDGER_UNAVAILABLE
        ledger.write(*sample_batch(0, 1))
        assert ledger.verify().ok


def test_the_models_match_the_migrations(ledger_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.ledger.models import Base

    Ledger.open(ledger_url).close()
    engine = create_engine(ledger_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        diff = [d for d in compare_metadata(context, Base.metadata)
                if not (isinstance(d, tuple) and "ledger_alembic_version" in repr(d))]
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert diff == []
