"""Where a replay sends a dead letter back, and as whose: pure decisions, no broker.

Found by a review: ``hub dlq replay`` sent every dead letter to the intake, where a document a
recipient's inbox had rejected, a receipt from a status queue or a letter the axis connector had
parked was judged a duplicate (or a hub receipt refused) and dropped; and a letter the broker
had dead-lettered (an agency's own expiration, the intake's delivery limit) was republished
under the operator's trusted login with the agency's own ``x-hub-*`` headers believed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub.messages import Delivery, Headers
from hub.ops.dlq import DeadLetter, NoWayBack, send_back
from hub.topology import Names

NAMES = Names("edxml")
FINANCE = "000.00.03.H27"
HUB = "edxml-hub"
TRUSTED = frozenset({HUB, "edxml-api"})
DIED = dt.datetime(2026, 3, 2, 7, 0)


def _death(queue: str, reason: str = "rejected", **more: Any) -> dict[str, Any]:
    return {"queue": queue, "reason": reason, "count": 1, "exchange": "edxml.deliver",
            "routing-keys": ["inbox.000.00.03.H27"], "time": DIED, **more}


def _dead(headers: dict[str, Any], *, user_id: str | None = None,
          key: str = "DELIVERY_LIMIT_EXCEEDED") -> Delivery:
    return Delivery(7, b"<edXML/>", key, NAMES.dlx, False, headers, "m-1", user_id, None, 0)


def _back(d: Delivery, *, trusted: frozenset[str] | None = TRUSTED,
          queues: frozenset[str] | None = None) -> Any:
    return send_back(d, NAMES, actor="ops-nguyen", note="fixed", user=HUB, trusted=trusted,
                     queues=queues)


def test_a_document_the_broker_dead_lettered_from_an_inbox_goes_back_to_that_inbox_as_it_was(
) -> None:
    # Given a delivery the hub published to Finance's inbox, rejected by Finance's system
    inbox = NAMES.inbox(FINANCE)
    hub_headers = {Headers.DIGEST: "ab" * 32, Headers.SENDER: "000.00.00.H27",
                   Headers.RECIPIENT: FINANCE, Headers.VIA: "direct"}
    d = _dead({**hub_headers, "x-death": [_death(inbox)], "x-first-death-queue": inbox,
               "x-first-death-reason": "rejected"}, key=inbox)
    # When it is replayed
    out = _back(d)
    # Then it goes straight back to that inbox (the default exchange, by queue name), with the
    # hub's delivery headers and none of the broker's
    assert (out.exchange, out.routing_key) == ("", inbox)
    assert {k: out.headers[k] for k in hub_headers} == hub_headers
    assert not [k for k in out.headers if k.startswith(("x-death", "x-first-death"))]
    assert out.headers[Headers.REPLAYED_BY] == "ops-nguyen"
    assert (out.body, out.message_id, out.user_id) == (d.body, "m-1", HUB)


def test_a_negative_receipt_a_status_queue_dead_lettered_goes_back_with_its_reason() -> None:
    status = NAMES.status(FINANCE)
    d = _dead({Headers.RECEIPT: "rejected", Headers.REASON: "CERT_REVOKED",
               "x-death": [_death(status)]}, key=status)
    out = _back(d)
    assert (out.exchange, out.routing_key) == ("", status)
    # the receipt's own x-hub-reason is part of what the sender's system reads
    assert out.headers[Headers.REASON] == "CERT_REVOKED"


def test_a_letter_the_axis_connector_parked_goes_back_to_the_gateway_without_its_dead_letter_headers(
) -> None:
    # Given what the connector publishes to the DLX after its attempts (no x-death: the hub's own)
    d = _dead({Headers.REASON: "AXIS_UNAVAILABLE", Headers.FIRST_REASON: "AXIS_UNAVAILABLE",
               Headers.ATTEMPTS: 10, Headers.FIRST_FAILURE: "2026-03-02T07:00:00+00:00",
               Headers.DETAIL: "timed out", Headers.REASON_TEXT_EN: "x", Headers.REASON_TEXT_VI: "y",
               Headers.ORIGINAL_ROUTING: f"{NAMES.deliver}/axis.inbox",
               Headers.RECIPIENT: "000.00.00.G09", Headers.SENDER: "000.00.00.H27"},
              key="AXIS_UNAVAILABLE")
    out = _back(d)
    assert (out.exchange, out.routing_key) == ("", NAMES.gateway)
    assert out.headers[Headers.RECIPIENT] == "000.00.00.G09"  # the connector reads it
    for name in (Headers.REASON, Headers.FIRST_REASON, Headers.ATTEMPTS, Headers.FIRST_FAILURE,
                 Headers.DETAIL, Headers.ORIGINAL_ROUTING):
        assert name not in out.headers, name


@pytest.mark.parametrize("routing", [f"{NAMES.inbound}/envelope", f"{NAMES.inbound}/status",
                                     f"/{NAMES.intake}"])
def test_a_letter_the_pipeline_refused_goes_back_to_the_intake_as_its_recorded_publisher(
        routing: str) -> None:
    d = _dead({Headers.REASON: "REVOCATION_UNAVAILABLE", Headers.ATTEMPTS: 5,
               Headers.ORIGINAL_ROUTING: routing, Headers.ORIGINAL_USER: "000.00.00.H27"})
    out = _back(d)
    assert (out.exchange, out.routing_key) == ("", NAMES.intake)
    assert out.headers[Headers.ORIGINAL_USER] == "000.00.00.H27"
    assert Headers.ATTEMPTS not in out.headers
    assert Headers.REASON not in out.headers


def test_an_agency_letter_the_broker_expired_loses_its_claims_and_keeps_its_own_publisher(
) -> None:
    # Given an agency's letter that expired in the intake, carrying a forged publisher and reason
    d = _dead({Headers.ORIGINAL_USER: HUB, Headers.REASON: "REVOCATION_UNAVAILABLE",
               Headers.SENDER: "000.00.36.H27", "x-death": [_death(NAMES.intake, "expired")]},
              user_id="000.01.36.H27", key=NAMES.intake)
    out = _back(d)
    # Then it goes to the intake as published by the agency's own account, claims dropped
    assert (out.exchange, out.routing_key) == ("", NAMES.intake)
    assert out.headers[Headers.ORIGINAL_USER] == "000.01.36.H27"
    assert {k for k in out.headers if k.startswith("x-hub-")} == {
        Headers.ORIGINAL_USER, Headers.REPLAYED_BY, Headers.REPLAY_NOTE}


def test_a_letter_published_without_a_user_id_is_replayed_as_published_by_nobody() -> None:
    d = _dead({"x-death": [_death(NAMES.intake, "delivery_limit")]}, key=NAMES.intake)
    assert _back(d).headers[Headers.ORIGINAL_USER] == ""


def test_a_letter_of_a_trusted_login_keeps_the_publisher_it_spoke_for() -> None:
    # The API (a trusted login) published for an agency; the intake's delivery limit hit it
    d = _dead({Headers.ORIGINAL_USER: "000.00.03.H27",
               "x-death": [_death(NAMES.intake, "delivery_limit")]},
              user_id="edxml-api", key=NAMES.intake)
    assert _back(d).headers[Headers.ORIGINAL_USER] == "000.00.03.H27"
    # and a trusted login that spoke for nobody else speaks for itself, as it did
    d = _dead({"x-death": [_death(NAMES.intake, "delivery_limit")]}, user_id="edxml-api",
              key=NAMES.intake)
    assert _back(d).headers[Headers.ORIGINAL_USER] == "edxml-api"


def test_without_the_list_of_trusted_logins_a_claim_for_another_publisher_is_refused() -> None:
    d = _dead({Headers.ORIGINAL_USER: "000.00.03.H27",
               "x-death": [_death(NAMES.intake, "delivery_limit")]},
              user_id="edxml-api", key=NAMES.intake)
    with pytest.raises(NoWayBack, match="edxml-api"):
        _back(d, trusted=None)
    # the replaying login itself is known trusted
    d = _dead({Headers.ORIGINAL_USER: "000.00.03.H27",
               "x-death": [_death(NAMES.intake, "delivery_limit")]}, user_id=HUB,
              key=NAMES.intake)
    assert _back(d, trusted=None).headers[Headers.ORIGINAL_USER] == "000.00.03.H27"


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="nothing says where it was going"),
    pytest.param({Headers.ORIGINAL_ROUTING: "elsewhere/envelope",
                  Headers.ORIGINAL_USER: "x"}, id="an exchange of no hub"),
    pytest.param({Headers.ORIGINAL_ROUTING: f"{NAMES.inbound}/other",
                  Headers.ORIGINAL_USER: "x"}, id="an inbound key bound to nothing"),
    pytest.param({Headers.ORIGINAL_ROUTING: f"{NAMES.deliver}/inbox.bad code"},
                 id="a deliver key naming no organization"),
    pytest.param({"x-death": []}, id="an empty x-death"),
    pytest.param({"x-death": [_death("other.queue")]}, id="a queue of no hub"),
    pytest.param({"x-death": [_death(NAMES.dlq)]}, id="the dead-letter queue itself"),
    pytest.param({"x-death": [_death(NAMES.retry(1000))]}, id="a retry queue"),
    pytest.param({Headers.ORIGINAL_ROUTING: f"{NAMES.inbound}/envelope"},
                 id="an intake letter whose publisher is not recorded"),
])
def test_a_letter_whose_way_back_cannot_be_established_is_refused(headers: dict[str, Any]) -> None:
    with pytest.raises(NoWayBack):
        _back(_dead(headers))


def test_a_queue_the_topology_does_not_hold_any_more_is_no_way_back() -> None:
    gone = NAMES.inbox("000.00.99.H27")
    d = _dead({"x-death": [_death(gone)]}, key=gone)
    with pytest.raises(NoWayBack, match=r"000\.00\.99\.H27"):
        _back(d, queues=frozenset({NAMES.intake, NAMES.inbox(FINANCE)}))


def test_a_broker_dead_letter_is_listed_with_the_brokers_reason_and_none_of_the_publishers_claims(
) -> None:
    d = _dead({Headers.REASON: "REVOCATION_UNAVAILABLE", Headers.FIRST_FAILURE: "2020-01-01",
               Headers.ATTEMPTS: 9, Headers.SENDER: "000.00.36.H27", Headers.DETAIL: "approved",
               "x-death": [_death(NAMES.intake, "expired")]},
              user_id="000.01.36.H27", key=NAMES.intake)
    letter = DeadLetter.of(d)
    assert letter.reason == "BROKER_EXPIRED"
    assert (letter.sender, letter.attempts) == ("", 1)
    assert letter.first_failure == "2026-03-02T07:00:00+00:00"
    assert not [k for k in letter.headers if k.startswith("x-hub-")]


def test_a_broker_dead_letter_from_an_inbox_is_listed_with_the_hubs_delivery_headers() -> None:
    inbox = NAMES.inbox(FINANCE)
    d = _dead({Headers.SENDER: "000.00.00.H27", Headers.RECIPIENT: FINANCE,
               "x-death": [_death(inbox, count=3)]}, key=inbox)
    letter = DeadLetter.of(d)
    assert (letter.reason, letter.sender, letter.recipient, letter.attempts) == (
        "BROKER_REJECTED", "000.00.00.H27", FINANCE, 3)


def test_the_operations_guide_lifts_rabbitmq_4s_delivery_limit_on_the_dead_letter_queue_only(
) -> None:
    # Every listing returns every letter: under RabbitMQ 4's default quorum delivery limit (20)
    # the letters would be dropped. The guide's policy must name the DLQ and nothing else.
    import json
    import re
    import shlex
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    (line,) = [x for x in guide.splitlines() if x.startswith("rabbitmqctl set_policy")]
    words = shlex.split(line)
    pattern, definition = words[-2], json.loads(words[-1])
    assert definition == {"delivery-limit": -1}
    assert words[words.index("--apply-to") + 1] == "queues"
    assert re.search(pattern, NAMES.dlq)
    for other in (NAMES.intake, NAMES.gateway, NAMES.inbox(FINANCE), NAMES.retry(1000),
                  f"{NAMES.dlq}.x", f"x{NAMES.dlq}"):
        assert not re.search(pattern, other), other
