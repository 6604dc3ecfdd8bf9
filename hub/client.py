"""A small client for agency systems: publish envelopes, consume deliveries and statuses.

Receivers are idempotent: every message the hub publishes carries a deterministic
``message_id`` (``digest:recipient`` for documents), so a copy republished after a hub crash
(between the broker's confirm and the ledger commit) is recognised and dropped here. Keep the
seen-set durable in a real agency system (its document register); this client keeps it in memory
or in a file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.broker import Connection, Outgoing, connect
from hub.consumers.plan import message_id_for
from hub.topology import ENVELOPE_KEY, STATUS_KEY, Names


@dataclass(frozen=True, slots=True)
class Received:
    body: bytes
    message_id: str | None
    headers: dict[str, Any]
    queue: str


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
        self._seen: set[str] = set()
        self._seen_file = seen_file
        if seen_file is not None and seen_file.exists():
            self._seen.update(seen_file.read_text().split())
        self.duplicates_dropped = 0

    def send(self, envelope: bytes, *, status: bool = False) -> str:
        """Publish a signed envelope (or status packet) to the hub; returns its message id."""
        mid = message_id_for(envelope)
        self.conn.publish([Outgoing(self.names.inbound, STATUS_KEY if status else ENVELOPE_KEY,
                                    envelope, message_id=mid, user_id=self.user_id)])
        return mid

    def _take(self, queue: str, timeout: float, limit: int | None) -> Iterator[Received]:
        deadline = time.monotonic() + timeout
        taken = 0
        settler = self.conn.settler()
        while limit is None or taken < limit:
            d = self.conn.get(queue)
            if d is None:
                if time.monotonic() >= deadline:
                    return
                self.conn.sleep(0.02)
                continue
            settler.ack([d.tag])
            if d.message_id and d.message_id in self._seen:
                self.duplicates_dropped += 1
                continue
            if d.message_id:
                self._seen.add(d.message_id)
                if self._seen_file is not None:
                    with self._seen_file.open("a") as fh:
                        fh.write(d.message_id + "\n")
            taken += 1
            yield Received(d.body, d.message_id, dict(d.headers), queue)

    def documents(self, *, timeout: float = 0.0, limit: int | None = None) -> list[Received]:
        """Documents delivered to this organization (deduplicated)."""
        return list(self._take(self.names.inbox(self.organ_id), timeout, limit))

    def statuses(self, *, timeout: float = 0.0, limit: int | None = None) -> list[Received]:
        """Statuses and hub receipts for this organization (deduplicated)."""
        return list(self._take(self.names.status(self.organ_id), timeout, limit))

    def close(self) -> None:
        self.conn.close()
