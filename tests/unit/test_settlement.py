"""Settlement is decided by one pure function."""

from __future__ import annotations

import pytest

from hub.consumers.settlement import Action, Backoff, Failover, RetryPolicy, decide
from hub.reasons import Reason

POLICY = RetryPolicy(limit=3, base_ms=100, max_ms=250)


def test_an_accepted_envelope_is_delivered() -> None:
    assert decide(Reason.OK, attempts=1, policy=POLICY).action is Action.DELIVER


def test_a_duplicate_is_acknowledged_without_delivering_again() -> None:
    d = decide(Reason.OK, attempts=1, policy=POLICY, duplicate=True)
    assert d.action is Action.DUPLICATE
    assert d.reason is Reason.DUPLICATE


@pytest.mark.parametrize("reason", [r for r in Reason if r.info.disposition.value == "reject"])
def test_every_permanent_reason_is_dead_lettered_at_once(reason: Reason) -> None:
    d = decide(reason, attempts=1, policy=POLICY)
    assert d.action is Action.DEAD_LETTER
    assert d.reason is reason


def test_a_transient_fault_is_retried_with_bounded_exponential_backoff() -> None:
    delays = [decide(Reason.REVOCATION_UNAVAILABLE, attempts=a, policy=POLICY).delay_ms
              for a in (1, 2)]
    assert delays == [100, 200]
    assert POLICY.delay_for(10) == 250
    assert POLICY.steps() == (100, 200, 250)


def test_a_transient_fault_is_parked_when_attempts_run_out() -> None:
    d = decide(Reason.INTERNAL_ERROR, attempts=3, policy=POLICY, detail="bug")
    assert d.action is Action.DEAD_LETTER
    assert d.reason is Reason.DELIVERY_LIMIT_EXCEEDED
    assert d.first_reason is Reason.INTERNAL_ERROR
    assert d.parked


def test_revocation_that_cannot_be_checked_is_parked_under_its_own_reason() -> None:
    d = decide(Reason.REVOCATION_UNAVAILABLE, attempts=3, policy=POLICY, detail="no CRL")
    assert d.action is Action.DEAD_LETTER
    assert d.reason is Reason.REVOCATION_UNAVAILABLE
    assert d.parked


@pytest.mark.parametrize("reason", [r for r in Reason if r.info.disposition.value == "reject"])
def test_a_permanent_refusal_is_never_parked(reason: Reason) -> None:
    assert not decide(reason, attempts=1, policy=POLICY).parked


def test_the_wait_loops_back_off_by_doubling_up_to_their_cap_and_start_over_on_reset() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.upcoming == 0.1


def test_failover_tries_every_node_at_once_then_waits_with_the_backoff_and_resets_on_success(
) -> None:
    nodes = Failover(("amqp://a", "amqp://b", "amqp://c"), Backoff(0.2, 0.5))
    seen, waits = [], []
    for _ in range(7):
        seen.append(nodes.url)
        waits.append(nodes.lost())
    assert seen == ["amqp://a", "amqp://b", "amqp://c", "amqp://a", "amqp://b", "amqp://c",
                    "amqp://a"]
    assert waits == [0.0, 0.0, 0.2, 0.0, 0.0, 0.4, 0.0]
    assert [nodes.lost() for _ in range(3)] == [0.0, 0.5, 0.0]  # capped
    nodes.connected()  # a node answered: the next full round waits the first backoff again
    assert [nodes.lost() for _ in range(3)] == [0.0, 0.2, 0.0]  # rounds end at the last node
