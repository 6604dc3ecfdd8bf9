"""Hub evidence only from the hub (issue 16, M4).

A receipt's kind is bound to who signed it: accepted / rejected / countersigned only by the hub
operator, received only by the recipient it names — in ``hub receipt verify`` and in any reader
(:func:`hub.receipts.content.issuer_mismatch`). And the hub's evidence element is refused in
packets from agencies, so a recipient cannot send such a packet through the hub to have it
forwarded and countersigned.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hub.app import Hub, build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.edxml import parse_envelope
from hub.messages import Headers, Outgoing
from hub.ops.receipt_verify import verify_receipt
from hub.reasons import Reason
from hub.receipts.content import (
    Evidence,
    ReceiptKind,
    build_receipt,
    issuer_mismatch,
    read_evidence,
    signature_value_of,
)
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    OFFICE,
    hub_settings,
    make_pki,
    signed_envelope,
)

OPERATOR = OFFICE
"""The hub operator of the harness settings (``[hub] operator_organ_id``)."""


def _evidence(kind: ReceiptKind, recipient: str | None = None) -> Evidence:
    return Evidence(kind=kind, envelope_digest="0" * 64, signature_value_digest=None,
                    reason=None, at="2025-03-03T15:05:00+07:00", recipient=recipient)


@pytest.mark.parametrize("kind", [ReceiptKind.ACCEPTED, ReceiptKind.REJECTED,
                                  ReceiptKind.COUNTERSIGNED])
def test_the_hubs_word_is_only_the_hub_operators(kind: ReceiptKind) -> None:
    assert issuer_mismatch(_evidence(kind), OPERATOR, OPERATOR) is None
    assert issuer_mismatch(_evidence(kind), FINANCE, OPERATOR) is not None


def test_a_received_receipt_is_only_the_named_recipients() -> None:
    evidence = _evidence(ReceiptKind.RECEIVED, recipient=FINANCE)
    assert issuer_mismatch(evidence, FINANCE, OPERATOR) is None
    assert issuer_mismatch(evidence, HOME_AFFAIRS, OPERATOR) is not None
    assert issuer_mismatch(evidence, OPERATOR, OPERATOR) is not None
    assert issuer_mismatch(_evidence(ReceiptKind.RECEIVED), FINANCE, OPERATOR) is not None


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("evidence-pki"))


def _forged_acceptance(pki: PkiPaths, envelope: bytes, signer_org: str) -> bytes:
    """An 'accepted by the hub' receipt made and validly signed by an ordinary agency."""
    keystore = Keystore.load(pki.keystore)
    env = parse_envelope(envelope)
    unsigned = build_receipt(
        "accepted", envelope_raw=envelope, signature_value=signature_value_of(envelope),
        sender=env.sender.organ_id, document_id=env.document_id, code=env.header.code.text,
        reporter=signer_org, at=NOW)
    signer = keystore.signer(signer_org)
    assert signer is not None
    return sign_xml(unsigned, signer)


def test_receipt_verify_refuses_hub_evidence_signed_by_an_agency(
        pki: PkiPaths, tmp_path: Path) -> None:
    settings = hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "evidence")
    envelope = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,), number="1")
    forged = _forged_acceptance(pki, envelope, FINANCE)
    evidence = read_evidence(forged)
    assert evidence is not None
    assert evidence.kind is ReceiptKind.ACCEPTED
    ok, lines = verify_receipt(settings, forged, envelope, at=NOW)
    assert not ok
    assert any(line.startswith("signature: valid") for line in lines)  # the signature is fine
    assert any("NOT the hub's evidence" in line for line in lines)
    genuine = _forged_acceptance(pki, envelope, OPERATOR)
    ok, lines = verify_receipt(settings, genuine, envelope, at=NOW)
    assert ok, lines


def _run(hub: Hub, bodies: list[tuple[bytes, str, bool]]) -> list[Outgoing]:
    stop = threading.Event()

    def stop_when_all_acked(c: FakeConnection) -> None:
        if len(c.channel.acked_tags()) >= len(bodies):
            stop.set()

    conn = FakeConnection(on_idle=stop_when_all_acked)
    for i, (body, user, _status) in enumerate(bodies):
        conn.put(body, message_id=f"m{i}", user_id=user)
    IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline, hub.ledger,
                   stop=stop, connector=lambda _u, _n: conn).run()
    return conn.published


def test_a_packet_from_an_agency_carrying_the_hubs_evidence_is_refused_not_forwarded(
        pki: PkiPaths, tmp_path: Path) -> None:
    hub = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "evidence"),
                    clock=lambda: NOW)
    try:
        envelope = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,),
                                   number="2")
        # Given a delivered document, then its recipient publishing a forged hub acceptance
        forged = _forged_acceptance(pki, envelope, FINANCE)
        published = _run(hub, [(envelope, HOME_AFFAIRS, False), (forged, FINANCE, True)])
        # Then the forged packet is dead-lettered, never forwarded nor countersigned
        dead = [o for o in published if o.exchange == hub.topology.names.dlx]
        assert [o.body for o in dead] == [forged]
        assert dead[0].headers[Headers.REASON] == Reason.ENVELOPE_SCHEMA_INVALID.value
        assert "HubEvidence" in str(dead[0].headers[Headers.DETAIL])
        assert not [o for o in published if o.body == forged and o.exchange != hub.topology.names.dlx]
        assert not [o for o in published if o.headers.get(Headers.RECEIPT) == "countersigned"]
    finally:
        hub.close()


# -- the publishing account (issue 16, L3) and refused letters by recipient (issue 16, info) ----


def _dead(hub: Hub, published: list[Outgoing]) -> list[Outgoing]:
    return [o for o in published if o.exchange == hub.topology.names.dlx]


def test_a_packet_published_without_a_user_id_stays_refused_when_a_trusted_login_replays_it(
        pki: PkiPaths, tmp_path: Path) -> None:
    hub = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "evidence"),
                    clock=lambda: NOW)
    try:
        envelope = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,),
                                   number="3")
        stop = threading.Event()
        conn = FakeConnection(on_idle=lambda c: stop.set())
        conn.put(envelope, message_id="no-user", user_id=None)
        IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                       hub.ledger, stop=stop, connector=lambda _u, _n: conn).run()
        (dead,) = _dead(hub, conn.published)
        assert dead.headers[Headers.REASON] == Reason.SENDER_ACCOUNT_MISMATCH.value
        assert dead.headers[Headers.ORIGINAL_USER] == ""
        # When an operator replays it under the hub's trusted login ("guest" in these settings),
        # carrying the dead letter's headers as hub dlq replay does
        stop = threading.Event()
        again = FakeConnection(on_idle=lambda c: stop.set())
        again.put(envelope, message_id="no-user", user_id="guest", headers=dict(dead.headers))
        IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                       hub.ledger, stop=stop, connector=lambda _u, _n: again).run()
        # Then it is still refused: the replaying login does not speak for a missing publisher
        (replayed,) = _dead(hub, again.published)
        assert replayed.headers[Headers.REASON] == Reason.SENDER_ACCOUNT_MISMATCH.value
        assert not [o for o in again.published if o.body == envelope
                    and o.exchange == hub.topology.names.deliver]
    finally:
        hub.close()


def test_a_refused_envelope_can_be_found_in_the_dead_letters_by_its_recipient(
        pki: PkiPaths, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from hub.messages import Delivery
    from hub.ops.dlq import DeadLetter, Filter

    hub = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "evidence"),
                    clock=lambda: NOW)
    try:
        tampered = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE, OFFICE),
                                   number="4").replace("Về việc".encode(), b"Ve viec", 1)
        (dead,) = _dead(hub, _run(hub, [(tampered, HOME_AFFAIRS, False)]))
        letter = DeadLetter.of(Delivery(1, dead.body, dead.routing_key, dead.exchange, False,
                                        dead.headers, dead.message_id, None, None, 0))
        now = datetime.now(UTC)
        assert Filter(recipient=FINANCE).matches(letter, now)
        assert Filter(recipient=OFFICE).matches(letter, now)
        assert not Filter(recipient=HOME_AFFAIRS).matches(letter, now)
    finally:
        hub.close()
