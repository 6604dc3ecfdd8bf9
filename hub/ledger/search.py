"""Read-only look-ups for people browsing the ledger (the web console), fast on large ledgers.

:meth:`hub.ledger.store.Ledger.documents` answers the CLI and the pipeline in chain order; a
person searching wants the newest first, a page at a time, and by recipient as well as by
sender. Every query here is bounded (``limit``) and walks an index: ``seq`` for paging (keyset,
never ``OFFSET``), ``received_at`` for a period, ``sender`` or ``(sender, document_id)``, and
``ledger_deliveries.organ_id`` for a recipient. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from hub.ledger.models import Checkpoint, Delivery, Document, Head
from hub.ledger.records import REFUSED, StoredDocument
from hub.ledger.store import _DOC_COLUMNS, Ledger, _stored_document

__all__ = ["OUTCOMES", "CheckpointInfo", "latest_checkpoint", "search_documents"]

OUTCOMES = {
    "accepted": ("envelope",),
    "refused": (REFUSED,),
    "status": ("status",),
    "receipt": ("receipt",),
}
"""What a person calls the outcome of a packet → the ledger document kinds it means. Without an
outcome, a search returns envelopes and refused packets (what agencies sent)."""


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """The latest signed checkpoint and how far the chain has grown past it."""

    seq: int
    at: datetime
    signed: bool
    head_seq: int
    """Position of the chain head now (rows after ``seq`` are not covered yet)."""


def search_documents(
    ledger: Ledger,
    *,
    document_id: str | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[StoredDocument]:
    """Documents matching every given condition, newest first (``seq`` descending).

    ``before_seq`` continues a previous page (the last row's ``seq``); ``since`` is inclusive,
    ``until`` exclusive; ``outcome`` is a key of :data:`OUTCOMES`."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    kinds = OUTCOMES[outcome] if outcome else ("envelope", REFUSED)
    stmt = select(*_DOC_COLUMNS).where(Document.kind.in_(kinds))
    if document_id:
        stmt = stmt.where(Document.document_id == document_id)
        if not sender:
            # QCVN 102: a DocumentId starts with its sender's code ("{OrganId},{date},{n}"):
            # searching under that sender (or none, a refused packet's unknown sender) walks
            # the (sender, document_id) index instead of the whole table.
            stmt = stmt.where(Document.sender.in_([document_id.split(",", 1)[0], ""]))
    if sender:
        stmt = stmt.where(Document.sender == sender)
    if recipient:
        stmt = stmt.where(Document.digest.in_(
            select(Delivery.digest).where(Delivery.organ_id == recipient)))
    if since is not None:
        stmt = stmt.where(Document.received_at >= since)
    if until is not None:
        stmt = stmt.where(Document.received_at < until)
    if before_seq is not None:
        stmt = stmt.where(Document.seq < before_seq)
    stmt = stmt.order_by(Document.seq.desc()).limit(max(1, min(limit, 1000)))
    with ledger._reading() as conn:
        return [_stored_document(r) for r in conn.execute(stmt)]


def related_documents(ledger: Ledger, digest: str) -> list[StoredDocument]:
    """Every record of ``digest`` (accepted and refused) and every packet linking to it
    (statuses, receipts), in chain order."""
    stmt = select(*_DOC_COLUMNS).where(
        (Document.digest == digest) | (Document.links_to == digest)).order_by(Document.seq)
    with ledger._reading() as conn:
        return [_stored_document(r) for r in conn.execute(stmt)]


def latest_checkpoint(ledger: Ledger) -> CheckpointInfo | None:
    """The newest checkpoint (signed or not) and the head's position, or None before any."""
    with ledger._reading() as conn:
        row = conn.execute(select(Checkpoint.seq, Checkpoint.at, Checkpoint.signature)
                           .order_by(Checkpoint.seq.desc()).limit(1)).first()
        head = conn.scalar(select(Head.seq).where(Head.id == 1))
    if row is None:
        return None
    return CheckpointInfo(int(row.seq), row.at, row.signature is not None, int(head or 0))


def document_count(ledger: Ledger) -> int:
    """How many documents the ledger holds (all kinds)."""
    with ledger._reading() as conn:
        return int(conn.scalar(select(func.count()).select_from(Document)) or 0)
