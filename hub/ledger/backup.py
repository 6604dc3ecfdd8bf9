"""Logical backup and restore of a ledger, backend-neutral (SQLite to PostgreSQL works too).

A backup is a zip: ``backup.json`` (format, head, row counts), one ``<table>.jsonl`` per table
(bytes as base64, timestamps as canonical UTC text) and ``blobs/<digest>`` for packets kept in the
content-addressed store. It is taken in one read transaction, so it is a consistent snapshot.
A restore refuses a non-empty target; run ``hub ledger verify`` on the result (the tests do).
The adoption report's rollup (``ledger_adoption``, derived) is not in the backup: the restore
recomputes it from the restored documents, in its transaction (a backup taken before r0005
restores the same way). The subscriber registry (``subscribers``, ``subscriber_certificates``,
``subscriber_history``: what the certificate office imported, r0004) is in it; the signatures
seen on envelopes (``subscriber_observations``, derived) are read again from the restored
documents when the subscriber report next asks.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Date, LargeBinary, Table, delete, insert, select

from hub.ledger import adoption, chain
from hub.ledger.models import (
    AdoptionDay,
    Checkpoint,
    Delivery,
    Document,
    Event,
    EvidenceBlob,
    Head,
    Subscriber,
    SubscriberCertificate,
    SubscriberHistory,
    UtcDateTime,
)
from hub.ledger.store import Ledger

FORMAT = "edxml-hub-ledger-backup/1"
"""Schema r0002 added columns and ledger_evidence_blobs; a backup of an r0001 ledger lacks them
and restores as NULLs (what r0002 gives old rows)."""
_TABLES: tuple[Table, ...] = tuple(
    m.__table__ for m in (Head, Document, Event, Delivery, Checkpoint, EvidenceBlob,  # type: ignore[misc]
                          Subscriber, SubscriberCertificate, SubscriberHistory))
_CHUNK = 5000


class BackupError(Exception):
    """The backup is unreadable, or the restore target is not empty."""


def _encode(table: Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.c:
        value = getattr(row, column.name)
        if value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64encode(bytes(value)).decode("ascii")
        elif value is not None and isinstance(column.type, UtcDateTime):
            value = chain.utc_text(value)
        elif value is not None and isinstance(column.type, Date):
            value = value.isoformat()
        out[column.name] = value
    return out


def _decode(table: Table, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.c:
        value = data.get(column.name)
        if value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64decode(value)
        elif value is not None and isinstance(column.type, UtcDateTime):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif value is not None and isinstance(column.type, Date):
            value = date.fromisoformat(value)
        out[column.name] = value
    return out


def backup(ledger: Ledger, path: Path) -> dict[str, int]:
    """Write a consistent backup of ``ledger`` to ``path``; returns row counts per table."""
    counts: dict[str, int] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with ledger.engine.connect() as conn, conn.begin(), zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED
    ) as zf:
        blob_digests: list[str] = []
        for table in _TABLES:
            n = 0
            with zf.open(f"{table.name}.jsonl", "w") as fh:
                for row in conn.execute(select(table).execution_options(yield_per=_CHUNK)):
                    fh.write(json.dumps(_encode(table, row), separators=(",", ":")).encode())
                    fh.write(b"\n")
                    n += 1
                    if table is Document.__table__ and row.raw is None:
                        blob_digests.append(row.digest)
            counts[table.name] = n
        for digest in blob_digests:
            data = ledger.blobs.get(digest) if ledger.blobs is not None else None
            if data is None:
                raise BackupError(f"the blob of document {digest} is missing")
            zf.writestr(f"blobs/{digest}", data)
        head = conn.execute(select(Head.seq, Head.chain_hash)).one()
        zf.writestr("backup.json", json.dumps({
            "format": FORMAT, "head": {"seq": int(head.seq), "chain_hash": head.chain_hash},
            "counts": counts}, indent=2))
    return counts


def _lines(zf: zipfile.ZipFile, name: str) -> Iterator[dict[str, Any]]:
    with zf.open(name) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def restore(path: Path, ledger: Ledger) -> dict[str, int]:
    """Load the backup at ``path`` into the empty ``ledger``; returns row counts per table."""
    try:
        zf = zipfile.ZipFile(path)
        meta = json.loads(zf.read("backup.json"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise BackupError(f"{path}: not a ledger backup ({error})") from None
    if meta.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {meta.get('format')!r}")
    if ledger.head()[0] != 0:
        raise BackupError("the target ledger is not empty")
    counts: dict[str, int] = {}
    with ledger.engine.connect() as conn, conn.begin():
        conn.execute(delete(Head))
        names = set(zf.namelist())
        for table in _TABLES:
            # ledger_evidence_blobs is new in r0002, the subscriber registry in r0004
            if f"{table.name}.jsonl" in names:
                counts[table.name] = _load(conn, table, _lines(zf, f"{table.name}.jsonl"))
        counts[AdoptionDay.__tablename__] = adoption.rebuild(conn)
    for name in zf.namelist():
        if name.startswith("blobs/"):
            if ledger.blobs is None:
                raise BackupError("the backup holds blobs: open the target with a blob_dir")
            ledger.blobs.put(name.removeprefix("blobs/"), zf.read(name))
    return counts


def _load(conn: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    batch: list[dict[str, Any]] = []
    n = 0
    for data in rows:
        batch.append(_decode(table, data))
        n += 1
        if len(batch) >= _CHUNK:
            conn.execute(insert(table), batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)
    return n
