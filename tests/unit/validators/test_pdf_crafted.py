"""Crafted PDFs (review of the PDF check): what an attacker's PDF may cost, errors that are
verdicts, encrypted PDFs, document timestamps, weak algorithms, signature formats pyHanko drops.

- resource bounds: cross-reference streams declaring entries their data or the file cannot
  hold (pyHanko's lenient reader makes each one up: 241 bytes, gigabytes of memory), xref
  tables read twice, more than ``MAX_PDF_REVISIONS`` revisions (the difference analysis grows
  with their square) — PDF_MALFORMED, whatever ``require_pdf_signatures`` says; real PDFs
  (xref and object streams, every signature vector) still pass;
- what pyHanko and its certificate validator raise on crafted input (``assert`` statements,
  cryptography's UnsupportedAlgorithm) is a PDF verdict, never INTERNAL_ERROR;
- an encrypted PDF anyone can open (empty user password) is checked like any other;
- PAdES document timestamps after the seal (B-LTA) are accepted when intact and issued under
  the configured roots, and are no signature of anyone;
- a signature refused for its algorithm says so; a signature whose /SubFilter pyHanko does not
  support is refused, not silently left unchecked.

Every verdict is asked of both paths (the fast path and pyHanko's reference) and must agree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from asn1crypto import cms
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.edxml import parse_packet, sample_attachment
from hub.edxml.model import Envelope
from hub.reasons import Reason
from hub.trust.signing import _pdf_signer, minimal_pdf, sign_pdf
from hub.validators import TrustPolicy, validate_packet
from hub.validators.outcome import ValidationFailure
from hub.validators.pdf import MAX_PDF_REVISIONS, check_pdf_attachments
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW, GeneratedPki, issue, issuing_ca
from tests.unit.validators.signature_vectors import Vectors

Verdict = tuple[str, Any]


def _envelope(v: Vectors, *pdfs: bytes) -> Envelope:
    attachments = tuple(
        dataclasses.replace(sample_attachment(pdf, content_id=f"doc-{i}"),
                            content_type="application/pdf")
        for i, pdf in enumerate(pdfs))
    packet = parse_packet(v.signed(attachments=attachments))
    assert isinstance(packet, Envelope)
    return packet


def _judge(v: Vectors, *pdfs: bytes, require: bool | None = None,
           policy: TrustPolicy | None = None) -> Verdict:
    """The verdict on an envelope carrying ``pdfs`` (the first is the main document): the
    same from the fast path and from the reference, ("PASSED", evidence) or (reason, detail)."""
    envelope = _envelope(v, *pdfs)
    verdicts: list[Verdict] = []
    for reference in (False, True):
        try:
            evidence = check_pdf_attachments(
                envelope, policy=policy or v.policy, crls=v.crls, directory=DIRECTORY, at=AT,
                require_signatures=require, reference=reference)
            verdicts.append(("PASSED", evidence))
        except ValidationFailure as failure:
            verdicts.append((failure.reason.value, failure.detail))
    assert verdicts[0] == verdicts[1], verdicts
    return verdicts[0]


def _person_signed(v: Vectors, text: str = "Cong van 123") -> bytes:
    return sign_pdf(minimal_pdf(text), v.person, field_name="NguoiKy", reason="Ký ban hành")


def _sealed(v: Vectors, pdf: bytes, md: str = "sha256", **kwargs: Any) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    meta = signers.PdfSignatureMetadata(field_name="DauCoQuan", md_algorithm=md)
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta,
                           signer=_pdf_signer(v.org), **kwargs)
    data: bytes = out.getvalue()
    return data


# -- resource bounds ---------------------------------------------------------------------------


def _xref_stream_pdf(index: bytes) -> bytes:
    """A tiny PDF whose only cross-reference stream declares ``/Index [index]`` over no data."""
    objects = (b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
               b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n")
    start = len(b"%PDF-1.7\n") + len(objects)
    xref = (b"3 0 obj\n<< /Type /XRef /Size 4 /Root 1 0 R /W [1 4 2] /Index [" + index
            + b"] /Length 0 >>\nstream\n\nendstream\nendobj\n")
    return b"%PDF-1.7\n" + objects + xref + b"startxref\n%d\n%%%%EOF\n" % start


@pytest.mark.parametrize("require", [True, False], ids=["policy-on", "policy-off"])
def test_an_xref_stream_declaring_a_million_entries_in_241_bytes_is_malformed_whatever_the_policy(
    require: bool, vectors: Vectors,
) -> None:
    # Given a PDF of a few hundred bytes whose xref stream declares 1,000,000 entries (pyHanko's
    # lenient reader would make up each one: seconds of CPU and hundreds of MB per attachment)
    pdf = _xref_stream_pdf(b"0 1000000")
    # Then it is refused as malformed, and not skipped as "unreadable" with the policy off
    reason, detail = _judge(vectors, pdf, require=require)
    assert reason == Reason.PDF_MALFORMED.value
    assert "cross-reference streams declare 1000000 entries" in detail


def test_an_xref_stream_whose_data_holds_fewer_entries_than_it_declares_is_malformed(
    vectors: Vectors,
) -> None:
    assert _judge(vectors, _xref_stream_pdf(b"0 1000"), require=False) == (
        Reason.PDF_MALFORMED.value,
        "van-ban.pdf: a cross-reference stream declares 1000 entries; its data holds 0")


def test_xref_subsections_out_of_order_are_a_pdf_verdict_not_an_internal_error(
    vectors: Vectors,
) -> None:
    # pyHanko's parse asserts that subsections increase (an AssertionError)
    pdf = _xref_stream_pdf(b"10 5 0 5")
    assert _judge(vectors, pdf) == (Reason.PDF_MALFORMED.value, "van-ban.pdf: not a readable PDF")
    verdict = _judge(vectors, pdf, require=False)
    assert verdict[0] == "PASSED"
    assert verdict[1]["skipped:van-ban.pdf"] == "unreadable"


def test_xref_tables_that_share_their_lines_are_malformed(vectors: Vectors) -> None:
    # Given two xref tables where the later one's lines run over the whole earlier one (nested
    # so, K tables read the same bytes K times)
    pdf = _nested_xref_tables(lines=1000)
    # Then the file is refused before pyHanko reads it, with the policy off as well
    assert _judge(vectors, pdf, require=False) == (
        Reason.PDF_MALFORMED.value, "van-ban.pdf: cross-reference tables overlap")


def _nested_xref_tables(lines: int) -> bytes:
    """minimal_pdf's objects, then table A whose entries run over table B (B's header is one
    of A's 20-byte lines, ignored by the lenient reader); the trailer's /Prev names B."""
    base = minimal_pdf("x")
    body = base[:base.index(b"xref\n")]
    offsets = [int(m.group(1)) for m in re.finditer(rb"(\d{10}) 00000 n", base)]
    own = b"0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    a = len(body)
    header_a = b"xref\n0 %d\n" % (len(offsets) + 2 + lines)
    b = a + len(header_a) + len(own)
    header_b = b"xref\n0 %d" % lines
    header_b += b" " * (19 - len(header_b)) + b"\n"
    table_b = header_b + b"0000000000 65535 f \n" * lines
    trailer = (b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n"
               % (len(offsets) + 2 + lines, b, a))
    return body + header_a + own + table_b + trailer


def _with_updates(pdf: bytes, count: int) -> bytes:
    """``count`` harmless incremental updates (each rewrites the document information)."""
    out = bytearray(pdf)
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    size = max(int(n) for n in re.findall(rb"/Size (\d+)", pdf))
    root = re.findall(rb"/Root (\d+ \d+ R)", pdf)[-1]
    for i in range(count):
        at = len(out)
        out += b"%d 0 obj\n<< /Producer (update %d) >>\nendobj\n" % (size, i)
        xref = len(out)
        out += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (size, at)
        out += (b"trailer\n<< /Size %d /Root %s /Info %d 0 R /Prev %d >>\nstartxref\n%d\n"
                b"%%%%EOF\n" % (size + 1, root, size, prev, xref))
        prev = xref
    return bytes(out)


def test_a_pdf_with_more_revisions_than_the_bound_is_malformed_before_difference_analysis(
    vectors: Vectors,
) -> None:
    # Given the person's signature, then enough harmless updates to pass the bound (1,600 took
    # 9 s of pyHanko's difference analysis)
    pdf = _with_updates(_person_signed(vectors), MAX_PDF_REVISIONS)
    # Then it is refused, with the policy off as well
    assert _judge(vectors, pdf, require=False) == (
        Reason.PDF_MALFORMED.value,
        f"van-ban.pdf: more than {MAX_PDF_REVISIONS} revisions (incremental updates)")


def test_a_pdf_with_a_few_dozen_revisions_is_still_checked(vectors: Vectors) -> None:
    pdf = _with_updates(_person_signed(vectors), MAX_PDF_REVISIONS - 2)
    verdict = _judge(vectors, pdf, require=False)
    assert verdict[0] == "PASSED", verdict
    assert verdict[1]["main_signatures"] == "1"


def _object_streams_pdf() -> bytes:
    """minimal_pdf rewritten by pyHanko with a cross-reference stream and an object stream."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(minimal_pdf("Cong van 7"))),
                                  writer_kwargs={"stream_xrefs": True})
    packed = writer.prepare_object_stream()  # type: ignore[no-untyped-call]
    for i in range(200):
        entry = {generic.NameObject("/N"): generic.NumberObject(i)}  # type: ignore[no-untyped-call]
        writer.add_object(generic.DictionaryObject(entry),  # type: ignore[no-untyped-call]
                          obj_stream=packed)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def test_a_pdf_with_xref_and_object_streams_signed_and_sealed_still_passes(
    vectors: Vectors,
) -> None:
    pdf = _object_streams_pdf()
    assert b"/XRef" in pdf
    assert b"/ObjStm" in pdf
    verdict = _judge(vectors, _sealed(vectors, sign_pdf(pdf, vectors.person, field_name="NguoiKy",
                                                        reason="Ký")))
    assert verdict[0] == "PASSED", verdict
    assert verdict[1]["main_signatures"] == "2"


# -- crafted CMS: errors that are verdicts ------------------------------------------------------


def _signature_hole(pdf: bytes, index: int = -1) -> tuple[int, int, cms.ContentInfo]:
    """Where the ``/Contents`` hex string of a signature is (``<`` to after ``>``), and its CMS."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf))
    signature = sorted(reader.embedded_signatures, key=lambda s: s.signed_revision)[index]
    _, first, second, _ = (int(x) for x in signature.byte_range)
    return first, second, cms.ContentInfo.load(signature.pkcs7_content)


def _with_cms(pdf: bytes, edit: Callable[[Any, Any], None], index: int = -1) -> bytes:
    """The PDF with its signature's CMS edited in place (``/Contents`` is not signed)."""
    start, end, content_info = _signature_hole(pdf, index)
    content_info = cms.ContentInfo.load(content_info.dump())
    signed_data = content_info["content"]
    edit(signed_data["signer_infos"][0], signed_data)
    hexed: bytes = cms.ContentInfo.load(content_info.dump()).dump().hex().encode()
    room = end - start - 2
    assert len(hexed) <= room
    return pdf[:start] + b"<" + hexed + b"0" * (room - len(hexed)) + b">" + pdf[end:]


def _without_algorithm_protection(signer_info: Any) -> None:
    signer_info["signed_attrs"] = cms.CMSAttributes([
        a for a in signer_info["signed_attrs"] if a["type"].native != "cms_algorithm_protection"])


@pytest.mark.parametrize("algorithm", ["sha256_ecdsa", "ed25519"])
def test_a_signature_algorithm_that_does_not_fit_the_key_is_an_invalid_signature(
    algorithm: str, vectors: Vectors,
) -> None:
    # Given the person's SignerInfo claiming ECDSA or Ed25519 over an RSA key (the optional
    # CMSAlgorithmProtection attribute removed): the certificate validator's assert fails
    def claim(signer_info: Any, _: Any) -> None:
        _without_algorithm_protection(signer_info)
        signer_info["signature_algorithm"] = {"algorithm": algorithm}

    pdf = _with_cms(_person_signed(vectors), claim)
    assert _judge(vectors, pdf) == (Reason.PDF_SIGNATURE_INVALID.value,
                                    "van-ban.pdf field NguoiKy: AssertionError")
    # And the whole check gives that reason, never INTERNAL_ERROR (retried, then parked)
    report = validate_packet(_envelope(vectors, pdf), at=AT, policy=vectors.policy,
                             directory=DIRECTORY, crls=vectors.crls)
    assert report.reason is Reason.PDF_SIGNATURE_INVALID


def test_a_signer_key_of_an_unknown_algorithm_is_an_invalid_signature(vectors: Vectors) -> None:
    # Given the person's certificate in the CMS with its key's algorithm OID replaced by an
    # unassigned one (cryptography raises UnsupportedAlgorithm loading it)
    rsa_oid = bytes.fromhex("06092a864886f70d0101010500")

    def unknown_key(signer_info: Any, signed_data: Any) -> None:
        signer_info["signed_attrs"] = cms.CMSAttributes([
            a for a in signer_info["signed_attrs"]
            if a["type"].native not in ("cms_algorithm_protection", "signing_certificate_v2")])
        signer_info["signature_algorithm"] = {"algorithm": "sha256_ecdsa"}
        certs = []
        for choice in signed_data["certificates"]:
            der = choice.chosen.dump()
            if asn1_x509.Certificate.load(der).serial_number == vectors.person.cert.serial_number:
                der = der.replace(rsa_oid, bytes.fromhex("06092a864886f70d01017f0500"))
            certs.append(cms.CertificateChoices({"certificate": asn1_x509.Certificate.load(der)}))
        signed_data["certificates"] = cms.CertificateSet(certs)

    pdf = _with_cms(_person_signed(vectors), unknown_key)
    assert _judge(vectors, pdf) == (Reason.PDF_SIGNATURE_INVALID.value,
                                    "van-ban.pdf field NguoiKy: UnsupportedAlgorithm")


def _tsa(pki: GeneratedPki, *, trusted: bool = True) -> Any:
    """pyHanko's test timestamp authority: a TSA certificate (timeStamping) under the test
    PKI's issuing CA, or self-signed (not under the configured roots)."""
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    if trusted:
        issued = issue(pki, "TSA", issuing_ca(pki),
                       extensions=((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                                    True),))
        key, cert, chain = issued.key, issued.cert, issued.chain
    else:
        key = pki.keys("tsa:self-signed", 2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rogue TSA (TEST)")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(PKI_NOW - dt.timedelta(days=30))
                .not_valid_after(PKI_NOW + dt.timedelta(days=365))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)
                .sign(key, hashes.SHA256()))
        chain = ()

    def asn1(c: x509.Certificate) -> Any:
        return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    private = asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    embedded = SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
        [asn1(c) for c in chain])
    return DummyTimeStamper(asn1(cert), private, certs_to_embed=embedded, fixed_dt=AT)


def test_a_garbage_unsigned_timestamp_token_on_a_genuine_seal_is_an_invalid_signature(
    vectors: Vectors,
) -> None:
    # Given a genuine seal with room in its /Contents, then a signature-time-stamp token
    # whose SignerInfo claims ECDSA over the TSA's RSA key, added to its unsigned attributes
    # (anyone relaying the PDF can: they are not signed)
    good = _sealed(vectors, _person_signed(vectors), bytes_reserved=32768)
    token = asyncio.run(_tsa(vectors.pki).async_timestamp(hashlib.sha256(b"x").digest(),
                                                          "sha256"))
    token = cms.ContentInfo.load(token.dump())
    _without_algorithm_protection(token["content"]["signer_infos"][0])
    token["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": "sha256_ecdsa"}

    def add_token(signer_info: Any, _: Any) -> None:
        signer_info["unsigned_attrs"] = cms.CMSAttributes([cms.CMSAttribute(
            {"type": "signature_time_stamp_token", "values": [token]})])

    assert _judge(vectors, _with_cms(good, add_token)) == (
        Reason.PDF_SIGNATURE_INVALID.value, "van-ban.pdf field DauCoQuan: AssertionError")


# -- encrypted PDFs ------------------------------------------------------------------------------


def _encrypted(v: Vectors, *, user_password: bytes = b"") -> bytes:
    """The person's signature and the seal on a PDF encrypted with an owner password (and
    ``user_password``: empty, anyone may open it, as most "protected" official PDFs)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer
    from pyhanko.sign import signers

    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(minimal_pdf("Cong van mat"))))
    writer.encrypt(b"owner-secret", user_password)  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    pdf = out.getvalue()
    for signer, field in ((v.person, "NguoiKy"), (v.org, "DauCoQuan")):
        incremental = IncrementalPdfFileWriter(io.BytesIO(pdf))
        incremental.encrypt(user_password)  # type: ignore[no-untyped-call]
        meta = signers.PdfSignatureMetadata(field_name=field, md_algorithm="sha256")
        pdf = signers.sign_pdf(incremental, meta, signer=_pdf_signer(signer)).getvalue()
    return pdf


def test_an_encrypted_pdf_anyone_can_open_is_checked_like_any_other(vectors: Vectors) -> None:
    pdf = _encrypted(vectors)
    verdict = _judge(vectors, pdf)
    assert verdict[0] == "PASSED", verdict
    assert verdict[1]["main_signatures"] == "2"
    # Its signed bytes changed: refused, with the policy off too (not skipped as unreadable;
    # its PDF MAC fails as well)
    start = pdf.index(b"stream\n") + 7
    tampered = pdf[:start + 5] + bytes([pdf[start + 5] ^ 1]) + pdf[start + 6:]
    assert _judge(vectors, tampered, require=False) == (
        Reason.PDF_MODIFIED_AFTER_SIGNING.value, "van-ban.pdf field NguoiKy: signed bytes changed")


def test_a_pdf_encrypted_with_a_user_password_stays_unreadable(vectors: Vectors) -> None:
    pdf = _encrypted(vectors, user_password=b"secret")
    assert _judge(vectors, pdf) == (Reason.PDF_MALFORMED.value, "van-ban.pdf: not a readable PDF")


# -- document timestamps (PAdES B-LTA) --------------------------------------------------------------


def _timestamped(pdf: bytes, timestamper: Any) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper

    out = PdfTimeStamper(timestamper).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), "sha256")
    data: bytes = out.getvalue()
    return data


def test_a_document_timestamp_after_the_seal_is_accepted_and_signs_for_no_one(
    vectors: Vectors,
) -> None:
    # Given the person's signature, the seal, then a document timestamp by a TSA under the
    # configured roots (what long-term archiving adds: SECURITY.md M2, PdfChange.REVOCATION_DATA)
    pdf = _timestamped(vectors.good_pdf, _tsa(vectors.pki))
    verdict = _judge(vectors, pdf)
    # Then it is accepted; the signatures are still the person's and the seal
    assert verdict[0] == "PASSED", verdict
    assert verdict[1]["main_signatures"] == "2"
    assert verdict[1]["main_timestamps"] == "1"
    assert verdict[1]["main_organization"] == vectors.org.fingerprint


def test_a_document_timestamp_by_an_authority_outside_the_configured_roots_is_refused(
    vectors: Vectors,
) -> None:
    pdf = _timestamped(vectors.good_pdf, _tsa(vectors.pki, trusted=False))
    reason, detail = _judge(vectors, pdf)
    assert reason == Reason.PDF_SIGNER_UNTRUSTED.value
    assert "timestamp authority not trusted" in detail


def test_a_document_timestamp_over_other_bytes_is_refused(vectors: Vectors) -> None:
    # Given a document timestamp whose token is replaced by one over other bytes
    timestamper = _tsa(vectors.pki)
    pdf = _timestamped(vectors.good_pdf, timestamper)
    other = asyncio.run(timestamper.async_timestamp(b"\0" * 32, "sha256"))
    start, end, _ = _signature_hole(pdf)
    hexed = other.dump().hex().encode()
    forged = pdf[:start] + b"<" + hexed.ljust(end - start - 2, b"0") + b">" + pdf[end:]
    reason, detail = _judge(vectors, forged)
    assert (reason, detail.split(": ", 1)[1]) == (Reason.PDF_MODIFIED_AFTER_SIGNING.value,
                                                  "timestamped bytes changed")


def test_the_page_changed_after_a_document_timestamp_is_still_refused(vectors: Vectors) -> None:
    # Given new text drawn on the page in an update after the document timestamp
    changed = _text_added(_timestamped(vectors.good_pdf, _tsa(vectors.pki)))
    # Then it is refused (the first signature checked, the person's, says so)
    reason, detail = _judge(vectors, changed)
    assert reason == Reason.PDF_MODIFIED_AFTER_SIGNING.value
    assert "changed after signing" in detail


def _text_added(pdf: bytes) -> bytes:
    """An incremental update that draws new text on the signed page."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    added = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 700 Td (Da huy) Tj ET"))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), added])
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


# -- weak algorithms, unsupported signature formats ------------------------------------------


@pytest.mark.parametrize("md", ["sha1", "md5"])
def test_a_seal_made_with_a_weak_digest_says_the_algorithm_is_refused(
    md: str, vectors: Vectors,
) -> None:
    # Given a seal by the organization's trusted certificate over a SHA-1 or MD5 digest
    reason, detail = _judge(vectors, _sealed(vectors, _person_signed(vectors), md=md))
    # Then the reason stays PDF_SIGNER_UNTRUSTED (the signature is not one a trusted
    # specialized certificate may make), and the detail says it is the algorithm
    assert reason == Reason.PDF_SIGNER_UNTRUSTED.value
    assert detail.startswith("van-ban.pdf field DauCoQuan: algorithm refused: ")
    assert f"{md}_rsa is not allowed" in detail


def _legacy_sub_filter(pdf: bytes) -> bytes:
    """The PDF with its first signature's /SubFilter renamed ``adbe.x509.rsa_sha1``."""
    sub_filter = next(s for s in (b"/ETSI.CAdES.detached", b"/adbe.pkcs7.detached") if s in pdf)
    return pdf.replace(sub_filter, b"/adbe.x509.rsa_sha1".ljust(len(sub_filter)), 1)


def test_a_signature_in_a_format_pyhanko_drops_is_refused_not_ignored(vectors: Vectors) -> None:
    # Given an annex signed by the person, its /SubFilter renamed to a legacy one pyHanko does
    # not validate, then its text changed
    annex = _legacy_sub_filter(_person_signed(vectors, "Phu luc 1"))
    at = annex.index(b"Phu luc 1")
    tampered = annex[:at] + b"Q" + annex[at + 1:]
    # Then the envelope is refused (a genuine signature so tampered is, too)
    assert _judge(vectors, vectors.good_pdf, tampered) == (
        Reason.PDF_SIGNATURE_INVALID.value,
        "van-ban.pdf: unsupported signature format, field NguoiKy (/adbe.x509.rsa_sha1)")

