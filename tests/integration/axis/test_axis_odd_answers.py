"""Odd answers of the axis (or of a proxy in front of it), against the real broker, the
simulator process and the real connector: each is logged and handled — the axis unavailable
for a while, or a listed entry refused back to it with its reason — and the connector keeps
running: the next normal answer is processed.

The simulator's ``answers`` fault gives one call a scripted body; ``listing_patch`` lays odd
fields over one document's entry in ``getReceivedEdocList``.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hub.edxml.build import build_envelope, sample_header
from hub.ledger.records import EventKind
from hub.reasons import Reason
from hub.testing.axis_sim import AxisSimulator
from hub.testing.pki import PkiPaths
from hub.trust.signing import sign_xml
from tests.integration.axis.harness import (
    MINISTRY,
    SYSTEM_ID,
    axis_settings,
    axis_signer,
    connector_in_thread,
    wait_until,
)
from tests.integration.pipeline.harness import FINANCE, NOW, PROVINCE, running_hub, signed_envelope

pytestmark = pytest.mark.broker

DEEPLY_NESTED = "[" * 100_000 + "]" * 100_000
"""Valid JSON that no recursive decoder reads (Python's raises RecursionError)."""


def _ministry_letter(pki: PkiPaths, number: str) -> bytes:
    header = sample_header(MINISTRY, (FINANCE,), number=number, subject="Về việc báo cáo",
                           promulgation_date=NOW.date())
    return sign_xml(build_envelope(header), axis_signer(pki, MINISTRY))


def _events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e.get("event") == name]


def test_an_entry_whose_to_is_a_number_is_refused_back_to_the_axis_and_the_next_document_arrives(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given a document at the axis whose list entry gives its recipients as a number
    odd = sim.inject(_ministry_letter(pki, "1"), sender=MINISTRY, to=[FINANCE])
    sim.faults(listing_patch={odd: {"to": 7}})
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with capture_logs() as logs, running_hub(settings) as hub, \
            connector_in_thread(settings) as axis:
        # When the connector polls, then the axis lists a normal document
        wait_until(lambda: sim.stats()["statuses"].get(SYSTEM_ID, {}).get(odd) == "fail", 30,
                   "the odd entry refused back to the axis")
        normal = _ministry_letter(pki, "2")
        sim.inject(normal, sender=MINISTRY, to=[FINANCE])
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        # Then the odd entry was told `fail` with the reason, recorded, and never handed over
        [refused] = _events(logs, "axis_listing_entry_refused")
        assert refused["axis_doc_id"] == odd
        assert '"to"' in refused["why"]
        told = [e for e in hub.hub.ledger.events(kind=EventKind.AXIS_ACKNOWLEDGED)
                if e.detail["axis_doc_id"] == odd]
        assert [(e.detail["status"], '"to"' in e.detail["why"]) for e in told] == [("fail", True)]
        received = hub.hub.ledger.events(kind=EventKind.AXIS_RECEIVED)
        assert len(received) == 1
        assert received[0].detail["axis_doc_id"] != odd
        assert axis.connector.handed_over == 1
        # and the normal document reached its recipient
        assert [d.body for d in hub.client(FINANCE).documents(timeout=5)] == [normal]
        assert sim.stats()["inbox"][SYSTEM_ID] == {"taken": 2}


@pytest.mark.parametrize(("body", "event", "field", "expected"), [
    pytest.param(DEEPLY_NESTED, "axis_unavailable", "kind", "answer",
                 id="a deeply nested JSON body"),
    pytest.param(json.dumps({"status": "OK", "data": {"id": "x"}}), "axis_unavailable", "kind",
                 "answer", id="data that is not a list"),
    pytest.param(json.dumps({"status": "OK", "data": [42, {"from": MINISTRY}, {"id": ["x"]}]}),
                 "axis_listing_entry_skipped", "why", '"id" is a list',
                 id="entries without a usable id"),
])
def test_an_odd_answer_to_the_list_call_is_logged_and_the_next_listing_is_processed(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str,
    body: str, event: str, field: str, expected: str
) -> None:
    # Given a document waiting at the axis, and a first list call answered oddly
    sim.inject(_ministry_letter(pki, "3"), sender=MINISTRY, to=[FINANCE])
    sim.faults(answers={"getReceivedEdocList": [body]})
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with capture_logs() as logs, running_hub(settings) as hub, \
            connector_in_thread(settings) as axis:
        # When the connector polls again
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        # Then the odd answer was logged, and the document of the next listing handed over once
        logged = _events(logs, event)
        assert logged, f"no {event} logged"
        assert any(expected in str(e[field]) for e in logged), logged
        assert axis.connector.handed_over == 1
        assert sim.stats()["inbox"][SYSTEM_ID] == {"taken": 1}


def test_a_nested_answer_to_an_acknowledgement_leaves_it_listed_and_it_is_acknowledged_once_later(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given a document at the axis, and the first updateStatus answered with a nested body
    sim.inject(_ministry_letter(pki, "4"), sender=MINISTRY, to=[FINANCE])
    sim.faults(answers={"updateStatus": [DEEPLY_NESTED]})
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with capture_logs() as logs, running_hub(settings) as hub, \
            connector_in_thread(settings) as axis:
        # When the connector hands it over and tells the axis
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        # Then the odd answer was the axis unavailable, and the next round acknowledged it
        # without handing it over twice
        unavailable = _events(logs, "axis_unavailable")
        assert any("updateStatus" in e["detail"] and e["kind"] == "answer" for e in unavailable)
        assert axis.connector.handed_over == 1
        assert len(hub.hub.ledger.events(kind=EventKind.AXIS_RECEIVED)) == 1
        assert len(hub.hub.ledger.events(kind=EventKind.AXIS_ACKNOWLEDGED)) == 1
        assert sim.stats()["inbox"][SYSTEM_ID] == {"taken": 1}


def test_a_deeply_nested_answer_to_a_send_is_a_retry_and_the_letter_reaches_the_axis_once(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given a first sendEdoc answered with a nested body (nothing stored)
    sim.faults(answers={"sendEdoc": [DEEPLY_NESTED]})
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with running_hub(settings) as hub, connector_in_thread(settings) as axis:
        # When a body of the province writes to the ministry
        letter = signed_envelope(hub.hub.keystore, PROVINCE, (MINISTRY,), number="42")
        hub.client(PROVINCE).send(letter)
        # Then the connector retries and the axis holds the letter once
        wait_until(lambda: len(sim.outside()) == 1, 30, "the letter at the axis")
        assert axis.connector.wait_for(lambda c: c.settled >= 1, 30)
        digest = sim.outside()[0]["sha256"]
        events = hub.hub.ledger.events(digest=digest)
        [retry] = [e for e in events if e.kind is EventKind.RETRY_SCHEDULED]
        assert retry.reason == Reason.AXIS_UNAVAILABLE.value
        assert retry.detail["kind"] == "answer"
        assert "not JSON" in retry.detail["answer"]
        assert [e.detail["answer"] for e in events if e.kind is EventKind.AXIS_SENT] == [
            "accepted"]
        assert sim.stats()["stored_twice"] == 0
