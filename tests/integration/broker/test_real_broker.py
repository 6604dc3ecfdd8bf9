"""The test broker is real: messages survive a round trip through RabbitMQ."""

from __future__ import annotations

import pika
import pytest

from hub.testing import devbroker

pytestmark = pytest.mark.broker


def test_a_message_published_to_the_test_broker_can_be_consumed_back(
    broker_url: str, names: str, connection_name: str
) -> None:
    params = pika.URLParameters(broker_url)
    params.client_properties = {"connection_name": connection_name}
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(names, durable=True, arguments={"x-queue-type": "quorum"})
        ch.basic_publish("", names, b"hello", pika.BasicProperties(delivery_mode=2))
        method, _props, body = ch.basic_get(names, auto_ack=True)
        assert method is not None
        assert body == b"hello"
        ch.queue_delete(names)
    finally:
        conn.close()


def test_a_second_broker_is_independent_and_refuses_connections_while_paused(
    second_broker: devbroker.RunningBroker,
) -> None:
    params = pika.URLParameters(second_broker.url + "?stack_timeout=2&connection_attempts=1")
    second_broker.docker("pause")
    from pika.adapters.utils.connection_workflow import AMQPConnectorException

    # Depending on timing the handshake is refused or times out: both are "no broker".
    with pytest.raises((pika.exceptions.AMQPError, AMQPConnectorException)):
        pika.BlockingConnection(params)
    second_broker.docker("unpause")
    conn = pika.BlockingConnection(pika.URLParameters(second_broker.url + "?stack_timeout=60"))
    assert conn.is_open
    conn.close()
