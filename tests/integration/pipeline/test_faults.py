"""Nothing lost, nothing doubled: a killed consumer and a restarted broker (issue 5); after
SIGKILL at random points, every copy under one message id is the ledger's (issue 17, item 6)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hub as hub_package
from hub.app import build_hub
from hub.broker import Connection, Delivery, Outgoing, connect
from hub.config import Settings
from hub.directory import Directory
from hub.ledger import EventKind, Ledger
from hub.messages import Headers
from hub.testing import devbroker
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.topology import ENVELOPE_KEY, Topology
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import FINANCE, PROVINCE, hub_settings, running_hub

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N = 1000


@pytest.fixture(scope="module")
def live_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    """A PKI issued now: these tests run ``hub run`` processes on the real clock."""
    return init_pki(tmp_path_factory.mktemp("live-pki"), Directory.sample(), keys=KeyCache())


def _envelopes(pki: PkiPaths, n: int, tag: str) -> list[bytes]:
    ks = Keystore.load(pki.keystore)
    now = dt.datetime.now(dt.UTC)
    from hub.edxml.build import build_envelope, sample_header
    from hub.trust.signing import sign_xml

    signer = ks.signer(PROVINCE)
    assert signer is not None
    return [sign_xml(build_envelope(sample_header(PROVINCE, (FINANCE,), number=f"{tag}{i}",
                                                  promulgation_date=now.date())), signer)
            for i in range(n)]


def _publish(url: str, inbound: str, bodies: list[bytes]) -> None:
    conn = connect(url, "fault test publisher")
    try:
        for start in range(0, len(bodies), 200):
            conn.publish([Outgoing(inbound, ENVELOPE_KEY, b, message_id=f"m{start + i}", user_id="guest")
                          for i, b in enumerate(bodies[start:start + 200])])
    finally:
        conn.close()


def _env(settings: Settings) -> dict[str, str]:
    b, t = settings.broker, settings.trust
    env = dict(os.environ)
    env.update({
        "HUB_BROKER__URL": b.url, "HUB_BROKER__PREFIX": b.prefix,
        "HUB_BROKER__TRUSTED_PUBLISHERS": ",".join(b.trusted_publishers),
        "HUB_BROKER__BATCH_MAX": "64",
        "HUB_TRUST__ROOTS": ",".join(t.roots), "HUB_TRUST__INTERMEDIATES": ",".join(t.intermediates),
        "HUB_TRUST__CRLS": ",".join(t.crls), "HUB_TRUST__FETCH_CRLS": "false",
        "HUB_TRUST__POLICY_OIDS": ",".join(t.policy_oids),
        "HUB_TRUST__REQUIRE_PDF_SIGNATURES": "false",
        "HUB_HUB__KEYSTORE": settings.hub.keystore, "HUB_LEDGER__URL": settings.ledger.url,
        "HUB_LEDGER__BLOB_DIR": settings.ledger.blob_dir, "HUB_LOG__LEVEL": "warning",
        # The ``hub`` under test, wherever the interpreter's own install points.
        "PYTHONPATH": str(Path(hub_package.__file__).resolve().parents[1]),
    })
    return env


@dataclass
class _Victims:
    """``hub run`` processes to kill, on a declared topology, with an observer connection."""

    settings: Settings
    topology: Topology
    conn: Connection
    cmd: list[str]
    env: dict[str, str]
    cwd: Path

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd)

    def survive_until(self, done: Callable[[Ledger], bool], timeout: float) -> Ledger:
        """A last consumer runs until ``done(ledger)`` (or ``timeout``), then stops with
        SIGTERM, which must finish its in-flight work and exit 0; returns the ledger."""
        survivor = self.start()
        ledger = Ledger.open(self.settings.ledger.url)
        try:
            waited = 0.0
            while not done(ledger) and waited < timeout:
                self.conn.sleep(0.1)  # another process writes the ledger: no event reaches us
                waited += 0.1
        finally:
            survivor.send_signal(signal.SIGTERM)
            code = survivor.wait(60)
        assert code == 0, "SIGTERM must finish in-flight work and exit 0"
        return ledger


@contextlib.contextmanager
def _victims(pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
             ) -> Iterator[_Victims]:
    settings = hub_settings(pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    hub = build_hub(settings)
    conn = connect(broker_url, "fault test observer")
    conn.declare(hub.topology)
    hub.close()
    cmd = [sys.executable, "-m", "hub.ops.cli", "run", "--name", f"{names} victim"]
    try:
        yield _Victims(settings, hub.topology, conn, cmd, _env(settings), tmp_path)
    finally:
        conn.delete(hub.topology)
        conn.close()


def _wait_depth(conn: Connection, queue: str, at_least: int, timeout: float) -> int:
    """Wait until ``queue`` holds ``at_least`` messages (the broker gives no event for that)."""
    waited = 0.0
    depth = conn.queue_depth(queue)
    while depth < at_least and waited < timeout:
        conn.sleep(0.05)
        waited += 0.05
        depth = conn.queue_depth(queue)
    return depth


def test_killing_the_consumer_mid_batch_loses_nothing_and_doubles_nothing(
    live_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    with _victims(live_pki, broker_url, names, ledger_url, tmp_path) as v:
        bodies = _envelopes(live_pki, N, "K")
        _publish(broker_url, v.topology.names.inbound, bodies)
        inbox = v.topology.names.inbox(FINANCE)
        # When the consumer is killed (-9) once part of the batch is delivered
        victim = v.start()
        try:
            assert _wait_depth(v.conn, inbox, 150, 60) >= 150
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(30)
        # And a new consumer takes over
        ledger = v.survive_until(
            lambda led: len(led.documents(kind="envelope", limit=N + 10)) >= N, 120)
        assert len(ledger.documents(kind="envelope", limit=N + 10)) == N
        assert ledger.verify().ok
        ledger.close()
        # Then every envelope is in the recipient's queue, and recipients see each exactly once
        delivered = _drain(v.conn, inbox)
        unique = {d.message_id for d in delivered}
        assert len(unique) == N
        assert {d.body for d in delivered} == set(bodies)
        # Any republished copy carries the same message id (recipients drop it); count them
        print(f"\nkill -9: {len(delivered) - len(unique)} republished copies for {N} envelopes")
        assert v.conn.queue_depth(v.topology.names.dlq) == 0


def test_restarting_the_broker_during_a_run_loses_nothing_and_doubles_nothing(
    live_pki: PkiPaths, second_broker: devbroker.RunningBroker, names: str, ledger_url: str, tmp_path: Path
) -> None:
    url = second_broker.url
    settings = hub_settings(live_pki, tmp_path, url, names, ledger_url=ledger_url)
    bodies = _envelopes(live_pki, N, "R")
    with running_hub(settings, clock=lambda: dt.datetime.now(dt.UTC)) as hub:
        _publish(url, hub.names.inbound, bodies)
        stats = hub.consumer.stats
        assert stats.wait_for(lambda st: st.acked >= 100, 60)
        # When RabbitMQ restarts under the running hub (connections dropped, queues kept)
        second_broker.exec("rabbitmqctl", "stop_app")
        second_broker.exec("rabbitmqctl", "start_app")
        # Then the consumer reconnects and finishes
        assert stats.wait_for(lambda st: st.reconnects >= 1, 60)
        assert stats.wait_for(lambda st: hub.hub.ledger.head()[0] > 0 and len(
            hub.hub.ledger.documents(kind="envelope", limit=N + 10)) >= N, 120), (
            f"only {len(hub.hub.ledger.documents(kind='envelope', limit=N + 10))} recorded")
        received = hub.client(FINANCE).documents(timeout=2.0)
        assert {r.body for r in received} == set(bodies)
        assert len(received) == N
        print(f"\nbroker restart: {hub.client(FINANCE).duplicates_dropped} republished copies "
              f"dropped by the recipient for {N} envelopes")


FAULT_ENVELOPES = int(os.environ.get("HUB_FAULT_ENVELOPES", "300"))
"""Envelopes of the SIGKILL test (the issue's acceptance run: 2000, with 10 kills)."""
FAULT_KILLS = int(os.environ.get("HUB_FAULT_KILLS", "3"))
FAULT_SEED = int(os.environ.get("HUB_FAULT_SEED", "17"))


def _drain(conn: Connection, queue: str) -> list[Delivery]:
    out: list[Delivery] = []
    settler = conn.settler()
    while (d := conn.get(queue)) is not None:
        settler.ack([d.tag])
        out.append(d)
    return out


def test_sigkill_at_random_points_leaves_every_copy_under_a_message_id_as_the_ledger_records_it(
    live_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    with _victims(live_pki, broker_url, names, ledger_url, tmp_path) as v:
        _sigkill_at_random_points(live_pki, broker_url, v)


def _sigkill_at_random_points(live_pki: PkiPaths, broker_url: str, v: _Victims) -> None:
    conn, topology = v.conn, v.topology
    # Given envelopes of which every tenth is altered after signing (a signed refusal each);
    # the others are accepted (an "accepted" receipt) and reach a hosted recipient (its "01")
    bodies = _envelopes(live_pki, FAULT_ENVELOPES, "S")
    for i in range(0, len(bodies), 10):
        altered = bodies[i].replace("triển khai".encode(), b"trien khai")
        assert altered != bodies[i]
        bodies[i] = altered
    refused = {hashlib.sha256(bodies[i]).hexdigest() for i in range(0, len(bodies), 10)}
    accepted = [b for i, b in enumerate(bodies) if i % 10]
    _publish(broker_url, topology.names.inbound, bodies)
    inbox = topology.names.inbox(FINANCE)
    # When ``hub run`` is killed with SIGKILL at random points (seeded) while it works
    rng = random.Random(FAULT_SEED)
    points = sorted(rng.sample(range(10, len(accepted) - 10), FAULT_KILLS))
    for point in points:
        started_at = conn.queue_depth(inbox)
        victim = v.start()
        try:
            depth = started_at
            waited = 0.0
            # No event tells another process's progress: poll the recipient's queue depth.
            while (depth < point or depth <= started_at) and waited < 120:
                conn.sleep(0.01)
                waited += 0.01
                depth = conn.queue_depth(inbox)
            assert depth > started_at, "the consumer made no progress before its kill"
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(30)
    # And a last consumer takes over until everything is recorded
    ledger = v.survive_until(lambda led: (
        len(led.documents(kind="envelope")) >= len(accepted)
        and len(led.documents(kind="refused")) >= len(refused)
        and conn.queue_depth(topology.names.intake) == 0), 300)
    try:
        # Then nothing is lost: every envelope is recorded, once, and delivered
        assert len(ledger.documents(kind="envelope")) == len(accepted)
        assert {d.digest for d in ledger.documents(kind="refused")} == refused
        assert ledger.verify().ok
        delivered = _drain(conn, inbox)
        receipts = _drain(conn, topology.names.status(PROVINCE))
        assert {d.body for d in delivered} == set(accepted)
        # And every copy a party received under one message id is one byte string, the one
        # the ledger records under that id (deliveries: the document; receipts: the receipt
        # of the receipt_issued event)
        recorded: dict[str, set[bytes]] = {}
        for event in ledger.events(kind=EventKind.RECEIPT_ISSUED):
            raw = ledger.raw(str(event.detail["receipt_digest"]))
            assert raw is not None
            recorded.setdefault(event.message_id, set()).add(raw)
        copies: dict[str, list[bytes]] = {}
        for d in [*delivered, *receipts]:
            assert d.message_id is not None
            copies.setdefault(d.message_id, []).append(d.body)
        mismatched = []
        for message_id, bodies_seen in copies.items():
            if message_id in recorded:
                expected = recorded[message_id]
            else:
                digest = message_id.split(":", 1)[0]
                raw = ledger.raw(digest)
                expected = {raw} if raw is not None else set()
            if len(expected) != 1 or set(bodies_seen) != expected:
                mismatched.append(message_id)
        kinds = {str(d.headers.get(Headers.RECEIPT)) for d in receipts}
        assert kinds == {"accepted", "received", "rejected"}
        assert set(recorded) == {d.message_id for d in receipts}, "a recorded receipt never left"
        total = sum(len(b) for b in copies.values())
        print(f"\nSIGKILL x{FAULT_KILLS} (seed {FAULT_SEED}) during {FAULT_ENVELOPES} envelopes "
              f"({len(accepted)} accepted, {len(refused)} refused): {total} copies under "
              f"{len(copies)} message ids ({len(delivered)} deliveries, {len(receipts)} "
              f"receipts); {total - len(copies)} duplicate copies; {len(mismatched)} message ids "
              f"whose copies differ from each other or from the ledger")
        assert mismatched == []
        # And the outbox is empty again: every staged receipt was recorded
        staged = ledger.issued(hashlib.sha256(b).hexdigest() for b in bodies)
        assert not [r for rs in staged.values() for r in rs if r.staged]
    finally:
        ledger.close()
