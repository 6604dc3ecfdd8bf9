"""SQLite WAL checkpoints off the writer's thread (issue 23).

In WAL mode SQLite appends each commit to the ``-wal`` file and, by default, the connection
whose commit takes the log past 1,000 pages copies it back into the database file and syncs
it (a *checkpoint*) before its commit call returns. For the hub that connection is the
consumer's: every ~150 batches of a few envelopes (each envelope with its receipt adds ~25 KB
of log), one commit took 10-25 ms instead of 2-3 — the tail of the publish-to-delivery
latency — and under full load the copies and syncs stood in the consumer's loop.

:class:`WalCheckpointer` runs them in a thread of its own, on a connection of its own,
shortly after a commit and at most every ``interval_s``. ``PASSIVE`` checkpoints never block
the writer nor any reader (SQLite copies what no reader still needs); the GIL is released
while SQLite works, so the consumer plans its next batch meanwhile. Durability is unchanged:
a commit is durable once its log frames are synced (``synchronous=FULL``), before any
checkpoint. The writer's own connections keep an automatic checkpoint as a safety net, at
:data:`SAFETY_NET_PAGES`, should this thread ever fall that far behind.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

from hub.logs import get_logger

__all__ = ["SAFETY_NET_PAGES", "WalCheckpointer"]

log = get_logger("hub.ledger.walcheckpoint")

SAFETY_NET_PAGES = 16_384
"""``wal_autocheckpoint`` of the writer's connections when checkpoints run in the background
(64 MB of log at 4 KB pages; SQLite's default is 1,000)."""


class WalCheckpointer:
    """Checkpoints the SQLite database at ``path`` from a background thread."""

    def __init__(self, path: Path, *, interval_s: float = 0.2, timeout_s: float = 5.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.checkpoints = 0
        """Checkpoints completed (for tests and operators)."""
        self.failures = 0
        self._committed = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_warning = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger WAL checkpoints",
                                            daemon=True)
            self._thread.start()

    def committed(self) -> None:
        """A write transaction committed: checkpoint soon (cheap, any thread)."""
        self._committed.set()

    def wait_for(self, count: int, timeout: float, *, failures: int = 0) -> bool:
        """Wait until ``count`` checkpoints have completed and ``failures`` attempts failed
        (tests); False on timeout."""
        with self._done:
            return self._done.wait_for(
                lambda: self.checkpoints >= count and self.failures >= failures, timeout)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._committed.set()
        thread.join(self.timeout_s + 5.0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.is_set():
                # A pause between checkpoints, then the next commit (or the end of a quiet
                # interval): right after a commit the writer is planning, not writing.
                self._stop.wait(self.interval_s)
                self._committed.clear()
                self._committed.wait(self.interval_s)
                if self._stop.is_set():
                    break
                try:
                    if conn is None:
                        # mode=rw: never create a database where the ledger was removed.
                        conn = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=rw",
                                               uri=True, timeout=self.timeout_s,
                                               isolation_level=None, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    if conn is not None:
                        conn.close()
                        conn = None
                    with self._done:
                        self._failed(exc)
                        self._done.notify_all()
                    continue
                with self._done:
                    self.checkpoints += 1
                    self._done.notify_all()
        finally:
            if conn is not None:
                conn.close()

    def _failed(self, exc: sqlite3.Error) -> None:
        # Not fatal: the writer's safety-net checkpoint still bounds the log. Said once a
        # minute at most, never per attempt.
        self.failures += 1
        now = time.monotonic()
        if now - self._last_warning >= 60.0 or self.failures == 1:
            self._last_warning = now
            log.warning("ledger_wal_checkpoint_failed", error=type(exc).__name__,
                        detail=str(exc)[:200], failures=self.failures)
