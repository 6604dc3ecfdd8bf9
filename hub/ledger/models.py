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
``ledger_adoption`` is the adoption report's per-day rollup of the documents, derived like
``ledger_deliveries`` (migration r0005).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
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


class AdoptionDay(Base):
    """The adoption report's figures for one organization, UTC day and refusal reason: a
    rollup of ``ledger_documents`` (kinds ``envelope`` and ``refused``) that every ledger write
    keeps up to date in its own transaction (migration r0005). Derived and recomputable, like
    ``ledger_deliveries``: not chained; a restore rebuilds it and ``hub ledger verify`` compares
    it with a recomputation (:mod:`hub.ledger.adoption`)."""

    __tablename__ = "ledger_adoption"
    organ_id: Mapped[str] = mapped_column(Text, primary_key=True)
    """The sending organization, or ``account:<broker account>`` (``account:?``) for a refused
    packet that named none — as the report counts it."""
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    """``YYYY-MM-DD`` of ``received_at`` in UTC."""
    reason: Mapped[str] = mapped_column(Text, primary_key=True)
    """The refusal's reason code; ``""`` for accepted envelopes."""
    accepted: Mapped[int] = mapped_column(BigInteger)
    """Accepted envelopes (only on ``reason = ""``)."""
    refused: Mapped[int] = mapped_column(BigInteger)
    """Refused packets whose bytes were never accepted as an envelope."""
    signed_valid: Mapped[int] = mapped_column(BigInteger)
    """Accepted envelopes with valid specialized signatures, no interop waiver."""
    pdf_both: Mapped[int] = mapped_column(BigInteger)
    """Accepted envelopes whose main PDF carries a person's and the organization's signature."""


SCHEMA_REVISION = "r0005"
"""The migration this hub's schema is at (``alembic`` head; a test holds the two equal). A
read-only open compares the stored revision with it, without loading Alembic's scripts."""
VERSION_TABLE = "ledger_alembic_version"
"""Where Alembic records a database's revision."""

TABLES = ("ledger_head", "ledger_documents", "ledger_events", "ledger_deliveries",
          "ledger_checkpoints", "ledger_evidence_blobs", "ledger_outbox", "ledger_adoption")


# -- the province's certificate subscribers (migration r0004, issue 21) -------------------------
#
# Not chained: the registry is the office's own records (imported from its spreadsheet), kept in
# the ledger's database so the plan's figures join it with the signatures the hub saw. Keys are
# text made by the hub (no database sequences), so a backup restores them as they were.


class Subscriber(Base):
    """A certificate subscriber: a person (an official) or an organization (the seal)."""

    __tablename__ = "subscribers"
    identifier: Mapped[str] = mapped_column(Text, primary_key=True)
    """The identifier in the certificate subject's UID: a citizen id (``CCCD:…``) for a person,
    the organization's code for an organization."""
    kind: Mapped[str] = mapped_column(String(16))
    """``person`` or ``organization``."""
    name: Mapped[str] = mapped_column(Text)
    position: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """``head``, ``deputy``, ``division_head``, ``specialist`` or ``clerk`` (persons only)."""
    organ_id: Mapped[str] = mapped_column(Text, index=True)
    """The organization the subscriber belongs to (its code as the directory lists it)."""
    email: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SubscriberCertificate(Base):
    """A certificate (or a request for one) of a subscriber, with its token status."""

    __tablename__ = "subscriber_certificates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    identifier: Mapped[str] = mapped_column(Text, index=True)
    serial: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Lower-case hex without leading zeros (as validation reports write it); NULL for a request
    not issued yet."""
    issuer: Mapped[str] = mapped_column(Text)
    """The issuing CA as the office wrote it (its name, or an RFC 4514 distinguished name)."""
    issuer_key: Mapped[str] = mapped_column(Text)
    """The issuing CA's common name, case-folded and with spaces collapsed: what is matched."""
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The last day the certificate is valid."""
    status: Mapped[str] = mapped_column(String(16))
    """``requested``, ``issued``, ``handed_over``, ``revoked`` or ``expired``."""
    status_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The day the status took effect (the hand-over, the revocation), when the office knows."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("issuer_key", "serial", name="uq_subscriber_certificates_issuer_serial"),
    )


class SubscriberHistory(Base):
    """One change to the registry (a subscriber or certificate created, a field changed)."""

    __tablename__ = "subscriber_history"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """Time-ordered: sorting by id gives the order the changes were made in."""
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    identifier: Mapped[str] = mapped_column(Text, index=True)
    certificate_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    field: Mapped[str] = mapped_column(String(32))
    """``created`` or the name of the changed column (``position``, ``status`` ...)."""
    old: Mapped[str | None] = mapped_column(Text, nullable=True)
    new: Mapped[str | None] = mapped_column(Text, nullable=True)
    effective: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The day the change took effect, when the office gave one (a status date)."""
    source: Mapped[str] = mapped_column(Text)
    """Where the change came from: the imported file's name and SHA-256."""


class SubscriberObservation(Base):
    """A signature the hub saw on an accepted envelope (derived from the stored validation
    report; recomputable, like ``ledger_deliveries``)."""

    __tablename__ = "subscriber_observations"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    """``seal`` (the envelope's XML signature), ``person`` or ``organization`` (the main PDF)."""
    seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    month: Mapped[str] = mapped_column(String(7))
    """``YYYY-MM`` of ``received_at`` (UTC, as the adoption report counts)."""
    sender: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(Text)
    issuer_key: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    uid: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        # Covers the figures' GROUP BY (certificate, role, sender, month; first and last seen):
        # read in index order, no sort and no table access.
        Index("ix_subscriber_observations_certificate", "issuer_key", "serial", "role", "sender",
              "month", "received_at"),
    )


class SubscriberScan(Base):
    """How far the observations were read from the ledger (single row, ``id`` = 1)."""

    __tablename__ = "subscriber_scan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    """The last document position whose signatures are in ``subscriber_observations``."""


SUBSCRIBER_TABLES = ("subscribers", "subscriber_certificates", "subscriber_history",
                     "subscriber_observations", "subscriber_scan")
