"""Content-addressed store for large packets: ``<dir>/<digest[:2]>/<digest>``.

The file name is the SHA-256 of the bytes, so a file is written once and a swapped file is
caught by hashing it again (``hub ledger verify`` does).
"""

from __future__ import annotations

import os
from pathlib import Path


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("a blob digest is 64 lowercase hex characters")
        return self.root / digest[:2] / digest

    def put(self, digest: str, data: bytes) -> None:
        """Store ``data`` under its digest, durably (written, fsynced, then renamed)."""
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{digest}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None
