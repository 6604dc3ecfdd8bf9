"""The national-axis interop policy (``[trust] axis_legacy_envelope_signature``; Decree
30/2020/NĐ-CP Art. 5).

Envelopes from the official SDK often carry an unusable envelope signature (rsa-sha1, a foreign
namespace, the empty placeholder) while the binding signatures are the PAdES ones in the main
PDF. With the policy on, and only for senders reached through the national axis, such an
envelope is accepted when the main PDF carries valid person + organization signatures — and the
report says so in a PASSED ``axis_legacy_policy`` check.
"""

from __future__ import annotations

import pytest

from hub.reasons import Reason
from hub.validators import AXIS_LEGACY_CHECK, Indication, ValidationReport, validate_packet
from tests.pki_fixtures import AXIS_SENDER, GeneratedPki
from tests.unit.validators.signature_vectors import Built, Vectors, build


def _judge(built: Built) -> ValidationReport:
    return validate_packet(built.packet, at=built.at, policy=built.policy,
                           directory=built.directory, crls=built.crls, ocsp=built.ocsp)


def test_with_the_policy_off_a_sha1_envelope_from_the_axis_is_refused(vectors: Vectors) -> None:
    report = _judge(build("axis_legacy_sha1_policy_off", vectors))
    assert (report.indication, report.reason) == (
        Indication.FAILED, Reason.SIGNATURE_ALGORITHM_FORBIDDEN)
    assert report.waiver is None
    assert "waived" not in report.summary()


def test_with_the_policy_on_a_sha1_envelope_from_the_axis_with_valid_pdfs_is_accepted_and_says_so(
    vectors: Vectors,
) -> None:
    # Given an axis sender's envelope signed with rsa-sha1 and a main PDF signed and sealed
    report = _judge(build("axis_legacy_sha1_accepted", vectors))
    # Then it is accepted, and the waiver is recorded, first, in the report
    assert report.accepted, report.describe()
    waiver = report.waiver
    assert waiver is not None
    assert report.checks[0] is waiver
    assert waiver.check == AXIS_LEGACY_CHECK
    assert waiver.evidence["waived_check"] == "xmldsig"
    assert waiver.evidence["waived_reason"] == "SIGNATURE_ALGORITHM_FORBIDDEN"
    assert "rsa-sha1" in waiver.evidence["waived_detail"]
    assert waiver.evidence["sender"] == AXIS_SENDER
    assert waiver.evidence["sender_reach"] == "axis"
    assert waiver.evidence["envelope_signature"].startswith("verified with SHA-1")
    assert vectors.axis_org.fingerprint in waiver.evidence["binding_signatures"]
    # Everything else about the envelope signer was still checked
    assert [c.check for c in report.checks] == [
        AXIS_LEGACY_CHECK, "trust", "revocation", "signer", "pdf"]
    # And the flat summary (logs) and the ledger form carry it
    assert report.summary()["waived"] == "SIGNATURE_ALGORITHM_FORBIDDEN"
    recorded = report.to_dict()["checks"][0]
    assert recorded["check"] == AXIS_LEGACY_CHECK
    assert recorded["indication"] == "PASSED"


@pytest.mark.parametrize("recipe", ["axis_legacy_unsigned_accepted",
                                    "axis_legacy_placeholder_accepted"])
def test_with_the_policy_on_an_unsigned_envelope_from_the_axis_rests_on_the_pdf(
    vectors: Vectors, recipe: str,
) -> None:
    report = _judge(build(recipe, vectors))
    assert report.accepted, report.describe()
    waiver = report.waiver
    assert waiver is not None
    assert waiver.evidence["waived_reason"] == "SIGNATURE_MISSING"
    assert waiver.evidence["envelope_signature"] == "none"
    assert report.signer is None
    assert [c.check for c in report.checks] == [AXIS_LEGACY_CHECK, "pdf"]


def test_with_the_policy_on_a_direct_sender_is_never_waived(vectors: Vectors) -> None:
    report = _judge(build("axis_legacy_direct_sender", vectors))
    assert (report.indication, report.reason) == (
        Indication.FAILED, Reason.SIGNATURE_ALGORITHM_FORBIDDEN)
    assert report.waiver is None
    assert "reach = 'direct'" in report.checks[0].evidence[AXIS_LEGACY_CHECK]


def test_with_the_policy_on_tampered_envelope_content_from_the_axis_is_refused(
    vectors: Vectors,
) -> None:
    report = _judge(build("axis_legacy_content_tampered", vectors))
    assert (report.indication, report.reason) == (
        Indication.FAILED, Reason.SIGNATURE_DIGEST_MISMATCH)
    assert report.waiver is None
    assert "not applied" in report.checks[0].evidence[AXIS_LEGACY_CHECK]


@pytest.mark.parametrize(("recipe", "pdf_reason"), [
    ("axis_legacy_pdf_tampered", Reason.PDF_MODIFIED_AFTER_SIGNING),
    ("axis_legacy_pdf_person_missing", Reason.PDF_PERSON_SIGNATURE_MISSING),
    ("axis_legacy_pdf_untrusted", Reason.PDF_SIGNER_UNTRUSTED),
])
def test_with_the_policy_on_a_pdf_that_does_not_carry_the_document_is_refused(
    vectors: Vectors, recipe: str, pdf_reason: Reason,
) -> None:
    report = _judge(build(recipe, vectors))
    # The envelope's own defect stays the reason; the PDF says why the waiver did not apply
    assert (report.indication, report.reason) == (
        Indication.FAILED, Reason.SIGNATURE_ALGORITHM_FORBIDDEN)
    assert report.waiver is None
    note = report.checks[0].evidence[AXIS_LEGACY_CHECK]
    assert note == f"not applied: pdf {pdf_reason.value}"
    assert report.checks[-1].reason is pdf_reason


def test_with_the_policy_on_an_envelope_without_a_pdf_is_refused(vectors: Vectors) -> None:
    report = _judge(build("axis_legacy_without_pdf", vectors))
    assert report.reason is Reason.SIGNATURE_ALGORITHM_FORBIDDEN
    assert report.checks[0].evidence[AXIS_LEGACY_CHECK] == (
        "not applied: no signed PDF main document")


def test_with_the_policy_on_a_defect_that_is_not_legacy_is_refused(vectors: Vectors) -> None:
    report = _judge(build("axis_legacy_wrong_c14n", vectors))
    assert report.reason is Reason.SIGNATURE_ALGORITHM_FORBIDDEN
    assert AXIS_LEGACY_CHECK not in report.checks[0].evidence


def test_with_the_policy_on_missing_revocation_data_for_the_pdf_is_retried_not_refused(
    vectors: Vectors,
) -> None:
    # Given no CRL of the issuing CA: the PDF signers' status is undecided
    built = build("axis_legacy_unsigned_accepted", vectors)
    report = validate_packet(built.packet, at=built.at, policy=built.policy,
                             directory=built.directory, crls=vectors.root_crl_only)
    # Then the waiver is pending (INDETERMINATE), so the pipeline retries instead of refusing
    assert report.indeterminate, report.describe()
    assert report.reason is Reason.REVOCATION_UNAVAILABLE
    assert report.checks[0].check == AXIS_LEGACY_CHECK
    assert report.checks[0].indication is Indication.INDETERMINATE
    assert report.waiver is None


def test_the_test_pki_issues_axis_certificates_outside_the_keystore(pki: GeneratedPki) -> None:
    assert AXIS_SENDER in pki.paths.axis_organizations
    assert pki.paths.axis_organizations[AXIS_SENDER].cert.parent.name == "axis"
    assert pki.keystore.signer(AXIS_SENDER) is None
