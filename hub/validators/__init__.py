"""Signature enforcement: XMLDSig, certificate trust, revocation, PDF signatures (pure).

:func:`validate_packet` runs the checks in order and stops at the first one that does not pass
(later checks need what earlier ones established: a verified signer certificate, a trusted
path):

1. ``xmldsig`` — the hub's XMLDSig profile (:mod:`hub.validators.xmldsig`);
2. ``trust`` — the signer certificate chains to a specialized root, is valid at ``at``, may sign
   and carries the specialized policy (:mod:`hub.validators.trust`);
3. ``revocation`` — not revoked according to the CRL snapshot handed in; missing or stale CRLs
   are INDETERMINATE (retried later), never a pass;
4. ``signer`` — the directory lets the certificate sign for the packet's ``From``
   (SENDER_UNKNOWN / SIGNER_NOT_AUTHORIZED_FOR_SENDER);
5. ``pdf`` — envelopes only: PDF attachment signatures (:mod:`hub.validators.pdf`).

It never raises for bad input: internal :class:`ValidationFailure` exceptions are mapped to
outcomes in :func:`_run`, the one adapter; anything else is a bug and becomes INTERNAL_ERROR.
No I/O happens here: the trust policy and CRLs are built outside (:mod:`hub.trust_store`,
:mod:`hub.revocation`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509

from hub.edxml.model import Envelope, StatusPacket
from hub.reasons import Reason
from hub.validators.outcome import (
    CheckOutcome,
    Indication,
    SignerEvidence,
    ValidationFailure,
    ValidationReport,
)
from hub.validators.pdf import check_pdf_attachments
from hub.validators.trust import (
    ChainCache,
    CrlEntry,
    CrlSnapshot,
    TrustPolicy,
    check_revocation,
    fingerprint,
    subject_uid,
    validate_chain,
)
from hub.validators.xmldsig import XmlSignature, check_xml_signature

__all__ = [
    "ChainCache",
    "CheckOutcome",
    "CrlEntry",
    "CrlSnapshot",
    "Indication",
    "SignerEvidence",
    "TrustPolicy",
    "ValidationReport",
    "validate_packet",
]


class PacketDirectory(Protocol):
    """What validation needs from :class:`hub.directory.Directory`."""

    def find(self, code: str, at: Any = None) -> Any: ...

    def authorizes(self, organ_id: str, certificate: x509.Certificate, at: Any) -> bool: ...

    def signer_for(self, organ_id: str, certificate: x509.Certificate, at: Any) -> Any: ...


def _run(check: str, checks: list[CheckOutcome], action: Callable[[], dict[str, str]]) -> bool:
    """Run one check; record its outcome. The only place failures become outcomes."""
    try:
        evidence = action()
    except ValidationFailure as failure:
        checks.append(failure.outcome(check))
        return False
    except Exception as exc:  # a bug, not bad input: say so, never crash the consumer
        checks.append(
            CheckOutcome(check, Indication.INDETERMINATE, Reason.INTERNAL_ERROR,
                         {"detail": f"{type(exc).__name__} in {check} check"}))
        return False
    checks.append(CheckOutcome.passed(check, evidence))
    return True


def _signer_evidence(cert: x509.Certificate) -> SignerEvidence:
    return SignerEvidence(
        subject=cert.subject.rfc4514_string(),
        fingerprint=fingerprint(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        uid=subject_uid(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def validate_packet(
    packet: Envelope | StatusPacket,
    *,
    at: datetime,
    policy: TrustPolicy,
    directory: PacketDirectory,
    crls: CrlSnapshot,
) -> ValidationReport:
    """Every signature check on one parsed packet, judged at ``at`` (the hub's receipt time)."""
    checks: list[CheckOutcome] = []
    found: list[XmlSignature] = []
    path: list[x509.Certificate] = []

    def xmldsig() -> dict[str, str]:
        signature = check_xml_signature(packet.raw, policy)
        found.append(signature)
        return {
            "signature_method": signature.signature_method,
            "digest_method": signature.digest_method,
            "certificate": fingerprint(signature.leaf),
        }

    def trust() -> dict[str, str]:
        sig = found[0]
        path.extend(validate_chain(sig.leaf, sig.offered, policy, at))
        return {
            "path": " > ".join(fingerprint(c)[:16] for c in path),
            "root": path[-1].subject.rfc4514_string(),
            "validity_judged_at": at.isoformat(),
        }

    def revocation() -> dict[str, str]:
        return check_revocation(path, crls, policy, at)

    def signer() -> dict[str, str]:
        sender = packet.sender.organ_id
        if directory.find(sender, at) is None:
            raise ValidationFailure(Reason.SENDER_UNKNOWN, f"{sender} not in the directory")
        entry = directory.signer_for(sender, found[0].leaf, at)
        if entry is None:
            raise ValidationFailure(
                Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER,
                f"certificate {subject_uid(found[0].leaf) or '(no UID)'} may not sign for {sender}")
        return {"sender": sender, "role": str(getattr(entry, "role", ""))}

    def pdf() -> dict[str, str]:
        assert isinstance(packet, Envelope)
        return check_pdf_attachments(packet, policy=policy, crls=crls, directory=directory, at=at)

    if _run("xmldsig", checks, xmldsig):
        steps: list[tuple[str, Callable[[], dict[str, str]]]] = [
            ("trust", trust), ("revocation", revocation), ("signer", signer)]
        if isinstance(packet, Envelope):
            steps.append(("pdf", pdf))
        for name, action in steps:
            if not _run(name, checks, action) and (
                # Keep going past undecidable revocation so a permanent failure further on
                # (wrong signer, bad PDF) wins over a pointless retry.
                name != "revocation" or checks[-1].indication is not Indication.INDETERMINATE
            ):
                break
    return ValidationReport(
        checks=tuple(checks),
        signer=_signer_evidence(found[0].leaf) if found else None,
        validated_at=at,
    )
