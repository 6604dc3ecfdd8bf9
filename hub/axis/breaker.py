"""Backoff and circuit breaker for calls to the national axis (pure; time is an input).

One policy for every call the connector makes (send, list, fetch, acknowledge):

- *closed*: calls go through; after a transient failure (timeout, 5xx, refused connection) the
  next call waits ``base_s``, then ``2·base_s`` … capped at ``max_s`` (bounded exponential
  backoff); a success resets it;
- *open*: after ``threshold`` consecutive failures (or at once when the axis refuses the
  connector's credentials) nothing is called for ``open_s``: documents stay in the gateway
  queue, unacknowledged, and the metric and the alert say the axis is unreachable;
- *half-open*: after ``open_s`` one call is let through as a probe; its success closes the
  circuit, its failure opens it again for ``open_s``.

Nothing here sleeps or reads a clock: the connector passes ``now`` (``time.monotonic()``) and
waits, with the broker's heartbeats flowing, until :meth:`Breaker.next_call_at`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from hub.consumers.settlement import Backoff


class Circuit(enum.IntEnum):
    """Exported as ``hub_axis_circuit_state``: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class Breaker:
    threshold: int = 5
    open_s: float = 30.0
    base_s: float = 1.0
    max_s: float = 60.0
    failures: int = 0
    """Consecutive transient failures since the last success."""
    opened_at: float | None = None
    _next_call_at: float = 0.0
    _delay: float = 0.0
    _backoff: Backoff = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The process's one doubling-wait policy (hub.consumers.settlement.Backoff).
        self._backoff = Backoff(self.base_s, self.max_s)

    def state(self, now: float) -> Circuit:
        if self.opened_at is None:
            return Circuit.CLOSED
        return Circuit.HALF_OPEN if now >= self.opened_at + self.open_s else Circuit.OPEN

    def allows(self, now: float) -> bool:
        """Whether a call may be made at ``now``."""
        return now >= self.next_call_at()

    def next_call_at(self) -> float:
        if self.opened_at is not None:
            return self.opened_at + self.open_s
        return self._next_call_at

    def delay(self) -> float:
        """The backoff after the current run of failures (0 after a success)."""
        return self._delay

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._next_call_at = 0.0
        self._delay = 0.0
        self._backoff.reset()

    def failure(self, now: float) -> None:
        """A transient failure at ``now``; opens the circuit at the threshold (and re-opens
        it when a half-open probe fails)."""
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = now
        self._delay = self._backoff.next()
        self._next_call_at = now + self._delay

    def trip(self, now: float) -> None:
        """Open at once (the axis refused the connector's credentials: retrying each
        document would only repeat the refusal)."""
        self.failures = max(self.failures + 1, self.threshold)
        self.opened_at = now
        self._next_call_at = now + self.open_s
