"""The console's people: accounts, roles, argon2 password hashes and server-side sessions.

Stored in a small SQLite file of its own (``[console] users``), not in the ledger:

- the ledger is the append-only record auditors receive (backups, evidence bundles); password
  hashes and session tokens are mutable secrets that have no place in it. What people *do* is
  in the ledger (``operator_action``, ``replayed``, ``discarded`` events with the person as
  actor); who may sign in is here;
- an auditor's read-only copy of the ledger stays a plain copy;
- the schema of a dozen columns needs no Alembic chain of its own and merges with nobody's.

One console process owns the file (SQLite WAL; the standard library's driver, no SQLAlchemy).
A console replica on another host needs its own file or a shared volume (docs/console/README.md).

Passwords are hashed with Argon2id (argon2-cffi, RFC 9106 parameters by default: 3 passes,
64 MiB, parallelism 4, ~160 ms here); tests pass cheaper parameters. Session tokens are 256
random bits; only their SHA-256 is stored, so a copy of this file signs nobody in. A session
ends after ``idle`` without a request, after ``lifetime`` in any case, at sign-out, when the
account is disabled or its password changed.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["Role", "Session", "User", "UserError", "UserStore"]


class Role(enum.StrEnum):
    """What a person may do in the console (issue 20: separation of duties)."""

    OPERATOR = "operator"
    """Dead letters: look, replay, discard; the ledger and health to follow up."""
    AUDITOR = "auditor"
    """Read-only: the ledger, evidence bundles, the adoption report, dead letters (no action)."""
    ADMIN = "admin"
    """People: add accounts, change roles, reset passwords, disable; health."""


class UserError(Exception):
    """A request about accounts that cannot be done as asked (one line for the person).

    ``key`` names the text in :data:`hub.console.i18n.TEXTS`, filled with ``params``:
    ``str()`` is the English line (the shell's), :meth:`text` the page's language."""

    def __init__(self, key: str, **params: object) -> None:
        self.key, self.params = key, params
        super().__init__(self.text("en"))

    def text(self, lang: str) -> str:
        from hub.console.i18n import translator

        return translator(lang)(self.key).format(**self.params)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    full_name: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    """The session's CSRF token: every form carries it, every POST must return it."""
    expires_at: datetime


_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY,
    full_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES console_users(name),
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_console_sessions_name ON console_sessions(name);
"""

MAX_FAILURES = 10
"""Consecutive wrong passwords before an account is locked for :data:`LOCKOUT`."""
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
"""Shortest password accepted (a passphrase is better)."""
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_@")


def _text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """A login name: 1–64 characters of ``a-z 0-9 . - _ @`` (lower-cased)."""
    value = name.strip().lower()
    if not value or len(value) > 64 or not set(value) <= _NAME_CHARS:
        raise UserError("user.bad_name", name=repr(name[:64]))
    return value


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError("user.short_password", n=MIN_PASSWORD)
    if len(password) > 1024:
        raise UserError("user.long_password", n=1024)
    return password


class UserStore:
    """Accounts and sessions in one SQLite file; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None,
                 idle: timedelta = timedelta(minutes=30),
                 lifetime: timedelta = timedelta(hours=10)) -> None:
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self.idle = idle
        self.lifetime = lifetime
        path.parent.mkdir(parents=True, exist_ok=True)
        _owner_only(path)
        self._lock = threading.Lock()
        self._signin_lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        # Never hash twice for an unknown name vs a known one: the same work either way.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- accounts ------------------------------------------------------------------------------
    def add(self, name: str, role: Role | str, password: str, *, full_name: str = "",
            now: datetime | None = None) -> User:
        name = check_name(name)
        role = _role(role)
        digest = self.hasher.hash(check_password(password))
        at = _text(now or datetime.now(UTC))
        with self._tx() as db:
            if db.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone():
                raise UserError("user.exists", name=repr(name))
            db.execute("INSERT INTO console_users (name, full_name, role, password_hash, "
                       "created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (name, full_name.strip()[:200], role.value, digest, at, at))
        user = self.get(name)
        assert user is not None
        return user

    def check_new(self, name: str, role: Role | str, password: str) -> tuple[str, Role]:
        """Every check :meth:`add` makes, without adding: the login name and role as they will
        be stored, or :class:`UserError`. Run it before the change is audited, so that a
        refused account leaves no record of being added."""
        name, checked = check_name(name), _role(role)
        check_password(password)
        if self.get(name) is not None:
            raise UserError("user.exists", name=repr(name))
        return name, checked

    def existing(self, name: str) -> User:
        """The account called ``name`` (any case), or :class:`UserError` when there is none:
        the check a change to an account needs before it is audited."""
        user = self.get(name)
        if user is None:
            raise UserError("user.unknown", name=repr(name[:64]))
        return user

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT name, role, full_name, active, created_at FROM "
                                   "console_users WHERE name = ?", (name.strip().lower(),)).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, full_name, active, created_at FROM "
                                    "console_users ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def set_password(self, name: str, password: str, *, now: datetime | None = None) -> None:
        """A new password; every session of the account ends."""
        digest = self.hasher.hash(check_password(password))
        self._change(name, "password_hash = ?, failures = 0, locked_until = NULL", (digest,), now)

    def set_role(self, name: str, role: Role | str, *, now: datetime | None = None) -> None:
        self._change(name, "role = ?", (_role(role).value,), now)

    def set_active(self, name: str, active: bool, *, now: datetime | None = None) -> None:
        self._change(name, "active = ?, failures = 0, locked_until = NULL", (int(active),), now)

    def _change(self, name: str, assignments: str, values: tuple[object, ...],
                now: datetime | None) -> None:
        at = _text(now or datetime.now(UTC))
        key = name.strip().lower()
        with self._tx() as db:
            done = db.execute(f"UPDATE console_users SET {assignments}, changed_at = ? "  # noqa: S608
                              "WHERE name = ?", (*values, at, key)).rowcount
            if not done:
                raise UserError("user.unknown", name=repr(name[:64]))
            db.execute("DELETE FROM console_sessions WHERE name = ?", (key,))

    # -- signing in ----------------------------------------------------------------------------
    def authenticate(self, name: str, password: str, *, now: datetime | None = None) -> User | None:
        """The account when ``password`` is its password and it may sign in, else None.

        Unknown names cost the same hash as known ones; :data:`MAX_FAILURES` wrong passwords in
        a row lock the account for :data:`LOCKOUT`. Attempts are checked one at a time (callers
        may be threads): one read in parallel with others would see the account as it was before
        their failures, and a burst of guesses would slip past the lockout."""
        with self._signin_lock:
            return self._authenticate(name, password, now)

    def _authenticate(self, name: str, password: str, now: datetime | None) -> User | None:
        at = now or datetime.now(UTC)
        key = name.strip().lower()[:64]
        with self._lock:
            row = self._db.execute("SELECT password_hash, active, locked_until FROM "
                                   "console_users WHERE name = ?", (key,)).fetchone()
        stored = row[0] if row else self._dummy
        try:
            ok: bool = self.hasher.verify(stored, password[:1024])
        except (VerificationError, InvalidHashError):
            ok = False
        if row is None:
            return None
        locked = row[2] is not None and _time(row[2]) > at
        with self._tx() as db:
            if not ok:
                failures = db.execute("UPDATE console_users SET failures = failures + 1 WHERE "
                                      "name = ? RETURNING failures", (key,)).fetchone()[0]
                if failures >= MAX_FAILURES:
                    db.execute("UPDATE console_users SET locked_until = ?, failures = 0 "
                               "WHERE name = ?", (_text(at + LOCKOUT), key))
                return None
            if locked or not row[1]:
                return None
            db.execute("UPDATE console_users SET failures = 0, locked_until = NULL WHERE name = ?",
                       (key,))
            if self.hasher.check_needs_rehash(stored):
                db.execute("UPDATE console_users SET password_hash = ? WHERE name = ?",
                           (self.hasher.hash(password), key))
        return self.get(key)

    def open_session(self, user: User, *, now: datetime | None = None) -> tuple[str, Session]:
        """A new session: the token for the cookie (never stored) and the session."""
        at = now or datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = at + self.lifetime
        with self._tx() as db:
            db.execute("DELETE FROM console_sessions WHERE expires_at < ?", (_text(at),))
            db.execute("INSERT INTO console_sessions (token_hash, name, csrf, created_at, "
                       "seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (_token_hash(token), user.name, csrf, _text(at), _text(at),
                        _text(expires)))
        return token, Session(user, csrf, expires)

    def session(self, token: str, *, now: datetime | None = None) -> Session | None:
        """The live session of ``token`` (its idle clock restarts), or None."""
        if not token or len(token) > 128:
            return None
        at = now or datetime.now(UTC)
        key = _token_hash(token)
        with self._lock:
            row = self._db.execute(
                "SELECT s.csrf, s.seen_at, s.expires_at, u.name, u.role, u.full_name, u.active, "
                "u.created_at FROM console_sessions s JOIN console_users u ON u.name = s.name "
                "WHERE s.token_hash = ?", (key,)).fetchone()
            if row is None:
                return None
            expires = _time(row[2])
            if expires <= at or _time(row[1]) + self.idle <= at or not row[6]:
                self._db.execute("DELETE FROM console_sessions WHERE token_hash = ?", (key,))
                return None
            self._db.execute("UPDATE console_sessions SET seen_at = ? WHERE token_hash = ?",
                             (_text(at), key))
        return Session(_user(row[3:]), row[0], expires)

    def close_session(self, token: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM console_sessions WHERE token_hash = ?", (_token_hash(token),))


def _owner_only(path: Path) -> None:
    """The database and its ``-wal``/``-shm`` files readable by this account alone.

    They hold the password hashes and the sessions' CSRF tokens. SQLite creates the side files
    with the mode of the database file (``findCreateFileMode`` in ``os_unix.c``), so the database
    is created 0600 before SQLite opens it, never made so afterwards; side files an older
    version left behind are closed too. No umask change: it is process-wide, and other threads
    create files meanwhile."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for side in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with suppress(FileNotFoundError):
            side.chmod(0o600)


def _role(role: Role | str) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise UserError("user.bad_role", role=repr(str(role)[:32])) from None


def _user(row: tuple[object, ...]) -> User:
    return User(name=str(row[0]), role=Role(str(row[1])), full_name=str(row[2]),
                active=bool(row[3]), created_at=_time(str(row[4])))
