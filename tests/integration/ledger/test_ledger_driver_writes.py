"""The ledger writes its batches through the driver exactly as SQLAlchemy's models wrote them.

:meth:`hub.ledger.Ledger.write` binds pre-built tuples with ``exec_driver_sql`` (SQLite:
``executemany``; PostgreSQL: multi-row ``VALUES``) instead of ORM/Core inserts. These tests show
that the stored values are the ones the column types store, that a ledger written the old way
(Core inserts, the standard library encoder) still verifies and grows, and that batches larger
than one multi-row statement keep one chain.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text, update
from sqlalchemy.exc import DBAPIError

from hub.errors import TransientError
from hub.ledger import DocumentIn, EventIn, EventKind, Ledger, chain
from hub.ledger.models import Document, Event, Head, UtcDateTime
from hub.ledger.store import _naive_utc, _sqlite_time
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import T0, envelope_bytes, sample_batch

INSTANTS = [
    datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
    datetime(2024, 3, 1, 15, 0, 0, 1, tzinfo=timezone(timedelta(hours=7))),
    datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1, 1, 2, tzinfo=UTC), datetime(999, 5, 5, 5, 5, 5, 5, tzinfo=UTC),
    datetime(1000, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 12, tzinfo=UTC),
    datetime(2024, 2, 29, 0, 0, 0, 500000, tzinfo=timezone(timedelta(hours=5, minutes=45))),
]


@pytest.mark.parametrize("at", INSTANTS, ids=str)
def test_timestamps_are_bound_as_the_column_type_binds_them(at: datetime) -> None:
    for dialect, ours in ((create_engine("sqlite://").dialect, _sqlite_time),
                          (create_engine("postgresql+psycopg2://").dialect, _naive_utc)):
        column_type = UtcDateTime()
        bound = column_type.process_bind_param(at, dialect)
        process = column_type.impl_instance.dialect_impl(dialect).bind_processor(dialect)
        assert ours(at) == (process(bound) if process is not None else bound)


def test_a_naive_timestamp_is_refused_by_the_driver_binding_too() -> None:
    for ours in (_sqlite_time, _naive_utc):
        with pytest.raises(ValueError, match="timezone-aware"):
            ours(datetime(2024, 3, 1))


def test_rows_written_through_the_driver_hold_what_the_models_read_back(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        hanoi = timezone(timedelta(hours=7))
        when = datetime(2024, 3, 1, 15, 30, 0, 123456, tzinfo=hanoi)
        raw = envelope_bytes(1)
        digest = hashlib.sha256(raw).hexdigest()
        ledger.write(
            [DocumentIn("000.00.01.H27", "Số 1/UBND “đặc biệt”", digest, "envelope", raw, when,
                        code="1/UBND-VP", recipients=("000.00.02.H27", "000.00.03.H27"),
                        report={"accepted": True, "signer": "Văn phòng \u2028 𝒜"})],
            [EventIn(EventKind.RECEIVED, "m1", when, digest, organ_id="000.00.01.H27",
                     detail={"bytes": len(raw), "attempt": 1}),
             EventIn(EventKind.DELIVERED, "m1", when + timedelta(seconds=1), digest,
                     organ_id="000.00.02.H27", reason="OK", detail={"via": "direct"})])
        [doc] = ledger.documents()
        assert (doc.sender, doc.document_id, doc.code, doc.recipients, doc.size, doc.seq) == (
            "000.00.01.H27", "Số 1/UBND “đặc biệt”", "1/UBND-VP",
            ("000.00.02.H27", "000.00.03.H27"), len(raw), 1)
        assert doc.received_at == when
        assert ledger.raw(digest) == raw
        assert ledger.report(digest) == {"accepted": True, "signer": "Văn phòng \u2028 𝒜"}
        received, delivered = ledger.events()
        assert (received.seq, received.kind, received.at, received.detail) == (
            2, EventKind.RECEIVED, when, {"bytes": len(raw), "attempt": 1})
        assert (delivered.seq, delivered.reason, delivered.at) == (
            3, "OK", when + timedelta(seconds=1))
        states = {(d.organ_id, d.state, d.updated_at) for d in ledger.deliveries()}
        assert states == {("000.00.02.H27", "delivered", when + timedelta(seconds=1)),
                          ("000.00.03.H27", "pending", when)}
        # The stored timestamps are the column type's own form, byte for byte
        with ledger.engine.connect() as conn:
            stored = conn.execute(text("SELECT at FROM ledger_events ORDER BY seq")).scalars()
            column = UtcDateTime()
            dialect = conn.dialect
            process = column.impl_instance.dialect_impl(dialect).bind_processor(dialect)
            for value, event in zip(stored, (received, delivered), strict=True):
                bound = column.process_bind_param(event.at, dialect)
                assert value == (process(bound) if process is not None else bound)
        assert ledger.verify().ok


def test_a_ledger_written_before_the_driver_path_verifies_and_grows(ledger_url: str) -> None:
    # Given a ledger whose rows were inserted as before: Core inserts of the models, entry
    # hashes over the standard library encoder's bytes
    Ledger.open(ledger_url).close()
    engine = create_engine(ledger_url)
    link = chain.GENESIS
    seq = 0
    with engine.begin() as conn:
        for n in range(3):
            raw = envelope_bytes(100 + n)
            digest = hashlib.sha256(raw).hexdigest()
            at = T0 + timedelta(minutes=n)
            report = chain.canonical_json_reference(
                {"signer": "Văn phòng UBND tỉnh Hà Tĩnh", "n": n}).decode()
            recipients = ["000.00.02.H27", "000.0\u2028.03.H27"]
            seq += 1
            entry = chain.document_entry(
                seq=seq, digest=digest, sender="000.00.01.H27", document_id=f"Số {n}",
                kind="envelope", code=f"{n}/UBND", subject_digest="", recipients=recipients,
                received_at=chain.utc_text(at), links_to=None, size=len(raw),
                report_digest=hashlib.sha256(report.encode()).hexdigest())
            entry_hash = hashlib.sha256(chain.canonical_json_reference(entry)).hexdigest()
            link = chain.link(link, entry_hash)
            conn.execute(insert(Document).values(
                digest=digest, seq=seq, entry_hash=entry_hash, chain_hash=link,
                sender="000.00.01.H27", document_id=f"Số {n}", kind="envelope", code=f"{n}/UBND",
                subject_digest="", received_at=at, links_to=None, size=len(raw), raw=raw,
                report=report,
                recipients=chain.canonical_json_reference(recipients).decode()))
            seq += 1
            detail = chain.canonical_json_reference({"via": "trục “LGSP”", "q": "\\\""}).decode()
            entry = chain.event_entry(
                seq=seq, kind="delivered", message_id=f"m{n}", at=chain.utc_text(at),
                digest=digest, organ_id="000.00.02.H27", reason=None, actor="hub", detail=detail)
            entry_hash = hashlib.sha256(chain.canonical_json_reference(entry)).hexdigest()
            link = chain.link(link, entry_hash)
            conn.execute(insert(Event).values(
                seq=seq, entry_hash=entry_hash, chain_hash=link, kind="delivered",
                message_id=f"m{n}", at=at, digest=digest, organ_id="000.00.02.H27", reason=None,
                actor="hub", detail=detail))
        conn.execute(update(Head).where(Head.id == 1).values(seq=seq, chain_hash=link))
    engine.dispose()
    with Ledger.open(ledger_url, checkpoint_every=4) as ledger:
        # (its adoption rollup computed from those documents, as migration r0005 does for a
        # ledger written before it, and the delivery state its writer kept beside the rows)
        ledger.rebuild_adoption()
        ledger.rebuild_deliveries()
        # Then it verifies
        first = ledger.verify()
        assert first.ok, first.problem
        assert first.rows == 6
        # and batches written through the driver continue its chain
        ledger.write(*sample_batch(0, 2))
        second = ledger.verify()
        assert second.ok, second.problem
        assert second.rows == 6 + 2 * 5
        assert second.checkpoints >= 1


def test_a_batch_larger_than_one_multi_row_statement_keeps_one_chain(ledger_url: str) -> None:
    documents, events = sample_batch(0, 300)  # 300 documents, 1,200 events, 600 deliveries
    more_documents, more_events = sample_batch(300, 200, at=T0 + timedelta(days=1))
    with Ledger.open(ledger_url) as ledger:
        ledger.write(documents + more_documents, events + more_events)
        # the same batch again: documents are kept once, the events are appended again
        ledger.write(documents, events[:5])
        result = ledger.verify()
        assert result.ok, result.problem
        assert result.rows == 500 + 2000 + 5
        assert ledger.head()[0] == 2505
        assert len(ledger.deliveries(state="delivered")) == 1000


def test_the_look_ups_of_a_packets_receipts_and_deliveries_search_its_digest_not_every_event(
        tmp_path: Path) -> None:
    # Given a SQLite ledger that recorded a receipt and a delivery, and the statements run next
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    digest = hashlib.sha256(b"packet").hexdigest()
    receipt = EventIn(EventKind.RECEIPT_ISSUED, "r1", T0, digest, organ_id="000.00.01.H27",
                      detail={"receipt_digest": "ab" * 32})
    ledger.write([], [receipt, EventIn(EventKind.DELIVERED, "m1", T0, digest,
                                       organ_id="000.00.02.H27")])
    statements: list[tuple[str, Any]] = []
    run_rows = ledger._sql.rows  # the driver statements run on the DBAPI cursor, not via events

    def _seen(conn: Any, statement: str, parameters: Any = ()) -> list[Any]:
        if "FROM ledger_events" in statement:
            statements.append((statement, parameters))
        return run_rows(conn, statement, parameters)

    # When a batch checks its receipts (the conflict check), and the pipeline (or the API) asks
    # for the receipts issued and the recipients reached
    setattr(ledger._sql, "rows", _seen)  # noqa: B010 - mypy checks no signature here
    ledger.write([], [receipt])
    ledger.issued([digest])
    assert ledger.delivered_to(digest) == frozenset({"000.00.02.H27"})
    assert ledger.delivered_to_many([digest]) == {digest: frozenset({"000.00.02.H27"})}
    setattr(ledger._sql, "rows", run_rows)  # noqa: B010
    # Then each look-up searches the index on digest (SQLite's planner, left alone, walked the
    # index on kind: every receipt or delivery the ledger ever recorded, on every batch)
    assert len(statements) == 4
    with ledger.engine.connect() as conn:
        for statement, parameters in statements:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters))
            assert "ix_ledger_events_digest" in plan, plan
    ledger.close()


def test_a_driver_error_on_the_cursor_is_the_error_sqlalchemy_raises_for_it(
        ledger_url: str) -> None:
    # Given a ledger (SQLite, PostgreSQL) whose batch statements run on the DBAPI cursor
    bad = "SELECT digest FROM no_such_table WHERE digest = %s"
    with Ledger.open(ledger_url) as ledger:
        bad = bad.replace("%s", ledger._sql.mark)
        # When a statement fails there, and the same statement through SQLAlchemy
        with pytest.raises(DBAPIError) as ours, ledger.engine.connect() as conn, conn.begin():
            ledger._sql.rows(conn, bad, ("document text",))
        with pytest.raises(DBAPIError) as theirs, ledger.engine.connect() as conn, conn.begin():
            conn.exec_driver_sql(bad, ("document text",))
    # Then both are the same SQLAlchemy class around the same driver class (the ledger tells a
    # refused row from an unavailable database by them), and the values are not listed
    assert type(ours.value) is type(theirs.value)
    assert type(ours.value.orig) is type(theirs.value.orig)
    assert ours.value.connection_invalidated is False
    assert "[parameters:" not in str(ours.value)


def test_a_cursor_that_cannot_be_opened_is_wrapped_too_and_its_connection_invalidated(
        tmp_path: Path) -> None:
    # Given a SQLite ledger whose DBAPI connection went away under a batch's transaction
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        ledger.write(*sample_batch(0, 1))
        def statement_on_a_closed_connection() -> None:
            with ledger.engine.connect() as conn, conn.begin():
                dbapi_conn = conn.connection.dbapi_connection
                assert dbapi_conn is not None
                dbapi_conn.close()
                ledger._sql.rows(conn, "SELECT seq FROM ledger_head")

        # When a statement asks for its cursor (the transaction then rolled back, as a batch's)
        with pytest.raises(DBAPIError) as caught:
            statement_on_a_closed_connection()
        # Then the driver's error is SQLAlchemy's (the ledger classifies it: unavailable, not a
        # refused row), the dead connection left the pool, and the next batch is written
        assert caught.value.connection_invalidated is True
        ledger.write(*sample_batch(1, 1))
        assert ledger.verify().ok


def test_a_postgresql_session_killed_in_a_batch_is_unavailable_then_the_next_batch_is_written(
        postgres_url: str) -> None:
    # Given a PostgreSQL ledger whose server ends the session in the middle of a batch's
    # transaction (a restart, an administrator, a failover)
    admin = create_engine(postgres_url)
    with Ledger.open(postgres_url) as ledger:
        ledger.write(*sample_batch(0, 1))
        locked_head = ledger._sql.locked_head

        def killed(conn: Any) -> Any:
            pid = ledger._sql.rows(conn, "SELECT pg_backend_pid()")[0][0]
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            return locked_head(conn)

        ledger._sql.locked_head = killed  # type: ignore[method-assign]
        # When the batch is written
        with pytest.raises(TransientError) as caught:
            ledger.write(*sample_batch(1, 1))
        ledger._sql.locked_head = locked_head  # type: ignore[method-assign]
        # Then it is LEDGER_UNAVAILABLE (retried, never a refused row), and the dead
        # connection left the pool: the next batch is written and the chain holds
        assert caught.value.reason is Reason.LEDGER_UNAVAILABLE
        ledger.write(*sample_batch(1, 1))
        assert ledger.verify().ok
    admin.dispose()
