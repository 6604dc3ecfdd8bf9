"""The ledger: append documents and events to the hash chain, read them back, verify.

One :meth:`Ledger.write` is one database transaction: the pipeline hands it a group-commit
batch (documents idempotent by digest, then events) and acknowledges its messages only after
it returned. Appends are serialized on the single ``ledger_head`` row so several consumer
processes keep one consistent chain (see :mod:`hub.ledger.models`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    exc,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from hub.errors import TransientError
from hub.ledger import chain
from hub.ledger.blobs import BlobStore
from hub.ledger.migrate import upgrade
from hub.ledger.models import Checkpoint, Delivery, Document, Event, Head
from hub.ledger.records import (
    DOCUMENT_KINDS,
    DocumentIn,
    EventIn,
    EventKind,
    StoredDelivery,
    StoredDocument,
    StoredEvent,
    VerifyResult,
)
from hub.reasons import Reason

Signer = Callable[[bytes], bytes]
SignatureCheck = Callable[[bytes, bytes], bool]
Progress = Callable[[int, int], None]

# Event kinds that move one recipient's delivery state (the others concern the whole document).
DELIVERY_KINDS = frozenset({
    EventKind.ROUTED, EventKind.DELIVERED, EventKind.STATUS_RECEIVED, EventKind.RECALLED,
    EventKind.DEAD_LETTERED, EventKind.REPLAYED, EventKind.DISCARDED, EventKind.RETRY_SCHEDULED,
})

_WRITE = "hub_ledger_write"


def _install_sqlite_pragmas(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives a power cut (the pipeline acks after commit).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front: the chain head it reads stays the head.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class _HeadState:
    seq: int
    chain_hash: str
    checkpoint_seq: int
    checkpoint_at: datetime | None


def _unavailable(error: Exception) -> TransientError:
    return TransientError(Reason.LEDGER_UNAVAILABLE, type(error).__name__)


class Ledger:
    """The tamper-evident delivery ledger on SQLite or PostgreSQL."""

    def __init__(
        self,
        engine: Engine,
        *,
        blobs: BlobStore | None,
        blob_threshold: int,
        checkpoint_every: int,
        checkpoint_interval_s: float | None,
        checkpoint_signer: Signer | None,
        checkpoint_cert_pem: bytes | None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.blob_threshold = blob_threshold
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self._signer = checkpoint_signer
        self._cert_pem = checkpoint_cert_pem
        self._is_pg = engine.dialect.name == "postgresql"

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        *,
        blob_dir: Path | None = None,
        blob_threshold: int = 1_048_576,
        checkpoint_every: int = 1000,
        checkpoint_signer: Signer | None = None,
        checkpoint_cert_pem: bytes | None = None,
        checkpoint_interval_s: float | None = None,
        sqlite_synchronous: str = "FULL",
        sqlite_busy_timeout_ms: int = 5000,
    ) -> Ledger:
        """Connect, create or migrate the schema (``alembic upgrade head``) and return a ledger.

        SQLite runs in WAL mode with ``synchronous=FULL`` unless told otherwise.
        """
        if sqlite_synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError("sqlite_synchronous must be FULL, NORMAL or EXTRA")
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                raise ValueError("the ledger needs a SQLite file, not an in-memory database")
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": sqlite_busy_timeout_ms / 1000}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            _install_sqlite_pragmas(engine, sqlite_synchronous, sqlite_busy_timeout_ms)
        try:
            upgrade(engine)
        except (exc.OperationalError, exc.InterfaceError) as error:
            engine.dispose()
            raise _unavailable(error) from error
        return cls(
            engine,
            blobs=BlobStore(blob_dir) if blob_dir is not None else None,
            blob_threshold=blob_threshold,
            checkpoint_every=checkpoint_every,
            checkpoint_interval_s=checkpoint_interval_s,
            checkpoint_signer=checkpoint_signer,
            checkpoint_cert_pem=checkpoint_cert_pem,
        )

    @property
    def can_sign(self) -> bool:
        """True when checkpoints are signed (an operator key was given)."""
        return self._signer is not None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _appending(self) -> Iterator[tuple[Connection, _HeadState]]:
        """A write transaction holding the chain-head lock; yields the connection and head."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    stmt = select(Head.seq, Head.chain_hash, Head.checkpoint_seq,
                                  Head.checkpoint_at).where(Head.id == 1)
                    if self._is_pg:
                        stmt = stmt.with_for_update()
                    row = conn.execute(stmt).one()
                    head = _HeadState(int(row.seq), row.chain_hash, int(row.checkpoint_seq),
                                      row.checkpoint_at)
                    yield conn, head
                    conn.execute(
                        update(Head).where(Head.id == 1).values(
                            seq=head.seq, chain_hash=head.chain_hash,
                            checkpoint_seq=head.checkpoint_seq, checkpoint_at=head.checkpoint_at)
                    )
        except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
            raise _unavailable(error) from error
        except exc.DBAPIError as error:
            if error.connection_invalidated:
                raise _unavailable(error) from error
            raise

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
            raise _unavailable(error) from error

    # -- writing -----------------------------------------------------------------------------

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn]) -> None:
        """Append ``documents`` (skipping digests already stored) then ``events``, in one
        transaction. Raises :class:`TransientError` (``LEDGER_UNAVAILABLE``) when the database
        is unreachable or locked for too long."""
        if not documents and not events:
            return
        prepared_docs = [self._prepare_document(d) for d in documents]
        prepared_events = [_prepare_event(e) for e in events]
        with self._appending() as (conn, head):
            wanted = [p["digest"] for p in prepared_docs]
            existing: set[str] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                existing.update(conn.scalars(select(Document.digest).where(
                    Document.digest.in_(chunk))))
            seq, link = head.seq, head.chain_hash
            doc_rows: list[dict[str, Any]] = []
            delivery_rows: list[dict[str, Any]] = []
            for p in prepared_docs:
                if p["digest"] in existing:
                    continue
                existing.add(p["digest"])
                seq += 1
                entry = chain.document_entry(
                    seq=seq, digest=p["digest"], sender=p["sender"],
                    document_id=p["document_id"], kind=p["kind"], code=p["code"],
                    subject_digest=p["subject_digest"], recipients=p["recipient_list"],
                    received_at=p["received_text"], links_to=p["links_to"], size=p["size"],
                    report_digest=p["report_digest"])
                entry_hash = chain.entry_hash(entry)
                link = chain.link(link, entry_hash)
                doc_rows.append({
                    "digest": p["digest"], "seq": seq, "entry_hash": entry_hash,
                    "chain_hash": link, "sender": p["sender"], "document_id": p["document_id"],
                    "kind": p["kind"], "code": p["code"], "subject_digest": p["subject_digest"],
                    "recipients": p["recipients"], "received_at": p["received_at"],
                    "links_to": p["links_to"], "size": p["size"], "raw": p["raw"],
                    "report": p["report"],
                })
                if p["kind"] == "envelope":
                    delivery_rows.extend(
                        {"digest": p["digest"], "organ_id": organ, "state": "pending",
                         "updated_at": p["received_at"], "updated_seq": seq}
                        for organ in dict.fromkeys(p["recipient_list"]))
            event_rows: list[dict[str, Any]] = []
            for e in prepared_events:
                seq += 1
                entry = chain.event_entry(
                    seq=seq, kind=e["kind"], message_id=e["message_id"], at=e["at_text"],
                    digest=e["digest"], organ_id=e["organ_id"], reason=e["reason"],
                    actor=e["actor"], detail=e["detail"])
                entry_hash = chain.entry_hash(entry)
                link = chain.link(link, entry_hash)
                event_rows.append({
                    "seq": seq, "entry_hash": entry_hash, "chain_hash": link, "kind": e["kind"],
                    "message_id": e["message_id"], "at": e["at"], "digest": e["digest"],
                    "organ_id": e["organ_id"], "reason": e["reason"], "actor": e["actor"],
                    "detail": e["detail"],
                })
                if e["kind"] in DELIVERY_KINDS and e["digest"] and e["organ_id"]:
                    delivery_rows.append(
                        {"digest": e["digest"], "organ_id": e["organ_id"], "state": e["kind"],
                         "updated_at": e["at"], "updated_seq": seq})
            if doc_rows:
                conn.execute(insert(Document), doc_rows)
            if event_rows:
                conn.execute(insert(Event), event_rows)
            if delivery_rows:
                self._upsert_deliveries(conn, delivery_rows)
            head.seq, head.chain_hash = seq, link
            if self._checkpoint_due(head):
                self._append_checkpoint(conn, head)

    def _prepare_document(self, d: DocumentIn) -> dict[str, Any]:
        if d.kind not in DOCUMENT_KINDS:
            raise ValueError(f"unknown document kind {d.kind!r}")
        if chain.sha256_hex(d.raw) != d.digest:
            raise ValueError("DocumentIn.digest is not the SHA-256 of its bytes")
        report = chain.canonical_text(d.report) if d.report is not None else None
        raw: bytes | None = d.raw
        if self.blobs is not None and len(d.raw) > self.blob_threshold:
            self.blobs.put(d.digest, d.raw)  # before the row: a row never points at nothing
            raw = None
        recipients = list(d.recipients)
        return {
            "digest": d.digest, "sender": d.sender, "document_id": d.document_id,
            "kind": d.kind, "code": d.code, "subject_digest": d.subject_digest,
            "recipient_list": recipients,
            "recipients": chain.canonical_json(recipients).decode("utf-8"),
            "received_at": d.received_at, "received_text": chain.utc_text(d.received_at),
            "links_to": d.links_to, "size": len(d.raw), "raw": raw, "report": report,
            "report_digest": chain.sha256_hex(report.encode("utf-8")) if report else None,
        }

    def _upsert_deliveries(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        # Later rows win: keep the last state per (digest, recipient) of this batch.
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            latest[(row["digest"], row["organ_id"])] = row
        if self._is_pg:
            pg_stmt = postgresql.insert(Delivery)
            stmt: Any = pg_stmt.on_conflict_do_update(
                index_elements=["digest", "organ_id"],
                set_={"state": pg_stmt.excluded.state, "updated_at": pg_stmt.excluded.updated_at,
                      "updated_seq": pg_stmt.excluded.updated_seq})
        else:
            lite_stmt = sqlite.insert(Delivery)
            stmt = lite_stmt.on_conflict_do_update(
                index_elements=["digest", "organ_id"],
                set_={"state": lite_stmt.excluded.state,
                      "updated_at": lite_stmt.excluded.updated_at,
                      "updated_seq": lite_stmt.excluded.updated_seq})
        conn.execute(stmt, list(latest.values()))

    # -- checkpoints -------------------------------------------------------------------------

    def _checkpoint_due(self, head: _HeadState) -> bool:
        if head.seq <= head.checkpoint_seq:
            return False
        if head.seq - head.checkpoint_seq >= self.checkpoint_every:
            return True
        if self.checkpoint_interval_s is not None:
            last = head.checkpoint_at
            if last is None:
                return True
            return (datetime.now(UTC) - last).total_seconds() >= self.checkpoint_interval_s
        return False

    def _append_checkpoint(self, conn: Connection, head: _HeadState) -> None:
        at = datetime.now(UTC)
        payload = chain.checkpoint_payload(head.seq, head.chain_hash, chain.utc_text(at))
        signature = self._signer(payload) if self._signer is not None else None
        conn.execute(insert(Checkpoint).values(
            seq=head.seq, head=head.chain_hash, at=at, signature=signature,
            cert_pem=self._cert_pem if signature is not None else None))
        head.checkpoint_seq, head.checkpoint_at = head.seq, at

    def checkpoint(self) -> None:
        """Sign the current chain head now (no-op when the head is already checkpointed)."""
        with self._appending() as (conn, head):
            if head.seq > head.checkpoint_seq:
                self._append_checkpoint(conn, head)

    # -- reading -----------------------------------------------------------------------------

    def find_document(self, sender: str, document_id: str) -> StoredDocument | None:
        """The first document ``sender`` sent under ``document_id`` (QCVN 102 DocumentId)."""
        with self._reading() as conn:
            row = conn.execute(
                select(*_DOC_COLUMNS)
                .where(Document.sender == sender, Document.document_id == document_id)
                .order_by(Document.seq).limit(1)).first()
        return _stored_document(row) if row is not None else None

    def find_documents(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredDocument]:
        """:meth:`find_document` for many (sender, DocumentId) keys in one query per 500 keys
        (the pipeline's duplicate check for a whole batch)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], StoredDocument] = {}
        with self._reading() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                # Two IN lists, not a row-value IN: SQLite then searches the (sender,
                # document_id) index; the row-value form (and ORDER BY seq) scanned the
                # whole table on every batch. The pairs are picked out below.
                pairs = set(chunk)
                rows = conn.execute(select(*_DOC_COLUMNS).where(
                    Document.sender.in_(sorted({s for s, _ in chunk})),
                    Document.document_id.in_(sorted({d for _, d in chunk}))))
                for row in sorted(rows, key=lambda r: r.seq):
                    doc = _stored_document(row)
                    if (doc.sender, doc.document_id) in pairs:
                        found.setdefault((doc.sender, doc.document_id), doc)
        return found

    def delivered_to_many(self, digests: Iterable[str]) -> dict[str, frozenset[str]]:
        """:meth:`delivered_to` for many documents in one query per 500 digests."""
        wanted = list(dict.fromkeys(digests))
        out: dict[str, set[str]] = {d: set() for d in wanted}
        with self._reading() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                rows = conn.execute(select(Event.digest, Event.organ_id).where(
                    Event.digest.in_(chunk), Event.kind == EventKind.DELIVERED.value))
                for digest, organ in rows:
                    if organ and digest:
                        out[digest].add(organ)
        return {d: frozenset(v) for d, v in out.items()}

    def document_by_digest(self, digest: str) -> StoredDocument | None:
        with self._reading() as conn:
            row = conn.execute(select(*_DOC_COLUMNS).where(Document.digest == digest)).first()
        return _stored_document(row) if row is not None else None

    def documents(
        self,
        *,
        code: str | None = None,
        document_id: str | None = None,
        organ_id: str | None = None,
        sender: str | None = None,
        kind: str | None = None,
        links_to: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredDocument]:
        """Documents by code, DocumentId, organization (as sender or recipient), period."""
        stmt = select(*_DOC_COLUMNS).order_by(Document.seq)
        if code is not None:
            stmt = stmt.where(Document.code == code)
        if document_id is not None:
            stmt = stmt.where(Document.document_id == document_id)
        if sender is not None:
            stmt = stmt.where(Document.sender == sender)
        if kind is not None:
            stmt = stmt.where(Document.kind == kind)
        if links_to is not None:
            stmt = stmt.where(Document.links_to == links_to)
        if organ_id is not None:
            recipient_of = select(Delivery.digest).where(Delivery.organ_id == organ_id)
            stmt = stmt.where(or_(Document.sender == organ_id, Document.digest.in_(recipient_of)))
        if since is not None:
            stmt = stmt.where(Document.received_at >= since)
        if until is not None:
            stmt = stmt.where(Document.received_at < until)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._reading() as conn:
            return [_stored_document(r) for r in conn.execute(stmt)]

    def raw(self, digest: str) -> bytes | None:
        """The exact bytes of a document (from the row or the blob store)."""
        with self._reading() as conn:
            row = conn.execute(select(Document.raw).where(Document.digest == digest)).first()
        if row is None:
            return None
        if row.raw is not None:
            return bytes(row.raw)
        return self.blobs.get(digest) if self.blobs is not None else None

    def report(self, digest: str) -> dict[str, Any] | None:
        """The validation report stored with a document."""
        with self._reading() as conn:
            text = conn.scalar(select(Document.report).where(Document.digest == digest))
        return None if text is None else dict(json.loads(text))

    def delivered_to(self, digest: str) -> frozenset[str]:
        """Recipients that have a DELIVERED event for ``digest``."""
        with self._reading() as conn:
            return frozenset(o for o in conn.scalars(
                select(Event.organ_id).distinct().where(
                    Event.digest == digest, Event.kind == EventKind.DELIVERED.value))
                if o is not None)

    def events(
        self,
        *,
        digest: str | None = None,
        organ_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: EventKind | str | None = None,
        reason: str | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events in chain order, filtered; ``since`` inclusive, ``until`` exclusive."""
        stmt = select(*Event.__table__.c).order_by(Event.seq)
        if digest is not None:
            stmt = stmt.where(Event.digest == digest)
        if organ_id is not None:
            stmt = stmt.where(Event.organ_id == organ_id)
        if since is not None:
            stmt = stmt.where(Event.at >= since)
        if until is not None:
            stmt = stmt.where(Event.at < until)
        if kind is not None:
            stmt = stmt.where(Event.kind == str(kind))
        if reason is not None:
            stmt = stmt.where(Event.reason == reason)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._reading() as conn:
            return [_stored_event(r) for r in conn.execute(stmt)]

    def deliveries(
        self, *, digest: str | None = None, organ_id: str | None = None, state: str | None = None
    ) -> list[StoredDelivery]:
        """Per-recipient delivery state (derived from the events)."""
        stmt = select(*Delivery.__table__.c).order_by(Delivery.digest, Delivery.organ_id)
        if digest is not None:
            stmt = stmt.where(Delivery.digest == digest)
        if organ_id is not None:
            stmt = stmt.where(Delivery.organ_id == organ_id)
        if state is not None:
            stmt = stmt.where(Delivery.state == state)
        with self._reading() as conn:
            return [StoredDelivery(r.digest, r.organ_id, r.state, r.updated_at)
                    for r in conn.execute(stmt)]

    def head(self) -> tuple[int, str]:
        """Position and chain hash of the last entry."""
        with self._reading() as conn:
            row = conn.execute(select(Head.seq, Head.chain_hash).where(Head.id == 1)).one()
        return int(row.seq), str(row.chain_hash)

    # -- verifying ---------------------------------------------------------------------------

    def verify(
        self,
        progress: Progress | None = None,
        *,
        verify_signature: SignatureCheck | None = None,
        require_signed: bool = False,
        check_bytes: bool = True,
    ) -> VerifyResult:
        """Check the whole chain, every checkpoint and (by default) every document's bytes."""
        from hub.ledger.verify import verify_ledger

        try:
            with self.engine.connect() as conn:
                return verify_ledger(
                    conn, self.blobs, progress=progress, verify_signature=verify_signature,
                    require_signed=require_signed, check_bytes=check_bytes)
        except (exc.OperationalError, exc.InterfaceError) as error:
            raise _unavailable(error) from error


def _prepare_event(e: EventIn) -> dict[str, Any]:
    return {
        "kind": EventKind(e.kind).value, "message_id": e.message_id, "at": e.at,
        "at_text": chain.utc_text(e.at), "digest": e.digest, "organ_id": e.organ_id,
        "reason": None if e.reason is None else str(e.reason), "actor": e.actor,
        "detail": chain.canonical_text(e.detail),
    }


_DOC_COLUMNS = (Document.digest, Document.kind, Document.sender, Document.document_id,
                Document.code, Document.recipients, Document.received_at, Document.links_to,
                Document.size, Document.seq)


def _stored_document(row: Any) -> StoredDocument:
    return StoredDocument(
        digest=row.digest, kind=row.kind, sender=row.sender, document_id=row.document_id,
        code=row.code, recipients=tuple(json.loads(row.recipients)),
        received_at=row.received_at, links_to=row.links_to, size=int(row.size), seq=int(row.seq))


def _stored_event(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=int(row.seq), kind=EventKind(row.kind), message_id=row.message_id, at=row.at,
        digest=row.digest, organ_id=row.organ_id, reason=row.reason, actor=row.actor,
        detail=json.loads(row.detail))
