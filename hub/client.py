"""A small client for agency systems: publish envelopes, consume deliveries and statuses.

**Settled after the handler.** :meth:`AgencyClient.handle_documents` and
:meth:`~AgencyClient.handle_statuses` call the caller's handler with each message and
acknowledge it only when the handler *returned*: an agency that crashes while storing a
document gets it again. A handler that raises is retried here a few times with a growing pause
(``retries``, ``retry_delay``: a storage hiccup should not cost a round trip); if it still
raises, the message is given back to its queue (``basic.nack`` with requeue) and
:class:`HandlerFailed` is raised, so the caller stops and decides when to try again. The client
never requeues and takes the same message again in one call: a handler that always fails cannot
spin in a hot loop, and the next call starts with that message.

**Receivers are idempotent.** Every message the hub publishes carries a deterministic
``message_id`` (``digest:recipient`` for documents), so a copy republished after a hub crash
(between the broker's confirm and the ledger commit), or redelivered because an ack was lost,
is recognised and dropped here. A message id is recorded as seen only after the handler
returned and *before* the ack (written and flushed to ``seen_file`` when one is given): a crash
between the two means a redelivery that is dropped, never a document handled twice or lost —
also when the redelivery goes to another instance on the same ``seen_file`` (a rolling restart):
the file is read again before a message is taken for new (:class:`SeenMessages`). Keep the
seen-set durable in a real agency system (its document register); this client keeps it in
memory or in a file, bounded to the latest ids.

:meth:`~AgencyClient.documents` and :meth:`~AgencyClient.statuses` are the same with a handler
that appends to a list in memory (for tests and scripts that keep nothing).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.broker import Connection, Delivery, Outgoing, connect
from hub.consumers.plan import message_id_for
from hub.topology import ENVELOPE_KEY, STATUS_KEY, Names

__all__ = ["AgencyClient", "HandlerFailed", "Received", "SeenMessages"]


class SeenMessages:
    """The message ids a receiver already handled: receiver-side dedup (see the module notes).

    In memory, or also appended to ``path`` (one id a line, flushed and fsynced before the
    caller acknowledges the message) so that a restarted receiver still drops what it handled.
    Used by :class:`AgencyClient` and by the HTTP API (``hub.api``), which dedups for agencies.

    **Several instances may share the file** (a rolling restart runs the new receiver next to
    the old one). Every membership test first reads what was appended since the last look (from
    a remembered offset: an ``fstat`` and usually no read), so an id the other instance recorded
    before dying without its ack is found when RabbitMQ redelivers to this one. Reads and
    writes take an advisory ``flock`` on ``<path>.lock`` (shared to read, exclusive to append or
    compact), held for a few system calls: the instances serialize, they do not exclude each
    other. What stays possible is the at-least-once case: two instances handling the same id
    *at the same time* (neither has recorded it yet).

    **A line is a record only with its newline.** A crash in the middle of an append leaves a
    last line without one; it is ignored (the message was not acknowledged, so it comes back
    and is handled), and the next append first cuts it off so the new id is a line of its own.

    **Bounded.** The ids kept are the latest ``keep`` (a redelivery or a hub republish comes
    within minutes, not after ``keep`` newer messages): when the file holds more than twice that
    many lines it is rewritten with the latest ``keep`` (a temporary file, fsynced, renamed over
    the old one, the directory fsynced), and the in-memory set is trimmed the same way.
    """

    KEEP = 100_000
    """Default bound: about 8 MB of ``digest:code`` ids, months of an agency's traffic."""

    def __init__(self, path: Path | None = None, *, keep: int = KEEP) -> None:
        self._path = path
        self._keep = max(1, keep)
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest are trimmed first
        self._offset = 0  # the end of the last complete line read from the file
        self._lines = 0  # complete lines in the file up to ``_offset``
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) read from
        if path is not None:
            self._refresh()

    def __contains__(self, message_id: object) -> bool:
        if message_id in self._ids:
            return True
        if self._path is not None:
            self._refresh()
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def remember(self, message_id: str) -> None:
        """Record ``message_id`` as handled; durable on return when a file is used."""
        if self._path is None:
            if message_id not in self._ids:
                self._ids[message_id] = None
                self._trim()
            return
        with self._locked(exclusive=True):
            end = self._read_new()
            if message_id in self._ids:
                return
            with self._path.open("ab") as fh:
                if end > self._offset:  # a torn last line: cut it off before appending
                    fh.truncate(self._offset)
                fh.write(message_id.encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._read_new()
            if self._lines > 2 * self._keep:
                self._compact()

    # -- the file --------------------------------------------------------------------------------
    def _refresh(self) -> None:
        with self._locked(exclusive=False):
            self._read_new()

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        assert self._path is not None
        lock = self._path.with_name(self._path.name + ".lock")
        with lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_new(self) -> int:
        """Take in the complete lines appended since the last read (all of them if the file was
        replaced); returns the file's size (beyond ``_offset`` only when a line is torn)."""
        assert self._path is not None
        try:
            fh = self._path.open("rb")
        except FileNotFoundError:
            self._offset, self._lines, self._file_id = 0, 0, None
            return 0
        with fh:
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) != self._file_id or st.st_size < self._offset:
                self._offset, self._lines = 0, 0  # compacted by another instance, or new
                self._file_id = (st.st_dev, st.st_ino)
            if st.st_size > self._offset:
                fh.seek(self._offset)
                data = fh.read(st.st_size - self._offset)
                complete = data[:data.rfind(b"\n") + 1]  # b"" when no newline at all
                for line in complete.splitlines():
                    message_id = line.decode("utf-8", "replace").strip()
                    if message_id:
                        self._ids.pop(message_id, None)  # re-inserted: the latest order
                        self._ids[message_id] = None
                    self._lines += 1
                self._offset += len(complete)
                self._trim()
            return st.st_size

    def _compact(self) -> None:
        """Rewrite the file with the latest ``keep`` ids, atomically (called under the lock)."""
        assert self._path is not None
        latest = list(self._ids)[-self._keep:]
        tmp = self._path.with_name(self._path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write("".join(f"{message_id}\n" for message_id in latest).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._ids = dict.fromkeys(latest)
        self._offset, self._lines, self._file_id = 0, 0, None
        self._read_new()

    def _trim(self) -> None:
        if len(self._ids) > 2 * self._keep:
            self._ids = dict.fromkeys(list(self._ids)[-self._keep:])


@dataclass(frozen=True, slots=True)
class Received:
    body: bytes
    message_id: str | None
    headers: dict[str, Any]
    queue: str
    redelivered: bool = False
    """RabbitMQ delivered this message before (to this or another client) without an ack."""


class HandlerFailed(Exception):
    """The handler raised for a message ``retries + 1`` times; the message is back in its
    queue (it will be delivered again) and the handler's last exception is ``__cause__``."""

    def __init__(self, message_id: str | None, queue: str, attempts: int) -> None:
        super().__init__(f"handler failed {attempts} time(s) for message {message_id} from "
                         f"{queue}; the message was returned to the queue")
        self.message_id = message_id
        self.queue = queue
        self.attempts = attempts


class AgencyClient:
    """One organization's view of the hub."""

    def __init__(self, url: str, organ_id: str, *, prefix: str = "edxml",
                 user_id: str | None = None, seen_file: Path | None = None,
                 name: str | None = None) -> None:
        self.names = Names(prefix)
        self.organ_id = organ_id
        # RabbitMQ checks that user_id equals the login; the hub then checks that the login
        # belongs to the From organization. Default to the URL's user.
        from urllib.parse import unquote, urlparse

        self.user_id = user_id or unquote(urlparse(url).username or "") or None
        self.conn: Connection = connect(url, name or f"agency {organ_id}")
        self._settler = self.conn.settler()
        self._seen = SeenMessages(seen_file)
        self.duplicates_dropped = 0

    def send(self, envelope: bytes, *, status: bool = False) -> str:
        """Publish a signed envelope (or status packet) to the hub; returns its message id."""
        mid = message_id_for(envelope)
        self.conn.publish([Outgoing(self.names.inbound, STATUS_KEY if status else ENVELOPE_KEY,
                                    envelope, message_id=mid, user_id=self.user_id)])
        return mid

    def _handle(self, d: Delivery, queue: str, handler: Callable[[Received], None],
                retries: int, retry_delay: float) -> None:
        received = Received(d.body, d.message_id, dict(d.headers), queue, d.redelivered)
        attempt = 0
        while True:
            attempt += 1
            try:
                handler(received)
                return
            except Exception as exc:
                if attempt > retries:
                    self._settler.requeue([d.tag])
                    raise HandlerFailed(d.message_id, queue, attempt) from exc
                self.conn.sleep(retry_delay * 2 ** (attempt - 1))  # heartbeats keep flowing

    def _receive(self, queue: str, handler: Callable[[Received], None], *, timeout: float,
                 limit: int | None, retries: int, retry_delay: float) -> int:
        deadline = time.monotonic() + timeout
        handled = 0
        while limit is None or handled < limit:
            d = self.conn.get(queue)
            if d is None:
                if time.monotonic() >= deadline:
                    return handled
                self.conn.sleep(0.02)
                continue
            if d.message_id and d.message_id in self._seen:
                self.duplicates_dropped += 1
                self._settler.ack([d.tag])
                continue
            self._handle(d, queue, handler, retries, retry_delay)
            if d.message_id:
                self._seen.remember(d.message_id)  # seen before the ack: a crash between = a drop
            self._settler.ack([d.tag])
            handled += 1
        return handled

    def handle_documents(self, handler: Callable[[Received], None], *, timeout: float = 0.0,
                         limit: int | None = None, retries: int = 2,
                         retry_delay: float = 0.5) -> int:
        """Give each new document delivered to this organization to ``handler``; ack it once the
        handler returned. Returns how many were handled; raises :class:`HandlerFailed` (the
        message back in the queue) when the handler still raises after ``retries`` retries."""
        return self._receive(self.names.inbox(self.organ_id), handler, timeout=timeout,
                             limit=limit, retries=retries, retry_delay=retry_delay)

    def handle_statuses(self, handler: Callable[[Received], None], *, timeout: float = 0.0,
                        limit: int | None = None, retries: int = 2,
                        retry_delay: float = 0.5) -> int:
        """:meth:`handle_documents` for statuses and hub receipts."""
        return self._receive(self.names.status(self.organ_id), handler, timeout=timeout,
                             limit=limit, retries=retries, retry_delay=retry_delay)

    def documents(self, *, timeout: float = 0.0, limit: int | None = None) -> list[Received]:
        """Documents delivered to this organization (deduplicated), kept in memory only."""
        out: list[Received] = []
        self.handle_documents(out.append, timeout=timeout, limit=limit)
        return out

    def statuses(self, *, timeout: float = 0.0, limit: int | None = None) -> list[Received]:
        """Statuses and hub receipts for this organization (deduplicated), in memory only."""
        out: list[Received] = []
        self.handle_statuses(out.append, timeout=timeout, limit=limit)
        return out

    def close(self) -> None:
        self.conn.close()
