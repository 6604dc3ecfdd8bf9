"""Messages as plain values: what a consumer took and what the hub will publish.

No pika here: the pure pipeline plans in these types and :mod:`hub.broker` executes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UNFIT_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls (NUL included), DEL, C1 controls and lone surrogates: never part of an id, a
code or an account name. PostgreSQL refuses a NUL in any text or JSON column and a lone
surrogate cannot be encoded, so a ledger row carrying one is refused; in a log line or a page
they forge or hide text. Shared by the broker adapter, the intake, the axis protocol and the
console."""


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
    timestamp: int | None = None
    """The AMQP ``timestamp`` property: when the publisher (the hub, for deliveries) sent it,
    in seconds since the epoch."""


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


class Headers:
    """Every ``x-hub-*`` AMQP header the hub writes or reads, named once (docs/INTEGRATING)."""

    DIGEST = "x-hub-digest"
    """SHA-256 (hex) of the exact packet bytes."""
    SENDER = "x-hub-sender"
    RECIPIENT = "x-hub-recipient"
    DOCUMENT_ID = "x-hub-document-id"
    VIA = "x-hub-via"
    """``direct`` (a body of the province) or ``gateway`` (the national-axis connector)."""
    REPORTER = "x-hub-reporter"
    STATUS = "x-hub-status"
    ORIGINAL = "x-hub-original"
    """Digest of the document a status or receipt is about."""
    RECEIPT = "x-hub-receipt"
    """Receipt kind: accepted, rejected, received, countersigned."""
    ISSUER = "x-hub-issuer"
    REASON = "x-hub-reason"
    REASON_TEXT_VI = "x-hub-reason-text-vi"
    REASON_TEXT_EN = "x-hub-reason-text-en"
    DETAIL = "x-hub-detail"
    FIRST_REASON = "x-hub-first-reason"
    FIRST_FAILURE = "x-hub-first-failure"
    ATTEMPTS = "x-hub-attempts"
    ORIGINAL_ROUTING = "x-hub-original-routing"
    ORIGINAL_USER = "x-hub-original-user"
    """The publisher a trusted login (the hub's retries, an operator's replay) speaks for."""
    REPLAYED_BY = "x-hub-replayed-by"
    REPLAY_NOTE = "x-hub-replay-note"
    AXIS_DOC_ID = "x-hub-axis-doc-id"
    """The national axis' id of a document the axis connector took from it."""
