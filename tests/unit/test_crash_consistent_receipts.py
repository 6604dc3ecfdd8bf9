"""After a crash at any point of a batch, every copy under one message id is the ledger's (issue 17,
item 6).

The real consumer, pipeline, receipt issuer and SQLite ledger run in process behind the in-memory
broker connection. A first consumer is "killed" (an exception no code of ours catches stands in
for SIGKILL) at each point of a batch's execution: before anything is published, after phase 1
is published and confirmed, after the ledger commit (before the receipts are published), after
the receipts (before the ack). A second consumer, built
anew with a clock one hour later (signing again would then give other bytes), takes the
redelivered batch. Whatever either of them published — deliveries, forwarded statuses, the
accepted / received / rejected / countersigned receipts — must be, for each message id, one byte
string, and the one the ledger records under that id. The real-broker version, with ``hub run``
processes killed by SIGKILL, is ``tests/integration/pipeline/test_faults.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from hub.app import Hub, build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.consumers.plan import BatchPlan
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_status, response_for
from hub.ledger import DocumentIn, EventIn, EventKind, ReceiptConflict
from hub.messages import Delivery, Headers, Outgoing
from hub.reasons import Reason
from hub.receipts.content import read_evidence
from hub.testing.fakebroker import FakeConnection, RecordingChannel
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    hub_settings,
    make_pki,
    signed_envelope,
)
from tests.pg import fresh_schema

LATER = NOW + dt.timedelta(hours=1)
POINTS = ("before phase 1", "after phase 1", "after the commit", "after the receipts")


class Killed(BaseException):
    """Stands in for SIGKILL: raised where the process dies, caught by no code of the hub."""


class _KillingChannel(RecordingChannel):
    def __init__(self, kill: bool) -> None:
        super().__init__()
        self.kill = kill

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        if self.kill:
            raise Killed("after the receipts")
        super().basic_ack(delivery_tag, multiple)


class _Broker(FakeConnection):
    """The fake connection, killed at ``point`` (or never), handing over ``redelivered``
    deliveries as RabbitMQ does after a consumer died with them unacknowledged."""

    def __init__(self, point: str | None, *, redelivered: bool, stop: threading.Event,
                 expected: int) -> None:
        super().__init__(on_idle=self._stop_when_done)
        self.point = point
        self.redelivered = redelivered
        self.channel = _KillingChannel(point == "after the receipts")
        self._stop, self._expected, self._sends = stop, expected, 0

    def _stop_when_done(self, conn: FakeConnection) -> None:
        if len(self.channel.acked_tags()) >= self._expected:
            self._stop.set()

    def pump(self, time_limit: float) -> None:
        with self._lock:
            waiting, self.inbox = self.inbox, []
        if self._consumer is not None:
            for body, headers, message_id, user_id in waiting:
                self._tag += 1
                self._consumer(Delivery(self._tag, body, "edxml.envelope", "edxml.inbound",
                                        self.redelivered, headers, message_id, user_id, None, 0))
        if not waiting and self.on_idle is not None:
            self.on_idle(self)

    def send(self, messages: Iterable[Outgoing]) -> range:
        self._sends += 1
        if self.point == "before phase 1" and self._sends == 1:
            raise Killed(self.point)
        if self.point == "after the commit" and self._sends == 2:
            raise Killed(self.point)
        return super().send(messages)


class _KillingLedger:
    """The hub's ledger, killed when the batch's commit would start (``after phase 1``)."""

    def __init__(self, hub: Hub, kill: bool) -> None:
        self.ledger, self.kill = hub.ledger, kill

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn], *,
              release: Sequence[str] = ()) -> None:
        if self.kill:
            raise Killed("after phase 1")
        self.ledger.write(documents, events, release=release)

    def release(self, message_ids: Sequence[str]) -> None:
        self.ledger.release(message_ids)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("crash-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


def _run(hub: Hub, bodies: list[tuple[bytes, str]], point: str | None, *, redelivered: bool,
         signer: bool = False) -> list[Outgoing]:
    """One consumer over ``bodies`` (one batch, each published by its broker account); what it
    published before it died or finished. ``signer``: its receipts signed by a signer process."""
    stop = threading.Event()
    conn = _Broker(point, redelivered=redelivered, stop=stop, expected=len(bodies))
    for i, (body, user) in enumerate(bodies):
        conn.put(body, message_id=f"m{i}", user_id=user)
    consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                              _KillingLedger(hub, point == "after phase 1"), stop=stop,
                              connector=lambda _u, _n: conn,
                              signing=hub.receipt_signing() if signer else None)
    if point is None:
        consumer.run()
        assert len(conn.channel.acked_tags()) == len(bodies)
    else:
        with pytest.raises(Killed):
            consumer.run()
        assert not conn.channel.acked_tags()
    return conn.published


def _workload(keystore: Keystore, hub: Hub) -> list[tuple[bytes, str]]:
    """Accepted envelopes (an "accepted" receipt, a hosted recipient's "01"), refused packets
    (signed refusals: a broken signature, an unparseable packet) and a recipient's status
    about a document recorded earlier (forwarded, countersigned)."""
    earlier = signed_envelope(keystore, PROVINCE, (FINANCE,), number="800")
    _run(hub, [(earlier, "guest")], None, redelivered=False)
    finance = keystore.signer(FINANCE)
    assert finance is not None
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(earlier)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ"), finance)
    fresh = [signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS), number=f"80{i}")
             for i in range(1, 4)]
    tampered = fresh[0].replace("Về việc".encode(), "Về viec".encode())
    assert tampered != fresh[0]
    # guest: a trusted login (From is not bound to it); the unparseable packet comes from an
    # agency's own account, which is told about the bytes.
    return [*((b, "guest") for b in (*fresh, tampered, status)), (b"<not-edxml/>", HOME_AFFAIRS)]


def _ledger_copy(hub: Hub) -> dict[str, bytes]:
    """What the ledger records under each outgoing message id: receipts by their
    ``receipt_issued`` event, deliveries by the document they carry."""
    recorded: dict[str, bytes] = {}
    for event in hub.ledger.events(kind=EventKind.RECEIPT_ISSUED):
        raw = hub.ledger.raw(str(event.detail["receipt_digest"]))
        assert raw is not None
        # A copy published again is recorded again, and it is the same receipt
        assert recorded.setdefault(event.message_id, raw) == raw, event.message_id
    return recorded


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ledger on both databases: what the pipeline reads back after a crash (the outbox,
    the recorded receipts) is read through the driver, whose bindings differ."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with fresh_schema("hub_crash") as url:
        yield url


@pytest.mark.parametrize("signer", [False, True],
                         ids=["signed in the consumer", "signed by a signer process"])
@pytest.mark.parametrize("point", POINTS)
def test_after_a_crash_every_copy_under_one_message_id_is_the_one_the_ledger_records(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path, point: str, signer: bool, ledger_url: str
) -> None:
    settings = hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "crash",
                            ledger_url=ledger_url)
    first = build_hub(settings, clock=lambda: NOW)
    try:
        bodies = _workload(keystore, first)
        before = len(first.ledger.events(kind=EventKind.RECEIPT_ISSUED))
        # Given a consumer killed at this point of the batch
        dead = _run(first, bodies, point, redelivered=False, signer=signer)
    finally:
        first.close()
    # When a new consumer, an hour later, takes the redelivered batch
    second = build_hub(settings, clock=lambda: LATER)
    try:
        survived = _run(second, bodies, None, redelivered=True, signer=signer)
        copies: dict[str, set[bytes]] = {}
        for o in [*dead, *survived]:
            if o.exchange == second.topology.names.deliver:
                assert o.message_id is not None
                copies.setdefault(o.message_id, set()).add(o.body)
        # Then each message id carries one byte string, wherever a party got it from
        doubled = {m: len(b) for m, b in copies.items() if len(b) > 1}
        assert not doubled, f"{len(doubled)} message ids with several byte strings ({point})"
        # And every receipt is the one the ledger records under its message id
        recorded = _ledger_copy(second)
        receipts = {o.message_id: o.body for o in [*dead, *survived]
                    if Headers.RECEIPT in o.headers}
        kinds = {str(o.headers[Headers.RECEIPT]) for o in [*dead, *survived]
                 if Headers.RECEIPT in o.headers}
        assert kinds >= {"accepted", "received", "rejected", "countersigned"}
        assert len(recorded) - before == len(receipts)
        assert sum(1 for r in receipts if ":rejected:" in str(r)) == 2
        for message_id, body in receipts.items():
            assert recorded.get(str(message_id)) == body, message_id
        # And every delivered document is the ledger's
        for o in [*dead, *survived]:
            if Headers.RECEIPT not in o.headers and Headers.DIGEST in o.headers:
                assert second.ledger.raw(str(o.headers[Headers.DIGEST])) == o.body
        # And nothing was lost: the earlier and the three new envelopes are recorded, once each
        envelopes = second.ledger.documents(kind="envelope")
        assert len(envelopes) == 4
        # And the ledger dates an accepted document to the instant its published receipt states
        for receipt in receipts.values():
            evidence = read_evidence(receipt)
            assert evidence is not None
            if evidence.kind.value == "accepted":
                doc = second.ledger.document_by_digest(evidence.envelope_digest)
                assert doc is not None
                assert dt.datetime.fromisoformat(evidence.at) == doc.received_at
        # And the outbox is empty again, the chain intact
        abouts = [hashlib.sha256(b).hexdigest() for b, _ in bodies]
        assert not [r for rs in second.ledger.issued(abouts).values() for r in rs if r.staged]
        assert second.ledger.verify().ok
    finally:
        second.close()


def test_a_receipt_recorded_by_another_consumer_first_refuses_the_second_commit(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path, ledger_url: str
) -> None:
    settings = hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "race",
                            ledger_url=ledger_url)
    one = build_hub(settings, clock=lambda: NOW)
    two = build_hub(settings, clock=lambda: LATER)
    try:
        body = signed_envelope(keystore, PROVINCE, (FINANCE,), number="820")
        delivery = Delivery(1, body, "edxml.envelope", "edxml.inbound", False, {}, "m1", "guest",
                            None, 0)
        # Given two consumers that planned the same bytes at once (published twice)
        a = one.pipeline.process_batch([delivery])
        b = two.pipeline.process_batch([delivery])
        assert {r.message_id for r in a.outbox} == {r.message_id for r in b.outbox}
        assert [r.body for r in a.outbox] != [r.body for r in b.outbox]
        # When the first records its batch, the second's commit is refused, naming the receipts
        one.write_ledger(a)
        with pytest.raises(ReceiptConflict) as refused:
            two.write_ledger(b)
        assert sorted(refused.value.message_ids) == sorted(r.message_id for r in b.outbox)
        # And nothing of the second batch was written
        assert len(two.ledger.events(kind=EventKind.RECEIPT_ISSUED)) == len(a.outbox)
        # Then planning again finds a duplicate: no receipt of its own (the first consumer
        # publishes the recorded ones), and the ledger keeps one byte string per message id
        again = two.pipeline.process_batch([delivery])
        assert again.receipts == []
        assert [o.reason for _, o in again.outcomes] == [Reason.DUPLICATE]
        two.write_ledger(again)
        assert set(_ledger_copy(two).values()) == {r.body for r in a.outbox}
        assert two.ledger.verify().ok
    finally:
        one.close()
        two.close()


class _RacedLedger:
    """The consumer's ledger, with another consumer's commit of the same packet landing just
    before this consumer's first commit."""

    def __init__(self, hub: Hub, other: Hub, other_plan: BatchPlan) -> None:
        self.ledger, self.other, self.other_plan = hub.ledger, other, other_plan
        self.raced = False

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn], *,
              release: Sequence[str] = ()) -> None:
        if not self.raced:
            self.raced = True
            self.other.write_ledger(self.other_plan)
        self.ledger.write(documents, events, release=release)

    def release(self, message_ids: Sequence[str]) -> None:
        self.ledger.release(message_ids)


def test_a_consumer_whose_commit_meets_another_consumers_receipts_plans_again_and_acks(
    pki: PkiPaths, keystore: Keystore, tmp_path: Path
) -> None:
    settings = hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "raced")
    one = build_hub(settings, clock=lambda: NOW)
    two = build_hub(settings, clock=lambda: LATER)
    try:
        body = signed_envelope(keystore, PROVINCE, (FINANCE,), number="821")
        theirs = one.pipeline.process_batch([Delivery(1, body, "edxml.envelope", "edxml.inbound",
                                                      False, {}, "m0", "guest", None, 0)])
        # Given a consumer that planned the packet while another consumer did too
        stop = threading.Event()
        conn = _Broker(None, redelivered=False, stop=stop, expected=1)
        conn.put(body, message_id="m0", user_id="guest")
        consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"),
                                  two.pipeline, _RacedLedger(two, one, theirs), stop=stop,
                                  connector=lambda _u, _n: conn)
        # When the other one's commit lands first
        consumer.run()
        # Then this one planned again, published none of its own receipts and acked
        assert len(conn.channel.acked_tags()) == 1
        assert not [o for o in conn.published if Headers.RECEIPT in o.headers]
        # And the ledger holds the other consumer's receipts only, once each
        assert set(_ledger_copy(two).values()) == {r.body for r in theirs.outbox}
        assert [e.reason for e in two.ledger.events(kind=EventKind.DUPLICATE)] == ["DUPLICATE"]
        assert two.ledger.verify().ok
    finally:
        one.close()
        two.close()
