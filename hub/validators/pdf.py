"""PDF attachment signatures (PAdES-style), validated with pyHanko under the same roots.

Where the legally binding signatures are (Circular 41/2017/TT-BTTTT; Decree 30/2020/NĐ-CP Art. 5;
DOMAIN.md §4): in the attached PDF — the competent **person**'s signature and the
**organization**'s (the electronic seal). The rules:

- every ``application/pdf`` attachment that carries signatures is validated: each signature must
  be intact and verify (PDF_SIGNATURE_INVALID), cover the document as signed with no later
  change beyond adding further signatures or form filling (PDF_MODIFIED_AFTER_SIGNING), and be
  made with a certificate trusted under the specialized roots, with the same policy as the
  envelope signature (PDF_SIGNER_UNTRUSTED; revocation data missing → REVOCATION_UNAVAILABLE);
- with ``policy.require_pdf_signatures`` (default on) the **main document** — the first PDF in
  the manifest — must carry a valid signature of a *person* signer and one of the
  *organization* signer of the sending body, as the directory lists them
  (PDF_PERSON_SIGNATURE_MISSING / PDF_ORGANIZATION_SIGNATURE_MISSING);
- an envelope whose manifest has no PDF passes this check: the requirement applies to the main
  document when it is a PDF (other formats are not signed in place). A PDF that cannot be read
  is PDF_MALFORMED when the policy is on; with the policy off it is skipped (the hub is no PDF
  linter) — unless it is needed for a signature check, which it then is not.

pyHanko's synchronous API calls ``asyncio.run()``: never call these functions from inside a
running event loop (the hub's consumers are threads, not coroutines).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hub.edxml.model import Envelope
from hub.reasons import Reason
from hub.validators.ocsp import OcspQuery, OcspSnapshot
from hub.validators.outcome import Indication, ValidationFailure
from hub.validators.trust import (
    CrlSnapshot,
    TrustPolicy,
    check_revocation,
    fingerprint,
    validate_chain,
)

PDF_TYPES = frozenset({"application/pdf"})


class SignerDirectory(Protocol):
    """What the PDF check needs from :class:`hub.directory.Directory`."""

    def signer_for(self, organ_id: str, certificate: x509.Certificate, at: datetime) -> Any: ...


def _asn1(cert: x509.Certificate) -> Any:
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _validation_context(policy: TrustPolicy, at: datetime) -> Any:
    """A fresh pyhanko-certvalidator context per attachment (it keeps state).

    It gets no revocation data on purpose: revocation is judged once, by
    :func:`~hub.validators.trust.check_revocation`, with the hub's rule (CRL or OCSP, the same
    freshness window); pyHanko checks integrity and the path to the specialized roots.
    """
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=[_asn1(c) for c in policy.roots],  # never the OS store
        other_certs=[_asn1(c) for c in policy.intermediates],
        allow_fetching=False,
        moment=at,
        revocation_mode="soft-fail",
    )


def _is_pdf(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in PDF_TYPES


def _modified(status: Any) -> bool:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import SignatureCoverageLevel

    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return False
    if status.coverage != SignatureCoverageLevel.ENTIRE_REVISION:
        return True
    level = status.modification_level
    return level is None or level > ModificationLevel.FORM_FILLING or not status.docmdp_ok


@dataclass(frozen=True, slots=True)
class _Revocation:
    """The revocation data handed in, and where to note the OCSP questions left open."""

    crls: CrlSnapshot
    ocsp: OcspSnapshot | None
    wanted: list[OcspQuery] | None


def _check_signature(
    embedded: Any, name: str, policy: TrustPolicy, revocation: _Revocation, at: datetime
) -> tuple[x509.Certificate, ValidationFailure | None]:
    """The signer certificate of a valid signature, with the revocation failure left pending
    (INDETERMINATE), if any; raises for every permanent failure."""
    from pyhanko.sign.validation import validate_pdf_signature

    field = embedded.field_name or "?"
    try:
        status = validate_pdf_signature(
            embedded, signer_validation_context=_validation_context(policy, at))
    except Exception as exc:  # pyHanko raises many types for broken CMS; all mean "invalid"
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID, f"{name} field {field}: {type(exc).__name__}") from None
    if not status.intact:
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING, f"{name} field {field}: signed bytes changed")
    if not status.valid:
        raise ValidationFailure(
            Reason.PDF_SIGNATURE_INVALID, f"{name} field {field}: signature does not verify")
    if _modified(status):
        raise ValidationFailure(
            Reason.PDF_MODIFIED_AFTER_SIGNING,
            f"{name} field {field}: changed after signing ({status.modification_level})")
    cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    offered = [
        x509.load_der_x509_certificate(c.dump())
        for c in embedded.other_embedded_certs
    ]
    # The same trust rules as the envelope signature (roots, policy OIDs, public CA, CRLs, OCSP).
    pending: ValidationFailure | None = None
    try:
        path = validate_chain(cert, offered, policy, at)
        check_revocation(path, revocation.crls, policy, at, revocation.ocsp, revocation.wanted)
    except ValidationFailure as failure:
        if failure.indication is Indication.INDETERMINATE:
            # Keep going: a permanent failure further on wins over a pointless retry, and
            # every signature's open OCSP question is collected at once.
            pending = ValidationFailure(
                failure.reason, f"{name} field {field}: {failure.detail}",
                indication=Indication.INDETERMINATE, evidence=failure.evidence)
        else:
            raise ValidationFailure(
                Reason.PDF_SIGNER_UNTRUSTED, f"{name} field {field}: {failure.reason.value}",
                evidence={"pdf_signer": fingerprint(cert)}) from None
        # pyHanko's own verdict below would only repeat the missing revocation data.
        return cert, pending
    if not status.trusted:
        raise ValidationFailure(
            Reason.PDF_SIGNER_UNTRUSTED, f"{name} field {field}: not trusted by pyHanko",
            evidence={"pdf_signer": fingerprint(cert)})
    return cert, pending


def _signatures(data: bytes, name: str) -> Sequence[Any] | None:
    """The embedded signatures, or None when the file cannot be read as a PDF."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        return list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def check_pdf_attachments(
    envelope: Envelope,
    *,
    policy: TrustPolicy,
    crls: CrlSnapshot,
    directory: SignerDirectory,
    at: datetime,
    ocsp: OcspSnapshot | None = None,
    wanted: list[OcspQuery] | None = None,
    require_signatures: bool | None = None,
) -> dict[str, str]:
    """Validate the PDF signatures of ``envelope``; returns evidence or raises.

    ``require_signatures`` overrides ``policy.require_pdf_signatures`` (the national-axis
    interop policy always requires them). The evidence names the main document and the
    fingerprints of the person and organization signers found on it (``main_person``,
    ``main_organization``).
    """
    require = policy.require_pdf_signatures if require_signatures is None else require_signatures
    revocation = _Revocation(crls, ocsp, wanted)
    by_id = {a.content_id: a for a in envelope.attachments}
    pdfs = [a for a in envelope.attachments if _is_pdf(a.content_type)]
    # The main document: the first PDF in the manifest's order.
    main = next(
        (by_id[r.content_id] for r in envelope.manifest
         if _is_pdf(r.content_type) and r.content_id in by_id),
        pdfs[0] if pdfs else None,
    )
    sender = envelope.sender.organ_id
    evidence: dict[str, str] = {"pdfs": str(len(pdfs))}
    roles_on_main: dict[str, str] = {}
    pending: ValidationFailure | None = None
    for attachment in pdfs:
        name = attachment.attachment_name or attachment.content_id
        embedded = _signatures(attachment.data, name)
        if embedded is None:
            if require:
                raise ValidationFailure(Reason.PDF_MALFORMED, f"{name}: not a readable PDF")
            evidence[f"skipped:{name}"] = "unreadable"
            continue
        for signature in embedded:
            cert, undecided = _check_signature(signature, name, policy, revocation, at)
            pending = pending or undecided
            if attachment is main:
                signer = directory.signer_for(sender, cert, at)
                if signer is not None:
                    roles_on_main.setdefault(str(signer.role), fingerprint(cert))
        if attachment is main:
            evidence["main"] = name
            evidence["main_signatures"] = str(len(embedded))
    if require and main is not None:
        if "person" not in roles_on_main:
            raise ValidationFailure(
                Reason.PDF_PERSON_SIGNATURE_MISSING,
                f"no valid signature of a person signer of {sender}")
        if "organization" not in roles_on_main:
            raise ValidationFailure(
                Reason.PDF_ORGANIZATION_SIGNATURE_MISSING,
                f"no valid signature of the organization {sender}")
    if pending is not None:
        raise pending
    for role in ("person", "organization"):
        if role in roles_on_main:
            evidence[f"main_{role}"] = roles_on_main[role]
    return evidence
