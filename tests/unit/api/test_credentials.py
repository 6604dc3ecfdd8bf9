"""System ids and secrets: argon2 hashes at rest, rotation with an overlap, removal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from hub.api.credentials import (
    CredentialStore,
    add_system,
    read_systems,
    remove_system,
    rotate_system,
)
from hub.errors import ConfigurationError

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
FINANCE = "000.00.03.H27"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "api-credentials.toml"


def test_a_registered_system_verifies_with_its_secret_and_the_file_holds_only_a_hash(
    path: Path
) -> None:
    secret = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    text = path.read_text()
    assert secret not in text
    assert "$argon2id$" in text
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    store = CredentialStore(path, hasher=CHEAP)
    entry = store.verify("stc-eoffice", secret)
    assert entry is not None
    assert entry.organization == FINANCE


@pytest.mark.parametrize(("system", "secret"), [("stc-eoffice", "wrong"), ("nobody", "x"),
                                                ("", ""), ("stc-eoffice", "")])
def test_a_wrong_secret_or_an_unknown_system_does_not_verify(
    path: Path, system: str, secret: str
) -> None:
    add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    assert CredentialStore(path, hasher=CHEAP).verify(system, secret) is None


def test_a_verified_secret_is_cached_but_a_wrong_one_never_is(path: Path) -> None:
    secret = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    store = CredentialStore(path, hasher=CHEAP, cache_s=300)
    assert store.verify("stc-eoffice", secret) is not None
    assert store.verify("stc-eoffice", secret) is not None  # from the cache
    assert store.verify("stc-eoffice", secret + "x") is None


def test_a_rotation_replaces_the_secret_at_once_and_the_store_sees_it(path: Path) -> None:
    old = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    store = CredentialStore(path, hasher=CHEAP, cache_s=300)
    assert store.verify("stc-eoffice", old) is not None
    new = rotate_system(path, "stc-eoffice", CHEAP, NOW)
    store._checked = 0.0  # the store re-reads a changed file at most once a second
    assert store.verify("stc-eoffice", new) is not None
    assert store.verify("stc-eoffice", old) is None  # the cached verification was dropped


def test_a_rotation_with_an_overlap_keeps_the_old_secret_until_it_ends(path: Path) -> None:
    old = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    new = rotate_system(path, "stc-eoffice", CHEAP, NOW, keep_old_for=dt.timedelta(days=7))
    during = CredentialStore(path, hasher=CHEAP, clock=lambda: NOW + dt.timedelta(days=6))
    assert during.verify("stc-eoffice", old) is not None
    assert during.verify("stc-eoffice", new) is not None
    after = CredentialStore(path, hasher=CHEAP, clock=lambda: NOW + dt.timedelta(days=8))
    assert after.verify("stc-eoffice", old) is None
    assert after.verify("stc-eoffice", new) is not None


def test_a_removed_system_no_longer_verifies(path: Path) -> None:
    secret = add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    remove_system(path, "stc-eoffice")
    assert CredentialStore(path, hasher=CHEAP).verify("stc-eoffice", secret) is None
    assert read_systems(path) == {}


def test_adding_a_system_twice_or_a_bad_id_is_refused(path: Path) -> None:
    add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    with pytest.raises(ValueError, match="exists"):
        add_system(path, "stc-eoffice", FINANCE, CHEAP, NOW)
    with pytest.raises(ValueError, match="system id"):
        add_system(path, "has space", FINANCE, CHEAP, NOW)


def test_a_malformed_credentials_file_is_a_configuration_error_naming_the_file(path: Path) -> None:
    path.write_text('[system."x"]\norganization = "000.00.03.H27"\nhash = "plain-text"\n')
    with pytest.raises(ConfigurationError, match=r"api-credentials\.toml"):
        read_systems(path)
