"""Which dead letters a filter names: ``hub dlq`` takes a leading part of an id (confirmed with
``--yes``), the console's single-letter actions only the exact id."""

from __future__ import annotations

import datetime as dt

from hub.messages import Delivery
from hub.ops.dlq import DeadLetter, Filter

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _letter(message_id: str) -> DeadLetter:
    return DeadLetter.of(Delivery(1, b"x", "ENVELOPE_MALFORMED", "hub.dlx", False, {},
                                  message_id, "guest", None, 0))


def test_an_exact_filter_names_doc_1_and_not_doc_10() -> None:
    flt = Filter(ids=("doc-1",), exact=True)
    assert flt.matches(_letter("doc-1"), NOW)
    assert not flt.matches(_letter("doc-10"), NOW)


def test_an_exact_filter_with_an_empty_id_names_nothing() -> None:
    assert not Filter(ids=("",), exact=True).matches(_letter("doc-1"), NOW)


def test_the_command_line_filter_still_takes_a_leading_part_of_an_id() -> None:
    flt = Filter(ids=("doc-1",))
    letters = [_letter("doc-1"), _letter("doc-10")]
    assert [dl.id for dl in letters if flt.matches(dl, NOW)] == ["doc-1", "doc-10"]
    assert [dl.id for dl in flt.prefix_only(letters)] == ["doc-10"]
