"""The fast PDF signature check gives exactly the reference's verdict (every fast path
is proven equal to the slow one).

The reference (:func:`hub.validators.pdf.check_signature_reference`) is pyHanko's full
``validate_pdf_signature`` with a fresh ``ValidationContext``, then the hub's trust rules; the
fast path checks integrity with pyHanko's lower-level API and leaves trust to the hub, with
pyHanko's path validation run once per path. A verdict is "passed" with the evidence, or
"failed" with the indication and reason code; the OCSP questions left open are compared too.
The corpus: every vector of the signature manifest, and the PDF shapes below (valid, tampered,
changed after signing, untrusted, expired, revoked, wrong key usage, weak algorithms, a CA path
length exceeded, unreadable, broken CMS, revocation data missing, the change policy's shapes —
clerk's form filling before the seal, a field changed or a whole-page signature after it —, a
PDF declared as another type, deep nesting, a malformed signer certificate...), and the shapes
of what the fast path does its own way (issue 23): the signer named in the CMS by an issuer
equal only once prepared (RFC 4518), by one that cannot be prepared, by another issuer or
serial, by its key identifier, a forged certificate with the signer's issuer and serial beside
it; ``/ByteRange`` rewritten (shorter, past the end, six numbers, negative, huge, real); other
digest algorithms. Both paths read PDFs with the faster hex-string reader, installed as the hub
installs it at start-up, itself proven equal to pyHanko's on random input at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.edxml import parse_packet, sample_attachment
from hub.edxml.model import Envelope, StatusPacket
from hub.reasons import Reason
from hub.trust.keystore import OrgSigner
from hub.trust.signing import minimal_pdf, sign_pdf
from hub.validators import (
    CrlEntry,
    CrlSnapshot,
    OcspSnapshot,
    PdfChange,
    PdfChangePolicy,
    TrustPolicy,
)
from hub.validators import pdf as pdf_module
from hub.validators.ocsp import OcspQuery
from hub.validators.outcome import Indication, ValidationFailure
from hub.validators.pdf import (
    check_pdf_attachments,
    hex_reader_installed,
    install_hex_reader,
    read_hex_string,
)
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW, GeneratedPki, fill_form
from tests.unit.validators.names import renamed
from tests.unit.validators.signature_vectors import (
    VectorCase,
    Vectors,
    build,
    load_manifest,
)
from tests.unit.validators.test_pdf_changes import (
    clerk_issued,
    deeply_nested_pdf,
    field_changed_after_seal,
    person_signed,
    whole_page_signature_after_seal,
)

Verdict = tuple[object, ...]
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True, scope="module")
def _hex_reader() -> None:
    """pyHanko reads hex strings as the hub's start-up has it read them (both paths)."""
    assert install_hex_reader()


@dataclass(frozen=True)
class Inputs:
    """One envelope and what to judge it with."""

    envelope: Envelope
    policy: TrustPolicy
    crls: CrlSnapshot
    at: dt.datetime = AT
    ocsp: OcspSnapshot | None = None
    require: bool | None = None


def _verdict(inputs: Inputs, *, reference: bool, at: dt.datetime | None = None) -> Verdict:
    wanted: list[OcspQuery] = []
    try:
        evidence = check_pdf_attachments(
            inputs.envelope, policy=inputs.policy, crls=inputs.crls, directory=DIRECTORY,
            at=at or inputs.at, ocsp=inputs.ocsp, wanted=wanted,
            require_signatures=inputs.require, reference=reference)
    except ValidationFailure as failure:
        return ("failed", failure.indication.value, failure.reason.value, tuple(wanted))
    return ("passed", tuple(sorted(evidence.items())), tuple(wanted))


def _same(inputs: Inputs) -> Verdict:
    """The reference's verdict, after checking the fast path gives it with a cold policy cache,
    a warm one, and a warm one at another time (the cached pyHanko path check and the
    remembered algorithm verdicts must not hide a time-dependent failure)."""
    fresh = dataclasses.replace(inputs, policy=dataclasses.replace(inputs.policy))
    expected = _verdict(fresh, reference=True)
    pdf_module._ALGORITHM_VERDICTS.clear()  # cold: pyHanko's algorithm rule evaluated
    assert _verdict(fresh, reference=False) == expected, "cold cache"
    assert _verdict(fresh, reference=False) == expected, "warm cache"
    for later in (fresh.at + 2 * DAY, fresh.at + 400 * DAY):  # still valid; all expired
        assert _verdict(fresh, reference=False, at=later) == _verdict(
            fresh, reference=True, at=later), later
    return expected


def _failed(reason: Reason, indication: Indication = Indication.FAILED) -> tuple[str, str, str]:
    return ("failed", indication.value, reason.value)


# -- the manifest ------------------------------------------------------------------------------


CASES = load_manifest()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_signature_vector_gets_the_same_pdf_verdict_from_both_paths(
    case: VectorCase, vectors: Vectors,
) -> None:
    built = build(case.recipe, vectors)
    if not isinstance(built.packet, Envelope):
        # A status packet has no attachments: neither path has anything to judge.
        assert isinstance(built.packet, StatusPacket)
        return
    for require in (None, True, False):
        _same(Inputs(built.packet, built.policy, built.crls, built.at, built.ocsp, require))


# -- certificates and PDFs made for these cases -----------------------------------------------


@dataclass
class Issued:
    """A CA made for a case, to issue from and to publish a CRL for."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    def crl(self) -> x509.CertificateRevocationList:
        return (
            x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
            .last_update(PKI_NOW - DAY).next_update(PKI_NOW + 7 * DAY)
            .sign(self.key, hashes.SHA256()))


def _issue(
    pki: GeneratedPki,
    label: str,
    issuer: Issued,
    *,
    key_usage: dict[str, bool] | None = None,
    ca: bool = False,
    path_length: int | None = None,
    bits: int = 2048,
    critical: x509.ExtensionType | None = None,
    policies: bool = True,
    extra: x509.ExtensionType | None = None,
) -> Issued:
    usage = {name: False for name in (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")}
    usage.update(key_usage or (
        {"key_cert_sign": True, "crl_sign": True} if ca
        else {"digital_signature": True, "content_commitment": True}))
    key = pki.keys(f"fast-path:{label}", bits)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string(f"CN={label} (TEST),O=Thu nghiem,C=VN"))
        .issuer_name(issuer.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW - 30 * DAY).not_valid_after(PKI_NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
    )
    if policies:
        builder = builder.add_extension(x509.CertificatePolicies([x509.PolicyInformation(
            x509.ObjectIdentifier(pki.paths.policy_oid), None)]), critical=False)
    if extra is not None:
        builder = builder.add_extension(extra, critical=False)
    if critical is not None:
        builder = builder.add_extension(critical, critical=True)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return Issued(cert, key, (issuer.cert, *issuer.chain))


def _issuing_ca(pki: GeneratedPki) -> Issued:
    return Issued(pki.issuing_ca, pki.keys("issuing-ca", 2048))


def _signer(issued: Issued) -> OrgSigner:
    return OrgSigner("fast-path", issued.key, issued.cert, issued.chain)


def _sign_sha1(pdf: bytes, signer: OrgSigner, field_name: str) -> bytes:
    """A signature whose CMS digest is SHA-1 (pyHanko's algorithm policy refuses it)."""
    return _sign_with("sha1", pdf, signer, field_name)


def _sign_with(md: str, pdf: bytes, signer: OrgSigner, field_name: str) -> bytes:
    """A signature whose CMS digest (and /ByteRange digest) is ``md``."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    from hub.trust.signing import _pdf_signer

    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm=md)
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta,
                           signer=_pdf_signer(signer))
    data: bytes = out.getvalue()
    return data


def _add_content_after_signing(pdf: bytes) -> bytes:
    """An incremental update that draws new text on the signed page (a later revision)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    stream = generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 700 Td (Da huy) Tj ET")
    added = writer.add_object(stream)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), added])
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def _contents_spans(pdf: bytes) -> list[tuple[int, int]]:
    """Where the hex digits of each signature's /Contents are."""
    return [(m.start(1), m.end(1)) for m in re.finditer(rb"/Contents\s*<([0-9a-fA-F]+)>", pdf)]


def _der_length(pdf: bytes, span: tuple[int, int]) -> int:
    """Hex digits used by the CMS DER inside a /Contents (the rest is zero padding)."""
    head = bytes.fromhex(pdf[span[0]:span[0] + 8].decode())
    assert head[:2] == b"\x30\x82"
    return 2 * (4 + int.from_bytes(head[2:4], "big"))


def _flip_hex(pdf: bytes, at: int) -> bytes:
    out = bytearray(pdf)
    out[at] = ord("0") if out[at] != ord("0") else ord("1")
    return bytes(out)


def _with_cms(pdf: bytes, index: int, edit: Callable[[Any], None]) -> bytes:
    """The PDF with the CMS of its ``index``-th signature edited in place (``edit`` changes
    the parsed SignedData; the /Contents keeps its length). /Contents is outside the signed
    bytes: what is edited outside the signed attributes leaves the signature intact."""
    from asn1crypto import cms

    start, end = _contents_spans(pdf)[index]
    info = cms.ContentInfo.load(bytes.fromhex(pdf[start:start + _der_length(
        pdf, (start, end))].decode()))
    edit(info["content"])
    digits = bytes(info.dump()).hex().encode()  # only what was edited is encoded again
    assert len(digits) <= end - start, "the edited CMS no longer fits its /Contents"
    return pdf[:start] + digits.ljust(end - start, b"0") + pdf[end:]


def _signer_cert(signed_data: Any) -> Any:
    """The signer's certificate (found by its serial: the edits keep it unchanged)."""
    serial = signed_data["signer_infos"][0]["sid"].chosen["serial_number"].native
    return next(c.chosen for c in signed_data["certificates"] if c.chosen.serial_number == serial)


def _named_by_issuer(change: Callable[[str], str], serial_delta: int = 0) -> Callable[[Any], None]:
    """Name the signer in the SignerInfo by its issuer changed by ``change``."""
    from asn1crypto import cms

    def edit(signed_data: Any) -> None:
        cert = _signer_cert(signed_data)
        signed_data["signer_infos"][0]["sid"] = cms.SignerIdentifier(
            name="issuer_and_serial_number", value=cms.IssuerAndSerialNumber({
                "issuer": renamed(cert.issuer, change),
                "serial_number": cert.serial_number + serial_delta}))
    return edit


def _named_by_key_identifier(signed_data: Any) -> None:
    from asn1crypto import cms

    cert = _signer_cert(signed_data)
    assert cert.key_identifier is not None
    signed_data["signer_infos"][0]["sid"] = cms.SignerIdentifier(
        name="subject_key_identifier", value=cert.key_identifier)


def _forged_twin(after: bool) -> Callable[[Any], None]:
    """Add a certificate with the signer's issuer and serial but another subject, after the
    signer's (pyHanko takes the last match: the signing-certificate attribute then does not
    name it) or before it."""
    from asn1crypto import cms, core
    from asn1crypto import x509 as asn1_x509

    def edit(signed_data: Any) -> None:
        cert = _signer_cert(signed_data)
        twin = asn1_x509.Certificate.load(cert.dump())
        twin["tbs_certificate"]["subject"] = renamed(cert.subject, lambda v: v + " (forged)")
        twin = asn1_x509.Certificate.load(twin.dump(force=True))
        choices = [asn1_x509.Certificate.load(c.chosen.dump()) for c in signed_data["certificates"]]
        choices = [*choices, twin] if after else [twin, *choices]
        # Encoded in this order (a SET OF built by asn1crypto would be sorted): pyHanko reads
        # the certificates in the order they are encoded.
        body = b"".join(cms.CertificateChoices(name="certificate", value=c).dump() for c in choices)
        certificates = cms.CertificateSet.load(b"\x31" + core.OctetString(body).dump()[1:])
        signed_data["certificates"] = certificates
        assert [c.chosen.dump() for c in signed_data["certificates"]] == [c.dump() for c in choices]
    return edit


def _with_byte_range(index: int, rewrite: Callable[[list[int]], str]) -> Callable[[Vectors], bytes]:
    """The good PDF with the ``index``-th signature's /ByteRange rewritten in place (same
    length: pyHanko pads it with spaces). It is inside the signed bytes of that signature and
    of every later one."""
    def make(v: Vectors) -> bytes:
        pdf = v.good_pdf
        found = list(re.finditer(rb"/ByteRange \[([0-9 ]+)\]( *)", pdf))[index]
        text = f"/ByteRange [{rewrite([int(n) for n in found.group(1).split()])}]".encode()
        assert len(text) <= found.end() - found.start()
        return pdf[:found.start()] + text.ljust(found.end() - found.start()) + pdf[found.end():]
    return make


# -- PDF shapes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A PDF case: how to make it, and what to judge it with (beyond the defaults)."""

    make: Callable[[Vectors], bytes]
    expected: tuple[str, ...] | None = None
    """The verdict's first three fields, when the case is there to show a check fires."""
    crls: Callable[[Vectors], CrlSnapshot] | None = None
    policy: Callable[[Vectors], TrustPolicy] | None = None
    require: bool | None = None
    declared: str = "application/pdf"
    """The content type the manifest declares (PDFs are found by their content too)."""
    extra: dict[str, object] = field(default_factory=dict)


def _with_crls(*issuers: Callable[[Vectors], Issued]) -> Callable[[Vectors], CrlSnapshot]:
    def crls(v: Vectors) -> CrlSnapshot:
        entries = [CrlEntry(c, fetched_at=PKI_NOW, source="test") for c in v.pki.crls]
        entries += [CrlEntry(i(v).crl(), fetched_at=PKI_NOW, source="test") for i in issuers]
        return CrlSnapshot.of(entries)
    return crls


def _cached(fn: Callable[[Vectors], Issued]) -> Callable[[Vectors], Issued]:
    memo: dict[int, Issued] = {}

    def get(v: Vectors) -> Issued:
        if id(v) not in memo:
            memo[id(v)] = fn(v)
        return memo[id(v)]
    return get


@_cached
def _signing_only_leaf(v: Vectors) -> Issued:
    """digitalSignature without nonRepudiation: the hub's rule accepts it, pyHanko's not."""
    return _issue(v.pki, "digital signature only", _issuing_ca(v.pki),
                  key_usage={"digital_signature": True})


@_cached
def _sub_ca(v: Vectors) -> Issued:
    """A CA under the issuing CA, whose pathLenConstraint is 0: pyHanko and the hub refuse the
    path."""
    return _issue(v.pki, "sub CA", _issuing_ca(v.pki), ca=True)


@_cached
def _under_sub_ca(v: Vectors) -> Issued:
    return _issue(v.pki, "leaf under sub CA", _sub_ca(v))


@_cached
def _short_key(v: Vectors) -> Issued:
    """A 1024-bit signing key: pyHanko's algorithm policy refuses the CMS signature."""
    return _issue(v.pki, "short key", _issuing_ca(v.pki), bits=1024)


@_cached
def _unknown_critical(v: Vectors) -> Issued:
    """A leaf with an unknown critical extension: pyHanko and the hub refuse it."""
    return _issue(v.pki, "unknown critical", _issuing_ca(v.pki), critical=x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.99999.9.9"), b"\x05\x00"))


@_cached
def _malformed_policies(v: Vectors) -> Issued:
    """A leaf whose certificatePolicies extension cannot be parsed (CERT_MALFORMED)."""
    return _issue(v.pki, "malformed policies", _issuing_ca(v.pki), policies=False,
                  critical=None, extra=x509.UnrecognizedExtension(
                      ExtensionOID.CERTIFICATE_POLICIES, b"\x04\x00"))


def _lax(v: Vectors) -> TrustPolicy:
    """Form filling and further signatures allowed after the seal (the pre-issue-16 rule)."""
    return dataclasses.replace(v.policy, pdf_changes=PdfChangePolicy(
        after_seal=PdfChange.FORM_FILLING, signatures_after_seal=True))


def _org_then(v: Vectors, pdf: bytes) -> bytes:
    return sign_pdf(pdf, v.org, field_name="DauCoQuan", reason="Đóng dấu")


def _signed_by(signer: Callable[[Vectors], OrgSigner]) -> Callable[[Vectors], bytes]:
    """The main document signed by ``signer`` in the person's place, then sealed."""
    def make(v: Vectors) -> bytes:
        pdf = sign_pdf(minimal_pdf("Cong van"), signer(v), field_name="NguoiKy", reason="Ký")
        return _org_then(v, pdf)
    return make


def _issued_by(issued: Callable[[Vectors], Issued]) -> Callable[[Vectors], bytes]:
    return _signed_by(lambda v: _signer(issued(v)))


def _special(kind: str) -> Callable[[Vectors], bytes]:
    return _signed_by(lambda v: v.pki.special(kind))


def _tampered_signature_value(v: Vectors) -> bytes:
    pdf = v.good_pdf
    span = _contents_spans(pdf)[-1]
    return _flip_hex(pdf, span[0] + _der_length(pdf, span) - 3)


def _tampered_der_header(v: Vectors) -> bytes:
    pdf = v.good_pdf
    return _flip_hex(pdf, _contents_spans(pdf)[-1][0] + 1)


def _tampered_inside_cms(v: Vectors) -> bytes:
    """A hex digit changed in the middle of the CMS (inside the certificates)."""
    pdf = v.good_pdf
    span = _contents_spans(pdf)[0]
    return _flip_hex(pdf, span[0] + _der_length(pdf, span) // 3)


def _zeroed_contents(v: Vectors) -> bytes:
    pdf = bytearray(v.good_pdf)
    start, end = _contents_spans(bytes(pdf))[-1]
    pdf[start:end] = b"0" * (end - start)
    return bytes(pdf)


def _truncated(v: Vectors) -> bytes:
    return v.good_pdf[: len(v.good_pdf) * 2 // 3]


def _sha1_person(v: Vectors) -> bytes:
    return _org_then(v, _sign_sha1(minimal_pdf("Cong van"), v.person, "NguoiKy"))


def _seal_edited(edit: Callable[[Any], None]) -> Callable[[Vectors], bytes]:
    """The good PDF with the seal's CMS edited (:func:`_with_cms`): the last signature, whose
    /Contents no signature covers."""
    return lambda v: _with_cms(v.good_pdf, -1, edit)


def _signed_with(person_md: str, org_md: str) -> Callable[[Vectors], bytes]:
    def make(v: Vectors) -> bytes:
        pdf = _sign_with(person_md, minimal_pdf("Cong van"), v.person, "NguoiKy")
        return _sign_with(org_md, pdf, v.org, "DauCoQuan")
    return make


def _third_signature(v: Vectors) -> bytes:
    """A further signature after the seal: refused by default (issue 16, M2)."""
    return sign_pdf(v.good_pdf, v.pki.org("000.00.02.H27"), field_name="CoQuanNhan",
                    reason="Đã nhận")


def _person_only_policy_off(v: Vectors) -> bytes:
    return sign_pdf(minimal_pdf(), v.person, field_name="Ky", reason="r")


SHAPES: dict[str, Shape] = {
    "valid": Shape(lambda v: v.good_pdf, ("passed",)),
    "signature_after_seal": Shape(_third_signature, _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "signature_after_seal_allowed": Shape(_third_signature, ("passed",), policy=_lax),
    "clerk_fills_number_before_seal": Shape(clerk_issued, ("passed",)),
    "clerk_fills_number_before_seal_refused_by_policy": Shape(
        clerk_issued, _failed(Reason.PDF_MODIFIED_AFTER_SIGNING), policy=lambda v: (
            dataclasses.replace(v.policy, pdf_changes=PdfChangePolicy(
                before_seal=PdfChange.REVOCATION_DATA)))),
    "field_changed_after_seal": Shape(
        field_changed_after_seal, _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "field_changed_after_seal_allowed": Shape(field_changed_after_seal, ("passed",), policy=_lax),
    "whole_page_signature_after_seal": Shape(
        whole_page_signature_after_seal, _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "whole_page_signature_after_seal_allowed": Shape(
        whole_page_signature_after_seal, ("passed",), policy=_lax),
    "filled_after_the_only_signature": Shape(
        lambda v: fill_form(person_signed(v), {"SoKyHieu": "1"}),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING), require=False),
    "declared_octet_stream": Shape(
        lambda v: v.good_pdf, ("passed",), declared="application/octet-stream"),
    "declared_octet_stream_tampered": Shape(
        lambda v: v.good_pdf.replace(b"Cong van 123", b"Cong van 923", 1),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING), declared="application/octet-stream"),
    "declared_octet_stream_person_only": Shape(
        _person_only_policy_off, _failed(Reason.PDF_ORGANIZATION_SIGNATURE_MISSING),
        declared="application/octet-stream"),
    "deeply_nested": Shape(lambda v: deeply_nested_pdf(), _failed(Reason.PDF_MALFORMED)),
    "malformed_signer_certificate": Shape(
        _issued_by(_malformed_policies), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "bytes_changed": Shape(
        lambda v: v.good_pdf.replace(b"Cong van 123", b"Cong van 124", 1),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "content_added_after_signing": Shape(
        lambda v: _add_content_after_signing(v.good_pdf),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "content_added_between_signatures": Shape(
        lambda v: _org_then(v, _add_content_after_signing(
            sign_pdf(minimal_pdf("Cong van"), v.person, field_name="NguoiKy", reason="Ký"))),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "signature_value_changed": Shape(
        _tampered_signature_value, _failed(Reason.PDF_SIGNATURE_INVALID)),
    "cms_header_broken": Shape(_tampered_der_header),
    "cms_certificates_broken": Shape(_tampered_inside_cms),
    "cms_zeroed": Shape(_zeroed_contents),
    "truncated": Shape(_truncated),
    "not_a_pdf": Shape(lambda v: b"%PDF-1.7\nnot a pdf\n%%EOF\n", _failed(Reason.PDF_MALFORMED)),
    "not_a_pdf_policy_off": Shape(lambda v: b"%PDF-1.7\nnot a pdf\n%%EOF\n", ("passed",),
                                  require=False),
    "untrusted_public_ca": Shape(
        _signed_by(lambda v: v.pki.business), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "untrusted_root": Shape(
        _signed_by(lambda v: v.pki.business), _failed(Reason.PDF_SIGNER_UNTRUSTED),
        policy=lambda v: dataclasses.replace(v.policy, public_roots=())),
    "self_signed": Shape(
        _signed_by(lambda v: v.pki.self_signed), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "expired": Shape(_special("expired"), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "not_yet_valid": Shape(_special("not_yet_valid"), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "revoked": Shape(_special("revoked"), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "wrong_key_usage": Shape(_special("wrong_key_usage"), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "no_policy": Shape(_special("no_policy"), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "rsa1024": Shape(_special("rsa1024"), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "digital_signature_only": Shape(
        _issued_by(_signing_only_leaf), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "digital_signature_only_without_crl": Shape(
        _issued_by(_signing_only_leaf),
        _failed(Reason.REVOCATION_UNAVAILABLE, Indication.INDETERMINATE),
        crls=lambda v: v.root_crl_only, require=False),
    "ca_path_length_exceeded": Shape(
        _issued_by(_under_sub_ca), _failed(Reason.PDF_SIGNER_UNTRUSTED),
        crls=_with_crls(_sub_ca)),
    "ca_path_length_exceeded_without_crl": Shape(
        # The hub's own path rules refuse it for good: no pointless wait for revocation data.
        _issued_by(_under_sub_ca), _failed(Reason.PDF_SIGNER_UNTRUSTED), require=False),
    "short_signing_key": Shape(_issued_by(_short_key), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "unknown_critical_extension": Shape(
        _issued_by(_unknown_critical), _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "sha1_digest": Shape(_sha1_person, _failed(Reason.PDF_SIGNER_UNTRUSTED)),
    "crl_missing": Shape(
        lambda v: v.good_pdf, _failed(Reason.REVOCATION_UNAVAILABLE, Indication.INDETERMINATE),
        crls=lambda v: CrlSnapshot()),
    "person_only": Shape(_person_only_policy_off, _failed(Reason.PDF_ORGANIZATION_SIGNATURE_MISSING)),
    "person_only_policy_off": Shape(_person_only_policy_off, ("passed",), require=False),
    # -- the signer certificate, found by the hub's own matching (issue 23) --
    "signer_named_by_issuer_equal_once_prepared": Shape(
        _seal_edited(_named_by_issuer(lambda v: f"  {v.upper()}  ".replace(" ", "   "))),
        ("passed",)),
    "signer_named_by_issuer_that_cannot_be_prepared": Shape(
        _seal_edited(_named_by_issuer(lambda v: v + "\ue000")),
        _failed(Reason.PDF_SIGNATURE_INVALID)),
    "signer_named_by_another_issuer": Shape(
        _seal_edited(_named_by_issuer(lambda v: v + " khac")),
        _failed(Reason.PDF_SIGNATURE_INVALID)),
    "signer_named_by_another_serial": Shape(
        _seal_edited(_named_by_issuer(lambda v: v, serial_delta=1)),
        _failed(Reason.PDF_SIGNATURE_INVALID)),
    "signer_named_by_key_identifier": Shape(_seal_edited(_named_by_key_identifier), ("passed",)),
    "forged_twin_after_the_signer": Shape(
        _seal_edited(_forged_twin(after=True)), _failed(Reason.PDF_SIGNATURE_INVALID)),
    "forged_twin_before_the_signer": Shape(_seal_edited(_forged_twin(after=False)), ("passed",)),
    # -- /ByteRange, hashed by the hub from memory unless pyHanko must judge it --
    "byte_range_shorter": Shape(
        _with_byte_range(1, lambda r: f"{r[0]} {r[1]} {r[2]} {r[3] - 1}"),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "byte_range_past_the_end": Shape(
        _with_byte_range(1, lambda r: f"{r[0]} {r[1]} {r[2]} {r[3] + 100}"),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    "byte_range_of_six_numbers": Shape(
        _with_byte_range(1, lambda r: f"0 10 10 {r[1] - 10} {r[2]} {r[3]}")),
    "byte_range_negative": Shape(
        _with_byte_range(1, lambda r: f"0 {r[1]} -{r[2]} {r[3]}")),
    "byte_range_huge": Shape(
        _with_byte_range(1, lambda r: f"0 {r[1]} {r[2]} 99999999999999999999999")),
    "byte_range_real": Shape(_with_byte_range(1, lambda r: f"0 {r[1]}.0 {r[2]} {r[3]}")),
    "byte_range_of_the_person_shorter": Shape(
        _with_byte_range(0, lambda r: f"{r[0]} {r[1]} {r[2]} {r[3] - 1}"),
        _failed(Reason.PDF_MODIFIED_AFTER_SIGNING)),
    # -- digest algorithms (the common prefix of the ranges is hashed once per algorithm) --
    "person_sha512_organization_sha256": Shape(_signed_with("sha512", "sha256"), ("passed",)),
    "both_sha384": Shape(_signed_with("sha384", "sha384"), ("passed",)),
}


def _shape_inputs(name: str, vectors: Vectors) -> Inputs:
    """An envelope whose main document is the shape's PDF, with the shape's trust inputs."""
    shape = SHAPES[name]
    attachment = dataclasses.replace(
        sample_attachment(shape.make(vectors), content_id="main-document"),
        content_type=shape.declared)
    envelope = parse_packet(vectors.envelope(attachments=(attachment,)))
    assert isinstance(envelope, Envelope)
    return Inputs(envelope, shape.policy(vectors) if shape.policy else vectors.policy,
                  shape.crls(vectors) if shape.crls else vectors.crls, require=shape.require)


@pytest.mark.parametrize("name", SHAPES)
def test_a_pdf_shape_gets_the_same_verdict_from_both_paths(name: str, vectors: Vectors) -> None:
    shape = SHAPES[name]
    # Given an envelope whose main document is the shape's PDF
    inputs = _shape_inputs(name, vectors)
    # When both paths judge it (the fast one with a cold and a warm cache, and later on)
    verdict = _same(inputs)
    # Then the verdict is the one the case is there for
    if shape.expected is not None:
        assert verdict[:len(shape.expected)] == shape.expected, verdict


@pytest.mark.parametrize(("name", "refused"), [("sha1_digest", "sha1"), ("valid", None)])
def test_the_algorithm_rule_is_remembered_by_the_algorithms_and_key_it_reads(
        name: str, refused: str | None, vectors: Vectors) -> None:
    inputs = _shape_inputs(name, vectors)
    pdf_module._ALGORITHM_VERDICTS.clear()
    first = _verdict(inputs, reference=False)
    memo = pdf_module._ALGORITHM_VERDICTS
    remembered = memo.values()
    # kept by a digest (64 hex characters), whatever the size of the key: with the message,
    # nothing more
    assert memo.size_bytes == sum(memo.entry_overhead + 64 + len(p or "")
                                  for (p,) in remembered)
    # One verdict per (signature algorithm, digest algorithm, key): the person's and the seal's
    # (the check stops at a refused signature)
    assert len(remembered) == (2 if refused is None else 1)
    problems = [p for (p,) in remembered if p is not None]
    if refused is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert refused in problems[0].lower(), problems
    # Taken from memory the second time, with the same verdict
    hits = memo.hits
    assert _verdict(inputs, reference=False) == first
    assert memo.values() == remembered
    assert memo.hits == hits + len(remembered)

def test_an_algorithm_verdict_remembered_for_one_pdf_never_decides_another(
        vectors: Vectors) -> None:
    # Given PDFs signed with other algorithms and keys, judged one after the other with what
    # the earlier ones left remembered (forwards, then backwards)
    names = ["valid", "rsa1024", "sha1_digest", "short_signing_key",
             "person_sha512_organization_sha256", "both_sha384"]
    inputs = {name: _shape_inputs(name, vectors) for name in names}
    expected = {name: _verdict(inputs[name], reference=True) for name in names}
    pdf_module._ALGORITHM_VERDICTS.clear()
    for name in [*names, *reversed(names)]:
        # Then each gets pyHanko's full reference verdict
        assert _verdict(inputs[name], reference=False) == expected[name], name
    assert len(pdf_module._ALGORITHM_VERDICTS) >= 4


def test_the_main_document_signers_are_named_in_the_evidence(vectors: Vectors) -> None:
    envelope = parse_packet(vectors.envelope())
    assert isinstance(envelope, Envelope)
    evidence = check_pdf_attachments(envelope, policy=vectors.policy, crls=vectors.crls,
                                     directory=DIRECTORY, at=AT)
    assert evidence["main_person"] == vectors.person.fingerprint
    assert evidence["main_organization"] == vectors.org.fingerprint
    assert evidence["main_signatures"] == "2"


def test_the_fast_path_neither_matches_names_nor_hashes_byte_ranges_through_pyhanko(
    vectors: Vectors, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyhanko.sign import general
    from pyhanko.sign.validation import pdf_embedded

    def not_on_the_fast_path(*args: object) -> None:
        raise AssertionError("pyHanko's own step ran")

    # Given pyHanko's name matching and byte-range hashing made to fail when used
    monkeypatch.setattr(general, "match_issuer_serial", not_on_the_fast_path)
    monkeypatch.setattr(pdf_embedded, "byte_range_digest", not_on_the_fast_path)
    envelope = parse_packet(vectors.envelope())
    assert isinstance(envelope, Envelope)
    # Then the fast path accepts the good PDF without them (issue 23: they are its cost) ...
    evidence = check_pdf_attachments(envelope, policy=vectors.policy, crls=vectors.crls,
                                     directory=DIRECTORY, at=AT)
    assert evidence["main_signatures"] == "2"
    # ... where the reference uses them
    with pytest.raises(AssertionError, match="pyHanko's own step ran"):
        check_pdf_attachments(envelope, policy=vectors.policy, crls=vectors.crls,
                              directory=DIRECTORY, at=AT, reference=True)


# -- the hex-string reader ------------------------------------------------------------------------


def _read_with(reader: Callable[[io.BytesIO], object], data: bytes) -> tuple[object, ...]:
    """What a reader returns (type, value, bytes) or raises, and where it leaves the stream."""
    stream = io.BytesIO(data)
    try:
        value = reader(stream)
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc), stream.tell())
    return (type(value).__name__, value, getattr(value, "original_bytes", None), stream.tell())


def _pyhanko_reader() -> Callable[[io.BytesIO], object]:
    reader = pdf_module.pyhanko_hex_reader()
    assert reader is not read_hex_string
    return reader


TOKENS = st.sampled_from([
    b"0", b"7", b"a", b"F", b"e9", b" ", b"\n", b"\r\n", b"\t", b"\x0c", b"\x00", b"%", b"% c>\n",
    b">", b"<", b"g", b"\xff", b"\xc3\xa9", b")", b"/", b"FEFF", b"feff00", b"fffe"])
HEX_TEXT = st.binary(max_size=5000).map(lambda b: b.hex().encode())
PLAIN = st.lists(st.one_of(HEX_TEXT, st.sampled_from([b" ", b"\n", b"\r\n", b"\t", b"\x00", b"A"])),
                 max_size=30).map(b"".join)
"""Only hex digits and whitespace: the fast reader's own case (the others go to pyHanko's)."""


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(PLAIN, st.lists(st.one_of(TOKENS, HEX_TEXT), max_size=30).map(b"".join)),
       tail=st.sampled_from([b"", b">", b" /Type /Sig>>", b"%>\n>"]))
def test_the_hex_string_reader_gives_pyhankos_result_position_and_errors(
    body: bytes, tail: bytes,
) -> None:
    data = b"<" + body + tail
    assert _read_with(read_hex_string, data) == _read_with(_pyhanko_reader(), data)


def test_a_signature_sized_hex_string_is_read_like_pyhanko_reads_it() -> None:
    # Given a /Contents-sized hex string across several read chunks, with line breaks
    digits = bytes(range(256)).hex().encode() * 40
    data = b"<" + b"\n".join(digits[i:i + 64] for i in range(0, len(digits), 64)) + b"> /M (x)"
    # Then the fast reader returns what pyHanko's does and stops after the ">"
    fast = _read_with(read_hex_string, data)
    assert fast == _read_with(_pyhanko_reader(), data)
    assert fast[3] == data.index(b">") + 1


def test_checking_a_pdf_leaves_pyhanko_as_it_is(
    vectors: Vectors, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyhanko.pdf_utils import generic

    # Given pyHanko with its own hex-string reader (nothing installed at start-up)
    monkeypatch.setattr(generic, "read_hex_string_from_stream", pdf_module.pyhanko_hex_reader())
    monkeypatch.setattr(pdf_module, "_pyhanko_read_hex", None)
    envelope = parse_packet(vectors.envelope())
    assert isinstance(envelope, Envelope)
    # When the PDF check runs, on either path
    for reference in (False, True):
        check_pdf_attachments(envelope, policy=vectors.policy, crls=vectors.crls,
                              directory=DIRECTORY, at=AT, reference=reference)
    # Then pyHanko is unchanged: the only change the hub makes is made at start-up
    assert not hex_reader_installed()


def test_the_hex_reader_is_installed_on_the_pinned_pyhanko_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.version import __version__

    original = pdf_module.pyhanko_hex_reader()
    monkeypatch.setattr(generic, "read_hex_string_from_stream", original)
    monkeypatch.setattr(pdf_module, "_pyhanko_read_hex", None)
    # A pyHanko release the reader was not proven against is left alone
    monkeypatch.setattr(pdf_module, "HEX_READER_PYHANKO", frozenset({"0.0.0"}))
    assert not install_hex_reader()
    assert generic.read_hex_string_from_stream is original
    # The pinned one gets it, once, and pyHanko's own stays reachable
    monkeypatch.setattr(pdf_module, "HEX_READER_PYHANKO", frozenset({__version__}))
    assert install_hex_reader()
    assert install_hex_reader()
    assert hex_reader_installed()
    assert pdf_module.pyhanko_hex_reader() is original


def test_the_hub_installs_the_hex_reader_at_start_up(
    vectors: Vectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyhanko.pdf_utils import generic

    from hub.app import build_hub
    from tests.integration.pipeline.harness import hub_settings

    monkeypatch.setattr(generic, "read_hex_string_from_stream", pdf_module.pyhanko_hex_reader())
    monkeypatch.setattr(pdf_module, "_pyhanko_read_hex", None)
    # When the hub starts (no broker needed to build it)
    hub = build_hub(hub_settings(vectors.pki.paths, tmp_path, "amqp://x:x@127.0.0.1:1/", "hex"))
    hub.close()
    # Then pyHanko reads hex strings with the hub's reader
    assert hex_reader_installed()
