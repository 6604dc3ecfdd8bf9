"""An in-memory broker connection for unit tests of the consumer and the settler.

It offers what :class:`hub.consumers.intake.IntakeConsumer` uses of :class:`hub.broker.Connection`
(consume, pump, send, wait, declare, settler …) and hands the real :class:`hub.broker.Settler` a
channel that records acknowledgements, so the settle-once rule is the production one. It is a
test double for *unit* tests only: every behaviour that depends on RabbitMQ (confirms, returns,
quorum queues, redelivery) is tested against a real broker in ``tests/integration``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.broker import BrokerUnavailable, Settler
from hub.messages import Delivery, Outgoing


@dataclass
class RecordingChannel:
    """Stands in for pika's channel under :class:`Settler`: records what was settled."""

    acked: list[tuple[int, bool]] = field(default_factory=list)
    nacked: list[tuple[int, bool]] = field(default_factory=list)

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acked.append((delivery_tag, multiple))

    def basic_nack(self, delivery_tag: int, requeue: bool = True) -> None:
        self.nacked.append((delivery_tag, requeue))

    def acked_tags(self) -> set[int]:
        """Every tag an ack covers (a ``multiple`` ack covers all tags up to it)."""
        tags: set[int] = set()
        for tag, multiple in self.acked:
            tags.update(range(1, tag + 1) if multiple else (tag,))
        return tags


class FakeConnection:
    """One in-memory connection: messages put into ``inbox`` are consumed; sends are kept."""

    def __init__(self, *, fail_sends: bool = False,
                 on_idle: Callable[[FakeConnection], None] | None = None) -> None:
        self.inbox: list[tuple[bytes, dict[str, Any], str | None, str | None]] = []
        self.published: list[Outgoing] = []
        self.declared: list[Any] = []
        self.channel = RecordingChannel()
        self.fail_sends = fail_sends
        self.on_idle = on_idle
        """Called when the consumer pumps with nothing left to hand over (stop it there)."""
        self.closed = False
        self._tag = 0
        self._consumer: Callable[[Delivery], None] | None = None
        self._lock = threading.Lock()

    def put(self, body: bytes, *, headers: dict[str, Any] | None = None,
            message_id: str | None = None, user_id: str | None = None) -> None:
        with self._lock:
            self.inbox.append((body, headers or {}, message_id, user_id))

    # -- what the consumer calls ----------------------------------------------------------
    def declare(self, topology: Any) -> None:
        self.declared.append(topology)

    def consume(self, queue: str, prefetch: int, on_delivery: Callable[[Delivery], None]) -> str:
        self._consumer = on_delivery
        return f"fake:{queue}"

    def cancel(self, consumer_tag: str) -> None:
        self._consumer = None

    def pump(self, time_limit: float) -> None:
        with self._lock:
            waiting, self.inbox = self.inbox, []
        if self._consumer is not None:
            for body, headers, message_id, user_id in waiting:
                self._tag += 1
                self._consumer(Delivery(self._tag, body, "edxml.envelope", "edxml.inbound",
                                        False, headers, message_id, user_id, None, 0))
        if not waiting and self.on_idle is not None:
            self.on_idle(self)

    def send(self, messages: Iterable[Outgoing]) -> range:
        if self.fail_sends:
            raise BrokerUnavailable("fake broker: sends fail")
        first = len(self.published) + 1
        self.published.extend(messages)
        return range(first, len(self.published) + 1)

    def wait(self, sent: range, timeout: float = 30.0) -> None:
        return None  # every send is "confirmed" at once

    def sleep(self, seconds: float) -> None:
        return None

    def queue_depth(self, queue: str) -> int:
        with self._lock:
            return len(self.inbox)

    def settler(self) -> Settler:
        return Settler(self.channel)

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True
