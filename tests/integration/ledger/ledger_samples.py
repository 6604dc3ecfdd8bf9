"""Sample data and the test operator key for the ledger suite (generated, never real keys)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from hub.ledger import REFUSED, DocumentIn, EventIn, EventKind, Refusal


@dataclass(frozen=True)
class OperatorKey:
    """The hub operator organization's test key and certificate (generated, never real)."""

    key: rsa.RSAPrivateKey
    cert_pem: bytes

    def sign(self, payload: bytes) -> bytes:
        return self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())

    def check(self, payload: bytes, signature: bytes) -> bool:
        from hub.ledger.verify import signature_check_from_cert

        return signature_check_from_cert(self.cert_pem)(payload, signature)


def make_operator_key(name: str = "000.00.01.H27") -> OperatorKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Văn phòng UBND tỉnh Hà Tĩnh"),
        x509.NameAttribute(NameOID.USER_ID, name),
        x509.NameAttribute(NameOID.COMMON_NAME, "Hub operator (test)"),
    ])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return OperatorKey(key, cert.public_bytes(serialization.Encoding.PEM))


T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def envelope_bytes(n: int, size: int = 0) -> bytes:
    """Stand-in packet bytes (the ledger stores bytes; it never parses them)."""
    body = f"<edXMLEnvelope n='{n}'>" + "x" * size + "</edXMLEnvelope>"
    return body.encode("utf-8")


def sample_batch(
    start: int, count: int, *, sender: str = "000.00.00.H27", at: datetime = T0
) -> tuple[list[DocumentIn], list[EventIn]]:
    """``count`` envelopes to two recipients, each received, validated, routed and delivered."""
    documents: list[DocumentIn] = []
    events: list[EventIn] = []
    for n in range(start, start + count):
        raw = envelope_bytes(n)
        digest = hashlib.sha256(raw).hexdigest()
        when = at + timedelta(minutes=n)
        recipients = ("000.01.01.H27", "000.02.01.H27")
        documents.append(DocumentIn(
            sender=sender, document_id=f"{sender},2024/03/01,{n}", digest=digest,
            kind="envelope", raw=raw, received_at=when, code=f"{n}/UBND-VP",
            recipients=recipients, report={"accepted": True, "reason": "OK"}))
        events.append(EventIn(EventKind.RECEIVED, f"m{n}", when, digest, organ_id=sender))
        events.append(EventIn(EventKind.VALIDATED, f"m{n}", when, digest, reason="OK"))
        for organ in recipients:
            events.append(EventIn(EventKind.DELIVERED, f"m{n}", when, digest, organ_id=organ,
                                  detail={"queue": f"org.{organ}"}))
    return documents, events


def refused_packet(
    raw: bytes,
    reason: str,
    *,
    organization: str | None,
    account: str | None,
    at: datetime = T0,
    document_id: str = "",
    code: str = "",
    report: dict[str, object] | None = None,
) -> tuple[DocumentIn, list[EventIn]]:
    """A refused packet in the shape the pipeline writes it (issue 17 item 1): a document of
    kind ``refused`` (organization or "" when unknown, the broker account, the reason, the
    exact bytes) and its REJECTED and DEAD_LETTERED events."""
    digest = hashlib.sha256(raw).hexdigest()
    document = DocumentIn(
        sender=organization or "", document_id=document_id, digest=digest, kind=REFUSED,
        raw=raw, received_at=at, code=code, report=report,
        refusal=Refusal(reason=reason, account=account))
    mid = f"m-{digest[:12]}"
    events = [
        EventIn(EventKind.REJECTED, mid, at, digest, organ_id=organization, reason=reason,
                detail={"detail": "sample"}),
        EventIn(EventKind.DEAD_LETTERED, mid, at, digest, organ_id=organization, reason=reason,
                detail={"queue": "hub.ops.dlq", "attempts": 1}),
    ]
    return document, events
