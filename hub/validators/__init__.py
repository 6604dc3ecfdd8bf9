"""Signature enforcement: XMLDSig, certificate trust, revocation, PDF signatures (pure).

:func:`validate_packet` runs the checks in order and stops at the first one that does not pass
(later checks need what earlier ones established: a verified signer certificate, a trusted
path):

1. ``xmldsig`` — the hub's XMLDSig profile (:mod:`hub.validators.xmldsig`);
2. ``trust`` — the signer certificate chains to a specialized root, is valid at ``at``, may sign
   and carries the specialized policy (:mod:`hub.validators.trust`);
3. ``revocation`` — not revoked according to the CRL and OCSP snapshots handed in. The rule
   (:func:`hub.validators.trust.check_revocation`): a fresh "good" OCSP answer or a fresh CRL
   without the serial → not revoked; "revoked" from either → CERT_REVOKED; neither fresh →
   INDETERMINATE REVOCATION_UNAVAILABLE (retried later, never a pass), with ``crl_urls`` and
   ``ocsp_urls`` in the evidence and the OCSP questions in
   :attr:`ValidationReport.ocsp_queries` for :meth:`hub.trust.revocation.RevocationCache.refresh`;
4. ``signer`` — the directory lets the certificate sign for the packet's ``From``
   (SENDER_UNKNOWN / SIGNER_NOT_AUTHORIZED_FOR_SENDER);
5. ``pdf`` — envelopes only: PDF attachment signatures (:mod:`hub.validators.pdf`).

**National-axis interop policy** (``policy.axis_legacy_envelope_signature``, off by default;
Decree 30/2020/NĐ-CP Art. 5: a document signed by the competent person and by the organization
is the original — in practice the PAdES signatures in the main PDF, while the envelope
signature of the Government Office's QCVN 102:2016/BTTTT SDK samples is rsa-sha1 or a
placeholder). When it is on, the packet is an envelope, its sender is reached through the national axis
(directory ``reach = "axis"``) and the envelope signature fails **only** for a legacy reason —
rsa-sha1 / SHA-1 digest (SIGNATURE_ALGORITHM_FORBIDDEN) or no signature at all, the SDK's
foreign namespace or empty placeholder (SIGNATURE_MISSING) — then:

- a SHA-1 signature is verified anyway, with the rest of the profile (a digest mismatch, a
  wrapped or partial signature is never waived), and its certificate goes through ``trust``,
  ``revocation`` and ``signer`` as usual;
- the main PDF must carry valid person **and** organization signatures of the sender under the
  specialized roots, whatever ``require_pdf_signatures`` says; no PDF, an untrusted, modified
  or incomplete one → the waiver does not apply and the envelope's own reason is the verdict;
- accepted packets carry a PASSED ``axis_legacy_policy`` check in place of ``xmldsig`` whose
  evidence says what was waived (``waived_reason``, ``waived_detail``, ``envelope_signature``,
  ``binding_signatures``): :attr:`ValidationReport.waiver`. The pure core logs nothing; the
  pipeline logs ``legacy_envelope_signature_accepted`` from it, the ledger stores the report.

Direct (in-province) senders are never waived; refusals note why the policy did not apply in
the failed check's evidence (``axis_legacy_policy``).

It never raises for bad input: internal :class:`ValidationFailure` exceptions are mapped to
outcomes in :func:`_run`, the one adapter; anything else is a bug and becomes INTERNAL_ERROR.
No I/O happens here: the trust policy and CRLs are built outside (:mod:`hub.trust.store`,
:mod:`hub.trust.revocation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509

from hub.edxml.model import Envelope, StatusPacket
from hub.reasons import Reason
from hub.validators.ocsp import OcspEntry, OcspQuery, OcspSnapshot
from hub.validators.outcome import (
    AXIS_LEGACY_CHECK,
    CheckOutcome,
    Indication,
    SignerEvidence,
    ValidationFailure,
    ValidationReport,
)
from hub.validators.pdf import check_pdf_attachments
from hub.validators.trust import (
    CertificateFacts,
    ChainCache,
    CrlEntry,
    CrlSnapshot,
    PdfChange,
    PdfChangePolicy,
    TrustPolicy,
    check_revocation,
    fingerprint,
    read_certificate,
    subject_uid,
    validate_chain,
)
from hub.validators.xmldsig import LEGACY_SHA1, XmlSignature, check_xml_signature

__all__ = [
    "AXIS_LEGACY_CHECK",
    "ChainCache",
    "CheckOutcome",
    "CrlEntry",
    "CrlSnapshot",
    "Indication",
    "OcspEntry",
    "OcspQuery",
    "OcspSnapshot",
    "PdfChange",
    "PdfChangePolicy",
    "SignerEvidence",
    "TrustPolicy",
    "ValidationReport",
    "validate_packet",
]


class PacketDirectory(Protocol):
    """What validation needs from :class:`hub.directory.Directory`."""

    def find(self, code: str, at: Any = None) -> Any: ...

    def authorizes(self, organ_id: str, certificate: x509.Certificate, at: Any) -> bool: ...

    def signer_for(self, organ_id: str, certificate: x509.Certificate, at: Any) -> Any:
        """The signer entry ``certificate`` belongs to; None as well when :meth:`find` knows
        no ``organ_id`` at ``at``."""


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


_EVIDENCE: dict[int, tuple[CertificateFacts, SignerEvidence]] = {}
"""The signer evidence of the certificate facts read lately, by ``id()`` of the facts (held
with it, so the id stays theirs); cleared when :data:`_MAX_EVIDENCE` is reached."""
_MAX_EVIDENCE = 1024


def _signer_evidence(cert: x509.Certificate) -> SignerEvidence:
    """What the report says about a signer (frozen; built once per certificate's facts, which
    are read once per certificate). A certificate that cannot be read is named by its digest
    alone (the ``trust`` check says CERT_MALFORMED)."""
    try:
        facts = read_certificate(cert)
    except ValidationFailure:
        return SignerEvidence(subject="", fingerprint=fingerprint(cert), issuer="", serial="")
    known = _EVIDENCE.get(id(facts))
    if known is not None and known[0] is facts:
        return known[1]
    evidence = _evidence_of(facts)
    if len(_EVIDENCE) >= _MAX_EVIDENCE:
        _EVIDENCE.clear()
    _EVIDENCE[id(facts)] = (facts, evidence)
    return evidence


def _evidence_of(facts: CertificateFacts) -> SignerEvidence:
    return SignerEvidence(
        subject=facts.subject_text,
        fingerprint=facts.fingerprint,
        issuer=facts.issuer_text,
        serial=f"{facts.serial:x}",
        uid=facts.uid,
        not_before=facts.not_before,
        not_after=facts.not_after,
    )


def _legacy_defect(outcome: CheckOutcome) -> str | None:
    """What is legacy about a failed envelope signature, if that is all that is wrong with it."""
    if outcome.reason is Reason.SIGNATURE_MISSING:
        return "missing"
    if outcome.reason is Reason.SIGNATURE_ALGORITHM_FORBIDDEN and (
        outcome.evidence.get("signature_method") in LEGACY_SHA1
        or outcome.evidence.get("digest_method") in LEGACY_SHA1
    ):
        return "sha1"
    return None


def _annotated(outcome: CheckOutcome, note: str) -> CheckOutcome:
    return CheckOutcome(outcome.check, outcome.indication, outcome.reason,
                        {**outcome.evidence, AXIS_LEGACY_CHECK: note})


def _short(fp: str | None) -> str:
    return fp[:16] if fp else "?"


def validate_packet(
    packet: Envelope | StatusPacket,
    *,
    at: datetime,
    policy: TrustPolicy,
    directory: PacketDirectory,
    crls: CrlSnapshot,
    ocsp: OcspSnapshot | None = None,
) -> ValidationReport:
    """Every signature check on one parsed packet, judged at ``at`` (the hub's receipt time).

    ``ocsp`` holds the OCSP answers fetched so far (:mod:`hub.trust.revocation`); without it only
    CRLs decide revocation.
    """
    checking = _Checking(packet, at=at, policy=policy, directory=directory, crls=crls, ocsp=ocsp)
    if _run("xmldsig", checking.checks, checking.xmldsig):
        checking.run(checking.after_signature())
    else:
        checking.try_axis_waiver()
    return checking.report()


_Step = tuple[str, Callable[[], dict[str, str]]]
"""A named check: its name in the report, and the action that returns its evidence or raises."""


class _Checking:
    """One packet's validation: its inputs, the outcomes so far, and what each check
    established for the next ones (the verified signature, the trusted path, the OCSP
    questions). Built per packet, never shared."""

    def __init__(
        self,
        packet: Envelope | StatusPacket,
        *,
        at: datetime,
        policy: TrustPolicy,
        directory: PacketDirectory,
        crls: CrlSnapshot,
        ocsp: OcspSnapshot | None,
    ) -> None:
        self.packet = packet
        self.at = at
        self.policy = policy
        self.directory = directory
        self.crls = crls
        self.ocsp = ocsp
        self.checks: list[CheckOutcome] = []
        self.found: list[XmlSignature] = []
        self.path: Sequence[x509.Certificate] = ()
        self.wanted: list[OcspQuery] = []
        self.legacy_sha1 = False
        """Verify a SHA-1 envelope signature (the national-axis waiver, second attempt)."""
        self.waiving = False
        """The national-axis waiver is being tried: the main PDF's signatures are required."""

    # -- the checks: each returns its evidence or raises ValidationFailure ---------------------

    def xmldsig(self) -> dict[str, str]:
        signature = check_xml_signature(self.packet.raw, self.policy,
                                        legacy_sha1=self.legacy_sha1, tree=self.packet.tree)
        self.found.append(signature)
        return {
            "signature_method": signature.signature_method,
            "digest_method": signature.digest_method,
            "certificate": fingerprint(signature.leaf),
        }

    def trust(self) -> dict[str, str]:
        sig = self.found[0]
        path = validate_chain(sig.leaf, sig.offered, self.policy, self.at)
        self.path = path  # the CertPath, with its fingerprints (the revocation memo's key)
        # Every certificate KeyInfo offers must be one of the path the hub validated: KeyInfo is
        # not signed, and a verifier that builds its chain from the document's own copies (as
        # xmlsec1 does) must reach the same verdict as the hub (found by fuzzing, N1).
        on_path = path.on_path
        stray = [fp[:16] for fp in map(fingerprint, sig.offered) if fp not in on_path]
        if stray:
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID,
                f"KeyInfo offers certificate(s) {', '.join(stray)} not on the validated path")
        return {
            "path": path.text,
            "root": path.facts[-1].subject_text,
            "validity_judged_at": self.at.isoformat(),
        }

    def revocation(self) -> dict[str, str]:
        return check_revocation(self.path, self.crls, self.policy, self.at, self.ocsp,
                                self.wanted)

    def signer(self) -> dict[str, str]:
        sender = self.packet.sender.organ_id
        leaf = self.found[0].leaf
        # signer_for finds the sender itself (None when unknown): the directory is asked a
        # second time only to say which of the two refusals it is.
        entry = self.directory.signer_for(sender, leaf, self.at)
        if entry is None:
            if self.directory.find(sender, self.at) is None:
                raise ValidationFailure(Reason.SENDER_UNKNOWN, f"{sender} not in the directory")
            raise ValidationFailure(
                Reason.SIGNER_NOT_AUTHORIZED_FOR_SENDER,
                f"certificate {subject_uid(leaf) or '(no UID)'} may not sign for {sender}")
        return {"sender": sender, "role": str(getattr(entry, "role", ""))}

    def pdf(self) -> dict[str, str]:
        assert isinstance(self.packet, Envelope)
        return check_pdf_attachments(
            self.packet, policy=self.policy, crls=self.crls, directory=self.directory,
            at=self.at, ocsp=self.ocsp, wanted=self.wanted,
            require_signatures=True if self.waiving else None)

    # -- the order ---------------------------------------------------------------------------

    def after_signature(self) -> list[_Step]:
        """The checks that follow a verified envelope signature, in order."""
        steps: list[_Step] = [
            ("trust", self.trust), ("revocation", self.revocation), ("signer", self.signer)]
        if isinstance(self.packet, Envelope):
            steps.append(("pdf", self.pdf))
        return steps

    def run(self, steps: list[_Step]) -> None:
        """Run ``steps`` in order up to the first that does not pass."""
        for name, action in steps:
            if not _run(name, self.checks, action) and (
                # Keep going past undecidable revocation so a permanent failure further on
                # (wrong signer, bad PDF) wins over a pointless retry.
                name != "revocation" or self.checks[-1].indication is not Indication.INDETERMINATE
            ):
                break

    def try_axis_waiver(self) -> None:
        """After a failed envelope signature: the national-axis interop policy (Decision
        28/2018/QĐ-TTg, Decree 30/2020/NĐ-CP Art. 5), when it may apply. The legacy defect is
        set aside; everything else is still checked, and the main PDF's signatures must carry
        the document."""
        defect = _legacy_defect(self.checks[-1])
        if not self.policy.axis_legacy_envelope_signature or defect is None:
            return
        if not _axis_legacy(self.packet, self.checks, self.directory, self.at):
            return
        self.waiving = True
        waived = self.checks.pop()
        if defect == "sha1":
            self._verify_legacy_sha1()
        else:
            self.run([("pdf", self.pdf)])
        if not self.checks or self.checks[0].check != "xmldsig":
            self.checks[:] = _waiver_outcome(self.packet, waived, self.checks, self.found, defect)

    def _verify_legacy_sha1(self) -> None:
        self.legacy_sha1 = True
        if _run("xmldsig", self.checks, self.xmldsig):
            self.checks.pop()  # verified with SHA-1: recorded in the waiver, not as a pass
            self.run(self.after_signature())
        else:
            # A legacy signature that does not verify (digest mismatch …) is never waived: its
            # own failure is the verdict.
            self.checks[-1] = _annotated(
                self.checks[-1], "not applied: the legacy (sha1) signature fails")

    def report(self) -> ValidationReport:
        queries = tuple({q.cert_id: q for q in self.wanted}.values()) if self.wanted else ()
        return ValidationReport(
            checks=tuple(self.checks),
            signer=_signer_evidence(self.found[0].leaf) if self.found else None,
            validated_at=self.at,
            ocsp_queries=queries,
        )


def _axis_legacy(
    packet: Envelope | StatusPacket, checks: list[CheckOutcome], directory: PacketDirectory,
    at: datetime,
) -> bool:
    """Whether the interop policy may apply to ``packet``; notes why not on the failure."""
    sender = packet.sender.organ_id
    if not isinstance(packet, Envelope):
        checks[-1] = _annotated(checks[-1], "not applicable: a status packet carries no PDF")
        return False
    entry = directory.find(sender, at)
    reach = getattr(entry, "reach", None)
    if reach != "axis":
        # Bodies connected directly to the hub sign with the hub's profile: never waived.
        checks[-1] = _annotated(
            checks[-1], f"not applicable: sender {sender} "
            + ("is not in the directory" if entry is None else f"has reach = {reach!r}"))
        return False
    return True


def _waiver_outcome(
    packet: Envelope | StatusPacket,
    waived: CheckOutcome,
    checks: list[CheckOutcome],
    found: list[XmlSignature],
    defect: str | None,
) -> list[CheckOutcome]:
    """The checks of a packet the interop policy was tried on, with its verdict recorded.

    All passed (and the main PDF carries person + organization signatures) → a PASSED
    ``axis_legacy_policy`` check says what was waived. A permanent failure, or no main PDF →
    the waiver does not apply: the original envelope failure comes back first. Undecided →
    INDETERMINATE, judged again on retry.
    """
    pdf = next((c for c in checks if c.check == "pdf"), None)
    failed = next((c for c in checks if c.indication is Indication.FAILED), None)
    if failed is None and (
        pdf is None or (pdf.indication is Indication.PASSED and "main" not in pdf.evidence)
    ):
        return [_annotated(waived, "not applied: no signed PDF main document"), *checks]
    if failed is not None:
        return [_annotated(waived, f"not applied: {failed.check} {failed.reason.value}"), *checks]
    sender = packet.sender.organ_id
    assert pdf is not None
    evidence = {
        "policy": "trust.axis_legacy_envelope_signature",
        "sender": sender,
        "sender_reach": "axis",
        "waived_check": waived.check,
        "waived_reason": waived.reason.value,
        "waived_detail": waived.evidence.get("detail", ""),
        "envelope_signature": (
            f"verified with SHA-1 (integrity only), certificate {fingerprint(found[0].leaf)}"
            if defect == "sha1" and found else "none"),
        "binding_signatures": (
            f"main PDF {pdf.evidence.get('main', '?')}: person "
            f"{pdf.evidence.get('main_person', '?')}, organization "
            f"{pdf.evidence.get('main_organization', '?')}"),
    }
    pending = next((c for c in checks if c.indication is Indication.INDETERMINATE), None)
    if pending is not None:
        evidence["detail"] = f"waiver pending: {pending.check} {pending.reason.value}"
        del evidence["binding_signatures"]  # not established yet
        outcome = CheckOutcome(AXIS_LEGACY_CHECK, Indication.INDETERMINATE, pending.reason,
                               evidence)
    else:
        evidence["detail"] = (
            f"legacy envelope signature accepted ({waived.reason.value}) for national-axis "
            f"sender {sender}: the main PDF carries valid person and organization signatures "
            f"(person {_short(pdf.evidence.get('main_person'))}, organization "
            f"{_short(pdf.evidence.get('main_organization'))})")
        outcome = CheckOutcome.passed(AXIS_LEGACY_CHECK, evidence)
    return [outcome, *checks]
