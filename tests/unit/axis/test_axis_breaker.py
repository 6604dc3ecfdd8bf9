"""The backoff and circuit breaker towards the axis (pure: time is an argument)."""

from __future__ import annotations

from hub.axis.breaker import Breaker, Circuit


def test_transient_failures_back_off_exponentially_up_to_the_cap() -> None:
    b = Breaker(threshold=10, base_s=1.0, max_s=5.0)
    waits = []
    now = 100.0
    for _ in range(5):
        b.failure(now)
        waits.append(b.next_call_at() - now)
        assert not b.allows(now)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.state(now) is Circuit.CLOSED


def test_the_circuit_opens_at_the_threshold_and_lets_one_probe_through_after_open_s() -> None:
    b = Breaker(threshold=3, open_s=30.0, base_s=0.1, max_s=1.0)
    for t in (0.0, 1.0, 2.0):
        b.failure(t)
    assert b.state(2.0) is Circuit.OPEN
    assert not b.allows(31.9)
    assert b.allows(32.0)
    assert b.state(32.0) is Circuit.HALF_OPEN
    b.failure(32.0)  # the probe failed: open again for open_s
    assert b.state(32.5) is Circuit.OPEN
    assert not b.allows(61.9)
    assert b.allows(62.0)
    b.success()  # the next probe answered
    assert b.state(62.0) is Circuit.CLOSED
    assert b.allows(62.0)
    assert b.failures == 0


def test_refused_credentials_open_the_circuit_at_once() -> None:
    b = Breaker(threshold=5, open_s=10.0)
    b.trip(0.0)
    assert b.state(0.0) is Circuit.OPEN
    assert not b.allows(9.9)
    assert b.allows(10.0)


def test_a_success_resets_the_backoff() -> None:
    b = Breaker(threshold=5, base_s=1.0)
    b.failure(0.0)
    b.failure(1.0)
    b.success()
    assert b.allows(1.0)
    assert b.delay() == 0.0
