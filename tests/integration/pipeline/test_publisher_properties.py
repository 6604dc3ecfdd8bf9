"""A publisher's properties the hub cannot write back as they came never stop or loop the
consumer: the message is refused with its reason, recorded, dead-lettered once, and the
envelopes delivered beside it are delivered.

Found by a review (pgfaults): the hub copies a publisher's message id and headers onto the
dead letter it publishes. A header value pika decodes but cannot encode again (a timestamp
past 2**63 seconds, a double of 1e300), a 255-byte short string that is not UTF-8 (three bytes
a letter once made text), headers that fill the content-header frame (the hub adds its own),
a refused envelope to 10,000 recipients (``x-hub-recipient`` lists them all) each failed the
publish: the consumer died (``hub run`` exit 70, restarted in a loop) or dropped its
connection, and the quorum queue's delivery limit dead-lettered the message and its neighbours
with no hub reason and no ledger row. A NUL in a message id (PostgreSQL text cannot hold it)
left a valid envelope delivered with no ledger row and no receipt, on PostgreSQL only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.data
import pytest

from hub.broker import HEADER_VALUE_MAX
from hub.edxml import Limits, parse_packet
from hub.ledger import EventKind
from hub.messages import Headers
from hub.reasons import Reason
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


class _Raw:
    """A header value written as these bytes (type octet and all): any AMQP client can send
    values pika would not encode itself."""

    def __init__(self, encoded: bytes) -> None:
        self.encoded = encoded


@pytest.fixture
def raw_values(monkeypatch: pytest.MonkeyPatch) -> None:
    encode = pika.data.encode_value

    def encode_value(pieces: list[bytes], value: Any) -> int:
        if isinstance(value, _Raw):
            pieces.append(value.encoded)
            return len(value.encoded)
        return int(encode(pieces, value))

    monkeypatch.setattr(pika.data, "encode_value", encode_value)


def _nested(depth: int) -> bytes:
    """A table holding a table … ``depth`` deep (pika's decoder recurses once a level)."""
    value = b"F" + struct.pack(">I", 0)
    for _ in range(depth):
        table = b"\x01k" + value
        value = b"F" + struct.pack(">I", len(table)) + table
    return value


@pytest.fixture
def hub(pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str,
        tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(hub_settings(pipeline_pki, tmp_path, broker_url, names,
                                  ledger_url=ledger_url)) as running:
        yield running


def _publish(hub: RunningHub, first: tuple[bytes, pika.BasicProperties],
             then: list[bytes]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(hub.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(hub.names.inbound, ENVELOPE_KEY, first[0], first[1])
        for i, body in enumerate(then):
            channel.basic_publish(hub.names.inbound, ENVELOPE_KEY, body,
                                  pika.BasicProperties(message_id=f"good-{i}", user_id="guest"))
    finally:
        connection.close()


def _refused_once(hub: RunningHub, reason: Reason) -> Any:
    """The one dead letter, refused for ``reason`` and recorded as such in the ledger."""
    (dead,) = hub.drain(hub.names.dlq)
    assert dead.headers[Headers.REASON] == reason.value
    assert all(isinstance(name, str) for name in dead.headers)
    rejected = [e for e in hub.hub.ledger.events() if e.kind is EventKind.REJECTED]
    assert [e.reason for e in rejected] == [reason.value]
    assert dead.message_id == rejected[0].message_id
    return dead


@pytest.mark.parametrize("poison", [
    pytest.param(lambda: pika.BasicProperties(
        headers={"when": _Raw(b"T" + struct.pack(">Q", 2**63 + 5))}, message_id="p-1",
        user_id="guest"), id="a timestamp header past 2**63 seconds"),
    pytest.param(lambda: pika.BasicProperties(
        headers={"when": _Raw(b"d" + struct.pack(">d", 1e300))}, message_id="p-1",
        user_id="guest"), id="a double header of 1e300"),
    pytest.param(lambda: pika.BasicProperties(
        headers={"deep": _Raw(_nested(600))}, message_id="p-1", user_id="guest"),
        id="a header table nested 600 deep"),
    pytest.param(lambda: pika.BasicProperties(message_id=b"\xff" * 255, user_id="guest"),
                 id="a 255-byte message id that is not UTF-8"),
    pytest.param(lambda: pika.BasicProperties(headers={b"\xff" * 255: "x"}, message_id="p-1",
                                              user_id="guest"),
                 id="a 255-byte header name that is not UTF-8"),
    pytest.param(lambda: pika.BasicProperties(headers={"pad": "a" * 130_950}, message_id="p-1",
                                              user_id="guest"),
                 id="publisher headers that almost fill the content-header frame"),
    pytest.param(lambda: pika.BasicProperties(message_id="p\x00-1", user_id="guest"),
                 id="a NUL in the message id"),
])
@pytest.mark.usefixtures("raw_values")
def test_properties_the_hub_cannot_write_back_get_a_refusal_a_ledger_row_and_one_dead_letter(
    hub: RunningHub, pipeline_pki: PkiPaths, poison: Any,
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    goods = [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=f"{600 + i}")
             for i in range(2)]
    # Given a packet that is not EDXML, with the odd property, published before two envelopes
    _publish(hub, (b"<poison/>", poison()), goods)
    # When the consumer handles them, Then it settles all three on their first delivery
    hub.wait_acked(3)
    assert hub.consumer.stats.reconnects == 0
    assert hub.thread.is_alive()
    # And the envelopes are delivered
    assert sorted(d.body for d in hub.drain(hub.names.inbox(FINANCE))) == sorted(goods)
    # And the packet is refused with its reason, recorded and dead-lettered once
    dead = _refused_once(hub, Reason.ENVELOPE_NOT_EDXML)
    assert dead.body == b"<poison/>"
    assert dead.message_id is not None
    assert len(dead.message_id.encode()) <= 255
    assert "\x00" not in dead.message_id


def test_publisher_headers_over_the_hubs_limit_are_dropped_and_the_dead_letter_says_so(
    hub: RunningHub, pipeline_pki: PkiPaths,
) -> None:
    good = signed_envelope(Keystore.load(pipeline_pki.keystore), HOME_AFFAIRS, (FINANCE,),
                           number="610")
    # Given a small header, then one of 100 KB, from the publisher of a packet that is refused
    props = pika.BasicProperties(headers={"case": "A-17", "pad": "a" * 100_000},
                                 message_id="p-1", user_id="guest")
    _publish(hub, (b"<poison/>", props), [good])
    hub.wait_acked(2)
    # Then its dead letter keeps the small one, drops the big one and says it did
    dead = _refused_once(hub, Reason.ENVELOPE_NOT_EDXML)
    assert dead.headers["case"] == "A-17"
    assert "pad" not in dead.headers
    assert dead.headers["x-edxml-hub-dropped-headers"].startswith("1 header(s)")
    assert [d.body for d in hub.drain(hub.names.inbox(FINANCE))] == [good]


def test_a_refused_envelope_to_ten_thousand_bodies_is_dead_lettered_with_its_recipients_cut(
    hub: RunningHub, pipeline_pki: PkiPaths,
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    # Given a signed envelope to FINANCE and 9,999 bodies the directory does not know (its
    # recipient list, comma-separated, is over a frame), and an envelope after it
    unknown = tuple(f"{900 + i // 10000:03d}.{(i // 100) % 100:02d}.{i % 100:02d}.H27"
                    for i in range(9_999))
    big = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE, *unknown), number="620")
    good = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="621")
    _publish(hub, (big, pika.BasicProperties(message_id="big-1", user_id="guest")), [good])
    # When the consumer handles them, Then both are settled on their first delivery
    hub.wait_acked(2)
    assert hub.consumer.stats.reconnects == 0
    assert [d.body for d in hub.drain(hub.names.inbox(FINANCE))] == [good]
    # And the big one is refused and dead-lettered once, its recipient list cut short
    (dead,) = hub.drain(hub.names.dlq)
    assert dead.body == big
    recipients = dead.headers[Headers.RECIPIENT]
    assert len(recipients.encode()) <= HEADER_VALUE_MAX
    assert recipients.startswith(f"{FINANCE},{unknown[0]},")
    assert recipients.endswith(" more")
    refused = [e for e in hub.hub.ledger.events() if e.kind is EventKind.REJECTED]
    assert [e.message_id for e in refused] == ["big-1"]


def test_a_nul_in_the_message_id_of_a_valid_envelope_is_recorded_and_answered_on_both_databases(
    hub: RunningHub, pipeline_pki: PkiPaths,
) -> None:
    body = signed_envelope(Keystore.load(pipeline_pki.keystore), HOME_AFFAIRS, (FINANCE,),
                           number="630")
    # Given a valid envelope whose message id holds a NUL (PostgreSQL text cannot)
    connection = pika.BlockingConnection(pika.URLParameters(hub.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(hub.names.inbound, ENVELOPE_KEY, body,
                              pika.BasicProperties(message_id="id\x00nul", user_id="guest"))
    finally:
        connection.close()
    # When the consumer handles it
    hub.wait_acked(1)
    # Then it is delivered, recorded and answered (accepted, and received for the hosted
    # recipient), on PostgreSQL as on SQLite
    assert [d.body for d in hub.drain(hub.names.inbox(FINANCE))] == [body]
    assert hub.drain(hub.names.dlq) == []
    digest = parse_packet(body, Limits()).digest
    ledger = hub.hub.ledger
    assert ledger.delivered_to(digest) == {FINANCE}
    received = [e for e in ledger.events() if e.kind is EventKind.RECEIVED]
    assert [e.message_id.split("~")[0] for e in received] == ["idnul"]
    receipts = hub.drain(hub.names.status(HOME_AFFAIRS))
    assert sorted(d.headers[Headers.RECEIPT] for d in receipts) == ["accepted", "received"]
