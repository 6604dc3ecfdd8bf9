"""Logical backup and restore of a ledger, backend-neutral (SQLite to PostgreSQL works too).

A backup is a zip: ``backup.json`` (format, head, row counts), one ``<table>.jsonl`` per table
(bytes as base64, timestamps as canonical UTC text) and ``blobs/<digest>`` for packets kept in the
content-addressed store. It is taken in one read-only transaction that sees one snapshot
(REPEATABLE READ on PostgreSQL), so a hub writing meanwhile does not make its tables disagree.
A restore refuses a non-empty target and is all or nothing: every value is checked against its
column, the row counts and the head against ``backup.json``, every document's bytes are found,
and only then are the rows, the rollup and the blobs committed, in one transaction; a damaged
backup is one :class:`BackupError` line and leaves the target as it was. The chain itself is
not checked here: run ``hub ledger verify`` on the result (``hub ledger restore`` does).
The adoption report's rollup (``ledger_adoption``, derived) is not in the backup: the restore
recomputes it from the restored documents, in its transaction (a backup taken before r0005
restores the same way). The subscriber registry (``subscribers``, ``subscriber_certificates``,
``subscriber_history``: what the certificate office imported, r0004) is in it; the signatures
seen on envelopes (``subscriber_observations``, derived) are read again from the restored
documents when the subscriber report next asks.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Date,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    exc,
    func,
    insert,
    literal,
    select,
)

from hub.ledger import adoption, chain
from hub.ledger.blobs import BlobStore
from hub.ledger.models import (
    AdoptionDay,
    Checkpoint,
    Delivery,
    Document,
    Event,
    EvidenceBlob,
    Head,
    OutboxRow,
    Subscriber,
    SubscriberCertificate,
    SubscriberHistory,
    SubscriberObservation,
    SubscriberScan,
    UtcDateTime,
)
from hub.ledger.records import REFUSED
from hub.ledger.store import Ledger, is_transient, unavailable

FORMAT = "edxml-hub-ledger-backup/1"
"""Schema r0002 added columns and ledger_evidence_blobs; a backup of an r0001 ledger lacks them
and restores as NULLs (what r0002 gives old rows)."""
_TABLES: tuple[Table, ...] = tuple(
    m.__table__ for m in (Head, Document, Event, Delivery, Checkpoint, EvidenceBlob,  # type: ignore[misc]
                          Subscriber, SubscriberCertificate, SubscriberHistory))
_CHUNK = 5000


class BackupError(Exception):
    """The backup is unreadable or damaged (the message names the file, the line and the column),
    or the restore target is not empty. The command line prints it as one line, exit 2."""


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


def _private(path: str, flags: int) -> int:
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies to a new file only
    return fd


@contextlib.contextmanager
def snapshot(conn: Connection) -> Iterator[None]:
    """One read transaction that sees the ledger as of one instant, whatever commits meanwhile.

    PostgreSQL's default (READ COMMITTED) takes a new snapshot for each statement: a hub
    committing between two tables' reads would make a backup whose tables, and whose head in
    ``backup.json``, disagree (the restore refuses it). REPEATABLE READ keeps the first
    statement's snapshot for the whole transaction, as ``hub ledger verify`` reads; READ ONLY:
    a backup or an export writes nothing.
    SQLite's transaction (``BEGIN``, then WAL) reads one snapshot already."""
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with conn.begin():
        yield


def backup(ledger: Ledger, path: Path) -> dict[str, int]:
    """Write a consistent backup of ``ledger`` to ``path``; returns row counts per table."""
    counts: dict[str, int] = {}
    # Every document's exact bytes: readable by the owner alone whatever the umask (a default
    # systemd service has 0022). A directory made here is 0700; the file is 0600 before a
    # byte is written, an older file at the path included.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with ledger.engine.connect() as conn, snapshot(conn), open(
        path, "wb", opener=_private
    ) as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        blob_digests: list[str] = []
        for table in _TABLES:
            n = 0
            with zf.open(f"{table.name}.jsonl", "w") as fh:
                for row in conn.execute(select(table).execution_options(yield_per=_CHUNK)):
                    fh.write(json.dumps(_encode(table, row), separators=(",", ":")).encode())
                    fh.write(b"\n")
                    n += 1
                    if table is Document.__table__ and row.raw is None and (
                            row.kind != REFUSED or _kept(row.refusal)):
                        # (a refused packet over the cap: its bytes were never kept)
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


# -- restoring ---------------------------------------------------------------------------------
#
# A backup is a file someone hands over: every value is checked against its column before it
# reaches the database (SQLite would store almost anything; PostgreSQL refuses it: the same
# refusal on both), a row the database still refuses is named by its line, and the restore —
# rows, the derived rollup, blobs — is one transaction: a backup refused at its last line leaves
# the target as it was.

_DIGEST = re.compile(r"[0-9a-f]{64}")
_ZIP_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               RuntimeError)
"""What reading a damaged member raises (RuntimeError: encrypted; NotImplementedError: an
unknown compression method)."""
_MUST_BE_EMPTY: tuple[Table, ...] = tuple(t for t in _TABLES if t is not Head.__table__) + tuple(
    m.__table__ for m in (SubscriberObservation, OutboxRow))  # type: ignore[misc]
"""What a target must not hold besides its empty chain head (the derived rollup is rebuilt)."""


class _BadValue(Exception):
    """A value that does not fit its column; the message says why."""


@dataclass(frozen=True)
class _Meta:
    """``backup.json``, checked."""

    head: tuple[int, str]
    counts: dict[str, int]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamp(kind: Any, value: object) -> datetime:
    if not isinstance(value, str):
        raise _BadValue(f"expected a timestamp text, got {_show(value)}")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _BadValue(f"not a timestamp: {_show(value)}") from None
    if at.tzinfo is None:
        raise _BadValue(f"a timestamp without a time zone: {_show(value)}")
    return at


def _date(kind: Any, value: object) -> date:
    if not isinstance(value, str):
        raise _BadValue(f"expected a date text, got {_show(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _BadValue(f"not a date: {_show(value)}") from None


def _binary(kind: Any, value: object) -> bytes:
    if not isinstance(value, str):
        raise _BadValue(f"expected base64 text, got {_show(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _BadValue(f"not base64: {_show(value)}") from None


def _boolean(kind: Any, value: object) -> bool:
    if not isinstance(value, bool):
        raise _BadValue(f"expected true or false, got {_show(value)}")
    return value


def _integer(kind: Any, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadValue(f"expected an integer, got {_show(value)}")
    limit = 2**63 if isinstance(kind, BigInteger) else 2**31  # as PostgreSQL stores them
    if not -limit <= value < limit:
        raise _BadValue(f"out of range: {_show(value)}")
    return value


def _text(kind: Any, value: object) -> str:
    if not isinstance(value, str):
        raise _BadValue(f"expected text, got {_show(value)}")
    if kind.length is not None and len(value) > kind.length:
        raise _BadValue(f"longer than {kind.length} characters")
    if "\x00" in value:
        raise _BadValue("holds a NUL character (PostgreSQL text cannot)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _BadValue("not Unicode text (a lone surrogate)") from None
    return value


_CONVERTERS: tuple[tuple[type[Any], Callable[[Any, object], object]], ...] = (
    (UtcDateTime, _timestamp), (Date, _date), (LargeBinary, _binary), (Boolean, _boolean),
    (Integer, _integer), (String, _text))
"""Column type → what a backup value must be and what the database gets (first match)."""


def _value(kind: Any, value: object) -> object:
    for cls, convert in _CONVERTERS:
        if isinstance(kind, cls):
            return convert(kind, value)
    return value


def _decode(table: Table, data: dict[str, Any], where: str) -> dict[str, Any]:
    """The row ``data`` (one line of ``<table>.jsonl``) as the database takes it, or a
    :class:`BackupError` naming ``where`` and the column."""
    unknown = sorted(data.keys() - set(table.c.keys()))
    if unknown:
        raise BackupError(f"{where}: unknown column {unknown[0]!r}")
    out: dict[str, Any] = {}
    for column in table.c:
        value = data.get(column.name)
        if value is None:
            if not column.nullable:
                raise BackupError(f"{where}: {column.name} is missing")
        else:
            try:
                value = _value(column.type, value)
            except _BadValue as error:
                raise BackupError(f"{where}: {column.name}: {error}") from None
        out[column.name] = value
    return out


def _member(zf: zipfile.ZipFile, path: Path, name: str) -> bytes:
    try:
        return zf.read(name)
    except _ZIP_ERRORS as error:
        raise BackupError(f"{path}: {name}: unreadable ({error})") from None


def _lines(zf: zipfile.ZipFile, path: Path, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The rows of ``name``, each with where it is (``<path>: <name> line <n>``)."""
    try:
        with zf.open(name) as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}: {name} line {number}"
                try:
                    data = json.loads(line)
                except (ValueError, RecursionError) as error:
                    raise BackupError(f"{where}: not JSON ({error})") from None
                if not isinstance(data, dict):
                    raise BackupError(f"{where}: not a JSON object")
                yield where, data
    except _ZIP_ERRORS as error:
        raise BackupError(f"{path}: {name}: unreadable ({error})") from None


def _read_meta(zf: zipfile.ZipFile, path: Path) -> _Meta:
    try:
        meta = json.loads(zf.read("backup.json"))
    except (*_ZIP_ERRORS, KeyError, ValueError, RecursionError) as error:
        raise BackupError(f"{path}: not a ledger backup ({error})") from None
    if not isinstance(meta, dict):
        raise BackupError(f"{path}: backup.json: not a JSON object")
    if meta.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {_show(meta.get('format'))}")
    head = meta.get("head")
    if not (isinstance(head, dict) and _is_int(head.get("seq"))
            and isinstance(head.get("chain_hash"), str)):
        raise BackupError(f"{path}: backup.json: head is not {{seq: integer, chain_hash: text}}")
    counts = meta.get("counts")
    if not (isinstance(counts, dict) and all(_is_int(n) and n >= 0 for n in counts.values())):
        raise BackupError(f"{path}: backup.json: counts is not a row count per table")
    return _Meta((head["seq"], head["chain_hash"]), counts)


def _blob_members(zf: zipfile.ZipFile, path: Path) -> dict[str, str]:
    """Digest → member name of the packets in ``blobs/``; refuses any other name there, and a
    table this hub does not know (a backup from a newer hub would lose it)."""
    known = {f"{t.name}.jsonl" for t in _TABLES} | {"backup.json"}
    blobs: dict[str, str] = {}
    for info in zf.infolist():
        name = info.filename
        if info.is_dir():
            continue
        if name.startswith("blobs/"):
            digest = name.removeprefix("blobs/")
            if not _DIGEST.fullmatch(digest):
                raise BackupError(f"{path}: {name}: not a blob (blobs/ and 64 lowercase hex"
                                  " characters, the SHA-256 of its bytes)")
            blobs[digest] = name
        elif name not in known:
            raise BackupError(f"{path}: {name}: not part of a ledger backup this hub knows")
    return blobs


def _open_backup(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise BackupError(f"{path}: not a ledger backup ({error})") from None


def check_backup(path: Path) -> None:
    """Raise :class:`BackupError` unless ``path`` opens as a backup this hub knows (its zip,
    ``backup.json`` and member names): for a caller to run before it opens the target, which
    creates and migrates a ledger that is not there yet. :func:`restore` checks the rest."""
    with _open_backup(path) as zf:
        _read_meta(zf, path)
        _blob_members(zf, path)


def restore(path: Path, ledger: Ledger) -> dict[str, int]:
    """Load the backup at ``path`` into the empty ``ledger``; returns row counts per table.

    All or nothing: the rows, the rebuilt rollup and the blobs are committed together, after
    every row was checked and stored, the head matched ``backup.json`` and every document's
    bytes were found. Anything wrong is a :class:`BackupError` (one line: the file, the line,
    the column, what is wrong) and the target is left as it was; an unreachable database is a
    :class:`~hub.errors.TransientError`."""
    with _open_backup(path) as zf:
        meta = _read_meta(zf, path)
        blobs = _blob_members(zf, path)
        if blobs and ledger.blobs is None:
            raise BackupError("the backup holds blobs: open the target with a blob_dir")
        written: list[Path] = []
        try:
            return _restore(zf, path, meta, blobs, ledger, written)
        except BaseException:
            # The database rolled back: the blobs stored for it go too.
            for file in reversed(written):  # files, then the folders made for them
                with contextlib.suppress(OSError):
                    if file.is_dir():
                        file.rmdir()
                    else:
                        file.unlink()
            raise


def _restore(zf: zipfile.ZipFile, path: Path, meta: _Meta, blobs: dict[str, str],
             ledger: Ledger, written: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    names = set(zf.namelist())
    try:
        # No other writer between the emptiness check and the commit.
        with ledger.writer_connection() as conn, conn.begin():
            _check_empty(conn)
            conn.execute(delete(Head))
            for table in _TABLES:
                counts[table.name] = _load_table(conn, zf, path, names, meta, table)
            _check_head(conn, path, meta)
            _check_documents_bytes(conn, path, blobs, ledger.blobs)
            counts[AdoptionDay.__tablename__] = _rebuild_adoption(conn, path)
            if ledger.blobs is not None:
                _store_blobs(zf, path, blobs, ledger.blobs, written)
    except (exc.DBAPIError, exc.TimeoutError) as error:
        if is_transient(error):
            raise unavailable(error) from error
        raise BackupError(f"{path}: the database refused the restore ({_refusal(error)})"
                          ) from None
    return counts


def _check_empty(conn: Connection) -> None:
    head = conn.execute(select(Head.seq).where(Head.id == 1).with_for_update()).all()
    if len(head) != 1:
        raise BackupError("the target ledger has no chain head row: not a ledger to restore into")
    scanned = conn.scalar(select(func.max(SubscriberScan.seq))) or 0
    if head[0].seq != 0 or scanned != 0 or any(
            conn.execute(select(literal(1)).select_from(t).limit(1)).first() is not None
            for t in _MUST_BE_EMPTY):
        raise BackupError("the target ledger is not empty")


def _load_table(conn: Connection, zf: zipfile.ZipFile, path: Path, names: set[str],
                meta: _Meta, table: Table) -> int:
    name = f"{table.name}.jsonl"
    expected = meta.counts.get(table.name)
    if name not in names:
        # ledger_evidence_blobs is new in r0002, the subscriber registry in r0004
        if expected:
            raise BackupError(f"{path}: {name} is missing (backup.json counts {expected})")
        return 0
    if expected is None:
        raise BackupError(f"{path}: backup.json counts no rows for {name}")
    n = _load(conn, table, _lines(zf, path, name))
    if n != expected:
        raise BackupError(f"{path}: {name} holds {n} rows, backup.json counts {expected}")
    return n


def _load(conn: Connection, table: Table, rows: Iterator[tuple[str, dict[str, Any]]]) -> int:
    batch: list[tuple[str, dict[str, Any]]] = []
    n = 0
    for where, data in rows:
        batch.append((where, _decode(table, data, where)))
        n += 1
        if len(batch) >= _CHUNK:
            _insert(conn, table, batch)
            batch = []
    if batch:
        _insert(conn, table, batch)
    return n


def _insert(conn: Connection, table: Table, batch: list[tuple[str, dict[str, Any]]]) -> None:
    """Insert ``batch``; a refused batch is tried again row by row to name the refused line.

    The savepoint keeps the transaction usable after a refusal (PostgreSQL aborts it)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(table), [row for _, row in batch])
        return
    except exc.StatementError as error:
        if is_transient(error):
            raise
        refused = error
    with conn.begin_nested():
        for where, row in batch:
            try:
                conn.execute(insert(table), row)
            except exc.StatementError as error:
                if is_transient(error):
                    raise
                raise BackupError(
                    f"{where}: the database refused the row ({_refusal(error)})") from None
    raise BackupError(f"{batch[0][0]} and the {len(batch) - 1} rows after it: the database"
                      f" refused them ({_refusal(refused)})")


def _refusal(error: BaseException) -> str:
    """The database's reason, first line, without the statement or the values."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return lines[0][:200]


def _check_head(conn: Connection, path: Path, meta: _Meta) -> None:
    rows = conn.execute(select(Head.id, Head.seq, Head.chain_hash)).all()
    if len(rows) != 1:
        raise BackupError(f"{path}: ledger_head.jsonl holds {len(rows)} chain head rows, not one")
    row = rows[0]
    if row.id != 1:
        raise BackupError(f"{path}: ledger_head.jsonl: the chain head's id is {row.id}, not 1")
    if (row.seq, row.chain_hash) != meta.head:
        raise BackupError(
            f"{path}: the chain head in ledger_head.jsonl ({row.seq}, {_show(row.chain_hash)})"
            f" is not the one backup.json names ({meta.head[0]}, {_show(meta.head[1])})")


def _check_documents_bytes(conn: Connection, path: Path, blobs: dict[str, str],
                           store: BlobStore | None) -> None:
    """Every document whose row holds no bytes has them in the backup (or already in the
    target's store) — except a refused packet over the cap, whose bytes were never kept."""
    for digest, kind, refusal in conn.execute(select(
            Document.digest, Document.kind, Document.refusal).where(Document.raw.is_(None))):
        if kind == REFUSED and not _kept(refusal):
            continue
        if digest in blobs or (store is not None and _DIGEST.fullmatch(digest)
                               and store.path(digest).exists()):
            continue
        raise BackupError(f"{path}: the bytes of document {_show(digest)} are missing"
                          " (its row holds none and the backup no blobs/ entry)")


def _kept(refusal: str | None) -> bool:
    try:
        facts = json.loads(refusal) if refusal is not None else None
    except ValueError:
        return True
    return not (isinstance(facts, dict) and facts.get("kept") is False)


def _rebuild_adoption(conn: Connection, path: Path) -> int:
    try:
        return adoption.rebuild(conn)
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        # A document's stored JSON (validation report, refusal) that the rollup cannot read
        raise BackupError(f"{path}: the adoption rollup cannot be rebuilt from the documents"
                          f" ({type(error).__name__}: {_show(str(error))})") from None


def _store_blobs(zf: zipfile.ZipFile, path: Path, blobs: dict[str, str], store: BlobStore,
                 written: list[Path]) -> None:
    """Put the backup's blobs in ``store``, each checked against its name; ``written`` gets
    what was not there before (files, directories), for the caller to remove on failure."""
    for digest, name in blobs.items():
        data = _member(zf, path, name)
        if hashlib.sha256(data).hexdigest() != digest:
            raise BackupError(f"{path}: {name}: the bytes are not the ones this name is the"
                              " SHA-256 of")
        target = store.path(digest)
        if target.exists():
            continue
        for folder in (store.root, target.parent):
            if not folder.exists():
                written.append(folder)
        store.put(digest, data)
        written.append(target)
