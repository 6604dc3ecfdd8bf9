"""A rotation's overlap ends at ``previous_until``, cache or no cache.

``hub api credentials rotate --keep-old-for D`` keeps the old secret working until
``previous_until``. A verification is cached (argon2 is slow on purpose); a cached match of the
*old* secret must not outlive the overlap, while the new secret stays cached as before.
The store's clock is an input: the tests move it instead of waiting.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher

from hub.api.credentials import CredentialStore, add_system, rotate_system

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
FINANCE = "000.00.03.H27"


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_old_secret_verified_during_the_overlap_stops_working_when_the_overlap_ends(
    tmp_path: Path
) -> None:
    # Given a system whose secret was rotated with a one-hour overlap
    path = tmp_path / "api-credentials.toml"
    old = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW - dt.timedelta(days=30))
    new = rotate_system(path, "stc-eoffice", CHEAP, NOW, keep_old_for=dt.timedelta(hours=1))
    clock = Clock(NOW + dt.timedelta(minutes=30))
    store = CredentialStore(path, cache_s=24 * 3600.0, hasher=CHEAP, clock=clock)

    # When the old secret is used during the overlap (and so remembered), and again after it
    during = store.verify("stc-eoffice", old)
    clock.now = NOW + dt.timedelta(hours=1, seconds=1)
    after = store.verify("stc-eoffice", old)

    # Then it worked during the overlap only
    assert during is not None
    assert after is None
    # and the new secret works on both sides of the end of the overlap
    clock.now = NOW + dt.timedelta(minutes=30)
    assert store.verify("stc-eoffice", new) is not None
    clock.now = NOW + dt.timedelta(hours=2)
    assert store.verify("stc-eoffice", new) is not None
    assert store.verify("stc-eoffice", old) is None


def test_a_cached_old_secret_is_answered_from_the_cache_while_the_overlap_lasts(
    tmp_path: Path
) -> None:
    path = tmp_path / "api-credentials.toml"
    old = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW - dt.timedelta(days=30))
    rotate_system(path, "stc-eoffice", CHEAP, NOW, keep_old_for=dt.timedelta(hours=1))
    clock = Clock(NOW + dt.timedelta(minutes=1))
    checked: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checked.append(str(hash))
            return super().verify(hash, password)

    store = CredentialStore(path, cache_s=3600.0, hasher=Counting(time_cost=1, memory_cost=1024,
                                                                   parallelism=1), clock=clock)
    assert store.verify("stc-eoffice", old) is not None
    work = len(checked)
    clock.now = NOW + dt.timedelta(minutes=59)
    assert store.verify("stc-eoffice", old) is not None
    assert len(checked) == work  # no argon2 again: the cache still serves it
