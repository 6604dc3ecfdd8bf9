"""Values going into and coming out of the ledger (pure: importable without SQLAlchemy)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventKind(enum.StrEnum):
    """One state transition of a document; the value is stored and hashed: never change one."""

    RECEIVED = "received"
    """The hub took the packet off the inbound queue."""
    VALIDATED = "validated"
    """Format, signature and trust checks passed (the report is kept with the document)."""
    REJECTED = "rejected"
    """A check failed; ``reason`` is the :class:`hub.reasons.Reason` code."""
    ROUTED = "routed"
    """Published towards one recipient (``organ_id``)."""
    DELIVERED = "delivered"
    """The recipient's queue confirmed the message (publisher confirm)."""
    RECEIPT_ISSUED = "receipt_issued"
    """The hub sent its signed receipt to the sender."""
    STATUS_RECEIVED = "status_received"
    """A recipient reported a processing status (QCVN 102:2016 status packet)."""
    RECALLED = "recalled"
    """The sender recalled the document (revocation)."""
    DEAD_LETTERED = "dead_lettered"
    REPLAYED = "replayed"
    """An operator replayed a dead-lettered delivery."""
    DISCARDED = "discarded"
    """An operator discarded a dead-lettered delivery."""
    DUPLICATE = "duplicate"
    """The same bytes arrived again; ignored."""
    RETRY_SCHEDULED = "retry_scheduled"


DOCUMENT_KINDS = frozenset({"envelope", "status", "receipt"})


@dataclass(frozen=True)
class DocumentIn:
    """A packet to record, with its exact bytes (never re-serialized)."""

    sender: str
    document_id: str
    digest: str
    """SHA-256 hex of ``raw``."""
    kind: str
    """``envelope``, ``status`` or ``receipt``."""
    raw: bytes
    received_at: datetime
    code: str = ""
    subject_digest: str = ""
    """Digest of the subject: no document content in clear besides ``raw``."""
    recipients: tuple[str, ...] = ()
    report: Mapping[str, Any] | None = None
    """The validation report (``ValidationReport.to_dict()``)."""
    links_to: str | None = None
    """Digest of the original, for a status packet, receipt or recall."""


@dataclass(frozen=True)
class EventIn:
    """A state transition to append to the chain."""

    kind: EventKind
    message_id: str
    at: datetime
    digest: str | None = None
    """The document it concerns."""
    organ_id: str | None = None
    """The recipient or the reporter."""
    reason: str | None = None
    actor: str = "hub"
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocument:
    digest: str
    kind: str
    sender: str
    document_id: str
    code: str
    recipients: tuple[str, ...]
    received_at: datetime
    links_to: str | None
    size: int
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest, "kind": self.kind, "sender": self.sender,
            "document_id": self.document_id, "code": self.code,
            "recipients": list(self.recipients), "received_at": self.received_at.isoformat(),
            "links_to": self.links_to, "size": self.size, "seq": self.seq,
        }


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    kind: EventKind
    message_id: str
    at: datetime
    digest: str | None
    organ_id: str | None
    reason: str | None
    actor: str
    detail: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "kind": self.kind.value, "message_id": self.message_id,
            "at": self.at.isoformat(), "digest": self.digest, "organ_id": self.organ_id,
            "reason": self.reason, "actor": self.actor, "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class StoredDelivery:
    digest: str
    organ_id: str
    state: str
    updated_at: datetime


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a full chain check. ``ok`` is derived from the facts."""

    rows: int
    """Entries checked."""
    first_bad_row: int | None = None
    """Position (``seq``) of the first entry that fails, or None."""
    problem: str | None = None
    """What is wrong, in one sentence."""
    checkpoints: int = 0
    signed_checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "rows": self.rows, "first_bad_row": self.first_bad_row,
            "problem": self.problem, "checkpoints": self.checkpoints,
            "signed_checkpoints": self.signed_checkpoints,
        }
