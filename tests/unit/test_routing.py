"""Routing under Decision 28/2018/QĐ-TTg: a table of cases with readable ids, then statuses."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from hub.directory import Directory
from hub.edxml.model import (
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    ResponseFor,
    StatusPacket,
)
from hub.reasons import Reason
from hub.routing import Delivery, RoutingPlan, route, route_status

NOW = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)

# The bundled Hà Tĩnh sample plus three bodies the sample lacks: another province's body marked
# "direct" (routing must still send it through the axis), a local body reached through the axis
# and a commune that exists only from 2026.
EXTRA = """
[[org]]
codes = ["000.00.00.H20"]
name = "Ủy ban nhân dân tỉnh Đồng Tháp"
reach = "direct"

[[org]]
codes = ["000.00.40.H27"]
name = "Đơn vị nối qua trục"
reach = "axis"
broker_user = "axis-gateway"

[[org]]
codes = ["H27.199"]
name = "Ủy ban nhân dân xã dự kiến"
valid_from = 2026-01-01
"""
SAMPLE = (importlib.resources.files("hub") / "data" / "directory-ha-tinh.toml").read_text("utf-8")
DIRECTORY = Directory.from_toml(SAMPLE + EXTRA, "sample+extra")


def envelope(
    sender: str = "000.00.01.H27", to: Sequence[str] = ("000.00.02.H27",), *,
    security_level: str | None = None,
) -> Envelope:
    header = MessageHeader(
        sender=Organization(sender, "Sender"),
        recipients=tuple(Organization(code, "Recipient") for code in to),
        code=Code("123", "UBND-VX"),
        promulgation_info=PromulgationInfo("Hà Tĩnh", date(2025, 9, 1)),
        document_type=DocumentType(18, "Công văn"),
        subject="Về việc thử nghiệm",
        document_id=f"{sender},2025/09/01,123/UBND-VX",
        other_info=OtherInfo(security_level=security_level),
    )
    return Envelope(header=header, trace=None, manifest=(), attachments=(), raw=b"<edXML/>")


@dataclass(frozen=True)
class Case:
    id: str
    envelope: Envelope
    deliveries: tuple[tuple[str, str, str], ...] = ()
    """(organ_id, via, routing_key) expected, in order."""
    rejection: Reason | None = None
    detail_has: str = ""


CASES = [
    Case("one local recipient goes to its inbox", envelope(),
         (("000.00.02.H27", "direct", "inbox.000.00.02.H27"),)),
    Case("several recipients fan out in To order",
         envelope(to=("000.00.02.H27", "000.00.00.H27")),
         (("000.00.02.H27", "direct", "inbox.000.00.02.H27"),
          ("000.00.00.H27", "direct", "inbox.000.00.00.H27"))),
    Case("a recipient written twice gets one delivery",
         envelope(to=("000.00.02.H27", "000.00.02.H27")),
         (("000.00.02.H27", "direct", "inbox.000.00.02.H27"),)),
    Case("a body written under both of its codes gets one delivery to its primary queue",
         envelope(to=("H27.02", "000.00.02.H27")),
         (("000.00.02.H27", "direct", "inbox.000.00.02.H27"),)),
    Case("a Decision 20/2020 identifier routes to the primary code's queue",
         envelope(to=("H27.02",)),
         (("000.00.02.H27", "direct", "inbox.000.00.02.H27"),)),
    Case("a commune created in the 2025 reorganization is reached directly",
         envelope(to=("H27.101",)), (("H27.101", "direct", "inbox.H27.101"),)),
    Case("a ministry goes through the national axis", envelope(to=("000.00.00.G09",)),
         (("000.00.00.G09", "axis", "axis.inbox"),)),
    Case("another province goes through the national axis", envelope(to=("H41",)),
         (("000.00.00.H41", "axis", "axis.inbox"),)),
    Case("another province goes through the axis even if marked direct",
         envelope(to=("000.00.00.H20",)),
         (("000.00.00.H20", "axis", "axis.inbox"),)),
    Case("a local body marked reach axis goes through the gateway",
         envelope(to=("000.00.40.H27",)),
         (("000.00.40.H27", "axis", "axis.inbox"),)),
    Case("local and remote recipients mix",
         envelope(to=("000.00.00.G09", "000.00.02.H27", "000.00.00.H41")),
         (("000.00.00.G09", "axis", "axis.inbox"),
          ("000.00.02.H27", "direct", "inbox.000.00.02.H27"),
          ("000.00.00.H41", "axis", "axis.inbox"))),
    Case("a body may send a copy to itself", envelope(to=("000.00.01.H27",)),
         (("000.00.01.H27", "direct", "inbox.000.00.01.H27"),)),
    Case("no recipient is refused", envelope(to=()), rejection=Reason.RECIPIENT_MISSING),
    Case("an unknown recipient refuses the whole envelope",
         envelope(to=("000.00.02.H27", "000.00.77.H27")),
         rejection=Reason.RECIPIENT_UNKNOWN, detail_has="000.00.77.H27 is not in the directory"),
    Case("an unknown body of another province is refused too",
         envelope(to=("000.00.00.H99",)), rejection=Reason.RECIPIENT_UNKNOWN),
    Case("a malformed recipient code is refused", envelope(to=("ubnd-ha-tinh",)),
         rejection=Reason.ORGAN_ID_INVALID, detail_has="malformed"),
    Case("a malformed code outranks an unknown one",
         envelope(to=("000.00.77.H27", "H27..01")),
         rejection=Reason.ORGAN_ID_INVALID, detail_has="000.00.77.H27"),
    Case("an abolished district is refused as abolished",
         envelope(to=("000.00.31.H27",)),
         rejection=Reason.RECIPIENT_UNKNOWN, detail_has="last day was 2025-06-30"),
    Case("a merged department is refused naming its successor",
         envelope(to=("000.00.14.H27",)),
         rejection=Reason.RECIPIENT_UNKNOWN, detail_has="merged into 000.00.15.H27"),
    Case("a body not yet established is refused", envelope(to=("H27.199",)),
         rejection=Reason.RECIPIENT_UNKNOWN, detail_has="only from 2026-01-01"),
    Case("an unknown sender is refused", envelope(sender="000.00.88.H27"),
         rejection=Reason.SENDER_UNKNOWN, detail_has="sender 000.00.88.H27"),
    Case("an abolished sender is refused", envelope(sender="000.00.36.H27"),
         rejection=Reason.SENDER_UNKNOWN, detail_has="abolished"),
    Case("a malformed sender code is refused", envelope(sender="H27/01"),
         rejection=Reason.ORGAN_ID_INVALID),
    Case("a classified document is refused before anything else",
         envelope(sender="000.00.88.H27", to=(), security_level="Mật"),
         rejection=Reason.DOCUMENT_CLASSIFIED),
    Case("an explicit not-secret marking routes normally",
         envelope(security_level="Không mật"),
         (("000.00.02.H27", "direct", "inbox.000.00.02.H27"),)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_routing(case: Case) -> None:
    plan = route(case.envelope, DIRECTORY, at=NOW, province="H27")
    assert plan.rejection == case.rejection, plan.detail
    assert tuple((d.organ_id, d.via, d.routing_key) for d in plan.deliveries) == case.deliveries
    assert case.detail_has in plan.detail
    assert plan.accepted is (case.rejection is None)


def test_every_routing_reason_has_a_case() -> None:
    covered = {c.rejection for c in CASES}
    assert {Reason.RECIPIENT_MISSING, Reason.RECIPIENT_UNKNOWN, Reason.ORGAN_ID_INVALID,
            Reason.SENDER_UNKNOWN, Reason.DOCUMENT_CLASSIFIED} <= covered


def test_a_delivery_keeps_the_code_as_written() -> None:
    plan = route(envelope(to=("H27.02",)), DIRECTORY, at=NOW, province="H27")
    assert plan.deliveries == (
        Delivery("000.00.02.H27", "direct", "inbox.000.00.02.H27", "H27.02"),)


def test_remote_recipients_share_one_publication_to_the_gateway() -> None:
    plan = route(envelope(to=("000.00.00.G09", "000.00.02.H27", "000.00.00.H41")), DIRECTORY,
                 at=NOW, province="H27")
    assert len(plan.deliveries) == 3
    assert plan.routing_keys == ("axis.inbox", "inbox.000.00.02.H27")


def test_the_abolished_body_was_routed_before_its_abolition() -> None:
    # The last valid day is 2025-06-30 in Vietnam time: 23:59 that evening still routes.
    plan = route(envelope(to=("000.00.31.H27",)), DIRECTORY,
                 at=datetime(2025, 6, 30, 16, 59, tzinfo=UTC), province="H27")
    assert plan.accepted
    assert plan.deliveries[0].routing_key == "inbox.000.00.31.H27"


def test_the_first_minute_after_the_last_day_is_refused() -> None:
    plan = route(envelope(to=("000.00.31.H27",)), DIRECTORY,
                 at=datetime(2025, 6, 30, 17, 0, tzinfo=UTC), province="H27")
    assert plan.rejection is Reason.RECIPIENT_UNKNOWN


def test_the_same_directory_routes_differently_for_another_provinces_hub() -> None:
    plan = route(envelope(sender="000.00.00.H20", to=("000.00.00.H20", "000.00.02.H27")),
                 DIRECTORY, at=NOW, province="H20")
    assert [(d.organ_id, d.via) for d in plan.deliveries] == [
        ("000.00.00.H20", "direct"), ("000.00.02.H27", "axis")]


def test_a_long_list_of_unknown_recipients_is_summarized() -> None:
    codes = [f"000.00.{n:02d}.H55" for n in range(10, 20)]
    plan = route(envelope(to=codes), DIRECTORY, at=NOW, province="H27")
    assert plan.rejection is Reason.RECIPIENT_UNKNOWN
    assert plan.detail.endswith("and 5 more")


def test_a_refusal_never_quotes_document_content() -> None:
    plan = route(envelope(to=("000.00.77.H27",)), DIRECTORY, at=NOW, province="H27")
    assert "thử nghiệm" not in plan.detail


def test_a_plan_is_immutable() -> None:
    plan = RoutingPlan.refuse(Reason.RECIPIENT_MISSING, "none")
    with pytest.raises(AttributeError):
        plan.rejection = None  # type: ignore[misc]


# -- statuses -------------------------------------------------------------------------------


def status(response_for: str = "000.00.01.H27", reporter: str = "000.00.02.H27") -> StatusPacket:
    return StatusPacket(
        response_for=ResponseFor(response_for, "123/UBND-VX", date(2025, 9, 1),
                                 f"{response_for},2025/09/01,123/UBND-VX"),
        sender=Organization(reporter),
        status_code="03",
        description="Đã vào sổ",
        timestamp=NOW,
        staff_info=None,
        raw=b"<edXML/>",
    )


def test_a_status_goes_back_to_the_original_senders_status_queue() -> None:
    plan = route_status(status(), "000.00.01.H27", DIRECTORY, at=NOW, province="H27")
    assert plan.deliveries == (
        Delivery("000.00.01.H27", "direct", "status.000.00.01.H27", "000.00.01.H27"),)


def test_a_status_for_a_remote_sender_goes_to_the_gateway() -> None:
    plan = route_status(status("000.00.00.G09"), "000.00.00.G09", DIRECTORY, at=NOW,
                        province="H27")
    assert [(d.via, d.routing_key) for d in plan.deliveries] == [("axis", "axis.status")]


def test_a_status_naming_the_sender_by_its_other_code_is_accepted() -> None:
    plan = route_status(status("H27.01"), "000.00.01.H27", DIRECTORY, at=NOW, province="H27")
    assert plan.deliveries[0].routing_key == "status.000.00.01.H27"


def test_a_status_whose_response_for_names_another_sender_is_an_orphan() -> None:
    plan = route_status(status("000.00.02.H27"), "000.00.01.H27", DIRECTORY, at=NOW,
                        province="H27")
    assert plan.rejection is Reason.STATUS_ORPHAN


def test_the_hubs_own_receipt_routes_without_a_status_packet() -> None:
    plan = route_status(None, "H27.01", DIRECTORY, at=NOW, province="H27")
    assert plan.routing_keys == ("status.000.00.01.H27",)


def test_a_sender_abolished_since_still_receives_statuses_about_its_documents() -> None:
    plan = route_status(status("000.00.31.H27"), "000.00.31.H27", DIRECTORY, at=NOW,
                        province="H27")
    assert plan.routing_keys == ("status.000.00.31.H27",)


def test_a_status_for_a_sender_the_directory_never_knew_is_refused() -> None:
    plan = route_status(None, "000.00.88.H27", DIRECTORY, at=NOW, province="H27")
    assert plan.rejection is Reason.RECIPIENT_UNKNOWN


def test_routing_and_topology_import_neither_pika_nor_sqlalchemy() -> None:
    code = (
        "import sys, hub.routing, hub.topology; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pika', 'sqlalchemy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
