"""The intake consumer (``hub run``): glue between the broker adapter and the pipeline.

One loop, one thread, one connection (pika's BlockingConnection is not thread-safe). Group
commit: deliveries are collected (up to ``batch_max``; ``batch_wait_ms`` only when idle),
planned by :class:`~hub.consumers.plan.Pipeline`, then executed in the only safe order:

1. publish phase 1 (deliveries, forwarded statuses, dead letters, retries: the bytes as
   received) and wait for every confirm;
2. write the ledger in one transaction (retried while the database is down, or while the
   signing token cannot sign the checkpoint the write carries: fail closed); it records every
   receipt of the batch, exact bytes;
3. publish the receipts it recorded (hub receipts, "01" signed for a hosted recipient,
   countersignatures, signed refusals) and wait for every confirm;
4. ack the batch (one ``basic.ack`` with ``multiple`` for the batch's contiguous tags).

Two batches overlap: once batch *k*'s phase 1 is written, the loop plans batch *k+1* (against
the ledger as it will be after *k* commits, :class:`~hub.consumers.plan.InFlightView`) and writes
its phase 1 while the broker confirms *k*; then it finishes *k* (steps 1–4). The order of
steps for each batch is unchanged, batches are committed and acked in order, and nothing of
*k+1* is acked before *k*. When *k+1*'s plan leans on what *k* will record (a resend, a recall,
a status about one of *k*'s documents, a receipt *k* issues), *k* is finished first and *k+1*
planned again against the ledger. With no new work the batch in flight is finished at once.

With a signer process (``[hub] signer_processes`` ≥ 1, :mod:`hub.consumers.signing`) the
receipts of batch *k+1* are planned without their RSA signatures and sent to the signer; the
loop publishes *k+1*'s phase 1 and finishes batch *k* while the signer signs, and takes the
signatures back when *k+1* is finished (before its ledger commit). If the signer dies, fails or
times out, nothing of the batch has been recorded nor any receipt published: the signer is
restarted and the batch signed again, held unacknowledged meanwhile (with backoff while it
cannot start).

A crash anywhere before 4 leaves the deliveries unacknowledged; RabbitMQ redelivers them and
the ledger's duplicate detection plus deterministic message ids keep recipients from seeing a
document twice. Receipts carry a time, so signing them again would give other bytes under the
same message id: a receipt is published only after the commit that records it, and the plan of
a redelivered packet publishes the receipts recorded about it, never new ones — every copy a
party can receive under one message id is the one the ledger records. Two consumers that
planned the same packet at once (published twice) are told apart by the commit: the second
finds the first's receipts recorded (:class:`~hub.ledger.ReceiptConflict`) and plans again,
which makes its copy a duplicate (the first publishes the recorded receipts).

SIGTERM stops taking new work, finishes the batches in hand, acks them and
exits 0 (while the ledger is down it gives up instead: nothing unfinished is acked).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from hub.broker import BrokerRefused, BrokerUnavailable, Delivery, Settler, TopologyLike, connect
from hub.consumers.plan import BatchPlan, Pipeline
from hub.consumers.settlement import Backoff, Failover
from hub.consumers.signing import ReceiptSigning, SigningJob
from hub.consumers.stats import Stats
from hub.errors import ConfigurationError, TransientError
from hub.ledger.records import DocumentIn, EventIn, ReceiptConflict
from hub.logs import get_logger
from hub.messages import UNFIT_CHAR, Outgoing
from hub.reasons import Reason
from hub.topology import Topology
from hub.trust.signer_pool import SignerUnavailable
from hub.trust.token import TokenUnavailable

T = TypeVar("T")

log = get_logger("hub.consumers.intake")

LEDGER_WAIT_CAP_S = 5.0
"""Longest wait between two tries of a ledger that is down (heartbeats keep flowing)."""
SIGNER_WAIT_CAP_S = 5.0
"""Longest wait between two restarts of a signer process that cannot start."""


class BrokerConnection(Protocol):
    """What the consumer uses of :class:`hub.broker.Connection` (a fake stands in for unit tests)."""

    def declare(self, topology: TopologyLike) -> None: ...
    def consume(self, queue: str, prefetch: int,
                on_delivery: Callable[[Delivery], None]) -> str: ...
    def cancel(self, consumer_tag: str) -> None: ...
    def pump(self, time_limit: float) -> None: ...
    def send(self, messages: Iterable[Outgoing]) -> range: ...
    def wait(self, sent: range, timeout: float = 30.0) -> None: ...
    def sleep(self, seconds: float) -> None: ...
    def settler(self) -> Settler: ...
    def close(self, timeout: float = 5.0) -> None: ...


class LedgerWriter(Protocol):
    """What the consumer needs of the ledger (:class:`hub.ledger.Ledger`): one transaction per
    batch (which also deletes outbox rows older hubs staged about its packets)."""

    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn], *,
              release: Sequence[str] = ()) -> Any: ...
    def release(self, message_ids: Sequence[str]) -> None: ...


def write_plan(ledger: LedgerWriter, plan: BatchPlan) -> None:
    """Record what a batch plan did, in one transaction (nothing to write: no transaction),
    deleting outbox rows staged about its packets in the same transaction."""
    if plan.documents or plan.events or plan.outbox:
        ledger.write(plan.documents, plan.events, release=plan.release)


TOPOLOGY_REFUSALS = frozenset({403, 406})
"""Reply codes of a declaration that no retry changes: 406 PRECONDITION_FAILED (a queue or
exchange exists with other arguments: ``[broker] quorum``, the delivery limit, the retry
delays), 403 ACCESS_REFUSED (the account may not configure them). ``hub run`` ends with
:data:`~hub.ops.cli.EXIT_CONFIG` on them, as ``hub topology apply`` does. A 404 NOT_FOUND is
retried: RabbitMQ answers so for a durable classic queue whose home node is down, and that
node comes back."""

_REPLANS = 3
"""How often a batch is planned again when another consumer recorded the same receipt first."""


@dataclass(slots=True)
class _InFlight:
    """A planned batch; once its phase 1 is written, in flight until confirmed, committed and
    acked."""

    plan: BatchPlan
    started: float
    planned_s: float
    deliveries: list[Delivery] = field(default_factory=list)
    signing: SigningJob | None = None
    """Its receipts' signatures, asked of the signer process and not yet in the plan."""
    first: range = range(0)
    """Publish sequence numbers of phase 1 (:meth:`hub.broker.Connection.send`)."""
    receipts: range = range(0)
    """Publish sequence numbers of its receipts, sent after the commit."""
    sent_s: float = 0.0


@dataclass(slots=True)
class _Hand:
    """The batches a consumer holds between two rounds of its loop."""

    in_flight: _InFlight | None = None
    """Planned, its phase 1 sent: to be finished next."""
    settling: _InFlight | None = None
    """Committed, its receipts sent: to be acked once they are confirmed."""


@dataclass(frozen=True)
class IntakeOptions:
    url: str
    queue: str
    failover_urls: tuple[str, ...] = ()
    prefetch: int = 256
    batch_max: int = 128
    batch_wait_ms: int = 0
    reconnect_max_s: float = 30.0
    name: str = "edxml-hub intake"


def _plain(text: str) -> str:
    """``text`` without control characters nor lone surrogates (no database text holds NUL)."""
    return UNFIT_CHAR.sub("", text)


def _storable(delivery: Delivery) -> Delivery:
    """``delivery`` as a refusal the ledger can store whatever it was sent with: no message
    id (the refusal is recorded under the packet's digest), the account made plain."""
    user = delivery.user_id
    return dataclasses.replace(delivery, message_id=None,
                               user_id=None if user is None else _plain(user))


def _host(url: str) -> str:
    from urllib.parse import urlparse

    p = urlparse(url)
    return f"{p.hostname}:{p.port or 5672}"


class IntakeConsumer:
    def __init__(
        self,
        options: IntakeOptions,
        pipeline: Pipeline,
        ledger: LedgerWriter,
        *,
        topology: Topology | None = None,
        between_batches: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
        connector: Callable[[str, str], BrokerConnection] = connect,
        signing: ReceiptSigning | None = None,
    ) -> None:
        self.options = options
        self.pipeline = pipeline
        self.ledger = ledger
        self.topology = topology
        self.between_batches = between_batches
        self.stop = stop or threading.Event()
        self._connect = connector
        """How a connection is opened: :func:`hub.broker.connect` (unit tests pass a fake)."""
        self.signing = signing
        """Receipts signed by signer processes (None: signed in this thread, while planning)."""
        self.stats = Stats()
        self._settler_conn: BrokerConnection | None = None
        self._settler_obj: Settler | None = None
        self._consuming = False

    @property
    def consuming(self) -> bool:
        """True while this consumer holds a ``basic.consume`` on the intake queue; False
        before it has one, while it (re)connects and once it cancelled it (``/readyz``)."""
        return self._consuming

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> None:
        """Consume until :attr:`stop` is set; reconnect with bounded backoff on broker loss.

        Raises :class:`~hub.errors.ConfigurationError` (the broker's one-line reason) when the
        broker refuses to declare the topology as configured (:data:`TOPOLOGY_REFUSALS`):
        reconnecting cannot change that, an operator must."""
        if self.signing is not None:
            self.signing.start()  # ConfigurationError: the keys cannot be loaded there
        try:
            self._run()
        finally:
            if self.signing is not None:
                self.signing.close()
        log.info("consumer_stopped", acked=self.stats.acked)

    def _run(self) -> None:
        nodes = Failover((self.options.url, *self.options.failover_urls),
                         Backoff(0.2, self.options.reconnect_max_s))
        while not self.stop.is_set():
            conn: BrokerConnection | None = None
            try:
                conn = self._connect(nodes.url, self.options.name)
                if self.topology is not None:
                    self._declare(conn, self.topology)  # idempotent: every (re)connect
                log.info("consumer_connected", queue=self.options.queue)
                nodes.connected()
                self._consume(conn)
            except BrokerUnavailable as exc:
                self.stats.reconnects += 1
                with self.stats.changed:
                    self.stats.changed.notify_all()
                wait = nodes.lost()  # next cluster node, if any; a wait once all were tried
                log.warning("broker_lost", detail=exc.detail[:300], retry_in_s=round(wait, 2),
                            next_node=_host(nodes.url))
                if wait:
                    self.stop.wait(wait)
            finally:
                if conn is not None:
                    conn.close()

    @staticmethod
    def _declare(conn: BrokerConnection, topology: TopologyLike) -> None:
        """Declare ``topology``; a refusal no retry changes is a configuration error."""
        try:
            conn.declare(topology)
        except BrokerRefused as exc:
            if exc.reply_code not in TOPOLOGY_REFUSALS:
                raise
            log.error("topology_refused", detail=exc.detail[:300])
            raise ConfigurationError(exc.detail) from None

    def _consume(self, conn: BrokerConnection) -> None:
        buffer: list[Delivery] = []
        tag = conn.consume(self.options.queue, self.options.prefetch, buffer.append)
        self._consuming = True
        try:
            self._consume_from(conn, tag, buffer)
        finally:
            self._consuming = False

    def _consume_from(self, conn: BrokerConnection, tag: str, buffer: list[Delivery]) -> None:
        wait = self.options.batch_wait_ms / 1000.0
        batch_max = self.options.batch_max
        hand = _Hand()
        while True:
            if self.stop.is_set():
                conn.cancel(tag)
                self._consuming = False
                conn.pump(0)  # take what is already on the wire, then finish it
                self._drain(conn, hand)
                while buffer:
                    rest = self._plan(conn, buffer[:batch_max], None)
                    del buffer[:batch_max]
                    self._send(conn, rest)
                    self._complete(conn, rest)
                return
            if not buffer:
                if hand.in_flight is not None or hand.settling is not None:
                    # Nothing new to plan meanwhile: finish the batches in hand now.
                    self._drain(conn, hand)
                    conn.pump(0)
                    continue
                conn.pump(0.2)
                if not buffer and self.between_batches is not None:
                    self.between_batches()
                continue
            if hand.in_flight is None and wait > 0:
                # Idle until now: give a burst a moment to gather into one batch.
                deadline = time.monotonic() + wait
                while len(buffer) < batch_max:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    conn.pump(left)
            batch = buffer[:batch_max]
            del buffer[: len(batch)]
            started = self._plan(conn, batch, hand.in_flight)
            if hand.in_flight is not None and started.plan.leans_on_in_flight:
                # Planned on what the batch in flight will record (a resend, a recall, a
                # status about one of its documents, a receipt it issues): nothing of it
                # leaves before that batch is committed, so a failure of that batch can never
                # leave it half-told; then it is planned again on the ledger as it is.
                self._drain(conn, hand)
                self._replan(conn, started)
            self._send(conn, started)
            # Batches are acked in order: k-1 (its receipts confirmed by now, as a rule), then
            # k is finished and its receipts sent, acked in the next round.
            if hand.settling is not None:
                self._settle(conn, hand.settling)
            hand.settling, hand.in_flight = hand.in_flight, started
            if hand.settling is not None:
                self._finish(conn, hand.settling)
            conn.pump(0)  # deliveries and confirms that arrived meanwhile

    def _drain(self, conn: BrokerConnection, hand: _Hand) -> None:
        """Settle the batch whose receipts were sent, then finish and settle the one in flight."""
        settling, in_flight = hand.settling, hand.in_flight
        hand.settling = hand.in_flight = None
        if settling is not None:
            self._settle(conn, settling)
        if in_flight is not None:
            self._complete(conn, in_flight)

    # -- one batch -----------------------------------------------------------------------------
    def _send(self, conn: BrokerConnection, batch: _InFlight) -> None:
        """Write the batch's phase 1 without waiting for the confirms."""
        t1 = time.perf_counter()
        if batch.plan.first:
            batch.first = conn.send(batch.plan.first)
        batch.sent_s = time.perf_counter() - t1

    def _complete(self, conn: BrokerConnection, batch: _InFlight) -> None:
        """:meth:`_finish` then :meth:`_settle`: the batch done, acked."""
        self._finish(conn, batch)
        self._settle(conn, batch)

    def _finish(self, conn: BrokerConnection, batch: _InFlight) -> None:
        """Phase 1 confirmed, the receipts signed, ledger committed, the receipts it recorded
        sent (their confirms and the ack: :meth:`_settle`)."""
        t1 = time.perf_counter()
        conn.wait(batch.first)
        t2 = time.perf_counter()
        if batch.signing is not None:
            self._signatures(conn, batch)
        t3 = time.perf_counter()
        receipts = self._commit(conn, batch)
        t4 = time.perf_counter()
        if receipts:
            batch.receipts = conn.send(receipts)
        batch.sent_s += t2 - t1 + time.perf_counter() - t4
        self.stats.time("ledger", t4 - t3)

    def _settle(self, conn: BrokerConnection, batch: _InFlight) -> None:
        """The batch's receipts confirmed, then its deliveries acked."""
        t1 = time.perf_counter()
        conn.wait(batch.receipts)
        t2 = time.perf_counter()
        self._settler(conn).ack(batch.plan.ack)
        t3 = time.perf_counter()
        for stage, seconds in (("process", batch.planned_s),
                               ("publish", batch.sent_s + t2 - t1), ("ack", t3 - t2),
                               ("batch", t3 - batch.started)):
            self.stats.time(stage, seconds)
        self.stats.count(batch.plan)

    def _plan(self, conn: BrokerConnection, batch: list[Delivery],
              in_flight: _InFlight | None) -> _InFlight:
        """Plan the batch, seeing what the batch ``in_flight`` will record; while the ledger
        cannot be read, hold it and retry (fail closed). With a signer process, its receipts'
        signatures are asked for now and put in by :meth:`_stage`."""
        started = time.perf_counter()
        plans = () if in_flight is None else (in_flight.plan,)
        plan, job = self._plan_once(conn, batch, plans)
        return _InFlight(plan, started=started, planned_s=time.perf_counter() - started,
                         deliveries=batch, signing=job)

    def _replan(self, conn: BrokerConnection, batch: _InFlight) -> None:
        """Plan ``batch`` again on the ledger as it is now (every batch before it committed).
        Signatures asked for the old plan are collected first, so that no answer of the
        signer is left behind for the next job."""
        t0 = time.perf_counter()
        if batch.signing is not None:
            self._signatures(conn, batch)
        batch.plan, batch.signing = self._plan_once(conn, batch.deliveries, ())
        batch.planned_s += time.perf_counter() - t0

    def _plan_once(self, conn: BrokerConnection, batch: list[Delivery],
                   plans: tuple[BatchPlan, ...]) -> tuple[BatchPlan, SigningJob | None]:
        def make() -> BatchPlan:
            return self.pipeline.process_batch(batch, plans)

        if self.signing is None:
            return self._while_ledger_down(conn, len(batch), make), None
        signing = self.signing
        return self._while_ledger_down(conn, len(batch), lambda: signing.plan(make))

    def _signatures(self, conn: BrokerConnection, batch: _InFlight) -> None:
        """Fill in the batch's receipt signatures. While the signer is down (dead, failing,
        silent) the batch is held unacknowledged — nothing of it recorded, no receipt of it
        published — the signer is restarted and the batch signed again, with bounded backoff."""
        signing, job = self.signing, batch.signing
        assert signing is not None
        assert job is not None
        backoff = Backoff(0.1, SIGNER_WAIT_CAP_S)
        t0 = time.perf_counter()
        failures = 0
        while True:
            try:
                signing.complete(batch.plan, job, idle=partial(conn.pump, 0))
                break
            except SignerUnavailable as exc:
                failures += 1
                self.stats.signer_restarts += 1
                with self.stats.changed:
                    self.stats.changed.notify_all()
                log.error("signer_unavailable", detail=exc.detail[:300],
                          held=len(batch.deliveries), failures=failures)
            while True:
                if self.stop.is_set() and failures > 1:
                    # Stopping: one more try for the batch in hand, then leave it unacked.
                    raise BrokerUnavailable("stopping while the signer is down") from None
                try:
                    signing.pool.restart()
                    signing.submit(job)
                    break
                except SignerUnavailable as exc:
                    failures += 1
                    log.error("signer_restart_failed", detail=exc.detail[:300],
                              retry_in_s=round(backoff.upcoming, 2))
                    conn.sleep(backoff.next())
        batch.signing = None
        self.stats.time("sign_wait", time.perf_counter() - t0)

    def _commit(self, conn: BrokerConnection, batch: _InFlight) -> list[Outgoing]:
        """Write the ledger; while it is down, hold the batch unacknowledged and retry. The
        receipts to publish: those the commit recorded.

        When another consumer recorded one of the batch's receipts first, the batch is planned
        again (its copy of that packet is then a duplicate). A refusal no retry can change (a constraint, a
        value the database cannot store) must not stop the consumer nor leave the batch's
        other deliveries unrecorded: the rows are then written delivery by delivery and each
        refused delivery is isolated."""
        for attempt in range(_REPLANS + 1):
            plan = batch.plan
            try:
                self._while_ledger_down(conn, len(plan.ack),
                                        partial(write_plan, self.ledger, plan))
                return plan.receipts
            except ReceiptConflict as exc:
                log.warning("receipt_conflict", receipts=len(exc.message_ids))
                if attempt == _REPLANS:
                    break
                self._replan(conn, batch)
                if batch.plan.first:
                    conn.wait(conn.send(batch.plan.first))
                if batch.signing is not None:
                    self._signatures(conn, batch)
            except (TransientError, BrokerUnavailable):
                raise
            except Exception as exc:  # a poison row: see _isolate
                log.error("ledger_batch_refused", error=type(exc).__name__,
                          deliveries=len(plan.ack))
                break
        return self._isolate(conn, batch.plan)

    def _isolate(self, conn: BrokerConnection, plan: BatchPlan) -> list[Outgoing]:
        """Write the batch delivery by delivery; the receipts of the deliveries recorded."""
        receipts: list[Outgoing] = []
        for span in plan.spans:
            documents, events = plan.rows_of(span)
            error = self._write_or_error(conn, documents, events)
            if error is None:
                receipts.extend(plan.receipts_of(span))
                continue
            log.error("ledger_row_refused", message_id=span.delivery.message_id,
                      error=error.split(":")[0])
            isolated = self.pipeline.isolate(span, error)
            conn.wait(conn.send(isolated.first))
            if self._write_or_error(conn, isolated.documents, isolated.events) is not None:
                # The refusal's rows carry the delivery's message id and account as they came:
                # what the database refused in them (a NUL on PostgreSQL) refuses these too.
                # Record it under the packet's digest, the account and error made plain; its
                # dead letter is out already (one per delivery), only the rows are written.
                isolated = self.pipeline.isolate(
                    dataclasses.replace(span, delivery=_storable(span.delivery)), _plain(error))
                if self._write_or_error(conn, isolated.documents, isolated.events) is not None:
                    # Even the refusal cannot be recorded: say so loudly and go on.
                    log.error("ledger_refusal_unrecorded", message_id=span.delivery.message_id)
                else:
                    receipts.extend(isolated.receipts)
            else:
                receipts.extend(isolated.receipts)
            self.stats.count(isolated)
        # Outbox rows an older hub staged about these packets: recorded or refused now.
        self._while_ledger_down(conn, 1, lambda: self.ledger.release(plan.release))
        return receipts

    def _write_or_error(self, conn: BrokerConnection, documents: Sequence[DocumentIn],
                        events: Sequence[EventIn]) -> str | None:
        """Write rows in a transaction of their own (held while the ledger is down); the
        error's text when the ledger refuses them for good."""
        if not documents and not events:
            return None
        try:
            self._while_ledger_down(conn, 1, lambda: self.ledger.write(documents, events))
        except (TransientError, BrokerUnavailable):
            raise
        except Exception as exc:
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            return f"{type(exc).__name__}: {first}"
        return None

    def _while_ledger_down(self, conn: BrokerConnection, held: int, step: Callable[[], T]) -> T:
        """Run ``step``; on LEDGER_UNAVAILABLE — or a signing token that cannot sign the
        ledger's checkpoint inside the write (:class:`~hub.trust.token.TokenUnavailable`) —
        keep the ``held`` deliveries unacknowledged, wait with bounded backoff (heartbeats
        flowing) and try again. Nothing of a failed write is recorded (one transaction). On
        stop, give up without acking: the broker redelivers after we close."""
        backoff = Backoff(0.1, LEDGER_WAIT_CAP_S)
        while True:
            try:
                return step()
            except TransientError as exc:
                token = isinstance(exc, TokenUnavailable)
                if not token and exc.reason is not Reason.LEDGER_UNAVAILABLE:
                    raise
                if not token:
                    self.stats.ledger_retries += 1
                with self.stats.changed:
                    self.stats.changed.notify_all()
                log.error("signing_token_unavailable" if token else "ledger_unavailable",
                          detail=exc.detail[:300], retry_in_s=round(backoff.upcoming, 2),
                          held=held)
                if self.stop.is_set():
                    what = "the signing token is out" if token else "the ledger is down"
                    raise BrokerUnavailable(f"stopping while {what}") from None
                conn.sleep(backoff.next())

    def _settler(self, conn: BrokerConnection) -> Settler:
        # Delivery tags belong to a channel: one settler per connection's consuming channel.
        if self._settler_conn is not conn:
            self._settler_conn, self._settler_obj = conn, conn.settler()
        assert self._settler_obj is not None
        return self._settler_obj
