"""Counters of the intake consumer, read by the metrics endpoint and the demo.

Plain values written by the one consumer thread; :mod:`hub.ops.metrics` renders them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from hub.consumers.plan import BatchPlan
from hub.consumers.settlement import Action

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """A cumulative histogram (seconds), written by one thread."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += seconds
        self.n += 1

    def lines(self, name: str, labels: str) -> Iterable[str]:
        cumulative = 0
        for bound, count in zip(BUCKETS, self.counts, strict=False):
            cumulative += count
            yield f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}'
        yield f'{name}_bucket{{{labels},le="+Inf"}} {self.n}'
        yield f"{name}_sum{{{labels}}} {self.total:.6f}"
        yield f"{name}_count{{{labels}}} {self.n}"



class Stats:
    """Counters for metrics and the demo (plain ints; one consumer thread writes them)."""

    def __init__(self) -> None:
        self.by_outcome: dict[str, int] = {}
        self.by_reason: dict[str, int] = {}
        self.batches = 0
        self.acked = 0
        self.reconnects = 0
        self.ledger_retries = 0
        self.signer_restarts = 0
        """Signer-process failures (died, failed, silent): each held a batch and restarted it."""
        self.last_batch_at = 0.0
        self.stages: dict[str, Histogram] = {}
        self.changed = threading.Condition()
        """Notified after every settled batch: tests and the demo wait on it, never poll."""

    def wait_for(self, predicate: Callable[[Stats], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def time(self, stage: str, seconds: float) -> None:
        hist = self.stages.get(stage)
        if hist is None:
            hist = self.stages[stage] = Histogram()
        hist.observe(seconds)

    def count(self, plan: BatchPlan) -> None:
        self.batches += 1
        self.acked += len(plan.ack)
        self.last_batch_at = time.time()
        for _delivery, disposition in plan.outcomes:
            key = disposition.action.value
            self.by_outcome[key] = self.by_outcome.get(key, 0) + 1
            if disposition.action in (Action.DEAD_LETTER, Action.RETRY):
                r = disposition.reason.value
                self.by_reason[r] = self.by_reason.get(r, 0) + 1
        with self.changed:
            self.changed.notify_all()


