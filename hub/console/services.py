"""What the console's pages ask of the hub, in one object built once per process.

Nothing here plans or settles deliveries by itself (docs/ARCHITECTURE.md, "Adding an adapter"):
dead letters are listed, replayed and discarded by :mod:`hub.ops.dlq` (the same functions as
``hub dlq``: publish and confirm, record in the ledger, then ack); the ledger is read through
:mod:`hub.ledger`; receipts and statuses are checked by :mod:`hub.ops.receipt_verify`;
evidence bundles are :func:`hub.ledger.evidence.export_evidence`; the adoption report is
:func:`hub.ledger.report.adoption_report`. Every action a person takes is written to the ledger
before it is done (``operator_action`` events, or ``replayed``/``discarded`` by the dead-letter
functions), with the person as actor: when the ledger cannot record it, it is not done.

Browsing the dead-letter queue takes its messages without acknowledgement and gives them back
when the channel closes; two browses at once would each see part of the queue, so every
dead-letter operation of this process holds one lock. (Run one console per hub, or accept that a
listing made while ``hub dlq`` runs elsewhere may be short.)
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from hub.app import broker_user, load_directory, load_keystore, open_ledger, topology_for
from hub.broker import BrokerUnavailable, Connection, Delivery, connect
from hub.config import Settings
from hub.ledger import EventIn, EventKind, Ledger, StoredDocument, StoredEvent, VerifyResult
from hub.ledger.report import AdoptionRow, adoption_report
from hub.ledger.search import CheckpointInfo, latest_checkpoint, related_documents
from hub.logs import get_logger
from hub.messages import Headers
from hub.ops import dlq
from hub.trust.revocation import RevocationCache
from hub.trust.store import load_policy

log = get_logger("hub.console")

Recorder = Callable[[list[dlq.DeadLetter], str, str], None]
PEEK_MAX = 10_000
"""Most dead letters one listing shows (the prefetch window; RabbitMQ allows up to 65,535)."""
PEEK_WAIT_S = 10.0
"""Longest wait for the dead letters the queue said it holds (one may be taken meanwhile)."""
REPORT_TTL = timedelta(seconds=60)
"""How long an adoption report is reused (figures at most a minute old)."""
REPORT_VERSIONS = 64
"""Figures kept by version, so that a page's chart and CSV are the figures the page shows."""


@dataclass(frozen=True, slots=True)
class CrlRow:
    ca: str
    state: str
    """``fresh``, ``stale`` or ``missing`` (the validators' own rule, ``CrlEntry.is_fresh``)."""
    issued: datetime | None = None
    next_update: datetime | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class CertRow:
    kind: str
    """``anchor``, ``intermediate``, ``operator`` or ``hosted``."""
    subject: str
    not_after: datetime
    days_left: int


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    label: str
    messages: int
    consumers: int


@dataclass
class Queues:
    reached: bool
    shared: list[QueueRow] = field(default_factory=list)
    agencies: list[QueueRow] = field(default_factory=list)
    error: str = ""


@dataclass
class Verification:
    """The last full check of the hash chain (it takes seconds on a large ledger: it runs in a
    thread and the page shows the last result)."""

    running: bool = False
    result: VerifyResult | None = None
    checked_at: datetime | None = None
    error: str = ""


@dataclass
class Job:
    """A bulk replay running in the background, with its progress."""

    id: str
    actor: str
    note: str
    total: int = 0
    done: int = 0
    state: str = "running"
    """``running``, ``done``, ``partly`` (some letters have no way back: :attr:`left`),
    ``none`` (no letter had one) or ``failed``."""
    error: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    to_intake: int = 0
    """Of the letters replayed, those sent back to the intake (judged again)."""
    left: list[tuple[str, str]] = field(default_factory=list)
    """Letters left in the dead-letter queue: (id, why it has no way back)."""


@dataclass(frozen=True, slots=True)
class FoundLetter:
    """One dead letter, its exact bytes, and where a replay would send it."""

    letter: dlq.DeadLetter
    body: bytes
    goes_to: str = ""
    """The queue a replay sends it back to (:func:`hub.ops.dlq.send_back`); "" when none."""
    no_way_back: str = ""
    """Why it has no way back (a replay would leave it in the queue)."""


@dataclass(frozen=True, slots=True)
class Report:
    """One version of the adoption report's figures: the page, its chart and its CSV name the
    version, so that all three show the same figures."""

    version: str
    computed_at: datetime
    rows: list[AdoptionRow]


@dataclass(frozen=True, slots=True)
class PacketCheck:
    """A receipt's or status packet's verdict (``hub receipt verify``)."""

    ok: bool
    lines: tuple[str, ...]


class AuditUnavailable(Exception):
    """The ledger cannot record an action: the action is not done."""


class ConsoleServices:
    """The hub's objects the console reads and acts through (built once, shared by requests)."""

    def __init__(self, settings: Settings, *, ledger: Ledger | None = None,
                 recorder: Callable[[str], Recorder] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.clock = clock
        self.directory = load_directory(settings)
        self.topology = topology_for(settings, self.directory)
        self.keystore = load_keystore(settings)
        operator = self.keystore.signer(settings.hub.operator_organ_id)
        self.ledger = ledger if ledger is not None else open_ledger(settings, operator)
        self.policy = load_policy(settings)
        self.revocation = RevocationCache(settings, certificates=self.policy.intermediates)
        self._revocation_at: datetime | None = None
        self._recorder = recorder or (lambda kind: dlq.action_recorder(settings, kind))
        self._dlq_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue_conn: Connection | None = None
        self._lock = threading.Lock()
        self.verification = Verification()
        self.jobs: dict[str, Job] = {}
        self._checks: dict[tuple[str, str], PacketCheck] = {}
        self._reports: dict[tuple[Any, ...], Report] = {}
        self._versions: OrderedDict[str, Report] = OrderedDict()
        self._charts: OrderedDict[str, bytes] = OrderedDict()
        self._refreshing: set[tuple[Any, ...]] = set()

    def close(self) -> None:
        with self._queue_lock:
            if self._queue_conn is not None:
                self._queue_conn.close()
                self._queue_conn = None
        self.ledger.close()

    # -- the audit log -------------------------------------------------------------------------
    def audit(self, actor: str, action: str, *, digest: str | None = None,
              **detail: Any) -> None:
        """Record that ``actor`` did ``action`` (raises :class:`AuditUnavailable` when the ledger
        cannot: the caller then does not do it)."""
        event = EventIn(EventKind.OPERATOR_ACTION, f"console:{uuid.uuid4().hex}", self.clock(),
                        digest=digest, actor=actor[:64] or "console",
                        detail={"action": action, "via": "console",
                                **{k: str(v)[:500] for k, v in detail.items() if v is not None}})
        try:
            self.ledger.write([], [event])
        except Exception as exc:
            log.error("console_audit_failed", action=action, error=type(exc).__name__)
            raise AuditUnavailable(type(exc).__name__) from exc

    # -- dead letters --------------------------------------------------------------------------
    def _connect(self, purpose: str) -> Connection:
        return connect(self.settings.broker.url, f"edxml-hub console {purpose}")

    def _peek(self) -> list[Delivery]:
        """Every message of the dead-letter queue, taken unacknowledged and given back when the
        connection closes. One consumer with a prefetch window receives them in one stream (a
        ``basic.get`` per message, as :func:`hub.ops.dlq.browse` does, costs a round trip each:
        1.5 s for 200 letters here); at most :data:`PEEK_MAX` are shown."""
        queue = self.topology.names.dlq
        with self._dlq_lock:
            conn = self._connect("dlq")
            try:
                stats = conn.queue_stats(queue)
                want = min(stats[0], PEEK_MAX) if stats is not None else 0
                got: list[Delivery] = []
                if want:
                    tag = conn.consume(queue, want, got.append)
                    deadline = time.monotonic() + PEEK_WAIT_S
                    while len(got) < want and time.monotonic() < deadline:
                        conn.pump(0.05)
                    conn.cancel(tag)
                return got
            finally:
                conn.close()

    def dead_letters(self) -> list[dlq.DeadLetter]:
        """The messages in the dead-letter queue, as :class:`hub.ops.dlq.DeadLetter` values."""
        return [dlq.DeadLetter.of(d) for d in self._peek()]

    def dead_letter(self, key: str) -> FoundLetter | None:
        """The dead letter with this key (:attr:`hub.ops.dlq.DeadLetter.key`, the first of
        identical ones), its exact bytes and where a replay would send it."""
        for d in self._peek():
            dl = dlq.DeadLetter.of(d)
            if dl.key == key:
                try:
                    out = dlq.send_back(d, self.topology.names, actor="", note="",
                                        user=broker_user(self.settings.broker.url),
                                        trusted=dlq.trusted_logins(self.settings),
                                        queues=self._queue_names())
                except dlq.NoWayBack as exc:
                    return FoundLetter(dl, d.body, no_way_back=str(exc))
                return FoundLetter(dl, d.body, goes_to=out.routing_key)
        return None

    def _queue_names(self) -> frozenset[str]:
        return frozenset(q.name for q in self.topology.queues)

    def replay(self, flt: dlq.Filter, *, actor: str, note: str,
               progress: Callable[[int, int], None] | None = None,
               most: int | None = None) -> list[dlq.DeadLetter]:
        """:func:`hub.ops.dlq.replay` as ``actor``; ids must match exactly (no prefix)."""
        flt = dataclasses.replace(flt, exact=True)
        with self._dlq_lock:
            conn = self._connect("replay")
            try:
                return dlq.replay(conn, self.topology.names.dlq, self.topology.names.intake, flt,
                                  actor=actor, note=note, user=broker_user(self.settings.broker.url),
                                  record=self._recorder("replayed"), progress=progress,
                                  now=self.clock(), trusted=dlq.trusted_logins(self.settings),
                                  queues=self._queue_names(), most=most)
            finally:
                conn.close()

    def discard(self, flt: dlq.Filter, *, actor: str, note: str,
                most: int | None = None) -> list[dlq.DeadLetter]:
        """:func:`hub.ops.dlq.discard` as ``actor``; ids must match exactly (no prefix)."""
        flt = dataclasses.replace(flt, exact=True)
        with self._dlq_lock:
            conn = self._connect("discard")
            try:
                return dlq.discard(conn, self.topology.names.dlq, flt, actor=actor, note=note,
                                   record=self._recorder("discarded"), now=self.clock(),
                                   most=most)
            finally:
                conn.close()

    def start_bulk_replay(self, flt: dlq.Filter, *, actor: str, note: str) -> Job:
        job = Job(uuid.uuid4().hex[:16], actor, note)
        with self._lock:
            self.jobs[job.id] = job

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        intake = self.topology.names.intake

        def run() -> None:
            try:
                try:
                    done = self.replay(flt, actor=actor, note=note, progress=progress)
                    state = "done"
                except dlq.ReplayRefused as exc:  # the others went back: partly done
                    done, state = exc.done, "partly" if exc.done else "none"
                    job.left = [(dl.id, why) for dl, why in exc.left]
                job.to_intake = sum(1 for dl in done if dl.returned_to == intake)
                job.done = len(done)
                job.total = len(done) + len(job.left)
                job.state = state
            except Exception as exc:  # shown on the job's page, one line
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
                log.error("console_bulk_replay_failed", job=job.id, error=type(exc).__name__)

        threading.Thread(target=run, name=f"replay-{job.id}", daemon=True).start()
        return job

    # -- ledger --------------------------------------------------------------------------------
    def timeline(self, digest: str) -> tuple[list[StoredDocument], list[StoredEvent]]:
        """The document's records (accepted, refused) and the packets about it, and every event
        about it, in chain order."""
        return related_documents(self.ledger, digest), self.ledger.events(digest=digest)

    def check_packet(self, packet_digest: str, envelope_digest: str) -> PacketCheck:
        """Whether a receipt or status about the envelope verifies (signature, trust, and the
        binding to the envelope's exact bytes); verdicts are kept per packet."""
        key = (packet_digest, envelope_digest)
        with self._lock:
            cached = self._checks.get(key)
        if cached is not None:
            return cached
        from hub.ops.receipt_verify import verify_receipt

        raw = self.ledger.raw(packet_digest)
        envelope = self.ledger.raw(envelope_digest)
        if raw is None:
            return PacketCheck(False, ("the packet's bytes are not kept",))
        try:
            ok, lines = verify_receipt(self.settings, raw, envelope)
        except Exception as exc:  # a check that cannot run is a failed check, never a 500
            ok, lines = False, [f"cannot check: {type(exc).__name__}"]
        check = PacketCheck(ok, tuple(lines))
        with self._lock:
            if len(self._checks) > 10_000:
                self._checks.clear()
            self._checks[key] = check
        return check

    def checkpoint(self) -> CheckpointInfo | None:
        return latest_checkpoint(self.ledger)

    def start_verification(self) -> bool:
        """Check the whole chain in a thread (False when a check is already running)."""
        with self._lock:
            if self.verification.running:
                return False
            self.verification.running = True

        def run() -> None:
            from hub.ops.ledger_cli import operator_trust

            try:
                trust = operator_trust(argparse.Namespace(
                    operator_ca=[], operator_intermediate=[], operator_cert=[],
                    operator_id=None, self_signed_ok=False), self.settings)
                result = self.ledger.verify(trust=trust)
                with self._lock:
                    self.verification.result, self.verification.error = result, ""
            except Exception as exc:
                with self._lock:
                    self.verification.error = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                with self._lock:
                    self.verification.running = False
                    self.verification.checked_at = self.clock()

        threading.Thread(target=run, name="chain-verify", daemon=True).start()
        return True

    def adoption(self, since: datetime | None, until: datetime | None,
                 period: str) -> Report:
        """The adoption report: whole UTC days from the ledger's daily rollup, the hours of a
        Vietnam-day window before its first and after its last midnight UTC from their
        documents (tens of milliseconds on a 1,000,000-row ledger). The figures of a period are
        reused, recomputed in the background when older than :data:`REPORT_TTL` (the reader
        gets the last figures at once). Each computation is a version (:meth:`report_version`):
        a page names its version in its chart's and CSV's links, so all three agree."""
        key = (since, until, period)
        now = self.clock()
        with self._lock:
            cached = self._reports.get(key)
            stale = cached is not None and now - cached.computed_at >= REPORT_TTL
            refresh = stale and key not in self._refreshing
            if refresh:
                self._refreshing.add(key)
        if cached is not None:
            if refresh:  # answer now with the last figures; newer ones for the next reader
                threading.Thread(target=self._compute_report, args=(key,), daemon=True,
                                 name="adoption-report").start()
            return cached
        return self._compute_report(key)

    def report_version(self, version: str) -> Report | None:
        """The figures of an earlier :meth:`adoption` answer (None: no longer kept, or never
        made by this process)."""
        with self._lock:
            return self._versions.get(version)

    def _compute_report(self, key: tuple[Any, ...]) -> Report:
        since, until, period = key
        try:
            rows = adoption_report(self.ledger, since=since, until=until, period=period)
        finally:
            with self._lock:
                self._refreshing.discard(key)
        report = Report(uuid.uuid4().hex[:16], self.clock(), rows)
        with self._lock:
            if len(self._reports) > 64:
                self._reports.clear()
            self._reports[key] = report
            self._versions[report.version] = report
            while len(self._versions) > REPORT_VERSIONS:
                self._versions.popitem(last=False)
        return report

    def adoption_chart(self, report: Report) -> bytes:
        """The report's chart as SVG (:func:`hub.ledger.chart.render_chart`), drawn once per
        version (matplotlib takes a second or more for thirty organizations)."""
        from hub.ledger.chart import render_chart

        with self._lock:
            svg = self._charts.get(report.version)
        if svg is None:
            svg = render_chart(report.rows, fmt="svg")
            with self._lock:
                self._charts[report.version] = svg
                while len(self._charts) > 16:
                    self._charts.popitem(last=False)
        return svg

    # -- health --------------------------------------------------------------------------------
    def crls(self) -> list[CrlRow]:
        now = self.clock()
        if self._revocation_at is None or now - self._revocation_at > timedelta(seconds=60):
            self.revocation.refresh()
            self._revocation_at = now
        snapshot = self.revocation.snapshot()
        freshness = timedelta(seconds=self.settings.trust.crl_freshness_s)
        rows = []
        for ca in (*self.policy.roots, *self.policy.intermediates):
            entry = snapshot.for_issuer(ca.subject)
            name = ca.subject.rfc4514_string()
            if entry is None:
                rows.append(CrlRow(name, "missing"))
                continue
            rows.append(CrlRow(name, "fresh" if entry.is_fresh(now, freshness) else "stale",
                               entry.crl.last_update_utc, entry.crl.next_update_utc,
                               entry.source))
        return rows

    def certificates(self) -> list[CertRow]:
        now = self.clock()

        def row(kind: str, cert: x509.Certificate) -> CertRow:
            left = cert.not_valid_after_utc - now
            return CertRow(kind, cert.subject.rfc4514_string(), cert.not_valid_after_utc,
                           left.days)

        rows = [row("anchor", c) for c in self.policy.roots]
        rows += [row("intermediate", c) for c in self.policy.intermediates]
        operator = self.settings.hub.operator_organ_id
        for organ_id in sorted(self.keystore, key=lambda o: (o != operator, o)):
            signer = self.keystore.signer(organ_id)
            if signer is not None:
                rows.append(row("operator" if organ_id == operator else "hosted", signer.cert))
        return sorted(rows, key=lambda r: (r.days_left, r.subject))

    def queues(self) -> Queues:
        """Ready messages and consumers: intake, national axis, dead letters, every inbox."""
        names = self.topology.names
        shared = ((names.intake, "health.intake"), (names.gateway, "health.axis"),
                  (names.dlq, "health.dlq"))
        prefix = f"{names.prefix}.org."
        inboxes = [q.name for q in self.topology.queues
                   if q.name.startswith(prefix) and q.name.endswith(".inbox")]
        out = Queues(reached=False)
        with self._queue_lock:
            try:
                if self._queue_conn is None or not self._queue_conn.is_open:
                    self._queue_conn = self._connect("health")
                for name, label in shared:
                    found = self._queue_conn.queue_stats(name)
                    if found is not None:
                        out.shared.append(QueueRow(name, label, *found))
                for name in inboxes:
                    found = self._queue_conn.queue_stats(name)
                    if found is not None:
                        out.agencies.append(QueueRow(
                            name, name[len(prefix):-len(".inbox")], *found))
                out.reached = True
            except BrokerUnavailable as exc:
                out.error = exc.detail[:200]
                self._queue_conn = None
        return out


def letter_digest(dl: dlq.DeadLetter) -> str | None:
    value = dl.headers.get(Headers.DIGEST)
    return str(value) if value else None


def counts(letters: list[dlq.DeadLetter]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for dl in letters:
        out[dl.reason] = out.get(dl.reason, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
