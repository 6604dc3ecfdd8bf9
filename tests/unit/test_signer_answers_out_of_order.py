"""Signature answers collected in another order than they were asked for (review r6).

After a ``receipt_conflict`` the batch in hand is planned again, and its new requests to the
signer are numbered after those of the next batch, already in flight; the consumer collects
them first. The next batch's answers, which came first, must be kept for it, not dropped as
stale (which made it wait the whole ``signer_timeout_s``, then restart the signer). Real signer
thread and signer processes, real keys, the real consumer and SQLite ledger behind the
in-memory broker connection; the conflict is a real one: another consumer, over the same
ledger, records the first packet between the planning and the commit of its first batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hub import app as app_module
from hub.app import Hub, build_hub
from hub.config import Settings, with_overrides
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.ledger.records import DocumentIn, EventIn
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust import signer_pool
from hub.trust.keystore import Keystore
from hub.trust.signer_pool import SignerPool, SignerSpec, SignerUnavailable
from hub.trust.signer_thread import SignerThread
from hub.trust.signing import sign_bytes, signed_info_c14n
from tests.integration.pipeline.harness import (
    FINANCE,
    NOW,
    PROVINCE,
    hub_settings,
    make_pki,
    signed_envelope,
)

PATIENT_S = 60.0
"""The signer timeout in these tests: never reached when the answers are kept (a failure
shows as a restart, not as a slow test passing)."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("answers-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


def _value(keystore: Keystore, digest: bytes) -> bytes:
    signer = keystore.signer(PROVINCE)
    assert signer is not None
    return sign_bytes(signer, signed_info_c14n(digest))


def _pool(pki: PkiPaths, keystore: Keystore) -> SignerPool:
    return SignerPool(SignerSpec(keystore=str(pki.keystore), passphrase_env="HUB_TEST_NONE"),
                      1, expected={org: s.fingerprint for org, s in keystore.items()},
                      timeout_s=PATIENT_S)


def _started(kind: str, pki: PkiPaths, keystore: Keystore) -> SignerThread | SignerPool:
    signer = (SignerThread(keystore, timeout_s=PATIENT_S) if kind == "thread"
              else _pool(pki, keystore))
    signer.start()
    return signer


def _kept(signer: SignerThread | SignerPool) -> int:
    """Answers the signer holds for requests not collected yet (every worker)."""
    if isinstance(signer, SignerThread):
        assert signer._worker is not None
        return len(signer._worker.answers)
    return sum(len(w.answers) for w in signer._workers)


KINDS = pytest.mark.parametrize("kind", ["thread", "process"],
                                ids=["a signer thread", "a signer process"])


# -- the signer on its own ----------------------------------------------------------------------


@KINDS
def test_an_answer_that_arrives_before_it_is_asked_for_is_kept_for_its_ticket(
        kind: str, pki: PkiPaths, keystore: Keystore) -> None:
    signer = _started(kind, pki, keystore)
    try:
        # Given the next batch's request sent, then the batch in hand's new request (a replan)
        following = signer.submit([(PROVINCE, bytes(32))])
        replanned = signer.submit([(PROVINCE, bytes(range(32)))])
        # When the later request is collected first, then the earlier one
        first = signer.collect([replanned])
        second = signer.collect([following])
        # Then each gets its own signature, and nothing is left behind
        assert first == [_value(keystore, bytes(range(32)))]
        assert second == [_value(keystore, bytes(32))]
        assert signer.restarts == 0
        assert _kept(signer) == 0
    finally:
        signer.close()


@KINDS
def test_the_answer_to_a_request_given_up_on_is_dropped_and_its_ticket_refused(
        kind: str, pki: PkiPaths, keystore: Keystore) -> None:
    signer = _started(kind, pki, keystore)
    try:
        # Given a request given up on (its batch dropped with a lost broker connection)
        given_up = signer.submit([(PROVINCE, bytes(32))])
        signer.abandon([given_up])
        # When a later request is collected
        wanted = signer.submit([(PROVINCE, bytes(range(32)))])
        assert signer.collect([wanted]) == [_value(keystore, bytes(range(32)))]
        # Then the answer given up on was not kept, and its ticket is refused at once
        assert _kept(signer) == 0
        with pytest.raises(SignerUnavailable, match="given up on"):
            signer.collect([given_up])
    finally:
        signer.close()


@KINDS
def test_answers_nobody_collects_are_bounded(kind: str, pki: PkiPaths, keystore: Keystore,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kept = 4
    monkeypatch.setattr(signer_pool, "ANSWERS_KEPT", kept)
    signer = _started(kind, pki, keystore)
    try:
        # Given more requests never collected nor given up on than a worker keeps answers for
        # (batches dropped with their connection, one after another, nobody saying so)
        forgotten = [signer.submit([(PROVINCE, bytes(32))]) for _ in range(kept + 3)]
        # When a later request is collected
        wanted = signer.submit([(PROVINCE, bytes(range(32)))])
        assert signer.collect([wanted]) == [_value(keystore, bytes(range(32)))]
        # Then at most ANSWERS_KEPT answers are held: the oldest requests were forgotten (their
        # tickets refused at once), the latest are still answered
        assert _kept(signer) <= kept
        with pytest.raises(SignerUnavailable, match="given up on"):
            signer.collect(forgotten[:1])
        assert signer.collect(forgotten[-1:]) == [_value(keystore, bytes(32))]
        assert signer.restarts == 0
    finally:
        signer.close()


# -- through the consumer -------------------------------------------------------------------------


class _RecordedFirstByAnother:
    """The hub's ledger, where another consumer records ``body`` just before the first write
    of this one: that write then meets a real ReceiptConflict (two consumers took the same
    packet, redelivered after a broker failover)."""

    def __init__(self, hub: Hub, other: Hub, body: bytes) -> None:
        self.hub, self.other, self.body = hub, other, body
        self.done = False

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn], *,
              release: Sequence[str] = ()) -> Any:
        if not self.done:
            self.done = True
            _consume(self.other, [self.body], signing=False)
        return self.hub.ledger.write(documents, events, release=release)

    def release(self, message_ids: Sequence[str]) -> None:
        self.hub.ledger.release(message_ids)


def _consume(hub: Hub, bodies: Sequence[bytes], *, signing: bool,
             ledger: Any = None) -> tuple[FakeConnection, IntakeConsumer]:
    """One consumer (batches of two) over ``bodies`` until all are acked."""
    stop = threading.Event()
    conn = FakeConnection(on_idle=lambda c: stop.set()
                          if len(c.channel.acked_tags()) >= len(bodies) else None)
    for i, body in enumerate(bodies):
        conn.put(body, message_id=f"m{i}", user_id="guest")
    consumer = IntakeConsumer(
        IntakeOptions(url="amqp://fake", queue="intake", batch_max=2), hub.pipeline,
        ledger if ledger is not None else hub.ledger, stop=stop,
        connector=lambda _u, _n: conn, signing=hub.receipt_signing() if signing else None)
    consumer.run()
    return conn, consumer


def _settings(pki: PkiPaths, tmp: Path, processes: int) -> Settings:
    return with_overrides(hub_settings(pki, tmp, "amqp://fake:fake@127.0.0.1:1/", "answers"),
                          hub={"keystore": str(pki.keystore), "signer_processes": processes,
                               "signer_timeout_s": PATIENT_S})


@pytest.mark.parametrize("processes", [0, 1],
                         ids=["a signer thread", "a signer process"])
def test_a_receipt_conflict_replan_does_not_stall_the_next_batch_nor_restart_the_signer(
        processes: int, pki: PkiPaths, keystore: Keystore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "usable_cores", lambda: 2)
    bodies = [signed_envelope(keystore, PROVINCE, (FINANCE,), number=f"7{i:02d}")
              for i in range(4)]
    settings = _settings(pki, tmp_path, processes)
    hub = build_hub(settings, clock=lambda: NOW)
    # Another consumer over the same ledger, a second later (its receipts are other bytes)
    other = build_hub(settings, clock=lambda: NOW.replace(second=NOW.second + 1),
                      ledger=hub.ledger)
    try:
        # Given batch 1 (m0, m1) whose commit meets a receipt conflict on m0 while batch 2
        # (m2, m3) has its signatures asked for already
        ledger = _RecordedFirstByAnother(hub, other, bodies[0])
        with capture_logs() as logs:
            conn, consumer = _consume(hub, bodies, signing=True, ledger=ledger)
        # When batch 1 is planned again (its new requests numbered after batch 2's) and
        # collected first
        events = [e["event"] for e in logs]
        assert ledger.done
        assert "receipt_conflict" in events
        # Then batch 2 gets the answers it was sent: both batches complete, every delivery
        # acked, and the signer was never declared unavailable nor restarted
        assert consumer.signing is not None
        assert isinstance(consumer.signing.pool, SignerThread if processes == 0 else SignerPool)
        assert len(conn.channel.acked_tags()) == len(bodies)
        assert "signer_unavailable" not in events
        assert consumer.stats.signer_restarts == 0
        assert consumer.signing.pool.restarts == 0
        assert hub.ledger.verify().ok
    finally:
        hub.close()

