"""The argument types of ``hub.ops.args``: a value is checked, and normalized, where it is read."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from hub.ops.args import EARLIEST, LATEST, iso_datetime, parse_duration


def test_a_date_time_with_an_offset_is_read_as_the_same_instant_in_utc() -> None:
    value = iso_datetime("2026-03-01T08:00+07:00")
    assert value == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    assert value.tzinfo is UTC


def test_a_date_without_a_zone_is_midnight_utc() -> None:
    assert iso_datetime("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00+14:00", "9999-12-31", "0001-01-01T23:59:59Z",
], ids=["past the year 9999 in UTC", "before the year 1 in UTC", "the last day a date holds",
        "the first day a date holds"])
def test_an_instant_outside_the_accepted_range_is_refused_naming_it(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="out of range") as raised:
        iso_datetime(text)
    assert repr(text) in str(raised.value)
    assert "0001-01-02 and 9999-12-30" in str(raised.value)


def test_the_ends_of_the_accepted_range_are_accepted() -> None:
    assert iso_datetime("0001-01-02T00:00Z") == EARLIEST
    assert iso_datetime("9999-12-31T06:59:59.999999+07:00") == LATEST


@pytest.mark.parametrize("text", ["99999999999d", "9" * 400 + "d", "1000000000d"],
                         ids=["past a C int", "a float infinity", "a day past a timedelta"])
def test_a_duration_longer_than_a_timedelta_holds_is_a_value_error_saying_so(text: str) -> None:
    with pytest.raises(ValueError, match="too long a duration"):
        parse_duration(text)


def test_the_longest_duration_a_timedelta_holds_is_accepted() -> None:
    assert parse_duration("999999999d") == timedelta(days=999_999_999)
