"""Organization codes (QCVN 102:2016 legacy and Decision 20/2020/QĐ-TTg) and DocumentIds."""

from __future__ import annotations

from datetime import date

import pytest

from hub.edxml import DocumentId, EnvelopeRefused, OrgCode, OrgCodeFormat
from hub.reasons import Reason


@pytest.mark.parametrize(
    ("text", "fmt", "level1", "depth", "parent"),
    [
        ("000.00.00.H27", OrgCodeFormat.LEGACY, "H27", 1, None),
        ("000.00.01.H27", OrgCodeFormat.LEGACY, "H27", 2, "000.00.00.H27"),
        ("000.05.31.H27", OrgCodeFormat.LEGACY, "H27", 3, "000.00.31.H27"),
        ("001.05.31.H27", OrgCodeFormat.LEGACY, "H27", 4, "000.05.31.H27"),
        ("000.00.18.G12", OrgCodeFormat.LEGACY, "G12", 2, "000.00.00.G12"),
        ("00.64.H29", OrgCodeFormat.LEGACY3, "H29", 2, "00.00.H29"),
        ("00.00.H29", OrgCodeFormat.LEGACY3, "H29", 1, None),
        ("H27", OrgCodeFormat.EID, "H27", 1, None),
        ("H27.01", OrgCodeFormat.EID, "H27", 2, "H27"),
        ("H37.DN.001", OrgCodeFormat.EID, "H37", 3, "H37.DN"),
    ],
)
def test_a_code_is_read_in_its_own_direction(
    text: str, fmt: OrgCodeFormat, level1: str, depth: int, parent: str | None
) -> None:
    code = OrgCode.parse(text)
    assert code.format is fmt
    assert code.level1 == level1
    assert code.depth == depth
    assert (None if code.parent is None else str(code.parent)) == parent


def test_str_keeps_the_code_as_received() -> None:
    code = OrgCode.parse(" 000.00.01.H27 ")
    assert str(code) == " 000.00.01.H27 "
    assert code.normalized == "000.00.01.H27"


def test_the_ancestors_of_a_commune_lead_to_the_province() -> None:
    chain = [str(c) for c in OrgCode.parse("000.05.31.H27").ancestors()]
    assert chain == ["000.00.31.H27", "000.00.00.H27"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "000.00.00.h27",
        "000.00.00.H2",
        "0000.00.00.H27",
        "000.00.00.27",
        "000-00-00-H27",
        "H27.",
        "H27..01",
        "h27.01",
        "H27.01.ví",
        "H27." + "1" * 40,
        "27.H01",
    ],
)
def test_a_malformed_code_is_refused_as_organ_id_invalid(text: str) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        OrgCode.parse(text)
    assert caught.value.reason is Reason.ORGAN_ID_INVALID
    assert not OrgCode.is_valid(text)


def test_an_electronic_identifier_may_be_35_characters_but_not_36() -> None:
    ok = "H27." + "A" * 31
    assert len(ok) == 35
    assert OrgCode.parse(ok).format is OrgCodeFormat.EID
    assert not OrgCode.is_valid(ok + "B")


def test_a_document_id_is_parsed_and_printed_back() -> None:
    text = "000.00.01.H27,2026/11/20,125/QĐ-UBND"
    doc = DocumentId.parse(text)
    assert doc == DocumentId("000.00.01.H27", date(2026, 11, 20), "125", "QĐ-UBND")
    assert str(doc) == text


def test_a_document_id_notation_may_contain_slashes() -> None:
    assert DocumentId.parse("H27.01,2026/01/02,7/KH/UBND").notation == "KH/UBND"


@pytest.mark.parametrize(
    "text",
    [
        "000.00.01.H27,2026/11/20",
        "000.00.01.H27;2026/11/20;125/UBND",
        "bad,2026/11/20,125/UBND",
        "000.00.01.H27,20/11/2026,125/UBND",
        "000.00.01.H27,2026/02/30,125/UBND",
        "000.00.01.H27,2026/11/20,125",
        "000.00.01.H27,2026/11/20,/UBND",
        "000.00.01.H27,2026/11/20,125/",
    ],
)
def test_a_malformed_document_id_is_refused(text: str) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        DocumentId.parse(text)
    assert caught.value.reason is Reason.DOCUMENT_ID_INVALID
