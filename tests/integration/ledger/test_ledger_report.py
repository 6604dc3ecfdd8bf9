"""The adoption report counts refused packets too (issue 17 item 2).

The rows are real packets, signed with the test PKI and judged by the hub's parser and
validators, recorded in the shape the pipeline writes (:mod:`real_packets`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from hub.ledger import Ledger
from hub.ledger.chart import render_chart
from hub.ledger.report import adoption_report, render_csv, render_json, render_table
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


def test_a_packet_refused_then_accepted_on_a_replay_counts_once_as_accepted(
    ledger_url: str, pki: GeneratedPki, recorded: list[Recorded],
) -> None:
    accepted = recorded[0]
    document, events = refused_packet(accepted.document.raw, Reason.RECIPIENT_UNKNOWN,
                                      organization=SENDER, account="vp-ubnd", at=AT)
    with Ledger.open(ledger_url) as ledger:
        ledger.write([document], events)
        ledger.write([accepted.document], accepted.events)
        (row,) = adoption_report(ledger)
    assert (row.sent, row.accepted, row.refused_total) == (1, 1, 0)


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
