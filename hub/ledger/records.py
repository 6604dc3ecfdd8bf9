"""Values going into and coming out of the ledger (pure: importable without SQLAlchemy)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the auditors' commands import this without the parser
    from hub.edxml.model import Envelope, StatusPacket


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
    AXIS_SENT = "axis_sent"
    """The national axis accepted the packet for ``organ_id`` (``detail``: the axis' document
    id, its answer ``accepted`` / ``duplicate`` / ``already_sent``, the message type)."""
    AXIS_SKIPPED = "axis_skipped"
    """A gateway message the connector settled without sending it (``detail.why``: hub
    evidence kept in the ledger, or a document that came from the axis, which fans out itself)."""
    AXIS_RECEIVED = "axis_received"
    """Fetched from the national axis and handed to the intake (publisher-confirmed)."""
    AXIS_ACKNOWLEDGED = "axis_acknowledged"
    """The national axis was told the hub has the document (``updateStatus``)."""
    OPERATOR_ACTION = "operator_action"
    """A person acted through an operator surface (the web console): signed in or was refused,
    signed out, exported evidence, downloaded a packet's bytes, exported a report, changed an
    account, or was refused an action their role does not allow. ``actor`` is the person
    (``console`` when the sign-in name is unknown), ``detail["action"]`` what was done."""


ACCEPTED_KINDS = frozenset({"envelope", "status", "receipt"})
"""Kinds of packets the hub took in (the pipeline's duplicate checks see only these)."""
REFUSED = "refused"
"""Kind of a packet the hub refused: recorded with its :class:`Refusal`, never routed."""
DOCUMENT_KINDS = ACCEPTED_KINDS | {REFUSED}


class LedgerOpenError(Exception):
    """There is no usable ledger where a read-only command looked (one line for the user)."""


class LedgerRowRejected(Exception):
    """The database refused some rows of a batch for what they hold (not because it is down).

    Raised by :meth:`hub.ledger.Ledger.write` after it located the offending rows: nothing of the
    batch was written. ``documents`` and ``events`` are the indices (into the ``documents`` and
    ``events`` arguments) of the rows that cannot be stored on their own; ``rows`` the rows
    themselves. The consumer re-plans the batch without the deliveries those rows belong to,
    dead-letters those, and writes again. When no single row is at fault (the batch as a whole
    fails), both index tuples are empty: write the deliveries one by one.

    ``detail`` names the error class and database code, never the values (they may be document
    content). Not a :class:`hub.errors.TransientError`: retrying the same rows fails the same way.
    """

    def __init__(
        self,
        documents: tuple[int, ...],
        events: tuple[int, ...],
        rows: tuple[DocumentIn | EventIn, ...],
        detail: str,
    ) -> None:
        where = ", ".join([*(f"document #{i}" for i in documents),
                           *(f"event #{i}" for i in events)]) or "the batch as a whole"
        super().__init__(f"the ledger refused {where}: {detail}")
        self.documents = documents
        self.events = events
        self.rows = rows
        self.detail = detail

    @property
    def digests(self) -> frozenset[str]:
        """Digests of the packets the refused rows concern (documents and events alike)."""
        return frozenset(r.digest for r in self.rows if r.digest is not None)

    @property
    def message_ids(self) -> frozenset[str]:
        """Message ids of the refused events."""
        return frozenset(r.message_id for r in self.rows if isinstance(r, EventIn))


class ReceiptConflict(Exception):
    """Another consumer recorded a receipt under one of the batch's message ids with other
    bytes first (the same packet published twice and planned by two consumers at once).

    Raised by :meth:`hub.ledger.Ledger.write` before anything is written; none of the batch's
    receipts has been published (they are published after the commit). The consumer plans the
    batch again: the plan then finds the recorded receipts and publishes those bytes."""

    def __init__(self, message_ids: tuple[str, ...]) -> None:
        super().__init__(f"{len(message_ids)} receipts already recorded with other bytes")
        self.message_ids = message_ids


@dataclass(frozen=True)
class Refusal:
    """Why and from whom a refused packet came (the pipeline's knowledge at refusal time).

    A refused packet is a ledger document of kind ``refused``: its ``sender`` is the publishing
    organization when known ("" when neither the packet nor the broker account names one)."""

    reason: str
    """The final :class:`hub.reasons.Reason` code."""
    account: str | None
    """The broker account (AMQP ``user_id``) that published it, as received; None when absent."""


@dataclass(frozen=True)
class RevocationEvidence:
    """Revocation data a validation relied on (Decree 130/2018: status at signing/receipt time).

    Stored content-addressed (``ledger_evidence_blobs``) and referenced from the document's
    chained entry, so an evidence bundle carries the exact bytes used."""

    kind: str
    """``crl`` (DER CertificateList) or ``ocsp`` (DER OCSPResponse)."""
    der: bytes
    at: datetime
    """When the hub obtained it (CRL fetch, OCSP answer received)."""
    source: str = ""
    """Where from: the URL, or ``configured`` for a CRL from the trust settings."""
    certificate: bytes | None = None
    """DER of the certificate whose status it gives (the signer, or a CA on the path)."""
    issuer: bytes | None = None
    """DER of that certificate's issuer (needed to check an OCSP answer by hand)."""


_NEW_DICT: Any = object()
"""Stands for "no ``detail`` given" in :meth:`EventIn.__init__` (a fresh ``{}`` then)."""


@dataclass(frozen=True, init=False)
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
    refusal: Refusal | None = None
    """Required for (and only for) kind ``refused``."""
    revocation: tuple[RevocationEvidence, ...] = ()
    """The CRLs / OCSP answers the validation used (bundled with the document's evidence)."""

    def __init__(self, sender: str, document_id: str, digest: str, kind: str, raw: bytes,
                 received_at: datetime, code: str = "", subject_digest: str = "",
                 recipients: tuple[str, ...] = (), report: Mapping[str, Any] | None = None,
                 links_to: str | None = None, refusal: Refusal | None = None,
                 revocation: tuple[RevocationEvidence, ...] = ()) -> None:
        # What the generated __init__ does (the same parameters and defaults), in one update
        # of the instance dict instead of one object.__setattr__ per field: the pipeline
        # builds a few of these per envelope (tests/unit/ledger/test_records.py compares).
        self.__dict__.update(
            sender=sender, document_id=document_id, digest=digest, kind=kind, raw=raw,
            received_at=received_at, code=code, subject_digest=subject_digest,
            recipients=recipients, report=report, links_to=links_to, refusal=refusal,
            revocation=revocation)


_HASHED = "_digest_is_of_raw"
"""Set (outside the fields) on a document built by :func:`of_packet`."""


def of_packet(document: DocumentIn, packet: Envelope | StatusPacket) -> DocumentIn:
    """``document``, marked as holding ``packet``'s very bytes and digest.

    The parser's packet hashed those bytes when it was built (``hub.edxml.model``: frozen, the
    digest computed from ``raw`` in ``__post_init__``), so the ledger need not hash them again
    to check ``digest`` (0.6 ms for a 1 MB envelope). Anything else is checked by hashing, as
    before: a document built by hand, or changed by ``dataclasses.replace`` (a new instance,
    unmarked). Only immutable ``bytes`` are marked: bytes that could change after the parser
    hashed them are hashed again."""
    if (type(document.raw) is not bytes or document.raw is not packet.raw
            or document.digest != packet.digest):
        raise ValueError("DocumentIn does not hold the packet's bytes and digest")
    document.__dict__[_HASHED] = True
    return document


def digest_is_of_raw(document: DocumentIn) -> bool:
    """True when ``document`` came from :func:`of_packet` (its digest is that of its bytes)."""
    return _HASHED in document.__dict__


@dataclass(frozen=True)
class IssuedReceipt:
    """A signed receipt the hub published (or is about to), under its one message id.

    The intake publishes the receipts of a batch only after the commit that records them as
    documents (and a ``receipt_issued`` event). After a crash the pipeline asks for the receipts
    already issued about the packets it plans (:meth:`hub.ledger.Ledger.issued`) and publishes
    those bytes again instead of signing anew: one message id, one byte string. (Hubs before
    that order staged them in the outbox first, :meth:`hub.ledger.Ledger.stage`; such rows are
    read and reused the same way.)"""

    message_id: str
    """The outgoing AMQP message id."""
    about: str
    """SHA-256 hex of the received packet the receipt is about."""
    kind: str
    """``accepted``, ``rejected``, ``received`` or ``countersigned``."""
    issuer: str
    """The organization that signed it (the operator, or the recipient for ``received``)."""
    reason: str | None
    """The reason code of a ``rejected`` receipt."""
    body: bytes
    """The exact bytes published."""
    at: datetime
    """The time the plan that signed it used (the receipt's own time)."""
    recipient: str = ""
    """The organization it is published to."""
    staged: bool = True
    """True: from the outbox (staged by an older hub, its batch not committed); False:
    recorded in the ledger (a document of kind ``receipt``)."""


@dataclass(frozen=True, init=False)
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

    def __init__(self, kind: EventKind, message_id: str, at: datetime, digest: str | None = None,
                 organ_id: str | None = None, reason: str | None = None, actor: str = "hub",
                 detail: Mapping[str, Any] = _NEW_DICT) -> None:
        # As DocumentIn's: the generated __init__'s work in one update (five per envelope).
        self.__dict__.update(
            kind=kind, message_id=message_id, at=at, digest=digest, organ_id=organ_id,
            reason=reason, actor=actor, detail={} if detail is _NEW_DICT else detail)


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
    refusal: Mapping[str, Any] | None = None
    """For kind ``refused``: ``reason``, ``account``, ``kept`` (bytes stored) and ``cap``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest, "kind": self.kind, "sender": self.sender,
            "document_id": self.document_id, "code": self.code,
            "recipients": list(self.recipients), "received_at": self.received_at.isoformat(),
            "links_to": self.links_to, "size": self.size, "seq": self.seq,
            "refusal": dict(self.refusal) if self.refusal is not None else None,
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
    signers: tuple[str, ...] = ()
    """SHA-256 fingerprints of the certificates whose signatures were accepted, in order."""
    signers_trusted: bool = False
    """Signatures were checked against the operator's trust anchors (CA roots or pinned
    certificates), not merely against the certificates stored beside them."""

    @property
    def ok(self) -> bool:
        """The chain is intact and every checked signature verified. Whether the signers are
        the operator's is :attr:`signers_trusted` (``hub ledger verify`` requires both)."""
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "rows": self.rows, "first_bad_row": self.first_bad_row,
            "problem": self.problem, "checkpoints": self.checkpoints,
            "signed_checkpoints": self.signed_checkpoints, "signers": list(self.signers),
            "signers_trusted": self.signers_trusted,
        }
