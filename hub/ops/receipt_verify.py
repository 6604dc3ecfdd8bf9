"""``hub receipt verify``: what a receipt proves, checked offline.

A hub receipt is an EDXML status packet signed by an organization (the recipient for ``01``
"đã đến", the hub operator for accepted/rejected/countersigned) carrying ``hub:HubEvidence``:
the SHA-256 of the exact envelope bytes received and of the sender's ``SignatureValue``. It
proves that the signing organization saw *those* bytes at that time. The check:

1. the receipt parses through the hardened entry point;
2. its XML signature verifies under the configured specialized roots, the certificate is
   valid and not revoked, and it belongs to the reporting organization (same checks as for
   envelopes);
3. the kind of evidence is bound to who signed it: accepted / rejected / countersigned only by
   the hub operator, received only by the recipient it names (an agency cannot pass off its
   own receipt as the hub's);
4. with ``--envelope``, the evidence digests match the original envelope byte for byte.

When the certificate is judged. A receipt's ``Timestamp`` is its signer's own word, not a
trusted signing time. The certificates are judged at it (validity period; revocation dated at or
before it), so that a genuine receipt stays valid after its certificate expires or is revoked
for a reason that says nothing against the key (RFC 5280 §5.3.1: superseded,
cessationOfOperation, affiliationChanged, privilegeWithdrawn). But a revocation that puts the
key itself in doubt — keyCompromise, cACompromise, aACompromise, unspecified or no reasonCode,
and a certificateHold on a CRL still fresh at verification time — counts *whatever its date*,
for the signer's certificate and for every CA above it: whoever holds a stolen key writes the
date they like, so such a receipt proves nothing (ETSI EN 319 102-1 §5.2.6: a signature made
with a revoked certificate and no proof of existence before the revocation is not valid). What
decides is what the configured CRLs say at verification time.

An auditor who has proof that the receipt existed at some time — the ledger's record of it, a
timestamp — passes that time as ``at``: then everything is judged at ``at``, as for a
signature known to have been made then (a key compromised later does not undo it). Choosing
``at`` is the auditor's responsibility; nothing in the receipt supplies it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from hub.config import Settings

if TYPE_CHECKING:
    from hub.edxml.model import StatusPacket
    from hub.validators.trust import CrlSnapshot, TrustPolicy

_KEY_NOT_IN_DOUBT = frozenset({
    x509.ReasonFlags.superseded,
    x509.ReasonFlags.cessation_of_operation,
    x509.ReasonFlags.affiliation_changed,
    x509.ReasonFlags.privilege_withdrawn,
})
"""RFC 5280 §5.3.1 revocation reasons that say nothing against the key: a signature dated
before such a revocation stays valid. Every other reason — and none — counts at any date."""


def _revocation_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    """The CRL entry's reasonCode; None when absent (RFC 5280: then "unspecified") or
    unreadable (counted as unspecified: a listing the hub cannot read is not a benign one)."""
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return None


def key_in_doubt(path: Sequence[x509.Certificate], crls: CrlSnapshot, now: datetime,
                 freshness: timedelta) -> str | None:
    """Why a signature by ``path``'s leaf cannot be valid at any date, or None: a certificate
    of the path (but the root) listed, on the CRL of its issuer that covers it and verifies,
    with a reason that puts the key in doubt. A stale CRL counts (revocation is final) except
    for a certificateHold, which may have been lifted since (as :mod:`hub.validators.trust`
    judges it)."""
    from hub.validators.trust import read_certificate

    for cert, issuer in itertools.pairwise(path):
        facts = read_certificate(cert)
        crl = crls.covering(facts)
        if crl is None or not crl.signed_by(issuer):
            continue
        listed = crl.listed(facts.serial)
        if listed is None:
            continue
        reason = _revocation_reason(listed)
        if reason in _KEY_NOT_IN_DOUBT:
            continue
        if reason is x509.ReasonFlags.certificate_hold and not crl.is_fresh(now, freshness):
            continue
        who = "signer" if cert is path[0] else "CA"
        why = reason.name if reason is not None else "no reason code"
        return (f"{who} certificate serial {facts.serial:x} revoked "
                f"{listed.revocation_date_utc.isoformat()} ({why}, CRL {crl.number})")
    return None


def _key_doubt(packet: StatusPacket, policy: TrustPolicy, crls: CrlSnapshot,
               now: datetime) -> str | None:
    """:func:`key_in_doubt` for the path of an accepted packet's signer (the one its validation
    just built and cached)."""
    from hub.validators.outcome import ValidationFailure
    from hub.validators.trust import build_path
    from hub.validators.xmldsig import check_xml_signature

    try:
        signature = check_xml_signature(packet.raw, policy, tree=packet.tree)
        path = build_path(signature.leaf, signature.offered, policy)
    except ValidationFailure as failure:  # validated a moment ago: not expected
        return f"the signer's path cannot be read again ({failure.reason.value})"
    return key_in_doubt(path, crls, now, policy.crl_freshness)


def verify_receipt(settings: Settings, receipt: bytes, envelope: bytes | None = None,
                   *, at: datetime | None = None,
                   now: datetime | None = None) -> tuple[bool, list[str]]:
    """What ``receipt`` proves (``ok``, the findings as lines for people).

    ``at``: a time the auditor knows the receipt existed by (see the module docstring); by
    default the receipt's own ``Timestamp``, with revocations that put the key in doubt counted
    at any date. ``now``: the verification time (default: the clock).
    """
    from hub.app import load_directory
    from hub.edxml import EnvelopeRefused, parse_packet
    from hub.edxml.model import StatusPacket
    from hub.reasons import Reason
    from hub.receipts.content import check_binding, issuer_mismatch, read_evidence
    from hub.trust.revocation import RevocationCache
    from hub.trust.store import load_policy
    from hub.validators import validate_packet

    lines: list[str] = []
    try:
        packet = parse_packet(receipt)
    except EnvelopeRefused as exc:
        return False, [f"not a receipt: {exc.reason.value} ({exc.reason.en})"]
    if not isinstance(packet, StatusPacket):
        return False, ["not a receipt: this is a document envelope, not a status packet"]
    checked_at = now or datetime.now(UTC)
    when = at or packet.timestamp or checked_at
    policy = load_policy(settings)
    crls = RevocationCache(settings).snapshot()
    report = validate_packet(packet, at=when, policy=policy,
                             directory=load_directory(settings), crls=crls)
    signer = report.signer
    who = signer.subject if signer is not None else "unknown signer"
    ok = report.accepted
    if not ok:
        lines.append(f"signature: NOT valid: {report.reason.value} — {report.reason.en}"
                     f" / {report.reason.vi}")
    elif at is None and (doubt := _key_doubt(packet, policy, crls, checked_at)) is not None:
        # The Timestamp is the signer's word: a compromised key must not date its way past
        # its revocation.
        ok = False
        revoked = Reason.CERT_REVOKED
        lines.append(f"signature: NOT valid: {revoked.value} — {revoked.en} / {revoked.vi}:"
                     f" {doubt}; a revocation for this reason counts whatever date the receipt"
                     f" states (its Timestamp is the signer's own word)")
    else:
        lines.append(f"signature: valid, made by {who} for {packet.sender.organ_id}")
    lines.append(f"  judged at:               {when.isoformat()} ("
                 + ("the time given by the auditor" if at is not None else
                    "the receipt's own Timestamp; revocations for key compromise counted at"
                    " any date") + ")")
    evidence = read_evidence(receipt)
    if evidence is None:
        lines.append("evidence: none (a plain status packet, not a hub receipt)")
    else:
        what = {"received": "received in its queue", "accepted": "accepted by the hub",
                "rejected": f"rejected by the hub ({evidence.reason})",
                "countersigned": "forwarded a status about"}.get(str(evidence.kind),
                                                                  str(evidence.kind))
        lines.append(
            f"proves: {packet.sender.organ_id} {what} document {packet.response_for.document_id}"
            f" from {packet.response_for.organ_id}, at {evidence.at}")
        lines.append(f"  envelope sha-256:        {evidence.envelope_digest}")
        forged = issuer_mismatch(evidence, packet.sender.organ_id, settings.hub.operator_organ_id)
        if forged is not None:
            ok = False
            lines.append(f"issuer: NOT the hub's evidence: {forged}")
        if evidence.signature_value_digest:
            lines.append(f"  SignatureValue sha-256:  {evidence.signature_value_digest}")
    if envelope is not None:
        if check_binding(receipt, envelope):
            lines.append("binding: the receipt is bound to this exact envelope")
        else:
            ok = False
            lines.append("binding: MISMATCH — the receipt is not about these bytes")
    return ok, lines


def verify_receipt_file(settings: Settings, receipt: Path,
                        envelope: Path | None) -> tuple[bool, list[str]]:
    return verify_receipt(settings, receipt.read_bytes(),
                          envelope.read_bytes() if envelope is not None else None)
