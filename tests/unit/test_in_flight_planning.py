"""Planning a batch while the previous one is in flight equals planning it after that commit.

The intake consumer plans batch *k+1* while batch *k* still waits for its confirms and its
ledger transaction (:class:`hub.consumers.plan.InFlightView`). These tests plan the same second batch
both ways — against the in-flight view, and after the first batch's ledger commit — and demand
the same plan: the same messages, documents and events, byte for byte. No broker is involved:
planning is pure apart from the ledger (a real SQLite file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub, build_hub
from hub.consumers.plan import BatchPlan
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_envelope, build_status, response_for, sample_header, sample_trace
from hub.edxml.model import BusinessDocType
from hub.messages import Delivery
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    hub_settings,
    make_pki,
    signed_envelope,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("in-flight-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


def _hub(pki: PkiPaths, where: Path) -> Iterator[Hub]:
    where.mkdir()
    hub = build_hub(hub_settings(pki, where, "amqp://unused:unused@127.0.0.1:1/", "inflight"),
                    clock=lambda: NOW)
    try:
        yield hub
    finally:
        hub.close()


def _deliveries(bodies: list[tuple[bytes, bool]], start: int) -> list[Delivery]:
    return [Delivery(start + i, body, STATUS_KEY if status else ENVELOPE_KEY, "inbound", False,
                     {}, f"m{start + i}", "guest", None, 0)
            for i, (body, status) in enumerate(bodies)]


def _shape(plan: BatchPlan) -> dict[str, Any]:
    """Everything a plan does, comparable across two ledgers."""
    return {
        "first": [(o.exchange, o.routing_key, o.body, sorted(o.headers.items()), o.message_id)
                  for o in plan.first],
        "receipts": [(o.exchange, o.routing_key, o.body, o.message_id) for o in plan.receipts],
        "documents": [(d.digest, d.kind, d.sender, d.document_id, d.recipients, d.links_to)
                      for d in plan.documents],
        "events": [(e.kind, e.message_id, e.digest, e.organ_id, e.reason) for e in plan.events],
        "outcomes": [(d.tag, o.action, o.reason) for d, o in plan.outcomes],
        "ack": plan.ack,
    }


def _both_ways(pki: PkiPaths, tmp_path: Path, first: list[tuple[bytes, bool]],
               second: list[tuple[bytes, bool]]) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The second batch planned after the first committed, and while it is in flight; and
    whether the in-flight plan leans on the first (the consumer then finishes that first)."""
    committed_plan = in_flight_plan = None
    for name in ("committed", "in-flight"):
        for hub in _hub(pki, tmp_path / name):
            plan_a = hub.pipeline.process_batch(_deliveries(first, 1))
            if name == "committed":
                hub.write_ledger(plan_a)
                committed_plan = hub.pipeline.process_batch(_deliveries(second, 100))
            else:
                in_flight_plan = hub.pipeline.process_batch(_deliveries(second, 100),
                                                            in_flight=[plan_a])
                # And once both commit, the ledger verifies like any other
                hub.write_ledger(plan_a)
                hub.write_ledger(in_flight_plan)
                assert hub.ledger.verify().ok
    assert committed_plan is not None
    assert in_flight_plan is not None
    return _shape(committed_plan), _shape(in_flight_plan), in_flight_plan.leans_on_in_flight


def test_a_document_sent_again_while_the_first_copy_is_in_flight_is_a_duplicate(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path
) -> None:
    env = signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS), number="701")
    committed, in_flight, leans = _both_ways(pki, tmp_path, [(env, False)], [(env, False)])
    assert in_flight == committed
    assert [o[1].value for o in in_flight["outcomes"]] == ["duplicate"]
    assert leans
    assert in_flight["first"] == []  # delivered once, by the first batch


def test_a_document_id_reused_while_the_first_is_in_flight_is_refused(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path
) -> None:
    env = signed_envelope(keystore, PROVINCE, (FINANCE,), number="702")
    other = signed_envelope(keystore, PROVINCE, (FINANCE,), number="702", subject="Khác")
    committed, in_flight, leans = _both_ways(pki, tmp_path, [(env, False)], [(other, False)])
    assert in_flight == committed
    assert [o[2].value for o in in_flight["outcomes"]] == ["DOCUMENT_ID_REUSED"]
    assert leans


def test_a_recall_of_a_document_in_flight_reaches_its_recipients_linked(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path
) -> None:
    original_header = sample_header(PROVINCE, (FINANCE, HOME_AFFAIRS), number="703",
                                    promulgation_date=NOW.date())
    signer = keystore.signer(PROVINCE)
    assert signer is not None
    original = sign_xml(build_envelope(original_header), signer)
    recall = sign_xml(build_envelope(
        sample_header(PROVINCE, (FINANCE,), number="704", promulgation_date=NOW.date()),
        trace=sample_trace(PROVINCE, NOW, kind=BusinessDocType.REVOCATION, reason="Sai sót",
                           replaced_document_id=original_header.document_id)), signer)
    committed, in_flight, leans = _both_ways(pki, tmp_path, [(original, False)], [(recall, False)])
    assert in_flight == committed
    assert [o[1].value for o in in_flight["outcomes"]] == ["deliver"]
    assert in_flight["documents"][0][5] == parse_envelope(original).digest  # linked
    assert leans


def test_a_status_about_a_document_in_flight_goes_back_to_its_sender(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path
) -> None:
    env = signed_envelope(keystore, PROVINCE, (FINANCE,), number="705")
    finance = keystore.signer(FINANCE)
    assert finance is not None
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(env)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ"), finance)
    committed, in_flight, leans = _both_ways(pki, tmp_path, [(env, False)], [(status, True)])
    assert in_flight == committed
    assert [o[1].value for o in in_flight["outcomes"]] == ["deliver"]
    assert leans


def test_a_batch_unrelated_to_the_one_in_flight_does_not_wait_for_it(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path
) -> None:
    first = signed_envelope(keystore, PROVINCE, (FINANCE,), number="706")
    other = signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="707")
    committed, in_flight, leans = _both_ways(pki, tmp_path, [(first, False)], [(other, False)])
    assert in_flight == committed
    assert not leans
