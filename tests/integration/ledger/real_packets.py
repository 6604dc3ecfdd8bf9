"""Real packets for the ledger suite: signed with the test PKI, parsed and validated by the hub's
own code, recorded in the shape the pipeline writes (until the lead's test drives the pipeline).

An accepted envelope becomes a document of kind ``envelope`` with its real validation report and
the CRL the validation used; a refused one a document of kind ``refused`` with the reason the
real parser or validator gave.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.serialization import Encoding

from hub.edxml import (
    EnvelopeRefused,
    Organization,
    build_envelope,
    parse_packet,
    sample_attachment,
    sample_header,
    sample_trace,
)
from hub.ledger import REFUSED, DocumentIn, EventIn, EventKind, Refusal, RevocationEvidence
from hub.trust.keystore import OrgSigner
from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml
from hub.validators import CrlEntry, CrlSnapshot, TrustPolicy, validate_packet
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW, GeneratedPki

PERSON = "CCCD:042080000003"
"""A person signer of :data:`SENDER` in the bundled directory."""
SENDER = "000.00.01.H27"
RECIPIENT = "000.00.02.H27"


@dataclass(frozen=True)
class Recorded:
    document: DocumentIn
    events: list[EventIn]
    reason: str


def signed_envelope(pki: GeneratedPki, number: str, *, person: bool = True,
                    seal: OrgSigner | None = None, signer: OrgSigner | None = None) -> bytes:
    """An envelope from :data:`SENDER` whose main PDF carries the person's signature (unless
    ``person`` is False) and the seal, signed (XML-DSig) by ``signer`` (default: the seal)."""
    pdf = minimal_pdf(f"Công văn số {number}")
    if person:
        pdf = sign_pdf(pdf, pki.person(PERSON), field_name="NguoiKy", reason="Ký")
    pdf = sign_pdf(pdf, seal or pki.org(SENDER), field_name="DauCoQuan", reason="Đóng dấu")
    header = sample_header(Organization(SENDER, "Văn phòng UBND tỉnh Hà Tĩnh"), RECIPIENT,
                           number=number)
    template = build_envelope(header, trace=sample_trace(SENDER, AT),
                              attachments=[sample_attachment(pdf)])
    return sign_xml(template, signer or pki.org(SENDER))


def crl_used(pki: GeneratedPki) -> RevocationEvidence:
    """The issuing CA's CRL as the validation of a :data:`SENDER` envelope used it."""
    leaf = pki.org(SENDER).cert
    return RevocationEvidence(
        kind="crl", der=pki.paths.crl_der.read_bytes(), at=PKI_NOW,
        source=f"{pki.paths.crl_base_url}/issuing-ca.crl",
        certificate=leaf.public_bytes(Encoding.DER),
        issuer=pki.issuing_ca.public_bytes(Encoding.DER))


def record(pki: GeneratedPki, raw: bytes, *, account: str | None, at: datetime = AT,
           account_organization: str | None = None) -> Recorded:
    """Parse and validate ``raw`` as the hub does and record it as the pipeline will."""
    policy = TrustPolicy(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                         public_roots=(pki.public_root,),
                         policy_oids=frozenset({pki.paths.policy_oid}))
    digest = hashlib.sha256(raw).hexdigest()
    mid = f"m-{digest[:12]}"
    try:
        packet = parse_packet(raw)
    except EnvelopeRefused as refused:
        return _refused(raw, digest, mid, at, refused.reason.value, account,
                        account_organization, None, "", "")
    crls = CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW) for c in pki.crls)
    report = validate_packet(packet, at=at, policy=policy, directory=DIRECTORY, crls=crls)
    sender = packet.sender.organ_id
    if not report.accepted:
        return _refused(raw, digest, mid, at, report.reason.value, account, sender,
                        report.to_dict(), packet.document_id, "")
    document = DocumentIn(
        sender=sender, document_id=packet.document_id, digest=digest, kind="envelope",
        raw=raw, received_at=at, code="", recipients=(RECIPIENT,), report=report.to_dict(),
        revocation=(crl_used(pki),))
    events = [EventIn(EventKind.RECEIVED, mid, at, digest, organ_id=sender),
              EventIn(EventKind.VALIDATED, mid, at, digest, organ_id=sender,
                      detail=report.summary()),
              EventIn(EventKind.DELIVERED, mid, at, digest, organ_id=RECIPIENT)]
    return Recorded(document, events, "OK")


def _refused(raw: bytes, digest: str, mid: str, at: datetime, reason: str,
             account: str | None, organization: str | None, report: dict[str, object] | None,
             document_id: str, code: str) -> Recorded:
    document = DocumentIn(
        sender=organization or "", document_id=document_id, digest=digest, kind=REFUSED,
        raw=raw, received_at=at, code=code, report=report,
        refusal=Refusal(reason=reason, account=account))
    events = [EventIn(EventKind.REJECTED, mid, at, digest, organ_id=organization, reason=reason),
              EventIn(EventKind.DEAD_LETTERED, mid, at, digest, organ_id=organization,
                      reason=reason, detail={"queue": "hub.ops.dlq", "attempts": 1})]
    return Recorded(document, events, reason)
