"""Receipts signed by signer processes (issue 23): the same bytes, and nothing lost when one dies.

The real consumer, pipeline, receipt issuer, SQLite ledger and signer processes (spawned, with
the test PKI's keys loaded from the keystore directory) run behind the in-memory broker
connection; every test compares with the consumer signing in its own thread. Crashes are real:
the signer process is sent SIGKILL (or SIGSTOP, for one that hangs).
"""

from __future__ import annotations

import base64
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hub import app as app_module
from hub.app import Hub, build_hub
from hub.config import Settings, with_overrides
from hub.consumers import signing as signing_module
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.consumers.signing import SIGN_CHUNK
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_status, response_for
from hub.errors import ConfigurationError, TransientError
from hub.messages import Headers, Outgoing
from hub.reasons import Reason
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust import signer_thread as signer_thread_module
from hub.trust.keystore import Keystore
from hub.trust.signer_pool import SignerPool, SignerSpec, SignerUnavailable
from hub.trust.signer_thread import SignerThread
from hub.trust.signing import sign_bytes as real_sign
from hub.trust.signing import sign_xml, signed_info_c14n
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    hub_settings,
    make_pki,
    signed_envelope,
)

BATCH = 4


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("signer-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


def _settings(pki: PkiPaths, tmp: Path, processes: int, **hub: Any) -> Settings:
    return with_overrides(hub_settings(pki, tmp, "amqp://fake:fake@127.0.0.1:1/", "signer"),
                          hub={"keystore": str(pki.keystore), "signer_processes": processes,
                               **hub})


@pytest.fixture(scope="module")
def workload(pki: PkiPaths, keystore: Keystore, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[bytes, list[tuple[bytes, str]]]:
    """An envelope recorded first, then several batches of: accepted envelopes (the operator's
    "accepted", the hosted recipients' "01"), a broken signature and an unparseable packet
    (signed refusals) and a recipient's status about the first envelope (countersigned)."""
    earlier = signed_envelope(keystore, PROVINCE, (FINANCE,), number="900")
    finance = keystore.signer(FINANCE)
    assert finance is not None
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(earlier)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ"), finance)
    fresh = [signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS), number=f"9{i:02d}")
             for i in range(1, 12)]
    tampered = fresh[0].replace("Về việc".encode(), "Về viec".encode())
    bodies = [*((b, "guest") for b in fresh[:5]), (tampered, "guest"), (status, "guest"),
              (b"<not-edxml/>", HOME_AFFAIRS), *((b, "guest") for b in fresh[5:])]
    return earlier, bodies


def _consumer(hub: Hub, conn: FakeConnection, stop: threading.Event, *, signing: bool
              ) -> IntakeConsumer:
    return IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake", batch_max=BATCH),
                          hub.pipeline, hub.ledger, stop=stop, connector=lambda _u, _n: conn,
                          signing=hub.receipt_signing() if signing else None)


def _run(hub: Hub, bodies: Sequence[tuple[bytes, str]], *, signing: bool,
         meddle: Callable[[IntakeConsumer], None] | None = None
         ) -> tuple[FakeConnection, IntakeConsumer]:
    """One consumer over ``bodies`` until every delivery is acked (or it stops)."""
    stop = threading.Event()
    conn = FakeConnection(on_idle=lambda c: stop.set()
                          if len(c.channel.acked_tags()) >= len(bodies) else None)
    for i, (body, user) in enumerate(bodies):
        conn.put(body, message_id=f"m{i}", user_id=user)
    consumer = _consumer(hub, conn, stop, signing=signing)
    if meddle is not None:
        meddle(consumer)
    consumer.run()
    return conn, consumer


def _outcome(hub: Hub, workload: tuple[bytes, list[tuple[bytes, str]]], *, signing: bool,
             meddle: Callable[[IntakeConsumer], None] | None = None
             ) -> tuple[dict[str, Outgoing], list[tuple[str, str, bytes]], IntakeConsumer]:
    """What the hub published (by message id: each exactly once) and recorded."""
    earlier, bodies = workload
    _run(hub, [(earlier, "guest")], signing=False)
    conn, consumer = _run(hub, bodies, signing=signing, meddle=meddle)
    assert len(conn.channel.acked_tags()) == len(bodies)
    published: dict[str, Outgoing] = {}
    for o in conn.published:
        assert o.message_id is not None
        assert o.message_id not in published, f"published twice: {o.message_id}"
        published[o.message_id] = o
    recorded = [(d.kind, d.digest, hub.ledger.raw(d.digest) or b"")
                for d in hub.ledger.documents()]
    assert hub.ledger.verify().ok
    return published, recorded, consumer


@pytest.fixture(scope="module")
def reference(pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]],
              tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]]:
    """The workload through a consumer that signs in its own thread (signer_processes = 0)."""
    hub = build_hub(_settings(pki, tmp_path_factory.mktemp("reference"), 0), clock=lambda: NOW)
    try:
        published, recorded, _ = _outcome(hub, workload, signing=False)
    finally:
        hub.close()
    kinds = {str(o.headers[Headers.RECEIPT]) for o in published.values()
             if Headers.RECEIPT in o.headers}
    assert kinds == {"accepted", "received", "rejected", "countersigned"}
    return published, recorded


def _same_as_reference(published: dict[str, Outgoing], recorded: list[tuple[str, str, bytes]],
                       reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]]
                       ) -> None:
    expected_published, expected_recorded = reference
    assert sorted(published) == sorted(expected_published)
    for message_id, o in expected_published.items():
        assert published[message_id] == o, message_id
    assert recorded == expected_recorded


@pytest.mark.parametrize(("processes", "chunk"),
                         [(1, SIGN_CHUNK), (2, SIGN_CHUNK), (2, 3), (0, SIGN_CHUNK)],
                         ids=["one signer process", "two signer processes",
                              "two signer processes, three receipts a request",
                              "a signer thread (one process, two cores)"])
def test_receipts_signed_by_signer_processes_are_the_bytes_the_consumer_signs_itself(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]],
        processes: int, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a hub whose receipts are signed by signer processes (the keys loaded there), sent
    # to them round robin in requests of `chunk` receipts — or, in one process on a host with
    # a second core, by a thread of it with the keys the consumer loaded
    monkeypatch.setattr(signing_module, "SIGN_CHUNK", chunk)
    monkeypatch.setattr(app_module, "usable_cores", lambda: 2)
    hub = build_hub(_settings(pki, tmp_path, processes), clock=lambda: NOW)
    try:
        # When the workload goes through it
        published, recorded, consumer = _outcome(hub, workload, signing=True)
        # Then every message, receipt and ledger document is the one signed in the consumer
        assert consumer.signing is not None
        assert isinstance(consumer.signing.pool, SignerThread if processes == 0 else SignerPool)
        _same_as_reference(published, recorded, reference)
        assert consumer.stats.signer_restarts == 0
        assert consumer.stats.stages["sign_wait"].n >= len(workload[1]) // BATCH
    finally:
        hub.close()


def _through_a_signer_thread(pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]],
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                             ) -> tuple[dict[str, Outgoing], list[tuple[str, str, bytes]],
                                        IntakeConsumer]:
    """:func:`_outcome` of a hub in single-process mode on two cores: receipts signed by its
    signer thread (what each test has patched in it)."""
    monkeypatch.setattr(app_module, "usable_cores", lambda: 2)
    hub = build_hub(_settings(pki, tmp_path, 0), clock=lambda: NOW)
    try:
        return _outcome(hub, workload, signing=True)
    finally:
        hub.close()


def test_a_signer_thread_that_fails_a_request_is_restarted_and_the_batch_signed_again(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given signer threads whose first signature fails, in the first two threads started (a
    # token that cannot sign, then an unexpected error in the crypto library)
    failures = [TransientError(Reason.INTERNAL_ERROR, "token busy"), RuntimeError("boom")]
    threads_seen: set[str] = set()

    def failing_sign(signer: Any, data: bytes) -> bytes:
        name = threading.current_thread().name
        if name not in threads_seen:
            threads_seen.add(name)
            if failures:
                raise failures.pop(0)
        return real_sign(signer, data)

    monkeypatch.setattr(signer_thread_module, "sign_bytes", failing_sign)
    # When the workload goes through it
    published, recorded, consumer = _through_a_signer_thread(pki, workload, tmp_path,
                                                             monkeypatch)
    # Then the batch was held, the thread restarted twice, the batch signed again:
    # nothing published twice, nothing lost, every byte the reference's
    assert failures == []
    assert len(threads_seen) == 3
    assert consumer.stats.signer_restarts == 2
    _same_as_reference(published, recorded, reference)


def _one_bit_flipped(value: bytes) -> bytes:
    """A signature damaged as a fault would damage it."""
    return bytes([value[0] ^ 1]) + value[1:]


def _nowhere_in(published: dict[str, Outgoing], value: bytes) -> bool:
    """``value`` left the hub in no published message, raw nor base64 (as receipts carry it)."""
    return not any(value in o.body or base64.b64encode(value) in o.body
                   for o in published.values())


def test_a_signature_that_does_not_verify_holds_the_batch_and_it_is_signed_again(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given signer threads of which the first cannot sign (a token busy: it is restarted) and
    # the second's first signature comes back damaged (one bit flipped: a fault, a key that
    # is not the certificate's) — nothing in the request path fails for it
    damaged: list[bytes] = []
    threads_seen: list[str] = []

    def flipping_sign(signer: Any, data: bytes) -> bytes:
        name = threading.current_thread().name
        if name not in threads_seen:
            threads_seen.append(name)
            if len(threads_seen) == 1:
                raise TransientError(Reason.INTERNAL_ERROR, "token busy")
        value = real_sign(signer, data)
        if not damaged and len(threads_seen) > 1 and name == threads_seen[1]:
            damaged.append(_one_bit_flipped(value))
            return damaged[0]
        return value

    monkeypatch.setattr(signer_thread_module, "sign_bytes", flipping_sign)
    # When the workload goes through it
    published, recorded, consumer = _through_a_signer_thread(pki, workload, tmp_path,
                                                             monkeypatch)
    # Then the damaged signature (made by the restarted thread) never left the hub nor
    # reached the ledger: the batch was held, the signer restarted again and the batch
    # signed again, every byte the reference's
    assert damaged
    assert len(threads_seen) == 3
    assert consumer.stats.signer_restarts == 2
    assert _nowhere_in(published, damaged[0])
    _same_as_reference(published, recorded, reference)


def test_a_signature_the_consumer_checks_itself_and_that_does_not_verify_holds_the_batch(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a signer that leaves the check to the consumer, as a signer process does (a signer
    # thread declining check_with), whose first signature comes back damaged (one bit flipped)
    damaged: list[bytes] = []

    def flipping_sign(signer: Any, data: bytes) -> bytes:
        value = real_sign(signer, data)
        if not damaged:
            damaged.append(_one_bit_flipped(value))
            return damaged[0]
        return value

    monkeypatch.setattr(SignerThread, "check_with", lambda self, keys: False)
    monkeypatch.setattr(signer_thread_module, "sign_bytes", flipping_sign)
    # When the workload goes through it
    published, recorded, consumer = _through_a_signer_thread(pki, workload, tmp_path,
                                                             monkeypatch)
    # Then the consumer's own check refused it: the batch was held, the signer restarted and
    # the batch signed again; the damaged value never left the hub nor reached the ledger
    assert damaged
    assert consumer.stats.signer_restarts == 1
    assert _nowhere_in(published, damaged[0])
    _same_as_reference(published, recorded, reference)


def test_an_answer_matched_to_another_receipt_than_it_was_made_for_holds_the_batch(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a signer thread whose first answers come back out of order (each signature valid,
    # verified in the thread, but for another receipt than the one it would complete)
    real_collect = SignerThread.collect_checked
    swapped: list[int] = []

    def swapping_collect(self: SignerThread, tickets: Any, idle: Any = None) -> Any:
        answers = real_collect(self, tickets, idle)
        if not swapped and len(answers) >= 2:
            swapped.append(1)
            answers[0], answers[1] = answers[1], answers[0]
        return answers

    monkeypatch.setattr(SignerThread, "collect_checked", swapping_collect)
    # When the workload goes through it
    published, recorded, consumer = _through_a_signer_thread(pki, workload, tmp_path,
                                                             monkeypatch)
    # Then the consumer refused the answers (no receipt completed with another one's
    # signature), restarted the signer and signed the batch again: the reference's bytes
    assert swapped
    assert consumer.stats.signer_restarts == 1
    _same_as_reference(published, recorded, reference)


def test_a_signer_thread_given_the_certificate_keys_refuses_a_signature_they_do_not_verify(
        keystore: Keystore) -> None:
    # Given a signer thread told to check the province's signatures with another body's key
    other = keystore.signer(FINANCE)
    assert other is not None
    key = other.cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    thread = SignerThread(keystore, timeout_s=10)
    assert thread.check_with({PROVINCE: key})
    thread.start()
    try:
        # When it signs for the province
        ticket = thread.submit([(PROVINCE, bytes(32))])
        # Then the signature is not answered but refused
        with pytest.raises(SignerUnavailable, match=f"signature for {PROVINCE} does not verify"):
            thread.collect([ticket])
        # And check_with cannot be changed under a running thread
        with pytest.raises(RuntimeError):
            thread.check_with({})
    finally:
        thread.close()


def test_a_signer_thread_that_does_not_answer_in_time_is_given_up_and_replaced(
        keystore: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a signer thread stuck in its first signature (a token that hangs)
    release = threading.Event()

    def hanging_sign(signer: Any, data: bytes) -> bytes:
        release.wait(30)
        return real_sign(signer, data)

    monkeypatch.setattr(signer_thread_module, "sign_bytes", hanging_sign)
    thread = SignerThread(keystore, timeout_s=0.3)
    thread.start()
    idles: list[int] = []
    try:
        ticket = thread.submit([(PROVINCE, bytes(32))])
        # When its answer is waited for longer than the timeout
        with pytest.raises(SignerUnavailable, match=r"within 0\.3 s"):
            thread.collect([ticket], idle=lambda: idles.append(1))
        # Then the wait ended (the broker kept pumped meanwhile), the thread is replaced, the
        # old ticket is refused rather than answered late, and the new thread signs
        assert idles
        thread.restart()
        thread.timeout_s = 30.0  # the replacement's real signature: no race with a busy machine
        release.set()
        with pytest.raises(SignerUnavailable, match="restarted since"):
            thread.collect([ticket])
        fresh = thread.submit([(PROVINCE, bytes(32))])
        signer = keystore.signer(PROVINCE)
        assert signer is not None
        assert thread.collect([fresh]) == [real_sign(signer, signed_info_c14n(bytes(32)))]
    finally:
        release.set()
        thread.close()


def test_answers_for_a_batch_given_up_on_do_not_pile_up_in_the_signer_thread(
        keystore: Keystore) -> None:
    # Given a signer thread asked for a request nobody will collect (its batch was given up
    # on: a lost broker connection), then one that is collected
    thread = SignerThread(keystore, timeout_s=10)
    thread.start()
    try:
        given_up = thread.submit([(PROVINCE, bytes(32))])
        thread.abandon([given_up])
        wanted = thread.submit([(PROVINCE, bytes(range(32)))])
        assert len(thread.collect([wanted])) == 1
        # Then the uncollected answer was dropped (an answer merely collected later is kept:
        # tests/unit/test_signer_answers_out_of_order.py)
        assert thread._worker is not None
        assert len(thread._worker.answers) == 0
    finally:
        thread.close()


def test_a_request_for_a_key_the_signer_thread_does_not_hold_is_an_error_not_a_hang(
        keystore: Keystore) -> None:
    thread = SignerThread(keystore, timeout_s=10)
    with pytest.raises(SignerUnavailable, match="not running"):
        thread.submit([(PROVINCE, bytes(32))])
    thread.start()
    try:
        ticket = thread.submit([("000.00.99.H27", bytes(32))])
        with pytest.raises(SignerUnavailable, match=r"no key for 000\.00\.99\.H27"):
            thread.collect([ticket])
    finally:
        thread.close()


def _stop_then(act: Callable[[int], None], times: int = 1
               ) -> Callable[[IntakeConsumer], None]:
    """Make the consumer's signer process stop dead (SIGSTOP) when the first ``times`` requests
    are sent to it (a batch of the workload is one request), then ``act`` on its pid: the
    request can never have been answered."""

    def meddle(consumer: IntakeConsumer) -> None:
        assert consumer.signing is not None
        pool = consumer.signing.pool
        assert isinstance(pool, SignerPool)
        submit = pool.submit
        done: list[int] = []

        def submit_and_act(requests: Sequence[tuple[str, bytes]]) -> Any:
            if len(done) >= times:
                return submit(requests)
            pid = pool.pids[0]
            os.kill(pid, signal.SIGSTOP)
            ticket = submit(requests)
            done.append(pid)
            act(pid)
            return ticket

        pool.submit = submit_and_act  # type: ignore[method-assign]

    return meddle


def test_a_signer_process_killed_mid_batch_is_restarted_and_the_batch_signed_again(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]]) -> None:
    hub = build_hub(_settings(pki, tmp_path, 1), clock=lambda: NOW)
    killed: list[int] = []

    def kill(pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    try:
        # Given a signer process killed (SIGKILL) holding the first batch's request, and the
        # process started in its place killed too when the batch is sent again
        published, recorded, consumer = _outcome(hub, workload, signing=True,
                                                 meddle=_stop_then(kill, times=2))
        # Then the batch was held, the signer restarted, the batch signed again: nothing of it
        # published twice, nothing lost, every byte the reference's
        assert len(killed) == 2
        assert consumer.stats.signer_restarts == 2
        _same_as_reference(published, recorded, reference)
    finally:
        hub.close()


def test_a_signer_process_that_does_not_answer_in_time_is_replaced(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]]) -> None:
    hub = build_hub(_settings(pki, tmp_path, 1, signer_timeout_s=0.5), clock=lambda: NOW)
    try:
        # Given a signer process that hangs (SIGSTOP) with a batch in hand
        published, recorded, consumer = _outcome(hub, workload, signing=True,
                                                 meddle=_stop_then(lambda _pid: None))
        # Then after signer_timeout_s it is killed and replaced, and the batch signed again
        assert consumer.stats.signer_restarts == 1
        _same_as_reference(published, recorded, reference)
    finally:
        hub.close()


def test_a_signer_process_that_died_while_idle_is_replaced_when_the_next_batch_needs_it(
        pki: PkiPaths, workload: tuple[bytes, list[tuple[bytes, str]]], tmp_path: Path,
        reference: tuple[dict[str, Outgoing], list[tuple[str, str, bytes]]]) -> None:
    hub = build_hub(_settings(pki, tmp_path, 1), clock=lambda: NOW)

    def kill_before_the_first_batch(consumer: IntakeConsumer) -> None:
        assert consumer.signing is not None
        signing = consumer.signing
        start = signing.start

        def start_then_kill() -> None:
            start()
            assert isinstance(signing.pool, SignerPool)
            pid = signing.pool.pids[0]
            os.kill(pid, signal.SIGKILL)

        signing.start = start_then_kill  # type: ignore[method-assign]

    try:
        published, recorded, consumer = _outcome(hub, workload, signing=True,
                                                 meddle=kill_before_the_first_batch)
        assert consumer.stats.signer_restarts == 1
        _same_as_reference(published, recorded, reference)
    finally:
        hub.close()


def test_while_the_signer_cannot_start_the_batch_is_held_and_a_stop_leaves_it_unacked(
        pki: PkiPaths, keystore: Keystore, tmp_path: Path) -> None:
    # Given a hub whose signer process reads a copy of the keystore
    copy = tmp_path / "keystore"
    copy.mkdir()
    for f in pki.keystore.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    hub = build_hub(with_overrides(_settings(pki, tmp_path, 1), hub={"keystore": str(copy)}),
                    clock=lambda: NOW)
    stop = threading.Event()
    conn = FakeConnection()
    body = signed_envelope(keystore, PROVINCE, (FINANCE,), number="990")
    conn.put(body, message_id="m0", user_id="guest")
    consumer = _consumer(hub, conn, stop, signing=True)
    assert consumer.signing is not None
    pool = consumer.signing.pool
    assert isinstance(pool, SignerPool)
    submit = pool.submit

    def break_everything(requests: Sequence[tuple[str, bytes]]) -> Any:
        # When the signer dies with the batch in hand and its keys are gone (a restart fails)
        pid = pool.pids[0]
        os.kill(pid, signal.SIGSTOP)
        ticket = submit(requests)
        for f in copy.iterdir():
            f.unlink()
        os.kill(pid, signal.SIGKILL)
        return ticket

    pool.submit = break_everything  # type: ignore[method-assign]
    thread = threading.Thread(target=consumer.run)
    try:
        thread.start()
        # Then the consumer holds the batch (restarting with backoff) instead of dropping it
        assert consumer.stats.wait_for(lambda s: s.signer_restarts >= 1, 60)
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
        # And on stop it leaves without acking, recording or publishing a receipt: what left is
        # the packet as received (its redelivery sends the same bytes under the same id)
        assert not conn.channel.acked_tags()
        assert not [o for o in conn.published if Headers.RECEIPT in o.headers]
        assert {o.body for o in conn.published} <= {body}
        assert hub.ledger.documents(kind="envelope") == []
    finally:
        stop.set()
        thread.join(60)
        hub.close()


def test_on_one_core_or_with_no_key_the_consumer_signs_receipts_itself(
        pki: PkiPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "usable_cores", lambda: 1)
    for settings in (_settings(pki, tmp_path, 0),
                     with_overrides(_settings(pki, tmp_path, 2), hub={"keystore": ""})):
        hub = build_hub(settings, clock=lambda: NOW)
        try:
            assert hub.receipt_signing() is None
            assert hub.consumer().signing is None
        finally:
            hub.close()
    # With no signer process but a second core, a thread of the consumer's process signs
    monkeypatch.setattr(app_module, "usable_cores", lambda: 2)
    hub = build_hub(_settings(pki, tmp_path, 0), clock=lambda: NOW)
    try:
        signing = hub.receipt_signing()
        assert signing is not None
        assert isinstance(signing.pool, SignerThread)
    finally:
        hub.close()
    hub = build_hub(_settings(pki, tmp_path, 2), clock=lambda: NOW)
    try:
        signing = hub.receipt_signing()
        assert signing is not None
        assert isinstance(signing.pool, SignerPool)
        assert signing.pool.processes == 2
        assert signing.pool.pids == []  # started by the consumer when it runs, not before
    finally:
        hub.close()


# -- the pool on its own ---------------------------------------------------------------------------


def _spec(pki: PkiPaths) -> SignerSpec:
    return SignerSpec(keystore=str(pki.keystore), passphrase_env="HUB_TEST_NO_PASSPHRASE")


def test_a_signer_process_holding_other_keys_than_the_consumer_is_refused_at_start(
        pki: PkiPaths, keystore: Keystore) -> None:
    expected = {org: s.fingerprint for org, s in keystore.items()}
    expected[PROVINCE] = "0" * 64  # the consumer's certificate for it is another one
    pool = SignerPool(_spec(pki), 1, expected=expected, timeout_s=10)
    with pytest.raises(ConfigurationError, match="not the consumer's"):
        pool.start()
    assert pool.pids == []


def test_a_keystore_the_signer_process_cannot_load_is_one_configuration_line(
        tmp_path: Path) -> None:
    (tmp_path / "000.00.01.H27.key.pem").write_text("not a key")
    (tmp_path / "000.00.01.H27.pem").write_text("not a certificate")
    pool = SignerPool(SignerSpec(keystore=str(tmp_path), passphrase_env="X"), 1,
                      expected={}, timeout_s=10)
    with pytest.raises(ConfigurationError, match=r"signer process: .*000\.00\.01\.H27"):
        pool.start()


def test_a_request_for_a_key_the_signer_does_not_hold_is_an_error_not_a_hang(
        pki: PkiPaths, keystore: Keystore) -> None:
    pool = SignerPool(_spec(pki), 1, timeout_s=10,
                      expected={org: s.fingerprint for org, s in keystore.items()})
    pool.start()
    try:
        ticket = pool.submit([("000.00.99.H27", bytes(32))])
        with pytest.raises(SignerUnavailable, match=r"no key for 000\.00\.99\.H27"):
            pool.collect([ticket])
    finally:
        pool.close()


def test_filling_signatures_copies_each_record_as_dataclasses_replace_would() -> None:
    """fill() copies the plan's frozen records field by field, without calling ``__init__``
    again: equal to ``dataclasses.replace`` for every record kind it touches, the original left
    as it was — and none of those kinds may grow a ``__post_init__`` the copy would skip."""
    import dataclasses
    from datetime import UTC, datetime

    from hub.ledger import DocumentIn, EventIn, EventKind, IssuedReceipt

    at = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    records: list[tuple[Any, dict[str, Any]]] = [
        (Outgoing("hub.deliver", "inbox.x", b"placeholder", {"k": "v"}, message_id="m1"),
         {"body": b"<signed/>"}),
        (IssuedReceipt("d:accepted:o", "d", "accepted", "o", None, b"placeholder", at,
                       recipient="s"), {"body": b"<signed/>"}),
        (DocumentIn(sender="o", document_id="receipt:accepted:" + "a" * 32, digest="a" * 64,
                    kind="receipt", raw=b"placeholder", received_at=at, recipients=("s",),
                    links_to="d", code="accepted"),
         {"raw": b"<signed/>", "digest": "b" * 64, "document_id": "receipt:accepted:" + "b" * 32}),
        (EventIn(EventKind.RECEIPT_ISSUED, "m1", at, digest="d", organ_id="o",
                 detail={"kind": "accepted", "receipt_digest": "a" * 64, "to": "s"}),
         {"detail": {"kind": "accepted", "receipt_digest": "b" * 64, "to": "s"}}),
    ]
    for record, changes in records:
        assert not hasattr(type(record), "__post_init__"), type(record).__name__
        before = dataclasses.replace(record)
        copied = signing_module._replaced(record, **changes)
        assert copied == dataclasses.replace(record, **changes)
        assert type(copied) is type(record)
        assert record == before  # the original untouched
