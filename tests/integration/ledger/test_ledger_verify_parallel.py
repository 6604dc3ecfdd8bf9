"""A chain walked in segments by helper processes is judged as one walk judges it.

``Ledger.verify(jobs=N)`` hands segments of a long chain to helper processes
(:mod:`hub.ledger.verify_parallel`). Here the segments are made tiny (two rows at least) so the
30-row fixture ledger is cut into eight, with boundaries beside every tampered row of the
acceptance mutations and the rows moved or removed; on SQLite and PostgreSQL the verdict —
first bad row, problem, counts, signers, or the exception raised — is the single walk's.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import create_engine, text
from structlog.testing import capture_logs

from hub.ledger import Ledger
from hub.ledger.verify import (
    PROGRESS_EVERY,
    Segment,
    _CheckpointChecker,
    judge_walks,
    plan_segments,
    walk_segment,
)
from hub.ledger.verify_parallel import Helpers
from tests.integration.ledger.ledger_samples import (
    OperatorKey,
    envelope_bytes,
    refused_packet,
    sample_batch,
)
from tests.integration.ledger.test_ledger_mutations import MUTATIONS, Mutation
from tests.integration.ledger.test_ledger_verify_reference import MOVES, TEXTS

TINY = 2
"""Rows a segment needs here: the 30-row fixture is walked in eight segments."""


@contextmanager
def logged() -> Iterator[list[MutableMapping[str, Any]]]:
    """The events logged meanwhile, every level (whatever an earlier test configured)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as events:
            yield events
    finally:
        structlog.configure(**saved)


def verdict(run: Callable[[], Any]) -> tuple[str, Any]:
    """What ``run`` returned, or the type and words of what it raised."""
    try:
        return ("result", run())
    except Exception as error:
        return ("raises", (type(error), str(error)))


def judged_alike(ledger: Ledger, operator_key: OperatorKey, **kwargs: Any) -> Any:
    """The verdict of one walk, after checking the helpers' walk gives the very same — and
    that helpers did walk (the first segment at least, whatever is wrong beyond it)."""
    one = verdict(lambda: ledger.verify(verify_signature=operator_key.check, jobs=1, **kwargs))
    with logged() as events:
        many = verdict(lambda: ledger.verify(verify_signature=operator_key.check, jobs=2,
                                             min_segment_rows=TINY, **kwargs))
    assert many == one
    walked = [e for e in events if e["event"] == "ledger.verify.segments"]
    assert len(walked) == 1, events
    assert (walked[0]["segments"], walked[0]["helpers"]) == (8, 2)
    assert walked[0]["by_helpers"] >= 1, walked
    assert not [e for e in events if e["log_level"] == "warning"], events
    return one


def test_an_untouched_ledger_walked_by_helpers_verifies_as_one_walk_does(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    kind, result = judged_alike(signed_ledger, operator_key, require_signed=True)
    assert kind == "result"
    assert result.ok, result.problem
    assert (result.rows, result.checkpoints, result.signed_checkpoints) == (30, 3, 3)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_every_acceptance_mutation_is_judged_by_the_helpers_as_by_one_walk(
    signed_ledger: Ledger, operator_key: OperatorKey, mutation: Mutation
) -> None:
    with signed_ledger.engine.begin() as conn:
        mutation.apply(conn)
    kind, result = judged_alike(signed_ledger, operator_key, require_signed=True)
    assert kind == "result"
    assert result.first_bad_row == mutation.first_bad_row, result.problem


@pytest.mark.parametrize("statement", MOVES.values(), ids=MOVES.keys())
def test_rows_moved_or_removed_are_judged_by_the_helpers_as_by_one_walk(
    signed_ledger: Ledger, operator_key: OperatorKey, statement: str
) -> None:
    with signed_ledger.engine.begin() as conn:
        conn.execute(text(statement))
    kind, result = judged_alike(signed_ledger, operator_key)
    assert kind == "result"
    assert not result.ok


@pytest.mark.parametrize("name", ["recipients with NaN", "a detail with a float",
                                  "a sender as bytes"])
def test_a_rewritten_value_is_judged_or_raised_by_the_helpers_as_by_one_walk(
    signed_ledger: Ledger, operator_key: OperatorKey, name: str
) -> None:
    table, seq, column, value = TEXTS[name]
    refused, refused_events = refused_packet(
        envelope_bytes(99), "XML_MALFORMED", organization=None, account="guest")
    signed_ledger.write([refused], refused_events)
    if isinstance(value, bytes) and signed_ledger.engine.dialect.name != "sqlite":
        pytest.skip("a PostgreSQL text column holds no bytes")
    with signed_ledger.engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE seq = :s"),  # noqa: S608
                     {"v": value, "s": seq})
    judged_alike(signed_ledger, operator_key)


def test_the_segments_are_walked_by_the_helpers_not_by_the_caller(
    signed_ledger: Ledger,
) -> None:
    helpers = Helpers.of(signed_ledger.engine, signed_ledger.blobs, 2, TINY)
    assert helpers is not None
    with signed_ledger.engine.connect() as conn, conn.begin():
        segments = plan_segments(30, (), helpers.segments(30))
        walks = helpers.walk(conn, signed_ledger.blobs, segments, check_bytes=True,
                             progress=None, meanwhile=lambda: None)
    assert len(walks) == len(segments) == 8
    assert all(walk.walker != os.getpid() and walk.problem is None for _, walk in walks)
    assert len({walk.walker for _, walk in walks}) == 2


def test_helpers_that_cannot_open_the_ledger_leave_the_walk_to_the_caller(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path
) -> None:
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_events WHERE seq = 14"))
    expected = signed_ledger.verify(verify_signature=operator_key.check, jobs=1)
    nowhere = Helpers(f"sqlite:///{tmp_path / 'no-such-ledger.sqlite3'}", None, 2, TINY)
    with signed_ledger.engine.connect() as conn, conn.begin():
        segments = plan_segments(30, (), nowhere.segments(30))
        walks = nowhere.walk(conn, signed_ledger.blobs, segments, check_bytes=True,
                             progress=None, meanwhile=lambda: None)
        result, _ = judge_walks(walks, {}, _CheckpointChecker(None, None), False)
    assert all(walk.walker == os.getpid() for _, walk in walks)
    assert result is not None
    assert (result.first_bad_row, result.problem) == (expected.first_bad_row, expected.problem)


@pytest.mark.postgres
def test_on_postgresql_the_helpers_read_the_callers_snapshot(
    postgres_url: str, operator_key: OperatorKey
) -> None:
    with Ledger.open(postgres_url, checkpoint_every=8, checkpoint_signer=operator_key.sign,
                     checkpoint_cert_pem=operator_key.cert_pem) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
        helpers = Helpers.of(ledger.engine, None, 2, TINY)
        assert helpers is not None

        def tamper() -> None:  # after the caller's snapshot, before or while the helpers read
            with ledger.engine.begin() as other:
                other.execute(text("UPDATE ledger_events SET reason = 'forged' WHERE seq = 24"))

        with ledger.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                assert conn.execute(text("SELECT seq FROM ledger_head")).scalar_one() == 30
                segments = plan_segments(30, (), helpers.segments(30))
                walks = helpers.walk(conn, None, segments, check_bytes=False,
                                        progress=None, meanwhile=tamper)
        assert [walk.problem for _, walk in walks] == [None] * 8
        assert all(walk.walker != os.getpid() for _, walk in walks)
        after = ledger.verify(verify_signature=operator_key.check, jobs=2,
                              min_segment_rows=TINY)
        assert (after.first_bad_row, "modified" in (after.problem or "")) == (24, True)


def test_a_short_chain_is_walked_in_one_process() -> None:
    helpers = Helpers("sqlite:////x", None, 4)
    assert helpers.segments(4 * helpers.min_segment_rows - 1) == 1
    assert helpers.segments(1_000_000) == 16
    assert Helpers("sqlite:////x", None, 1).segments(1_000_000) == 1


def test_the_segments_cover_every_row_once_with_their_checkpoints() -> None:
    for total, count in ((30, 8), (7, 3), (1, 4), (1_000_000, 16), (0, 2)):
        segments = plan_segments(total, range(0, total + 50, 10), count)
        assert (segments[0].after, segments[-1].up_to) == (0, total)
        assert all(a.up_to == b.after for a, b in itertools.pairwise(segments))
        marks = [s for segment in segments for s in segment.checkpoints]
        assert marks == [s for s in range(10, total + 1, 10)]


def test_progress_reaches_the_caller_from_the_helpers(tmp_path: Path) -> None:
    seen: list[int] = []
    rows = 2 * PROGRESS_EVERY
    with Ledger.open(f"sqlite:///{tmp_path / 'long.sqlite3'}") as ledger:
        for start in range(0, rows // 5, 1000):
            ledger.write(*sample_batch(start, 1000))
        result = ledger.verify(lambda done, total: seen.append(done), jobs=2,
                               min_segment_rows=rows // 8)
    assert (result.ok, result.rows) == (True, rows)
    assert seen[-1] == rows
    assert seen == sorted(seen)


def test_a_segment_begins_from_the_link_stored_where_the_one_before_ends(
    signed_ledger: Ledger,
) -> None:
    with signed_ledger.engine.connect() as conn, conn.begin():
        first, second = plan_segments(30, (), 2)
        one = walk_segment(conn, None, first, None, check_bytes=False)
        two = walk_segment(conn, None, second, None, check_bytes=False)
    assert one.start is not None
    assert two.start == one.link


def test_a_tampered_report_is_the_modified_row_not_the_rollups_error(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    # The rollup check (run while the helpers walk) cannot parse the report; one walk never
    # gets there: the row is modified
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_documents SET report = 'not json' WHERE seq = 11"))
    kind, result = judged_alike(signed_ledger, operator_key)
    assert kind == "result"
    assert (result.first_bad_row, "modified" in (result.problem or "")) == (11, True)


def test_an_error_of_the_rollup_check_is_raised_once_the_chain_holds(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE ledger_adoption"))
    kind, _ = judged_alike(signed_ledger, operator_key)
    assert kind == "raises"


def test_a_rollup_holding_values_the_hub_never_writes_is_judged_once_the_chain_holds(
    signed_ledger: Ledger, operator_key: OperatorKey
) -> None:
    if signed_ledger.engine.dialect.name != "sqlite":
        pytest.skip("a PostgreSQL integer column holds no text")
    with signed_ledger.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_adoption SET accepted = 'many'"))
    kind, result = judged_alike(signed_ledger, operator_key)
    assert kind == "result"
    assert (result.ok, "rollup" in (result.problem or "")) == (False, True)


@pytest.mark.parametrize("moved", ["11.5", "10.5", "3.5", "3.25"])
def test_a_position_stored_as_a_fraction_at_a_boundary_is_read_as_one_walk_reads_it(
    signed_ledger: Ledger, operator_key: OperatorKey, moved: str
) -> None:
    # SQLite keeps 11.5 in an integer column; the walk reads int(seq). Rows 3 and 11 end
    # segments here: the segment after begins from a row found by that reading, or its
    # helper's walk is not taken and the caller walks it from the link it has.
    if signed_ledger.engine.dialect.name != "sqlite":
        pytest.skip("a PostgreSQL bigint column holds no fraction")
    row = int(float(moved))
    with signed_ledger.engine.begin() as conn:
        for table in ("ledger_documents", "ledger_events"):
            conn.execute(text(f"UPDATE {table} SET seq = {moved} WHERE seq = {row}"))  # noqa: S608
    judged_alike(signed_ledger, operator_key)


def test_a_helper_walk_begun_from_another_link_is_not_taken(signed_ledger: Ledger) -> None:
    # Segments that do not meet (rows 4 and 5 skipped): the helper walks rows 6-7 from the
    # link stored at row 5, not the one the walk of rows 1-3 ended on, so the caller walks
    # them itself from its own link — and the chain breaks at row 6.
    helpers = Helpers.of(signed_ledger.engine, signed_ledger.blobs, 2, TINY)
    assert helpers is not None
    apart = [Segment(0, 3, 30), Segment(5, 7, 30)]
    with signed_ledger.engine.connect() as conn, conn.begin(), logged() as events:
        walks = helpers.walk(conn, signed_ledger.blobs, apart, check_bytes=True,
                                progress=None, meanwhile=lambda: None)
    (_, first), (_, second) = walks
    assert first.walker != os.getpid()
    assert (second.walker, second.start, second.bad_row) == (os.getpid(), first.link, 6)
    assert "breaks the chain" in (second.problem or "")
    walked = [e for e in events if e["event"] == "ledger.verify.segments"]
    assert (walked[0]["by_helpers"], walked[0]["by_caller"]) == (1, 1)


@pytest.mark.postgres
def test_on_postgresql_a_helper_behind_a_queued_lock_leaves_its_segments_to_the_caller(
    postgres_url: str, operator_key: OperatorKey
) -> None:
    # The caller holds its share locks; a table change queued behind them would hold the
    # helpers, and the caller would wait for them unseen by the server: they give up.
    with Ledger.open(postgres_url) as ledger:
        for start in (0, 2, 4):
            ledger.write(*sample_batch(start, 2))
        helpers = Helpers.of(ledger.engine, None, 2, TINY)
        assert helpers is not None
        other = create_engine(postgres_url)

        column = f"extra_{uuid.uuid4().hex}"
        altered: list[object] = []

        def alter() -> None:
            try:
                with other.begin() as conn:
                    conn.execute(text(f"ALTER TABLE ledger_events ADD COLUMN {column} integer"))
                altered.append("done")
            except Exception as error:  # reported by the waiting loop below
                altered.append(error)

        change = threading.Thread(target=alter)
        with ledger.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin(), logged() as events:
                conn.execute(text("SELECT count(*) FROM ledger_events")).scalar_one()
                change.start()  # queued behind this transaction's share lock
                deadline = time.monotonic() + 60
                # Autocommit: a transaction reads pg_stat_activity once, at its first look.
                with other.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
                    while not watch.execute(text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                            " 'Lock' AND query LIKE :q"), {"q": f"%{column}%"}).scalar_one():
                        # the change cannot end before this transaction does: if it did, say how
                        assert not altered, f"the table change was not queued: {altered}"
                        assert time.monotonic() < deadline, "the table change was never queued"
                segments = plan_segments(30, (), helpers.segments(30))
                walks = helpers.walk(conn, None, segments, check_bytes=False,
                                        progress=None, meanwhile=lambda: None)
        change.join()
        other.dispose()
        assert altered == ["done"], altered
        assert [walk.problem for _, walk in walks] == [None] * 8
        walked = [e for e in events if e["event"] == "ledger.verify.segments"]
        assert walked[0]["by_caller"] >= 1, walked


def test_helpers_do_not_import_code_from_the_working_directory(
    signed_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An auditor verifying inside an unpacked directory that holds a package of a name the
    # helpers import: the helpers never run it (nor does the hub command)
    planted = tmp_path / "unpacked"
    (planted / "sqlalchemy").mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (planted / "sqlalchemy" / "__init__.py").write_text(
        f"open({str(ran)!r}, 'w').close()\nraise SystemExit(3)\n")
    monkeypatch.chdir(planted)
    helpers = Helpers.of(signed_ledger.engine, signed_ledger.blobs, 2, TINY)
    assert helpers is not None
    with signed_ledger.engine.connect() as conn, conn.begin(), logged() as events:
        walks = helpers.walk(conn, signed_ledger.blobs, plan_segments(30, (), 8),
                                check_bytes=True, progress=None, meanwhile=lambda: None)
    assert not ran.exists()
    assert all(walk.walker != os.getpid() for _, walk in walks)
    assert not [e for e in events if e["log_level"] == "warning"], events
