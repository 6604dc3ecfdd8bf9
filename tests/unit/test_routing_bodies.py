"""Codes compared as bodies, and a recall's reach to the original's recipients (pure routing).

Found by a review (see tests/integration/pipeline/test_one_body_two_codes.py and
test_recall_abolished_recipient.py for the pipeline): codes compared as text, and a recall that
reached none of the original's left-out recipients when one of them had been abolished.
"""

from __future__ import annotations

import importlib.resources
from datetime import UTC, datetime

from hub.directory import Directory
from hub.routing import Delivery, body_of, entry_of, route_former

BEFORE = datetime(2025, 6, 30, 3, 0, tzinfo=UTC)  # 10:00 on 30 June 2025, Vietnam time
AFTER = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)

EXTRA = """
[[org]]
codes = ["000.00.50.H27"]
name = "Đơn vị nối qua trục, giải thể"
valid_to = 2025-06-30
reach = "axis"

[[org]]
codes = ["H27.103"]
name = "Ủy ban nhân dân xã A"
valid_to = 2025-06-30
broker_user = "xa-a"

[[org]]
codes = ["H27.103"]
name = "Ủy ban nhân dân xã B"
valid_from = 2025-07-01
broker_user = "xa-b"
"""
SAMPLE = (importlib.resources.files("hub") / "data" / "directory-ha-tinh.toml").read_text("utf-8")
DIRECTORY = Directory.from_toml(SAMPLE + EXTRA, "sample+extra")


def test_both_codes_of_a_body_name_the_same_body() -> None:
    assert body_of("H27.02", DIRECTORY, AFTER) == body_of("000.00.02.H27", DIRECTORY, AFTER)
    assert body_of(" H27.02 ", DIRECTORY, AFTER) == "000.00.02.H27"
    assert body_of("H27.03", DIRECTORY, AFTER) != body_of("H27.02", DIRECTORY, AFTER)


def test_an_abolished_body_is_still_the_body_it_was_and_an_unknown_code_is_itself() -> None:
    assert body_of("000.00.36.H27", DIRECTORY, AFTER) == "000.00.36.H27"
    assert body_of("000.00.99.H27", DIRECTORY, AFTER) == "000.00.99.H27"


def test_a_code_that_passed_to_another_body_names_its_holder_of_the_day() -> None:
    before, after = entry_of("H27.103", DIRECTORY, BEFORE), entry_of("H27.103", DIRECTORY, AFTER)
    assert before is not None
    assert after is not None
    assert (before.broker_user, after.broker_user) == ("xa-a", "xa-b")


def test_a_recall_reaches_living_recipients_and_an_abolished_one_in_its_kept_inbox() -> None:
    former = route_former(("000.00.02.H27", "000.00.36.H27", "H27.03"), DIRECTORY, at=AFTER,
                          province="H27")
    assert former.deliveries == (
        Delivery("000.00.02.H27", "direct", "inbox.000.00.02.H27", "000.00.02.H27"),
        Delivery("000.00.36.H27", "direct", "inbox.000.00.36.H27", "000.00.36.H27", kept=True),
        Delivery("000.00.03.H27", "direct", "inbox.000.00.03.H27", "H27.03"),
    )
    assert former.unreached == ()


def test_an_abolished_body_this_hub_does_not_deliver_to_is_named_not_reached() -> None:
    former = route_former(("000.00.50.H27", "000.00.00.G09", "000.00.99.H27"), DIRECTORY,
                          at=AFTER, province="H27")
    assert [(d.organ_id, d.via) for d in former.deliveries] == [("000.00.00.G09", "axis")]
    assert len(former.unreached) == 2
    assert "000.00.50.H27 was abolished or merged" in former.unreached[0]
    assert "000.00.99.H27 is not in the directory" in former.unreached[1]
