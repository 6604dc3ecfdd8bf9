"""The rollup's readings of a stored document (pure): its day and its report's facts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub.ledger.adoption import day_of, report_facts, stored_report
from hub.ledger.chain import utc_text

PASSED_WITH_PDF = {
    "indication": "PASSED",
    "checks": [{"check": "signature", "indication": "PASSED"},
               {"check": "pdf", "indication": "PASSED",
                "evidence": {"main_person": "CCCD:1", "main_organization": "000.00.01.H27"}}],
}

TEXTS = {
    "the report the hub stores": json.dumps(PASSED_WITH_PDF, sort_keys=True),
    "a key twice (the last one counts)":
        '{"indication": "FAILED", "indication": "PASSED", "checks": []}',
    "NaN (orjson refuses it)": '{"indication": "PASSED", "checks": [], "n": NaN}',
    "a lone surrogate (orjson refuses it)":
        '{"indication": "PASSED", "checks": [{"check": "\\ud800"}]}',
    "an integer beyond 64 bits as a signer (orjson reads a float)":
        '{"indication": "PASSED", "checks": [{"check": "pdf", "indication": "PASSED",'
        ' "evidence": {"main_person": 123456789012345678901234567890,'
        ' "main_organization": -18446744073709551617}}]}',
    "an integer beyond 64 bits as the indication":
        '{"indication": 98765432109876543210987654321, "checks": []}',
    "not an object": "[1, 2, 3]",
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_a_stored_report_gives_the_facts_the_standard_librarys_reading_gives(text: str) -> None:
    assert report_facts(stored_report(text)) == report_facts(json.loads(text))


def test_no_stored_report_is_no_report() -> None:
    assert stored_report(None) is None
    assert report_facts(stored_report(None)) == (False, False)


def test_text_that_is_no_json_is_refused_as_the_standard_library_refuses_it() -> None:
    with pytest.raises(json.JSONDecodeError):
        stored_report('{"indication": ')


@pytest.mark.parametrize("at", [
    datetime(2026, 12, 7, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(999, 12, 31, 23, 0, tzinfo=UTC),
    datetime(9, 3, 4, tzinfo=UTC),
    datetime(2026, 12, 8, 1, 30, tzinfo=timezone(timedelta(hours=7))),
    datetime(2026, 12, 7, 20, 0, tzinfo=timezone(timedelta(hours=-7))),
], ids=str)
def test_a_documents_day_is_the_day_its_canonical_time_begins_with(at: datetime) -> None:
    assert day_of(at) == at.astimezone(UTC).strftime("%Y-%m-%d")
    assert utc_text(at).startswith(day_of(at) + "T")
