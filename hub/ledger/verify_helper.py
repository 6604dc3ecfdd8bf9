"""A helper process of ``hub ledger verify`` (:mod:`hub.ledger.verify_parallel`):
``python -P -m hub.ledger.verify_helper FD``.

It reads the ledger's address from the socket ``FD`` (the caller's end is the only other), opens
the ledger read-only (on PostgreSQL in the caller's exported snapshot, waiting at most
:data:`hub.ledger.verify_parallel.LOCK_TIMEOUT_MS` for a table lock), then walks each segment it
is handed until the socket closes.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection as Channel
from pathlib import Path
from typing import Any

from hub.ledger.blobs import BlobStore
from hub.ledger.store import Ledger
from hub.ledger.verify import PROGRESS_EVERY, walk_segment
from hub.ledger.verify_parallel import LOCK_TIMEOUT_MS, PROGRESS, WALK


def _serve(fd: int) -> int:
    """A helper: open the ledger, then walk each segment handed over until the socket closes.
    A walk that met an error is sent as None (the caller walks it and meets it itself)."""
    channel = Channel(fd)
    url, blob_dir, snapshot, check_bytes = channel.recv()
    ledger = Ledger.open(url, read_only=True)
    conn = ledger.engine.connect()
    if snapshot is not None:
        # The caller holds its tables' share locks; a statement queued for an exclusive lock
        # behind them would hold this helper, and the caller would wait for the helper unseen
        # by the server's deadlock detection. The helper gives up instead (its segments are then
        # walked by the caller). Set on the session, before its transaction.
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(LOCK_TIMEOUT_MS)}")
        raw.commit()
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    if snapshot is not None:
        if not all(c.isalnum() or c == "-" for c in snapshot):
            raise ValueError("not a snapshot identifier")
        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
    blobs = BlobStore(Path(blob_dir)) if blob_dir else None

    def step(_seq: int) -> None:
        channel.send((PROGRESS, PROGRESS_EVERY))

    while True:
        try:
            segment = channel.recv()
        except EOFError:
            return 0
        walk = walk_segment(conn, blobs, segment, None, check_bytes=check_bytes, progress=step)
        channel.send((WALK, None if walk.error is not None else walk))


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1])))
