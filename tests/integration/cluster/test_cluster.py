"""Scale-out on RabbitMQ's own clustering (issue 10): nothing lost, nothing doubled.

Two ``hub run`` processes share the work of one three-replica quorum intake; 2,000 envelopes are
in flight when the leader of the busiest queue is killed, paused or cut from the network, then
brought back. Afterwards the recipient sees every envelope exactly once (it deduplicates by
``message_id``, as :mod:`hub.client` does), the ledger holds 2,000 envelope documents and its
hash chain verifies, and nothing was dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.broker import connect
from hub.ledger import Ledger
from hub.testing.cluster import Cluster, Node
from hub.testing.pki import PkiPaths
from tests.integration.cluster.conftest import N
from tests.integration.cluster.workload import (
    FINANCE,
    Consumers,
    Watch,
    drain,
    envelope_count,
    hub_settings,
    publish_reliably,
    topology_of,
    wait_until,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.postgres]


@dataclass(frozen=True)
class Fault:
    """A way to take a node away and give it back."""

    name: str
    inflict: Callable[[Cluster, Node], None]
    repair: Callable[[Cluster, Node], None]


KILL = Fault("kill", lambda c, n: c.kill(n), lambda c, n: c.start(n))
PAUSE = Fault("pause", lambda c, n: c.pause(n), lambda c, n: c.unpause(n))
CUT = Fault("network cut", lambda c, n: c.disconnect(n), lambda c, n: c.reconnect(n))


def _survive(fault: Fault, cluster: Cluster, pki: PkiPaths, envelopes: list[bytes],
             ledger_url: str, tmp: Path, prefix: str) -> None:
    seed, other, spare = cluster.nodes
    t0 = time.monotonic()
    marks: list[str] = []

    def mark(what: str) -> None:
        marks.append(f"{what} {time.monotonic() - t0:.1f}s")
    settings = hub_settings(pki, tmp, url=seed.url, prefix=prefix, ledger_url=ledger_url)
    topology = topology_of(settings)
    names = topology.names
    # Given the topology declared through the seed node (its quorum queues have 3 replicas,
    # their leaders on the seed) and the ledger schema migrated once, before any consumer starts
    observer = Watch([spare.url, other.url], f"{prefix} observer")
    declarer = connect(seed.url, f"{prefix} declare")
    declarer.declare(topology)
    declarer.close()
    intake = cluster.queues(prefix=names.intake, via=spare)[0]
    assert len(intake.members) == 3, intake
    Ledger.open(ledger_url).close()
    # And two consumer processes on the two other nodes. (`hub run` takes one broker URL: a
    # consumer whose node is down waits for that node, and one whose node is frozen crashes on
    # pika's handshake timeout; see docs/OPERATIONS.md. So the consumers sit on the nodes that
    # stay up, and the fault hits the node that leads the queues.)
    consumers = Consumers(settings, tmp / "consumers")
    consumers.start([other.url, spare.url])
    try:
        assert wait_until(lambda: observer.consumers(names.intake) >= 2, 60, observer.sleep), (
            f"consumers did not attach\n{consumers.tail()}")
        mark('consumers attached')
        items = [(f"m{i}", body) for i, body in enumerate(envelopes)]
        half = len(items) // 2
        # When half of the envelopes are published and the consumers are busy
        first = publish_reliably([seed.url], names.inbound, items[:half])
        assert wait_until(lambda: envelope_count(ledger_url) >= 200, 60, observer.sleep), (
            f"no progress before the fault\n{consumers.tail()}")
        mark('200 recorded')
        # And the leader of the busiest queue is taken away
        # (depths by AMQP: `rabbitmqctl list_queues messages` lags by the statistics interval)
        depths = {q.name: observer.depth(q.name) for q in topology.queues}
        busiest = max(depths, key=lambda name: depths[name])
        victim = cluster.leader_of(busiest, via=spare)
        assert victim == seed, f"{busiest} is led by {victim.name}, not by the seed"
        survivors = [n for n in cluster.nodes if n != victim]
        at_fault = envelope_count(ledger_url)
        fault.inflict(cluster, victim)
        mark('fault')
        # And the other half is published while it is away (channels reopened on nacks)
        second = publish_reliably([n.url for n in survivors], names.inbound, items[half:])
        mark('second half published')
        # Then the surviving nodes and consumers keep working without it
        assert wait_until(lambda: envelope_count(ledger_url) >= at_fault + 200, 90,
                          observer.sleep), (
            f"no progress while {victim.name} is away ({fault.name}): "
            f"{envelope_count(ledger_url)} recorded\n{consumers.tail()}")
        mark('progress under fault')
        # When the node comes back
        fault.repair(cluster, victim)
        cluster.wait_healthy(120)
        mark('healed')
        # Then every envelope is recorded once and the queues drain
        assert wait_until(lambda: envelope_count(ledger_url) >= N, 120, observer.sleep), (
            f"only {envelope_count(ledger_url)} of {N} recorded\n{consumers.tail()}")
        mark('all recorded')
        assert wait_until(
            lambda: all(q.messages == 0 for q in cluster.queues(prefix=names.intake, via=spare)),
            60, observer.sleep), "the intake did not drain"
        assert consumers.alive(), consumers.tail()
        mark('drained')
    finally:
        codes = consumers.stop()
    assert codes == [0, 0], f"SIGTERM must finish in-flight work and exit 0\n{consumers.tail()}"
    assert envelope_count(ledger_url) == N
    ledger = Ledger.open(ledger_url)
    try:
        result = ledger.verify()
        assert result.ok, result
    finally:
        ledger.close()
    mark('stopped+verified')
    # And the recipient, deduplicating by message id, sees each envelope exactly once
    delivered = drain(spare.url, names.inbox(FINANCE))
    unique = {d.message_id for d in delivered}
    assert len(unique) == N
    assert {d.body for d in delivered} == set(envelopes)
    # And nothing was dead-lettered (a fresh connection: autoheal may have restarted the
    # observer's node while healing the partition, closing the old one)
    observer.close()
    assert observer.depth(names.dlq) == 0
    print(f"\n{fault.name} of {victim.name} (leader of {busiest}, {depths[busiest]} messages):"
          f" {len(delivered) - len(unique)} republished copies dropped by the recipient;"
          f" publisher reopened {first.reopened + second.reopened} channel(s); "
          + ", ".join(marks))
    observer.conn.delete(topology)
    observer.close()


def test_killing_the_busiest_queue_leader_loses_nothing_and_doubles_nothing(
    cluster: Cluster, cluster_pki: PkiPaths, envelopes: list[bytes], ledger_url: str,
    tmp_path: Path, names: str,
) -> None:
    _survive(KILL, cluster, cluster_pki, envelopes, ledger_url, tmp_path, names)


def test_pausing_the_busiest_queue_leader_loses_nothing_and_doubles_nothing(
    cluster: Cluster, cluster_pki: PkiPaths, envelopes: list[bytes], ledger_url: str,
    tmp_path: Path, names: str,
) -> None:
    _survive(PAUSE, cluster, cluster_pki, envelopes, ledger_url, tmp_path, names)


def test_cutting_the_busiest_queue_leader_from_the_network_loses_nothing_and_doubles_nothing(
    cluster: Cluster, cluster_pki: PkiPaths, envelopes: list[bytes], ledger_url: str,
    tmp_path: Path, names: str,
) -> None:
    _survive(CUT, cluster, cluster_pki, envelopes, ledger_url, tmp_path, names)
