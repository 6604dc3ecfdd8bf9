"""Every refused packet is a ledger document (issue 17 item 1), and the revocation data a
validation used is kept with the document it judged (item 5)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import text

from hub.ledger import DocumentIn, EventIn, EventKind, Ledger, RevocationEvidence
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import T0, envelope_bytes, refused_packet
from tests.pki_fixtures import PKI_NOW, GeneratedPki

GARBAGE = b"\x00\x01 not XML at all \xff"


def test_a_refused_packet_is_a_document_with_its_reason_account_and_exact_bytes(
    ledger_url: str,
) -> None:
    # Given an unparseable packet published by an account the directory maps to an organization
    document, events = refused_packet(GARBAGE, Reason.ENVELOPE_MALFORMED,
                                      organization="000.05.01.H27", account="so-tttt")
    with Ledger.open(ledger_url) as ledger:
        # When the pipeline records the refusal
        ledger.write([document], events)
        # Then it is a document of kind refused, with what was known and the exact bytes
        (stored,) = ledger.documents(kind="refused")
        assert (stored.sender, stored.digest, stored.size) == (
            "000.05.01.H27", document.digest, len(GARBAGE))
        assert stored.refusal == {"reason": "ENVELOPE_MALFORMED", "account": "so-tttt",
                                  "kept": True, "cap": ledger.refused_bytes_cap}
        assert ledger.raw(document.digest) == GARBAGE
        assert ledger.verify().ok


def test_a_refused_packet_never_makes_its_document_id_taken(ledger_url: str) -> None:
    # Given a refused envelope that did name its DocumentId
    raw = envelope_bytes(7)
    document, events = refused_packet(raw, Reason.SIGNATURE_INVALID,
                                      organization="000.00.00.H27", account="vp-ubnd",
                                      document_id="000.00.00.H27,2024/03/01,7", code="7/UBND")
    with Ledger.open(ledger_url) as ledger:
        ledger.write([document], events)
        # Then the duplicate checks of the pipeline do not see it (a corrected re-send is new)
        assert ledger.find_document("000.00.00.H27", "000.00.00.H27,2024/03/01,7") is None
        assert ledger.find_documents([("000.00.00.H27", "000.00.00.H27,2024/03/01,7")]) == {}
        assert ledger.document_by_digest(document.digest) is None
        # but an auditor finds it
        found = ledger.document_by_digest(document.digest, include_refused=True)
        assert found is not None
        assert found.kind == "refused"


def test_a_refused_packet_over_the_cap_keeps_its_digest_and_size_and_says_so(
    ledger_url: str, tmp_path: Path,
) -> None:
    big = envelope_bytes(1, size=5000)
    document, events = refused_packet(big, Reason.ENVELOPE_TOO_LARGE, organization=None,
                                      account="unknown-account")
    with Ledger.open(ledger_url, blob_dir=tmp_path / "blobs", refused_bytes_cap=1000) as ledger:
        ledger.write([document], events)
        (stored,) = ledger.documents(kind="refused")
        assert stored.sender == ""
        assert stored.size == len(big)
        assert stored.refusal is not None
        assert (stored.refusal["kept"], stored.refusal["cap"]) == (False, 1000)
        assert ledger.raw(document.digest) is None
        assert not (tmp_path / "blobs").exists()
        # The missing bytes are what the chained entry says: the ledger still verifies
        assert ledger.verify().ok


def test_bytes_refused_then_accepted_after_a_replay_are_recorded_both_times(
    ledger_url: str,
) -> None:
    # Given an envelope refused (its recipient was unknown), then replayed after a directory fix
    raw = envelope_bytes(3)
    refused, events = refused_packet(raw, Reason.RECIPIENT_UNKNOWN, organization="A",
                                     account="a")
    accepted = DocumentIn("A", "A,2024/03/01,3", refused.digest, "envelope", raw, T0,
                          recipients=("B",))
    with Ledger.open(ledger_url) as ledger:
        ledger.write([refused], events)
        ledger.write([accepted], [EventIn(EventKind.VALIDATED, "m", T0, refused.digest)])
        # Then both records exist and the pipeline sees the accepted one
        assert sorted(d.kind for d in ledger.documents()) == ["envelope", "refused"]
        found = ledger.find_document("A", "A,2024/03/01,3")
        assert found is not None
        assert found.kind == "envelope"
        assert ledger.raw(refused.digest) == raw
        assert ledger.verify().ok


def test_editing_a_recorded_refusal_is_detected(ledger_url: str) -> None:
    document, events = refused_packet(GARBAGE, Reason.CERT_PUBLIC_CA, organization="A",
                                      account="a")
    with Ledger.open(ledger_url) as ledger:
        ledger.write([document], events)
        with ledger.engine.begin() as conn:
            conn.execute(text("UPDATE ledger_documents SET refusal = replace(refusal,"
                              " 'CERT_PUBLIC_CA', 'DUPLICATE')"))
        result = ledger.verify()
        assert result.first_bad_row == 1
        assert "modified" in (result.problem or "")


def _crl_evidence(pki: GeneratedPki) -> RevocationEvidence:
    org = pki.paths.organizations["000.00.01.H27"]
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf = x509.load_pem_x509_certificates(org.cert.read_bytes())[0]
    return RevocationEvidence(
        kind="crl", der=pki.paths.crl_der.read_bytes(), at=PKI_NOW,
        source="http://crl.test/issuing-ca.crl", certificate=leaf.public_bytes(Encoding.DER),
        issuer=pki.issuing_ca.public_bytes(Encoding.DER))


def test_the_revocation_data_a_validation_used_is_kept_and_chained(
    ledger_url: str, pki: GeneratedPki,
) -> None:
    evidence = _crl_evidence(pki)
    raw = envelope_bytes(5)
    digest = hashlib.sha256(raw).hexdigest()
    with Ledger.open(ledger_url) as ledger:
        ledger.write([DocumentIn("A", "5", digest, "envelope", raw, T0,
                                 revocation=(evidence,))], [])
        # the same CRL used again is stored once
        raw2 = envelope_bytes(6)
        ledger.write([DocumentIn("A", "6", hashlib.sha256(raw2).hexdigest(), "envelope", raw2,
                                 T0, revocation=(evidence,))], [])
        crl_digest = hashlib.sha256(evidence.der).hexdigest()
        assert ledger.evidence_blob(crl_digest) == evidence.der
        assert ledger.verify().ok
        # When the stored CRL is swapped, Then verify names the document that relied on it
        with ledger.engine.begin() as conn:
            conn.execute(text("UPDATE ledger_evidence_blobs SET data = :d WHERE digest = :g"),
                         {"d": b"forged", "g": crl_digest})
        result = ledger.verify()
        assert result.first_bad_row == 1
        assert "revocation evidence" in (result.problem or "")
