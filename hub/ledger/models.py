"""The ledger's tables (SQLAlchemy 2.0 typed models); Alembic migrations create them.

``ledger_documents`` and ``ledger_events`` are the chained, append-only tables: each row has a
position ``seq`` in one global sequence, its ``entry_hash`` and ``chain_hash`` (see
:mod:`hub.ledger.chain`). ``ledger_head`` is a single row holding the chain head; a writer locks
it (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) so concurrent consumer
processes append one after the other. ``ledger_deliveries`` is a *derived* per-recipient state,
kept for queries; it is not part of the chain and can be recomputed from the events.

Column types cannot truncate (migration r0002): every text that comes from a packet or a broker
property is ``Text``; only values the hub makes itself (hex digests, kinds, states) have a
length. A document is identified by ``(digest, kind)``: the same bytes can be recorded once as
refused and once as accepted (an operator replay after a fix), never twice as either.
``ledger_evidence_blobs`` holds the revocation data (CRLs, OCSP answers) and certificates a
validation used, content-addressed; chained document entries reference them by digest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes stored as naive UTC (SQLite keeps no offset; PostgreSQL alike)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("ledger timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Head(Base):
    """The single chain-head row (``id`` = 1), locked by every appending transaction."""

    __tablename__ = "ledger_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    """Position of the last entry (0 when empty)."""
    chain_hash: Mapped[str] = mapped_column(String(64))
    checkpoint_seq: Mapped[int] = mapped_column(BigInteger)
    """Position covered by the latest checkpoint."""
    checkpoint_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Document(Base):
    """A packet the hub received (envelope, status or receipt), with its exact bytes."""

    __tablename__ = "ledger_documents"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 hex of the exact bytes: with ``kind``, the document's identity."""
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    """``envelope``, ``status``, ``receipt`` or ``refused``."""
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(Text, index=True)
    """The sending organization ("" for a refused packet whose organization is unknown)."""
    document_id: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text, index=True)
    """The document's number/symbol (Code), for auditors' look-ups."""
    subject_digest: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[str] = mapped_column(Text)
    """Canonical JSON list of recipient organ ids."""
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    links_to: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The exact bytes, or NULL when they live in the content-addressed blob store."""
    report: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The validation report, canonical JSON text."""
    refusal: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Kind ``refused`` only: canonical JSON ``{"account", "cap", "kept", "reason"}`` (chained)."""
    revocation: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Canonical JSON list of the revocation data the validation used (chained; the bytes are
    in ``ledger_evidence_blobs``), or NULL."""

    __table_args__ = (Index("ix_ledger_documents_sender_document_id", "sender", "document_id"),)


class Event(Base):
    """One state transition, appended once and never updated."""

    __tablename__ = "ledger_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    message_id: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    organ_id: Mapped[str | None] = mapped_column(Text, nullable=True, index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    """Canonical JSON object text."""


class Delivery(Base):
    """Derived state of one document for one recipient (latest event kind)."""

    __tablename__ = "ledger_deliveries"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    organ_id: Mapped[str] = mapped_column(Text, primary_key=True, index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class Checkpoint(Base):
    """A signed statement of the chain head by the hub operator organization."""

    __tablename__ = "ledger_checkpoints"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    head: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """Signature over :func:`hub.ledger.chain.checkpoint_payload`; NULL when no signer is set."""
    cert_pem: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The signer's certificate, then (from r0002) the untrusted CAs of its path, PEM. Never
    trusted for being here: a verifier chains it to the operator's CA roots."""


class EvidenceBlob(Base):
    """A CRL, OCSP answer or certificate a validation used, named by the SHA-256 of its DER."""

    __tablename__ = "ledger_evidence_blobs"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``crl``, ``ocsp`` or ``cert``."""
    data: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    kept: Mapped[bool] = mapped_column(Boolean, default=True)
    """Always true today; room for a retention policy that drops old bytes (the digest stays)."""


class OutboxRow(Base):
    """A signed receipt as it is about to be published, before its batch's ledger commit.

    Written in a transaction of its own before the batch's first publish; deleted by the
    batch's commit (same transaction as its documents and events). Not chained: see migration
    r0003 and :meth:`hub.ledger.Ledger.stage`."""

    __tablename__ = "ledger_outbox"
    message_id: Mapped[str] = mapped_column(Text, primary_key=True)
    """The outgoing AMQP message id (``{about}:{kind}:{issuer}``)."""
    about: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 hex of the received packet the receipt is about."""
    kind: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    recipient: Mapped[str] = mapped_column(Text)
    """The organization it is published to."""
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The exact bytes published."""
    body_digest: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """The time the plan used (the receipt's own time)."""


TABLES = ("ledger_head", "ledger_documents", "ledger_events", "ledger_deliveries",
          "ledger_checkpoints", "ledger_evidence_blobs", "ledger_outbox")
