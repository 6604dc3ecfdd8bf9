"""PDF hardening (issue 16): what may change after the person's signature and after the
organization's seal (shadow attacks, M2), PDFs found by their content rather than their
declared type (M3), and malformed PDFs or certificates judged as such, never as internal errors
— nor internal errors as a permanent PDF_SIGNATURE_INVALID (L4).

The PDFs are built with pyHanko and the test PKI (:mod:`tests.pki_fixtures`); the same shapes
are in ``test_pdf_fast_path.py``, where the fast path and the pyHanko reference must agree.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from hub.edxml import parse_packet, sample_attachment
from hub.edxml.model import Envelope
from hub.reasons import Reason
from hub.trust.signing import minimal_pdf, pdf_from_objects, sign_pdf
from hub.validators import Indication, PdfChange, PdfChangePolicy, ValidationReport, validate_packet
from hub.validators.outcome import ValidationFailure
from hub.validators.pdf import check_pdf_attachments
from tests.pki_fixtures import (
    AT,
    DIRECTORY,
    GeneratedPki,
    fill_form,
    form_pdf,
    issue,
    issuing_ca,
    session_pki,
    sign_visible,
)
from tests.unit.validators.signature_vectors import PERSON, RECIPIENT, Vectors

ISSUED = {"SoKyHieu": "12/UBND-VP", "NgayBanHanh": "02/03/2026"}
"""What the clerk writes when issuing: the document number and notation, and the date."""


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki) -> Vectors:
    return Vectors(pki)


def person_signed(v: Vectors) -> bytes:
    return sign_pdf(form_pdf("Cong van 100 trieu"), v.person, field_name="NguoiKy",
                    reason="Ký ban hành")


def seal(v: Vectors, pdf: bytes) -> bytes:
    return sign_pdf(pdf, v.org, field_name="DauCoQuan", reason="Đóng dấu")


def clerk_issued(v: Vectors) -> bytes:
    """The person signs, the clerk fills the number and date, the organization seals."""
    return seal(v, fill_form(person_signed(v), ISSUED))


def field_changed_after_seal(v: Vectors) -> bytes:
    """The issued document, then a form field changed: 100 → 900 million shown on the page."""
    return fill_form(clerk_issued(v), {"SoKyHieu": "900 trieu"})


def whole_page_signature_after_seal(v: Vectors) -> bytes:
    """The issued document, then a valid signature whose appearance covers the whole page."""
    return sign_visible(clerk_issued(v), v.pki.org(RECIPIENT), "CheTrang")


def _judge(v: Vectors, pdf: bytes, *, content_type: str = "application/pdf",
           changes: PdfChangePolicy | None = None) -> ValidationReport:
    attachment = dataclasses.replace(sample_attachment(pdf, content_id="main-document"),
                                     content_type=content_type)
    packet = parse_packet(v.signed(attachments=(attachment,)))
    policy = v.policy if changes is None else dataclasses.replace(v.policy, pdf_changes=changes)
    return validate_packet(packet, at=AT, policy=policy, directory=DIRECTORY, crls=v.crls)


def _pdf_check(report: ValidationReport) -> dict[str, str]:
    return dict(next(c for c in report.checks if c.check == "pdf").evidence)


# -- M2: changes after the seal, and between the person and the seal ---------------------------


def test_a_form_field_changed_after_the_person_and_the_seal_signed_is_refused(
    vectors: Vectors,
) -> None:
    report = _judge(vectors, field_changed_after_seal(vectors))
    assert report.reason is Reason.PDF_MODIFIED_AFTER_SIGNING, report.describe()
    assert report.indication is Indication.FAILED
    assert "DauCoQuan" in (report.first_problem.evidence["detail"]
                           if report.first_problem else "")


def test_a_later_valid_signature_covering_the_whole_page_is_refused(vectors: Vectors) -> None:
    report = _judge(vectors, whole_page_signature_after_seal(vectors))
    assert report.reason is Reason.PDF_MODIFIED_AFTER_SIGNING, report.describe()
    problem = report.first_problem
    assert problem is not None
    assert "after the organization's seal" in problem.evidence["detail"]
    assert "CheTrang" in problem.evidence["detail"]


def test_the_clerk_filling_number_and_date_before_the_seal_is_accepted_and_recorded(
    vectors: Vectors,
) -> None:
    # Given the person's signature, then the clerk's number and date, then the seal
    report = _judge(vectors, clerk_issued(vectors))
    # Then the document is accepted
    assert report.accepted, report.describe()
    # And the report says what changed between the person's signature and the seal
    evidence = _pdf_check(report)
    assert evidence["changed_before_seal"] == (
        "van-ban.pdf field NguoiKy, then form_filling: NgayBanHanh, SoKyHieu")
    assert evidence["main_person"] == vectors.person.fingerprint


def test_a_document_sealed_without_changes_records_none(vectors: Vectors) -> None:
    report = _judge(vectors, vectors.good_pdf)
    assert report.accepted, report.describe()
    assert "changed_before_seal" not in _pdf_check(report)


def test_the_change_policy_is_a_value_the_operator_can_relax(vectors: Vectors) -> None:
    # Given a policy that allows form filling and further signatures after the seal
    lax = PdfChangePolicy(after_seal=PdfChange.FORM_FILLING, signatures_after_seal=True)
    # Then both shadow shapes pass, as they did before the default closed them
    assert _judge(vectors, field_changed_after_seal(vectors), changes=lax).accepted
    assert _judge(vectors, whole_page_signature_after_seal(vectors), changes=lax).accepted


def test_form_filling_before_the_seal_can_be_refused_by_policy(vectors: Vectors) -> None:
    strict = PdfChangePolicy(before_seal=PdfChange.REVOCATION_DATA)
    report = _judge(vectors, clerk_issued(vectors), changes=strict)
    assert report.reason is Reason.PDF_MODIFIED_AFTER_SIGNING, report.describe()


def test_changes_after_the_only_signature_are_unsigned_and_refused(vectors: Vectors) -> None:
    # Given a person-only PDF (the requirement off) filled in after the person signed
    pdf = fill_form(person_signed(vectors), ISSUED)
    attachment = sample_attachment(pdf, content_id="main-document")
    packet = parse_packet(vectors.signed(attachments=(attachment,)))
    assert isinstance(packet, Envelope)
    # Then nobody signed the filled values: refused
    with pytest.raises(ValidationFailure) as failure:
        check_pdf_attachments(packet, policy=vectors.policy, crls=vectors.crls,
                              directory=DIRECTORY, at=AT, require_signatures=False)
    assert failure.value.reason is Reason.PDF_MODIFIED_AFTER_SIGNING


# -- M3: a PDF is a PDF whatever its declared type ---------------------------------------------


@pytest.mark.parametrize("declared", ["application/octet-stream", "text/plain", ""])
def test_a_signed_pdf_declared_as_another_type_still_needs_the_seal(
    declared: str, vectors: Vectors,
) -> None:
    pdf = sign_pdf(minimal_pdf("Cong van"), vectors.person, field_name="NguoiKy", reason="Ký")
    report = _judge(vectors, pdf, content_type=declared)
    assert report.reason is Reason.PDF_ORGANIZATION_SIGNATURE_MISSING, report.describe()


def test_a_tampered_pdf_declared_as_octet_stream_is_refused(vectors: Vectors) -> None:
    tampered = vectors.good_pdf.replace(b"Cong van 123", b"Cong van 923", 1)
    report = _judge(vectors, tampered, content_type="application/octet-stream")
    assert report.reason is Reason.PDF_MODIFIED_AFTER_SIGNING, report.describe()


def test_a_pdf_header_after_some_leading_bytes_is_still_judged_as_a_pdf(vectors: Vectors) -> None:
    # PDF readers look for the header in the first 1024 bytes; so does the hub (this one, its
    # offsets shifted, cannot be read by pyHanko: refused as malformed, not waved through).
    pdf = b"\n" * 600 + sign_pdf(minimal_pdf("Cong van"), vectors.person, field_name="NguoiKy",
                                 reason="Ký")
    report = _judge(vectors, pdf, content_type="application/octet-stream")
    assert report.reason is Reason.PDF_MALFORMED, report.describe()


def test_a_file_that_is_not_a_pdf_declared_as_octet_stream_is_not_judged_as_one(
    vectors: Vectors,
) -> None:
    # Given a main document that is a PDF and an appendix that is plain bytes
    main = sample_attachment(vectors.good_pdf, content_id="main-document")
    other = dataclasses.replace(sample_attachment(b"PK\x03\x04 not a pdf", name="phu-luc.zip"),
                                content_type="application/octet-stream")
    packet = parse_packet(vectors.signed(attachments=(main, other)))
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    assert report.accepted, report.describe()
    assert _pdf_check(report)["pdfs"] == "1"


# -- L4: malformed input is judged as such; internal errors are not verdicts --------------------


def deeply_nested_pdf(depth: int = 3000) -> bytes:
    """A PDF whose signature field value nests ``depth`` arrays (pyHanko's reader recurses)."""
    nested = b"[" * depth + b"]" * depth
    return pdf_from_objects([
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [6 0 R] >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length 0 >>\nstream\n\nendstream",
        b"<< >>",
        b"<< /FT /Sig /T (NguoiKy) /V " + nested + b" >>",
    ])


def test_a_deeply_nested_pdf_is_malformed_not_an_internal_error(vectors: Vectors) -> None:
    report = _judge(vectors, deeply_nested_pdf())
    assert report.reason is Reason.PDF_MALFORMED, report.describe()
    assert report.indication is Indication.FAILED


def test_a_pdf_signed_with_a_malformed_certificate_is_refused_for_its_signer(
    vectors: Vectors,
) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    # Given a person signature made with a certificate whose policies extension is garbage
    bad = issue(vectors.pki, "pdf bad policies", issuing_ca(vectors.pki), uid=PERSON,
                extensions=((x509.UnrecognizedExtension(
                    ExtensionOID.CERTIFICATE_POLICIES, b"\x04\x00"), False),))
    pdf = seal(vectors, sign_pdf(minimal_pdf("Cong van"), bad.signer, field_name="NguoiKy",
                                 reason="Ký"))
    report = _judge(vectors, pdf)
    # Then it is a refusal about the signature, never an internal error
    assert report.indication is Indication.FAILED, report.describe()
    assert report.reason in {Reason.PDF_SIGNER_UNTRUSTED, Reason.PDF_SIGNATURE_INVALID}


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_an_internal_error_while_checking_a_pdf_is_not_a_permanent_refusal(
    vectors: Vectors,
) -> None:
    # Given a valid envelope validated, wrongly, from inside a running event loop (pyHanko's
    # synchronous API then raises RuntimeError: a bug of the caller, not of the document)
    packet = parse_packet(vectors.valid_raw)
    policy = dataclasses.replace(vectors.policy)  # nothing remembered from earlier tests

    async def inside_a_loop() -> ValidationReport:
        return validate_packet(packet, at=AT, policy=policy, directory=DIRECTORY,
                               crls=vectors.crls)

    report = asyncio.run(inside_a_loop())
    # Then the verdict is an internal error to retry, not PDF_SIGNATURE_INVALID for good
    assert report.reason is Reason.INTERNAL_ERROR, report.describe()
    assert report.indeterminate
