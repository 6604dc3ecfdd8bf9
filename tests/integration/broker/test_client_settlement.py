"""``hub.client`` settles after the handler, on the real broker (issue 15 item 5).

A document is acknowledged only once the agency's handler returned: a handler that raises
leaves the message in the queue for redelivery, and the receiver's dedup by message id keeps a
redelivered copy from being stored twice. Messages are put in an organization's inbox the way
the hub does it (deliver exchange, ``inbox.<code>``, persistent, with a message id).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.broker import BrokerUnavailable, Outgoing, connect
from hub.client import AgencyClient, HandlerFailed, Received
from hub.directory import Directory
from hub.topology import Topology, build_topology, inbox_key

pytestmark = pytest.mark.broker

FINANCE = "000.00.03.H27"


class FlakyStore:
    """An agency's document store whose first ``failures`` writes raise."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.stored: list[bytes] = []
        self.calls: list[Received] = []

    def __call__(self, received: Received) -> None:
        self.calls.append(received)
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk full")
        self.stored.append(received.body)


@pytest.fixture
def topology(broker_url: str, names: str) -> Iterator[Topology]:
    topo = build_topology(Directory.sample(), prefix=names)
    conn = connect(broker_url, "client settlement setup")
    conn.declare(topo)
    conn.close()
    yield topo
    conn = connect(broker_url, "client settlement cleanup")
    conn.delete(topo)
    conn.close()


def _deliver(url: str, topo: Topology, body: bytes, message_id: str) -> None:
    """Put ``body`` in FINANCE's inbox as the hub does (persistent, confirmed, with an id)."""
    conn = connect(url, "hub stand-in")
    try:
        conn.publish([Outgoing(topo.names.deliver, inbox_key(FINANCE), body,
                               message_id=message_id)])
    finally:
        conn.close()


def _left_in_inbox(url: str, topo: Topology) -> list[bytes]:
    """What a fresh receiver (no seen set) finds in the inbox within a second: a message taken
    but never acked by a closed client is back in the queue by then."""
    client = AgencyClient(url, FINANCE, prefix=topo.names.prefix, name="inbox check")
    try:
        return [r.body for r in client.documents(timeout=1)]
    finally:
        client.close()


def test_a_handler_that_raises_leaves_the_document_queued_and_it_is_stored_once_later(
    broker_url: str, topology: Topology, tmp_path: Path
) -> None:
    # Given a document in the agency's inbox and a store whose first write fails
    _deliver(broker_url, topology, b"<edXML>one</edXML>", "d1:" + FINANCE)
    store = FlakyStore(failures=1)
    client = AgencyClient(broker_url, FINANCE, prefix=topology.names.prefix,
                          seen_file=tmp_path / "seen")
    try:
        # When the handler raises (no local retry)
        with pytest.raises(HandlerFailed) as failed:
            client.handle_documents(store, timeout=5, limit=1, retries=0)
        assert isinstance(failed.value.__cause__, OSError)
        assert store.stored == []
        # Then the document is still in the queue, is delivered again, and is stored once
        assert client.handle_documents(store, timeout=5, limit=1) == 1
        assert store.stored == [b"<edXML>one</edXML>"]
        assert [c.redelivered for c in store.calls] == [False, True]
    finally:
        client.close()
    assert _left_in_inbox(broker_url, topology) == []


def test_a_handler_that_fails_once_is_retried_in_place_and_stores_the_document_once(
    broker_url: str, topology: Topology
) -> None:
    _deliver(broker_url, topology, b"<edXML>two</edXML>", "d2:" + FINANCE)
    store = FlakyStore(failures=1)
    client = AgencyClient(broker_url, FINANCE, prefix=topology.names.prefix)
    try:
        assert client.handle_documents(store, timeout=5, limit=1, retry_delay=0.01) == 1
        assert store.stored == [b"<edXML>two</edXML>"]
        assert len(store.calls) == 2
    finally:
        client.close()
    assert _left_in_inbox(broker_url, topology) == []


def test_a_handler_that_keeps_failing_gives_the_document_back_instead_of_spinning(
    broker_url: str, topology: Topology
) -> None:
    _deliver(broker_url, topology, b"<edXML>three</edXML>", "d3:" + FINANCE)
    store = FlakyStore(failures=100)
    client = AgencyClient(broker_url, FINANCE, prefix=topology.names.prefix)
    try:
        with pytest.raises(HandlerFailed) as failed:
            client.handle_documents(store, timeout=5, retries=2, retry_delay=0.01)
        # three attempts in this call (1 + 2 retries), then the call stops: no hot loop
        assert failed.value.attempts == 3
        assert len(store.calls) == 3
        # and the document waits in the queue for the next call
        kept: list[Received] = []
        assert client.handle_documents(kept.append, timeout=5, limit=1) == 1
        assert [(r.body, r.redelivered) for r in kept] == [(b"<edXML>three</edXML>", True)]
    finally:
        client.close()


def test_a_document_whose_ack_was_lost_is_dropped_as_a_duplicate_when_redelivered(
    broker_url: str, topology: Topology, tmp_path: Path
) -> None:
    # Given a handler that stores the document and then loses the connection before the ack
    _deliver(broker_url, topology, b"<edXML>four</edXML>", "d4:" + FINANCE)
    seen = tmp_path / "seen"
    first = AgencyClient(broker_url, FINANCE, prefix=topology.names.prefix, seen_file=seen)
    stored: list[bytes] = []

    def store_then_crash(received: Received) -> None:
        stored.append(received.body)
        first.conn.close()

    with pytest.raises(BrokerUnavailable):
        first.handle_documents(store_then_crash, timeout=5, limit=1)
    # When the agency restarts with the same seen file and the broker redelivers the document
    again = AgencyClient(broker_url, FINANCE, prefix=topology.names.prefix, seen_file=seen)
    try:
        assert again.handle_documents(lambda r: stored.append(r.body), timeout=2, limit=1) == 0
        # Then it is dropped as a duplicate (and acked): stored exactly once
        assert again.duplicates_dropped == 1
        assert stored == [b"<edXML>four</edXML>"]
    finally:
        again.close()
    assert _left_in_inbox(broker_url, topology) == []
