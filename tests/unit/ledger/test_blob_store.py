"""The blob store keeps documents' exact bytes: only the hub's account can read them."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.ledger.blobs import BlobStore


@pytest.fixture
def systemd_default_umask() -> Iterator[None]:
    """The process umask of a service without UMask= (systemd's default 0022)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("systemd_default_umask")
def test_a_blob_and_the_directories_the_store_creates_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    # Given a blob store whose directory does not exist yet, in a process with umask 0022
    store = BlobStore(tmp_path / "state" / "blobs")
    data = b"<secret-document>confidential</secret-document>"
    digest = hashlib.sha256(data).hexdigest()
    # When a blob is stored
    store.put(digest, data)
    # Then the file is 0600 and every directory the store created 0700
    assert _mode(store.path(digest)) == 0o600
    assert _mode(store.path(digest).parent) == 0o700
    assert _mode(tmp_path / "state" / "blobs") == 0o700
    assert _mode(tmp_path / "state") == 0o700
    assert store.get(digest) == data
    # And no temporary file is left beside it
    assert os.listdir(store.path(digest).parent) == [digest]


@pytest.mark.usefixtures("systemd_default_umask")
def test_a_directory_the_operator_made_is_left_as_it_is(tmp_path: Path) -> None:
    # Given a blob directory the operator created, mode 0750 (a backup group may read it)
    root = tmp_path / "blobs"
    root.mkdir()
    root.chmod(0o750)
    data = b"x" * 10
    digest = hashlib.sha256(data).hexdigest()
    # When a blob is stored
    BlobStore(root).put(digest, data)
    # Then the operator's choice stands; what the store created is private
    assert _mode(root) == 0o750
    assert _mode(root / digest[:2]) == 0o700
    assert _mode(root / digest[:2] / digest) == 0o600
