"""``hub receipt verify``: what a receipt proves, checked offline.

A hub receipt is an EDXML status packet signed by an organization (the recipient for ``01``
"đã đến", the hub operator for accepted/rejected/countersigned) carrying ``hub:HubEvidence``:
the SHA-256 of the exact envelope bytes received and of the sender's ``SignatureValue``. It
proves that the signing organization saw *those* bytes at that time. The check:

1. the receipt parses through the hardened entry point;
2. its XML signature verifies under the configured specialized roots, the certificate is
   valid and not revoked, and it belongs to the reporting organization (same checks as for
   envelopes);
3. with ``--envelope``, the evidence digests match the original envelope byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hub.config import Settings


def verify_receipt(settings: Settings, receipt: bytes, envelope: bytes | None = None,
                   *, at: datetime | None = None) -> tuple[bool, list[str]]:
    from hub.app import load_directory
    from hub.edxml import EnvelopeRefused, parse_packet
    from hub.edxml.model import StatusPacket
    from hub.receipts.content import check_binding, read_evidence
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
    when = at or packet.timestamp or datetime.now(UTC)
    report = validate_packet(packet, at=when, policy=load_policy(settings),
                             directory=load_directory(settings),
                             crls=RevocationCache(settings).snapshot())
    signer = report.signer
    who = signer.subject if signer is not None else "unknown signer"
    ok = report.accepted
    if ok:
        lines.append(f"signature: valid, made by {who} for {packet.sender.organ_id}")
    else:
        lines.append(f"signature: NOT valid: {report.reason.value} — {report.reason.en}"
                     f" / {report.reason.vi}")
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
