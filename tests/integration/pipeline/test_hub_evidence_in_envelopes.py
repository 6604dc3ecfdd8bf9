"""A document may not carry the hub's evidence element either (INTEGRATING.md §5).

Found by a review: ``hub:HubEvidence`` was refused in status packets only. A document (an
envelope) carrying it, signed by its sender, was accepted and delivered, although the guide says
the hub refuses it, so that nobody can pass off their own receipt as the hub's. Now it is refused
ENVELOPE_SCHEMA_INVALID, as a status is, with a signed 02 to its sender and a ledger row.

Real pipeline, validators, receipts and ledger (SQLite and PostgreSQL), no broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub
from hub.edxml import parse_envelope
from hub.edxml.build import build_envelope, sample_header
from hub.messages import Delivery, Headers
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import FINANCE, HOME_AFFAIRS, NOW, hub_in_process

EVIDENCE = (b'<hub:HubEvidence xmlns:hub="urn:edxml-hub:receipt:1" version="1" kind="accepted" '
            b'at="2025-03-03T15:05:00.000+07:00"><hub:EnvelopeDigest alg="sha-256">'
            + b"0" * 64 + b"</hub:EnvelopeDigest></hub:HubEvidence>")


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "evidence") as built:
        yield built


def test_a_document_carrying_the_hubs_evidence_element_is_refused(
    hub: Hub, pipeline_pki: PkiPaths
) -> None:
    signer = Keystore.load(pipeline_pki.keystore).signer(HOME_AFFAIRS)
    assert signer is not None
    # Given a document with hub:HubEvidence where the schema lets an extension sit (after the
    # message header, before the signature), signed by its sender
    unsigned = build_envelope(sample_header(HOME_AFFAIRS, (FINANCE,), number="951",
                                            promulgation_date=NOW.date()))
    at = unsigned.index(b"<edXML:DigitalSignature")
    body = sign_xml(unsigned[:at] + EVIDENCE + unsigned[at:], signer)
    digest = parse_envelope(body).digest
    # When it is published
    plan = hub.pipeline.process_batch([Delivery(1, body, ENVELOPE_KEY, "inbound", False, {},
                                                "m1", "guest", None, 0)])
    hub.write_ledger(plan)
    # Then it is refused as statuses are: dead-lettered, nothing delivered to Finance
    assert [(d.action.value, d.reason.value) for _, d in plan.outcomes] == [
        ("dead_letter", "ENVELOPE_SCHEMA_INVALID")]
    assert not any(o.routing_key == f"inbox.{FINANCE}" for o in plan.first)
    # and its sender is told, in a signed 02 naming the reason
    assert [(o.routing_key, o.headers[Headers.RECEIPT], o.headers[Headers.REASON])
            for o in plan.receipts] == [
        (f"status.{HOME_AFFAIRS}", "rejected", "ENVELOPE_SCHEMA_INVALID")]
    assert [d.kind for d in hub.ledger.documents() if d.digest == digest] == ["refused"]
