"""The ledger: append documents and events to the hash chain, read them back, verify.

One :meth:`Ledger.write` is one database transaction: the pipeline hands it a group-commit
batch (documents idempotent by digest, then events) and acknowledges its messages only after
it returned. Appends are serialized on the single ``ledger_head`` row so several consumer
processes keep one consistent chain (see :mod:`hub.ledger.models`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    exc,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from hub.errors import ConfigurationError, TransientError
from hub.ledger import adoption, chain
from hub.ledger.blobs import BlobStore
from hub.ledger.deliveries import DELIVERY_KINDS, PENDING
from hub.ledger.deliveries import rebuild as rebuild_delivery_state
from hub.ledger.migrate import stored_revisions, upgrade
from hub.ledger.models import (
    SCHEMA_REVISION,
    Checkpoint,
    Delivery,
    Document,
    Event,
    EvidenceBlob,
    Head,
    OutboxRow,
    UtcDateTime,
)
from hub.ledger.records import (
    ACCEPTED_KINDS,
    DOCUMENT_KINDS,
    REFUSED,
    DocumentIn,
    EventIn,
    EventKind,
    IssuedReceipt,
    LedgerOpenError,
    LedgerRowRejected,
    ReceiptConflict,
    StoredDelivery,
    StoredDocument,
    StoredEvent,
    VerifyResult,
    digest_is_of_raw,
)
from hub.ledger.urls import sqlite_file as _sqlite_file
from hub.ledger.walcheckpoint import SAFETY_NET_PAGES, WalCheckpointer
from hub.logs import get_logger, redact_url
from hub.reasons import Reason

if TYPE_CHECKING:
    from hub.ledger.verify import OperatorTrust, Witness

log = get_logger("hub.ledger")

Signer = Callable[[bytes], bytes]
SignatureCheck = Callable[[bytes, bytes], bool]
Progress = Callable[[int, int], None]

_WRITE = "hub_ledger_write"

REFUSED_BYTES_CAP = 50 * 1024 * 1024
"""Default largest refused packet whose bytes are kept (the default envelope size limit)."""

# SQLSTATE classes that are the database's state, not the rows': connection (08), invalid
# transaction state (25), rollback for serialization or deadlock (40), access rules or a schema
# not there yet (42: an operator fixes it), insufficient resources (53), object state such as a
# lock not available (55), operator intervention such as a shutdown (57), system and internal
# errors (58, XX): the same write may succeed later, so the batch is held and retried. Any other
# class blames the rows (22 data, 23 integrity, 54 limits, P0 a trigger that refuses them …):
# retrying would stall the consumer on a poison row, so the rows are isolated instead.
_STATE_SQLSTATE_CLASSES = frozenset({"08", "25", "40", "42", "53", "55", "57", "58", "XX"})


_CONFIGURATION_SQLSTATES = frozenset({"3D000", "28000", "28P01"})
"""Refusals of a connection that only an operator can change: 3D000 a database that does not
exist, 28000 a role that does not exist, may not log in or has no ``pg_hba.conf`` entry, 28P01
a password or another authentication the server refused."""

_CONFIGURATION_WORDS = re.compile(
    r'database ".*" does not exist|role ".*" does not exist|authentication failed for user'
    r"|no pg_hba\.conf entry for|is not permitted to log in|fe_sendauth: no password supplied")
"""The same refusals in the server's (and libpq's) words: psycopg2 gives an error raised while
connecting no SQLSTATE. A server whose ``lc_messages`` is not English is judged unavailable
instead (retried; the detail still says why)."""


def _sqlstate(error: exc.DBAPIError) -> str | None:
    code = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def is_transient(error: BaseException) -> bool:
    """Whether a failed write may succeed later unchanged (LEDGER_UNAVAILABLE).

    A running consumer holds its batch and retries on these, a refused login included (an
    operator may be rotating the role's password); at start-up :meth:`Ledger.open` calls the
    refusals :func:`is_misconfigured` judges the settings' a configuration error instead."""
    if isinstance(error, exc.TimeoutError):
        return True  # the connection pool is exhausted
    if not isinstance(error, exc.DBAPIError):
        return False  # raised while preparing or binding one row's values
    if error.connection_invalidated:
        return True
    code = _sqlstate(error)
    if code is not None:
        return code[:2] in _STATE_SQLSTATE_CLASSES
    # SQLite has no SQLSTATE: "database is locked", I/O errors are OperationalError.
    return isinstance(error, exc.OperationalError | exc.InterfaceError)


def is_misconfigured(error: BaseException) -> bool:
    """Whether a database error is the settings' fault: a database or a role that does not
    exist, an authentication the server refused (:data:`_CONFIGURATION_SQLSTATES`; without a
    SQLSTATE, :data:`_CONFIGURATION_WORDS`). Retrying never helps; an operator must act."""
    if not isinstance(error, exc.DBAPIError):
        return False
    code = _sqlstate(error)
    if code is not None:
        return code in _CONFIGURATION_SQLSTATES
    return bool(_CONFIGURATION_WORDS.search(str(error.orig)))


_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@\s]*@")
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def cause(error: BaseException) -> str:
    """The first line of what the driver (or the pool) said, on one line, without a password:
    what an operator reads to know why (``Connection refused``, ``database is locked``). Never
    a statement's values: a driver's first line names the failure, not the rows."""
    text = str(error.orig) if isinstance(error, exc.DBAPIError) else str(error)
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = " ".join(_BACKGROUND.sub("", first).split())
    first = _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", first))
    return first[:240]


def _driver_error(conn: Connection, statement: str, params: Any, error: Any,
                  dbapi_conn: Any, cursor: Any) -> exc.DBAPIError:
    """The error SQLAlchemy raises for a driver's ``error`` on ``conn`` (its ``DBAPIError``
    subclass for the driver's class, parameters hidden), the connection invalidated when the
    database went away — as ``Connection._handle_dbapi_exception`` does, for statements run on
    the DBAPI cursor (:class:`_DriverSql`)."""
    dialect = conn.dialect
    if cursor is not None:
        with contextlib.suppress(Exception):
            cursor.close()
    gone = bool(dialect.is_disconnect(error, dbapi_conn, cursor))
    if gone:
        conn.invalidate(error)
    wrapped = exc.DBAPIError.instance(
        statement, params, error, dialect.loaded_dbapi.Error, hide_parameters=True,
        connection_invalidated=gone, dialect=dialect)
    assert isinstance(wrapped, exc.DBAPIError)
    return wrapped


def _on_cursor(conn: Connection, statement: str, params: Any = (), *,
               many: bool = False) -> Any:
    """``statement`` run on the DBAPI cursor of ``conn``, in its transaction (no SQLAlchemy
    execution context); the open cursor (the caller fetches, closes). A driver error is raised
    as SQLAlchemy raises it (:func:`_driver_error`)."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None  # a live connection, inside its transaction
    cursor = None
    try:
        cursor = dbapi_conn.cursor()
        if many:
            cursor.executemany(statement, params)
        else:
            cursor.execute(statement, params)
    except conn.dialect.loaded_dbapi.Error as error:
        raise _driver_error(conn, statement, params, error, dbapi_conn, cursor) from error
    return cursor


def _error_detail(error: BaseException) -> str:
    """What went wrong, without the values (they may be document content)."""
    if isinstance(error, exc.DBAPIError):
        code = getattr(error.orig, "pgcode", None) or getattr(
            error.orig, "sqlite_errorname", None)
        return (f"{type(error).__name__}: {type(error.orig).__name__}"
                + (f" ({code})" if code else ""))
    return f"{type(error).__name__}: {str(error)[:200]}"


def _install_sqlite_pragmas(
    engine: Engine, synchronous: str, busy_timeout_ms: int, *, read_only: bool = False,
    autocheckpoint: int | None = None,
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed batch survives a power cut (the pipeline acks after commit).
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            if autocheckpoint is not None:
                # Checkpoints are made by a WalCheckpointer; this is only its safety net.
                cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front: the chain head it reads stays the head.
        # On the DBAPI cursor (three transactions a batch), as the batch's statements.
        statement = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN"
        _on_cursor(conn, statement).close()


PG_CONNECT_TIMEOUT_S = 10
"""Longest wait for a PostgreSQL connection (libpq ``connect_timeout``; none by default)."""

PG_TCP = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
          "keepalives_count": 3, "tcp_user_timeout": 60_000}
"""libpq TCP settings: an idle connection whose peer vanished without a reset (a host down, a
firewall forgetting the flow) is found dead in about a minute, as is one whose sent data stays
unacknowledged for 60 s — instead of a consumer blocked for the kernel's two hours."""


def _pg_connect_args(url: str) -> dict[str, Any]:
    """:data:`PG_CONNECT_TIMEOUT_S` and :data:`PG_TCP`, but for what the URL sets itself."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername not in ("postgresql", "postgresql+psycopg2"):
        return {}  # libpq's parameters, passed by psycopg2 only
    wanted: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S, **PG_TCP}
    return {k: v for k, v in wanted.items() if k not in parsed.query}


def _statement_timeout(engine: Engine, seconds: float) -> None:
    """Every new session of ``engine`` cancels a statement after ``seconds`` — unless the URL's
    ``options`` set one (an operator's choice wins)."""
    options = engine.url.query.get("options", "")
    if "statement_timeout" in (options if isinstance(options, str) else " ".join(options)):
        return
    engine.dispose()
    milliseconds = max(1, round(seconds * 1000))

    @event.listens_for(engine, "connect")
    def _set_statement_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET statement_timeout = {milliseconds}")
        cursor.close()
        dbapi_connection.commit()  # a SET rolled back with its transaction is undone


@dataclass
class _HeadState:
    seq: int
    chain_hash: str
    checkpoint_seq: int
    checkpoint_at: datetime | None


def unavailable(error: BaseException) -> TransientError:
    """LEDGER_UNAVAILABLE for a database error :func:`is_transient` judged passing; its detail
    names the error and its :func:`cause` (``OperationalError: connection to server at …
    failed: Connection refused``)."""
    why = cause(error)
    return TransientError(Reason.LEDGER_UNAVAILABLE,
                          f"{type(error).__name__}: {why}" if why else type(error).__name__)


FILE_MODE = 0o600
"""A SQLite ledger (and its ``-wal`` and ``-shm`` files, which SQLite makes with the database
file's mode) holds every document's exact bytes: readable by its owner alone, whatever the
process umask, as its backups and the blob store are."""


def _sqlite_checked(path: Path, *, write: bool) -> None:
    """Raise :class:`ConfigurationError` when ``path`` cannot be a SQLite ledger: a directory,
    or — to write — a file, or a folder (SQLite makes the ``-wal`` and ``-shm`` files there),
    this user may not write. ``root`` may write anything: ``os.access`` says so."""
    if path.is_dir():
        raise ConfigurationError(f"the ledger at {path}: {path} is a directory, not a SQLite file")
    if not write:
        return
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigurationError(f"the ledger at {path}: {path} is not writable by this user")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folder the missing ones are made in
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigurationError(f"the ledger at {path}: the folder {folder} is not writable by "
                                 "this user (the ledger's -wal and -shm files are made there)")


def _private_sqlite(path: Path, *, create: bool) -> None:
    """Create ``path`` (and its missing folders, 0700) :data:`FILE_MODE` before SQLite opens it
    (it would use the umask); a ledger file, ``-wal`` or ``-shm`` file of ours that others may
    read is made :data:`FILE_MODE`, one of another owner is left as it is, with a warning."""
    if create:
        try:
            missing = [p for p in (path.parent, *path.parent.parents) if not p.is_dir()]
            for folder in reversed(missing):  # Path.mkdir makes parents with the umask's mode
                with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                    folder.mkdir(mode=0o700)
                if not folder.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, f"{folder} is not a directory")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass  # the ledger is there: SQLite opens it
        except OSError as error:
            raise ConfigurationError(f"the ledger at {path}: cannot create it: "
                                     f"{error.strerror or error}") from None
        else:
            try:
                os.fchmod(fd, FILE_MODE)  # the umask took bits away from O_CREAT's mode
            finally:
                os.close(fd)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            continue
        if info.st_uid != os.geteuid():
            log.warning("ledger_file_not_private", path=str(file), mode=oct(mode),
                        owner_uid=info.st_uid)
            continue
        try:
            file.chmod(mode & 0o700)
        except OSError as error:
            log.warning("ledger_file_not_private", path=str(file), mode=oct(mode),
                        error=error.strerror or str(error))
            continue
        log.warning("ledger_file_made_private", path=str(file), was=oct(mode),
                    now=oct(mode & 0o700))


def _sqlite_engine_args(url: str, path: Path, *, read_only: bool, must_exist: bool,
                        timeout_s: float) -> tuple[str, dict[str, Any]]:
    """The URL and ``create_engine`` arguments of the SQLite ledger ``url`` (at ``path``), once the
    path is checked (:func:`_sqlite_checked`), there when it must be, and — for a writer —
    private (:func:`_private_sqlite`, which creates it unless it ``must_exist``)."""
    _sqlite_checked(path, write=not read_only)
    if must_exist and not path.is_file():
        raise LedgerOpenError(f"no ledger at {path} (no such file)")
    if read_only:
        return f"sqlite:///{path}", {"creator": _read_only_sqlite(path, timeout_s)}
    _private_sqlite(path, create=not must_exist)
    return url, {"connect_args": {"timeout": timeout_s}}


def _read_only_sqlite(path: Path, timeout_s: float) -> Callable[[], sqlite3.Connection]:
    """Connections that can never write ``path``: ``mode=ro``; for a copy in a directory the
    reader may not write (WAL needs its ``-shm`` file), ``immutable=1`` as well."""
    base = "file:" + quote(str(path.resolve()))

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(f"{base}?mode=ro", uri=True, timeout=timeout_s,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as error:
            conn.close()
            name = getattr(error, "sqlite_errorname", "")
            if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
                raise
        return sqlite3.connect(f"{base}?mode=ro&immutable=1", uri=True, timeout=timeout_s,
                               check_same_thread=False)

    return connect


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
        refused_bytes_cap: int = REFUSED_BYTES_CAP,
        read_only: bool = False,
        wal_checkpointer: WalCheckpointer | None = None,
    ) -> None:
        self.engine = engine
        self.wal_checkpointer = wal_checkpointer
        """SQLite WAL checkpoints made in the background (``sqlite_wal_checkpoints``)."""
        self.refused_bytes_cap = refused_bytes_cap
        self.read_only = read_only
        self.blobs = blobs
        self.blob_threshold = blob_threshold
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self._signer = checkpoint_signer
        self._cert_pem = checkpoint_cert_pem
        self._is_pg = engine.dialect.name == "postgresql"
        self._sql = _DriverSql(engine.dialect)

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
        refused_bytes_cap: int = REFUSED_BYTES_CAP,
        read_only: bool = False,
        must_exist: bool = False,
        sqlite_wal_checkpoints: str = "inline",
        statement_timeout_s: float | None = None,
    ) -> Ledger:
        """Connect, create or migrate the schema (``alembic upgrade head``) and return a ledger.

        SQLite runs in WAL mode with ``synchronous=FULL`` unless told otherwise.

        ``read_only`` is for auditors' commands (verify, query, report, evidence, doctor): the
        database must exist and be at the current schema; nothing is created, migrated or
        written (a SQLite file is opened ``mode=ro``, a PostgreSQL session is ``READ ONLY``), so
        a read-only copy and a read-only role work. ``must_exist`` is the same check for a
        command that appends (an evidence export signing a fresh checkpoint): it may write, but
        never creates or migrates. Raises :class:`LedgerOpenError` (one line) when there is no
        ledger at the current schema there.

        Raises :class:`ConfigurationError` (one line, the cause in the server's words) when the
        settings are at fault: a PostgreSQL database or role that does not exist, a refused
        authentication (:func:`is_misconfigured`), a SQLite path that is a directory or that
        this user cannot write; :class:`TransientError` (LEDGER_UNAVAILABLE, with the
        :func:`cause`) when the database does not answer. A SQLite ledger is created
        :data:`FILE_MODE`; an opened one that others may read is made so (``_private_sqlite``).

        ``sqlite_wal_checkpoints="background"``: a SQLite ledger's WAL checkpoints are made by
        a thread of its own (:mod:`hub.ledger.walcheckpoint`), not by the committing
        connection — for a long-running writer (``hub run``); ``close()`` stops it.

        PostgreSQL: a connection attempt gives up after :data:`PG_CONNECT_TIMEOUT_S`, and TCP
        keepalives and a TCP user timeout (:data:`PG_TCP`) find a peer gone without a reset
        (parameters the URL names win). ``statement_timeout_s``: the sessions' statement
        timeout once the schema is current (the database cancels a statement that runs or
        waits for a lock longer, SQLSTATE 57014: LEDGER_UNAVAILABLE, retried — the consumer
        keeps its broker heartbeats flowing meanwhile); ``None`` or 0: none, or the URL's.
        """
        must_exist = must_exist or read_only
        if sqlite_synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError("sqlite_synchronous must be FULL, NORMAL or EXTRA")
        if sqlite_wal_checkpoints not in {"inline", "background"}:
            raise ValueError("sqlite_wal_checkpoints must be inline or background")
        path = _sqlite_file(url)
        kwargs: dict[str, Any]
        if path is not None:
            url, kwargs = _sqlite_engine_args(url, path, read_only=read_only,
                                              must_exist=must_exist,
                                              timeout_s=sqlite_busy_timeout_ms / 1000)
        else:
            kwargs = {"pool_pre_ping": True, "connect_args": _pg_connect_args(url)}
        engine = create_engine(url, **kwargs)
        wal_path = path if sqlite_wal_checkpoints == "background" and not read_only else None
        if engine.dialect.name == "sqlite":
            _install_sqlite_pragmas(engine, sqlite_synchronous, sqlite_busy_timeout_ms,
                                    read_only=read_only,
                                    autocheckpoint=SAFETY_NET_PAGES if wal_path else None)
        elif read_only:
            @event.listens_for(engine, "connect")
            def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                cursor.close()
                dbapi_connection.commit()
        try:
            if must_exist:
                _check_schema(engine, url)
            else:
                upgrade(engine)
        except (exc.OperationalError, exc.InterfaceError) as error:
            engine.dispose()
            if is_misconfigured(error):  # no restart helps: exit 3, not 4
                raise ConfigurationError(f"the ledger at {redact_url(url)}: {cause(error)}"
                                         ) from None
            raise unavailable(error) from error
        except LedgerOpenError:
            engine.dispose()
            raise
        if engine.dialect.name == "postgresql" and statement_timeout_s:
            # After the migration (an index built on a large ledger may take longer): the
            # connections it left in the pool are closed, the next ones set the timeout.
            _statement_timeout(engine, statement_timeout_s)
        checkpointer = None
        if wal_path is not None:
            checkpointer = WalCheckpointer(wal_path, timeout_s=sqlite_busy_timeout_ms / 1000)
            checkpointer.start()
        return cls(
            engine,
            blobs=BlobStore(blob_dir) if blob_dir is not None else None,
            blob_threshold=blob_threshold,
            checkpoint_every=checkpoint_every,
            checkpoint_interval_s=checkpoint_interval_s,
            checkpoint_signer=checkpoint_signer,
            checkpoint_cert_pem=checkpoint_cert_pem,
            refused_bytes_cap=refused_bytes_cap,
            read_only=read_only,
            wal_checkpointer=checkpointer,
        )

    @property
    def can_sign(self) -> bool:
        """True when checkpoints are signed (an operator key was given)."""
        return self._signer is not None

    def close(self) -> None:
        if self.wal_checkpointer is not None:
            self.wal_checkpointer.close()
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _appending(self) -> Iterator[tuple[Connection, _HeadState]]:
        """A write transaction holding the chain-head lock; yields the connection and head.

        Errors that blame the database (unreachable, locked, out of resources) become
        :class:`TransientError` (LEDGER_UNAVAILABLE); others propagate for :meth:`write` to
        blame rows."""
        if self.read_only:
            raise PermissionError("this ledger was opened read-only")
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    head = self._locked_head(conn)
                    yield conn, head
                    self._sql.update_head(conn, head)
            if self.wal_checkpointer is not None:
                self.wal_checkpointer.committed()
        except (exc.DBAPIError, exc.TimeoutError) as error:
            if is_transient(error):
                raise unavailable(error) from error
            raise

    def _locked_head(self, conn: Connection) -> _HeadState:
        return self._sql.locked_head(conn)

    @contextmanager
    def writer_connection(self) -> Iterator[Connection]:
        """A connection whose transactions are the writers' (on SQLite ``BEGIN IMMEDIATE``:
        no other writer between a transaction's first read and its commit), for a caller
        that writes outside :meth:`write` — a restore."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        # One transaction (one snapshot) for every statement of a look-up, begun explicitly:
        # the driver statements (_DriverSql) do not make SQLAlchemy begin one by themselves.
        # A read refused for the database's state — unreachable, or a state an operator
        # fixes (42501 a grant revoked, 42P01 a table renamed away during a restore) — is
        # LEDGER_UNAVAILABLE, as for a write (:func:`is_transient`): the consumer holds the
        # batch and retries; let out, it would stop the consumer.
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
            raise unavailable(error) from error
        except exc.DBAPIError as error:
            if is_transient(error):
                raise unavailable(error) from error
            raise

    # -- writing -----------------------------------------------------------------------------

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn], *,
              release: Sequence[str] = ()) -> None:
        """Append ``documents`` (skipping a (digest, kind) already stored) then ``events``, in
        one transaction. ``release``: outbox rows (by message id, :meth:`stage`) that these
        rows record; they are deleted in the same transaction.

        Raises :class:`TransientError` (``LEDGER_UNAVAILABLE``) when the database is
        unreachable, locked for too long or out of resources: retry the same batch later.
        Raises :class:`LedgerRowRejected` when the database (or the encoding) refuses rows for
        what they hold: nothing was written; the error names the offending rows so the caller
        can write the batch again without the deliveries they belong to."""
        if not documents and not events:
            if release:
                self.release(release)
            return
        try:
            prepared_docs = [self._prepare_document(d) for d in documents]
            prepared_events = [_prepare_event(e) for e in events]
            with self._appending() as (conn, head):
                self._refuse_receipt_conflicts(conn, prepared_events)
                self._append(conn, head, prepared_docs, prepared_events)
                self._sql.delete_outbox(conn, release)
                if self._checkpoint_due(head):
                    self._append_checkpoint(conn, head)
        except (TransientError, PermissionError, ReceiptConflict):
            raise
        except Exception as error:
            if is_transient(error):
                raise unavailable(error) from error
            raise self._locate(documents, events, error) from error

    def _refuse_receipt_conflicts(self, conn: Connection,
                                  prepared_events: Sequence[dict[str, Any]]) -> None:
        """Raise :class:`ReceiptConflict` when a ``receipt_issued`` event of the batch names a
        message id already recorded with other bytes: every copy published under one message
        id must be the one the ledger records. Checked under the chain-head lock, so two
        consumers cannot both pass; one indexed query per batch that issues receipts."""
        planned = {e["message_id"]: (e["digest"], e["detail"]) for e in prepared_events
                   if e["kind"] == EventKind.RECEIPT_ISSUED.value and e["digest"]}
        if not planned:
            return
        abouts = tuple(dict.fromkeys(digest for digest, _ in planned.values()))
        conflicts: list[str] = []
        for start in range(0, len(abouts), 500):
            for message_id, _, _, _, detail in self._sql.receipt_events(
                    conn, abouts[start:start + 500]):
                if message_id not in planned:
                    continue
                recorded = json.loads(detail).get("receipt_digest")
                if recorded != json.loads(planned[message_id][1]).get("receipt_digest"):
                    conflicts.append(message_id)
        if conflicts:
            raise ReceiptConflict(tuple(dict.fromkeys(conflicts)))

    # -- the outbox --------------------------------------------------------------------------

    def stage(self, receipts: Sequence[IssuedReceipt]) -> list[str]:
        """Write the receipts a batch is about to publish to the outbox, in a transaction of
        their own, *before* the first of them is published (a crash then leaves their exact
        bytes here for the redelivered packets). A message id already staged keeps its row.
        The intake no longer stages (it publishes receipts after the commit that records them);
        kept for tools and for ledgers written by hubs that did, whose rows :meth:`issued`
        still reads.

        Returns the message ids already staged with *other* bytes (another consumer signed the
        same receipt at the same time): the caller plans the batch again, which then reuses the
        staged bytes. Raises :class:`TransientError` (LEDGER_UNAVAILABLE) like :meth:`write`."""
        if not receipts:
            return []
        if self.read_only:
            raise PermissionError("this ledger was opened read-only")
        rows = {r.message_id: {"message_id": r.message_id, "about": r.about, "kind": r.kind,
                               "issuer": r.issuer, "reason": r.reason,
                               "recipient": r.recipient, "body": r.body,
                               "body_digest": chain.sha256_hex(r.body), "planned_at": r.at}
                for r in receipts}
        ids = list(rows)
        stmt: Any = (postgresql.insert(OutboxRow) if self._is_pg
                     else sqlite.insert(OutboxRow)).on_conflict_do_nothing(
                         index_elements=["message_id"])
        conflicts: list[str] = []
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    inserted = set(conn.scalars(stmt.returning(OutboxRow.message_id),
                                                list(rows.values())))
                    # Only a message id staged before (a redelivery, or another consumer) is
                    # read back: usually none.
                    kept = [m for m in ids if m not in inserted]
                    for start in range(0, len(kept), 500):
                        for message_id, digest in conn.execute(
                                select(OutboxRow.message_id, OutboxRow.body_digest).where(
                                    OutboxRow.message_id.in_(kept[start:start + 500]))):
                            if digest != rows[message_id]["body_digest"]:
                                conflicts.append(message_id)
        except (exc.DBAPIError, exc.TimeoutError) as error:
            if is_transient(error):
                raise unavailable(error) from error
            raise
        return conflicts

    def release(self, message_ids: Sequence[str]) -> None:
        """Delete outbox rows (their batch was recorded another way: see the consumer's
        isolation of a poison row)."""
        if not message_ids:
            return
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    self._sql.delete_outbox(conn, message_ids)
        except (exc.DBAPIError, exc.TimeoutError) as error:
            if is_transient(error):
                raise unavailable(error) from error
            raise

    def issued(self, abouts: Iterable[str]) -> dict[str, list[IssuedReceipt]]:
        """The receipts already issued about these packets (by the packets' SHA-256), in one
        query per 500 digests of the outbox and of the ledger: staged ones (published, batch
        not committed: a crash) and recorded ones (a ``receipt_issued`` event and its receipt
        document: committed, then a crash before the ack). What the pipeline republishes
        instead of signing anew. Read through the driver (:class:`_DriverSql`): the pipeline
        asks once per batch, and a small batch must not pay SQLAlchemy's statement building."""
        wanted = list(dict.fromkeys(abouts))
        out: dict[str, list[IssuedReceipt]] = {}
        sql = self._sql
        with self._reading() as conn:
            for start in range(0, len(wanted), 500):
                chunk = tuple(wanted[start:start + 500])
                seen: set[str] = set()
                for (message_id, about, kind, issuer, reason, recipient, body,
                     planned_at) in sql.outbox_about(conn, chunk):
                    seen.add(message_id)
                    out.setdefault(about, []).append(IssuedReceipt(
                        message_id, about, kind, issuer, reason, bytes(body), planned_at,
                        recipient=recipient, staged=True))
                recorded: dict[str, list[Any]] = {}
                for event_row in sql.receipt_events(conn, chunk):
                    message_id = event_row[0]
                    if message_id in seen:
                        continue
                    seen.add(message_id)
                    detail = json.loads(event_row[4])
                    receipt_digest = detail.get("receipt_digest")
                    if isinstance(receipt_digest, str):
                        recorded.setdefault(receipt_digest, []).append((event_row, detail))
                if not recorded:
                    continue
                for digest, raw, received_at, recipients in sql.receipt_documents(
                        conn, tuple(recorded)):
                    body = (bytes(raw) if raw is not None
                            else self.blobs.get(digest) if self.blobs is not None else None)
                    if body is None:
                        continue
                    addressees = json.loads(recipients)
                    for (message_id, about, organ_id, reason, _), detail in recorded[digest]:
                        to = detail.get("to") or (addressees[0] if addressees else "")
                        out.setdefault(about, []).append(IssuedReceipt(
                            message_id, about, str(detail.get("kind", "")), organ_id or "",
                            reason, body, received_at, recipient=str(to), staged=False))
        return out

    def _locate(self, documents: Sequence[DocumentIn], events: Sequence[EventIn],
                error: BaseException) -> LedgerRowRejected:
        """Find the rows the database refuses on their own: each is tried in a savepoint of
        one transaction that is rolled back (nothing is written, blobs included)."""
        bad_docs: list[int] = []
        bad_events: list[int] = []
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin() as outer:
                    head = self._locked_head(conn)
                    items: list[tuple[list[int], int, Callable[[], None]]] = []
                    for i, d in enumerate(documents):
                        items.append((bad_docs, i, lambda d=d: self._append(  # type: ignore[misc]
                            conn, replace(head), [self._prepare_document(d, store=False)], [])))
                    for i, e in enumerate(events):
                        items.append((bad_events, i, lambda e=e: self._append(  # type: ignore[misc]
                            conn, replace(head), [], [_prepare_event(e)])))
                    for bad, index, attempt in items:
                        savepoint = conn.begin_nested()
                        try:
                            attempt()
                        except Exception as row_error:
                            if is_transient(row_error):
                                raise
                            bad.append(index)
                        savepoint.rollback()
                    outer.rollback()
        except Exception as probe_error:
            if is_transient(probe_error):
                raise unavailable(probe_error) from probe_error
            raise
        rows: tuple[DocumentIn | EventIn, ...] = (
            *(documents[i] for i in bad_docs), *(events[i] for i in bad_events))
        return LedgerRowRejected(tuple(bad_docs), tuple(bad_events), rows, _error_detail(error))

    def _append(self, conn: Connection, head: _HeadState, prepared_docs: list[dict[str, Any]],
                prepared_events: list[dict[str, Any]]) -> None:
        """Chain and insert prepared rows after ``head``; advances ``head``.

        The rows go to the driver as tuples (:class:`_DriverSql`), one statement per table."""
        sql = self._sql
        existing = sql.existing_documents(conn, [p["digest"] for p in prepared_docs])
        stored = frozenset(existing)
        rolled: list[adoption.Contribution] = []
        seq, link = head.seq, head.chain_hash
        doc_rows: list[tuple[Any, ...]] = []
        delivery_rows: list[tuple[Any, ...]] = []
        evidence_rows: dict[str, dict[str, Any]] = {}
        time = sql.time
        for p in prepared_docs:
            if (p["digest"], p["kind"]) in existing:
                continue
            existing.add((p["digest"], p["kind"]))
            seq += 1
            entry = chain.document_entry(
                seq=seq, digest=p["digest"], sender=p["sender"],
                document_id=p["document_id"], kind=p["kind"], code=p["code"],
                subject_digest=p["subject_digest"], recipients=p["recipient_list"],
                received_at=p["received_text"], links_to=p["links_to"], size=p["size"],
                report_digest=p["report_digest"], refusal=p["refusal_obj"],
                revocation=p["revocation_list"])
            entry_hash = chain.entry_hash(entry)
            link = chain.link(link, entry_hash)
            received_at = time(p["received_at"])
            doc_rows.append((
                p["digest"], seq, entry_hash, link, p["sender"], p["document_id"], p["kind"],
                p["code"], p["subject_digest"], p["recipients"], received_at, p["links_to"],
                p["size"], p["raw"], p["report"], p["refusal"], p["revocation"]))
            evidence_rows.update(p["evidence_rows"])
            if p["adoption"] is not None:
                rolled.append(p["adoption"])
            if p["kind"] == "envelope":
                delivery_rows.extend((p["digest"], organ, PENDING, received_at, seq)
                                     for organ in dict.fromkeys(p["recipient_list"]))
        event_rows: list[tuple[Any, ...]] = []
        for e in prepared_events:
            seq += 1
            entry = chain.event_entry(
                seq=seq, kind=e["kind"], message_id=e["message_id"], at=e["at_text"],
                digest=e["digest"], organ_id=e["organ_id"], reason=e["reason"],
                actor=e["actor"], detail=e["detail"])
            entry_hash = chain.entry_hash(entry)
            link = chain.link(link, entry_hash)
            at = time(e["at"])
            event_rows.append((seq, entry_hash, link, e["kind"], e["message_id"], at, e["digest"],
                               e["organ_id"], e["reason"], e["actor"], e["detail"]))
            if e["kind"] in DELIVERY_KINDS and e["digest"] and e["organ_id"]:
                delivery_rows.append((e["digest"], e["organ_id"], e["kind"], at, seq))
        # The batch's statements, in this order (one per table, each only when it has rows).
        if doc_rows:
            sql.insert(conn, _DOCUMENTS, doc_rows)
        if rolled:
            adoption.record(conn, rolled, stored)
        if evidence_rows:
            self._insert_evidence(conn, list(evidence_rows.values()))
        if event_rows:
            sql.insert(conn, _EVENTS, event_rows)
        if delivery_rows:
            sql.upsert_deliveries(conn, delivery_rows)
        head.seq, head.chain_hash = seq, link

    def _insert_evidence(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        known = set(conn.scalars(select(EvidenceBlob.digest).where(
            EvidenceBlob.digest.in_([r["digest"] for r in rows]))))
        fresh = [r for r in rows if r["digest"] not in known]
        if fresh:
            conn.execute(insert(EvidenceBlob), fresh)

    def _prepare_document(self, d: DocumentIn, *, store: bool = True) -> dict[str, Any]:
        if d.kind not in DOCUMENT_KINDS:
            raise ValueError(f"unknown document kind {d.kind!r}")
        if (d.kind == REFUSED) != (d.refusal is not None):
            raise ValueError("a refusal goes with (and only with) a document of kind 'refused'")
        if not digest_is_of_raw(d) and chain.sha256_hex(d.raw) != d.digest:
            raise ValueError("DocumentIn.digest is not the SHA-256 of its bytes")
        report = chain.canonical_text(d.report) if d.report is not None else None
        raw: bytes | None = d.raw
        refusal_obj: dict[str, Any] | None = None
        if d.refusal is not None:
            kept = len(d.raw) <= self.refused_bytes_cap
            refusal_obj = {"reason": str(d.refusal.reason), "account": d.refusal.account,
                           "kept": kept, "cap": self.refused_bytes_cap}
            if not kept:
                raw = None
        if raw is not None and self.blobs is not None and len(d.raw) > self.blob_threshold:
            if store:
                self.blobs.put(d.digest, d.raw)  # before the row: a row never points at nothing
            raw = None
        revocation_list: list[dict[str, Any]] | None = None
        evidence_rows: dict[str, dict[str, Any]] = {}
        if d.revocation:
            revocation_list = []
            for r in d.revocation:
                if r.kind not in ("crl", "ocsp"):
                    raise ValueError(f"unknown revocation data kind {r.kind!r}")
                refs: dict[str, str | None] = {}
                for name, kind, data in (("digest", r.kind, r.der),
                                         ("certificate", "cert", r.certificate),
                                         ("issuer", "cert", r.issuer)):
                    if data is None:
                        refs[name] = None
                        continue
                    digest = chain.sha256_hex(data)
                    refs[name] = digest
                    evidence_rows[digest] = {"digest": digest, "kind": kind, "data": data,
                                             "first_seen": r.at, "kept": True}
                revocation_list.append({"kind": r.kind, "at": chain.utc_text(r.at),
                                        "source": r.source, **refs})
        recipients = list(d.recipients)
        received_text = chain.utc_text(d.received_at)
        return {
            "digest": d.digest, "sender": d.sender, "document_id": d.document_id,
            "kind": d.kind, "code": d.code, "subject_digest": d.subject_digest,
            "recipient_list": recipients,
            "recipients": chain.canonical_json(recipients).decode("utf-8"),
            "received_at": d.received_at, "received_text": received_text,
            "links_to": d.links_to, "size": len(d.raw), "raw": raw, "report": report,
            "report_digest": chain.sha256_hex(report.encode("utf-8")) if report else None,
            "refusal_obj": refusal_obj,
            "refusal": chain.canonical_json(refusal_obj).decode("utf-8") if refusal_obj else None,
            "revocation_list": revocation_list,
            "revocation": (chain.canonical_json(revocation_list).decode("utf-8")
                           if revocation_list is not None else None),
            "evidence_rows": evidence_rows,
            "adoption": adoption.contribution(
                d.kind, d.digest, d.sender, received_text, d.report, refusal_obj),
        }

    def rebuild_adoption(self) -> int:
        """Recompute the adoption report's rollup (``ledger_adoption``) from the documents,
        holding the writers' lock (see :mod:`hub.ledger.adoption`); returns its row count."""
        with self._appending() as (conn, _head):
            return adoption.rebuild(conn)

    def rebuild_deliveries(self) -> int:
        """Recompute the per-recipient delivery state (``ledger_deliveries``) from the chained
        rows, holding the writers' lock (see :mod:`hub.ledger.deliveries`); returns its rows."""
        with self._appending() as (conn, _head):
            return rebuild_delivery_state(conn)

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
        """The first document ``sender`` sent under ``document_id`` (QCVN 102 DocumentId) that
        the hub took in (refused packets never make a DocumentId taken)."""
        with self._reading() as conn:
            row = conn.execute(
                select(*_DOC_COLUMNS)
                .where(Document.sender == sender, Document.document_id == document_id,
                       Document.kind != REFUSED)
                .order_by(Document.seq).limit(1)).first()
        return _stored_document(row) if row is not None else None

    def find_documents(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredDocument]:
        """:meth:`find_document` for many (sender, DocumentId) keys in one query per 500 keys
        (the pipeline's duplicate check for a whole batch, read through the driver)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], StoredDocument] = {}
        with self._reading() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                # Two IN lists, not a row-value IN: SQLite then searches the (sender,
                # document_id) index; the row-value form (and ORDER BY seq) scanned the
                # whole table on every batch. The pairs are picked out below.
                pairs = set(chunk)
                rows = self._sql.documents_of(conn, sorted({s for s, _ in chunk}),
                                              sorted({d for _, d in chunk}))
                for doc in sorted(rows, key=lambda d: d.seq):
                    if (doc.sender, doc.document_id) in pairs:
                        found.setdefault((doc.sender, doc.document_id), doc)
        return found

    def delivered_to_many(self, digests: Iterable[str]) -> dict[str, frozenset[str]]:
        """:meth:`delivered_to` for many documents in one query per 500 digests."""
        wanted = list(dict.fromkeys(digests))
        out: dict[str, set[str]] = {d: set() for d in wanted}
        with self._reading() as conn:
            for start in range(0, len(wanted), 500):
                for digest, organ in self._sql.delivered(conn, wanted[start:start + 500]):
                    if organ and digest:
                        out[digest].add(organ)
        return {d: frozenset(v) for d, v in out.items()}

    def document_by_digest(
        self, digest: str, *, include_refused: bool = False
    ) -> StoredDocument | None:
        """The document the hub took in with these bytes; with ``include_refused``, a refused
        packet's record when the bytes were only ever refused."""
        stmt = select(*_DOC_COLUMNS).where(Document.digest == digest)
        if not include_refused:
            stmt = stmt.where(Document.kind.in_(ACCEPTED_KINDS))
        with self._reading() as conn:
            rows = list(conn.execute(stmt.order_by(Document.seq)))
        rows.sort(key=lambda r: r.kind == REFUSED)  # a taken-in record first
        return _stored_document(rows[0]) if rows else None

    def count_documents(self, *, sender: str, kind: str, since: datetime | None = None,
                        until: datetime | None = None) -> int:
        """How many documents of ``kind`` ``sender`` sent in [``since``, ``until``) (the
        ``(sender, document_id)`` index)."""
        stmt = select(func.count()).select_from(Document).where(
            Document.sender == sender, Document.kind == kind)
        if since is not None:
            stmt = stmt.where(Document.received_at >= since)
        if until is not None:
            stmt = stmt.where(Document.received_at < until)
        with self._reading() as conn:
            return int(conn.execute(stmt).scalar_one())

    def documents(
        self,
        *,
        code: str | None = None,
        document_id: str | None = None,
        organ_id: str | Sequence[str] | None = None,
        sender: str | None = None,
        kind: str | None = None,
        links_to: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredDocument]:
        """Documents by code, DocumentId, organization (as sender or recipient; several codes:
        any of them, one body's as :func:`hub.ledger.search.organ_codes` gives), period."""
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
            codes = _codes(organ_id)
            recipient_of = select(Delivery.digest).where(Delivery.organ_id.in_(codes))
            stmt = stmt.where(or_(Document.sender.in_(codes), Document.digest.in_(recipient_of)))
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
            rows = list(conn.execute(select(Document.raw).where(Document.digest == digest)))
        if not rows:
            return None
        for row in rows:
            if row.raw is not None:
                return bytes(row.raw)
        return self.blobs.get(digest) if self.blobs is not None else None

    def report(self, digest: str) -> dict[str, Any] | None:
        """The validation report stored with a document."""
        with self._reading() as conn:
            rows = list(conn.execute(select(Document.kind, Document.report)
                                     .where(Document.digest == digest).order_by(Document.seq)))
        rows.sort(key=lambda r: r.kind == REFUSED)
        text = next((r.report for r in rows if r.report is not None), None)
        return None if text is None else dict(json.loads(text))

    def evidence_blob(self, digest: str) -> bytes | None:
        """A CRL, OCSP answer or certificate a validation used, by the SHA-256 of its DER."""
        with self._reading() as conn:
            data = conn.scalar(select(EvidenceBlob.data).where(EvidenceBlob.digest == digest))
        return None if data is None else bytes(data)

    def delivered_to(self, digest: str) -> frozenset[str]:
        """Recipients that have a DELIVERED event for ``digest``."""
        with self._reading() as conn:
            return frozenset(o for _, o in self._sql.delivered(conn, (digest,)) if o is not None)

    def events(
        self,
        *,
        digest: str | None = None,
        organ_id: str | Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: EventKind | str | None = None,
        reason: str | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events in chain order, filtered; ``since`` inclusive, ``until`` exclusive;
        ``organ_id`` one code or several (any of them)."""
        stmt = select(*Event.__table__.c).order_by(Event.seq)
        if digest is not None:
            stmt = stmt.where(Event.digest == digest)
        if organ_id is not None:
            stmt = stmt.where(Event.organ_id.in_(_codes(organ_id)))
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
        trust: OperatorTrust | None = None,
        verify_signature: SignatureCheck | None = None,
        require_signed: bool = False,
        check_bytes: bool = True,
        jobs: int | None = None,
        min_segment_rows: int | None = None,
        expect: Sequence[Witness] = (),
    ) -> VerifyResult:
        """Check the whole chain, every checkpoint and (by default) every document's bytes.

        ``expect``: witnesses ``(seq, chain hash)`` noted earlier (``hub ledger verify
        --expect``): the verdict also fails unless the chain holds each of those rows with that
        hash — a chain cut back to an earlier checkpoint is found only that way.

        Checkpoint signatures are checked against ``trust`` (the operator's CA roots or pinned
        certificates, :class:`hub.ledger.verify.OperatorTrust`) or ``verify_signature``; with
        neither, only the chain is checked and ``signers_trusted`` stays False.

        ``jobs``: helper processes walking segments of a long chain (None: one per usable
        core; 1: this process alone); the verdict is the same (:mod:`hub.ledger.verify_parallel`).
        ``min_segment_rows`` is for tests: the rows a segment must hold."""
        from hub.ledger.verify import verify_ledger
        from hub.ledger.verify_parallel import MIN_SEGMENT_ROWS, Helpers

        if jobs is None:
            from hub.trust.signer_pool import usable_cores

            jobs = usable_cores()
        helpers = Helpers.of(self.engine, self.blobs, jobs,
                             min_segment_rows or MIN_SEGMENT_ROWS)
        try:
            with self.engine.connect() as conn:
                return verify_ledger(
                    conn, self.blobs, progress=progress, trust=trust,
                    verify_signature=verify_signature, require_signed=require_signed,
                    check_bytes=check_bytes, helpers=helpers, expect=expect)
        except (exc.OperationalError, exc.InterfaceError) as error:
            raise unavailable(error) from error

    @property
    def checkpoint_signing(self) -> tuple[Callable[[bytes], bytes], bytes | None] | None:
        """The key that signs this ledger's checkpoints (the operator's) with its certificate
        path, or None when the ledger was opened without it (what an evidence export signs
        its statement of the entries with)."""
        return None if self._signer is None else (self._signer, self._cert_pem)


def _codes(organ_id: str | Sequence[str]) -> tuple[str, ...]:
    """One organization code, or several (a body's), as a tuple for ``IN``."""
    return (organ_id,) if isinstance(organ_id, str) else tuple(organ_id)


_EVENT_KINDS: dict[str, str] = {k.value: k.value for k in EventKind}
"""Each event kind's stored text, by member or by value (a StrEnum member hashes as its value)."""


def _prepare_event(e: EventIn) -> dict[str, Any]:
    kind = _EVENT_KINDS.get(e.kind)
    return {
        "kind": kind if kind is not None else EventKind(e.kind).value,
        "message_id": e.message_id, "at": e.at,
        "at_text": chain.utc_text(e.at), "digest": e.digest, "organ_id": e.organ_id,
        "reason": None if e.reason is None else str(e.reason), "actor": e.actor,
        "detail": chain.canonical_text(e.detail),
    }


# -- driver-level statements -----------------------------------------------------------------

_DOCUMENTS = ("ledger_documents", (
    "digest", "seq", "entry_hash", "chain_hash", "sender", "document_id", "kind", "code",
    "subject_digest", "recipients", "received_at", "links_to", "size", "raw", "report",
    "refusal", "revocation"))
_EVENTS = ("ledger_events", (
    "seq", "entry_hash", "chain_hash", "kind", "message_id", "at", "digest", "organ_id",
    "reason", "actor", "detail"))
_DELIVERIES = ("ledger_deliveries", ("digest", "organ_id", "state", "updated_at", "updated_seq"))
_MANY = 1000
"""Rows per multi-row ``VALUES`` statement on PostgreSQL."""


@functools.lru_cache(maxsize=1024)
def _sqlite_time(at: datetime) -> str:
    """What SQLAlchemy stores for :class:`hub.ledger.models.UtcDateTime` on SQLite: the naive
    UTC time as ``YYYY-MM-DD HH:MM:SS.ffffff`` (its DATETIME storage format)."""
    return _naive_utc(at).isoformat(" ", "microseconds")


def _naive_utc(at: datetime) -> datetime:
    """What :class:`hub.ledger.models.UtcDateTime` binds: aware in, naive UTC out."""
    if at.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return at.astimezone(UTC).replace(tzinfo=None)


class _DriverSql:
    """The statements a batch runs, as SQL text for the driver with pre-built parameter tuples:
    no SQLAlchemy compilation or per-row type processing on the hot path. Values are bound as
    the models' types bind them (:func:`_sqlite_time`, :func:`_naive_utc`; proven equal in the
    tests).

    They run on the DBAPI cursor of the SQLAlchemy connection (inside its transaction), not
    through ``exec_driver_sql``: its execution context cost ~15-20 µs a statement, ~15
    statements a batch — what a small batch paid most for its ledger round. A driver error is
    wrapped exactly as SQLAlchemy wraps it (:func:`_on_cursor`, :func:`_driver_error`: the same
    ``DBAPIError`` subclass, the connection invalidated on a disconnect), so a refused row and
    an unavailable database are told apart as before.

    SQLite gets ``executemany`` of one prepared statement; PostgreSQL one multi-row ``VALUES``
    statement per :data:`_MANY` rows (psycopg2's ``executemany`` is one round trip a row)."""

    def __init__(self, dialect: Any) -> None:
        self.pg = dialect.name == "postgresql"
        self.mark = "%s" if self.pg else "?"
        self.time: Callable[[datetime], Any] = _naive_utc if self.pg else _sqlite_time
        self._head_time = UtcDateTime().dialect_impl(dialect).result_processor(dialect, None)
        assert self._head_time is not None  # UtcDateTime always attaches UTC
        self.read_time: Callable[[Any], Any] = self._head_time
        """A stored time as the models read it (aware UTC)."""
        # Every statement is made of the hub's own table and column names and placeholders.
        self._head = "SELECT seq, chain_hash, checkpoint_seq, checkpoint_at FROM ledger_head WHERE id = 1"
        if self.pg:
            self._head += " FOR UPDATE"
        m = self.mark
        self._update_head = (f"UPDATE ledger_head SET seq = {m}, chain_hash = {m},"  # noqa: S608
                             f" checkpoint_seq = {m}, checkpoint_at = {m} WHERE id = 1")
        # SQLite's planner (no statistics) picks the index on kind for "digest IN (…) AND
        # kind = ?": a walk over every receipt (or delivery) the ledger ever recorded, on every
        # batch (the receipt-conflict check, the pipeline's look-up of receipts issued and of a
        # packet's deliveries). "+kind" is the same comparison made a filter, so the index on
        # digest is used: a few rows a packet. PostgreSQL has statistics (and no unary plus on
        # text).
        self._event_kind = "kind" if self.pg else "+kind"
        self._upsert = (" ON CONFLICT (digest, organ_id) DO UPDATE SET state = excluded.state,"
                        " updated_at = excluded.updated_at, updated_seq = excluded.updated_seq")

    # -- running statements on the connection's DBAPI cursor (_on_cursor) ----------------------
    def run(self, conn: Connection, statement: str, params: Any = (), *,
            many: bool = False) -> None:
        _on_cursor(conn, statement, params, many=many).close()

    def rows(self, conn: Connection, statement: str, params: Any = ()) -> list[Any]:
        cursor = _on_cursor(conn, statement, params)
        try:
            return list(cursor.fetchall())
        except conn.dialect.loaded_dbapi.Error as error:
            raise _driver_error(conn, statement, params, error,
                                conn.connection.dbapi_connection, cursor) from error
        finally:
            cursor.close()

    # -- the statements ------------------------------------------------------------------------
    def locked_head(self, conn: Connection) -> _HeadState:
        rows = self.rows(conn, self._head)
        if len(rows) != 1:
            raise exc.NoResultFound("the ledger has no chain head row")
        seq, chain_hash, checkpoint_seq, checkpoint_at = rows[0]
        if self._head_time is not None:
            checkpoint_at = self._head_time(checkpoint_at)
        return _HeadState(int(seq), chain_hash, int(checkpoint_seq), checkpoint_at)

    def update_head(self, conn: Connection, head: _HeadState) -> None:
        at = head.checkpoint_at
        self.run(conn, self._update_head, (
            head.seq, head.chain_hash, head.checkpoint_seq, None if at is None else self.time(at)))

    def existing_documents(self, conn: Connection, digests: Iterable[str]) -> set[tuple[str, str]]:
        """(digest, kind) of the documents already stored under these digests."""
        wanted = list(dict.fromkeys(digests))
        found: set[tuple[str, str]] = set()
        for start in range(0, len(wanted), 500):
            chunk = tuple(wanted[start:start + 500])
            marks = ", ".join([self.mark] * len(chunk))
            found.update((digest, kind) for digest, kind in self.rows(
                conn,
                f"SELECT digest, kind FROM ledger_documents WHERE digest IN ({marks})",  # noqa: S608
                chunk))
        return found

    def _marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def documents_of(self, conn: Connection, senders: Sequence[str],
                     document_ids: Sequence[str]) -> list[StoredDocument]:
        """The documents (not refused) whose sender and DocumentId are among these."""
        columns = ", ".join(c.key for c in _DOC_COLUMNS)
        rows = self.rows(
            conn,
            f"SELECT {columns} FROM ledger_documents WHERE sender IN"  # noqa: S608
            f" ({self._marks(len(senders))}) AND document_id IN ({self._marks(len(document_ids))})"
            f" AND kind != {self.mark}", (*senders, *document_ids, REFUSED))
        return [_stored_document_row(row, self.read_time) for row in rows]

    def outbox_about(self, conn: Connection, abouts: Sequence[str]) -> list[tuple[Any, ...]]:
        """(message_id, about, kind, issuer, reason, recipient, body, planned_at) staged about
        these packets."""
        rows = self.rows(
            conn,
            "SELECT message_id, about, kind, issuer, reason, recipient, body, planned_at"  # noqa: S608
            f" FROM ledger_outbox WHERE about IN ({self._marks(len(abouts))})",
            abouts)
        return [(*row[:7], self.read_time(row[7])) for row in rows]

    def receipt_events(self, conn: Connection, digests: Sequence[str]) -> list[tuple[Any, ...]]:
        """(message_id, digest, organ_id, reason, detail) of the receipts issued about these
        packets, in chain order."""
        return [tuple(row) for row in self.rows(
            conn,
            "SELECT message_id, digest, organ_id, reason, detail FROM ledger_events"  # noqa: S608
            f" WHERE digest IN ({self._marks(len(digests))}) AND {self._event_kind} = {self.mark}"
            " ORDER BY seq", (*digests, EventKind.RECEIPT_ISSUED.value))]

    def delivered(self, conn: Connection, digests: Sequence[str]) -> list[tuple[Any, ...]]:
        """(digest, organ_id) of the DELIVERED events about these packets, each pair once."""
        return [tuple(row) for row in self.rows(
            conn,
            "SELECT DISTINCT digest, organ_id FROM ledger_events"  # noqa: S608
            f" WHERE digest IN ({self._marks(len(digests))}) AND {self._event_kind} = {self.mark}",
            (*digests, EventKind.DELIVERED.value))]

    def receipt_documents(self, conn: Connection,
                          digests: Sequence[str]) -> list[tuple[Any, ...]]:
        """(digest, raw, received_at, recipients) of these receipt documents."""
        rows = self.rows(
            conn,
            "SELECT digest, raw, received_at, recipients FROM ledger_documents"  # noqa: S608
            f" WHERE kind = {self.mark} AND digest IN ({self._marks(len(digests))})",
            ("receipt", *digests))
        return [(row[0], row[1], self.read_time(row[2]), row[3]) for row in rows]

    def delete_outbox(self, conn: Connection, message_ids: Sequence[str]) -> None:
        ids = tuple(message_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join([self.mark] * len(chunk))
            self.run(conn,
                     f"DELETE FROM ledger_outbox WHERE message_id IN ({marks})", chunk)  # noqa: S608

    def insert(self, conn: Connection, table: tuple[str, tuple[str, ...]],
               rows: list[tuple[Any, ...]], suffix: str = "") -> None:
        name, columns = table
        head = f"INSERT INTO {name} ({', '.join(columns)}) VALUES "  # noqa: S608
        one = "(" + ", ".join([self.mark] * len(columns)) + ")"
        if not self.pg:
            self.run(conn, head + one + suffix, rows, many=True)
            return
        for start in range(0, len(rows), _MANY):
            chunk = rows[start:start + _MANY]
            self.run(conn, head + ", ".join([one] * len(chunk)) + suffix,
                     tuple(value for row in chunk for value in row))

    def upsert_deliveries(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        # Later rows win: keep the last state per (digest, recipient) of this batch (a
        # multi-row upsert may not touch one row twice).
        latest = {(row[0], row[1]): row for row in rows}
        self.insert(conn, _DELIVERIES, list(latest.values()), self._upsert)


_DOC_COLUMNS = (Document.digest, Document.kind, Document.sender, Document.document_id,
                Document.code, Document.recipients, Document.received_at, Document.links_to,
                Document.size, Document.seq, Document.refusal)


def _stored_document_row(row: Sequence[Any], read_time: Callable[[Any], Any]) -> StoredDocument:
    """:func:`_stored_document` of a driver row in :data:`_DOC_COLUMNS` order."""
    (digest, kind, sender, document_id, code, recipients, received_at, links_to, size, seq,
     refusal) = row
    return StoredDocument(
        digest=digest, kind=kind, sender=sender, document_id=document_id, code=code,
        recipients=tuple(json.loads(recipients)), received_at=read_time(received_at),
        links_to=links_to, size=int(size), seq=int(seq),
        refusal=json.loads(refusal) if refusal is not None else None)


def _stored_document(row: Any) -> StoredDocument:
    return StoredDocument(
        digest=row.digest, kind=row.kind, sender=row.sender, document_id=row.document_id,
        code=row.code, recipients=tuple(json.loads(row.recipients)),
        received_at=row.received_at, links_to=row.links_to, size=int(row.size), seq=int(row.seq),
        refusal=json.loads(row.refusal) if row.refusal is not None else None)


def _check_schema(engine: Engine, url: str) -> None:
    """Refuse (one line) a database that is not a ledger at this hub's schema."""
    revisions = stored_revisions(engine)
    where = make_url(url).render_as_string(hide_password=True)
    if not revisions:
        raise LedgerOpenError(f"no ledger at {where} (no ledger tables)")
    if len(revisions) > 1:
        # Alembic itself refuses such a table ("more than one head"): no upgrade mends it.
        raise LedgerOpenError(
            f"the ledger at {where} records {len(revisions)} schema revisions"
            f" ({', '.join(revisions)}) where Alembic keeps one: not a ledger this hub reads")
    if revisions[0] != SCHEMA_REVISION:
        raise LedgerOpenError(
            f"the ledger at {where} has schema {revisions[0]}, this hub reads {SCHEMA_REVISION}:"
            " upgrade a copy with `hub ledger migrate --url ...` first")


def _stored_event(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=int(row.seq), kind=EventKind(row.kind), message_id=row.message_id, at=row.at,
        digest=row.digest, organ_id=row.organ_id, reason=row.reason, actor=row.actor,
        detail=json.loads(row.detail))
