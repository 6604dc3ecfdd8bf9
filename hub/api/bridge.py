"""The API's broker side: one AMQP connection, owned by one thread, shared by every request.

pika's ``BlockingConnection`` is not thread-safe (``hub/broker.py``), and the HTTP server runs
requests on many threads, so one *broker thread* owns the connection and request threads hand
it commands (publish, subscribe, acknowledge) through a queue, waking it with
:meth:`hub.broker.Connection.wake`. Publishes that arrive together go out together and are
confirmed together (pipelined publisher confirms, as the intake does).

**Receiving: held, not taken.** For each organization that asks, the thread consumes that
organization's inbox and status queues with a prefetch of ``window`` and *holds* the deliveries
unacknowledged in a :class:`Mailbox`. Listing and fetching read the mailbox; only the agency's
acknowledgement (or its status update) sends ``basic.ack``. If the API process dies between
fetch and acknowledgement, RabbitMQ requeues every delivery the connection held, and the next
API process offers them again (``redelivered``). Nothing is requeued by hand (a requeue would
count against the queues' delivery limit on every list).

**Receiver-side dedup, done for the agency.** Every message the hub publishes carries a
deterministic message id; the ids an agency acknowledged are kept in a
:class:`hub.client.SeenMessages` file per organization (fsynced before the ``basic.ack``), the
same rule the AMQP client applies: a copy republished after a hub crash, or redelivered because
an acknowledgement was lost, is acknowledged here and never shown to the agency.

One API process per broker (or per set of agencies): two processes consuming the same queue
would each hold part of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hub.broker import BrokerUnavailable, Connection, Delivery, Outgoing, Settler, connect
from hub.client import SeenMessages
from hub.logs import get_logger
from hub.topology import Names

log = get_logger("hub.api.bridge")

QueueKind = Literal["edoc", "status"]


@dataclass
class Held:
    """One delivery the API holds for an agency (unacknowledged on the broker)."""

    key: str
    """The document id the API shows: SHA-256 (hex) of the exact bytes."""
    kind: QueueKind
    delivery: Delivery
    generation: int
    """Which broker connection holds it (a lost connection's deliveries are requeued)."""
    arrived: datetime
    fetched: bool = False
    info: dict[str, Any] | None = None
    """What the listing shows about it (read once from the bytes, lazily)."""


@dataclass
class Mailbox:
    """What the API holds for one organization, in arrival order."""

    organization: str
    seen: SeenMessages
    entries: dict[str, Held] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    duplicates_dropped: int = 0
    acknowledged: dict[str, None] = field(default_factory=dict)
    """Keys acknowledged recently (an acknowledgement repeated is answered, not refused)."""
    expected: int = 0
    """Messages ready in the queues when consuming started (the first list waits for them)."""
    offered: int = 0
    """Deliveries the broker made to this mailbox (duplicates included)."""

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)
        """Notified whenever a message is added (long-polling lists wait on it)."""

    def get(self, key: str) -> Held | None:
        with self.lock:
            return self.entries.get(key)

    def snapshot(self) -> list[Held]:
        with self.lock:
            return list(self.entries.values())


@dataclass
class _Command:
    kind: Literal["publish", "subscribe", "ack"]
    future: Future[Any]
    messages: tuple[Outgoing, ...] = ()
    organization: str = ""
    held: tuple[Held, ...] = ()


class BrokerBridge:
    """The connection-owning thread and the mailboxes it fills."""

    def __init__(self, url: str, names: Names, *, window: int, state_dir: Path | None,
                 name: str = "edxml-hub api", reconnect_max_s: float = 10.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.url = url
        self.names = names
        self.window = window
        self.state_dir = state_dir
        self.name = name
        self.reconnect_max_s = reconnect_max_s
        self.clock = clock
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._mailboxes: dict[str, Mailbox] = {}
        self._subscribed: set[str] = set()
        self._boxes_lock = threading.Lock()
        self._conn: Connection | None = None
        self._settler: Settler | None = None
        self._generation = 0
        self._stop = threading.Event()
        self._up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-broker", daemon=True)
        self.last_error = ""

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        """Start the thread; raise :class:`BrokerUnavailable` if no connection comes up."""
        self._thread.start()
        if not self._up.wait(timeout):
            raise BrokerUnavailable(f"the API cannot connect to the broker: {self.last_error}")

    def close(self) -> None:
        self._stop.set()
        if self._conn is not None:
            self._conn.wake()
        self._thread.join(timeout=10)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    # -- what request threads call ---------------------------------------------------------------
    def submit(self, command: _Command) -> Future[Any]:
        if self._stop.is_set():
            command.future.set_exception(BrokerUnavailable("the API is stopping"))
            return command.future
        self._commands.put(command)
        conn = self._conn
        if conn is not None:
            conn.wake()
        return command.future

    def publish(self, messages: tuple[Outgoing, ...]) -> Future[Any]:
        """Publish durably; the future resolves once the broker confirmed every message."""
        return self.submit(_Command("publish", Future(), messages=messages))

    def mailbox(self, organization: str, timeout: float = 15.0) -> Mailbox:
        """The organization's mailbox, consuming its queues from now on."""
        with self._boxes_lock:
            box = self._mailboxes.get(organization)
            if box is None:
                seen_file = None
                if self.state_dir is not None:
                    seen_dir = self.state_dir / "seen"
                    seen_dir.mkdir(parents=True, exist_ok=True)
                    seen_file = seen_dir / f"{organization}.ids"
                box = Mailbox(organization, SeenMessages(seen_file))
                self._mailboxes[organization] = box
        if organization not in self._subscribed:
            self.submit(_Command("subscribe", Future(), organization=organization)).result(timeout)
            # What was waiting in the queues arrives right after basic.consume: the first list
            # shows it instead of an empty page.
            with box.arrived:
                box.arrived.wait_for(lambda: box.offered >= box.expected, timeout=2.0)
        return box

    def acknowledge(self, box: Mailbox, held: list[Held], timeout: float = 15.0) -> list[str]:
        """The agency has these messages: remember their ids, then ``basic.ack`` them.

        Returns the keys this call acknowledged; the others were acknowledged already (two
        requests that found the same hold — a client's retry racing its first attempt — ack
        it once: the first to reach the broker thread takes it)."""
        with box.lock:
            for h in held:
                box.seen.remember(h.delivery.message_id or h.key)
        taken: list[str] = self.submit(_Command(
            "ack", Future(), organization=box.organization, held=tuple(held))).result(timeout)
        return taken

    # -- the broker thread -----------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._connect()
                    backoff = 0.2
                self._drain()
                conn = self._conn
                if conn is not None:
                    conn.pump(0.5)
            except BrokerUnavailable as exc:
                self._lost(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
            except Exception as exc:  # a bug must not kill the thread silently
                log.exception("api_broker_thread_failed", error=type(exc).__name__)
                self._lost(exc)
                self._stop.wait(backoff)
        self._lost(BrokerUnavailable("the API stopped"))

    def _connect(self) -> None:
        try:
            conn = connect(self.url, self.name)
        except BrokerUnavailable as exc:
            self.last_error = exc.detail
            raise
        self._generation += 1
        self._conn = conn
        self._settler = conn.settler()
        for organization in sorted(self._subscribed):
            self._consume(organization)
        self._up.set()
        log.info("api_broker_connected", generation=self._generation)

    def _lost(self, exc: Exception) -> None:
        """The connection is gone: RabbitMQ requeues what it held; forget it here too."""
        self._up.clear()
        self.last_error = str(exc)
        conn, self._conn, self._settler = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close(timeout=2)
        with self._boxes_lock:
            boxes = list(self._mailboxes.values())
        for box in boxes:
            with box.lock:
                box.entries.clear()
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            if not command.future.done():
                command.future.set_exception(BrokerUnavailable(f"broker connection lost: {exc}"))
        if not self._stop.is_set():
            log.warning("api_broker_lost", error=str(exc)[:200])

    def _drain(self) -> None:
        commands: list[_Command] = []
        while True:
            try:
                commands.append(self._commands.get_nowait())
            except queue.Empty:
                break
        if not commands:
            return
        publishes = [c for c in commands if c.kind == "publish"]
        try:
            for c in commands:
                if c.kind == "subscribe":
                    if c.organization not in self._subscribed:
                        self._consume(c.organization)
                        self._subscribed.add(c.organization)
                    c.future.set_result(None)
                elif c.kind == "ack":
                    c.future.set_result(self._ack(c.organization, c.held))
            if publishes:
                assert self._conn is not None
                sent = self._conn.send([m for c in publishes for m in c.messages])
                self._conn.wait(sent)
                for c in publishes:
                    c.future.set_result(None)
        except Exception as exc:
            # Whatever failed (the broker, or a bug here), every request of the batch gets an
            # answer now, not at its timeout: the connection is given up next (_run), so what
            # it held is requeued and a publish of this batch may not have gone out — both
            # are "try again" for the agency, never a 500.
            failure = exc if isinstance(exc, BrokerUnavailable) else BrokerUnavailable(
                f"the API's broker thread failed ({type(exc).__name__})")
            for c in commands:
                if not c.future.done():
                    c.future.set_exception(failure)
            raise

    def _ack(self, organization: str, held: tuple[Held, ...]) -> list[str]:
        """``basic.ack`` the holds of ``held`` that are still in the mailbox, taking them out in
        the same step; returns the keys acknowledged by this command.

        Two requests may have found the same hold (``Mailbox.get``) before either command got
        here: only the first takes it, so its delivery tag is acked once (a second
        ``basic.ack`` of a tag is a channel error, and the :class:`~hub.broker.Settler` refuses
        it). A hold of a connection that is gone was cleared from the mailbox: RabbitMQ
        requeued it and its redelivery is dropped as seen (its id was remembered before this
        command) — or, arrived already, is the hold taken in its place."""
        assert self._settler is not None
        box = self._mailboxes[organization]
        tags: list[int] = []
        taken: list[str] = []
        with box.lock:
            for h in held:
                present = box.entries.get(h.key)
                if present is not None and (present is h or present.generation > h.generation):
                    del box.entries[h.key]
                    if present.generation == self._generation:
                        tags.append(present.delivery.tag)
                    taken.append(h.key)
                elif h.generation != self._generation and h.key not in box.acknowledged:
                    taken.append(h.key)  # settled by the seen file when it comes back
                # else: another request acknowledged it first
                box.acknowledged[h.key] = None
            while len(box.acknowledged) > 10_000:
                del box.acknowledged[next(iter(box.acknowledged))]
        # Out of the mailbox before the ack: no other command can take these tags now.
        self._settler.ack(tags)
        return taken

    def _consume(self, organization: str) -> None:
        assert self._conn is not None
        box = self._mailboxes[organization]
        queues: tuple[tuple[QueueKind, str], ...] = (
            ("edoc", self.names.inbox(organization)), ("status", self.names.status(organization)))
        expected = sum(min(self._conn.queue_depth(name), self.window) for _, name in queues)
        with box.lock:
            box.expected, box.offered = expected, 0
        for kind, queue_name in queues:
            self._conn.consume(queue_name, self.window, self._on_delivery(box, kind))

    def _on_delivery(self, box: Mailbox, kind: QueueKind) -> Callable[[Delivery], None]:
        def handle(d: Delivery) -> None:
            key = hashlib.sha256(d.body).hexdigest()
            mid = d.message_id or key
            with box.lock:
                box.offered += 1
                duplicate = mid in box.seen or key in box.entries
                if not duplicate:
                    box.entries[key] = Held(key, kind, d, self._generation, self.clock())
                    box.arrived.notify_all()
                else:
                    box.duplicates_dropped += 1
                    box.arrived.notify_all()
            if duplicate:
                # Handled before (or held already under another copy): settle this copy now.
                assert self._settler is not None
                self._settler.ack([d.tag])
                log.debug("api_duplicate_dropped", organization=box.organization,
                          message_id=mid)
        return handle

