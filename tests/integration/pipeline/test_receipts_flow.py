"""Countersigned receipts and the status feedback loop, end to end (issue 6 acceptance)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hub.edxml import parse_envelope
from hub.edxml.build import build_envelope, build_status, response_for, sample_header, sample_trace
from hub.edxml.model import BusinessDocType
from hub.ledger import EventKind
from hub.ops.receipt_verify import verify_receipt
from hub.receipts.content import read_evidence
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    OFFICE,
    PROVINCE,
    hub_settings,
    running_hub,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def keystore(pipeline_pki: PkiPaths) -> Keystore:
    return Keystore.load(pipeline_pki.keystore)


def _xmlsec1_verifies(pki: PkiPaths, data: bytes, tmp: Path) -> bool:
    exe = shutil.which("xmlsec1")
    assert exe is not None, "xmlsec1 (Debian package xmlsec1) is required"
    f = tmp / "receipt.xml"
    f.write_bytes(data)
    proc = subprocess.run([exe, "--verify", "--trusted-pem", str(pki.root_cert),
                           "--untrusted-pem", str(pki.issuing_ca_cert), str(f)],
                          capture_output=True, check=False, timeout=30)
    return proc.returncode == 0


def _sign(keystore: Keystore, org: str, data: bytes) -> bytes:
    signer = keystore.signer(org)
    assert signer is not None
    return sign_xml(data, signer)


def test_a_sender_gets_a_received_receipt_from_the_recipient_and_an_accepted_one_from_the_hub(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        header = sample_header(PROVINCE, (FINANCE,), number="501", promulgation_date=NOW.date())
        env = _sign(keystore, PROVINCE, build_envelope(header))
        hub.client(PROVINCE).send(env)
        hub.wait_acked(1)
        # The recipient consumes its document
        assert [d.body for d in hub.client(FINANCE).documents()] == [env]
        receipts = {r.headers["x-hub-receipt"]: r.body for r in hub.client(PROVINCE).statuses()}
        assert set(receipts) == {"received", "accepted"}
        # "01 đã đến" is signed as the recipient organization, "accepted" as the hub operator
        received = read_evidence(receipts["received"])
        accepted = read_evidence(receipts["accepted"])
        assert received is not None
        assert accepted is not None
        assert received.kind == "received"
        assert accepted.kind == "accepted"
        for body, org in ((receipts["received"], FINANCE), (receipts["accepted"], OFFICE)):
            ok, lines = verify_receipt(settings, body, env, at=NOW)
            assert ok, lines
            assert f"for {org}" in lines[0]
            # The reference implementation agrees
            assert _xmlsec1_verifies(pipeline_pki, body, tmp_path)
        # Changing one byte of the original envelope breaks the binding
        tampered = env.replace(b"501", b"502", 1)
        ok, lines = verify_receipt(settings, receipts["accepted"], tampered, at=NOW)
        assert not ok
        assert any("MISMATCH" in line for line in lines)


def test_a_recipients_status_is_countersigned_and_routed_back_to_the_sender(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        header = sample_header(PROVINCE, (FINANCE,), number="502", promulgation_date=NOW.date())
        env = _sign(keystore, PROVINCE, build_envelope(header))
        hub.client(PROVINCE).send(env)
        hub.wait_acked(1)
        hub.client(PROVINCE).statuses()  # the hub's own receipts
        parsed = parse_envelope(env)
        finance = hub.hub.directory.find(FINANCE)
        assert finance is not None
        from hub.edxml.model import Organization

        status = _sign(keystore, FINANCE, build_status(
            response_for=response_for(parsed), sender=Organization(FINANCE, finance.name),
            status_code="03", timestamp=NOW, description="Đã vào sổ văn bản đến"))
        hub.client(FINANCE).send(status, status=True)
        hub.wait_acked(2)
        back = hub.client(PROVINCE).statuses()
        assert [r.body for r in back if "x-hub-receipt" not in r.headers] == [status]
        counter = [r.body for r in back if r.headers.get("x-hub-receipt") == "countersigned"]
        assert len(counter) == 1
        ok, lines = verify_receipt(settings, counter[0], status, at=NOW)
        assert ok, lines
        assert _xmlsec1_verifies(pipeline_pki, counter[0], tmp_path)
        kinds = [e.kind for e in hub.hub.ledger.events(digest=parsed.digest)]
        assert EventKind.STATUS_RECEIVED in kinds


def test_a_status_signed_by_another_organization_than_the_reporter_is_refused(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        header = sample_header(PROVINCE, (FINANCE,), number="503", promulgation_date=NOW.date())
        env = _sign(keystore, PROVINCE, build_envelope(header))
        hub.client(PROVINCE).send(env)
        hub.wait_acked(1)
        from hub.edxml.model import Organization

        # Home Affairs signs a status that claims to come from Finance
        forged = _sign(keystore, HOME_AFFAIRS, build_status(
            response_for=response_for(parse_envelope(env)), sender=Organization(FINANCE),
            status_code="06", timestamp=NOW))
        hub.client(FINANCE).send(forged, status=True)
        hub.wait_acked(2)
        dead = hub.drain(hub.names.dlq)
        assert [d.headers["x-hub-reason"] for d in dead] == ["SIGNER_NOT_AUTHORIZED_FOR_SENDER"]


def test_a_recall_reaches_the_same_recipients_and_is_linked_to_the_original(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        original_header = sample_header(PROVINCE, (FINANCE, HOME_AFFAIRS), number="504",
                                        promulgation_date=NOW.date())
        original = _sign(keystore, PROVINCE, build_envelope(original_header))
        hub.client(PROVINCE).send(original)
        hub.wait_acked(1)
        # The recall names only Finance; the hub still sends it to every original recipient
        recall_header = sample_header(PROVINCE, (FINANCE,), number="505",
                                      promulgation_date=NOW.date(),
                                      subject="Thu hồi văn bản số 504")
        recall = _sign(keystore, PROVINCE, build_envelope(
            recall_header, trace=sample_trace(PROVINCE, NOW, kind=BusinessDocType.REVOCATION,
                                              reason="Thu hồi do sai sót",
                                              replaced_document_id=original_header.document_id)))
        hub.client(PROVINCE).send(recall)
        # Someone else trying to recall the province's document is refused
        impostor_header = sample_header(FINANCE, (HOME_AFFAIRS,), number="9",
                                        promulgation_date=NOW.date())
        impostor = _sign(keystore, FINANCE, build_envelope(
            impostor_header, trace=sample_trace(FINANCE, NOW, kind=BusinessDocType.REVOCATION,
                                                replaced_document_id=original_header.document_id)))
        hub.client(FINANCE).send(impostor)
        hub.wait_acked(3)
        for org in (FINANCE, HOME_AFFAIRS):
            assert [d.body for d in hub.client(org).documents()] == [original, recall]
        recalled = [e for e in hub.hub.ledger.events(kind=EventKind.RECALLED)]
        assert len(recalled) == 1
        assert recalled[0].detail["original"] == parse_envelope(original).digest
        assert [d.headers["x-hub-reason"] for d in hub.drain(hub.names.dlq)] == [
            "NOT_ORIGINAL_SENDER"]
