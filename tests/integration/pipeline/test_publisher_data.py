"""What a publisher puts in a message's properties is data: no value AMQP allows — a header
name that is not UTF-8, a count that is not a number, a timestamp no date can hold — stops the
consumer, loops the message, or takes the good messages delivered beside it down with it.

Found by a review: each of the three made the intake consumer die (or its connection drop)
on every delivery of the message, until the quorum queue's delivery limit dead-lettered it
— and the good envelopes of the same batch — with no ledger row, reason or receipt.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.data
import pytest

from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    RunningHub,
    hub_settings,
    running_hub,
    signed_envelope,
)

pytestmark = pytest.mark.broker


class _HugeTimestamp:
    """A header value sent as an AMQP timestamp (``T``) of 2**62 seconds."""


@pytest.fixture
def huge_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's publisher can send a ``T`` value no ``datetime`` holds (any AMQP client can)."""
    encode = pika.data.encode_value

    def encode_value(pieces: list[bytes], value: Any) -> int:
        if isinstance(value, _HugeTimestamp):
            pieces.append(b"T" + struct.pack(">Q", 2**62))
            return 9
        return int(encode(pieces, value))

    monkeypatch.setattr(pika.data, "encode_value", encode_value)


@pytest.fixture
def hub(pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str,
        tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(hub_settings(pipeline_pki, tmp_path, broker_url, names,
                                  ledger_url=ledger_url)) as running:
        yield running


def _publish(hub: RunningHub, keystore: Keystore, poison: pika.BasicProperties) -> list[bytes]:
    """Three good envelopes, then the poison, in one prefetch window; the good bodies."""
    goods = [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=str(300 + i))
             for i in range(3)]
    connection = pika.BlockingConnection(pika.URLParameters(hub.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for i, body in enumerate(goods):
            channel.basic_publish(hub.names.inbound, ENVELOPE_KEY, body,
                                  pika.BasicProperties(message_id=f"good-{i}", user_id="guest"))
        channel.basic_publish(hub.names.inbound, ENVELOPE_KEY, b"<poison/>", poison)
    finally:
        connection.close()
    return goods


@pytest.mark.parametrize("poison", [
    pytest.param(lambda: pika.BasicProperties(headers={b"\xff\xfe": "x"}, message_id="p-1"),
                 id="a header name that is not UTF-8"),
    pytest.param(lambda: pika.BasicProperties(headers={"x-delivery-count": "lots"},
                                              message_id="p-2"),
                 id="the publisher's own delivery count, not a number"),
    pytest.param(lambda: pika.BasicProperties(headers={"when": _HugeTimestamp()},
                                              message_id="p-3"),
                 id="a timestamp header no date can hold"),
])
@pytest.mark.usefixtures("huge_timestamps")
def test_an_odd_property_is_refused_with_its_reason_and_the_envelopes_beside_it_delivered(
    hub: RunningHub, pipeline_pki: PkiPaths, poison: Any,
) -> None:
    goods = _publish(hub, Keystore.load(pipeline_pki.keystore), poison())
    # Then the consumer settles all four on their first delivery, without a reconnect
    hub.wait_acked(4)
    assert hub.consumer.stats.reconnects == 0
    assert sorted(d.body for d in hub.drain(hub.names.inbox(FINANCE))) == sorted(goods)
    (dead,) = hub.drain(hub.names.dlq)
    assert dead.body == b"<poison/>"
    assert dead.headers["x-hub-reason"] == "ENVELOPE_NOT_EDXML"
    assert all(isinstance(name, str) for name in dead.headers)
