"""System ids and secrets of agency systems that cannot present a client certificate.

The national axis' SDKs authenticate each connected document system with a *system id* and a
*secret key* (DOMAIN §6); the hub offers the same, with the secret stored only as an argon2id
hash (RFC 9106, through the maintained ``argon2-cffi``) in a TOML file an operator manages with
``hub api credentials``::

    [system."finance-eoffice"]
    organization = "000.00.03.H27"
    hash = "$argon2id$v=19$m=65536,t=3,p=4$..."
    created = "2026-12-06T03:00:00+00:00"
    # after `hub api credentials rotate --keep-old-for 7d`, the previous secret still works until:
    previous_hash = "$argon2id$..."
    previous_until = "2026-12-13T03:00:00+00:00"

Why a cache: argon2 is slow on purpose (~0.4 s per verification with the library's defaults on
this machine), which is right for a login and wrong for every request of a document system. A
secret that verified is remembered for ``[api] secret_cache_s`` under an HMAC of (system id,
secret) keyed by a random per-process key, so the cache never holds a secret and a wrong secret
is never served from it. The cache remembers which hash the secret matched: a match of the
previous secret is served only while the rotation's overlap lasts (``previous_until``, read
with the store's clock), never for the rest of ``secret_cache_s``. The file is re-read when it
changes (a rotation or a removal takes effect at once: the cache is dropped on every reload).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub.errors import ConfigurationError

__all__ = ["CredentialStore", "SystemEntry", "new_secret", "read_systems", "write_systems"]

SYSTEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What a system id may look like (it goes into logs and file keys)."""


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """One agency system allowed to call the API with a secret."""

    system_id: str
    organization: str
    """The organization code it speaks for (a code of the directory)."""
    hash: str
    """argon2id hash of the current secret."""
    created: str = ""
    previous_hash: str = ""
    """The secret before the last rotation, accepted until :attr:`previous_until`."""
    previous_until: str = ""

    def previous_valid(self, now: datetime) -> bool:
        if not self.previous_hash or not self.previous_until:
            return False
        try:
            until = datetime.fromisoformat(self.previous_until)
        except ValueError:
            return False
        return now < (until if until.tzinfo else until.replace(tzinfo=UTC))


def new_secret() -> str:
    """A fresh secret: 256 random bits, URL-safe (shown once, stored only hashed)."""
    return secrets.token_urlsafe(32)


def read_systems(path: Path) -> dict[str, SystemEntry]:
    """The systems of a credentials file (a missing file holds none)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the credentials file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    table = data.get("system", {})
    unknown = set(data) - {"system"}
    if unknown or not isinstance(table, dict):
        raise ConfigurationError(f"{path}: only [system.\"<id>\"] tables are allowed")
    out: dict[str, SystemEntry] = {}
    fields = {"organization", "hash", "created", "previous_hash", "previous_until"}
    for system_id, raw in table.items():
        if not SYSTEM_ID.fullmatch(system_id) or not isinstance(raw, dict):
            raise ConfigurationError(f"{path}: bad system entry {system_id!r}")
        extra = set(raw) - fields
        if extra:
            raise ConfigurationError(f"{path}: system {system_id!r}: unknown key {sorted(extra)[0]!r}")
        if not all(isinstance(v, str) for v in raw.values()):
            raise ConfigurationError(f"{path}: system {system_id!r}: values must be strings")
        if not raw.get("organization") or not str(raw.get("hash", "")).startswith("$argon2"):
            raise ConfigurationError(
                f"{path}: system {system_id!r} needs an organization and an argon2 hash")
        out[system_id] = SystemEntry(system_id=system_id, **raw)
    return out


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def write_systems(path: Path, systems: dict[str, SystemEntry]) -> None:
    """Write the file atomically (a temporary file renamed over it), readable by its owner."""
    lines = ["# hub api credentials: agency systems, their organization and argon2 hashes of their",
             "# secrets (never the secrets). Managed with `hub api credentials`.", ""]
    for system_id in sorted(systems):
        entry = systems[system_id]
        lines.append(f"[system.{_toml_string(system_id)}]")
        for key in ("organization", "hash", "created", "previous_hash", "previous_until"):
            value = getattr(entry, key)
            if value:
                lines.append(f"{key} = {_toml_string(value)}")
        lines.append("")
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None


class CredentialStore:
    """Verifies system id + secret against the credentials file (thread-safe)."""

    def __init__(self, path: Path, *, cache_s: float = 300.0,
                 hasher: PasswordHasher | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self.cache_s = cache_s
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[str, float]] = {}
        """HMAC(system id, secret) → (the hash it matched, monotonic expiry)."""
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._systems: dict[str, SystemEntry] = {}
        self._dummy = self.hasher.hash(new_secret())
        self._reload(force=True)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        self._checked = now
        stamp = self._file_stamp()
        if not force and stamp == self._stamp:
            return
        systems = read_systems(self.path)
        with self._lock:
            self._systems = systems
            self._stamp = stamp
            self._cache.clear()

    def systems(self) -> Iterator[SystemEntry]:
        self._reload()
        yield from list(self._systems.values())

    def verify(self, system_id: str, secret: str) -> SystemEntry | None:
        """The system, when ``secret`` is its current secret (or its previous one, during a
        rotation's overlap); None otherwise. Never raises for a bad input."""
        with contextlib.suppress(ConfigurationError):
            self._reload()  # a half-edited file: keep serving the last good one
        token = hmac.new(self._key, f"{system_id}\0{secret}".encode(), hashlib.sha256).digest()
        with self._lock:
            entry = self._systems.get(system_id)
            cached = self._cache.get(token)
        if cached is not None and entry is not None and cached[1] > time.monotonic():
            # A match of the previous secret ends with the overlap, not with the cache entry.
            matched = cached[0]
            if matched == entry.hash or (matched == entry.previous_hash
                                         and entry.previous_valid(self.clock())):
                return entry
            return None
        if entry is None:
            # Same work as for a known system: the answer time does not tell which ids exist.
            self._check(self._dummy, secret)
            return None
        if self._check(entry.hash, secret):
            matched = entry.hash
        elif entry.previous_valid(self.clock()) and self._check(entry.previous_hash, secret):
            matched = entry.previous_hash
        else:
            return None
        if self.cache_s > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = (matched, time.monotonic() + self.cache_s)
        return entry

    def _check(self, hashed: str, secret: str) -> bool:
        try:
            return bool(self.hasher.verify(hashed, secret))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


# -- what `hub api credentials` does --------------------------------------------------------------
def add_system(path: Path, system_id: str, organization: str, hasher: PasswordHasher,
               now: datetime) -> str:
    """Register a system; returns its secret (shown once)."""
    if not SYSTEM_ID.fullmatch(system_id):
        raise ValueError(f"system id {system_id!r}: 1-64 of [A-Za-z0-9._-], starting alphanumeric")
    systems = read_systems(path)
    if system_id in systems:
        raise ValueError(f"system {system_id!r} exists: use `hub api credentials rotate`")
    secret = new_secret()
    systems[system_id] = SystemEntry(system_id, organization, hasher.hash(secret),
                                     created=now.isoformat(timespec="seconds"))
    write_systems(path, systems)
    return secret


def rotate_system(path: Path, system_id: str, hasher: PasswordHasher, now: datetime,
                  keep_old_for: timedelta = timedelta(0)) -> str:
    """A new secret for a system; the old one keeps working for ``keep_old_for`` (0: never)."""
    systems = read_systems(path)
    entry = systems.get(system_id)
    if entry is None:
        raise ValueError(f"no system {system_id!r} in {path}")
    secret = new_secret()
    keep = keep_old_for > timedelta(0)
    systems[system_id] = replace(
        entry, hash=hasher.hash(secret), created=now.isoformat(timespec="seconds"),
        previous_hash=entry.hash if keep else "",
        previous_until=(now + keep_old_for).isoformat(timespec="seconds") if keep else "")
    write_systems(path, systems)
    return secret


def remove_system(path: Path, system_id: str) -> None:
    systems = read_systems(path)
    if systems.pop(system_id, None) is None:
        raise ValueError(f"no system {system_id!r} in {path}")
    write_systems(path, systems)
