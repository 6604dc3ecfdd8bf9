"""The adapter marshals Basic.Publish itself: the frames are the bytes pika writes.

The reference is pika's own code path: ``Channel.basic_publish`` on a real
:class:`pika.channel.Channel` whose connection runs pika's ``_send_message`` and
``_output_marshaled_frames`` into memory, with the ``BasicProperties`` the adapter built
before it marshalled frames itself. No broker: the real-broker tests are in
``tests/integration/broker``.
"""

from __future__ import annotations

import re
import time
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pika
import pika.callback
import pika.channel
import pika.connection
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import broker
from hub.broker import BrokerUnavailable, Connection, Outgoing

FRAME_MAX_BODY = 131072 - 8  # pika's default frame_max less a frame's header and end octet


class _Wire:
    """pika's connection output path, into memory."""

    _send_method = pika.connection.Connection._send_method
    _send_message = pika.connection.Connection._send_message
    _output_marshaled_frames = pika.connection.Connection._output_marshaled_frames

    def __init__(self, body_max: int = FRAME_MAX_BODY) -> None:
        self._body_max_length = body_max
        self.bytes_sent = 0
        self.frames_sent = 0
        self.written: list[bytes] = []
        self.callbacks = pika.callback.CallbackManager()

    def _adapter_emit_data(self, data: bytes) -> None:
        self.written.append(data)


def _channel(wire: _Wire, number: int = 1) -> Any:
    channel = pika.channel.Channel(wire, number, lambda _ch: None)
    channel._set_state(channel.OPEN)
    return channel


def _pika_properties(msg: Outgoing, timestamp: int) -> pika.BasicProperties:
    """The properties Connection.send gave pika before it marshalled frames itself."""
    return pika.BasicProperties(
        delivery_mode=2,
        content_type=msg.content_type,
        headers=dict(msg.headers) or None,
        message_id=msg.message_id,
        user_id=msg.user_id,
        app_id="edxml-hub",
        expiration=str(msg.expiration_ms) if msg.expiration_ms is not None else None,
        timestamp=timestamp,
    )


def _pika_publish(msg: Outgoing, timestamp: int, body_max: int, number: int) -> _Wire:
    wire = _Wire(body_max)
    _channel(wire, number).basic_publish(msg.exchange, msg.routing_key, msg.body,
                                         _pika_properties(msg, timestamp), mandatory=True)
    return wire


def _connection(wire: _Wire, channel: Any) -> Connection:
    """A Connection over in-memory pika objects (the constructor needs a broker)."""
    conn = Connection.__new__(Connection)
    conn._conn = types.SimpleNamespace(_impl=wire)
    conn._pub = types.SimpleNamespace(_impl=channel)
    conn._pending, conn._failed, conn._seq, conn._failed_through = {}, [], 0, 0
    conn._pub_closed = None
    return conn


@contextmanager
def _clock(seconds: float) -> Iterator[None]:
    with mock.patch.object(time, "time", return_value=seconds):
        yield


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "ok", run()
    except Exception as exc:  # the same failure, class and words, is the same outcome
        return type(exc).__name__, repr(exc)


short = st.text(max_size=90) | st.text(min_size=250, max_size=300)
"""Strings on both sides of the 255-byte short-string limit (UTF-8: up to 4 bytes a letter)."""

header_values = st.recursive(
    st.text(max_size=200) | st.integers(min_value=-2**63, max_value=2**63 - 1) | st.booleans()
    | st.none() | st.binary(max_size=40) | st.floats(allow_nan=False),  # a float: pika refuses it
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner, max_size=3),
    max_leaves=6,
)
hub_headers = st.dictionaries(
    st.sampled_from(["x-hub-digest", "x-hub-sender", "x-hub-recipient", "x-hub-via", "x-hub-reason",
                     "x-hub-attempts", "x-hub-original-user"]) | short,
    st.text(max_size=200) | st.integers(min_value=-2**40, max_value=2**40) | st.booleans() | st.none(),
    max_size=7,
)
messages = st.builds(
    Outgoing,
    exchange=short,
    routing_key=short,
    body=st.binary(max_size=3000) | st.sampled_from([b"", b"<x/>" * 2500]),
    headers=hub_headers | st.dictionaries(st.text(max_size=20), header_values, max_size=4),
    message_id=st.none() | short,
    content_type=st.sampled_from(["application/xml", "application/json"]) | short,
    user_id=st.none() | short,
    expiration_ms=st.none() | st.integers(min_value=0, max_value=2**32),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=messages, timestamp=st.integers(min_value=0, max_value=2**40),
       body_max=st.sampled_from([1, 7, 1000, 4096, FRAME_MAX_BODY]),
       number=st.integers(min_value=1, max_value=2047))
def test_the_frames_of_a_message_are_the_bytes_pika_marshals_for_it(
        msg: Outgoing, timestamp: int, body_max: int, number: int) -> None:
    def ours() -> tuple[bytes, int, int]:
        pieces, count, size = broker._publish_frames(number, body_max, msg, timestamp)
        return b"".join(pieces), count, size

    def pikas() -> tuple[bytes, int, int]:
        wire = _pika_publish(msg, timestamp, body_max, number)
        return b"".join(wire.written), wire.frames_sent, wire.bytes_sent

    assert _outcome(ours) == _outcome(pikas)


@pytest.mark.parametrize("headers", [
    {"x-hub-digest": "ab" * 32, "x-hub-sender": "000.00.00.G01", "x-hub-via": "direct"},
    {"x-hub-attempts": 3, "x-hub-first-reason": "SIGNATURE_INVALID"},
    {"x-hub-flag": True, "x-hub-none": None, "x-hub-big": 2**40},
    {"x-death": [{"count": 1, "reason": "expired", "queue": "q", "routing-keys": ["a", "b"]}]},
    {"k" * 256: "too long a key"},
    {"x-hub-float": 1.5},
    {},
], ids=["strings", "an-int", "bool-none-long", "nested", "long-key", "unsupported-value", "none"])
def test_every_kind_of_header_the_hub_sends_is_encoded_as_pika_encodes_it(
        headers: Mapping[str, Any]) -> None:
    msg = Outgoing("hub.deliver", "org.h01", b"<e/>", headers, message_id="m-1", expiration_ms=5000,
                   user_id="hub")

    def ours() -> bytes:
        return b"".join(broker._publish_frames(1, FRAME_MAX_BODY, msg, 1_700_000_000)[0])

    def pikas() -> bytes:
        return b"".join(_pika_publish(msg, 1_700_000_000, FRAME_MAX_BODY, 1).written)

    assert _outcome(ours) == _outcome(pikas)


def _batch(count: int) -> list[Outgoing]:
    return [
        Outgoing("hub.deliver", f"org.{i % 5}", bytes([i % 251]) * (20_000 + i),
                 {"x-hub-digest": f"{i:064x}", "x-hub-attempts": i}, message_id=f"m-{i}",
                 user_id="hub" if i % 2 else None, expiration_ms=i if i % 3 else None)
        for i in range(count)
    ]


def test_a_batch_is_written_as_pika_writes_it_and_counted_for_the_heartbeat() -> None:
    # Given a batch of more than one write chunk, sent by the adapter and by pika
    batch = _batch(40)
    ours, theirs = _Wire(), _Wire()
    conn = _connection(ours, _channel(ours))
    with _clock(1_700_000_000.75):
        sent = conn.send(batch)
        channel = _channel(theirs)
        for msg in batch:
            channel.basic_publish(msg.exchange, msg.routing_key, msg.body,
                                  _pika_properties(msg, int(time.time())), mandatory=True)
    # Then the bytes on the wire, the frame and byte counters and the confirms awaited agree
    assert b"".join(ours.written) == b"".join(theirs.written)
    assert len(ours.written) > 1  # written in chunks, not message by message
    assert (ours.bytes_sent, ours.frames_sent) == (theirs.bytes_sent, theirs.frames_sent)
    assert sent == range(1, 41)
    assert conn._pending == {i + 1: f"m-{i}" for i in range(40)}


def test_publishing_on_a_closed_channel_is_refused_with_pikas_words_and_writes_nothing() -> None:
    wire = _Wire()
    channel = _channel(wire)
    channel._set_state(channel.CLOSED)
    conn = _connection(wire, channel)
    with pytest.raises(BrokerUnavailable,
                       match=re.escape("publish: ChannelWrongStateError: ('Channel is closed.',)")):
        conn.send(_batch(2))
    assert wire.written == []
    assert wire.bytes_sent == 0


def test_a_message_pika_could_not_marshal_fails_the_batch_and_nothing_of_it_is_written() -> None:
    wire = _Wire()
    conn = _connection(wire, _channel(wire))
    batch = [*_batch(3), Outgoing("hub.deliver", "org.1", b"x", message_id="m" * 256)]
    with pytest.raises(BrokerUnavailable, match="publish: ShortStringTooLong"):
        conn.send(batch)
    assert wire.written == []
    assert conn._seq == 4  # as before: the sequence numbers were taken, nothing will confirm them
