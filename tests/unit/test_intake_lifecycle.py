"""The intake consumer's life around its connection: a broker that refuses the topology ends
``hub run`` (exit 3, systemd does not restart it) while a lost connection is reconnected, and
``consuming`` says whether the consumer holds a ``basic.consume`` on the intake right now (what
``/readyz`` reads).

The in-memory connection stands in for RabbitMQ; the refusals it raises are the adapter's own
(:class:`hub.broker.BrokerRefused` with the broker's reply code, as
``tests/integration/broker/test_run_topology_conflict.py`` gets them from a real broker).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from hub.broker import BrokerRefused, BrokerUnavailable
from hub.consumers.intake import BrokerConnection, IntakeConsumer, IntakeOptions
from hub.errors import ConfigurationError
from hub.testing.fakebroker import FakeConnection

PRECONDITION = ("declare: 406 PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
                "'hub.intake' in vhost '/': received 'quorum' but current is 'classic'")


class _Refusing(FakeConnection):
    """A broker that answers the topology's declaration with ``refusal``."""

    def __init__(self, refusal: BrokerUnavailable) -> None:
        super().__init__()
        self.refusal = refusal

    def declare(self, topology: Any) -> None:
        raise self.refusal


def _consumer(connections: Iterator[BrokerConnection | BrokerUnavailable],
              stop: threading.Event) -> tuple[IntakeConsumer, list[str]]:
    """A consumer (with a topology to declare) whose connections are ``connections``, in turn:
    a :class:`BrokerUnavailable` among them is a connection attempt that fails. No delivery
    ever arrives, so the pipeline and the ledger are never asked for anything."""
    opened: list[str] = []

    def connect(url: str, _name: str) -> BrokerConnection:
        opened.append(url)
        nxt = next(connections)
        if isinstance(nxt, BrokerUnavailable):
            raise nxt
        return nxt

    consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="hub.intake",
                                            reconnect_max_s=0.01),
                              cast(Any, None), cast(Any, None), topology=cast(Any, object()),
                              stop=stop, connector=connect)
    return consumer, opened


@pytest.mark.parametrize("refusal", [
    BrokerRefused(PRECONDITION, 406, PRECONDITION.split(" ", 2)[2]),
    BrokerRefused("declare: 403 ACCESS_REFUSED - access to queue 'hub.intake' in vhost '/' "
                  "refused for user 'hub'", 403, "ACCESS_REFUSED"),
], ids=["406 other arguments", "403 no configure permission"])
def test_a_topology_the_broker_refuses_ends_the_consumer_with_a_configuration_error(
    refusal: BrokerRefused,
) -> None:
    # Given a broker that refuses the consumer's declaration of its queues (they exist with
    # other arguments, or the account may not configure them)
    stop = threading.Event()
    conn = _Refusing(refusal)
    consumer, opened = _consumer(iter([conn, conn, conn]), stop)
    # When the consumer runs
    with capture_logs() as logs, pytest.raises(ConfigurationError) as caught:
        consumer.run()
    # Then it stops at once with the broker's one-line reason (no reconnect, no "broker_lost"),
    # the connection closed, never having consumed
    assert str(caught.value) == refusal.detail
    assert opened == ["amqp://fake"]
    assert conn.closed
    assert consumer.stats.reconnects == 0
    assert not consumer.consuming
    events = [e["event"] for e in logs]
    assert "broker_lost" not in events
    assert [e["detail"] for e in logs if e["event"] == "topology_refused"] == [refusal.detail]


def test_a_queue_whose_home_node_is_down_is_retried_not_a_configuration_error() -> None:
    # Given a cluster node that answers the declaration with 404 (the classic queue's home
    # node is down: it comes back), then a connection that works
    stop = threading.Event()
    seen: list[bool] = []

    def idle(c: FakeConnection) -> None:
        if not stop.is_set():  # (once stopped, the consumer pumps what is left, cancelled)
            seen.append(consumer.consuming)
            stop.set()

    home_down = _Refusing(BrokerRefused(
        "declare: 404 NOT_FOUND - home node 'rabbit@n2' of durable queue 'hub.intake' in "
        "vhost '/' is down or inaccessible", 404, "NOT_FOUND"))
    consumer, opened = _consumer(iter([home_down, FakeConnection(on_idle=idle)]), stop)
    # When the consumer runs
    consumer.run()
    # Then it reconnected and consumed
    assert len(opened) == 2
    assert consumer.stats.reconnects == 1
    assert seen == [True]


def test_consuming_is_true_only_while_the_consumer_holds_a_consume_on_the_intake() -> None:
    # Given a broker lost once at connect, once while consuming, then a connection that stays
    stop = threading.Event()
    seen: list[tuple[str, bool]] = []

    def lose(_c: FakeConnection) -> None:
        seen.append(("pumping, before the loss", consumer.consuming))
        raise BrokerUnavailable("connection lost: StreamLostError")

    def idle(_c: FakeConnection) -> None:
        seen.append(("stopping" if stop.is_set() else "pumping", consumer.consuming))
        stop.set()

    class _Watched(FakeConnection):
        def declare(self, topology: Any) -> None:
            seen.append(("declaring", consumer.consuming))
            super().declare(topology)

    first, last = _Watched(on_idle=lose), _Watched(on_idle=idle)
    consumer, _opened = _consumer(iter([BrokerUnavailable("cannot connect: refused"),
                                        first, last]), stop)
    before = consumer.consuming
    # When the consumer runs until it is stopped
    with capture_logs() as logs:
        consumer.run()
    # Then it says it consumes only while pumping a consume, never while (re)connecting nor
    # once it cancelled its consume to stop
    assert before is False
    assert seen == [("declaring", False), ("pumping, before the loss", True),
                    ("declaring", False), ("pumping", True), ("stopping", False)]
    assert consumer.consuming is False
    assert consumer.stats.reconnects == 2
    assert [e["event"] for e in logs].count("broker_lost") == 2

