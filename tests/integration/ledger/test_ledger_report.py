"""The adoption report counts refused packets too (issue 17 item 2), from a rollup every ledger
write keeps (issue 20): the rollup answers as the documents do.

The rows are real packets, signed with the test PKI and judged by the hub's parser and
validators, recorded in the shape the pipeline writes (:mod:`real_packets`), always through
``Ledger.write``: the rollup (``ledger_adoption``) is only ever written by the ledger itself.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, event, inspect
from sqlalchemy import text as sql

from hub.ledger import DocumentIn, EventIn, Ledger
from hub.ledger.adoption import report_facts, stored_rows
from hub.ledger.backup import backup, restore
from hub.ledger.chart import render_chart
from hub.ledger.migrate import alembic_config
from hub.ledger.report import (
    PERIODS,
    adoption_report,
    adoption_report_scan,
    render_csv,
    render_json,
    render_table,
)
from hub.ops.cli import main
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import refused_packet
from tests.integration.ledger.real_packets import (
    SENDER,
    Recorded,
    record,
    signed_envelope,
)
from tests.pki_fixtures import AT, GeneratedPki

FORMAT_ONLY = "000.05.01.H27"
"""An organization whose only packet this month was refused."""


@pytest.fixture(scope="module")
def recorded(pki: GeneratedPki) -> list[Recorded]:
    out = [record(pki, signed_envelope(pki, str(n)), account="vp-ubnd") for n in (1, 2, 3)]
    # the PDF lacks the person's signature: refused by the validators
    out.append(record(pki, signed_envelope(pki, "4", person=False), account="vp-ubnd"))
    # signed with a business certificate from a public CA
    out.append(record(pki, signed_envelope(pki, "5", signer=pki.business), account="vp-ubnd"))
    # unparseable bytes, from an account the directory maps to an organization, and from one
    # it does not know
    out.append(record(pki, b"<edXML><unclosed>", account="so-tttt",
                      account_organization=FORMAT_ONLY))
    out.append(record(pki, b"\x89PNG not a packet", account="ghost"))
    return out


def _write(ledger: Ledger, recorded: list[Recorded]) -> None:
    for r in recorded:
        ledger.write([r.document], r.events)
    # and a routing refusal, as the pipeline records it (the route is its decision)
    document, events = refused_packet(b"<edXML routed='nowhere'/>", Reason.RECIPIENT_UNKNOWN,
                                      organization=SENDER, account="vp-ubnd",
                                      at=AT + timedelta(days=40))
    ledger.write([document], events)


def test_the_real_validators_gave_the_reasons_the_report_will_count(
    recorded: list[Recorded],
) -> None:
    assert [r.reason for r in recorded] == [
        "OK", "OK", "OK", "PDF_PERSON_SIGNATURE_MISSING", "CERT_PUBLIC_CA",
        "ENVELOPE_MALFORMED", "ENVELOPE_MALFORMED"]


def test_the_adoption_report_counts_sent_accepted_and_refused_by_class(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        rows = {(r.organ_id, r.period): r for r in adoption_report(ledger)}
    assert set(rows) == {(SENDER, "2026-03"), (SENDER, "2026-04"), (FORMAT_ONLY, "2026-03"),
                         ("account:ghost", "2026-03")}
    march = rows[(SENDER, "2026-03")]
    assert (march.sent, march.accepted, march.refused_total) == (5, 3, 2)
    assert (march.signed_valid, march.pdf_both) == (3, 3)
    assert march.share_valid == pytest.approx(0.6)
    assert dict(march.refused) == {"signature": 1, "certificate": 1, "format": 0, "routing": 0,
                                   "duplicate": 0, "other": 0}
    assert march.reasons == {"CERT_PUBLIC_CA": 1, "PDF_PERSON_SIGNATURE_MISSING": 1}
    # organizations that only had refusals appear, under their account when nothing names one
    only = rows[(FORMAT_ONLY, "2026-03")]
    assert (only.sent, only.accepted, only.refused["format"], only.share_valid) == (1, 0, 1, 0.0)
    assert rows[("account:ghost", "2026-03")].refused["format"] == 1
    assert rows[(SENDER, "2026-04")].refused["routing"] == 1


MARCH = datetime(2026, 3, 1, tzinfo=UTC)
DAY = datetime(2026, 3, 2, tzinfo=UTC)
"""The day of :data:`AT`, midnight UTC."""
VN = timedelta(hours=7)
"""A Vietnam midnight is 17:00 UTC the day before (the console's form dates)."""
WINDOWS = [
    (None, None), (DAY, DAY + timedelta(days=1)), (DAY - timedelta(days=1), DAY),
    (MARCH, datetime(2026, 4, 1, tzinfo=UTC)), (datetime(2026, 2, 1, tzinfo=UTC), MARCH),
    (datetime(2026, 4, 1, tzinfo=UTC), None), (None, datetime(2026, 4, 1, tzinfo=UTC)),
    (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    # windows with hours: whole days from the rollup, the edges from the documents
    (DAY - VN, DAY + timedelta(days=1) - VN), (MARCH - VN, datetime(2026, 4, 1, tzinfo=UTC) - VN),
    (AT - timedelta(minutes=5), datetime(2026, 4, 15, tzinfo=UTC)),
    (AT + timedelta(minutes=1), None), (None, AT + timedelta(seconds=1)),
    (AT - timedelta(minutes=1), AT + timedelta(minutes=1)), (AT + timedelta(minutes=1), AT),
]
"""Windows with bounds at midnight UTC, with hours (Vietnam days), none, or within a day."""


def _write_one(ledger: Ledger, packet: tuple[DocumentIn, list[EventIn]]) -> None:
    ledger.write([packet[0]], packet[1])


def _answers_as_the_documents_do(ledger: Ledger) -> None:
    for since, until in WINDOWS:
        for period in PERIODS:
            assert (adoption_report(ledger, since=since, until=until, period=period)
                    == adoption_report_scan(ledger, since=since, until=until, period=period)), (
                since, until, period)


def test_the_rollup_answers_as_the_documents_do_for_every_window_and_period(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        _answers_as_the_documents_do(ledger)
        assert len(adoption_report(ledger, period="day")) == 4
        # and `hub ledger verify` recomputes the rollup and finds it equal
        assert ledger.verify().ok


def test_a_window_with_hours_counts_its_edges_from_the_documents(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        # the envelopes came at 08:05 UTC: a window from 08:06 holds only the April refusal
        rows = adoption_report(ledger, since=AT + timedelta(minutes=1))
        assert [(r.organ_id, r.period, r.sent) for r in rows] == [(SENDER, "2026-04", 1)]
        # the Vietnam day of AT (17:00 UTC to 17:00 UTC) holds them all but that refusal
        rows = adoption_report(ledger, since=DAY - VN, until=DAY + timedelta(days=1) - VN)
        assert sum(r.sent for r in rows) == len(recorded)


ORDERS = ("refused, then accepted in a later batch", "refused and accepted in one batch",
          "accepted and refused in one batch", "accepted, then refused as a duplicate")


@pytest.mark.parametrize("order", ORDERS)
def test_a_packet_refused_then_accepted_on_a_replay_counts_once_as_accepted(
    ledger_url: str, pki: GeneratedPki, recorded: list[Recorded], order: str,
) -> None:
    accepted = recorded[0]
    reason = Reason.DUPLICATE if "duplicate" in order else Reason.RECIPIENT_UNKNOWN
    refused, refused_events = refused_packet(accepted.document.raw, reason,
                                             organization=SENDER, account="vp-ubnd", at=AT)
    batches: dict[str, list[tuple[list[DocumentIn], list[EventIn]]]] = {
        ORDERS[0]: [([refused], refused_events), ([accepted.document], accepted.events)],
        ORDERS[1]: [([refused, accepted.document], [*refused_events, *accepted.events])],
        ORDERS[2]: [([accepted.document, refused], [*accepted.events, *refused_events])],
        ORDERS[3]: [([accepted.document], accepted.events), ([refused], refused_events)],
    }
    with Ledger.open(ledger_url) as ledger:
        for documents, events in batches[order]:
            ledger.write(documents, events)
        assert len(ledger.documents(kind="refused")) == 1  # both were recorded
        (row,) = adoption_report(ledger)
        assert (row.sent, row.accepted, row.refused_total) == (1, 1, 0)
        assert (row.signed_valid, row.pdf_both) == (1, 1)
        _answers_as_the_documents_do(ledger)
        assert ledger.verify().ok


def test_a_refusal_taken_back_a_month_later_leaves_no_row_for_its_month_or_account(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    # Given bytes refused in February from an account the directory does not know
    accepted = recorded[1]
    refused = refused_packet(accepted.document.raw, Reason.SENDER_UNKNOWN, organization=None,
                             account="ghost", at=AT - timedelta(days=5))
    with Ledger.open(ledger_url) as ledger:
        _write_one(ledger, refused)
        (february,) = adoption_report(ledger)
        assert (february.organ_id, february.period, february.refused["routing"]) == (
            "account:ghost", "2026-02", 1)
        # When the operator replays them in March and the hub accepts them
        ledger.write([accepted.document], accepted.events)
        # Then they count once, as accepted in March: February has nothing left
        (row,) = adoption_report(ledger)
        assert (row.organ_id, row.period, row.sent, row.accepted) == (SENDER, "2026-03", 1, 1)
        assert adoption_report(ledger, since=datetime(2026, 2, 1, tzinfo=UTC),
                               until=MARCH) == []
        _answers_as_the_documents_do(ledger)
        assert ledger.verify().ok


def test_the_facts_read_from_a_report_are_the_same_before_and_after_it_is_stored(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        for r in recorded:
            stored = ledger.report(r.document.digest)
            assert report_facts(r.document.report) == report_facts(stored), r.reason
    assert report_facts(recorded[0].document.report) == (True, True)
    assert report_facts(None) == report_facts({"checks": "nonsense"}) == (False, False)


@pytest.fixture
def statements(ledger_url: str) -> Iterator[tuple[Ledger, list[str]]]:
    """A ledger and the SQL statements its connections run (test-side listener)."""
    ledger = Ledger.open(ledger_url)
    seen: list[str] = []

    def listen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", listen)
    try:
        yield ledger, seen
    finally:
        ledger.close()


def test_a_batch_adds_to_the_rollup_in_one_statement_and_reads_back_only_for_a_replay(
    statements: tuple[Ledger, list[str]], recorded: list[Recorded],
) -> None:
    ledger, seen = statements
    refused = refused_packet(recorded[0].document.raw, Reason.RECIPIENT_UNKNOWN,
                             organization=SENDER, account="vp-ubnd", at=AT)
    _write_one(ledger, refused)
    seen.clear()
    batch = [recorded[0], *recorded[1:5]]  # a replay of the refused bytes, and four others
    ledger.write([r.document for r in batch], [e for r in batch for e in r.events])
    rollup = [s for s in seen if "ledger_adoption" in s]
    read_back = [s for s in seen if "ledger_documents.refusal" in s]
    assert len(rollup) == 1
    assert rollup[0].lstrip().upper().startswith("INSERT")
    assert len(read_back) == 1
    seen.clear()
    ledger.write([recorded[5].document, recorded[6].document],
                 [*recorded[5].events, *recorded[6].events])
    assert len([s for s in seen if "ledger_adoption" in s]) == 1
    assert [s for s in seen if "ledger_documents.refusal" in s] == []


def test_verify_finds_a_hand_edited_rollup_and_migrate_rebuilds_it(
    ledger_url: str, recorded: list[Recorded], capsys: pytest.CaptureFixture[str],
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        before = adoption_report(ledger)
    # Given someone who inflates the report's valid signatures in the database
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(sql("UPDATE ledger_adoption SET signed_valid = signed_valid + 40"
                          " WHERE reason = ''"))
    engine.dispose()
    with Ledger.open(ledger_url) as ledger:
        assert adoption_report(ledger) != before
        # Then verify says so, though the chain holds
        result = ledger.verify()
        assert not result.ok
        assert result.first_bad_row is None
        assert "adoption report's rollup" in (result.problem or "")
        assert f"{SENDER} 2026-03-02 accepted" in (result.problem or "")
    # And `hub ledger migrate --rebuild-adoption` puts the documents' figures back
    assert main(["ledger", "migrate", "--url", ledger_url, "--rebuild-adoption"]) == 0
    assert "adoption rollup rebuilt" in capsys.readouterr().out
    with Ledger.open(ledger_url) as ledger:
        assert adoption_report(ledger) == before
        assert ledger.verify().ok


def test_a_restored_ledger_reports_as_the_original_its_rollup_rebuilt(
    ledger_url: str, recorded: list[Recorded], tmp_path: Path,
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        expected = adoption_report(ledger, period="day")
        with ledger.engine.connect() as conn:
            rollup = stored_rows(conn)
        backup(ledger, tmp_path / "backup.zip")
    with Ledger.open(f"sqlite:///{tmp_path / 'restored.sqlite3'}") as target:
        counts = restore(tmp_path / "backup.zip", target)
        assert counts["ledger_adoption"] == len(rollup) == 6
        with target.engine.connect() as conn:
            assert stored_rows(conn) == rollup
        assert adoption_report(target, period="day") == expected
        assert target.verify().ok


def test_the_migration_fills_the_rollup_as_the_writes_did(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    # Given a ledger written with replays in every order (the rollup kept by the writes)
    replayed = refused_packet(recorded[0].document.raw, Reason.RECIPIENT_UNKNOWN,
                              organization=SENDER, account="vp-ubnd", at=AT)
    taken_back = refused_packet(recorded[1].document.raw, Reason.SENDER_UNKNOWN,
                                organization=None, account="ghost",
                                at=AT - timedelta(days=5))
    with Ledger.open(ledger_url) as ledger:
        _write_one(ledger, replayed)
        _write_one(ledger, taken_back)
        _write(ledger, recorded)
        _write_one(ledger, refused_packet(recorded[2].document.raw, Reason.DUPLICATE,
                                          organization=SENDER, account="vp-ubnd", at=AT))
        with ledger.engine.connect() as conn:
            written = stored_rows(conn)
        reports = {p: adoption_report(ledger, period=p) for p in PERIODS}
    # When the database goes back to r0004 (no rollup) and is upgraded again
    engine = create_engine(ledger_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "r0004")
    assert "ledger_adoption" not in inspect(engine).get_table_names()
    engine.dispose()
    with Ledger.open(ledger_url) as ledger:
        # Then r0005 filled it from the documents with what the writes had put there
        with ledger.engine.connect() as conn:
            assert stored_rows(conn) == written
        assert {p: adoption_report(ledger, period=p) for p in PERIODS} == reports
        _answers_as_the_documents_do(ledger)
        assert ledger.verify().ok


def test_the_report_renders_as_table_csv_and_json(
    ledger_url: str, recorded: list[Recorded],
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        rows = adoption_report(ledger, period="year")
    table = render_table(rows)
    assert FORMAT_ONLY in table
    assert "account:ghost" in table
    assert "Từ chối / Refused" in table
    lines = list(csv.DictReader(io.StringIO(render_csv(rows))))
    sender = next(line for line in lines if line["organ_id"] == SENDER)
    assert (sender["sent"], sender["accepted"], sender["refused"]) == ("6", "3", "3")
    assert (sender["refused_signature"], sender["refused_routing"]) == ("1", "1")
    assert sender["share_valid"] == "0.5000"
    data = json.loads(render_json(rows))
    assert {d["organ_id"] for d in data} == {SENDER, FORMAT_ONLY, "account:ghost"}


def test_the_chart_is_drawn_with_axes_legend_and_vietnamese_labels(
    ledger_url: str, recorded: list[Recorded], tmp_path: object,
) -> None:
    with Ledger.open(ledger_url) as ledger:
        _write(ledger, recorded)
        rows = adoption_report(ledger)
    svg = render_chart(rows, fmt="svg").decode("utf-8")
    for text in ("Số văn bản / Number of documents", "Đơn vị · kỳ / Organization · period",
                 "Ký số chuyên dùng hợp lệ / valid specialized signatures",
                 "Từ chối: chứng thư số / refused: certificate", f"{SENDER} · 2026-03",
                 "account:ghost · 2026-03", "hợp lệ 60%"):
        assert text in svg, text
    png = render_chart(rows, fmt="png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
