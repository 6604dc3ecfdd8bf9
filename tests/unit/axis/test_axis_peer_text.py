"""What the axis (or whatever answers at its URL) says is data to check before it decides a
document's fate or reaches the ledger and the logs (pure): a 4xx is a refusal only in the axis'
own words, and a listed entry whose text fields hold control characters or are too long is an
unusable entry that says why — without repeating the offending characters."""

from __future__ import annotations

import json

import pytest

from hub.axis.protocol import Answer, Listed, Verdict, judge_send


@pytest.mark.parametrize(("code", "body", "verdict"), [
    pytest.param(404, "<html><h1>404 Not Found</h1>nginx</html>", Verdict.TRANSIENT,
                 id="a proxy's 404 page"),
    pytest.param(400, "<html><h1>400 Bad Request</h1>nginx</html>", Verdict.TRANSIENT,
                 id="a proxy's 400 page"),
    pytest.param(422, None, Verdict.TRANSIENT, id="an empty 422"),
    pytest.param(404, {"status": 404, "error": "Not Found", "path": "/sendEdoc"},
                 Verdict.TRANSIENT, id="a gateway's JSON error"),
    pytest.param(400, {"status": "OK"}, Verdict.TRANSIENT, id="a 400 that says OK"),
    pytest.param(400, {"status": "FAIL", "ErrorCode": "AGENCY_NOT_FOUND"}, Verdict.REFUSED,
                 id="the axis' FAIL with its code"),
    pytest.param(422, {"status": "FAIL"}, Verdict.REFUSED, id="the axis' bare FAIL"),
    pytest.param(400, {"ErrorCode": "INVALID_EDXML", "ErrorDesc": "x"}, Verdict.REFUSED,
                 id="the axis' error code without a status"),
    pytest.param(409, {"status": "FAIL", "ErrorCode": "DUPLICATE", "DocID": "d1"},
                 Verdict.DUPLICATE, id="the duplicate answer"),
    pytest.param(307, None, Verdict.TRANSIENT, id="a redirect"),
])
def test_a_4xx_is_a_refusal_only_when_it_is_the_axis_answer(
    code: int, body: object, verdict: Verdict
) -> None:
    assert judge_send(Answer.from_json(code, body)) is verdict


C0_C1_DEL = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize("char", [*C0_C1_DEL, "\ud800"],
                         ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", ["from", "messagetype", "servicetype", "to", "to[]"])
def test_a_listed_entry_whose_text_holds_a_control_character_is_unusable_and_keeps_its_id(
    field: str, char: str
) -> None:
    # Given an entry with a usable id and one text field carrying the character
    item: dict[str, object] = {"id": "doc-1", "from": "000.00.00.G09",
                               "to": "000.00.00.H27", "messagetype": "edoc"}
    if field == "to[]":
        item["to"] = ["000.00.00.H27", f"000.00.{char}00.H28"]
    else:
        item[field] = f"000.00.00{char}.G09" if field in ("from", "to") else f"ed{char}oc"
    # When it is read
    listed = Listed.from_json(item)
    # Then it is unusable, says which field and which character, and can be refused by its id
    assert not listed.usable
    name = "to" if field == "to[]" else field
    assert f'"{name}"' in listed.problem
    assert f"U+{ord(char):04X}" in listed.problem
    assert listed.id == "doc-1"
    # and nothing of what it carried that cannot be stored reaches the ledger or the logs
    for text in (listed.problem, listed.sender, listed.message_type, listed.service_type,
                 *listed.to):
        assert char not in text
    json.dumps(listed.problem, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("char", [*C0_C1_DEL, "\udfff"], ids=lambda c: f"U+{ord(c):04X}")
def test_a_listed_id_holding_a_control_character_is_no_usable_id(char: str) -> None:
    listed = Listed.from_json({"id": f"doc{char}1", "from": "000.00.00.G09"})
    assert not listed.usable
    assert listed.id == ""  # it cannot be named in the ledger, nor to the axis
    assert '"id"' in listed.problem
    assert f"U+{ord(char):04X}" in listed.problem
    assert char not in listed.problem


@pytest.mark.parametrize(("field", "value", "limit"), [
    ("from", "0" * 65, 64),
    ("messagetype", "e" * 33, 32),
    ("servicetype", "e" * 33, 32),
    ("to", "0" * 65, 64),
    ("to[]", ["000.00.00.H27", "0" * 65], 64),
])
def test_a_listed_text_field_longer_than_its_bound_is_unusable_rather_than_cut(
    field: str, value: object, limit: int
) -> None:
    item = {"id": "doc-1", "from": "000.00.00.G09", "to": "000.00.00.H27",
            "messagetype": "edoc", field.removesuffix("[]"): value}
    listed = Listed.from_json(item)
    assert not listed.usable
    assert listed.id == "doc-1"
    assert f'"{field.removesuffix("[]")}"' in listed.problem
    assert f"longer than {limit}" in listed.problem


def test_ordinary_vietnamese_and_spaces_are_fine_in_listed_fields() -> None:
    listed = Listed.from_json({"id": "VB-2026/01 số 5", "from": "000.00.00.G09",
                               "to": " 000.00.00.H27 , 000.00.01.H27 ", "messagetype": "edoc"})
    assert listed.usable, listed.problem
    assert listed.to == ("000.00.00.H27", "000.00.01.H27")
    assert listed.id == "VB-2026/01 số 5"
