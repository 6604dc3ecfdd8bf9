"""Which attachments the PDF check judges: the cheaper detection is the documented one
(declared ``application/pdf``, or ``%PDF-`` in the first 1024 bytes), and an envelope without
any PDF gets the evidence the full check gives it."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.edxml import parse_packet
from hub.edxml.model import Envelope
from hub.reasons import Reason
from hub.validators.outcome import ValidationFailure
from hub.validators.pdf import (
    PDF_HEADER_WINDOW,
    PDF_MAGIC,
    PDF_TYPES,
    _is_pdf,
    _main_document,
    _PdfCheck,
    check_pdf_attachments,
)
from tests.pki_fixtures import AT
from tests.unit.validators.signature_vectors import DIRECTORY, Vectors

_TYPES = st.sampled_from(("application/pdf", "Application/PDF ; x=1", " application/pdf",
                          "text/plain", "application/pdf;", ";application/pdf", "", ";"))


@settings(max_examples=300, deadline=None)
@given(_TYPES | st.text(max_size=20), st.none() | st.binary(max_size=40),
       st.integers(min_value=0, max_value=PDF_HEADER_WINDOW + 8))
def test_pdf_detection_is_the_declared_type_or_the_header_in_the_first_kilobyte(
    content_type: str, tail: bytes | None, offset: int,
) -> None:
    candidates: list[bytes | None] = [None]
    if tail is not None:
        data = b"x" * offset + tail
        candidates = [data, data[:offset] + PDF_MAGIC + tail[:3]]
    for candidate in candidates:
        expected = content_type.split(";")[0].strip().lower() in PDF_TYPES or (
            candidate is not None and PDF_MAGIC in candidate[:PDF_HEADER_WINDOW])
        assert _is_pdf(content_type, candidate) is expected


def _without_pdf(vectors: Vectors) -> Envelope:
    """The valid vector envelope with its attachments and manifest turned to plain text."""
    envelope = parse_packet(vectors.valid_raw)
    assert isinstance(envelope, Envelope)
    assert envelope.attachments
    return dataclasses.replace(
        envelope,
        attachments=tuple(dataclasses.replace(a, content_type="text/plain", data=b"van ban")
                          for a in envelope.attachments),
        manifest=tuple(dataclasses.replace(r, content_type="text/plain")
                       for r in envelope.manifest))


def test_an_envelope_without_pdf_gets_the_evidence_of_the_full_check(vectors: Vectors) -> None:
    envelope = _without_pdf(vectors)
    for require in (None, True, False):
        run = _PdfCheck(envelope, policy=vectors.policy, crls=vectors.crls, directory=DIRECTORY,
                        at=AT, ocsp=None, wanted=[], require_signatures=require,
                        reference=False)
        assert not run.pdfs
        assert run.main is None
        assert check_pdf_attachments(
            envelope, policy=vectors.policy, crls=vectors.crls, directory=DIRECTORY, at=AT,
            require_signatures=require) == run.verdict() == {"pdfs": "0"}


def test_a_pdf_typed_manifest_entry_still_takes_the_full_check(vectors: Vectors) -> None:
    envelope = _without_pdf(vectors)
    assert envelope.manifest
    # Given a manifest that declares the (text) attachment as a PDF: it is the main document
    first = envelope.attachments[0]
    manifest = tuple(dataclasses.replace(r, content_type="application/pdf")
                     if r.content_id == first.content_id else r for r in envelope.manifest)
    odd = dataclasses.replace(envelope, manifest=manifest)
    assert _main_document(odd, ()) is first
    # Then the full check runs: required signatures are missing on it, as before the shortcut
    run = _PdfCheck(odd, policy=vectors.policy, crls=vectors.crls, directory=DIRECTORY, at=AT,
                    ocsp=None, wanted=[], require_signatures=True, reference=False)
    assert run.main is first
    with pytest.raises(ValidationFailure) as refused:
        check_pdf_attachments(odd, policy=vectors.policy, crls=vectors.crls,
                              directory=DIRECTORY, at=AT, require_signatures=True)
    assert refused.value.reason is Reason.PDF_PERSON_SIGNATURE_MISSING
