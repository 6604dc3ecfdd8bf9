"""What the fuzzer starts from: valid packets signed with the test PKI, and how to judge them.

The packets are made the way the validator tests make theirs
(:class:`tests.unit.validators.signature_vectors.Vectors`: the same policy, CRLs, directory,
the main PDF signed by the competent person then sealed by the organization) and signed by the
hub's own signer (:func:`hub.signing.sign_xml`). Nothing here is a real key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.edxml import (
    Attachment,
    Envelope,
    Organization,
    StatusPacket,
    build_status,
    parse_packet,
    response_for,
    sample_attachment,
)
from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml
from hub.validators import CrlSnapshot, TrustPolicy, ValidationReport, validate_packet
from tests.pki_fixtures import AT, DIRECTORY, GeneratedPki
from tests.unit.validators.signature_vectors import PERSON, RECIPIENT, SENDER, Vectors

PLACEHOLDER = b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
"""The builder's unsigned signature element (:func:`hub.edxml.build._placeholder`)."""
MAIN_ID = "main-document"
ANNEX = Attachment("annex-1", "phu-luc.txt", "text/plain", "Phụ lục",
                   "Danh sách đơn vị nhận: Sở Nội vụ, Sở Tài chính.\n".encode())
"""A second, non-PDF attachment: routed content too, and not protected by any PDF signature."""


_WRAPPED = re.compile(rb"<edXML:DigitalSignature>\s*(" + re.escape(PLACEHOLDER)
                      + rb")\s*</edXML:DigitalSignature>")


def _last_child(unsigned: bytes) -> bytes:
    """The placeholder as the last child of ``edXMLHeader``, whichever place the builder chose."""
    assert PLACEHOLDER in unsigned
    return _WRAPPED.sub(rb"\1", unsigned, count=1)


def _in_standard_slot(unsigned: bytes) -> bytes:
    """Put the placeholder inside ``edXML:DigitalSignature``, the slot QCVN 102 names (issue 15)."""
    unsigned = _last_child(unsigned)
    return unsigned.replace(
        PLACEHOLDER, b"<edXML:DigitalSignature>" + PLACEHOLDER + b"</edXML:DigitalSignature>", 1)


def _after_empty_slot(unsigned: bytes) -> bytes:
    """The SDK sample's empty ``edXML:DigitalSignature`` left in the header, then the signature."""
    unsigned = _last_child(unsigned)
    return unsigned.replace(PLACEHOLDER, b"<edXML:DigitalSignature/>\n    " + PLACEHOLDER, 1)


@dataclass(frozen=True)
class Seed:
    """One valid signed packet the mutators start from."""

    name: str
    raw: bytes
    view: tuple[Any, ...]
    """What the hub routes and records from it (:func:`routed_view`)."""
    accepted_today: bool
    """Whether the hub accepts the seed itself: every seed must be (the short test checks), or
    the run would only fuzz a refusal."""


def routed_view(packet: Envelope | StatusPacket) -> tuple[Any, ...]:
    """The fields an accepted packet is routed and recorded by; an accepted mutant must keep them.

    Envelopes: From, every To, Subject, Code, DocumentId and each attachment (id, name, declared
    type, SHA-256 of the bytes). Status packets: the document answered (ResponseFor: routed back
    to its sender), From, the status code and description.
    """
    if isinstance(packet, Envelope):
        h = packet.header
        return (
            "envelope", h.sender.organ_id, tuple(r.organ_id for r in h.recipients), h.subject,
            h.code.text, h.document_id,
            tuple((a.content_id, a.attachment_name, a.content_type,
                   hashlib.sha256(a.data).hexdigest()) for a in packet.attachments),
        )
    rf = packet.response_for
    return ("status", rf.organ_id, rf.document_id, rf.code, packet.sender.organ_id,
            packet.status_code, packet.description)


@dataclass
class Corpus:
    """The seeds, the validation inputs, and the signer that re-signs envelopes around mutated PDFs."""

    vectors: Vectors
    seeds: tuple[Seed, ...]
    pdfs: tuple[tuple[str, bytes], ...]
    """Signed PDFs the PDF mutators start from (the envelope around each mutant is re-signed, so
    that the mutant reaches the PDF check)."""

    @property
    def policy(self) -> TrustPolicy:
        return self.vectors.policy

    @property
    def crls(self) -> CrlSnapshot:
        return self.vectors.crls

    @property
    def pki(self) -> GeneratedPki:
        return self.vectors.pki

    def validate(self, packet: Envelope | StatusPacket) -> ValidationReport:
        """The hub's whole verdict on one parsed packet, at the pinned time :data:`AT`."""
        return validate_packet(packet, at=AT, policy=self.policy, directory=DIRECTORY,
                               crls=self.crls)

    def envelope_with(self, pdf: bytes, *, content_type: str = "application/pdf") -> bytes:
        """A freshly signed envelope whose main document is ``pdf`` (declared ``content_type``)."""
        main = dataclasses.replace(sample_attachment(pdf, content_id=MAIN_ID),
                                   content_type=content_type)
        return sign_xml(self.vectors.envelope(attachments=(main, ANNEX)), self.vectors.org)

    @property
    def trust_files(self) -> tuple[Path, Path]:
        """The root and issuing CA certificates (PEM) for ``xmlsec1 --trusted-pem/--untrusted-pem``."""
        return self.pki.paths.root_cert, self.pki.paths.issuing_ca_cert


def _seed(name: str, raw: bytes, judge: Callable[[Envelope | StatusPacket], bool]) -> Seed:
    packet = parse_packet(raw)
    return Seed(name, raw, routed_view(packet), judge(packet))


def build_corpus(pki: GeneratedPki) -> Corpus:
    """Every seed: envelopes in both signature placements, status packets, and the signed PDFs."""
    v = Vectors(pki)
    org, recipient = v.org, pki.org(RECIPIENT)
    attachments = (sample_attachment(v.good_pdf, content_id=MAIN_ID), ANNEX)
    unsigned = v.envelope(attachments=attachments)
    status = build_status(
        response_for=response_for(parse_packet(v.valid_raw).header),  # type: ignore[union-attr]
        sender=Organization(RECIPIENT, "Sở Nội vụ tỉnh Hà Tĩnh"),
        status_code="03", timestamp=AT, description="Đã vào sổ văn bản đến",
    )
    corpus = Corpus(v, (), ())

    def accepted(packet: Envelope | StatusPacket) -> bool:
        return corpus.validate(packet).accepted

    corpus.seeds = (
        _seed("envelope", sign_xml(_last_child(unsigned), org), accepted),
        _seed("envelope-standard-slot", sign_xml(_in_standard_slot(unsigned), org), accepted),
        _seed("envelope-empty-slot", sign_xml(_after_empty_slot(unsigned), org), accepted),
        _seed("status", sign_xml(_last_child(status), recipient), accepted),
        _seed("status-standard-slot", sign_xml(_in_standard_slot(status), recipient), accepted),
    )
    corpus.pdfs = (("person+seal", v.good_pdf), ("person-only", _person_only(v)))
    return corpus


def _person_only(v: Vectors) -> bytes:
    return sign_pdf(minimal_pdf("Cong van 123"), v.pki.person(PERSON), field_name="NguoiKy",
                    reason="Ký ban hành")


__all__ = ["ANNEX", "MAIN_ID", "PLACEHOLDER", "SENDER", "Corpus", "Seed", "build_corpus",
           "routed_view"]
