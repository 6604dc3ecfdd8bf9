"""The intake pipeline: what happens to each delivery, as data.

``process_batch`` takes the deliveries of one group commit and returns a :class:`BatchPlan`:
the messages to publish (the packets as received, then the signed receipts), the ledger rows
to write in one transaction, and the deliveries to acknowledge afterwards. It imports neither
pika nor SQLAlchemy: the consumer glue (:mod:`hub.consumers.intake`) executes the plan in the
only order that loses nothing — publish and confirm, commit the ledger, publish the receipts
it recorded and confirm, then ack.

Per delivery (Decision 28/2018/QĐ-TTg; QCVN 102:2016):

1. parse through the hardened entry point (reason codes for every refusal);
2. check the AMQP ``user_id`` belongs to the ``From`` organization (RabbitMQ validates
   ``user_id`` against the login, so this binds the publisher to its organization);
3. detect duplicates by (sender, DocumentId, digest) — a status by its digest — in the ledger
   *and* in this batch, before anything is judged again (a certificate revoked since does not
   refuse bytes already accepted);
4. validate the signature (specialized roots only, revocation, who may sign, PDFs);
5. route (pure function) and plan one message per recipient with a deterministic
   ``message_id`` (``digest:recipient``) so that recipients can drop a republished copy;
6. plan receipts: ``01`` signed as the recipient organization when the hub holds its key
   (published only after the delivery is confirmed) and accepted/rejected-by-hub signed as
   the hub operator.

Exactly-once at the recipient is *at-least-once publishing + idempotent receivers*: a crash
between the publish confirm and the ledger commit republishes under the same message id, and
:mod:`hub.client` drops what it has seen. The hub itself never republishes to a recipient the
ledger records as delivered.

A republished copy must be the same bytes, and the ledger's: deliveries are (the exact bytes
received), receipts would not be (they are signed with the time of the plan). So receipts are
published only *after* the ledger commit that records them (:attr:`BatchPlan.receipts`): a
receipt that ever left the hub is in the ledger. One query per batch
(:meth:`LedgerView.issued`) finds the receipts already recorded about the batch's packets (a
crash after the commit, before the ack), and those are published again instead of new ones.
(Receipts staged in the outbox by hubs before this order are found and reused the same way; a
redelivered packet whose receipts were staged is planned at the time they state.)
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, cast

from structlog.contextvars import bind_contextvars

from hub.consumers.settlement import Action, Disposition, RetryPolicy, decide
from hub.edxml import EnvelopeRefused, Limits, parse_packet
from hub.edxml.model import BusinessDocType, Envelope, StatusPacket
from hub.errors import PermanentError, TransientError
from hub.ledger import DocumentIn, EventIn, EventKind, IssuedReceipt, Refusal, StoredDocument
from hub.ledger.records import of_packet
from hub.logs import get_logger
from hub.messages import Delivery, Headers, Outgoing
from hub.reasons import Reason
from hub.receipts.content import QCVN_STATUS_RANGE, carries_hub_evidence
from hub.routing import body_of, entry_of, route, route_former, route_status
from hub.topology import Names, inbox_key, status_key

log = get_logger("hub.consumers.plan")



def _undo(plan: BatchPlan, pending: dict[tuple[str, str], str], rows: tuple[int, int, int],
          planned: tuple[int, int, int, int]) -> None:
    """Take back what planning one delivery added before it raised (a receipt the token could
    not sign after the envelope was routed and recorded): its failure is then planned alone,
    and its retry finds nothing of it delivered or recorded. ``pending`` gains at most one
    entry a delivery, the last inserted."""
    del plan.documents[rows[0]:], plan.events[rows[1]:], plan.receipts[rows[2]:]
    del plan.first[planned[0]:], plan.outbox[planned[1]:], plan.outcomes[planned[2]:]
    while len(pending) > planned[3]:
        pending.popitem()


def effective_user(delivery: Delivery, trusted: frozenset[str]) -> str | None:
    """Who really published: the AMQP user_id, or for a message the hub (or an operator's
    replay, both trusted logins) republished, the original publisher it recorded."""
    user = delivery.user_id
    if user is not None and user in trusted and Headers.ORIGINAL_USER in delivery.headers:
        # A republished message speaks for the publisher it records, and only for it: one
        # published without a user_id (recorded as "") stays without one, whoever replays it.
        original = delivery.headers[Headers.ORIGINAL_USER]
        if isinstance(original, bytes):
            original = original.decode("utf-8", "replace")
        return str(original) or None
    return user


class LedgerView(Protocol):
    def find_document(self, sender: str, document_id: str) -> Any: ...
    def find_documents(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]: ...
    def document_by_digest(self, digest: str) -> Any: ...
    def delivered_to(self, digest: str) -> frozenset[str]: ...
    def issued(self, abouts: Iterable[str]) -> Mapping[str, Sequence[IssuedReceipt]]: ...


class InFlightView:
    """The ledger as it will be once the batches in flight are committed (read-only).

    The consumer plans batch *k+1* while batch *k* still waits for confirms and its ledger
    transaction; planning against this view is planning against the ledger after *k*'s commit:
    what *k* records is found first in the ledger, then in *k*'s plan (a document the ledger
    already holds keeps its ledger row, as :meth:`hub.ledger.Ledger.write` keeps it).
    """

    def __init__(self, ledger: LedgerView, plans: Sequence[BatchPlan]) -> None:
        self.ledger = ledger
        self.used = False
        """Whether some answer came from a plan in flight (not yet from the ledger)."""
        self._by_key: dict[tuple[str, str], StoredDocument] = {}
        self._by_digest: dict[str, StoredDocument] = {}
        self._delivered: dict[str, set[str]] = {}
        self._receipts_about = {r.about for plan in plans for r in plan.outbox}
        for plan in plans:
            for d in plan.documents:
                if d.kind == "refused":
                    continue  # the ledger's duplicate look-ups do not see refused packets
                doc = StoredDocument(
                    digest=d.digest, kind=d.kind, sender=d.sender, document_id=d.document_id,
                    code=d.code, recipients=tuple(d.recipients), received_at=d.received_at,
                    links_to=d.links_to, size=len(d.raw), seq=0)
                self._by_key.setdefault((d.sender, d.document_id), doc)
                self._by_digest.setdefault(d.digest, doc)
            for e in plan.events:
                if e.kind is EventKind.DELIVERED and e.digest and e.organ_id:
                    self._delivered.setdefault(e.digest, set()).add(e.organ_id)

    def find_document(self, sender: str, document_id: str) -> Any:
        found = self.ledger.find_document(sender, document_id)
        if found is None:
            found = self._by_key.get((sender, document_id))
            self.used = self.used or found is not None
        return found

    def find_documents(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        wanted = list(keys)
        found = self.ledger.find_documents(wanted)
        for key in wanted:
            if key not in found and key in self._by_key:
                found[key] = self._by_key[key]
                self.used = True
        return found

    def document_by_digest(self, digest: str) -> Any:
        found = self.ledger.document_by_digest(digest)
        if found is None:
            found = self._by_digest.get(digest)
            self.used = self.used or found is not None
        return found

    def delivered_to(self, digest: str) -> frozenset[str]:
        stored = self.ledger.delivered_to(digest)
        planned = frozenset(self._delivered.get(digest, ())) - stored
        self.used = self.used or bool(planned)
        return stored | planned

    def issued(self, abouts: Iterable[str]) -> Mapping[str, Sequence[IssuedReceipt]]:
        wanted = list(abouts)
        found = {a: list(rs) for a, rs in self.ledger.issued(wanted).items()}
        # A receipt a batch in flight issued about one of these packets is not recorded yet
        # (and with a signer process may not be signed yet): the batch leans on it, and the
        # consumer plans it again once that batch is committed.
        for about in set(wanted) & self._receipts_about:
            if not found.get(about):
                self.used = True
        return found


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why a step refuses the packet (turned into a dead letter by :meth:`Pipeline._fail`)."""

    reason: Reason
    detail: str
    report: Any = None


class Validator(Protocol):
    def __call__(self, packet: Envelope | StatusPacket, at: datetime) -> Any: ...


class ReceiptIssuer(Protocol):
    def accepted(self, envelope: Envelope, at: datetime) -> tuple[str, bytes] | None: ...
    def rejected(self, raw: bytes, packet: Envelope | StatusPacket | None, reason: Reason,
                 at: datetime, *, publisher: str | None = None,
                 digest: str | None = None) -> tuple[str, bytes] | None: ...
    def received(self, envelope: Envelope, recipient: str, at: datetime) -> bytes | None: ...
    def countersign(self, status: StatusPacket, at: datetime) -> tuple[str, bytes] | None: ...


@dataclass(frozen=True)
class PipelineConfig:
    names: Names
    limits: Limits
    retry: RetryPolicy
    province: str
    check_user_id: bool = True
    trusted_publishers: frozenset[str] = frozenset()
    """Broker users allowed to publish for any organization (the hub itself, an operator's
    replay) — never the national-axis connector's, which speaks for no local body."""
    hub_user: str | None = None
    """The hub's own broker login: retries and replays are republished under it, carrying the
    original publisher in ``x-hub-original-user`` (only trusted logins may speak for others)."""

    @functools.cached_property
    def trusted(self) -> frozenset[str]:
        """The logins that may publish for any organization: the trusted publishers and the
        hub's own (asked twice per delivery: worked out once)."""
        hub = frozenset({self.hub_user}) if self.hub_user else frozenset()
        return self.trusted_publishers | hub


@dataclass
class BatchPlan:
    """What the glue executes: publish phase 1, write, publish the receipts, ack."""

    first: list[Outgoing] = field(default_factory=list)
    """Deliveries, forwarded statuses, dead letters and retries: the bytes as received, sent
    before the ledger commit (a copy sent again after a crash is the same bytes)."""
    receipts: list[Outgoing] = field(default_factory=list)
    """Every signed receipt, published only once the ledger commit recorded it (and so after
    phase 1 is confirmed, as "01 đã đến" must be)."""
    documents: list[DocumentIn] = field(default_factory=list)
    events: list[EventIn] = field(default_factory=list)
    ack: list[int] = field(default_factory=list)
    outcomes: list[tuple[Delivery, Disposition]] = field(default_factory=list)
    leans_on_in_flight: bool = False
    """Planned on what a batch in flight will record (a duplicate of, a recall of, a status
    about one of its documents): publish nothing of it before that batch is committed."""
    spans: list[RowSpan] = field(default_factory=list)
    """Which ledger rows each delivery planned, in order (to isolate a row the ledger refuses)."""
    outbox: list[IssuedReceipt] = field(default_factory=list)
    """Every signed receipt of the plan, exactly as it will be published (and recorded)."""

    @property
    def release(self) -> list[str]:
        """Outbox rows the batch's ledger commit deletes: receipts a hub before the
        commit-then-publish order staged about these packets, now recorded."""
        return [r.message_id for r in self.outbox]

    def rows_of(self, span: RowSpan) -> tuple[list[DocumentIn], list[EventIn]]:
        return (self.documents[span.documents[0]:span.documents[1]],
                self.events[span.events[0]:span.events[1]])

    def receipts_of(self, span: RowSpan) -> list[Outgoing]:
        return self.receipts[span.receipts[0]:span.receipts[1]]


@dataclass(frozen=True, slots=True)
class RowSpan:
    """The ledger rows one delivery planned: ``documents[a:b]`` and ``events[c:d]``."""

    delivery: Delivery
    documents: tuple[int, int]
    events: tuple[int, int]
    receipts: tuple[int, int] = (0, 0)
    """``receipts[a:b]`` of the plan: published only if the delivery's rows are recorded."""


def _now() -> datetime:
    return datetime.now(UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Bound:
    """``structlog.contextvars.bound_contextvars`` without reading the whole context on the
    way in (a generator-based context manager that does, per delivery): on exit, the values
    bound before, structlog's "unbound" ``...`` where there were none."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, **values: Any) -> None:
        self._values = values
        self._tokens: Mapping[str, contextvars.Token[Any]] = {}

    def __enter__(self) -> None:
        self._tokens = bind_contextvars(**self._values)

    def __exit__(self, *_exc: object) -> None:
        bind_contextvars(**{k: ... if t.old_value is contextvars.Token.MISSING else t.old_value
                            for k, t in self._tokens.items()})


RECIPIENT_STATUS_CODES = frozenset({"01", "02", "03", "04", "05", "06", "15", "16"})
"""QCVN 102 status codes only a recipient of the document sends (arrived, rejected, accepted,
assigned, in progress, finished; agreeing to or refusing a recall)."""
SENDER_STATUS_CODES = frozenset({"13"})
"""QCVN 102 status codes only the document's sender sends (recall). The unused codes (07-12,
14) pass through from either party."""

_HUB_HEADER = "x-hub-"
"""The prefix of the headers that carry the hub's own facts (:class:`~hub.messages.Headers`)."""


def _header_int(headers: Mapping[str, Any], name: str) -> int:
    try:
        return int(headers.get(name, 0) or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


class Pipeline:
    """Plans what happens to each delivery. Stateless between batches."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        directory: Any,
        ledger: LedgerView,
        validate: Validator,
        receipts: ReceiptIssuer,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.config = config
        self.directory = directory
        self.ledger = ledger
        self.validate = validate
        self.receipts = receipts
        self.clock = clock
        self._known: dict[tuple[str, str], Any] = {}
        self._issued: dict[str, list[IssuedReceipt]] = {}
        self._view: LedgerView = ledger
        self._log: Any = log
        """The module's logger; during a batch, one logger bound from it for the whole batch
        (what each call on the module's lazy proxy would assemble again)."""

    # -- the batch ---------------------------------------------------------------------------
    def process_batch(self, deliveries: Sequence[Delivery],
                      in_flight: Sequence[BatchPlan] = ()) -> BatchPlan:
        """Plan a batch. Raises :class:`TransientError` (LEDGER_UNAVAILABLE) when the ledger
        cannot be read: the caller holds the batch unacknowledged and tries again.

        ``in_flight``: plans published but not yet committed; the batch is planned as if
        their ledger transactions had committed (:class:`InFlightView`)."""
        view = InFlightView(self.ledger, in_flight) if in_flight else None
        self._view = view or self.ledger
        self._log = log.bind()
        try:
            plan = self._plan_batch(deliveries)
        finally:
            self._view = self.ledger  # keep no plan alive between batches
            self._issued = {}
            self._log = log
        plan.leans_on_in_flight = view is not None and view.used
        return plan

    def _plan_batch(self, deliveries: Sequence[Delivery]) -> BatchPlan:
        plan = BatchPlan()
        deliveries = [self._believed(d) for d in deliveries]
        pending: dict[tuple[str, str], str] = {}  # (sender, document_id) -> digest, this batch
        parsed: dict[int, Envelope | StatusPacket | EnvelopeRefused] = {}
        for delivery in deliveries:
            try:
                parsed[delivery.tag] = parse_packet(delivery.body, self.config.limits)
            except EnvelopeRefused as exc:
                parsed[delivery.tag] = exc
        # One ledger query for the whole batch's duplicate check (not one per envelope).
        keys = [(p.sender.organ_id, p.document_id) for p in parsed.values()
                if isinstance(p, Envelope)]
        self._known = self._view.find_documents(keys) if keys else {}
        # And one for the receipts already issued about these packets (a crash after they
        # were published): they are published again as they were, never signed anew.
        abouts = {d.tag: (p.digest if isinstance(p, Envelope | StatusPacket)
                          else _sha256(d.body)) for d, p in
                  ((d, parsed[d.tag]) for d in deliveries)}
        self._issued = {a: list(rs) for a, rs in self._view.issued(abouts.values()).items()}
        for delivery in deliveries:
            at = self._time_of(delivery, abouts[delivery.tag])
            attempts = _header_int(delivery.headers, Headers.ATTEMPTS) + 1
            rows = (len(plan.documents), len(plan.events), len(plan.receipts))
            planned = (len(plan.first), len(plan.outbox), len(plan.outcomes), len(pending))
            try:
                with _Bound(message_id=delivery.message_id, attempt=attempts):
                    self._process_one(delivery, parsed[delivery.tag], at, attempts, plan,
                                      pending)
            except PermanentError as exc:
                _undo(plan, pending, rows, planned)
                self._fail(plan, delivery, at, attempts, None, exc.reason, exc.detail)
            except TransientError as exc:
                if exc.reason is Reason.LEDGER_UNAVAILABLE:
                    raise  # fail closed: nothing of this batch is published or acked
                _undo(plan, pending, rows, planned)
                self._fail(plan, delivery, at, attempts, None, exc.reason, exc.detail)
            except Exception as exc:  # a bug must not crash the consumer or loop the message
                self._log.exception("delivery_crashed", message_id=delivery.message_id,
                                    error=type(exc).__name__)
                _undo(plan, pending, rows, planned)
                self._fail(plan, delivery, at, attempts, None, Reason.INTERNAL_ERROR,
                           type(exc).__name__)
            plan.ack.append(delivery.tag)
            plan.spans.append(RowSpan(delivery, (rows[0], len(plan.documents)),
                                      (rows[1], len(plan.events)),
                                      (rows[2], len(plan.receipts))))
        return plan

    def _time_of(self, delivery: Delivery, about: str) -> datetime:
        """The plan's time for a delivery: now; for a redelivery whose receipts were staged
        but not recorded (a crash between publishing and the ledger commit), the time that
        plan used, so the ledger records the same instant its published receipts state."""
        if delivery.redelivered:
            staged = [r.at for r in self._issued.get(about, ()) if r.staged]
            if staged:
                return min(staged)
        return self.clock()

    def _issue(self, about: str, kind: str, to: str | None, reason: Reason | None,
               at: datetime, sign: Callable[[], tuple[str, bytes] | None], *,
               issuer: str | None = None) -> IssuedReceipt | None:
        """A receipt of ``kind`` about the packet ``about``, for ``to``: the one already issued
        under the same message id (staged or recorded, same reason), else signed now."""
        code = reason.value if reason is not None else None
        for r in self._issued.get(about, ()):
            if (r.kind == kind and r.reason == code and (issuer is None or r.issuer == issuer)
                    and (to is None or r.recipient == to)):
                return r
        signed = sign()
        if signed is None:
            return None
        who, body = signed
        message_id = f"{about}:{kind}:{who}"
        if any(r.message_id == message_id for r in self._issued.get(about, ())):
            # The same bytes judged again with another verdict (refused for another reason
            # after a replay): one message id, one byte string — this one names its reason.
            message_id = f"{message_id}:{code or 'OK'}"
        issued = IssuedReceipt(message_id, about, kind, who, code, body, at,
                               recipient=to or "")
        # The same bytes twice in one batch (both refused): one receipt under one message id.
        self._issued.setdefault(about, []).append(issued)
        return issued

    def isolate(self, span: RowSpan, error: str) -> BatchPlan:
        """The ledger refused a row of this delivery for a reason that no retry can change (a
        constraint, a value the database cannot store): its other effects were published, so
        dead-letter a copy for an operator with LEDGER_ROW_REJECTED and record that, instead
        of stopping the consumer (no signed refusal: the recipients did get the document)."""
        at = self.clock()
        plan = BatchPlan()
        attempts = _header_int(span.delivery.headers, Headers.ATTEMPTS) + 1
        self._fail(plan, span.delivery, at, attempts, None, Reason.LEDGER_ROW_REJECTED, error)
        return plan

    # -- one delivery --------------------------------------------------------------------------
    def _process_one(self, delivery: Delivery, packet: Envelope | StatusPacket | EnvelopeRefused,
                     at: datetime, attempts: int, plan: BatchPlan,
                     pending: dict[tuple[str, str], str]) -> None:
        if isinstance(packet, EnvelopeRefused):
            self._fail(plan, delivery, at, attempts, None, packet.reason, packet.detail)
            return
        sender = packet.sender.organ_id
        mid = delivery.message_id or packet.digest
        plan.events.append(EventIn(EventKind.RECEIVED, mid, at, digest=packet.digest,
                                   organ_id=sender, detail={"bytes": len(delivery.body),
                                                            "attempt": attempts}))
        if not self._publisher_may_speak_for(delivery, sender, at):
            self._fail(plan, delivery, at, attempts, packet, Reason.SENDER_ACCOUNT_MISMATCH,
                       f"user_id={self._user(delivery)!r}")
            return
        # Context bound once per delivery: every event below carries sender and digest.
        with _Bound(sender=sender, digest=packet.digest[:16]):
            if isinstance(packet, StatusPacket):
                self._process_status(delivery, packet, at, attempts, plan, pending)
                return
            self._process_envelope(delivery, packet, at, attempts, plan, pending)

    def _trusted(self) -> frozenset[str]:
        return self.config.trusted

    def _believed(self, delivery: Delivery) -> Delivery:
        """``delivery`` with only the headers the hub may believe. ``x-hub-`` headers state the
        hub's own facts about a message (attempts, its first failure, reasons, who replayed
        it, for whom it was published): set by the hub's retries, an operator's replay, the
        API or the axis connector, all trusted logins. From any other publisher they are
        claims, dropped before planning, so that an agency can neither back-date nor
        pre-count its own failures nor dress up what operators see in the dead-letter queue."""
        headers = delivery.headers
        if delivery.user_id in self._trusted() or not any(
                k.startswith(_HUB_HEADER) for k in headers):
            return delivery
        return dataclasses.replace(delivery, headers={
            k: v for k, v in headers.items() if not k.startswith(_HUB_HEADER)})

    def _user(self, delivery: Delivery) -> str | None:
        return effective_user(delivery, self._trusted())

    def _publisher_may_speak_for(self, delivery: Delivery, sender: str, at: datetime) -> bool:
        if not self.config.check_user_id:
            return True
        user = self._user(delivery)
        if user is None:
            return False
        if user in self._trusted():
            return True
        # The body holding the code *now*: a code that passed to another body (the 2025
        # reorganization) speaks for its holder of the day, never for its next or last one.
        entry = entry_of(sender, self.directory, at)
        return entry is not None and bool(entry.broker_user) and entry.broker_user == user

    def _body(self, code: str, at: datetime) -> str:
        """The body ``code`` names at ``at`` (:func:`hub.routing.body_of`): what two codes are
        compared by, so that ``000.00.02.H27`` and ``H27.02`` are one organization."""
        return body_of(code, self.directory, at)

    def _process_envelope(self, delivery: Delivery, env: Envelope, at: datetime, attempts: int,
                          plan: BatchPlan, pending: dict[tuple[str, str], str]) -> None:
        """Duplicates → trust → route → record → deliveries → receipts, each a named step."""
        seen = self._seen_before(env, pending)
        if isinstance(seen, _Refusal):
            self._refuse(plan, delivery, at, attempts, env, seen)
            return
        if isinstance(seen, frozenset):
            self._duplicate(plan, delivery, env, at, attempts, seen)
            return
        stored = seen
        report = None
        if stored is None:
            report = self.validate(env, at)
            refusal = self._judged(env, report, at)
            if refusal is not None:
                self._refuse(plan, delivery, at, attempts, env, refusal)
                return
        targets = self._targets(env, at, report)
        if isinstance(targets, _Refusal):
            self._refuse(plan, delivery, at, attempts, env, targets)
            return
        deliveries, links_to, unreached = targets
        if stored is None and env.tree is not None and carries_hub_evidence(env.tree):
            # As in a status: only the hub writes its evidence element (INTEGRATING.md §5).
            self._fail(plan, delivery, at, attempts, env, Reason.ENVELOPE_SCHEMA_INVALID,
                       _HUB_EVIDENCE_IS_THE_HUBS, report=report)
            return
        mid = delivery.message_id or env.digest
        if stored is None:
            pending[(env.sender.organ_id, env.document_id)] = env.digest
            self._record_envelope(plan, env, mid, at, deliveries, report, links_to, unreached)
        delivered = self._view.delivered_to(env.digest) if stored is not None else frozenset()
        if stored is not None:
            self._republish(plan, delivery, env.digest, at)
        self._plan_deliveries(plan, env, mid, at, [d for d in deliveries
                                                   if d.organ_id not in delivered])
        accepted = self._issue(env.digest, "accepted", env.sender.organ_id, None, at,
                               lambda: self.receipts.accepted(env, at)) if stored is None else None
        if accepted is not None:
            self._receipt(plan, accepted, env, env.sender.organ_id, at)
        plan.outcomes.append((delivery, decide(Reason.OK, attempts=attempts,
                                               policy=self.config.retry)))
        self._log.debug("envelope_accepted", message_id=mid, sender=env.sender.organ_id,
                        digest=env.digest[:16], recipients=[d.organ_id for d in deliveries],
                        attempts=attempts)

    def _seen_before(self, env: Envelope, pending: dict[tuple[str, str], str]
                     ) -> StoredDocument | frozenset[str] | _Refusal | None:
        """Duplicates first: a redelivery of something already accepted must not be re-judged
        (a CRL refreshed since might now say otherwise) and must not be delivered twice.

        ``None``: new. A stored document: accepted before but not delivered to everyone (a
        crash after the document row), so finish the job. A frozenset: a duplicate, with the
        recipients it already reached. A refusal: the DocumentId was used for other content.
        """
        key = (env.sender.organ_id, env.document_id)
        known_digest = pending.get(key)
        stored = self._known.get(key) if known_digest is None else None
        if stored is not None:
            known_digest = stored.digest
        if known_digest is None:
            return None
        if known_digest != env.digest:
            return _Refusal(Reason.DOCUMENT_ID_REUSED,
                            f"DocumentId {env.document_id} already used with another content")
        if stored is None:  # twice in one batch: the first one carries the deliveries
            return frozenset()
        already = self._view.delivered_to(env.digest)
        if all(r in already for r in stored.recipients):
            return already
        return cast(StoredDocument, stored)

    def _judged(self, env: Envelope, report: Any, at: datetime) -> _Refusal | None:
        """The trust verdict as a refusal, or ``None`` when the envelope is accepted."""
        if report.indeterminate or not report.accepted:
            reason, detail = report.reason, _describe(report)
            if report.indeterminate:
                # A permanent refusal wins over a pointless retry: an envelope addressed
                # to nobody we know fails whatever the revocation status says.
                early = route(env, self.directory, at=at, province=self.config.province)
                if early.rejection is not None:
                    reason, detail = early.rejection, early.detail
            return _Refusal(reason, detail, report)
        if getattr(report, "waiver", None) is not None:
            # The national-axis interop policy accepted a legacy envelope signature because
            # the main PDF's signatures are valid: never silent (Decree 30/2020/NĐ-CP Art. 5).
            evidence = report.waiver.evidence
            self._log.warning("legacy_envelope_signature_accepted",
                              sender=env.sender.organ_id, document_id=env.document_id,
                              digest=env.digest, waived_reason=evidence.get("waived_reason"),
                              envelope_signature=evidence.get("envelope_signature"))
        return None

    def _targets(self, env: Envelope, at: datetime, report: Any
                 ) -> tuple[list[Any], str | None, tuple[str, ...]] | _Refusal:
        """Where the envelope goes, the document it recalls/updates/replaces (if any), and
        why each recipient of that document that cannot be reached any more is not."""
        routing = route(env, self.directory, at=at, province=self.config.province)
        if routing.rejection is not None:
            return _Refusal(routing.rejection, routing.detail, report)
        deliveries = list(routing.deliveries)
        kind = env.business_kind
        if kind is BusinessDocType.NEW:
            return deliveries, None, ()
        original = self._original_of(env, at)
        if original is None:
            return _Refusal(Reason.ORIGINAL_UNKNOWN, f"{kind.name.lower()} of an unknown document",
                            report)
        if self._body(original.sender, at) != self._body(env.sender.organ_id, at):
            return _Refusal(Reason.NOT_ORIGINAL_SENDER, f"original sent by {original.sender}",
                            report)
        # A recall, update or replacement goes to everyone who got the original (plus any
        # new addressee in its own To): nobody keeps a document its sender withdrew. Each
        # recipient on its own: one abolished since is no reason to skip the others.
        have = {d.organ_id for d in deliveries}
        former = route_former(original.recipients, self.directory, at=at,
                              province=self.config.province)
        deliveries.extend(d for d in former.deliveries if d.organ_id not in have)
        kept = [d.organ_id for d in former.deliveries if d.kept and d.organ_id not in have]
        if kept or former.unreached:
            self._log.warning("recall_recipient_abolished", kind=kind.name.lower(),
                              original=original.digest[:16], kept_queue=kept,
                              unreached=list(former.unreached))
        return deliveries, original.digest, former.unreached

    def _record_envelope(self, plan: BatchPlan, env: Envelope, mid: str, at: datetime,
                         deliveries: Sequence[Any], report: Any, links_to: str | None,
                         unreached: Sequence[str] = ()) -> None:
        sender = env.sender.organ_id
        plan.documents.append(of_packet(DocumentIn(
            sender=sender, document_id=env.document_id, digest=env.digest, kind="envelope",
            raw=env.raw, received_at=at, code=env.header.code.text,
            recipients=tuple(d.organ_id for d in deliveries),
            report=report.to_dict() if report is not None else None, links_to=links_to,
        ), env))
        plan.events.append(EventIn(EventKind.VALIDATED, mid, at, digest=env.digest,
                                   organ_id=sender,
                                   detail=report.summary() if report is not None else {}))
        if links_to is not None:
            detail: dict[str, Any] = {"kind": env.business_kind.name.lower(),
                                      "original": links_to}
            if unreached:
                # Recipients of the original it cannot reach (abolished, their queues gone):
                # named in the ledger, for whoever took over their documents.
                detail["unreached"] = list(unreached)
            plan.events.append(EventIn(EventKind.RECALLED, mid, at, digest=env.digest,
                                       organ_id=sender, detail=detail))

    def _plan_deliveries(self, plan: BatchPlan, env: Envelope, mid: str, at: datetime,
                         deliveries: Sequence[Any]) -> None:
        """One message per recipient under a deterministic id, and "01" where the hub signs
        for the recipient (published once the delivery is confirmed and recorded)."""
        sender, digest, document_id = env.sender.organ_id, env.digest, env.document_id
        deliver = self.config.names.deliver
        for d in deliveries:
            organ_id, via, key = d.organ_id, d.via, d.routing_key
            headers = {Headers.DIGEST: digest, Headers.SENDER: sender,
                       Headers.RECIPIENT: organ_id, Headers.DOCUMENT_ID: document_id,
                       Headers.VIA: via}
            plan.first.append(Outgoing(deliver, key, env.raw, headers,
                                       message_id=f"{digest}:{organ_id}"))
            plan.events.append(EventIn(EventKind.ROUTED, mid, at, digest=digest,
                                       organ_id=organ_id, detail={"via": via, "queue": key}))
            plan.events.append(EventIn(EventKind.DELIVERED, mid, at, digest=digest,
                                       organ_id=organ_id, detail={"via": via}))
            if via == "direct" and not d.kept:  # nobody answers for an abolished body
                receipt = self._issue(digest, "received", sender, None, at,
                                      partial(self._received, env, organ_id, at),
                                      issuer=organ_id)
                if receipt is not None:
                    self._receipt(plan, receipt, env, sender, at)

    def _received(self, env: Envelope, recipient: str, at: datetime) -> tuple[str, bytes] | None:
        """"01 đã đến" signed as the recipient (when the hub holds its key)."""
        body = self.receipts.received(env, recipient, at)
        return None if body is None else (recipient, body)

    def _original_of(self, env: Envelope, at: datetime) -> Any:
        """The document a recall/update/replacement refers to, looked up under its owner.

        A DocumentId starts with its sender's code (QCVN 102: ``{OrganId},{date},{number}``),
        so the original is found even when someone else claims it; the caller then refuses
        anyone but the original sender (NOT_ORIGINAL_SENDER).
        """
        business = env.trace.business if env.trace is not None else None
        ref = business.document_id if business is not None else None
        if not ref and business is not None and business.replacements:
            ref = business.replacements[0].document_id
        if not ref and env.header.response_for:
            ref = env.header.response_for[0].document_id
        if not ref:
            return None
        owner = ref.split(",", 1)[0].strip()
        return self._find_document(owner or env.sender.organ_id, ref, at)

    def _find_document(self, owner: str, document_id: str, at: datetime) -> Any:
        """The document ``owner`` sent under ``document_id``. The ledger keys it by its
        ``From`` as written, and a body has two codes (``000.00.02.H27``, Decision 20/2020's
        ``H27.02``): looked up under the code given, then under the body's other codes."""
        found = self._view.find_document(owner, document_id)
        if found is not None:
            return found
        entry = entry_of(owner, self.directory, at)
        for code in entry.codes if entry is not None else ():
            if code != owner:
                found = self._view.find_document(code, document_id)
                if found is not None:
                    return found
        return None

    def _process_status(self, delivery: Delivery, status: StatusPacket, at: datetime,
                        attempts: int, plan: BatchPlan,
                        pending: dict[tuple[str, str], str]) -> None:
        """Duplicates → trust → the document → who may say what → route → record → forward
        and countersign."""
        mid = delivery.message_id or status.digest
        reporter = status.sender.organ_id
        if status.tree is not None and carries_hub_evidence(status.tree):
            self._fail(plan, delivery, at, attempts, status, Reason.ENVELOPE_SCHEMA_INVALID,
                       _HUB_EVIDENCE_IS_THE_HUBS)
            return
        # Duplicates first, as for documents: bytes already recorded are never judged again
        # (a certificate revoked since, a CRL refreshed since would refuse a status the
        # sender already holds, countersigned), and never forwarded twice.
        key = (reporter, _status_document_id(status))
        if key in pending:  # twice in one batch: the first one is forwarded and recorded
            self._duplicate(plan, delivery, status, at, attempts, frozenset(), republish=False)
            return
        stored = self._view.document_by_digest(status.digest)
        if stored is not None and stored.kind == "status":
            self._duplicate(plan, delivery, status, at, attempts, frozenset(),
                            original=stored.links_to)
            return
        if status.status_code not in QCVN_STATUS_RANGE:
            self._fail(plan, delivery, at, attempts, status, Reason.STATUS_CODE_INVALID,
                       f"status code {status.status_code} is outside QCVN 102 (01-16)")
            return
        report = self.validate(status, at)
        if report.indeterminate or not report.accepted:
            self._fail(plan, delivery, at, attempts, status, report.reason, _describe(report),
                       report=report)
            return
        original = self._find_document(status.response_for.organ_id,
                                       status.response_for.document_id, at)
        if original is None:
            self._fail(plan, delivery, at, attempts, status, Reason.STATUS_ORPHAN,
                       f"{status.response_for.organ_id} {status.response_for.document_id}",
                       report=report)
            return
        delivered = self._view.delivered_to(original.digest)
        # Compared as bodies: a recipient answers under either of its codes, whichever one
        # the document named it by.
        body = self._body(reporter, at)
        is_sender = body == self._body(original.sender, at)
        is_recipient = body in {self._body(r, at) for r in (*delivered, *original.recipients)}
        if not (is_sender or is_recipient):
            self._fail(plan, delivery, at, attempts, status,
                       Reason.STATUS_REPORTER_NOT_RECIPIENT, reporter, report=report)
            return
        code = status.status_code
        if code in RECIPIENT_STATUS_CODES and not is_recipient:
            # QCVN 102: what the recipient says of the document, never its sender.
            self._fail(plan, delivery, at, attempts, status,
                       Reason.STATUS_REPORTER_NOT_RECIPIENT,
                       f"{reporter} sent the document: status {code} is its recipients'",
                       report=report)
            return
        if code in SENDER_STATUS_CODES and not is_sender:
            self._fail(plan, delivery, at, attempts, status, Reason.NOT_ORIGINAL_SENDER,
                       f"{reporter} did not send the document: status {code} is its sender's",
                       report=report)
            return
        # The sender's own status (13: recall) goes to the recipients; a recipient's to the sender.
        targets = tuple(original.recipients) if is_sender else (original.sender,)
        routes: list[tuple[str, Any]] = []
        for target in targets:
            rplan = route_status(status if target == original.sender else None, target,
                                 self.directory, at=at, province=self.config.province)
            if rplan.rejection is not None:
                self._fail(plan, delivery, at, attempts, status, rplan.rejection, rplan.detail,
                           report=report)
                return
            routes.extend((target, d) for d in rplan.deliveries)
        pending[key] = status.digest
        plan.documents.append(of_packet(DocumentIn(
            sender=reporter, document_id=key[1], digest=status.digest,
            kind="status", raw=status.raw, received_at=at, code=status.status_code,
            recipients=targets, report=report.to_dict(), links_to=original.digest,
        ), status))
        plan.events.append(EventIn(EventKind.STATUS_RECEIVED, mid, at, digest=original.digest,
                                   organ_id=reporter,
                                   detail={"status": status.status_code,
                                           "status_digest": status.digest}))
        counter = self._issue(status.digest, "countersigned", None, None, at,
                              lambda: self.receipts.countersign(status, at))
        if counter is not None:
            # One countersignature, recorded once, published to every target of the status.
            counter_digest = _sha256(counter.body)
            plan.documents.append(DocumentIn(
                sender=counter.issuer, document_id=f"receipt:countersigned:{counter_digest[:32]}",
                digest=counter_digest, kind="receipt", raw=counter.body, received_at=at,
                recipients=tuple(dict.fromkeys(t for t, _ in routes)), links_to=status.digest,
                code="countersigned"))
        for target, d in routes:
            plan.first.append(Outgoing(self.config.names.deliver, d.routing_key, status.raw,
                                       _forwarded_headers(status, original.digest),
                                       message_id=f"{status.digest}:{target}"))
            if counter is not None:
                message_id = f"{status.digest}:{target}:countersigned"
                plan.outbox.append(dataclasses.replace(counter, message_id=message_id,
                                                       recipient=target))
                plan.receipts.append(Outgoing(
                    self.config.names.deliver, d.routing_key, counter.body,
                    _countersigned_headers(status, original.digest, counter.issuer),
                    message_id=message_id))
                plan.events.append(EventIn(
                    EventKind.RECEIPT_ISSUED, message_id, at, digest=status.digest,
                    organ_id=counter.issuer,
                    detail={"kind": "countersigned", "receipt_digest": counter_digest,
                            "to": target}))
        plan.outcomes.append((delivery, Disposition(Action.DELIVER, attempts=attempts)))
        self._log.debug("status_routed", message_id=mid, reporter=reporter,
                        status=status.status_code, targets=list(targets))

    # -- outcomes ------------------------------------------------------------------------------
    def _refuse(self, plan: BatchPlan, delivery: Delivery, at: datetime, attempts: int,
                packet: Envelope | StatusPacket, refusal: _Refusal) -> None:
        self._fail(plan, delivery, at, attempts, packet, refusal.reason, refusal.detail,
                   report=refusal.report)

    def _duplicate(self, plan: BatchPlan, delivery: Delivery, packet: Envelope | StatusPacket,
                   at: datetime, attempts: int, delivered: frozenset[str], *,
                   republish: bool = True, original: str | None = None) -> None:
        """``republish``: False for a copy of a packet planned earlier in this batch (that
        one publishes the receipts). ``original``: for a status, the document it is about."""
        mid = delivery.message_id or packet.digest
        plan.events.append(EventIn(EventKind.DUPLICATE, mid, at, digest=packet.digest,
                                   organ_id=packet.sender.organ_id, reason=Reason.DUPLICATE.value,
                                   detail={"delivered_to": sorted(delivered)}))
        if republish:
            forwarded = (packet, original) if isinstance(packet, StatusPacket) and original else None
            self._republish(plan, delivery, packet.digest, at, status=forwarded)
        plan.outcomes.append((delivery, decide(Reason.OK, attempts=attempts,
                                               policy=self.config.retry, duplicate=True)))
        self._log.debug("duplicate_ignored", message_id=mid, sender=packet.sender.organ_id,
                        digest=packet.digest[:16])

    def _republish(self, plan: BatchPlan, delivery: Delivery, about: str, at: datetime, *,
                   status: tuple[StatusPacket, str] | None = None) -> None:
        """A redelivered packet the ledger recorded: its consumer died after the commit, maybe
        before the receipts left. Publish again every receipt recorded about it, the same
        bytes under the same message id (receivers drop a copy they have), recorded again.
        ``status``: the packet and the document it is about, when ``about`` is a status (its
        countersignature goes out again with the headers it first had)."""
        if not delivery.redelivered:
            return
        for issued in self._issued.get(about, ()):
            headers = None
            if status is not None and issued.kind == "countersigned":
                headers = _countersigned_headers(status[0], status[1], issued.issuer)
            self._receipt(plan, issued, about, issued.recipient, at,
                          reason=Reason(issued.reason) if issued.reason else None,
                          headers=headers)

    def _receipt(self, plan: BatchPlan, issued: IssuedReceipt,
                 about: Envelope | StatusPacket | str, sender: str, at: datetime, *,
                 reason: Reason | None = None, headers: Mapping[str, Any] | None = None) -> None:
        """Record a signed hub receipt about ``about`` (a packet, or the digest of bytes that
        could not be read) and publish it to ``sender`` once recorded. ``headers``: those of
        a receipt of another shape (a countersignature, :func:`_countersigned_headers`)."""
        about_digest = about if isinstance(about, str) else about.digest
        receipt, kind, issuer = issued.body, issued.kind, issued.issuer
        plan.outbox.append(issued)
        digest = _sha256(receipt)
        if headers is None:
            headers = _receipt_headers(kind, about_digest, issuer, reason)
        deliver = self.config.names.deliver
        for r in route_status(None, sender, self.directory, at=at,
                              province=self.config.province).deliveries:
            plan.receipts.append(Outgoing(deliver, r.routing_key, receipt, headers,
                                          message_id=issued.message_id))
        plan.documents.append(DocumentIn(
            sender=issuer, document_id=f"receipt:{kind}:{digest[:32]}", digest=digest,
            kind="receipt", raw=receipt, received_at=at, recipients=(sender,),
            links_to=about_digest, code=kind,
        ))
        plan.events.append(EventIn(EventKind.RECEIPT_ISSUED, issued.message_id,
                                   at, digest=about_digest, organ_id=issuer,
                                   reason=reason.value if reason is not None else None,
                                   detail={"kind": kind, "receipt_digest": digest, "to": sender}))

    def _refused_document(self, delivery: Delivery, packet: Envelope | StatusPacket | None,
                          digest: str, reason: Reason, at: datetime, report: Any) -> DocumentIn:
        """The ledger row of a refused packet. Its organization is the publishing account's
        (a forged From is not counted against the body it names); for a trusted login (the
        hub's retries, the gateway) the packet's From; "" when neither is known."""
        organization = self._publisher_org(delivery, at)
        if organization is None and packet is not None:
            organization = packet.sender.organ_id
        document_id = code = ""
        if isinstance(packet, Envelope):
            document_id, code = packet.document_id, packet.header.code.text
        elif isinstance(packet, StatusPacket):
            document_id, code = packet.response_for.document_id, packet.status_code
        return DocumentIn(
            sender=organization or "", document_id=document_id, digest=digest, kind="refused",
            raw=delivery.body, received_at=at, code=code,
            report=report.to_dict() if report is not None else None,
            refusal=Refusal(reason=reason.value, account=delivery.user_id))

    def _tell_refusal(self, plan: BatchPlan, delivery: Delivery,
                      packet: Envelope | StatusPacket | None, digest: str, reason: Reason,
                      at: datetime) -> None:
        """Every refusal gets a signed ``02`` back: to the packet's ``From`` when the packet was
        read, the directory knows it and its account published it; otherwise to the organization
        of the broker account that published it (unparseable, not EDXML, schema-invalid, unknown
        or forged sender). A trusted login (the hub's retries, the gateway) speaks for From."""
        publisher = self._publisher_org(delivery, at)
        sender = packet.sender.organ_id if packet is not None else None
        # The publisher is named by its primary code; From by either code of its body.
        if (packet is not None and sender is not None
                and entry_of(sender, self.directory, at) is not None
                and publisher in (None, self._body(sender, at))):
            negative = self._issue(packet.digest, "rejected", sender, reason, at,
                                   lambda: self.receipts.rejected(delivery.body, packet, reason,
                                                                  at))
            about: Envelope | StatusPacket | str = packet
        elif publisher is not None:
            # Never tell a body named in a From its account did not publish (a forged From):
            # the refusal goes to the publishing account's organization, about the bytes.
            sender = publisher
            negative = self._issue(digest, "rejected", sender, reason, at,
                                   lambda: self.receipts.rejected(
                                       delivery.body, None, reason, at, publisher=publisher,
                                       digest=digest))
            about = digest
        else:
            self._log.warning("refusal_untold", message_id=delivery.message_id, reason=reason.value)
            return
        if negative is not None:
            self._receipt(plan, negative, about, sender, at, reason=reason)

    def _publisher_org(self, delivery: Delivery, at: datetime) -> str | None:
        """The organization whose broker account published ``delivery`` (one, or None)."""
        user = self._user(delivery)
        if user is None:
            return None
        entries = self.directory.by_broker_user(user, at)
        return entries[0].code if len(entries) == 1 else None

    def _fail(self, plan: BatchPlan, delivery: Delivery, at: datetime, attempts: int,
              packet: Envelope | StatusPacket | None, reason: Reason, detail: str,
              *, report: Any = None) -> None:
        disposition = decide(reason, attempts=attempts, policy=self.config.retry, detail=detail)
        digest = packet.digest if packet is not None else _sha256(delivery.body)
        sender = packet.sender.organ_id if packet is not None else None
        mid = delivery.message_id or digest
        first_failure = str(delivery.headers.get(Headers.FIRST_FAILURE) or at.isoformat())
        names = self.config.names
        if disposition.action is Action.RETRY:
            delay = disposition.delay_ms
            headers = {**_plain_headers(delivery.headers), Headers.ATTEMPTS: attempts,
                       Headers.FIRST_FAILURE: first_failure, Headers.REASON: reason.value,
                       Headers.ORIGINAL_USER: self._user(delivery) or ""}
            plan.first.append(Outgoing("", names.retry(delay), delivery.body, headers,
                                       message_id=delivery.message_id,
                                       user_id=self.config.hub_user))
            plan.events.append(EventIn(EventKind.RETRY_SCHEDULED, mid, at, digest=digest,
                                       organ_id=sender, reason=reason.value,
                                       detail={"attempt": attempts, "delay_ms": delay,
                                               "detail": detail[:500]}))
            self._log.warning("delivery_retry_scheduled", message_id=mid, reason=reason.value,
                              attempt=attempts, delay_ms=delay)
        else:
            final = disposition.reason
            headers = {
                **_plain_headers(delivery.headers),
                Headers.REASON: final.value,
                Headers.REASON_TEXT_VI: final.vi,
                Headers.REASON_TEXT_EN: final.en,
                Headers.DETAIL: disposition.detail[:1000],
                Headers.FIRST_FAILURE: first_failure,
                Headers.ATTEMPTS: attempts,
                Headers.ORIGINAL_ROUTING: f"{delivery.exchange}/{delivery.routing_key}",
                Headers.ORIGINAL_USER: self._user(delivery) or "",
                Headers.SENDER: sender or "",
                Headers.DIGEST: digest,
            }
            if isinstance(packet, Envelope):
                # Who it was for, so that an operator can find a refused letter by recipient.
                headers[Headers.RECIPIENT] = ",".join(r.organ_id for r in packet.recipients)
            if disposition.first_reason is not None:
                headers[Headers.FIRST_REASON] = disposition.first_reason.value
            plan.first.append(Outgoing(names.dlx, final.value, delivery.body, headers,
                                       message_id=delivery.message_id or digest,
                                       content_type="application/octet-stream"))
            # Every refused packet is a ledger document (kind "refused"): its exact bytes, the
            # publishing account and organization, the reason. The duplicate checks do not see
            # it, so a replay is judged afresh; the dead-letter queue may then be discarded.
            plan.documents.append(self._refused_document(delivery, packet, digest, final, at,
                                                         report))
            plan.events.append(EventIn(EventKind.REJECTED, mid, at, digest=digest, organ_id=sender,
                                       reason=final.value, detail={"detail": detail[:500]}))
            plan.events.append(EventIn(EventKind.DEAD_LETTERED, mid, at, digest=digest,
                                       organ_id=sender, reason=final.value,
                                       detail={"queue": names.dlq, "attempts": attempts}))
            if not disposition.parked:
                self._tell_refusal(plan, delivery, packet, digest, final, at)
            self._log.warning("envelope_rejected", message_id=mid, sender=sender,
                              reason=final.value, attempts=attempts)
        plan.outcomes.append((delivery, disposition))


_HUB_EVIDENCE_IS_THE_HUBS = (
    "hub:HubEvidence is the hub's own: a packet from an agency may not carry it")


def _status_document_id(status: StatusPacket) -> str:
    """The ledger's DocumentId of a status packet (a status has none of its own)."""
    return f"status:{status.digest[:32]}"


def _forwarded_headers(status: StatusPacket, original: str) -> dict[str, Any]:
    """The headers of a status forwarded to a party of the document ``original``."""
    return {Headers.DIGEST: status.digest, Headers.REPORTER: status.sender.organ_id,
            Headers.STATUS: status.status_code, Headers.ORIGINAL: original}


def _countersigned_headers(status: StatusPacket, original: str, issuer: str) -> dict[str, Any]:
    """The headers of the hub's countersignature of ``status``: the forwarded status's, the
    receipt's kind and its signer. Built here only, so that a countersignature published again
    after a crash carries the headers of the first copy under the same message id."""
    return {**_forwarded_headers(status, original), Headers.RECEIPT: "countersigned",
            Headers.ISSUER: issuer}


def _receipt_headers(kind: str, about: str, issuer: str, reason: Reason | None
                     ) -> dict[str, Any]:
    """The headers of a hub receipt of ``kind`` about the packet of digest ``about``."""
    headers: dict[str, Any] = {Headers.RECEIPT: kind, Headers.ORIGINAL: about,
                               Headers.ISSUER: issuer}
    if reason is not None:
        headers[Headers.REASON] = reason.value
    return headers


def _describe(report: Any) -> str:
    try:
        return str(report.summary().get("detail", "")) or report.reason.value
    except Exception:
        return str(getattr(report, "reason", ""))


def _plain_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Carry the publisher's headers, minus the broker's own (``x-death``, counts)."""
    return {k: v for k, v in headers.items() if not k.startswith(("x-death", "x-delivery-count",
                                                                   "x-first-death"))}


def message_id_for(body: bytes) -> str:
    """A stable id for a body published without one (client side)."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode()


__all__ = ["BatchPlan", "InFlightView", "Pipeline", "PipelineConfig", "inbox_key", "status_key"]
