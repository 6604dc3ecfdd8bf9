"""A status packet is judged once, as a document is: bytes the ledger recorded are a duplicate.

Found by a review: the pipeline validated a status, looked its document up and checked the
reporter's role *before* asking the ledger whether it had recorded those bytes already. A status
accepted and countersigned, then sent again once its reporter's certificate was revoked, was
refused (CERT_REVOKED: a signed 02 to the reporter, a dead letter, a ``refused`` row next to the
``status`` row of the same digest); redelivered after a crash between the ledger commit and the
receipts, it was refused the same way and its recorded countersignature never left. The same
status twice in one batch was forwarded and recorded twice. And a countersignature published
again after a crash carried other headers than its first copy under the same message id.

Real pipeline, validators, receipts and ledger (SQLite and PostgreSQL), no broker: a batch is
planned and committed in process, the crash is a plan committed whose receipts are not published.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hub.app import Hub, build_hub
from hub.config import with_overrides
from hub.consumers.plan import BatchPlan
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_status, response_for
from hub.messages import Delivery, Headers
from hub.testing.pki import PkiPaths, make_crl
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    hub_settings,
    signed_envelope,
)

REVOKED_AT = NOW + dt.timedelta(hours=1)
"""When the reporter's certificate is revoked (after its status was accepted)."""


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path, clock: _Clock) -> Iterator[Hub]:
    """The hub at ``clock``, trusting a CRL that revokes Finance's certificate at REVOKED_AT."""
    finance = x509.load_pem_x509_certificate(
        pipeline_pki.organizations[FINANCE].cert.read_bytes()).serial_number
    ca = x509.load_pem_x509_certificate(pipeline_pki.issuing_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pipeline_pki.issuing_ca_key.read_bytes(), None)
    crl = make_crl(ca, ca_key, revoked=[(finance, REVOKED_AT)],  # type: ignore[arg-type]
                   this_update=NOW, next_update=NOW + dt.timedelta(days=7), number=7)
    crl_path = tmp_path / "issuing-ca-revoking-finance.crl"
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    settings = with_overrides(
        hub_settings(pipeline_pki, tmp_path, "amqp://unused:unused@127.0.0.1:1/", "judgedonce",
                     ledger_url=ledger_url),
        trust={"crls": [str(crl_path), str(pipeline_pki.root_crl_der)]})
    built = build_hub(settings, clock=clock)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def keystore(pipeline_pki: PkiPaths) -> Keystore:
    return Keystore.load(pipeline_pki.keystore)


def _delivery(tag: int, body: bytes, *, status: bool, redelivered: bool = False) -> Delivery:
    return Delivery(tag, body, STATUS_KEY if status else ENVELOPE_KEY, "inbound", redelivered,
                    {}, f"m{tag}", "guest", None, 0)


def _document_and_status(keystore: Keystore, number: str) -> tuple[bytes, bytes]:
    """A document from Home Affairs to Finance, and Finance's status 03 about it."""
    document = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=number)
    finance = keystore.signer(FINANCE)
    assert finance is not None
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(document)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ văn bản đến"), finance)
    return document, status


def _kinds_of(hub: Hub, digest: str) -> list[str]:
    return [d.kind for d in hub.ledger.documents() if d.digest == digest]


def _countersignatures(plan: BatchPlan) -> list[tuple[str | None, dict[str, object]]]:
    return [(o.message_id, dict(o.headers)) for o in plan.receipts
            if o.headers.get(Headers.RECEIPT) == "countersigned"]


def test_a_status_sent_again_after_its_reporters_certificate_was_revoked_is_a_duplicate(
    hub: Hub, keystore: Keystore, clock: _Clock
) -> None:
    document, status = _document_and_status(keystore, "711")
    # Given a status accepted, forwarded and countersigned while its certificate was good
    hub.write_ledger(hub.pipeline.process_batch([_delivery(1, document, status=False)]))
    first = hub.pipeline.process_batch([_delivery(2, status, status=True)])
    hub.write_ledger(first)
    assert len(_countersignatures(first)) == 1
    status_digest = first.documents[0].digest
    # When the reporter's certificate has been revoked since and the same bytes come again
    clock.now = REVOKED_AT + dt.timedelta(hours=1)
    again = hub.pipeline.process_batch([_delivery(3, status, status=True)])
    hub.write_ledger(again)
    # Then they are a duplicate: acknowledged, nothing forwarded, refused or dead-lettered
    assert [d.action.value for _, d in again.outcomes] == ["duplicate"]
    assert again.first == []
    assert again.receipts == []
    # and the ledger holds one status for the digest, never a refusal of it
    assert _kinds_of(hub, status_digest) == ["status"]
    events = Counter(e.kind.value for e in hub.ledger.events(digest=status_digest))
    assert events["duplicate"] == 1
    assert events["rejected"] == 0
    # while a new status of the revoked reporter is refused (control: the CRL is in force)
    other_document, other_status = _document_and_status(keystore, "712")
    clock.now = NOW
    hub.write_ledger(hub.pipeline.process_batch([_delivery(4, other_document, status=False)]))
    clock.now = REVOKED_AT + dt.timedelta(hours=1)
    refused = hub.pipeline.process_batch([_delivery(5, other_status, status=True)])
    assert [d.reason.value for _, d in refused.outcomes] == ["CERT_REVOKED"]


def test_a_status_redelivered_after_its_commit_gets_its_recorded_countersignature_again(
    hub: Hub, keystore: Keystore, clock: _Clock
) -> None:
    document, status = _document_and_status(keystore, "721")
    hub.write_ledger(hub.pipeline.process_batch([_delivery(1, document, status=False)]))
    # Given a status planned and committed, and the consumer gone before its receipts left
    first = hub.pipeline.process_batch([_delivery(2, status, status=True)])
    hub.write_ledger(first)
    # When RabbitMQ redelivers it after the reporter's certificate was revoked
    clock.now = REVOKED_AT + dt.timedelta(hours=1)
    again = hub.pipeline.process_batch([_delivery(2, status, status=True, redelivered=True)])
    hub.write_ledger(again)
    # Then it is a duplicate, and the countersignature the ledger recorded is published again:
    # the same bytes, under the same message id, with the same headers as the first copy
    assert [d.action.value for _, d in again.outcomes] == ["duplicate"]
    assert _countersignatures(again) == _countersignatures(first)
    assert [o.body for o in again.receipts] == [o.body for o in first.receipts]
    assert [o.routing_key for o in again.receipts] == [o.routing_key for o in first.receipts]
    assert _kinds_of(hub, first.documents[0].digest) == ["status"]


def test_a_countersignature_published_again_carries_the_headers_of_its_first_copy(
    hub: Hub, keystore: Keystore
) -> None:
    document, status = _document_and_status(keystore, "741")
    hub.write_ledger(hub.pipeline.process_batch([_delivery(1, document, status=False)]))
    # Given a status committed, its countersignature not yet published (a crash)
    first = hub.pipeline.process_batch([_delivery(2, status, status=True)])
    hub.write_ledger(first)
    # When it is redelivered
    again = hub.pipeline.process_batch([_delivery(2, status, status=True, redelivered=True)])
    # Then one message id carries one set of headers: those of the first copy, which name the
    # document, the status, its reporter and the countersignature's signer
    assert _countersignatures(again) == _countersignatures(first)
    (_, headers), = _countersignatures(first)
    assert headers == {
        Headers.DIGEST: first.documents[0].digest,
        Headers.ORIGINAL: parse_envelope(document).digest,
        Headers.REPORTER: FINANCE,
        Headers.STATUS: "03",
        Headers.RECEIPT: "countersigned",
        Headers.ISSUER: hub.settings.hub.operator_organ_id,
    }


def test_the_same_status_twice_in_one_batch_is_forwarded_and_recorded_once(
    hub: Hub, keystore: Keystore
) -> None:
    document, status = _document_and_status(keystore, "731")
    hub.write_ledger(hub.pipeline.process_batch([_delivery(1, document, status=False)]))
    # Given the reporter published the same status twice (a confirm timeout, then again)
    # When both copies are planned in one batch
    plan = hub.pipeline.process_batch([_delivery(2, status, status=True),
                                       _delivery(3, status, status=True)])
    hub.write_ledger(plan)
    # Then the first is forwarded and countersigned, the second is a duplicate
    assert [d.action.value for _, d in plan.outcomes] == ["deliver", "duplicate"]
    assert [o.message_id for o in plan.first] == [f"{plan.documents[0].digest}:{HOME_AFFAIRS}"]
    assert len(_countersignatures(plan)) == 1
    status_digest = plan.documents[0].digest
    assert _kinds_of(hub, status_digest) == ["status"]
    events = Counter(e.kind.value for e in hub.ledger.events(digest=status_digest))
    assert events["duplicate"] == 1
    document_events = Counter(e.kind.value for e in hub.ledger.events(
        digest=parse_envelope(document).digest))
    assert document_events["status_received"] == 1
    assert hub.ledger.verify().ok
