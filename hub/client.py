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
between the two means a redelivery that is dropped, never a document handled twice or lost.
Keep the seen-set durable in a real agency system (its document register); this client keeps it
in memory or in a file.

:meth:`~AgencyClient.documents` and :meth:`~AgencyClient.statuses` are the same with a handler
that appends to a list in memory (for tests and scripts that keep nothing).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
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
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._ids: set[str] = set()
        if path is not None and path.exists():
            self._ids.update(path.read_text().split())

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def remember(self, message_id: str) -> None:
        """Record ``message_id`` as handled; durable on return when a file is used."""
        if message_id in self._ids:
            return
        self._ids.add(message_id)
        if self._path is not None:
            with self._path.open("a") as fh:
                fh.write(message_id + "\n")
                fh.flush()
                os.fsync(fh.fileno())


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
