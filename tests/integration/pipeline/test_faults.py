"""Nothing lost, nothing doubled: a killed consumer and a restarted broker (issue 5)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hub.app import build_hub
from hub.broker import Connection, Outgoing, connect
from hub.config import Settings
from hub.directory import Directory
from hub.ledger import Ledger
from hub.testing import devbroker
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.topology import ENVELOPE_KEY
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
    })
    return env


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
    settings = hub_settings(live_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    hub = build_hub(settings)
    conn = connect(broker_url, "fault test observer")
    conn.declare(hub.topology)
    hub.close()
    bodies = _envelopes(live_pki, N, "K")
    _publish(broker_url, hub.topology.names.inbound, bodies)
    inbox = hub.topology.names.inbox(FINANCE)
    cmd = [sys.executable, "-m", "hub.ops.cli", "run", "--name", f"{names} victim"]
    env = _env(settings)
    # When the consumer is killed (-9) once part of the batch is delivered
    victim = subprocess.Popen(cmd, env=env, cwd=tmp_path)
    try:
        assert _wait_depth(conn, inbox, 150, 60) >= 150
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    # And a new consumer takes over
    survivor = subprocess.Popen(cmd, env=env, cwd=tmp_path)
    ledger = Ledger.open(settings.ledger.url)
    try:
        waited = 0.0
        while len(ledger.documents(kind="envelope", limit=N + 10)) < N and waited < 120:
            conn.sleep(0.1)  # another process writes the ledger: no event reaches this one
            waited += 0.1
    finally:
        survivor.send_signal(signal.SIGTERM)
        code = survivor.wait(60)
    assert code == 0, "SIGTERM must finish in-flight work and exit 0"
    assert len(ledger.documents(kind="envelope", limit=N + 10)) == N
    assert ledger.verify().ok
    ledger.close()
    # Then every envelope is in the recipient's queue, and recipients see each exactly once
    delivered = []
    settler = conn.settler()
    while (d := conn.get(inbox)) is not None:
        settler.ack([d.tag])
        delivered.append(d)
    unique = {d.message_id for d in delivered}
    assert len(unique) == N
    assert {d.body for d in delivered} == set(bodies)
    # Any republished copy carries the same message id (recipients drop it); report the count
    print(f"\nkill -9: {len(delivered) - len(unique)} republished copies for {N} envelopes")
    assert conn.queue_depth(hub.topology.names.dlq) == 0
    conn.delete(hub.topology)
    conn.close()


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
