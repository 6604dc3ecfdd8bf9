"""Console accounts: argon2id hashes, lockout, sessions that end (hub/console/users.py)."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher

from hub.console.users import LOCKOUT, MAX_FAILURES, Role, UserError, UserStore

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
GOOD = "một mật khẩu đủ dài"


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    s = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP, idle=timedelta(minutes=30),
                  lifetime=timedelta(hours=10))
    s.add("vanhanh", Role.OPERATOR, GOOD, full_name="Nguyễn Văn Hành", now=T0)
    return s


def test_a_password_is_kept_only_as_an_argon2id_hash(store: UserStore, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "users.sqlite3")
    [stored] = db.execute("SELECT password_hash FROM console_users").fetchone()
    assert stored.startswith("$argon2id$")
    assert GOOD not in stored
    assert (tmp_path / "users.sqlite3").stat().st_mode & 0o077 == 0


def test_the_right_password_signs_in_and_wrong_ones_or_unknown_names_do_not(
    store: UserStore
) -> None:
    user = store.authenticate("VanHanh ", GOOD, now=T0)
    assert user is not None
    assert user.role is Role.OPERATOR
    assert store.authenticate("vanhanh", GOOD + "x", now=T0) is None
    assert store.authenticate("nobody", GOOD, now=T0) is None


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(store: UserStore) -> None:
    user = store.authenticate("vanhanh", GOOD, now=T0)
    assert user is not None
    token, _ = store.open_session(user, now=T0)
    store.set_active("vanhanh", False, now=T0)
    assert store.session(token, now=T0) is None
    assert store.authenticate("vanhanh", GOOD, now=T0) is None


def test_repeated_wrong_passwords_lock_the_account_for_a_while(store: UserStore) -> None:
    for _ in range(MAX_FAILURES):
        assert store.authenticate("vanhanh", "sai mật khẩu rồi", now=T0) is None
    # Locked: even the right password is refused ...
    assert store.authenticate("vanhanh", GOOD, now=T0 + timedelta(minutes=1)) is None
    # ... until the lockout has passed
    assert store.authenticate("vanhanh", GOOD, now=T0 + LOCKOUT + timedelta(seconds=1))


def test_a_session_ends_when_idle_at_its_lifetime_at_sign_out_and_on_a_new_password(
    store: UserStore
) -> None:
    user = store.authenticate("vanhanh", GOOD, now=T0)
    assert user is not None
    token, session = store.open_session(user, now=T0)
    assert store.session(token, now=T0 + timedelta(minutes=29)) == session
    assert store.session(token, now=T0 + timedelta(minutes=29 + 31)) is None  # idle
    token, _ = store.open_session(user, now=T0)
    for minutes in range(20, 600, 20):  # kept busy ...
        assert store.session(token, now=T0 + timedelta(minutes=minutes)) is not None
    assert store.session(token, now=T0 + timedelta(hours=10)) is None  # ... until its lifetime
    token, _ = store.open_session(user, now=T0)
    store.close_session(token)
    assert store.session(token, now=T0) is None
    token, _ = store.open_session(user, now=T0)
    store.set_password("vanhanh", "một mật khẩu mới khác", now=T0)
    assert store.session(token, now=T0) is None


def test_only_the_digest_of_a_session_token_is_stored(store: UserStore, tmp_path: Path) -> None:
    user = store.authenticate("vanhanh", GOOD, now=T0)
    assert user is not None
    token, session = store.open_session(user, now=T0)
    rows = sqlite3.connect(tmp_path / "users.sqlite3").execute(
        "SELECT token_hash, csrf FROM console_sessions").fetchall()
    assert [r[1] for r in rows] == [session.csrf]
    assert token not in {r[0] for r in rows}
    assert store.session(token + "x", now=T0) is None


@pytest.mark.parametrize(("name", "role", "password", "problem"), [
    ("a/b", "operator", GOOD, "not a usable login name"),
    ("", "operator", GOOD, "not a usable login name"),
    ("x" * 65, "operator", GOOD, "not a usable login name"),
    ("thanhtra", "inspector", GOOD, "is not a role"),
    ("thanhtra", "auditor", "ngắn", "at least 10 characters"),
    ("vanhanh", "auditor", GOOD, "already an account"),
], ids=["slash", "empty", "too long", "unknown role", "short password", "taken"])
def test_bad_accounts_are_refused_with_one_line(
    store: UserStore, name: str, role: str, password: str, problem: str
) -> None:
    with pytest.raises(UserError, match=problem):
        store.add(name, role, password)


def _modes(path: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in path.parent.glob(path.name + "*")}


def test_the_store_and_its_write_ahead_log_files_are_readable_by_nobody_else(
    tmp_path: Path
) -> None:
    # Given the usual umask, which leaves new files readable by everyone
    path = tmp_path / "users.sqlite3"
    old = os.umask(0o022)
    try:
        # When a store is made and written to (the -wal and -shm files then hold hashes)
        store = UserStore(path, hasher=CHEAP)
        store.add("vanhanh", Role.OPERATOR, GOOD, now=T0)
        user = store.authenticate("vanhanh", GOOD, now=T0)
        assert user is not None
        store.open_session(user, now=T0)

        # Then the database and both side files are its owner's alone
        assert _modes(path) == {"users.sqlite3": 0o600, "users.sqlite3-wal": 0o600,
                                "users.sqlite3-shm": 0o600}
        store.close()
    finally:
        os.umask(old)


def test_a_store_left_readable_by_an_older_version_is_closed_to_others_when_opened(
    tmp_path: Path
) -> None:
    # Given a store whose files an older version left readable by everyone
    path = tmp_path / "users.sqlite3"
    keep = sqlite3.connect(path)  # holds the -wal and -shm open, as a crash would leave them
    keep.execute("PRAGMA journal_mode=WAL")
    keep.execute("CREATE TABLE t (x)")
    for name in ("users.sqlite3", "users.sqlite3-wal", "users.sqlite3-shm"):
        (tmp_path / name).chmod(0o644)

    # When the console opens it
    store = UserStore(path, hasher=CHEAP)

    # Then none of its files is readable by others any more
    assert all(mode & 0o077 == 0 for mode in _modes(path).values()), _modes(path)
    store.close()
    keep.close()


class _MeetingHasher(PasswordHasher):
    """Each ``verify`` waits (up to a timeout) for another one to start alongside it."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.first_entered = threading.Event()
        self.met = threading.Event()
        self._busy = threading.Lock()
        self._running = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._busy:
            if self._running:
                self.met.set()
            self._running += 1
        self.first_entered.set()
        self.met.wait(timeout=0.5)  # a bound, not a sleep: the outcome never depends on it
        try:
            return super().verify(hash, password)
        finally:
            with self._busy:
                self._running -= 1


def test_sign_in_attempts_are_checked_one_at_a_time_so_none_slips_past_a_lockout(
    tmp_path: Path
) -> None:
    # Given a store whose password check notices a second check starting beside it
    hasher = _MeetingHasher()
    store = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    store.add("vanhanh", Role.OPERATOR, GOOD, now=T0)
    store.hasher = hasher

    # When two sign-ins are attempted at once
    first = threading.Thread(target=store.authenticate, args=("vanhanh", "sai mật khẩu rồi"))
    first.start()
    assert hasher.first_entered.wait(timeout=10)
    second = threading.Thread(target=store.authenticate, args=("vanhanh", GOOD))
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)

    # Then the second check started only after the first had finished
    assert not hasher.met.is_set()
    store.close()
