"""A dead letter's headers are data from the broker: whatever they hold, operators' listings
(``hub dlq``, the console) read an age and a count or none, never an error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub.messages import Delivery
from hub.ops.dlq import DeadLetter

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _letter(**headers: Any) -> DeadLetter:
    return DeadLetter.of(Delivery(1, b"x", "ENVELOPE_MALFORMED", "hub.dlx", False, headers,
                                  "m-1", "guest", None, 0))


def test_a_first_failure_time_without_a_zone_is_read_as_utc() -> None:
    letter = _letter(**{"x-hub-first-failure": "2026-03-01T08:00:00"})
    assert letter.age(NOW) == dt.timedelta(days=1)


@pytest.mark.parametrize("value", [
    pytest.param("", id="none"),
    pytest.param("yesterday", id="not a time"),
    pytest.param("2026-13-01T00:00:00+00:00", id="a month that does not exist"),
])
def test_a_first_failure_that_cannot_be_read_is_no_age(value: str) -> None:
    assert _letter(**{"x-hub-first-failure": value}).age(NOW) is None


@pytest.mark.parametrize("value", ["three", 1e400, None, [1]])
def test_an_attempt_count_that_is_not_a_number_reads_as_none(value: Any) -> None:
    assert _letter(**{"x-hub-attempts": value}).attempts == 0
