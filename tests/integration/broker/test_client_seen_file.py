"""Two ``hub.client`` instances on one seen file, on the real broker (a rolling restart).

The new instance starts while the old one still runs. The old one handles a document, records
its id and dies before the ack; RabbitMQ redelivers the document to the new instance, which must
drop it (the module's promise: a crash between recording and acking is a dropped redelivery,
never a document handled twice). Messages go into the inbox the way the hub puts them there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.broker import BrokerUnavailable, Outgoing, connect
from hub.client import AgencyClient, Received
from hub.directory import Directory
from hub.topology import Topology, build_topology, inbox_key

pytestmark = pytest.mark.broker

FINANCE = "000.00.03.H27"


@pytest.fixture
def topology(broker_url: str, names: str) -> Iterator[Topology]:
    topo = build_topology(Directory.sample(), prefix=names)
    conn = connect(broker_url, "seen file setup")
    conn.declare(topo)
    conn.close()
    yield topo
    conn = connect(broker_url, "seen file cleanup")
    conn.delete(topo)
    conn.close()


def _deliver(url: str, topo: Topology, body: bytes, message_id: str) -> None:
    conn = connect(url, "hub stand-in")
    try:
        conn.publish([Outgoing(topo.names.deliver, inbox_key(FINANCE), body,
                               message_id=message_id)])
    finally:
        conn.close()


def test_a_redelivery_after_the_old_instance_died_before_its_ack_is_dropped_by_the_new_one(
        broker_url: str, topology: Topology, tmp_path: Path) -> None:
    seen = tmp_path / "finance-seen"
    prefix = topology.names.prefix
    _deliver(broker_url, topology, b"<edXML>S1</edXML>", "s1:" + FINANCE)
    register: list[tuple[str, bytes, bool]] = []
    # Given the new instance started (and read the seen file) while the old one still runs
    new = AgencyClient(broker_url, FINANCE, prefix=prefix, seen_file=seen, name="finance new")
    old = AgencyClient(broker_url, FINANCE, prefix=prefix, seen_file=seen, name="finance old")

    def store_then_die(received: Received) -> None:
        register.append(("old", received.body, received.redelivered))
        old.conn.close()  # the process dies after its handler, before basic.ack

    try:
        # When the old one stores the document, records its id and dies before the ack
        with pytest.raises(BrokerUnavailable):
            old.handle_documents(store_then_die, timeout=5, limit=1)
        # Then the redelivery reaches the new one, which drops it
        handled = new.handle_documents(
            lambda r: register.append(("new", r.body, r.redelivered)), timeout=2, limit=1)
        assert handled == 0
        assert new.duplicates_dropped == 1
        assert register == [("old", b"<edXML>S1</edXML>", False)]
        assert new.documents(timeout=1) == []  # acked: nothing left in the inbox
    finally:
        new.close()


def test_a_copy_republished_after_the_other_instance_handled_the_document_is_dropped(
        broker_url: str, topology: Topology, tmp_path: Path) -> None:
    # A copy the hub republishes after a crash is not flagged redelivered: it is checked
    # against what the other instance recorded all the same.
    seen = tmp_path / "finance-seen"
    prefix = topology.names.prefix
    new = AgencyClient(broker_url, FINANCE, prefix=prefix, seen_file=seen, name="finance new")
    old = AgencyClient(broker_url, FINANCE, prefix=prefix, seen_file=seen, name="finance old")
    try:
        _deliver(broker_url, topology, b"<edXML>S2</edXML>", "s2:" + FINANCE)
        assert [r.body for r in old.documents(timeout=5, limit=1)] == [b"<edXML>S2</edXML>"]
        _deliver(broker_url, topology, b"<edXML>S2</edXML>", "s2:" + FINANCE)
        assert new.documents(timeout=2, limit=1) == []
        assert new.duplicates_dropped == 1
    finally:
        old.close()
        new.close()
