"""Messages as plain values: what a consumer took and what the hub will publish.

No pika here: the pure pipeline plans in these types and :mod:`hub.broker` executes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message taken from a queue, as plain data."""

    tag: int
    body: bytes
    routing_key: str
    exchange: str
    redelivered: bool
    headers: Mapping[str, Any]
    message_id: str | None
    user_id: str | None
    app_id: str | None
    delivery_count: int
    """RabbitMQ's ``x-delivery-count`` header of quorum queues (0 on a first delivery)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish durably (persistent, mandatory, confirmed)."""

    exchange: str
    routing_key: str
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    content_type: str = "application/xml"
    user_id: str | None = None
    expiration_ms: int | None = None
