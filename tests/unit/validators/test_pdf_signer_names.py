"""The PDF check names the certificates of the main document's person and organization signers
(serial, issuer, subject, subject UID), as the envelope signer's evidence does: the ledger keeps
the report, and the office's subscriber registry (:mod:`hub.ledger.subscribers`) matches those
names to its subscribers (issue 21)."""

from __future__ import annotations

import pytest

from hub.edxml import parse_packet
from hub.validators import validate_packet
from tests.pki_fixtures import AT, DIRECTORY, GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import PERSON, SENDER, Vectors


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki) -> Vectors:
    return Vectors(pki)


def test_the_pdf_evidence_names_the_person_and_the_organization_certificates(
    vectors: Vectors,
) -> None:
    # Given an envelope whose main PDF is signed by a person, then sealed by the organization
    report = validate_packet(parse_packet(vectors.valid_raw), at=AT, policy=vectors.policy,
                             directory=DIRECTORY, crls=vectors.crls)
    assert report.accepted, report.describe()
    evidence = next(c for c in report.checks if c.check == "pdf").evidence
    # Then the evidence names each certificate the way the envelope signer's evidence does
    for role, signer, uid in (("person", vectors.person, PERSON),
                              ("organization", vectors.org, SENDER)):
        assert evidence[f"main_{role}"] == signer.fingerprint
        assert evidence[f"main_{role}_serial"] == f"{signer.cert.serial_number:x}"
        assert evidence[f"main_{role}_issuer"] == signer.cert.issuer.rfc4514_string()
        assert evidence[f"main_{role}_subject"] == signer.cert.subject.rfc4514_string()
        assert evidence[f"main_{role}_uid"] == uid
    # And the organization's PDF seal is the envelope signer's own certificate here
    assert report.signer is not None
    assert evidence["main_organization_serial"] == report.signer.serial
    assert evidence["main_organization_issuer"] == report.signer.issuer
