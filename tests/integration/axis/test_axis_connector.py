"""The national-axis connector against the real broker and the simulator process.

Refusals by the axis (dead letter with the axis' reason, a signed refusal to the sender), forged
and unsigned documents from the axis (refused by the intake like any other), and a short run of
both directions. The long run with an outage and a kill -9 is ``test_axis_acceptance.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.edxml.build import build_envelope, sample_header
from hub.ledger.records import EventKind
from hub.messages import Headers
from hub.ops.receipt_verify import verify_receipt
from hub.reasons import Reason
from hub.testing.axis_sim import AxisSimulator
from hub.testing.pki import PkiPaths
from hub.trust.signing import sign_xml
from tests.integration.axis.harness import (
    MINISTRY,
    NGHE_AN,
    axis_settings,
    axis_signer,
    connector_in_thread,
    wait_until,
)
from tests.integration.pipeline.harness import (
    FINANCE,
    NOW,
    PROVINCE,
    running_hub,
    signed_envelope,
)

pytestmark = pytest.mark.broker


def test_a_document_the_axis_refuses_is_dead_lettered_with_its_reason_and_the_sender_gets_a_signed_refusal(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given an axis on which Nghệ An is not registered, and a letter to it from the province
    sim.faults(refuse_recipients=[NGHE_AN])
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with running_hub(settings) as hub, connector_in_thread(settings) as axis:
        letter = signed_envelope(hub.hub.keystore, PROVINCE, (NGHE_AN,), number="31")
        hub.client(PROVINCE).send(letter)
        # When the connector hands it to the axis
        assert axis.connector.wait_for(lambda c: c.settled >= 1, 30)
        # Then it is dead-lettered with AXIS_REFUSED and the axis' own code and text
        dead = hub.drain(hub.names.dlq)
        assert len(dead) == 1
        headers = dead[0].headers
        assert headers[Headers.REASON] == Reason.AXIS_REFUSED.value
        assert "AGENCY_NOT_FOUND" in headers[Headers.DETAIL]
        assert NGHE_AN in headers[Headers.DETAIL]
        assert dead[0].body == letter  # the exact bytes
        # and the sender got the hub's signed refusal, which verifies and names the reason
        statuses = hub.client(PROVINCE).statuses(timeout=5)
        refusals = [s for s in statuses if s.headers.get(Headers.RECEIPT) == "rejected"]
        assert len(refusals) == 1
        assert refusals[0].headers[Headers.REASON] == Reason.AXIS_REFUSED.value
        ok, findings = verify_receipt(settings, refusals[0].body, letter, at=NOW)
        assert ok, findings
        # and every step is in the ledger
        digest = headers[Headers.DIGEST]
        kinds = {(e.kind, e.reason) for e in hub.hub.ledger.events(digest=digest)}
        assert (EventKind.REJECTED, "AXIS_REFUSED") in kinds
        assert (EventKind.DEAD_LETTERED, "AXIS_REFUSED") in kinds
        assert (EventKind.RECEIPT_ISSUED, "AXIS_REFUSED") in kinds
        # and nothing reached the rest of the country
        assert sim.outside() == []


def test_forged_and_unsigned_documents_from_the_axis_are_refused_like_any_other(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    ministry = axis_signer(pki, MINISTRY)
    nghe_an = axis_signer(pki, NGHE_AN)

    def header(sender: str, number: str) -> bytes:
        return build_envelope(sample_header(sender, (FINANCE,), number=number,
                                            subject="Về việc báo cáo", promulgation_date=NOW.date()))

    genuine = sign_xml(header(MINISTRY, "1"), ministry)
    unsigned = header(MINISTRY, "2").replace(b"<ds:Signature", b"<ds:Nothing", 1)
    forged = sign_xml(header(MINISTRY, "3"), nghe_an)          # the ministry's From, H41's seal
    local_from = sign_xml(header(PROVINCE, "4"), ministry)     # a local body's From via the axis
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with running_hub(settings) as hub, connector_in_thread(settings) as axis:
        for raw, sender in ((genuine, MINISTRY), (unsigned, MINISTRY), (forged, MINISTRY),
                            (local_from, PROVINCE)):
            sim.inject(raw, sender=sender, to=[FINANCE])
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 4, 30)
        hub.wait_acked(4)
        # Only the genuine document reaches the department
        documents = hub.client(FINANCE).documents(timeout=2)
        assert [d.body for d in documents] == [genuine]
        reasons = sorted(str(d.headers[Headers.REASON]) for d in hub.drain(hub.names.dlq))
        assert len(reasons) == 3
        assert Reason.SENDER_ACCOUNT_MISMATCH.value in reasons   # the axis speaks for no local body
        assert Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER.value in reasons
        assert any(r.startswith("SIGNATURE_") or r.startswith("ENVELOPE_") for r in reasons)
        # Each was handed over and acknowledged to the axis, with the policy recorded
        ledger = hub.hub.ledger
        received = ledger.events(kind=EventKind.AXIS_RECEIVED)
        assert len(received) == 4
        assert all(e.detail["legacy_envelope_policy"] is False for e in received)
        assert len(ledger.events(kind=EventKind.AXIS_ACKNOWLEDGED)) == 4
        # and the axis holds nothing more for the province
        assert sim.stats()["inbox"]["hub-h27"] == {"taken": 4}


def test_a_letter_to_a_ministry_leaves_and_the_ministrys_03_comes_back_to_its_sender(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    from tests.integration.axis.harness import signed_status

    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url)
    with running_hub(settings) as hub, connector_in_thread(settings) as axis:
        letter = signed_envelope(hub.hub.keystore, PROVINCE, (MINISTRY,), number="88")
        hub.client(PROVINCE).send(letter)
        wait_until(lambda: len(sim.outside()) == 1, 30, "the letter at the axis")
        sent = sim.outside()[0]
        assert sim.document(sent["id"]) == letter
        assert sent["messagetype"] == "edoc"
        sim.inject(signed_status(letter, axis_signer(pki, MINISTRY), "03"),
                   sender=MINISTRY, to=[PROVINCE], message_type="status")
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(2)
        statuses = hub.client(PROVINCE).statuses(timeout=5)
        assert [s.headers.get(Headers.STATUS) for s in statuses
                if Headers.RECEIPT not in s.headers] == ["03"]
        events = {e.kind for e in hub.hub.ledger.events(digest=sent["sha256"])}
        assert {EventKind.VALIDATED, EventKind.AXIS_SENT, EventKind.STATUS_RECEIVED} <= events
