"""The pika adapter on the real broker: batches in flight at once, and settling by ranges."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pika.adapters.utils.io_services_utils import _AsyncTransportBase

from hub.broker import (
    RECV_BYTES,
    BrokerUnavailable,
    Connection,
    Delivery,
    Outgoing,
    SettledTwice,
    connect,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def conn(broker_url: str, connection_name: str, names: str) -> Iterator[Connection]:
    c = connect(broker_url, connection_name)
    c.channel.queue_declare(names, durable=True, arguments={"x-queue-type": "quorum"})
    yield c
    c.channel.queue_delete(names)
    c.close()


def _messages(queue: str, n: int, tag: str) -> list[Outgoing]:
    return [Outgoing("", queue, f"{tag}{i}".encode(), message_id=f"{tag}{i}") for i in range(n)]


def test_two_batches_sent_before_either_is_confirmed_are_both_confirmed(
    conn: Connection, names: str
) -> None:
    # Given a first batch written without waiting
    first = conn.send(_messages(names, 50, "a"))
    # When a second batch is written before the first is confirmed
    second = conn.send(_messages(names, 50, "b"))
    # Then waiting for the second, then the first, returns (confirms may come in any grouping)
    conn.wait(second)
    conn.wait(first)
    assert len(first) == len(second) == 50
    assert conn.queue_depth(names) == 100


def test_a_batch_written_in_large_chunks_arrives_whole_and_in_order(
    conn: Connection, names: str
) -> None:
    # Given a batch several times the adapter's write chunk, of bodies of every size up to a
    # frame and beyond (frames are joined per chunk, never split across messages)
    bodies = [bytes([i % 251]) * (1 + (i * 7919) % 300_000) for i in range(40)]
    assert sum(map(len, bodies)) > 4 * 256 * 1024
    sent = conn.send([Outgoing("", names, b, message_id=f"m{i}") for i, b in enumerate(bodies)])
    conn.wait(sent)
    # Then the broker holds every message, byte for byte, in the order sent
    got = []
    while (d := conn.get(names)) is not None:
        got.append((d.message_id, d.body))
        conn.settler().ack([d.tag])
    assert got == [(f"m{i}", b) for i, b in enumerate(bodies)]


def test_consumed_messages_read_in_large_socket_reads_arrive_whole_and_in_order(
    conn: Connection, names: str
) -> None:
    # Given many messages of every size up to several frames waiting in the queue
    bodies = [bytes([i % 251]) * (1 + (i * 104_729) % 1_100_000) for i in range(24)]
    bodies += [bytes([i]) * 10_300 for i in range(200)]
    conn.wait(conn.send([Outgoing("", names, b, message_id=f"m{i}")
                         for i, b in enumerate(bodies)]))
    # When the adapter consumes them with a window wide enough to have many frames on the wire
    got: list[Delivery] = []
    conn.consume(names, 300, got.append)
    deadline = time.monotonic() + 60
    while len(got) < len(bodies) and time.monotonic() < deadline:
        conn.pump(0.5)
    conn.settler().ack([d.tag for d in got])
    # Then each one arrives byte for byte, in order; this connection reads RECV_BYTES at a
    # time, while pika's own classes keep their 4 KB
    assert [(d.message_id, d.body) for d in got] == [
        (f"m{i}", b) for i, b in enumerate(bodies)]
    assert conn._conn._impl._transport._MAX_RECV_BYTES == RECV_BYTES
    assert _AsyncTransportBase._MAX_RECV_BYTES == 4096

def test_every_property_the_adapter_writes_reaches_the_broker_as_given(
    conn: Connection, names: str
) -> None:
    # Given messages with every header type the hub sends, an expiration, the login as
    # user_id, a Vietnamese header value and an empty body (the adapter marshals the frames)
    headers = {"x-hub-sender": "000.00.00.G01", "x-hub-reason-text-vi": "Chữ ký không hợp lệ",
               "x-hub-attempts": 3, "x-hub-big": 2**40, "x-hub-flag": True, "x-hub-none": None}
    before = int(time.time())
    conn.publish([Outgoing("", names, b"", headers, message_id="m-1", user_id="guest",
                           expiration_ms=600_000, content_type="application/json"),
                  Outgoing("", names, b"<e/>", message_id="m-2")])
    # Then the broker hands back exactly what was given, with the adapter's fixed properties
    _method, props, body = conn.channel.basic_get(names, auto_ack=True)
    assert body == b""
    assert {k: props.headers[k] for k in headers} == headers
    assert (props.message_id, props.user_id, props.expiration, props.content_type) == (
        "m-1", "guest", "600000", "application/json")
    assert (props.delivery_mode, props.app_id) == (2, "edxml-hub")
    assert before <= props.timestamp <= time.time()
    _method, props, body = conn.channel.basic_get(names, auto_ack=True)
    assert body == b"<e/>"
    assert (props.message_id, props.user_id, props.expiration, props.content_type) == (
        "m-2", None, None, "application/xml")


def test_an_unroutable_message_fails_every_batch_in_flight(conn: Connection, names: str) -> None:
    # Given a good batch in flight
    good = conn.send(_messages(names, 5, "a"))
    # And a batch with a message no queue takes (mandatory: the broker returns it)
    bad = conn.send([Outgoing("", f"{names}-nowhere", b"x", message_id="lost")])
    # Then waiting for the bad batch fails, naming the message
    with pytest.raises(BrokerUnavailable, match="unroutable"):
        conn.wait(bad)
    # And the batch that was in flight with it is never reported confirmed
    with pytest.raises(BrokerUnavailable, match="not accepted"):
        conn.wait(good)
    # But a later batch on the same connection is not failed by the old return
    conn.wait(conn.send(_messages(names, 1, "c")))


def test_a_return_that_arrived_before_the_next_send_still_fails_its_batch(
    conn: Connection, names: str
) -> None:
    # Given a batch with an unroutable message, all of whose answers (the return, then the
    # confirms) have arrived before anyone waits for it
    bad = conn.send([*_messages(names, 2, "a"),
                     Outgoing("", f"{names}-nowhere", b"x", message_id="lost")])
    while conn._pending:
        conn.pump(0.05)
    # When the next batch is sent (nothing is pending any more) and confirmed
    good = conn.send(_messages(names, 2, "b"))
    conn.wait(good)
    # Then the first batch is still reported failed: its delivery must never be acked
    with pytest.raises(BrokerUnavailable, match="unroutable"):
        conn.wait(bad)


def _take(conn: Connection, queue: str, n: int) -> list[Delivery]:
    got: list[Delivery] = []
    conn.consume(queue, n, got.append)
    while len(got) < n:
        conn.pump(0.05)
    return got


@pytest.fixture
def consumer(conn: Connection, broker_url: str, connection_name: str) -> Iterator[Connection]:
    """A second connection that takes deliveries; a test closes it to see what comes back."""
    c = connect(broker_url, connection_name + " consumer")
    yield c
    c.close()


def test_a_batch_of_the_next_unsettled_tags_is_acknowledged_at_once(
    conn: Connection, consumer: Connection, names: str
) -> None:
    consumer.publish(_messages(names, 6, "a"))
    got = _take(consumer, names, 6)
    settler = consumer.settler()
    # When the first three, then the last three are acknowledged (each batch contiguous)
    settler.ack([d.tag for d in got[:3]])
    settler.ack([d.tag for d in got[3:]])
    # Then nothing comes back once the consumer is gone
    consumer.close()
    assert conn.queue_depth(names) == 0


def test_acknowledging_around_a_gap_leaves_the_gap_unsettled(
    conn: Connection, consumer: Connection, names: str
) -> None:
    consumer.publish(_messages(names, 5, "a"))
    got = _take(consumer, names, 5)
    settler = consumer.settler()
    # When tags 1, 2 and 4, 5 are acknowledged but 3 is not (never a multiple ack over 3)
    settler.ack([got[0].tag, got[1].tag])
    settler.ack([got[3].tag, got[4].tag])
    with pytest.raises(SettledTwice):
        settler.ack([got[1].tag])
    # Then exactly the unsettled one comes back once the consumer is gone (the broker returns
    # it when it has handled the channel's close: after close() returns, not at once)
    consumer.close()
    deadline = time.monotonic() + 30
    back = conn.get(names)
    while back is None and time.monotonic() < deadline:
        back = conn.get(names)
    assert back is not None, "the unsettled message never came back"
    assert back.body == b"a2"
    assert conn.queue_depth(names) == 0
