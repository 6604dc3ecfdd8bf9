"""Signature test vectors, generated from the session's test PKI (keys are never committed).

``tests/vectors/signatures/manifest.toml`` lists each vector: an id, the recipe that builds it
(a function here), the expected indication and reason. :func:`build` turns a recipe name into a
:class:`Built` packet plus the validation inputs it needs (time, CRLs, policy).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import io
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    methods,
)

from hub.edxml import (
    EnvelopeRefused,
    Packet,
    SignaturePlacement,
    build_envelope,
    build_status,
    parse_packet,
    response_for,
    sample_attachment,
    sample_header,
    sample_trace,
)
from hub.edxml.model import Attachment, Organization
from hub.reasons import Reason
from hub.trust.keystore import OrgSigner
from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml
from hub.validators import CrlEntry, CrlSnapshot, Indication, OcspEntry, OcspSnapshot, TrustPolicy
from hub.validators.ocsp import CertId
from tests.pki_fixtures import AT, AXIS_PERSON, AXIS_SENDER, DIRECTORY, PKI_NOW, GeneratedPki
from tests.unit.validators.ocsp_responder import Issuer, OcspResponder

MANIFEST = Path(__file__).resolve().parents[2] / "vectors" / "signatures" / "manifest.toml"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
ED_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NSMAP = {"ds": DS_NS, "ed": ED_NS}
SENDER = "000.00.01.H27"
"""Văn phòng UBND tỉnh Hà Tĩnh in the sample directory."""
RECIPIENT = "000.00.02.H27"
"""Sở Nội vụ (Sở TT&TT, 000.00.14.H27, was merged away on 2025-03-01)."""
PERSON = "CCCD:042080000003"
"""The sender's person signer in the sample directory."""
FIRST_ORG = "000.00.00.H27"
"""The special certificates carry this organization's identity (the directory's first)."""


@dataclass(frozen=True)
class VectorCase:
    """One row of the manifest."""

    id: str
    recipe: str
    indication: Indication
    reason: Reason
    description: str


def load_manifest(path: Path = MANIFEST) -> tuple[VectorCase, ...]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return tuple(
        VectorCase(
            id=row["id"],
            recipe=row.get("recipe", row["id"]),
            indication=Indication(row["indication"]),
            reason=Reason(row["reason"]),
            description=row["description"],
        )
        for row in data["vector"]
    )


@dataclass(frozen=True)
class Built:
    """A packet and the inputs to validate it with."""

    packet: Packet
    at: dt.datetime
    crls: CrlSnapshot
    policy: TrustPolicy
    ocsp: OcspSnapshot | None = None
    directory: Any = DIRECTORY


@dataclass
class Vectors:
    """Builds vectors from one generated PKI (expensive parts — signed PDFs — built once)."""

    pki: GeneratedPki
    policy_changes: dict[str, object] = field(default_factory=dict)
    placement: SignaturePlacement = SignaturePlacement.SLOT
    """Where the envelopes the recipes start from carry their signature (both are accepted;
    every vector is run with both)."""

    @cached_property
    def policy(self) -> TrustPolicy:
        return TrustPolicy(
            roots=(self.pki.root,),
            intermediates=(self.pki.issuing_ca,),
            public_roots=(self.pki.public_root,),
            policy_oids=frozenset({self.pki.paths.policy_oid}),
        )

    @cached_property
    def crls(self) -> CrlSnapshot:
        return CrlSnapshot.of(
            CrlEntry(c, fetched_at=PKI_NOW, source="test") for c in self.pki.crls)

    @property
    def org(self) -> OrgSigner:
        return self.pki.org(SENDER)

    @property
    def person(self) -> OrgSigner:
        return self.pki.person(PERSON)

    @cached_property
    def good_pdf(self) -> bytes:
        """The main document signed by the competent person, then sealed by the organization."""
        pdf = sign_pdf(minimal_pdf("Cong van 123"), self.person, field_name="NguoiKy",
                       reason="Ký ban hành")
        return sign_pdf(pdf, self.org, field_name="DauCoQuan", reason="Đóng dấu")

    def envelope(
        self,
        *,
        sender: str = SENDER,
        pdf: bytes | None = None,
        attachments: tuple[Attachment, ...] | None = None,
        placeholder: bool = True,
    ) -> bytes:
        header = sample_header(
            Organization(sender, "Văn phòng UBND tỉnh Hà Tĩnh"),
            Organization(RECIPIENT, "Sở Nội vụ tỉnh Hà Tĩnh"),
        )
        if attachments is None:
            attachments = (sample_attachment(pdf if pdf is not None else self.good_pdf,
                                             content_id="main-document"),)
        return build_envelope(header, trace=sample_trace(sender, AT), attachments=attachments,
                              signature_placeholder=placeholder,
                              signature_placement=self.placement)

    def signed(self, signer: OrgSigner | None = None, **kwargs: object) -> bytes:
        return sign_xml(self.envelope(**kwargs), signer or self.org)  # type: ignore[arg-type]

    @cached_property
    def valid_raw(self) -> bytes:
        return self.signed()

    def packet(self, raw: bytes) -> Packet:
        """Parse ``raw``; if the parser refuses it, keep the valid packet's model with ``raw``
        swapped in — the validators must hold even if a tampered packet got past parsing."""
        try:
            return parse_packet(raw)
        except EnvelopeRefused:
            return dataclasses.replace(parse_packet(self.valid_raw), raw=raw)

    def done(self, raw: bytes, *, at: dt.datetime = AT, crls: CrlSnapshot | None = None,
             policy: TrustPolicy | None = None, ocsp: OcspSnapshot | None = None) -> Built:
        return Built(self.packet(raw), at, self.crls if crls is None else crls,
                     policy or self.policy, ocsp)

    # -- OCSP: answers built in-process by the test responder (no HTTP) ----------------------

    @cached_property
    def root_crl_only(self) -> CrlSnapshot:
        """The root's CRL (covers the issuing CA), none for the issuing CA: OCSP must decide."""
        return CrlSnapshot.of([CrlEntry(self.pki.crls[0], fetched_at=PKI_NOW, source="test")])

    def responder(self, **settings: Any) -> OcspResponder:
        ca = Issuer(self.pki.issuing_ca, self.pki.keys("issuing-ca", 2048))
        return OcspResponder(PKI_NOW, issuers=[ca], **settings)

    def ocsp(self, responder: OcspResponder, *signers: OrgSigner) -> OcspSnapshot:
        """The responder's answers about ``signers`` (default: the envelope's and the PDF's)."""
        ca = self.pki.issuing_ca
        certs = [s.cert for s in signers or (self.org, self.person)]
        return OcspSnapshot.of(
            (CertId.of(c, ca), OcspEntry.from_der(responder.answer(c, ca), AT, "test"))
            for c in certs)

    # -- national axis -------------------------------------------------------------------------

    @property
    def axis_org(self) -> OrgSigner:
        return self.pki.axis_org(AXIS_SENDER)

    @cached_property
    def axis_pdf(self) -> bytes:
        """The axis sender's main document, signed by its person and sealed by it."""
        pdf = sign_pdf(minimal_pdf("Cong van lien tinh"), self.pki.person(AXIS_PERSON),
                       field_name="NguoiKy", reason="Ký ban hành")
        return sign_pdf(pdf, self.axis_org, field_name="DauCoQuan", reason="Đóng dấu")

    @cached_property
    def waiving(self) -> TrustPolicy:
        return dataclasses.replace(self.policy, axis_legacy_envelope_signature=True)

    def legacy_sha1(self, signer: OrgSigner, **kwargs: Any) -> bytes:
        """An envelope signed like the official SDK's legacy profile: rsa-sha1, SHA-1 digest."""
        root = _tree(self.envelope(**kwargs))
        signed = _LegacySha1Signer(
            method=methods.enveloped,
            signature_algorithm=SignatureMethod.RSA_SHA1,
            digest_algorithm=DigestAlgorithm.SHA1,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        ).sign(root, key=signer.key, cert=[signer.cert, *signer.chain])
        return _out(signed)


# -- XML surgery helpers ----------------------------------------------------------------------


def _tree(raw: bytes) -> etree._Element:
    return etree.fromstring(raw)


def _out(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def _signature(root: etree._Element) -> etree._Element:
    found: list[etree._Element] = root.xpath("//ds:Signature", namespaces=NSMAP)  # type: ignore[assignment]
    return found[0]


class _LegacySha1Signer(XMLSigner):
    """signxml refuses SHA-1 unless told: only these interop vectors make SHA-1 signatures."""

    def check_deprecated_methods(self) -> None:
        pass


def _xml_signer() -> XMLSigner:
    return XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


# -- recipes ----------------------------------------------------------------------------------

Recipe = Callable[[Vectors], Built]
RECIPES: dict[str, Recipe] = {}


def recipe(fn: Recipe) -> Recipe:
    RECIPES[fn.__name__] = fn
    return fn


@recipe
def valid(v: Vectors) -> Built:
    return v.done(v.valid_raw)


@recipe
def valid_status(v: Vectors) -> Built:
    original = parse_packet(v.valid_raw)
    assert not isinstance(original, type(None))
    raw = build_status(
        response_for=response_for(original.header),  # type: ignore[union-attr]
        sender=Organization(RECIPIENT, "Sở Nội vụ tỉnh Hà Tĩnh"),
        status_code="03", timestamp=AT, description="Đã vào sổ",
        signature_placement=v.placement,
    )
    return v.done(sign_xml(raw, v.pki.org(RECIPIENT)))


@recipe
def no_pdf_attachment(v: Vectors) -> Built:
    return v.done(v.signed(attachments=()))


@recipe
def unsigned_pdf_with_policy_off(v: Vectors) -> Built:
    policy = dataclasses.replace(v.policy, require_pdf_signatures=False)
    return v.done(v.signed(pdf=minimal_pdf()), policy=policy)


@recipe
def unsigned(v: Vectors) -> Built:
    return v.done(v.envelope(placeholder=False))


@recipe
def subject_edited(v: Vectors) -> Built:
    raw = v.valid_raw.replace("triển khai".encode(), "hủy bỏ".encode(), 1)
    assert raw != v.valid_raw
    return v.done(raw)


@recipe
def attachment_edited(v: Vectors) -> Built:
    root = _tree(v.valid_raw)
    node = root.find(f"{{{ED_NS}}}AttachmentEncoded/{{{ED_NS}}}Attachment"
                     f"/{{{ED_NS}}}ContentTransferEncoded")
    assert node is not None
    assert node.text
    data = bytearray(base64.b64decode(node.text))
    data[len(data) // 2] ^= 0x01
    node.text = base64.b64encode(bytes(data)).decode()
    return v.done(_out(root))


@recipe
def signature_value_broken(v: Vectors) -> Built:
    root = _tree(v.valid_raw)
    value = _signature(root).find(f"{{{DS_NS}}}SignatureValue")
    assert value is not None
    assert value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 0xFF
    value.text = base64.b64encode(bytes(raw)).decode()
    return v.done(_out(root))


@recipe
def certificate_missing(v: Vectors) -> Built:
    root = _tree(v.valid_raw)
    signature = _signature(root)
    key_info = signature.find(f"{{{DS_NS}}}KeyInfo")
    assert key_info is not None
    signature.remove(key_info)
    return v.done(_out(root))


@recipe
def envelope_only_reference(v: Vectors) -> Built:
    """Signed for real, but only over edXMLEnvelope: the attachments are unprotected."""
    root = _tree(v.envelope())
    envelope = root[0]
    envelope.set("Id", "envelope")
    signed = _xml_signer().sign(root, key=v.org.key, cert=[v.org.cert, *v.org.chain],
                                reference_uri="#envelope")
    return v.done(_out(signed))


@recipe
def sha1(v: Vectors) -> Built:
    """RSA-SHA1 signature and SHA-1 digest (made by editing the algorithms: signxml 5 refuses
    to sign with SHA-1; the profile check fires before any cryptography)."""
    raw = v.valid_raw.replace(
        b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        b"http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    )
    return v.done(raw)


@recipe
def sha1_digest(v: Vectors) -> Built:
    raw = v.valid_raw.replace(
        b"http://www.w3.org/2001/04/xmlenc#sha256", b"http://www.w3.org/2000/09/xmldsig#sha1")
    return v.done(raw)


@recipe
def rsa1024(v: Vectors) -> Built:
    return v.done(v.signed(v.pki.special("rsa1024")))


def _special(kind: str) -> Recipe:
    def build_special(v: Vectors) -> Built:
        return v.done(v.signed(v.pki.special(kind), sender=FIRST_ORG))
    build_special.__name__ = kind
    return build_special


for _kind in ("expired", "not_yet_valid", "revoked", "wrong_key_usage", "no_policy"):
    recipe(_special(_kind))


@recipe
def crl_stale(v: Vectors) -> Built:
    # The issuing CA's CRL says nextUpdate = PKI_NOW + 7 days and was fetched at PKI_NOW.
    return v.done(v.valid_raw, at=PKI_NOW + dt.timedelta(days=8))


@recipe
def crl_missing(v: Vectors) -> Built:
    return v.done(v.valid_raw, crls=CrlSnapshot())


@recipe
def untrusted_root(v: Vectors) -> Built:
    # The public-CA-like chain, with no public root configured: just an unknown root.
    policy = dataclasses.replace(v.policy, public_roots=())
    return v.done(v.signed(v.pki.business, sender=FIRST_ORG), policy=policy)


@recipe
def public_ca(v: Vectors) -> Built:
    return v.done(v.signed(v.pki.business, sender=FIRST_ORG))


@recipe
def self_signed(v: Vectors) -> Built:
    return v.done(v.signed(v.pki.self_signed, sender=FIRST_ORG))


@recipe
def signer_not_entitled(v: Vectors) -> Built:
    """Sở TT&TT's seal on a packet whose From is Văn phòng UBND."""
    return v.done(v.signed(v.pki.org(RECIPIENT)))


@recipe
def sender_unknown(v: Vectors) -> Built:
    return v.done(v.signed(sender="000.00.99.H27"))


@recipe
def pdf_modified_after_signing(v: Vectors) -> Built:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(v.good_pdf))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/MediaBox"] = generic.ArrayObject(
        [generic.NumberObject(n) for n in (0, 0, 300, 300)])  # type: ignore[no-untyped-call]
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return v.done(v.signed(pdf=out.getvalue()))


@recipe
def pdf_bytes_changed(v: Vectors) -> Built:
    pdf = bytearray(v.good_pdf)
    at = pdf.index(b"Cong van 123")
    pdf[at] = ord("X")
    return v.done(v.signed(pdf=bytes(pdf)))


@recipe
def pdf_signed_by_untrusted(v: Vectors) -> Built:
    pdf = sign_pdf(minimal_pdf(), v.pki.business, field_name="NguoiKy", reason="Ký")
    pdf = sign_pdf(pdf, v.org, field_name="DauCoQuan", reason="Đóng dấu")
    return v.done(v.signed(pdf=pdf))


@recipe
def pdf_person_missing(v: Vectors) -> Built:
    return v.done(v.signed(pdf=sign_pdf(minimal_pdf(), v.org, field_name="Dau", reason="r")))


@recipe
def pdf_organization_missing(v: Vectors) -> Built:
    return v.done(v.signed(pdf=sign_pdf(minimal_pdf(), v.person, field_name="Ky", reason="r")))


@recipe
def pdf_malformed(v: Vectors) -> Built:
    return v.done(v.signed(pdf=b"%PDF-1.7\nthis is not a PDF\n%%EOF\n"))


# -- signature wrapping (XSW) shapes ---------------------------------------------------------
# After McIntosh & Austel (2005) and Somorovsky et al. (2012): the attacker keeps a valid
# signature over the original and makes the verifier read different content.


def _evil(raw: bytes) -> etree._Element:
    root = _tree(raw)
    subject = root.find(f".//{{{ED_NS}}}Subject")
    assert subject is not None
    subject.text = "Nội dung giả mạo"
    return root


@recipe
def xsw_original_in_object(v: Vectors) -> Built:
    """XSW-1: the signed original moved into ds:Object; forged content where it was."""
    original = _tree(v.valid_raw)
    root = _evil(v.valid_raw)
    signature = _signature(root)
    obj = etree.SubElement(signature, f"{{{DS_NS}}}Object")
    del_sig = _signature(original)
    del_sig.getparent().remove(del_sig)  # type: ignore[union-attr]
    obj.append(original)
    return v.done(_out(root))


@recipe
def xsw_object_referenced(v: Vectors) -> Built:
    """XSW-2: the Reference points at a ds:Object (Id) that carries a copy of the original."""
    root = _evil(v.valid_raw)
    signature = _signature(root)
    obj = etree.SubElement(signature, f"{{{DS_NS}}}Object", Id="original")
    obj.append(_tree(v.envelope(placeholder=False))[0])
    reference = signature.find(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")
    assert reference is not None
    reference.set("URI", "#original")
    return v.done(_out(root))


@recipe
def xsw_duplicated_signature(v: Vectors) -> Built:
    """XSW-3: a second copy of the valid Signature elsewhere in the document."""
    root = _tree(v.valid_raw)
    extra = copy.deepcopy(_signature(root))
    root.append(extra)
    return v.done(_out(root))


@recipe
def xsw_wrapped_envelope(v: Vectors) -> Built:
    """XSW-4: forged envelope on top; the signed original (with its signature) wrapped below."""
    original = _tree(v.valid_raw)
    root = _evil(v.valid_raw)
    signature = _signature(root)
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    wrapper = etree.SubElement(root, f"{{{ED_NS}}}Wrapper")
    wrapper.append(original)
    return v.done(_out(root))


@recipe
def xsw_reference_to_id(v: Vectors) -> Built:
    """XSW-5: signed for real over one element with an Id; forged content around it."""
    root = _tree(v.envelope())
    subject = root.find(f".//{{{ED_NS}}}Subject")
    assert subject is not None
    subject.set("Id", "s1")
    signed = _xml_signer().sign(root, key=v.org.key, cert=[v.org.cert, *v.org.chain],
                                reference_uri="#s1")
    code = signed.find(f".//{{{ED_NS}}}CodeNumber")
    if code is not None:
        code.text = "999"
    return v.done(_out(signed))


@recipe
def xsw_signature_moved(v: Vectors) -> Built:
    """XSW-6: the signature moved out of edXMLHeader (to the end of the document)."""
    root = _tree(v.valid_raw)
    signature = _signature(root)
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    root.append(signature)
    return v.done(_out(root))


@recipe
def xsw_content_after_signature(v: Vectors) -> Built:
    """XSW-7: forged header content appended after the signature in edXMLHeader."""
    root = _tree(v.valid_raw)
    signature = _signature(root)
    header = signature.getparent()
    assert header is not None
    etree.SubElement(header, f"{{{ED_NS}}}MessageHeader").text = "giả mạo"
    return v.done(_out(root))


@recipe
def xsw_two_references(v: Vectors) -> Built:
    """XSW-8: a second Reference (to an attacker-chosen Id) next to the whole-document one."""
    root = _tree(v.valid_raw)
    signed_info = _signature(root).find(f"{{{DS_NS}}}SignedInfo")
    assert signed_info is not None
    reference = signed_info.find(f"{{{DS_NS}}}Reference")
    assert reference is not None
    extra = copy.deepcopy(reference)
    extra.set("URI", "#forged")
    signed_info.append(extra)
    return v.done(_out(root))


@recipe
def xsw_xpath_transform(v: Vectors) -> Built:
    """An XPath filter transform that drops the attachments from what is digested."""
    root = _tree(v.valid_raw)
    transforms = _signature(root).find(
        f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference/{{{DS_NS}}}Transforms")
    assert transforms is not None
    xpath = etree.Element(f"{{{DS_NS}}}Transform",
                          Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    etree.SubElement(xpath, f"{{{DS_NS}}}XPath").text = (
        "not(ancestor-or-self::*[local-name()='AttachmentEncoded'])")
    transforms.insert(1, xpath)
    return v.done(_out(root))


# -- placement (QCVN 102 slot edXMLHeader/edXML:DigitalSignature, or last child of the header) ---


def _header(root: etree._Element) -> etree._Element:
    header = root.find(f"{{{ED_NS}}}edXMLEnvelope/{{{ED_NS}}}edXMLHeader")
    assert header is not None
    return header


def _signed_in(v: Vectors, placement: SignaturePlacement) -> etree._Element:
    return _tree(dataclasses.replace(v, placement=placement).valid_raw)


@recipe
def signature_in_slot_and_after_it(v: Vectors) -> Built:
    """One signature in edXML:DigitalSignature, a copy as the last child of edXMLHeader."""
    root = _signed_in(v, SignaturePlacement.SLOT)
    _header(root).append(copy.deepcopy(_signature(root)))
    return v.done(_out(root))


@recipe
def two_signatures_in_the_slot(v: Vectors) -> Built:
    root = _signed_in(v, SignaturePlacement.SLOT)
    signature = _signature(root)
    signature.addnext(copy.deepcopy(signature))
    return v.done(_out(root))


@recipe
def slot_element_after_the_slot(v: Vectors) -> Built:
    """Signed in the slot; an element added to edXMLHeader after edXML:DigitalSignature."""
    root = _signed_in(v, SignaturePlacement.SLOT)
    etree.SubElement(_header(root), f"{{{DS_NS}}}Object").text = "giả mạo"
    return v.done(_out(root))


@recipe
def slot_element_before_the_signature(v: Vectors) -> Built:
    """Signed in the slot; an element added inside edXML:DigitalSignature before the signature."""
    root = _signed_in(v, SignaturePlacement.SLOT)
    slot = _signature(root).getparent()
    assert slot is not None
    slot.insert(0, etree.Element(f"{{{ED_NS}}}Subject"))
    return v.done(_out(root))


@recipe
def slot_text_after_the_signature(v: Vectors) -> Built:
    root = _signed_in(v, SignaturePlacement.SLOT)
    _signature(root).tail = "giả mạo"
    return v.done(_out(root))


@recipe
def slot_text_before_the_signature(v: Vectors) -> Built:
    root = _signed_in(v, SignaturePlacement.SLOT)
    slot = _signature(root).getparent()
    assert slot is not None
    slot.text = "giả mạo"
    return v.done(_out(root))


@recipe
def slot_moved_into_the_body(v: Vectors) -> Built:
    """The whole edXML:DigitalSignature (with the signature) moved into edXMLBody."""
    root = _signed_in(v, SignaturePlacement.SLOT)
    slot = _signature(root).getparent()
    body = root.find(f"{{{ED_NS}}}edXMLEnvelope/{{{ED_NS}}}edXMLBody")
    assert slot is not None
    assert body is not None
    body.append(slot)
    return v.done(_out(root))


@recipe
def slot_nested_deeper(v: Vectors) -> Built:
    """The signature one level deeper, in an element inside edXML:DigitalSignature."""
    root = _signed_in(v, SignaturePlacement.SLOT)
    signature = _signature(root)
    slot = signature.getparent()
    assert slot is not None
    inner = etree.SubElement(slot, f"{{{ED_NS}}}DigitalSignature")
    inner.append(signature)
    return v.done(_out(root))


@recipe
def slot_not_last_in_header(v: Vectors) -> Built:
    """The slot moved before TraceHeaderList: not the last child of edXMLHeader."""
    root = _signed_in(v, SignaturePlacement.SLOT)
    slot = _signature(root).getparent()
    assert slot is not None
    _header(root).insert(1, slot)
    return v.done(_out(root))


@recipe
def header_end_followed_by_an_empty_slot(v: Vectors) -> Built:
    """Signed as the last child of edXMLHeader; an empty edXML:DigitalSignature added after."""
    root = _signed_in(v, SignaturePlacement.HEADER_END)
    etree.SubElement(_header(root), f"{{{ED_NS}}}DigitalSignature")
    return v.done(_out(root))


@recipe
def header_end_after_an_empty_slot(v: Vectors) -> Built:
    """The SDK leaves an empty edXML:DigitalSignature; the signature follows it (signed so)."""
    root = _tree(v.envelope(placeholder=False))
    header = _header(root)
    etree.SubElement(header, f"{{{ED_NS}}}DigitalSignature")
    etree.SubElement(header, f"{{{DS_NS}}}Signature", Id="placeholder", nsmap={"ds": DS_NS})
    return v.done(sign_xml(_out(root), v.org))


# -- KeyInfo: odd certificates and base64 (issue 16, L1 and L4) --------------------------------


def _key_info(root: etree._Element) -> etree._Element:
    x509_data = _signature(root).find(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data")
    assert x509_data is not None
    return x509_data


def _reissued(v: Vectors, *, key_usage: bytes | None = None) -> x509.Certificate:
    """The sender's seal certificate issued again by the issuing CA, its keyUsage replaced by
    the raw bytes ``key_usage`` (not DER of a KeyUsage: cryptography fails when reading it)."""
    base = v.org.cert
    builder = (x509.CertificateBuilder().subject_name(base.subject).issuer_name(base.issuer)
               .public_key(base.public_key()).serial_number(base.serial_number + 1)
               .not_valid_before(base.not_valid_before_utc)
               .not_valid_after(base.not_valid_after_utc))
    for ext in base.extensions:
        if ext.oid == ExtensionOID.KEY_USAGE and key_usage is not None:
            builder = builder.add_extension(x509.UnrecognizedExtension(ext.oid, key_usage), True)
        else:
            builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(v.pki.keys("issuing-ca", 2048), hashes.SHA256())


def _der_b64(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@recipe
def certificate_not_der(v: Vectors) -> Built:
    """X509Certificate holds valid base64 of bytes that are no certificate."""
    root = _tree(v.valid_raw)
    _key_info(root)[0].text = base64.b64encode(b"\x30\x82\x01\x00 not a certificate").decode()
    return v.done(_out(root))


@recipe
def certificate_malformed_extension(v: Vectors) -> Built:
    """Signed with a certificate (issued by the specialized CA) whose keyUsage cannot be read."""
    signer = OrgSigner(SENDER, v.org.key, _reissued(v, key_usage=b"\x01\x02garbage"),
                       v.org.chain)
    return v.done(v.signed(signer))


@recipe
def certificate_unknown_signature_algorithm(v: Vectors) -> Built:
    """The signer certificate's signature algorithm OID is one no library knows."""
    from cryptography.hazmat.primitives import serialization
    der = v.org.cert.public_bytes(serialization.Encoding.DER)
    sha256_rsa = bytes.fromhex("2a864886f70d01010b")
    assert der.count(sha256_rsa) == 2
    odd = x509.load_der_x509_certificate(der.replace(sha256_rsa, bytes.fromhex("2a864886f70d01017f")))
    return v.done(v.signed(OrgSigner(SENDER, v.org.key, odd, v.org.chain)))


@recipe
def offered_certificate_malformed(v: Vectors) -> Built:
    """The leaf is fine; the other certificate KeyInfo offers cannot be read."""
    root = _tree(v.valid_raw)
    other = _reissued(v, key_usage=b"\x05\x00")
    etree.SubElement(_key_info(root), f"{{{DS_NS}}}X509Certificate").text = _der_b64(other)
    return v.done(_out(root))


@recipe
def key_info_too_many_certificates(v: Vectors) -> Built:
    """KeyInfo is not covered by the signature: certificates can be added after signing."""
    root = _tree(v.valid_raw)
    data = _key_info(root)
    for _ in range(4):
        data.append(copy.deepcopy(data[-1]))
    return v.done(_out(root))


@recipe
def key_info_certificate_too_large(v: Vectors) -> Built:
    root = _tree(v.valid_raw)
    etree.SubElement(_key_info(root), f"{{{DS_NS}}}X509Certificate").text = (
        base64.b64encode(bytes(17 * 1024)).decode())
    return v.done(_out(root))


def _with_char(v: Vectors, path: str, char: str) -> bytes:
    root = _tree(v.valid_raw)
    node = _signature(root).find(path)
    assert node is not None
    assert node.text
    node.text = node.text[:20] + char + node.text[20:]
    return _out(root)


@recipe
def line_separator_in_signature_value(v: Vectors) -> Built:
    """U+2028 inside SignatureValue: Python's str.split() takes it for whitespace; xmlsec1 and
    the XMLDSig base64 rules do not."""
    return v.done(_with_char(v, f"{{{DS_NS}}}SignatureValue", "\u2028"))


@recipe
def next_line_in_signature_value(v: Vectors) -> Built:
    return v.done(_with_char(v, f"{{{DS_NS}}}SignatureValue", "\u0085"))


@recipe
def ideographic_space_in_digest_value(v: Vectors) -> Built:
    return v.done(_with_char(
        v, f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference/{{{DS_NS}}}DigestValue", "\u3000"))


@recipe
def no_break_space_in_certificate(v: Vectors) -> Built:
    return v.done(_with_char(
        v, f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate", "\u00a0"))


@recipe
def tab_and_carriage_return_in_signature_value(v: Vectors) -> Built:
    """The four XML whitespace characters are what base64 in XMLDSig may carry: accepted."""
    return v.done(_with_char(v, f"{{{DS_NS}}}SignatureValue", " \t\r\n"))


@recipe
def relative_namespace_in_content(v: Vectors) -> Built:
    """Namespaces 1.0 deprecates relative namespace URIs; canonical XML refuses them."""
    return v.done(v.valid_raw.replace(b"<edXML:Subject>", b'<edXML:Subject xmlns:x="rel/uri">', 1))


@recipe
def relative_namespace_in_signed_info(v: Vectors) -> Built:
    return v.done(v.valid_raw.replace(b"<ds:SignedInfo>", b'<ds:SignedInfo xmlns:x="rel">', 1))


# -- OCSP ------------------------------------------------------------------------------------


@recipe
def ocsp_good_without_crl(v: Vectors) -> Built:
    """No CRL of the issuing CA; fresh "good" answers signed by the CA decide."""
    return v.done(v.valid_raw, crls=v.root_crl_only, ocsp=v.ocsp(v.responder()))


@recipe
def ocsp_delegated_responder(v: Vectors) -> Built:
    """Answers signed by a delegated responder (id-kp-OCSPSigning, issued by the CA)."""
    ca_key = v.pki.keys("issuing-ca", 2048)
    responder_key = v.pki.keys("vector-ocsp-responder", 2048)
    delegate = (
        x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string(
            "CN=OCSP delegated (TEST),C=VN"))
        .issuer_name(v.pki.issuing_ca.subject).public_key(responder_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW - dt.timedelta(days=1))
        .not_valid_after(PKI_NOW + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    responder = v.responder(delegate=Issuer(delegate, responder_key))
    return v.done(v.valid_raw, crls=v.root_crl_only, ocsp=v.ocsp(responder))


@recipe
def ocsp_responder_not_delegated(v: Vectors) -> Built:
    """Answers signed by another certificate of the CA (the seal) that lacks id-kp-OCSPSigning."""
    seal = v.pki.org(RECIPIENT)
    responder = v.responder(delegate=Issuer(seal.cert, seal.key))  # type: ignore[arg-type]
    return v.done(v.valid_raw, crls=v.root_crl_only, ocsp=v.ocsp(responder))


@recipe
def ocsp_revoked(v: Vectors) -> Built:
    """The CRL is fresh and silent; the OCSP answer says revoked: revoked wins."""
    responder = v.responder(revoked={v.org.cert.serial_number: PKI_NOW - dt.timedelta(hours=1)})
    return v.done(v.valid_raw, ocsp=v.ocsp(responder))


@recipe
def ocsp_unknown_without_crl(v: Vectors) -> Built:
    responder = v.responder(unknown={v.org.cert.serial_number})
    return v.done(v.valid_raw, crls=v.root_crl_only, ocsp=v.ocsp(responder))


@recipe
def ocsp_stale_without_crl(v: Vectors) -> Built:
    """thisUpdate three days old, nextUpdate passed two days ago."""
    responder = v.responder(this_update=PKI_NOW - dt.timedelta(days=3))
    return v.done(v.valid_raw, crls=v.root_crl_only, ocsp=v.ocsp(responder))


@recipe
def ocsp_forged_without_crl(v: Vectors) -> Built:
    """Answers signed with a key that is neither the CA's nor a delegated responder's."""
    responder = v.responder(forge_with=v.pki.keys("public-ca", 2048))
    return v.done(v.valid_raw, crls=v.root_crl_only, ocsp=v.ocsp(responder))


@recipe
def ocsp_stale_but_crl_fresh(v: Vectors) -> Built:
    """A stale OCSP answer does not matter when the CRL is fresh and silent."""
    responder = v.responder(this_update=PKI_NOW - dt.timedelta(days=3))
    return v.done(v.valid_raw, ocsp=v.ocsp(responder))


# -- national-axis legacy envelope signatures (DOMAIN.md §4) -----------------------------------


@recipe
def axis_legacy_sha1_policy_off(v: Vectors) -> Built:
    return v.done(v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=v.axis_pdf))


@recipe
def axis_legacy_sha1_accepted(v: Vectors) -> Built:
    return v.done(v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=v.axis_pdf),
                  policy=v.waiving)


@recipe
def axis_legacy_unsigned_accepted(v: Vectors) -> Built:
    """The SDK's signature in a foreign namespace is no ds:Signature at all: SIGNATURE_MISSING."""
    return v.done(v.envelope(sender=AXIS_SENDER, pdf=v.axis_pdf, placeholder=False),
                  policy=v.waiving)


@recipe
def axis_legacy_placeholder_accepted(v: Vectors) -> Built:
    """The SDK left the empty signature placeholder."""
    return v.done(v.envelope(sender=AXIS_SENDER, pdf=v.axis_pdf), policy=v.waiving)


@recipe
def axis_legacy_direct_sender(v: Vectors) -> Built:
    """The same legacy envelope from a body connected directly: never waived."""
    return v.done(v.legacy_sha1(v.org, pdf=v.good_pdf), policy=v.waiving)


@recipe
def axis_legacy_content_tampered(v: Vectors) -> Built:
    """Envelope edited after the SHA-1 signing: the digest mismatch is never waived."""
    raw = v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=v.axis_pdf)
    tampered = raw.replace("triển khai".encode(), "hủy bỏ".encode(), 1)
    assert tampered != raw
    return v.done(tampered, policy=v.waiving)


@recipe
def axis_legacy_pdf_tampered(v: Vectors) -> Built:
    pdf = bytearray(v.axis_pdf)
    at = pdf.index(b"Cong van lien tinh")
    pdf[at] = ord("X")
    return v.done(v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=bytes(pdf)),
                  policy=v.waiving)


@recipe
def axis_legacy_pdf_person_missing(v: Vectors) -> Built:
    pdf = sign_pdf(minimal_pdf(), v.axis_org, field_name="Dau", reason="r")
    return v.done(v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=pdf), policy=v.waiving)


@recipe
def axis_legacy_pdf_untrusted(v: Vectors) -> Built:
    pdf = sign_pdf(minimal_pdf(), v.pki.business, field_name="NguoiKy", reason="Ký")
    pdf = sign_pdf(pdf, v.axis_org, field_name="DauCoQuan", reason="Đóng dấu")
    return v.done(v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=pdf), policy=v.waiving)


@recipe
def axis_legacy_without_pdf(v: Vectors) -> Built:
    return v.done(v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, attachments=()),
                  policy=v.waiving)


@recipe
def axis_legacy_wrong_c14n(v: Vectors) -> Built:
    """Inclusive c14n is not a waivable defect (only SHA-1 and a missing signature are)."""
    raw = v.legacy_sha1(v.axis_org, sender=AXIS_SENDER, pdf=v.axis_pdf).replace(
        b"http://www.w3.org/2001/10/xml-exc-c14n#", b"http://www.w3.org/TR/2001/REC-xml-c14n-20010315", 1)
    return v.done(raw, policy=v.waiving)


def build(name: str, vectors: Vectors) -> Built:
    return RECIPES[name](vectors)


__all__ = ["DIRECTORY", "RECIPES", "Built", "VectorCase", "Vectors", "build", "load_manifest"]
