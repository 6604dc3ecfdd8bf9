"""Settlement is a value decided by a pure function (FastStream's one-place-decides idea).

Every delivery the intake consumer takes ends in exactly one :class:`Disposition`:

``DELIVER``      accepted: route to the recipients, issue receipts, then ack;
``DUPLICATE``    already handled (same sender, DocumentId and digest): ack, deliver nothing new;
``DEAD_LETTER``  permanent fault (or attempts exhausted): publish to the dead-letter exchange with
                 the reason in headers, tell the sender when known, then ack;
``RETRY``        transient fault: publish to the delay queue for ``delay_ms``, then ack.

The broker acknowledgement itself is always an ``ack`` after the effects above are durable:
dead-lettering and delaying are *publishes* the hub confirms, so a reason can travel in headers
and no message is ever requeued in a loop. Only :mod:`hub.broker` calls ``basic_ack``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hub.reasons import Disposition as ReasonDisposition
from hub.reasons import Reason


class Action(enum.Enum):
    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Disposition:
    action: Action
    reason: Reason = Reason.OK
    detail: str = ""
    delay_ms: int = 0
    attempts: int = 0
    """Attempts made so far, this one included."""
    first_reason: Reason | None = None
    """When attempts ran out: the transient reason that kept failing."""

    @property
    def parked(self) -> bool:
        """Dead-lettered because the hub could not decide (a transient fault outlived every
        attempt), not because the packet is wrong: the sender is told nothing until an
        operator replays or discards it."""
        return self.action is Action.DEAD_LETTER and self.first_reason is not None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    limit: int = 5
    """Attempts before a transient fault becomes a dead letter."""
    base_ms: int = 1000
    max_ms: int = 60_000

    def delay_for(self, attempt: int) -> int:
        """Bounded exponential backoff: base, 2·base, 4·base … capped at ``max_ms``.

        The only backoff computation of the hub: :meth:`steps` (the delay queues the topology
        declares) and :func:`decide` (the delay a retry is published with) both come from it.
        """
        return int(min(self.max_ms, self.base_ms * (2 ** max(0, attempt - 1))))

    def steps(self) -> tuple[int, ...]:
        """Every delay a retry can get, ascending: one delay queue each (``edxml.retry.<ms>``)."""
        return tuple(sorted({self.delay_for(a) for a in range(1, max(1, self.limit) + 1)}))


def decide(
    reason: Reason, *, attempts: int, policy: RetryPolicy, duplicate: bool = False, detail: str = ""
) -> Disposition:
    """Map the outcome of one processing attempt to what happens to the delivery.

    ``attempts`` counts this attempt (1 on the first). A reason whose catalogue entry retries is
    transient; every other failure is permanent.
    """
    if reason is Reason.OK:
        action = Action.DUPLICATE if duplicate else Action.DELIVER
        return Disposition(action, Reason.DUPLICATE if duplicate else Reason.OK, detail,
                           attempts=attempts)
    if reason.info.disposition is ReasonDisposition.ACCEPT:
        return Disposition(Action.DUPLICATE, reason, detail, attempts=attempts)
    if reason.info.disposition is ReasonDisposition.RETRY:
        if attempts >= policy.limit:
            # Parked, never refused. Revocation that cannot be checked keeps its own reason (an
            # outage of the CA's CRL/OCSP is an operator's matter, one queue filter away).
            final = reason if reason is Reason.REVOCATION_UNAVAILABLE else Reason.DELIVERY_LIMIT_EXCEEDED
            return Disposition(Action.DEAD_LETTER, final,
                               f"{reason.value} after {attempts} attempts: {detail}".strip(": "),
                               attempts=attempts, first_reason=reason)
        return Disposition(Action.RETRY, reason, detail, delay_ms=policy.delay_for(attempts),
                           attempts=attempts)
    return Disposition(Action.DEAD_LETTER, reason, detail, attempts=attempts)


@dataclass(slots=True)
class Backoff:
    """Doubling waits between tries of something that is down (a broker node, the ledger),
    capped: the one policy of the process's reconnect and wait loops. A message's retries use
    :class:`RetryPolicy` (delay queues), not this."""

    first_s: float
    cap_s: float
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.first_s

    @property
    def upcoming(self) -> float:
        """The wait :meth:`next` will give."""
        return self._next

    def next(self) -> float:
        wait = self._next
        self._next = min(self._next * 2, self.cap_s)
        return wait

    def reset(self) -> None:
        self._next = self.first_s


@dataclass(slots=True)
class Failover:
    """The cluster nodes a connection is opened to, in turn: after a lost or refused node the
    next one at once; once every node was tried, a :class:`Backoff` wait before the next round;
    a connection that works resets the wait. The one node rotation of the consumer, the
    national-axis connector and the metrics server (``broker.url`` + ``failover_urls``)."""

    urls: tuple[str, ...]
    backoff: Backoff
    turn: int = 0

    @property
    def url(self) -> str:
        """The node to try now."""
        return self.urls[self.turn % len(self.urls)]

    def connected(self) -> None:
        self.backoff.reset()

    def advance(self) -> None:
        """Go to the next node (no wait)."""
        self.turn += 1

    def lost(self) -> float:
        """The current node was lost or refused: go to the next one; returns how long to wait
        before trying it (0 within a round, the backoff once every node was tried)."""
        self.advance()
        return self.backoff.next() if self.turn % len(self.urls) == 0 else 0.0
