"""What the adapter takes from a publisher it can write back, and what it writes fits a frame.

The review (pgfaults) found deliveries whose properties pika decodes but cannot encode again,
and dead letters whose content-header frame is over ``frame_max``: each failed the hub's
publish about the delivery and looped it. No broker here: the frames are written to memory
(as in ``test_broker_publish``) and read back with pika's own decoder; the real broker's side
is ``tests/integration/pipeline/test_publisher_properties.py``.
"""

from __future__ import annotations

import struct
import types
from typing import Any

import pika
import pika.frame
import pika.spec

from hub import broker
from hub.broker import DROPPED_HEADERS, HEADER_VALUE_MAX, HEADERS_MAX, Outgoing
from hub.messages import Headers
from tests.unit.test_broker_publish import FRAME_MAX_BODY, _channel, _connection, _Wire


def _sent(msg: Outgoing) -> tuple[pika.spec.BasicProperties, int]:
    """``msg`` sent by :meth:`Connection.send`, read back: its properties and the size of its
    content-header frame's payload."""
    wire = _Wire()
    _connection(wire, _channel(wire)).send([msg])
    data = b"".join(wire.written)
    _, method = pika.frame.decode_frame(data)
    offset = len(method.marshal())
    header_size = struct.unpack_from(">I", data, offset + 3)[0]
    _, header = pika.frame.decode_frame(data[offset:])
    assert isinstance(header, pika.frame.Header)
    return header.properties, header_size


def test_a_recipient_list_over_a_frame_is_cut_with_how_many_more() -> None:
    # Given the dead letter of an envelope to 10,000 bodies (their codes comma-separated)
    codes = [f"{900 + i // 10000:03d}.{(i // 100) % 100:02d}.{i % 100:02d}.H27"
             for i in range(10_000)]
    msg = Outgoing("hub.dlx", "RECIPIENT_UNKNOWN", b"<e/>",
                   {Headers.REASON: "RECIPIENT_UNKNOWN", Headers.RECIPIENT: ",".join(codes)},
                   message_id="big-1")
    # When it is sent, Then its header frame fits and the list says how many it left out
    props, size = _sent(msg)
    assert size <= FRAME_MAX_BODY
    recipients = props.headers[Headers.RECIPIENT]
    assert len(recipients.encode()) <= HEADER_VALUE_MAX
    kept = recipients.split(",")[:-1]
    assert kept == codes[:len(kept)]
    assert recipients.endswith(f"… and {len(codes) - len(kept)} more")
    assert props.headers[Headers.REASON] == "RECIPIENT_UNKNOWN"


def test_properties_pika_cannot_encode_are_sent_made_encodable_not_raised() -> None:
    # Given a message with a number no AMQP integer holds, a float, a header name of 765 bytes
    # (what 255 bytes that are not UTF-8 once were) and headers over a frame
    msg = Outgoing("hub.dlx", "ENVELOPE_NOT_EDXML", b"<p/>",
                   {"when": 2**63 + 5, "ratio": 1.5, "pad": "a" * 200_000, "\ufffd" * 255: "x",
                    Headers.REASON: "ENVELOPE_NOT_EDXML"},
                   message_id="p-1")
    # When it is sent, Then nothing raises and what is written is what pika reads back
    props, size = _sent(msg)
    assert size <= FRAME_MAX_BODY
    assert props.headers["when"] == str(2**63 + 5)
    assert props.headers["ratio"] == "1.5"
    assert props.headers[Headers.REASON] == "ENVELOPE_NOT_EDXML"
    assert all(len(name.encode()) <= 255 for name in props.headers)


def _delivered(props: pika.BasicProperties) -> Any:
    method = types.SimpleNamespace(delivery_tag=1, routing_key="envelope", exchange="in",
                                   redelivered=False)
    return broker._delivery(method, props, b"<p/>")


def test_a_delivery_holds_only_what_can_be_written_back() -> None:
    # Given properties as pika decodes them from an odd publisher
    delivery = _delivered(pika.BasicProperties(
        message_id=b"\xff" * 255, user_id="guest", app_id="a\x00b",
        headers={b"\xfe" * 255: "x", "big": 2**64 - 1, "nested": {b"\xff": [2**70]},
                 "pad": "a" * (HEADERS_MAX + 1), "x-hub-attempts": 2}))
    # Then every short string is text of at most 255 bytes without control characters
    for text in (delivery.message_id, delivery.app_id, *delivery.headers):
        assert isinstance(text, str)
        assert len(text.encode()) <= 255
        assert "\x00" not in text
    assert delivery.app_id.startswith("ab~")
    # And every value encodes again, the publisher's headers within the limit, the rest counted
    pika.data.encode_table([], dict(delivery.headers))
    assert delivery.headers["big"] == str(2**64 - 1)
    assert "pad" not in delivery.headers
    assert delivery.headers[DROPPED_HEADERS].startswith("1 header(s)")
    assert delivery.headers["x-hub-attempts"] == 2


def test_two_ids_that_differ_only_in_bytes_that_are_not_utf8_stay_different() -> None:
    first = _delivered(pika.BasicProperties(message_id=b"id-\xff"))
    second = _delivered(pika.BasicProperties(message_id=b"id-\xfe"))
    assert first.message_id != second.message_id
    assert _delivered(pika.BasicProperties(message_id="id-1")).message_id == "id-1"
