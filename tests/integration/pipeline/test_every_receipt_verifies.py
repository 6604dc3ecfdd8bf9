"""Every receipt the hub issues is a status packet its own parser reads and ``hub receipt
verify`` accepts.

Found by a review: the hub's refusal of bytes it could not read (not XML, not EDXML) or would
not read as their From (a packet published by an account that may not speak for that From) named
them in ``ResponseFor/DocumentId`` as ``{publisher},{day},{digest16}`` — no number/notation part
(QCVN 102 §1.14) — so the hub's own parser refused the hub's own genuine receipt
(DOCUMENT_ID_INVALID): ``hub receipt verify`` and the console's timeline called it "not a
receipt" while xmlsec1 verified it. Such bytes are now named ``{digest16}/HUB``.

Every kind the pipeline issues — received, accepted, countersigned, rejected about a packet,
rejected about bytes (unreadable; a forged From), and the same bytes refused again for another
reason (whose message id then names that reason) — is checked through the parser, the
function the console calls and the command an auditor runs. Real pipeline, real ledger (SQLite
and PostgreSQL), real test PKI, no broker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub
from hub.broker import Delivery
from hub.edxml import parse_envelope, parse_packet
from hub.edxml.build import build_status, response_for
from hub.edxml.model import Organization, StatusPacket
from hub.edxml.orgcode import DocumentId
from hub.ledger.records import IssuedReceipt
from hub.ops.cli import EXIT_OK, main
from hub.ops.receipt_verify import verify_receipt
from hub.receipts.content import read_evidence
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    hub_in_process,
    settings_toml,
    signed_envelope,
)

NOBODY = "000.00.99.H27"
"""A well-formed organization code the directory does not know."""


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "everyreceipt") as built:
        yield built


def _publish(hub: Hub, batch: list[tuple[bytes, bool, str]], start: int) -> None:
    """One batch through the pipeline and the ledger commit: (body, is status, the broker
    account that published it)."""
    deliveries = [Delivery(start + i, body, STATUS_KEY if status else ENVELOPE_KEY, "inbound",
                           False, {}, f"m{start + i}", user, None, 0)
                  for i, (body, status, user) in enumerate(batch)]
    hub.write_ledger(hub.pipeline.process_batch(deliveries))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_kind_of_receipt_the_hub_issues_parses_and_verifies(
    hub: Hub, pipeline_pki: PkiPaths, tmp_path: Path
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    finance = keystore.signer(FINANCE)
    assert finance is not None
    letter = signed_envelope(keystore, PROVINCE, (FINANCE,), number="1201")
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(letter)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ"), finance)
    to_nobody = signed_envelope(keystore, PROVINCE, (NOBODY,), number="1202")
    junk = b"\xef\xbb\xbf<edXML>not closed"
    # Given a letter and its recipient's status; a letter to nobody the hub knows; bytes that
    # are not EDXML; and the province's letter published by Home Affairs' account (a forged
    # From), then the same bytes by the province itself (refused again: no such recipient)
    _publish(hub, [(letter, False, PROVINCE), (to_nobody, False, HOME_AFFAIRS),
                   (junk, False, FINANCE)], 1)
    _publish(hub, [(status, True, FINANCE)], 4)
    _publish(hub, [(to_nobody, False, PROVINCE)], 5)
    about = {_sha256(b): b for b in (letter, status, to_nobody, junk)}
    issued: list[IssuedReceipt] = [r for rs in hub.ledger.issued(about).values() for r in rs]
    # Then the hub issued every kind of receipt, the bytes refused twice under two message ids
    kinds = sorted((r.kind, r.reason or "") for r in issued)
    assert kinds == [
        ("accepted", ""), ("countersigned", ""), ("received", ""),
        ("rejected", "ENVELOPE_MALFORMED"), ("rejected", "RECIPIENT_UNKNOWN"),
        ("rejected", "SENDER_ACCOUNT_MISMATCH")]
    operator = hub.settings.hub.operator_organ_id
    refused_twice = _sha256(to_nobody)
    assert sorted(r.message_id for r in issued if r.about == refused_twice) == [
        f"{refused_twice}:rejected:{operator}",
        f"{refused_twice}:rejected:{operator}:RECIPIENT_UNKNOWN"]
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(hub.settings), encoding="utf-8")
    for receipt in issued:
        what = f"{receipt.kind} {receipt.reason or ''} {receipt.message_id}"
        original = about[receipt.about]
        # each one is a status packet for the hub's own parser, with a standard DocumentId
        packet = parse_packet(receipt.body)
        assert isinstance(packet, StatusPacket), what
        DocumentId.parse(packet.response_for.document_id)
        evidence = read_evidence(receipt.body)
        assert evidence is not None, what
        assert evidence.envelope_digest == receipt.about, what
        # what the console calls says valid and bound to the bytes received
        ok, lines = verify_receipt(hub.settings, receipt.body, original)
        assert ok, (what, lines)
        assert "binding: the receipt is bound to this exact envelope" in lines, what
        # and so does the auditor's command
        name = receipt.message_id.replace(":", "_")
        (tmp_path / f"{name}.xml").write_bytes(receipt.body)
        (tmp_path / f"{name}.orig").write_bytes(original)
        assert main(["--config", str(config), "receipt", "verify", str(tmp_path / f"{name}.xml"),
                     "--envelope", str(tmp_path / f"{name}.orig")]) == EXIT_OK, what


def test_bytes_refused_unread_are_named_by_their_digest_with_the_hub_notation(
    hub: Hub,
) -> None:
    junk = b"not xml \xff"
    digest = _sha256(junk)
    # When an agency's account publishes bytes that are not EDXML
    _publish(hub, [(junk, False, FINANCE)], 1)
    (refusal,) = hub.ledger.issued([digest])[digest]
    packet = parse_packet(refusal.body)
    assert isinstance(packet, StatusPacket)
    # Then the refusal names them as the publisher's, on the day refused, number the first
    # 16 hex digits of their SHA-256 and notation HUB (docs/CONTRACTS.md)
    rf = packet.response_for
    assert rf.document_id == f"{FINANCE},{NOW:%Y/%m/%d},{digest[:16]}/HUB"
    assert rf.code == f"{digest[:16]}/HUB"
    assert (rf.organ_id, rf.promulgation_date) == (FINANCE, NOW.date())
