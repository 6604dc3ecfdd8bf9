"""A confirmed batch is committed by a writer thread while the loop plans the next (issue 23).

The real consumer, pipeline, receipt issuer and ledger (SQLite and PostgreSQL) run in process
behind the in-memory broker connection, one delivery per batch, so that every batch after the
first has one in flight when it is planned. The ledger is wrapped to see *where* and *when* each
transaction runs and to make one fail; each failure must end as it ends without the writer
thread: held, retried or isolated by the loop, nothing acked before its commit, every delivery
recorded and delivered once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub, build_hub
from hub.broker import BrokerUnavailable
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.consumers.plan import BatchPlan
from hub.consumers.signing import ReceiptSigning
from hub.errors import TransientError
from hub.ledger import DocumentIn, EventIn, EventKind
from hub.messages import Delivery, Headers
from hub.reasons import Reason
from hub.receipts.issuer import HubReceipts
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from hub.trust.signer_thread import SignerThread
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

WAIT_S = 10.0
"""Longest wait for an event that must come (a failing test waits this long, a passing none)."""


class Killed(BaseException):
    """Stands in for SIGKILL: raised where the process dies, caught by no code of the hub."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("beside-pki"))


@pytest.fixture(scope="module")
def keystore(pki: PkiPaths) -> Keystore:
    return Keystore.load(pki.keystore)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub(request: pytest.FixtureRequest, pki: PkiPaths, tmp_path: Path) -> Iterator[Hub]:
    """A hub on either database (two connections at once: the planner's reads, the writer's
    transaction)."""
    def build(url: str | None) -> Iterator[Hub]:
        built = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "beside",
                                       ledger_url=url), clock=lambda: NOW)
        try:
            yield built
        finally:
            built.close()

    if request.param == "sqlite":
        yield from build(None)
        return
    with fresh_schema("hub_beside") as url:
        yield from build(url)


class _Ledger:
    """The hub's ledger, with every write recorded (thread, what it held, whether it
    committed) and ``before(n)`` run before the n-th write (from 1)."""

    def __init__(self, hub: Hub, before: Callable[[int], None] = lambda _n: None) -> None:
        self.ledger, self.before = hub.ledger, before
        self.writes: list[tuple[str, int, bool]] = []
        self._lock = threading.Lock()

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn], *,
              release: Sequence[str] = ()) -> None:
        with self._lock:
            n = len(self.writes) + 1
            self.writes.append((threading.current_thread().name, n, False))
        self.before(n)
        self.ledger.write(documents, events, release=release)
        with self._lock:
            self.writes[n - 1] = (self.writes[n - 1][0], n, True)

    def release(self, message_ids: Sequence[str]) -> None:
        self.ledger.release(message_ids)


class _Planning:
    """The hub's pipeline, with ``during(k)`` run when batch k (from 1) is being planned."""

    def __init__(self, hub: Hub, during: Callable[[int], None] = lambda _k: None) -> None:
        self.pipeline, self.during, self.planned = hub.pipeline, during, 0

    def process_batch(self, batch: list[Delivery], in_flight: Sequence[BatchPlan] = ()
                      ) -> BatchPlan:
        self.planned += 1
        self.during(self.planned)
        return self.pipeline.process_batch(batch, in_flight)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


class _Broker(FakeConnection):
    """The fake connection; the consumer stops once ``expected`` deliveries are acked. ``acks``:
    how many ledger writes had committed at each ack."""

    def __init__(self, stop: threading.Event, expected: int, ledger: _Ledger,
                 confirmed: bool = True) -> None:
        super().__init__(on_idle=self._stop_when_done)
        self._stop, self._expected, self._confirmed = stop, expected, confirmed
        self.ledger = ledger
        self.acks: list[tuple[set[int], int]] = []
        original = self.channel.basic_ack

        def ack(delivery_tag: int, multiple: bool = False) -> None:
            original(delivery_tag, multiple)
            self.acks.append(({delivery_tag}, sum(1 for w in ledger.writes if w[2])))

        self.channel.basic_ack = ack  # type: ignore[method-assign]

    def _stop_when_done(self, _conn: FakeConnection) -> None:
        if len(self.channel.acked_tags()) >= self._expected:
            self._stop.set()

    def confirmed(self, sent: range) -> bool:
        return self._confirmed


def _bodies(keystore: Keystore, n: int, tag: str) -> list[bytes]:
    return [signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS), number=f"{tag}{i}")
            for i in range(n)]


def _run(hub: Hub, bodies: list[bytes], ledger: _Ledger, *, planning: _Planning | None = None,
         confirmed: bool = True, signer: bool = False, beside: bool = True) -> _Broker:
    stop = threading.Event()
    conn = _Broker(stop, len(bodies), ledger, confirmed)
    for i, body in enumerate(bodies):
        conn.put(body, message_id=f"m{i}", user_id="guest")
    signing = None
    if signer:
        assert isinstance(hub.pipeline.receipts, HubReceipts)
        signing = ReceiptSigning(hub.pipeline.receipts, SignerThread(hub.keystore, timeout_s=30))
    consumer = IntakeConsumer(
        IntakeOptions(url="amqp://fake", queue="intake", batch_max=1,
                      commit_beside_planning=beside),
        planning or hub.pipeline, ledger, stop=stop,  # type: ignore[arg-type]
        connector=lambda _u, _n: conn, signing=signing)
    consumer.run()
    return conn


def _delivered_once(hub: Hub, conn: _Broker, bodies: list[bytes]) -> None:
    """Every delivery acked, each document delivered once to each of its two recipients (the
    exact bytes), the receipts published once each, the ledger sound."""
    n = len(bodies)
    assert conn.channel.acked_tags() == set(range(1, n + 1))
    deliveries = [o for o in conn.published if o.body in bodies]
    assert len(deliveries) == 2 * n
    assert len({(o.routing_key, o.body) for o in deliveries}) == 2 * n
    receipt_ids = [o.message_id for o in conn.published if Headers.RECEIPT in o.headers]
    assert receipt_ids
    assert len(receipt_ids) == len(set(receipt_ids))
    assert len(hub.ledger.events(kind=EventKind.VALIDATED)) == n
    assert hub.ledger.verify().ok


def _no_ack_before_its_commit(conn: _Broker) -> None:
    # One delivery a batch, batches in order: the k-th ack comes after the k-th commit.
    for k, (_tags, committed) in enumerate(conn.acks, start=1):
        assert committed >= k, f"batch {k} acked with {committed} commits"


@pytest.mark.parametrize("signer", [False, True],
                         ids=["signed in the loop", "signed by a signer thread"])
def test_a_confirmed_batch_is_committed_by_the_writer_thread_while_the_next_is_planned(
    hub: Hub, keystore: Keystore, signer: bool
) -> None:
    writing = threading.Event()

    def before(n: int) -> None:
        if n == 1:
            writing.set()

    seen: list[bool] = []

    def during(k: int) -> None:
        if k == 2:  # batch 1 is in flight, its phase 1 confirmed
            seen.append(writing.wait(WAIT_S))

    ledger = _Ledger(hub, before)
    bodies = _bodies(keystore, 3, "31")
    conn = _run(hub, bodies, ledger, planning=_Planning(hub, during), signer=signer)
    # Batch 1's transaction had begun while batch 2 was being planned, in the writer thread
    assert seen == [True]
    assert ledger.writes[0][0].startswith("ledger-writer")
    _no_ack_before_its_commit(conn)
    _delivered_once(hub, conn, bodies)


def test_a_batch_whose_phase_1_is_not_confirmed_yet_is_committed_by_the_loop_after_planning(
    hub: Hub, keystore: Keystore
) -> None:
    ledger = _Ledger(hub)
    bodies = _bodies(keystore, 3, "32")
    conn = _run(hub, bodies, ledger, confirmed=False)
    assert [w[0] for w in ledger.writes] == [threading.current_thread().name] * 3
    _no_ack_before_its_commit(conn)
    _delivered_once(hub, conn, bodies)


def test_with_commit_beside_planning_off_the_loop_commits_every_batch(
    hub: Hub, keystore: Keystore
) -> None:
    ledger = _Ledger(hub)
    bodies = _bodies(keystore, 3, "33")
    conn = _run(hub, bodies, ledger, beside=False)
    assert [w[0] for w in ledger.writes] == [threading.current_thread().name] * 3
    _delivered_once(hub, conn, bodies)


def test_a_ledger_down_beside_planning_holds_the_batch_until_the_loop_commits_it(
    hub: Hub, keystore: Keystore
) -> None:
    def before(n: int) -> None:
        if n in (1, 2):  # the writer thread's try, then the loop's first
            raise TransientError(Reason.LEDGER_UNAVAILABLE, "database is locked")

    ledger = _Ledger(hub, before)
    bodies = _bodies(keystore, 3, "34")
    conn = _run(hub, bodies, ledger)
    assert ledger.writes[0][0].startswith("ledger-writer")
    assert [w[2] for w in ledger.writes[:3]] == [False, False, True]
    _no_ack_before_its_commit(conn)
    _delivered_once(hub, conn, bodies)


def test_a_row_the_database_refuses_beside_planning_is_isolated_by_the_loop(
    hub: Hub, keystore: Keystore
) -> None:
    class Refused(Exception):
        pass

    def before(n: int) -> None:
        if n in (1, 2):  # the writer thread's try, then the loop's own whole-batch try
            raise Refused("value too long for type character varying(64)")

    ledger = _Ledger(hub, before)
    bodies = _bodies(keystore, 3, "35")
    conn = _run(hub, bodies, ledger)
    # The loop then wrote it delivery by delivery (one here), and it went through
    assert ledger.writes[0][0].startswith("ledger-writer")
    assert ledger.writes[2][0] == threading.current_thread().name
    _no_ack_before_its_commit(conn)
    _delivered_once(hub, conn, bodies)


def test_a_consumer_that_loses_its_broker_while_the_writer_commits_reconnects_only_after(
    hub: Hub, keystore: Keystore
) -> None:
    """Planned again on a new connection before the commit of the old one landed, a
    redelivered batch would look new: it would be delivered twice."""
    writing, may_go_on = threading.Event(), threading.Event()

    def before(n: int) -> None:
        if n == 1:
            writing.set()
            assert may_go_on.wait(WAIT_S)

    def during(k: int) -> None:
        if k == 2:
            assert writing.wait(WAIT_S)
            may_go_on.set()
            raise BrokerUnavailable("connection reset while planning")

    ledger = _Ledger(hub, before)
    stop = threading.Event()
    conn = _Broker(stop, 3, ledger)
    for i, body in enumerate(_bodies(keystore, 3, "36")):
        conn.put(body, message_id=f"m{i}", user_id="guest")
    at_close: list[list[bool]] = []
    at_reconnect: list[list[bool]] = []
    close = conn.close

    def closing(timeout: float = 5.0) -> None:
        at_close.append([w[2] for w in ledger.writes])
        close(timeout)

    conn.close = closing  # type: ignore[method-assign]

    def connector(_url: str, _name: str) -> _Broker:
        if at_reconnect:
            at_reconnect.append([w[2] for w in ledger.writes])
            stop.set()
            raise BrokerUnavailable("gone")
        at_reconnect.append([])
        return conn

    # Two nodes: the next one is tried at once, with no wait that would hide a running commit
    options = IntakeOptions(url="amqp://fake", failover_urls=("amqp://fake-2",), queue="intake",
                            batch_max=1)
    consumer = IntakeConsumer(options, _Planning(hub, during), ledger, stop=stop,  # type: ignore[arg-type]
                              connector=connector)
    consumer.run()
    # When it closed the lost connection, the transaction begun beside the planning had ended
    assert at_close == [[True]]
    assert at_reconnect == [[], [True]]
    assert ledger.writes[0][0].startswith("ledger-writer")
    assert not conn.channel.acked_tags()
