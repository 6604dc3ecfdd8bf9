"""``hub axis run``: the connector between the hub and the national document axis.

One loop, one thread, one broker connection (pika's BlockingConnection is not thread-safe);
the HTTP calls to the axis are made from the same loop, and every wait goes through the
connection (``pump``/``sleep``) so heartbeats keep flowing.

**Outbound** — the gateway queue (``hub.topology``: ``P.gateway.axis``, fed by the plan for
every delivery routed ``via = "axis"``: documents under ``axis.inbox``, statuses and receipts
for senders behind the axis under ``axis.status``). Per message, in queue order:

1. hub evidence receipts (``accepted``, status ``01`` as the exchange; ``countersigned``, the
   forwarded status's own code, whose original is sent) stay in the ledger unless
   ``[axis] forward_hub_evidence``; a document that *came from* the axis is not sent
   back to it (the axis fans out to its other recipients itself): ``axis_skipped``;
2. already handed to the axis (an ``axis_sent`` row for these bytes in the ledger, or earlier
   in this process): recorded, not sent again;
3. otherwise ``sendEdoc`` with the exact bytes and their SHA-256 — the document's identity on
   the axis. Accepted, or the axis' *duplicate* answer (it already holds these bytes: a crash
   came between its acceptance and our ledger commit) → ``axis_sent`` with the axis' document
   id; a refusal (4xx with a reason) → dead letter ``AXIS_REFUSED`` carrying the axis' code and
   text, ledger rows, and the hub's signed refusal to the sender when the sender is a body of
   this hub; a timeout, 5xx or refused connection → the message stays in hand, unacknowledged,
   and waits its own backoff and the breaker's (:mod:`hub.axis.breaker`). Once it failed
   ``send_attempts`` times while the axis answered other calls (the axis is up; it is this
   message that fails), it is dead-lettered ``AXIS_UNAVAILABLE`` with its attempts — parked,
   the sender is not told — and the messages behind it leave.

A batch is then executed in the only safe order: dead letters and refusals published and
confirmed, the ledger committed, then the messages acknowledged (``hub.broker.Settler``). A
crash anywhere before the ack leaves them queued; step 2 or the axis' duplicate answer keeps
the axis from storing them twice.

**Inbound** — every ``[axis] poll_interval_s``, on a schedule of its own that no held message
pushes back (only an open circuit stops both directions, and the list call is its half-open
probe): ``getReceivedEdocList``; ``getEdoc`` for each;
the exact bytes are published to the inbound exchange *as any other document*, under the
connector's broker login speaking for the axis' account (``x-hub-original-user``, the account
the directory gives bodies behind the axis), so the intake applies full signature enforcement,
binds ``From`` to that account and routes statuses back to the original senders. The
national-axis legacy-signature policy (``[trust] axis_legacy_envelope_signature``) can only
ever apply to such packets (it is limited to senders with ``reach = "axis"``, whose account
only this connector speaks for); whether it was on is recorded with each hand-over. Once the
intake queue confirmed the publish and the ledger recorded ``axis_received``, the axis is told
(``updateStatus`` ``inbox``) and that is recorded (``axis_acknowledged``). A crash in between:
the axis lists the document again, the ledger shows it was handed over, it is acknowledged
without being published twice (and the intake's duplicate check would catch it anyway).

An entry of the list the connector cannot use (a field of the wrong JSON type: ``"to": 7``) is
never fetched: it is refused back to the axis (``updateStatus fail``, the axis' word for a
failed transfer, so it is not listed again and its sender learns of it), logged
(``axis_listing_entry_refused``) and recorded (``axis_acknowledged``, status ``fail``, ``why``);
an entry without a usable id cannot be named to the axis and is logged
(``axis_listing_entry_skipped``) each time it is listed. An entry whose ``getEdoc`` answers 404
is logged (``axis_entry_not_found``) and, after :data:`NOT_FOUND_ROUNDS` rounds, refused back
the same way; such entries do not count against ``receive_limit``.

**Ledger refusals.** A row the database refuses for what it holds
(:class:`~hub.ledger.records.LedgerRowRejected`) is isolated as the intake does: the others are
written, it is replaced by a row that can be stored (reason ``LEDGER_ROW_REJECTED``) and a copy
of its packet is dead-lettered for an operator — the connector never stops on it.

**Odd answers.** Whatever the client raises besides :class:`AxisUnavailable` — a bug of ours, or
an answer no check foresaw — is logged with its type and place (``axis_call_failed``) and then
handled as the axis unavailable (kind ``unexpected``: backoff, circuit breaker, messages kept in
hand): the connector's thread never dies of what a peer answered.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from hub.axis.breaker import Breaker
from hub.axis.client import AxisUnauthorized, AxisUnavailable
from hub.axis.metrics import AxisMetrics
from hub.axis.protocol import (
    Answer,
    Listed,
    MessageType,
    StatusWord,
    Verdict,
    judge_send,
    message_type_of,
)
from hub.broker import BrokerUnavailable, Connection, Delivery, Settler, connect
from hub.consumers.settlement import Backoff, Failover
from hub.edxml import EnvelopeRefused, Limits, parse_packet
from hub.edxml.model import Envelope, StatusPacket
from hub.errors import TransientError
from hub.ledger.records import DocumentIn, EventIn, EventKind, LedgerRowRejected, StoredEvent
from hub.logs import get_logger
from hub.messages import Headers, Outgoing
from hub.reasons import Reason
from hub.routing import route_status
from hub.topology import ENVELOPE_KEY, STATUS_KEY, Names

log = get_logger("hub.axis.connector")

T = TypeVar("T")
P = ParamSpec("P")

HUB_EVIDENCE = frozenset({"accepted", "countersigned"})
"""Receipt kinds that are the hub's own evidence (``accepted``: 01 as the exchange;
``countersigned``: the forwarded status's code), not a party's status."""
_REMEMBERED = 100_000
"""Digests this process remembers as handed to the axis (beyond, the ledger answers)."""
NOT_FOUND_ROUNDS = 3
"""Rounds in which the axis lists an entry that its ``getEdoc`` does not find (404) before the
connector refuses it back (``updateStatus fail``): purged or expired on the axis, it would
otherwise be listed, and skipped, for ever."""


class AxisApi(Protocol):
    """What the connector calls (:class:`hub.axis.client.AxisClient`)."""

    def send(self, raw: bytes, *, sender: str, message_type: MessageType,
             digest: str | None = None) -> Answer: ...
    def received(self, limit: int) -> list[Listed]: ...
    def fetch(self, doc_id: str) -> bytes: ...
    def update_status(self, doc_id: str, word: StatusWord) -> Answer: ...


class LedgerLike(Protocol):
    def write(self, documents: Sequence[DocumentIn], events: Sequence[EventIn]) -> Any: ...
    def events(self, *, digest: str | None = None) -> list[StoredEvent]: ...


class Refusals(Protocol):
    """The hub's receipt issuer (:class:`hub.receipts.HubReceipts`)."""

    def rejected(self, raw: bytes, packet: Envelope | StatusPacket | None, reason: Reason,
                 at: datetime, *, publisher: str | None = None,
                 digest: str | None = None) -> tuple[str, bytes] | None: ...


@dataclass(frozen=True)
class ConnectorOptions:
    url: str
    names: Names
    province: str
    failover_urls: tuple[str, ...] = ()
    prefetch: int = 64
    batch_max: int = 32
    poll_interval_s: float = 5.0
    receive_limit: int = 100
    axis_account: str = "axis-gateway"
    """Published in ``x-hub-original-user`` for what arrives from the axis."""
    login: str | None = None
    """The connector's broker login (the AMQP ``user_id`` of its publishes)."""
    forward_hub_evidence: bool = False
    legacy_policy: bool = False
    """``[trust] axis_legacy_envelope_signature``, recorded with each hand-over."""
    reconnect_max_s: float = 30.0
    send_attempts: int = 10
    """Failed ``sendEdoc`` attempts of one message *while the axis answers other calls* after
    which it is dead-lettered (``AXIS_UNAVAILABLE``, its attempts recorded) instead of holding
    the gateway queue for ever. A failure counts only when the axis gave a usable answer to
    another call since the message's previous attempt: during an outage nothing counts and
    documents wait, however long it lasts."""
    limits: Limits = field(default_factory=Limits)
    topology: Any = None
    """Declared on every (re)connect, as the intake does (idempotent), so the connector may
    start first."""
    name: str = "edxml-hub axis connector"


@dataclass
class _Effects:
    """What one outbound batch publishes and records before its acks."""

    first: list[Outgoing] = field(default_factory=list)
    documents: list[DocumentIn] = field(default_factory=list)
    events: list[EventIn] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    copies: dict[str, _Copy] = field(default_factory=dict)
    """What each digest's rows are about, should the ledger refuse them (:meth:`_isolate`)."""


@dataclass(frozen=True)
class _Copy:
    """A packet whose ledger rows are being written: dead-lettered for an operator, with
    LEDGER_ROW_REJECTED, if the ledger refuses them."""

    body: bytes
    message_id: str
    routing: str
    """``exchange/routing key`` it was (or is being) published with."""
    sender: str = ""


@dataclass
class _Held:
    """A gateway message the axis did not take yet: its failed attempts in this process. Its
    own backoff, so that the inbound poll and the breaker keep their schedules."""

    backoff: Backoff
    answered: int
    """:attr:`AxisConnector._answered` at its last failed attempt."""
    attempts: int = 0
    counted: int = 0
    """Failed attempts made after the axis answered another call (see ``send_attempts``)."""
    next_at: float = 0.0


def _printable(text: str) -> str:
    """``text`` with every character that is not printable (controls, NUL, lone surrogates,
    which the ledger's databases or a log line may refuse) written as a ``\\u`` escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
                   for c in text)


def _printable_value(value: Any) -> Any:
    if isinstance(value, str):
        return _printable(value)
    if isinstance(value, Mapping):
        return {_printable(str(k)): _printable_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable_value(v) for v in value]
    return value


def _storable(event: EventIn, error: str) -> EventIn:
    """What stands for ``event`` in the ledger when the ledger refused it: the same kind,
    time and document, the message id escaped, reason LEDGER_ROW_REJECTED; the organ id, the
    original reason and the ledger's error in the detail, every text escaped."""
    detail = dict(_printable_value(dict(event.detail)))
    if event.organ_id:
        detail["organ_id"] = _printable(event.organ_id)
    if event.reason:
        detail["refused_reason"] = _printable(event.reason)
    detail["ledger_error"] = _printable(error)[:300]
    return EventIn(event.kind, _printable(event.message_id), event.at, digest=event.digest,
                   organ_id=None, reason=Reason.LEDGER_ROW_REJECTED.value,
                   actor=_printable(event.actor), detail=detail)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


class AxisConnector:
    def __init__(
        self,
        options: ConnectorOptions,
        *,
        axis: AxisApi,
        ledger: LedgerLike,
        directory: Any,
        receipts: Refusals | None,
        breaker: Breaker | None = None,
        metrics: AxisMetrics | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        connector: Callable[[str, str], Connection] = connect,
    ) -> None:
        self.options = options
        self.axis = axis
        self.ledger = ledger
        self.directory = directory
        self.receipts = receipts
        self.breaker = breaker or Breaker()
        self.metrics = metrics or AxisMetrics()
        self.stop = stop or threading.Event()
        self.clock = clock
        self.now = now
        self._connect = connector
        self._sent: OrderedDict[str, str] = OrderedDict()
        """digest → the axis' document id, for what this process handed over."""
        self._held: dict[str, _Held] = {}
        """digest → the failed attempts of a gateway message still in hand."""
        self._answered = 0
        """Usable answers of the axis so far (a held message's failure counts only when this
        moved since its previous attempt)."""
        self._missing: dict[str, int] = {}
        """Listed entry id → rounds in which ``getEdoc`` did not find it (404)."""
        self._head: tuple[Delivery, str] | None = None
        self._queue_checked = 0.0
        self.changed = threading.Condition()
        """Notified after every outbound batch and inbound round (tests wait on it)."""
        self.settled = 0
        self.handed_over = 0
        self.acknowledged = 0
        self.refused_entries = 0
        """Entries of the axis' list refused back to it (``updateStatus fail``)."""

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until :attr:`stop` is set; reconnect with bounded backoff on broker loss."""
        nodes = Failover((self.options.url, *self.options.failover_urls),
                         Backoff(0.2, self.options.reconnect_max_s))
        log.info("axis_connector_started", legacy_envelope_policy=self.options.legacy_policy,
                 axis_account=self.options.axis_account)
        while not self.stop.is_set():
            conn: Connection | None = None
            try:
                conn = self._connect(nodes.url, self.options.name)
                if self.options.topology is not None:
                    conn.declare(self.options.topology)
                nodes.connected()
                self._serve(conn)
            except BrokerUnavailable as exc:
                wait = nodes.lost()
                log.warning("broker_lost", detail=exc.detail[:300], retry_in_s=round(wait, 2))
                if wait:
                    self.stop.wait(wait)
            finally:
                if conn is not None:
                    conn.close()  # what is in hand goes back to the queue
        log.info("axis_connector_stopped", settled=self.settled, handed_over=self.handed_over)

    def _serve(self, conn: Connection) -> None:
        buffer: deque[Delivery] = deque()
        tag = conn.consume(self.options.names.gateway, self.options.prefetch, buffer.append)
        settler = conn.settler()
        next_poll = self.clock()
        while not self.stop.is_set():
            worked = False
            if buffer and self.clock() >= self._send_at(buffer[0]):
                self._send_batch(conn, settler, buffer)
                worked = True
            if self.clock() >= self._poll_at(next_poll):
                self._receive_round(conn)
                next_poll = self.clock() + self.options.poll_interval_s
                worked = True
            self._observe(conn, buffer)
            if worked:
                conn.pump(0)
                continue
            wake = self._poll_at(next_poll)
            if buffer:
                wake = min(wake, self._send_at(buffer[0]))
            conn.pump(min(1.0, max(0.0, wake - self.clock())))
        conn.cancel(tag)

    def _poll_at(self, next_poll: float) -> float:
        """When the next ``getReceivedEdocList`` goes: on its own schedule while the circuit is
        closed — never pushed back by a gateway message's failures, so one letter the axis
        keeps failing cannot stop the inbound direction — and, once the circuit opened, as
        soon as it is half-open: the list call is the probe (a held message, perhaps the
        very one that fails, would be a poor one)."""
        if self.breaker.opened_at is None:
            return next_poll
        return self.breaker.next_call_at()

    def _send_at(self, d: Delivery) -> float:
        """When the gateway message ``d`` may be sent: after the breaker's backoff and its own,
        never while the circuit is open or half-open (the probe is the list call)."""
        if self.breaker.opened_at is not None:
            return math.inf
        held = self._held.get(self._digest(d))
        return max(self.breaker.next_call_at(), held.next_at if held is not None else 0.0)

    def _digest(self, d: Delivery) -> str:
        """SHA-256 of ``d``'s body; the last one is remembered (the loop asks for the head of
        the queue on every turn)."""
        if self._head is None or self._head[0] is not d:
            self._head = (d, _sha256(d.body))
        return self._head[1]

    def _observe(self, conn: Connection, buffer: Sequence[Delivery]) -> None:
        m = self.metrics
        m.set_circuit(self.breaker.state(self.clock()))
        m.held.set(len(buffer))
        if self.clock() - self._queue_checked >= 5.0:
            self._queue_checked = self.clock()
            m.queue.set(conn.queue_depth(self.options.names.gateway))

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[AxisConnector], bool], timeout: float) -> bool:
        """Wait (on a condition, not a sleep) until ``predicate(self)`` holds."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    # -- calls to the axis -------------------------------------------------------------------------
    def _reached(self) -> None:
        self._answered += 1
        self.breaker.success()
        self.metrics.up.set(1)
        self.metrics.last_success.set(time.time())

    def _ask(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call`` the axis client. An exception other than :class:`AxisUnavailable` is a
        bug or an answer nothing foresaw: logged as an error with its type and where it was
        raised, then raised as ``AxisUnavailable("unexpected")`` so the caller backs off as
        for any misbehaving peer, instead of the thread dying and the axis listing the same
        thing again after a restart."""
        try:
            return call(*args, **kwargs)
        except AxisUnavailable:
            raise
        except Exception as exc:
            operation = getattr(call, "__name__", "call")
            frames = traceback.extract_tb(exc.__traceback__)
            where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            text = str(exc).splitlines()[0][:300] if str(exc) else ""
            log.error("axis_call_failed", operation=operation, error_type=type(exc).__name__,
                      detail=text, where=where)
            raise AxisUnavailable("unexpected", f"{operation}: {type(exc).__name__}: "
                                  f"{text}") from exc

    def _failed(self, exc: AxisUnavailable) -> None:
        now = self.clock()
        if isinstance(exc, AxisUnauthorized):
            self.breaker.trip(now)
            log.error("axis_login_refused", detail=exc.detail[:300])
        else:
            self.breaker.failure(now)
        state = self.breaker.state(now)
        self.metrics.up.set(0)
        self.metrics.failures.labels(exc.kind).inc()
        self.metrics.set_circuit(state)
        log.warning("axis_unavailable", kind=exc.kind, detail=exc.detail[:300],
                    failures=self.breaker.failures, circuit=state.name.lower(),
                    retry_in_s=round(max(0.0, self.breaker.next_call_at() - now), 2))

    # -- outbound ------------------------------------------------------------------------------
    def _send_batch(self, conn: Connection, settler: Settler, buffer: deque[Delivery]) -> None:
        effects = _Effects()
        done: list[int] = []
        for delivery in list(buffer)[: self.options.batch_max]:
            if self.clock() < self._send_at(delivery):
                break
            if not self._outbound_one(delivery, effects):
                break  # held: it stays first in line, nothing behind it overtakes it
            done.append(delivery.tag)
        if effects.first:
            conn.wait(conn.send(effects.first))
        self._write(conn, effects.documents, effects.events, effects.copies)
        if done:
            settler.ack(done)
            for _ in done:
                buffer.popleft()
        for answer in effects.answers:
            self.metrics.sent.labels(answer).inc()
        self.settled += len(done)
        self._notify()

    def _outbound_one(self, d: Delivery, eff: _Effects) -> bool:
        """Decide and do what one gateway message needs; False when it must wait."""
        at = self.now()
        digest = self._digest(d)
        mid = d.message_id or digest
        eff.copies.setdefault(digest, _Copy(d.body, mid, f"{d.exchange}/{d.routing_key}"))
        try:
            packet = parse_packet(d.body, self.options.limits)
        except EnvelopeRefused as exc:
            # The hub published it, so it parsed once: a bug or a changed limit. Park it for
            # an operator; nobody to tell.
            self._dead_letter(d, None, digest, mid, at, f"{exc.reason.value}: {exc.detail}",
                              "", None, eff, reason=exc.reason)
            return True
        target = self._target(d, packet)
        receipt_kind = _text(d.headers.get(Headers.RECEIPT))
        if receipt_kind in HUB_EVIDENCE and not self.options.forward_hub_evidence:
            return self._skip(eff, mid, at, digest, target, receipt_kind,
                              "hub evidence: kept in the ledger, not sent")
        history = self._history(digest)
        if isinstance(packet, Envelope) and any(
                e.kind is EventKind.AXIS_RECEIVED for e in history):
            return self._skip(eff, mid, at, digest, target, receipt_kind,
                              "came from the national axis, which delivers to its other "
                              "recipients itself")
        doc_id = self._sent.get(digest) or next(
            (str(e.detail.get("axis_doc_id", "")) for e in history
             if e.kind is EventKind.AXIS_SENT), None)
        message_type = message_type_of(packet)
        if doc_id:
            self._record_sent(eff, mid, at, digest, target, doc_id, "already_sent",
                              message_type, 0)
            return True
        held = self._held.get(digest)
        attempt = (held.attempts if held is not None else 0) + 1
        try:
            answer = self._ask(self.axis.send, d.body, sender=packet.sender.organ_id,
                               message_type=message_type, digest=digest)
        except AxisUnavailable as exc:
            return self._retry_later(eff, exc, d, packet, mid, at, digest, target, attempt)
        verdict = judge_send(answer)
        if verdict is Verdict.UNAUTHORIZED:
            return self._retry_later(eff, AxisUnauthorized(answer.summary), d, packet, mid, at,
                                     digest, target, attempt)
        if verdict is Verdict.TRANSIENT:
            # 429 and 408 included: the client's Answer carries no Retry-After header, so the
            # message's own backoff and the breaker's decide when it goes again.
            kind = f"http_{answer.http_status}" if answer.http_status >= 500 else "answer"
            return self._retry_later(eff, AxisUnavailable(kind, answer.summary), d, packet,
                                     mid, at, digest, target, attempt)
        self._reached()
        self._held.pop(digest, None)
        if verdict is Verdict.REFUSED:
            detail = f"the national axis refused it: {answer.summary}"
            self._dead_letter(d, packet, digest, mid, at, detail, target, answer, eff)
            eff.answers.append("refused")
            log.warning("axis_refused", message_id=mid, digest=digest[:16],
                        axis_code=answer.error_code, http_status=answer.http_status)
            return True
        self._record_sent(eff, mid, at, digest, target, answer.doc_id, verdict.value,
                          message_type, attempt)
        return True

    def _target(self, d: Delivery, packet: Envelope | StatusPacket) -> str:
        """The body behind the axis this message is for (the recipient; for a status or
        receipt, the original sender it answers)."""
        if isinstance(packet, StatusPacket):
            return packet.response_for.organ_id
        recipient = _text(d.headers.get(Headers.RECIPIENT))
        if recipient:
            return recipient
        mid = d.message_id or ""
        return mid.split(":", 1)[1] if ":" in mid else ""

    def _history(self, digest: str) -> list[StoredEvent]:
        return self._while_ledger_down(None, lambda: self.ledger.events(digest=digest))

    def _skip(self, eff: _Effects, mid: str, at: datetime, digest: str, target: str,
              kind: str, why: str) -> bool:
        eff.events.append(EventIn(EventKind.AXIS_SKIPPED, mid, at, digest=digest,
                                  organ_id=None, detail={"recipient": target, "why": why,
                                                         "receipt": kind}))
        eff.answers.append("skipped")
        return True

    def _record_sent(self, eff: _Effects, mid: str, at: datetime, digest: str, target: str,
                     doc_id: str, answer: str, message_type: MessageType, attempt: int) -> None:
        eff.events.append(EventIn(EventKind.AXIS_SENT, mid, at, digest=digest,
                                  organ_id=target or None,
                                  detail={"axis_doc_id": doc_id, "answer": answer,
                                          "message_type": message_type.value,
                                          "attempt": attempt}))
        eff.answers.append(answer)
        self._sent[digest] = doc_id
        self._sent.move_to_end(digest)
        while len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)
        log.debug("axis_sent", message_id=mid, digest=digest[:16], answer=answer,
                  axis_doc_id=doc_id)

    def _retry_later(self, eff: _Effects, exc: AxisUnavailable, d: Delivery,
                     packet: Envelope | StatusPacket, mid: str, at: datetime, digest: str,
                     target: str, attempt: int) -> bool:
        """The axis did not take ``d``: keep it in hand with a backoff of its own (False), or,
        once it failed ``send_attempts`` times while the axis answered other calls, dead-letter
        it with AXIS_UNAVAILABLE (True: settled) — the letters behind it may then leave."""
        was_answered = self._answered
        self._failed(exc)
        now = self.clock()
        held = self._held.get(digest)
        if held is None:
            # Its first failure proves nothing about the letter: there was no attempt before.
            held = _Held(Backoff(self.breaker.base_s, self.breaker.max_s), was_answered)
            self._held[digest] = held
            while len(self._held) > max(1000, 4 * self.options.prefetch):
                del self._held[next(iter(self._held))]  # settled elsewhere (another connector)
        elif was_answered > held.answered and not isinstance(exc, AxisUnauthorized):
            held.counted += 1
        held.attempts, held.answered = attempt, was_answered
        held.next_at = now + held.backoff.next()
        if held.counted >= self.options.send_attempts:
            self._held.pop(digest, None)
            detail = (f"{Reason.AXIS_UNAVAILABLE.value} after {attempt} attempts "
                      f"({held.counted} while the axis answered other calls): {exc.detail}")
            self._dead_letter(d, packet, digest, mid, at, detail, target, None, eff,
                              reason=Reason.AXIS_UNAVAILABLE, attempts=attempt, parked=True)
            eff.answers.append("attempts_exhausted")
            log.error("axis_send_abandoned", message_id=mid, digest=digest[:16],
                      attempts=attempt, kind=exc.kind, detail=exc.detail[:300])
            return True
        # While the circuit is open the probe (a list call) must succeed first.
        retry_at = (self._send_at(d) if self.breaker.opened_at is None
                    else self.breaker.next_call_at())
        eff.events.append(EventIn(
            EventKind.RETRY_SCHEDULED, mid, at, digest=digest, organ_id=None,
            reason=Reason.AXIS_UNAVAILABLE.value,
            detail={"recipient": target, "attempt": attempt, "answer": exc.detail[:300],
                    "kind": exc.kind, "circuit": self.breaker.state(now).name.lower(),
                    "retry_in_s": round(max(0.0, retry_at - now), 3)}))
        return False

    def _dead_letter(self, d: Delivery, packet: Envelope | StatusPacket | None, digest: str,
                     mid: str, at: datetime, detail: str, target: str, answer: Answer | None,
                     eff: _Effects, *, reason: Reason = Reason.AXIS_REFUSED, attempts: int = 1,
                     parked: bool = False) -> None:
        """Dead-letter with AXIS_REFUSED (the axis' words in the detail), record it, and send
        the sender a signed refusal when it is a body of this hub. ``parked``: the axis never
        took it (attempts ran out), which is no verdict on the document: the sender is told
        nothing until an operator replays or discards it, as for the intake's parked
        messages."""
        names = self.options.names
        sender = packet.sender.organ_id if packet is not None else ""
        headers = {k: v for k, v in d.headers.items()
                   if not k.startswith(("x-death", "x-delivery-count", "x-first-death"))}
        headers.update({
            Headers.REASON: reason.value, Headers.REASON_TEXT_VI: reason.vi,
            Headers.REASON_TEXT_EN: reason.en, Headers.DETAIL: detail[:1000],
            Headers.FIRST_FAILURE: at.isoformat(), Headers.ATTEMPTS: attempts,
            Headers.ORIGINAL_ROUTING: f"{d.exchange}/{d.routing_key}",
            Headers.SENDER: sender, Headers.RECIPIENT: target, Headers.DIGEST: digest,
        })
        if parked:
            headers[Headers.FIRST_REASON] = reason.value
        eff.first.append(Outgoing(names.dlx, reason.value, d.body, headers,
                                  message_id=mid, content_type="application/octet-stream"))
        axis_detail: dict[str, Any] = {"detail": detail[:500]}
        if answer is not None:
            axis_detail.update({"http_status": answer.http_status,
                                "axis_error_code": answer.error_code,
                                "axis_error_desc": answer.error_desc[:300]})
        eff.events.append(EventIn(EventKind.REJECTED, mid, at, digest=digest,
                                  organ_id=sender or None, reason=reason.value,
                                  detail=axis_detail))
        eff.events.append(EventIn(EventKind.DEAD_LETTERED, mid, at, digest=digest,
                                  organ_id=target or None, reason=reason.value,
                                  detail={"queue": names.dlq, "attempts": attempts}))
        if packet is not None and not parked and not _text(d.headers.get(Headers.RECEIPT)):
            self._tell_sender(packet, d.body, digest, at, eff)

    def _tell_sender(self, packet: Envelope | StatusPacket, raw: bytes, digest: str,
                     at: datetime, eff: _Effects) -> None:
        """The hub's signed refusal to the body that sent the document (or the status) — only
        to a body of this hub: a refusal is never bounced back towards the axis."""
        sender = packet.sender.organ_id
        routes = route_status(None, sender, self.directory, at=at,
                              province=self.options.province)
        direct = [r for r in routes.deliveries if r.via == "direct"]
        if not direct or self.receipts is None:
            log.warning("axis_refusal_untold", sender=sender, digest=digest[:16])
            return
        negative = self.receipts.rejected(raw, packet, Reason.AXIS_REFUSED, at)
        if negative is None:
            log.warning("axis_refusal_untold", sender=sender, digest=digest[:16],
                        why="no operator key")
            return
        issuer, receipt = negative
        receipt_digest = _sha256(receipt)
        headers = {Headers.RECEIPT: "rejected", Headers.ORIGINAL: digest,
                   Headers.ISSUER: issuer, Headers.REASON: Reason.AXIS_REFUSED.value}
        for r in direct:
            eff.first.append(Outgoing(self.options.names.deliver, r.routing_key, receipt,
                                      headers, message_id=f"{digest}:rejected:{issuer}"))
        eff.documents.append(DocumentIn(
            sender=issuer, document_id=f"receipt:rejected:{receipt_digest[:32]}",
            digest=receipt_digest, kind="receipt", raw=receipt, received_at=at,
            recipients=(sender,), links_to=digest, code="rejected"))
        eff.events.append(EventIn(EventKind.RECEIPT_ISSUED, f"{digest}:rejected:{issuer}", at,
                                  digest=digest, organ_id=issuer,
                                  reason=Reason.AXIS_REFUSED.value,
                                  detail={"kind": "rejected", "receipt_digest": receipt_digest}))

    # -- inbound -------------------------------------------------------------------------------
    def _receive_round(self, conn: Connection) -> None:
        # Entries the axis lists but cannot find take no place of the documents behind them.
        limit = self.options.receive_limit + min(len(self._missing), self.options.receive_limit)
        try:
            listed = self._ask(self.axis.received, limit)
        except AxisUnavailable as exc:
            self._failed(exc)
            return
        self._reached()
        listed_ids = {item.id for item in listed}
        self._missing = {k: n for k, n in self._missing.items() if k in listed_ids}
        if not listed:
            return
        names = self.options.names
        outgoing: list[Outgoing] = []
        handed: list[EventIn] = []
        copies: dict[str, _Copy] = {}
        to_tell: list[tuple[Listed, StatusWord]] = []  # inbox: the hub holds it; fail: refused
        for item in listed:
            if not item.usable:
                self._unusable(item, to_tell)
                continue
            try:
                raw = self._ask(self.axis.fetch, item.id)
            except AxisUnavailable as exc:
                if exc.kind == "not_found":
                    self._not_found(item, exc, to_tell)
                    continue
                if exc.kind == "too_large":
                    # Larger than any envelope the hub accepts (the client stopped reading at
                    # its cap): refused back now, as every later round would meet it again
                    # first and the entries behind it would never be fetched.
                    self._unusable(replace(item, problem=f"getEdoc's answer is larger than the"
                                                         f" hub accepts: {exc.detail[:200]}"),
                                   to_tell)
                    continue
                self._failed(exc)
                break
            self._missing.pop(item.id, None)
            digest = _sha256(raw)
            to_tell.append((item, StatusWord.INBOX))
            history = self._history(digest)
            if any(e.kind is EventKind.AXIS_RECEIVED for e in history):
                continue  # handed over before (a crash came before the axis' acknowledgement)
            mid = f"axis:{item.id}"
            key = STATUS_KEY if item.message_type == MessageType.STATUS.value else ENVELOPE_KEY
            copies[digest] = _Copy(raw, mid, f"{names.inbound}/{key}", item.sender)
            outgoing.append(Outgoing(
                names.inbound, key, raw,
                {Headers.ORIGINAL_USER: self.options.axis_account, Headers.AXIS_DOC_ID: item.id},
                message_id=mid, user_id=self.options.login))
            handed.append(EventIn(EventKind.AXIS_RECEIVED, mid, self.now(), digest=digest,
                                  organ_id=item.sender or None,
                                  detail={"axis_doc_id": item.id,
                                          "message_type": item.message_type,
                                          "to": list(item.to)[:20], "bytes": len(raw),
                                          "legacy_envelope_policy": self.options.legacy_policy}))
        if outgoing:
            conn.wait(conn.send(outgoing))  # the intake queue holds them durably
        self._write(conn, [], handed, copies)
        self.handed_over += len(handed)
        self.metrics.received.inc(len(handed))
        acked = self._tell(to_tell)
        self._write(conn, [], acked)
        refused = sum(1 for e in acked if e.detail["status"] == StatusWord.FAIL.value)
        self.acknowledged += len(acked) - refused
        self.refused_entries += refused
        if handed:
            log.info("axis_documents_received", handed_over=len(handed),
                     acknowledged=len(acked) - refused)
        self._notify()

    def _unusable(self, item: Listed, to_tell: list[tuple[Listed, StatusWord]]) -> None:
        """An entry the connector cannot use as listed: refused back to the axis by its id
        (``fail``: a failed transfer, so it is neither listed again forever nor lost without
        a word), or, without a usable id, only logged — there is nothing to name it by."""
        if item.id:
            log.warning("axis_listing_entry_refused", axis_doc_id=item.id, why=item.problem[:300])
            to_tell.append((item, StatusWord.FAIL))
        else:
            log.warning("axis_listing_entry_skipped", why=item.problem[:300])

    def _not_found(self, item: Listed, exc: AxisUnavailable,
                   to_tell: list[tuple[Listed, StatusWord]]) -> None:
        """The axis lists ``item`` but its ``getEdoc`` does not find it (404: purged or
        expired there). Logged each round; after :data:`NOT_FOUND_ROUNDS` rounds refused back
        to the axis as an unusable entry is, so it is not listed for ever."""
        rounds = self._missing.get(item.id, 0) + 1
        self._missing[item.id] = rounds
        log.warning("axis_entry_not_found", axis_doc_id=_printable(item.id)[:200],
                    rounds=rounds, detail=exc.detail[:300])
        if rounds >= NOT_FOUND_ROUNDS:
            self._unusable(replace(item, problem=f"getEdoc did not find it (HTTP 404) in "
                                                 f"{rounds} rounds: {exc.detail[:200]}"), to_tell)

    def _tell(self, to_tell: Sequence[tuple[Listed, StatusWord]]) -> list[EventIn]:
        """``updateStatus`` for each entry, in order; the rows of what the axis took. Stops at
        the first failure (the rest stay listed and are told on a later round)."""
        rows: list[EventIn] = []
        for item, word in to_tell:
            try:
                answer = self._ask(self.axis.update_status, item.id, word)
            except AxisUnavailable as exc:
                if exc.kind != "not_found":
                    self._failed(exc)
                    break
                continue
            detail: dict[str, Any] = {"axis_doc_id": item.id, "status": word.value,
                                      "answer": answer.summary[:200]}
            if word is StatusWord.FAIL:
                detail["why"] = item.problem[:300]
            rows.append(EventIn(EventKind.AXIS_ACKNOWLEDGED, f"axis:{item.id}", self.now(),
                                organ_id=item.sender or None, detail=detail))
        return rows

    # -- the ledger ------------------------------------------------------------------------------
    def _write(self, conn: Connection, documents: Sequence[DocumentIn],
               events: Iterable[EventIn], copies: Mapping[str, _Copy] | None = None) -> None:
        rows = list(events)
        if not documents and not rows:
            return
        try:
            self._while_ledger_down(conn, lambda: self.ledger.write(documents, rows))
        except LedgerRowRejected as exc:
            self._isolate(conn, documents, rows, exc, copies or {})

    def _isolate(self, conn: Connection, documents: Sequence[DocumentIn],
                 events: Sequence[EventIn], refused: LedgerRowRejected,
                 copies: Mapping[str, _Copy]) -> None:
        """The ledger refused rows for what they hold (PostgreSQL stores no NUL character, and
        no database a lone surrogate, both valid JSON in an axis answer) — a refusal no retry
        can change. What the rows record has happened (published to the intake, handed to the
        axis, told to it), so, as the intake does (``consumers/intake.py`` ``_isolate``): the
        rows are written one by one; each refused event is replaced by one the ledger can
        hold — the same kind, document and message, reason LEDGER_ROW_REJECTED, its texts
        escaped into the detail — so that the next round sees the hand-over and publishes
        nothing twice; a copy of the packet is dead-lettered for an operator; it is logged;
        and the connector goes on instead of dying and repeating the same entry after every
        restart."""
        log.error("ledger_batch_refused", documents=len(documents), events=len(events),
                  error=refused.detail.split(":")[0][:100])
        at = self.now()
        copied: set[str] = set()
        for document in documents:
            if self._refused_rows(conn, [document], []) is not None:
                log.error("ledger_refusal_unrecorded", kind=document.kind,
                          digest=document.digest[:16])
        for event in events:
            error = self._refused_rows(conn, [], [event])
            if error is None:
                continue
            log.error("ledger_row_refused", kind=event.kind.value,
                      message_id=_printable(event.message_id)[:200],
                      digest=(event.digest or "")[:16], error=error.split(":")[0][:100])
            digest = event.digest or ""
            copy = copies.get(digest)
            if copy is not None and digest not in copied:
                copied.add(digest)
                conn.wait(conn.send([self._operator_copy(copy, digest, at, error)]))
            if self._refused_rows(conn, [], [_storable(event, error)]) is not None:
                log.error("ledger_refusal_unrecorded", kind=event.kind.value,
                          message_id=_printable(event.message_id)[:200])

    def _refused_rows(self, conn: Connection, documents: Sequence[DocumentIn],
                      events: Sequence[EventIn]) -> str | None:
        """Write rows in a transaction of their own (held while the ledger is down); the
        ledger's reason when it refuses them for what they hold."""
        try:
            self._while_ledger_down(conn, lambda: self.ledger.write(documents, events))
        except LedgerRowRejected as exc:
            return exc.detail
        return None

    def _operator_copy(self, copy: _Copy, digest: str, at: datetime, error: str) -> Outgoing:
        reason = Reason.LEDGER_ROW_REJECTED
        headers: dict[str, Any] = {
            Headers.REASON: reason.value, Headers.REASON_TEXT_VI: reason.vi,
            Headers.REASON_TEXT_EN: reason.en, Headers.DETAIL: _printable(error)[:1000],
            Headers.FIRST_FAILURE: at.isoformat(), Headers.ATTEMPTS: 1,
            Headers.ORIGINAL_ROUTING: copy.routing, Headers.SENDER: _printable(copy.sender),
            Headers.DIGEST: digest,
        }
        return Outgoing(self.options.names.dlx, reason.value, copy.body, headers,
                        message_id=_printable(copy.message_id),
                        content_type="application/octet-stream")

    def _while_ledger_down(self, conn: Connection | None, step: Callable[[], T]) -> T:
        """Run ``step``; while the ledger is unavailable keep everything in hand (nothing is
        acknowledged, to the broker or to the axis) and try again with bounded backoff."""
        backoff = 0.1
        while True:
            try:
                return step()
            except TransientError as exc:
                if exc.reason is not Reason.LEDGER_UNAVAILABLE:
                    raise
                log.error("ledger_unavailable", detail=exc.detail[:200],
                          retry_in_s=round(backoff, 2))
                if self.stop.is_set():
                    raise BrokerUnavailable("stopping while the ledger is down") from None
                if conn is not None:
                    conn.sleep(backoff)
                else:
                    self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

