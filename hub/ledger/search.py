"""Read-only look-ups for people browsing the ledger (the web console), fast on large ledgers.

:meth:`hub.ledger.store.Ledger.documents` answers the CLI and the pipeline in chain order; a
person searching wants the newest first, a page at a time, and by recipient as well as by
sender. Every query here is bounded (``limit``) and walks an index: ``seq`` for paging (keyset,
never ``OFFSET``), ``received_at`` for a period, ``sender`` or ``(sender, document_id)``, and
``ledger_deliveries.organ_id`` for a recipient. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from hub.directory import Directory
from hub.ledger.models import Checkpoint, Delivery, Document, Head
from hub.ledger.records import REFUSED, StoredDocument
from hub.ledger.store import _DOC_COLUMNS, Ledger, _stored_document

__all__ = ["OUTCOMES", "CheckpointInfo", "latest_checkpoint", "organ_codes", "search_documents"]

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


def organ_codes(
    directory: Directory,
    code: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, ...]:
    """Every code under which the ledger may hold the documents of the body ``code`` names.

    The ledger records a recipient under the primary code of the body the directory names
    (``000.00.02.H27``) and a sender as its envelope writes it (either code of the body), so a
    search by one code must look for all of them. ``code`` may be any code of the body, at any
    time the body held it: the answer is every code of every directory entry holding it, the
    primary code first; with ``since`` / ``until``, only the entries whose period meets that
    one (a code that passed from one body to another names both bodies otherwise). A code the
    directory does not know is searched as written."""
    holders = [e for e in directory.entries if code.strip() in e.codes
               and (until is None or e.valid_from is None or e.valid_from < until)
               and (since is None or e.valid_to is None or since < e.valid_to)]
    found = dict.fromkeys(c for e in holders for c in e.codes)
    return tuple(found) or (code,)


def search_documents(
    ledger: Ledger,
    *,
    document_id: str | None = None,
    sender: str | Sequence[str] | None = None,
    recipient: str | Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[StoredDocument]:
    """Documents matching every given condition, newest first (``seq`` descending).

    ``before_seq`` continues a previous page (the last row's ``seq``); ``since`` is inclusive,
    ``until`` exclusive; ``outcome`` is a key of :data:`OUTCOMES`. ``sender`` and
    ``recipient`` may be several codes (one body's, :func:`organ_codes`): any of them matches."""
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
    senders = (sender,) if isinstance(sender, str) else tuple(sender or ())
    recipients = (recipient,) if isinstance(recipient, str) else tuple(recipient or ())
    if any(senders):
        stmt = stmt.where(Document.sender.in_([s for s in senders if s]))
    if any(recipients):
        stmt = stmt.where(Document.digest.in_(
            select(Delivery.digest).where(Delivery.organ_id.in_([r for r in recipients if r]))))
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
