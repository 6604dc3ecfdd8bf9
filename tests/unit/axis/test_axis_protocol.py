"""The axis protocol (pure): answer verdicts, message types, status words, request signatures."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub.axis.protocol import (
    Agency,
    Answer,
    Listed,
    MessageType,
    StatusWord,
    Verdict,
    auth_headers,
    judge_send,
    message_type_of,
    request_signature,
)
from hub.edxml import parse_packet
from hub.edxml.build import build_envelope, build_status, response_for, sample_header, sample_trace
from hub.edxml.model import BusinessDocType, Organization


def _answer(code: int, **body: str) -> Answer:
    return Answer.from_json(code, body)


@pytest.mark.parametrize(("answer", "verdict"), [
    (_answer(200, status="OK", ErrorCode="0", DocID="d1"), Verdict.ACCEPTED),
    (_answer(200, status="OK", ErrorCode="DUPLICATE", DocID="d1"), Verdict.DUPLICATE),
    (_answer(409, status="FAIL", ErrorCode="DUPLICATE", DocID="d1"), Verdict.DUPLICATE),
    (_answer(400, status="FAIL", ErrorCode="AGENCY_NOT_FOUND", ErrorDesc="x"), Verdict.REFUSED),
    (_answer(200, status="FAIL", ErrorCode="INVALID"), Verdict.REFUSED),
    (_answer(422, status="FAIL", ErrorCode="INVALID"), Verdict.REFUSED),
    (_answer(422), Verdict.TRANSIENT),  # no word of the axis: a proxy's page, try again
    (_answer(401, status="FAIL"), Verdict.UNAUTHORIZED),
    (_answer(403), Verdict.UNAUTHORIZED),
    (_answer(503, status="FAIL"), Verdict.TRANSIENT),
    (_answer(500), Verdict.TRANSIENT),
    (_answer(429), Verdict.TRANSIENT),
    (_answer(408), Verdict.TRANSIENT),
    (Answer.from_json(200, "<html>proxy</html>"), Verdict.TRANSIENT),
    (_answer(200, status="OK"), Verdict.TRANSIENT),  # no DocID: not the axis' acceptance
], ids=lambda v: v.summary if isinstance(v, Answer) else v.value)
def test_each_kind_of_axis_answer_gets_the_verdict_that_decides_the_documents_fate(
    answer: Answer, verdict: Verdict
) -> None:
    assert judge_send(answer) is verdict


def test_a_refused_credential_is_never_a_refused_document() -> None:
    # 401/403 are the connector's problem: dead-lettering every document would be wrong.
    for code in (401, 403):
        assert judge_send(_answer(code, status="FAIL", ErrorCode="X")) is not Verdict.REFUSED


def test_the_message_type_follows_the_business_kind_and_a_status_is_a_status() -> None:
    header = sample_header("000.00.00.H27", ("000.00.00.G09",), number="1", subject="s",
                           promulgation_date=dt.date(2025, 3, 3))
    new = parse_packet(build_envelope(header))
    assert message_type_of(new) is MessageType.EDOC  # type: ignore[arg-type]
    recall = parse_packet(build_envelope(header, trace=sample_trace(
        "000.00.00.H27", dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC),
        kind=BusinessDocType.REVOCATION)))
    assert message_type_of(recall) is MessageType.REVOCATION  # type: ignore[arg-type]
    status = parse_packet(build_status(
        response_for=response_for(header), sender=Organization("000.00.00.G09"),
        status_code="03", timestamp=dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)))
    assert message_type_of(status) is MessageType.STATUS


def test_status_words_map_onto_qcvn_102_codes_both_ways() -> None:
    assert StatusWord.ACCEPTANCE.qcvn_code == "03"
    assert StatusWord.INBOX.qcvn_code == "01"
    assert StatusWord.FAIL.qcvn_code is None
    assert StatusWord.for_code("02") is StatusWord.REJECTION
    assert StatusWord.for_code("04") is StatusWord.PROCESSING
    assert StatusWord.for_code("13") is None


def test_the_request_signature_covers_who_when_which_operation_and_the_exact_body() -> None:
    base = ("system", "2026-12-06T00:00:00Z", "POST", "/sendEdoc", b"<edXML/>")
    signature = request_signature("secret", *base)
    assert request_signature("secret", *base) == signature
    assert request_signature("other", *base) != signature
    for i, changed in enumerate(("sys2", "2026-12-06T00:00:01Z", "GET", "/getEdoc", b"<x/>")):
        altered = list(base)
        altered[i] = changed
        assert request_signature("secret", *altered) != signature  # type: ignore[arg-type]
    headers = auth_headers("system", "secret", *base[1:])
    assert "secret" not in " ".join(headers.values())  # the secret itself never travels


def test_listing_and_agency_entries_are_read_defensively() -> None:
    assert not Listed.from_json({"no": "id"}).usable
    item = Listed.from_json({"id": "a", "from": "G09", "to": "H27.01, H27.02",
                             "messagetype": "edoc"})
    assert item is not None
    assert item.to == ("H27.01", "H27.02")
    assert Agency.from_json({"code": "", "name": "x"}) is None
    agency = Agency.from_json({"code": "G09", "code102": "000.00.00.G09", "name": "Bộ Nội vụ"})
    assert agency is not None
    assert agency.codes == ("000.00.00.G09", "G09")


@pytest.mark.parametrize(("item", "listed_id", "problem"), [
    ({"id": "a", "from": "G09", "to": 7, "messagetype": "edoc"}, "a", '"to"'),
    ({"id": "a", "to": ["H27", 7]}, "a", '"to"'),
    ({"id": "a", "to": {"code": "H27"}}, "a", '"to"'),
    ({"id": "a", "from": {"code": "G09"}}, "a", '"from"'),
    ({"id": "a", "messagetype": ["edoc"]}, "a", '"messagetype"'),
    ({"id": "a", "servicetype": 1}, "a", '"servicetype"'),
    ({"id": ["a"]}, "", '"id"'),
    ({"id": True}, "", '"id"'),
    ({"id": "x" * 201}, "", '"id"'),
    ({"no": "id"}, "", '"id"'),
    (42, "", "not an object"),
    ([{"id": "a"}], "", "not an object"),
], ids=lambda v: json.dumps(v)[:60] if not isinstance(v, str) else v)
def test_a_listed_entry_with_a_field_of_the_wrong_json_type_is_read_as_unusable_and_says_why(
    item: object, listed_id: str, problem: str
) -> None:
    listed = Listed.from_json(item)
    assert not listed.usable
    assert listed.id == listed_id  # kept when usable: the entry can be refused back by it
    assert problem in listed.problem


def test_a_listed_entry_of_strings_or_a_list_of_strings_is_usable() -> None:
    for to in ("H27.01, H27.02", ["H27.01", "H27.02"]):
        listed = Listed.from_json({"id": "a", "from": "G09", "to": to, "messagetype": "edoc"})
        assert listed.usable
        assert (listed.id, listed.sender, listed.to, listed.problem) == (
            "a", "G09", ("H27.01", "H27.02"), "")
    bare = Listed.from_json({"id": 12})
    assert bare.usable
    assert (bare.id, bare.to) == ("12", ())


def test_answer_fields_that_are_not_text_are_not_read_as_text() -> None:
    answer = Answer.from_json(200, {"status": ["OK"], "ErrorCode": {"a": 1}, "DocID": [1]})
    assert (answer.status, answer.error_code, answer.doc_id) == ("", "", "")
    assert judge_send(answer) is Verdict.TRANSIENT
