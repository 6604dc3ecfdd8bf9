"""The streaming verifier judges every row as the reference walk over typed rows does.

``Ledger.verify`` reads plain driver rows and rebuilds each entry itself, with a shortcut for the
stored timestamps (``hub.ledger.verify._TimeText``). The reference here is the walk it replaced:
each row read through the column types, ``document_entry_from_row`` / ``event_entry_from_row``
and the standard library encoder, with two rules the verifier adds: a row whose values cannot
be read that way (or hold a type the hub never writes: a size that is not an integer, a JSON
column that is not text) was modified, and on SQLite a timestamp stored as anything but the text
the writer makes of it (``hub.ledger.store._sqlite_time``) was modified, since period queries
compare that text. On untouched ledgers and on every tampering — the acceptance mutations,
timestamps rewritten in other forms of the same or another instant, canonical texts rewritten,
values of the wrong type — both find the same first bad row for the same reason, both pass, or
both fail with the same exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, exc, text

from hub.errors import TransientError
from hub.ledger import Ledger, chain
from hub.ledger.models import UtcDateTime
from hub.ledger.store import _sqlite_time
from hub.ledger.verify import (
    _TimeText,
    document_entry_from_row,
    entries,
    event_entry_from_row,
)
from tests.integration.ledger.ledger_samples import (
    OperatorKey,
    envelope_bytes,
    refused_packet,
    sample_batch,
)
from tests.integration.ledger.test_ledger_mutations import MUTATIONS

Outcome = tuple[str, Any]


_UNREADABLE = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError,
               RecursionError)


def reference_rows(conn: Connection, total: int) -> list[tuple[Any, str, dict[str, Any]]]:
    """Both chained tables up to ``total``, as stored (no type processing), in ``seq`` order."""
    rows: list[tuple[Any, str, dict[str, Any]]] = []
    for table, kind in (("ledger_documents", "document"), ("ledger_events", "event")):
        result = conn.execute(text(f"SELECT * FROM {table} WHERE seq <= :t"),  # noqa: S608
                              {"t": total})
        rows.extend((row["seq"], kind, dict(row)) for row in result.mappings())
    return sorted(rows, key=lambda r: (int(r[0]), r[1] == "event"))


def typed(conn: Connection, kind: str, stored: dict[str, Any]) -> SimpleNamespace:
    """A stored row as the column types read it; ValueError for a value the hub never writes."""
    dialect = conn.dialect
    read_time = UtcDateTime().dialect_impl(dialect).result_processor(dialect, None)
    values = dict(stored)
    for column in ("received_at",) if kind == "document" else ("at",):
        value = stored[column]
        at = read_time(value) if read_time is not None else value
        if dialect.name == "sqlite" and value != _sqlite_time(at):
            raise ValueError(f"{value!r} is not the text the hub writes")
        values[column] = at
    if type(stored["seq"]) is not int:
        raise ValueError("a position that is not a whole number")
    if kind == "document":
        if type(stored["size"]) is not int:
            raise ValueError("a size that is not a whole number")
        for column in ("recipients", "refusal", "revocation"):
            if stored[column] is not None and type(stored[column]) is not str:
                raise ValueError(f"{column} that is not text")
    return SimpleNamespace(**values)


def reference_walk(conn: Connection) -> tuple[int, str] | None:
    """The first bad row and why (the words of its problem), or None: the walk as it was."""
    total = conn.execute(text("SELECT seq FROM ledger_head")).scalar_one()
    link = chain.GENESIS
    expected = 1
    for stored_seq, kind, stored in reference_rows(conn, total):
        seq = int(stored_seq)
        if seq != expected:
            return (expected, "missing") if seq > expected else (seq, "appears twice")
        try:
            row = typed(conn, kind, stored)
            entry = (document_entry_from_row(row) if kind == "document"
                     else event_entry_from_row(row))
            entry_hash = hashlib.sha256(chain.canonical_json_reference(entry)).hexdigest()
        except _UNREADABLE:
            return seq, "was modified"
        if entry_hash != row.entry_hash:
            return seq, "was modified"
        link = chain.link(link, entry_hash)
        if link != row.chain_hash:
            return seq, "breaks the chain"
        expected += 1
    if expected - 1 != total:
        return expected, "truncated"
    return None


def outcome(run: Callable[[], Any]) -> Outcome:
    try:
        return ("result", run())
    except Exception as error:
        return ("raises", type(error))


def assert_judged_as_the_reference(ledger: Ledger, operator_key: OperatorKey) -> None:
    with ledger.engine.connect() as conn:
        expected = outcome(lambda: reference_walk(conn))
    got = outcome(lambda: ledger.verify(verify_signature=operator_key.check, check_bytes=False))
    if expected[0] == "raises":
        assert got == expected
        return
    assert got[0] == "result", got
    result = got[1]
    if expected[1] is None:
        # every entry and link holds: only a checkpoint may still be judged bad
        assert result.ok or "checkpoint" in (result.problem or ""), result.problem
        return
    row, words = expected[1]
    assert (result.first_bad_row, words in (result.problem or "")) == (row, True), result.problem


def test_untouched_ledgers_are_judged_as_the_reference_judges_them(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    refused, refused_events = refused_packet(
        envelope_bytes(99), "XML_MALFORMED", organization=None, account="guest")
    signed_ledger.write([refused], refused_events)
    assert_judged_as_the_reference(signed_ledger, operator_key)
    assert signed_ledger.verify(verify_signature=operator_key.check).ok


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_the_acceptance_mutations_are_judged_as_the_reference_judges_them(
    signed_ledger: Ledger, operator_key: OperatorKey, mutation: Any
) -> None:
    with signed_ledger.engine.begin() as conn:
        mutation.apply(conn)
    assert_judged_as_the_reference(signed_ledger, operator_key)


MOVES = {
    # each write of the fixture is 2 documents then their 8 events: documents at 1-2, 11-12, 21-22
    "an event onto a document's position": "UPDATE ledger_events SET seq = 12 WHERE seq = 13",
    "a document onto an event's position": "UPDATE ledger_documents SET seq = 13 WHERE seq = 12",
    "a document after the events": "UPDATE ledger_documents SET seq = 31 WHERE seq = 22",
    "the first row away": "DELETE FROM ledger_documents WHERE seq = 1",
    "the last event away": "DELETE FROM ledger_events WHERE seq = 30",
    "every document away": "DELETE FROM ledger_documents",
    "every event away": "DELETE FROM ledger_events",
}


@pytest.mark.parametrize("statement", MOVES.values(), ids=MOVES.keys())
def test_rows_moved_or_removed_are_judged_as_the_reference_judges_them(
    signed_ledger: Ledger, operator_key: OperatorKey, statement: str
) -> None:
    with signed_ledger.engine.begin() as conn:
        conn.execute(text(statement))
    assert_judged_as_the_reference(signed_ledger, operator_key)


SQLITE_TIMES = {
    # other texts of the same instant (2024-03-01 08:02:00 UTC is the time of rows 11 to 15)
    "the T separator": "2024-03-01T08:02:00.000000",
    "no fraction": "2024-03-01 08:02:00",
    "a comma": "2024-03-01 08:02:00,000000",
    "a week date": "2024-W09-5 08:02:00.000000",
    "an offset": "2024-03-01 08:02:00.000000+00:00",
    "a Z": "2024-03-01 08:02:00.000000Z",
    "26 characters with a Z": "2024-03-01 08:02:00.00000Z",
    "26 characters with an offset": "2024-03-01 15:02:00.000+07",
    "a nanosecond": "2024-03-01 08:02:00.0000001",
    # other instants
    "a microsecond later": "2024-03-01 08:02:00.000001",
    "year 999": "0999-03-01 08:02:00.000000",
    # not a time
    "an impossible date": "2024-02-30 08:02:00.000000",
    "hour 24": "2024-03-01 24:14:00.000000",
    "words": "yesterday at noon, roughly",
    "a trailing space": "2024-03-01 08:02:00.000000 ",
    "Arabic-Indic digits": "٢٠٢٤-03-01 08:02:00.000000",
}


@pytest.mark.parametrize("stored", SQLITE_TIMES.values(), ids=SQLITE_TIMES.keys())
def test_timestamps_stored_in_other_forms_are_judged_as_the_reference_judges_them(
    signed_ledger: Ledger, operator_key: OperatorKey, stored: str
) -> None:
    if signed_ledger.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL stores a timestamp, not a text")
    with signed_ledger.engine.begin() as conn:
        at = conn.execute(text("SELECT at FROM ledger_events WHERE seq = 14")).scalar_one()
        assert at == "2024-03-01 08:02:00.000000"  # sample_batch: n minutes after T0
        conn.execute(text("UPDATE ledger_events SET at = :t WHERE seq = 14"), {"t": stored})
        conn.execute(text("UPDATE ledger_documents SET received_at = :t WHERE seq = 11"),
                     {"t": stored})
    assert_judged_as_the_reference(signed_ledger, operator_key)


def test_a_timestamp_moved_by_a_microsecond_is_judged_as_the_reference_judges_it(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    with signed_ledger.engine.begin() as conn:
        at = conn.execute(text("SELECT at FROM ledger_events WHERE seq = 14")).scalar_one()
        if isinstance(at, str):
            moved: Any = at[:-1] + "1"
        else:
            moved = at + timedelta(microseconds=1)
        conn.execute(text("UPDATE ledger_events SET at = :t WHERE seq = 14"), {"t": moved})
    assert_judged_as_the_reference(signed_ledger, operator_key)
    assert signed_ledger.verify().first_bad_row == 14


TEXTS = {
    "recipients with spaces": ("ledger_documents", 11, "recipients",
                               '["000.01.01.H27", "000.02.01.H27"]'),
    "recipients as floats": ("ledger_documents", 11, "recipients", "[1.0, 2e3]"),
    "recipients as a huge number": ("ledger_documents", 11, "recipients", "[" + "9" * 40 + "]"),
    "recipients with NaN": ("ledger_documents", 11, "recipients", "[NaN]"),
    "recipients with a lone surrogate": ("ledger_documents", 11, "recipients", '["\\ud800"]'),
    "a refusal rewritten": ("ledger_documents", 31, "refusal",
                            '{"account":"guest","cap":52428800.0,"kept":true,'
                            '"reason":"XML_MALFORMED"}'),
    "a refusal with NaN": ("ledger_documents", 31, "refusal",
                           '{"account":NaN,"cap":52428800,"kept":true,"reason":"XML_MALFORMED"}'),
    "a detail re-spaced": ("ledger_events", 14, "detail", '{"queue": "org.000.01.01.H27"}'),
    "a detail with a float": ("ledger_events", 14, "detail", '{"queue":1.5}'),
    "an event kind as bytes": ("ledger_events", 14, "kind", b"delivered"),
    "a sender as bytes": ("ledger_documents", 11, "sender", b"000.00.00.H27"),
}


@pytest.mark.parametrize("change", TEXTS.values(), ids=TEXTS.keys())
def test_rewritten_column_values_are_judged_as_the_reference_judges_them(
    signed_ledger: Ledger, operator_key: OperatorKey, change: tuple[str, int, str, Any]
) -> None:
    table, seq, column, value = change
    refused, refused_events = refused_packet(
        envelope_bytes(99), "XML_MALFORMED", organization=None, account="guest")
    signed_ledger.write([refused], refused_events)  # row 31 (rows 30 are the fixture's)
    if isinstance(value, bytes) and signed_ledger.engine.dialect.name != "sqlite":
        pytest.skip("a PostgreSQL text column holds no bytes")
    with signed_ledger.engine.begin() as conn:
        # the hub's own table and column names
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE seq = :s"),  # noqa: S608
                     {"v": value, "s": seq})
    assert_judged_as_the_reference(signed_ledger, operator_key)


def test_the_time_reading_gives_the_column_types_text_and_refuses_other_sqlite_texts() -> None:
    values: list[Any] = [*SQLITE_TIMES.values(), "2024-03-01 08:02:00.000000",
                         "9999-12-31 23:59:59.999999", "1000-01-01 00:00:00.000000",
                         "0999-12-31 23:59:59.999999", "0001-01-01 00:00:00.000000",
                         datetime(2024, 3, 1, 8, 14), datetime(999, 1, 1),
                         datetime(2024, 3, 1, 8, 14, 0, 1), None, 12, b"2024"]
    for url in ("sqlite://", "postgresql+psycopg2://"):
        dialect = create_engine(url).dialect
        time_text = _TimeText(dialect)
        read = UtcDateTime().dialect_impl(dialect).result_processor(dialect, None)
        assert read is not None
        for value in values:
            got = outcome(partial(time_text, value))
            reference = outcome(partial(time_text.reference, value))
            hub_text = (url == "sqlite://" and reference[0] == "result"
                        and value == _sqlite_time(read(value)))
            if url == "sqlite://" and not hub_text:
                # on SQLite only the text the hub writes is a time; anything else was modified
                assert got in {("raises", ValueError), ("raises", TypeError)}, (url, value)
            else:
                assert got == reference, (url, value)


def test_a_ledger_verifies_after_its_rows_were_read_in_many_batches(
    tmp_path: Path, operator_key: OperatorKey
) -> None:
    # more rows than one fetch of either table, documents and events interleaved
    with Ledger.open(f"sqlite:///{tmp_path / 'big.sqlite3'}", checkpoint_every=997,
                     checkpoint_signer=operator_key.sign,
                     checkpoint_cert_pem=operator_key.cert_pem) as ledger:
        for start in range(0, 1500, 250):
            ledger.write(*sample_batch(start, 250))
        result = ledger.verify(verify_signature=operator_key.check, require_signed=True)
        assert result.ok, result.problem
        assert result.rows == 1500 * 5
        assert_judged_as_the_reference(ledger, operator_key)


def test_a_driver_error_while_streaming_is_wrapped_as_sqlalchemy_wraps_it(
    signed_ledger: Ledger,
) -> None:
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE ledger_events"))
    with signed_ledger.engine.connect() as conn:
        expected = outcome(lambda: list(entries(conn, 30)))  # the typed walk's error
    assert expected[0] == "raises"
    assert issubclass(expected[1], exc.DBAPIError)
    got = outcome(signed_ledger.verify)
    if issubclass(expected[1], exc.OperationalError):  # SQLite: "no such table"
        assert got == ("raises", TransientError)
    else:  # PostgreSQL: undefined table (42P01), a ProgrammingError, as before
        assert got == expected
