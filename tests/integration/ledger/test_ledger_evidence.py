"""Evidence bundles: exported from the ledger, checked offline, and tampering caught."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from hub.ledger import Ledger
from hub.ledger.evidence import EvidenceError, export_evidence, resolve_document, verify_bundle
from tests.integration.ledger.ledger_samples import OperatorKey, envelope_bytes, sample_batch
from tests.integration.ledger.test_ledger_mutations import MUTATIONS, Mutation

# The document written at row 11 (see test_ledger_mutations): envelope number 2.
DIGEST = hashlib.sha256(envelope_bytes(2)).hexdigest()


def test_an_exported_bundle_verifies_offline(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path
) -> None:
    path = export_evidence(signed_ledger, DIGEST, tmp_path / "evidence.zip",
                           trust_files={"root.pem": operator_key.cert_pem})
    result = verify_bundle(path, trusted_cert_pem=operator_key.cert_pem)
    assert result.ok, result.problems
    assert result.signer_trusted
    assert result.entries == 5  # the document, received, validated, delivered twice
    assert result.checkpoint_seq == 30
    names = zipfile.ZipFile(path).namelist()
    assert f"documents/{DIGEST}.xml" in names
    assert f"reports/{DIGEST}.json" in names
    assert "README.txt" in names
    assert "trust/roots/root.pem" in names
    assert zipfile.ZipFile(path).read(f"documents/{DIGEST}.xml") == envelope_bytes(2)


def test_a_status_packet_linked_to_the_document_is_in_its_bundle(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path
) -> None:
    from hub.ledger import DocumentIn, EventIn, EventKind
    from tests.integration.ledger.ledger_samples import T0

    status = b"<edXMLStatus for='2'/>"
    status_digest = hashlib.sha256(status).hexdigest()
    signed_ledger.write(
        [DocumentIn("000.01.01.H27", "", status_digest, "status", status, T0,
                    links_to=DIGEST)],
        [EventIn(EventKind.STATUS_RECEIVED, "s1", T0, DIGEST, organ_id="000.01.01.H27",
                 detail={"status": "03"})])
    path = export_evidence(signed_ledger, DIGEST, tmp_path / "evidence.zip")
    result = verify_bundle(path, trusted_cert_pem=operator_key.cert_pem)
    assert result.ok, result.problems
    assert f"documents/{status_digest}.xml" in zipfile.ZipFile(path).namelist()
    assert result.checkpoint_seq == 32  # export signed a fresh checkpoint over the status


def test_a_document_is_found_by_document_id_or_code(signed_ledger: Ledger) -> None:
    assert resolve_document(signed_ledger, "000.00.00.H27,2024/03/01,2") == DIGEST
    assert resolve_document(signed_ledger, "2/UBND-VP") == DIGEST
    with pytest.raises(EvidenceError):
        resolve_document(signed_ledger, "nothing")


def test_without_a_signed_checkpoint_no_bundle_is_made(ledger_url: str, tmp_path: Path) -> None:
    with Ledger.open(ledger_url) as ledger:
        documents, events = sample_batch(0, 1)
        ledger.write(documents, events)
        with pytest.raises(EvidenceError, match="signed checkpoint"):
            export_evidence(ledger, documents[0].digest, tmp_path / "e.zip")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_tampering_with_the_ledger_shows_in_the_bundle(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path, mutation: Mutation
) -> None:
    with signed_ledger.engine.begin() as conn:
        mutation.apply(conn)
    path = export_evidence(signed_ledger, DIGEST, tmp_path / "evidence.zip")
    result = verify_bundle(path, trusted_cert_pem=operator_key.cert_pem)
    assert not result.ok


def test_a_bundle_re_signed_by_another_key_is_refused_against_the_operator_cert(
    signed_ledger: Ledger, operator_key: OperatorKey, intruder_key: OperatorKey, tmp_path: Path
) -> None:
    path = export_evidence(signed_ledger, DIGEST, tmp_path / "evidence.zip")
    result = verify_bundle(path, trusted_cert_pem=intruder_key.cert_pem)
    assert not result.ok
    assert any("forged" in p for p in result.problems)


def test_editing_a_file_inside_the_bundle_is_detected(
    signed_ledger: Ledger, operator_key: OperatorKey, tmp_path: Path
) -> None:
    path = export_evidence(signed_ledger, DIGEST, tmp_path / "evidence.zip")
    original = zipfile.ZipFile(path)
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w") as out:
        for name in original.namelist():
            data = original.read(name)
            if name == "ledger/entries.jsonl":
                lines = data.splitlines()
                entry = json.loads(lines[1])
                entry["organ_id"] = "000.99.99.H27"
                lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
                data = b"\n".join(lines) + b"\n"
            out.writestr(name, data)
    result = verify_bundle(rewritten.getvalue(), trusted_cert_pem=operator_key.cert_pem)
    assert not result.ok
    assert any("manifest" in p for p in result.problems)
    assert any("modified" in p for p in result.problems)
