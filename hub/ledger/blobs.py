"""Content-addressed store for large packets: ``<dir>/<digest[:2]>/<digest>``.

The file name is the SHA-256 of the bytes, so a file is written once and a swapped file is
caught by hashing it again (``hub ledger verify`` does).

The blobs are documents' exact bytes: a file is created 0600 and a directory the store creates
0700, whatever the process umask (a backup of them is made so too). A directory that exists is
left as it is: the operator chose its mode.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def _private_dirs(path: Path) -> None:
    """``path`` and its missing parents, each created ``DIR_MODE`` (``Path.mkdir`` makes the
    parents with the umask's mode)."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)  # the umask can only take bits away
        except FileExistsError:  # another consumer made it meanwhile
            continue


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("a blob digest is 64 lowercase hex characters")
        return self.root / digest[:2] / digest

    def put(self, digest: str, data: bytes) -> None:
        """Store ``data`` under its digest, durably (written, fsynced, then renamed), 0600."""
        target = self.path(digest)
        if target.exists():
            return
        _private_dirs(target.parent)
        tmp = target.with_name(f".{digest}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fd, FILE_MODE)  # a temporary file left by a crash kept its own mode
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None
