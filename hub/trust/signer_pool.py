"""Signer processes: the hub's receipt keys, loaded once in a process of their own (issue 23).

The intake consumer spends a quarter of its CPU on RSA signatures for receipts. A
:class:`SignerPool` moves that work to one or more worker processes, fed a few messages per
batch (one per ``SIGN_CHUNK`` receipts, :mod:`hub.consumers.signing`), round robin among the
workers: the consumer sends the organization and the document digest of each receipt
(all that varies in their SignedInfo, :func:`hub.trust.signing.signed_info_c14n`: ~50 bytes a
receipt, so a batch fits the pipe's buffer and sending never waits), plans and commits other
work meanwhile, and takes the signature values back before anything of the batch is staged or
published. It checks each value against the SignedInfo it built itself.

* Each worker loads the keystore itself, once: key files with the same passphrase variable, and
  token keys through a PKCS#11 session of its own, so a token-held key never leaves the token
  (the token signs). At start the worker reports the certificate fingerprint of every key it
  holds; the pool refuses a worker whose keys are not the consumer's (a key rotated on disk
  between the two loads).
* Workers are started with ``spawn``: the consumer holds pika sockets and threads that must not
  be forked. They ignore SIGINT/SIGTERM (the consumer decides when to stop) and exit when their
  pipe closes, so they never outlive the consumer.
* A worker that dies, answers with an error (a token that cannot sign), or does not answer a
  request within ``timeout_s`` makes :meth:`SignerPool.collect` raise :class:`SignerUnavailable`. Nothing
  of the batch has left the consumer then: it restarts the pool (:meth:`SignerPool.restart`)
  and signs the batch again (:mod:`hub.consumers.intake`). RSA PKCS#1 v1.5 is deterministic, so
  the receipts are the same bytes whichever process signs them.
* A worker answers its requests in the order they were sent, but they are not always collected
  in that order: after a ``receipt_conflict`` the batch in hand is planned again, and its new
  requests are collected before the next batch's, sent earlier. An answer read before it is
  asked for is kept for its ticket (:class:`Answers`); only the answers of requests given up
  on (:meth:`SignerPool.abandon`) are dropped.

No asyncio anywhere: the consumer thread must never hold a running event loop (pyHanko's
synchronous API calls ``asyncio.run``).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from hub.errors import ConfigurationError, TransientError
from hub.logs import get_logger
from hub.reasons import Reason

__all__ = ["ANSWERS_KEPT", "Answers", "ReceiptSigner", "SignerPool", "SignerSpec",
           "SignerUnavailable", "Ticket"]

log = get_logger("hub.trust.signer_pool")

START_TIMEOUT_S = 120.0
"""Longest a worker may take to start and load its keys (a keystore of many keys, a slow token)."""
_IDLE_EVERY_S = 0.2
"""While waiting on the workers, call the caller's ``idle`` this often (broker heartbeats)."""
ANSWERS_KEPT = 4096
"""Outstanding requests a worker keeps answers for (:class:`Answers`); beyond it, the oldest
are taken as given up on without a word. Only the two batches in hand have requests the
consumer still collects (:mod:`hub.consumers.intake`), one per ``SIGN_CHUNK`` (32) receipts: a
few dozen for batches of 128 deliveries; at most 4,096 answers of 32 RSA-2048 signatures are
held (~35 MB)."""


class SignerUnavailable(TransientError):
    """A signer process died, failed or did not answer: nothing of the batch may leave."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.INTERNAL_ERROR, f"signer process unavailable: {detail}")


@dataclass(frozen=True, slots=True)
class SignerSpec:
    """What a worker needs to load the keys (nothing secret: the passphrase is read by the
    worker from the variable named here, as the consumer reads it)."""

    keystore: str
    """The keystore directory (:meth:`hub.trust.keystore.Keystore.load`)."""
    passphrase_env: str
    """The variable holding the keystore passphrase (``[hub] key_passphrase_env``)."""
    log_format: str = "auto"
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class Ticket:
    """One request message sent to a worker: its number, the worker, how many signatures."""

    seq: int
    worker: int
    size: int


class ReceiptSigner(Protocol):
    """What :mod:`hub.consumers.signing` needs of a signer: :class:`SignerPool` (processes) or
    :class:`hub.trust.signer_thread.SignerThread` (a thread of the consumer's process)."""

    restarts: int
    """How often it was restarted: a ticket from before a restart is asked again."""

    def start(self) -> None: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...
    def submit(self, requests: Sequence[tuple[str, bytes]]) -> Ticket: ...
    def collect(self, tickets: Sequence[Ticket],
                idle: Callable[[], None] | None = None) -> list[bytes]: ...
    def abandon(self, tickets: Sequence[Ticket]) -> None: ...


_A = TypeVar("_A")


class Answers(Generic[_A]):
    """One worker's answers by request number, from the moment a request is sent until its
    answer is collected or the request given up on.

    A worker answers in the order it was asked, but the consumer does not always collect in
    that order: after a ``receipt_conflict`` the batch in hand is planned again
    (:meth:`hub.consumers.intake.IntakeConsumer._commit`) and its new requests, numbered after
    those of the next batch already sent, are collected first. The next batch's answers, which
    came first, are kept here for it — dropping them as stale made it wait the whole
    ``signer_timeout_s`` and restarted the signer. The answer of a request given up on
    (:meth:`abandon`) is dropped when it comes. A request given up on without a word (a batch
    dropped with its broker connection) is forgotten once :data:`ANSWERS_KEPT` later requests
    are outstanding: the table never grows without bound.

    Not thread-safe: the pool uses it from the consumer's thread alone, a signer thread under
    its condition's lock."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = ANSWERS_KEPT if limit is None else limit
        self._outstanding: dict[int, None] = {}
        """Requests sent and neither collected nor given up on, oldest first."""
        self._early: dict[int, _A] = {}
        """Answers of outstanding requests, read before they were asked for."""

    def __len__(self) -> int:
        return len(self._early)

    def sent(self, seq: int) -> None:
        """Request ``seq`` left for the worker (before its answer can come)."""
        self._outstanding[seq] = None
        while len(self._outstanding) > self.limit:
            oldest = next(iter(self._outstanding))
            self.abandon(oldest)

    def wanted(self, seq: int) -> bool:
        """Whether ``seq`` is outstanding: its answer is kept when it comes."""
        return seq in self._outstanding

    def arrived(self, seq: int, answer: _A) -> None:
        """The answer to ``seq``: kept until :meth:`take`, dropped if ``seq`` was given up on."""
        if seq in self._outstanding:
            self._early[seq] = answer

    def take(self, seq: int) -> _A | None:
        """The answer to ``seq`` once it came (then ``seq`` is done), else None."""
        answer = self._early.pop(seq, None)
        if answer is not None:
            del self._outstanding[seq]
        return answer

    def abandon(self, seq: int) -> None:
        """Nobody will collect ``seq``: drop its answer, now or when it comes."""
        self._outstanding.pop(seq, None)
        self._early.pop(seq, None)


@dataclass(slots=True)
class _Worker:
    process: Any  # multiprocessing.context.SpawnProcess (no public type)
    conn: Connection
    answers: Answers[tuple[Any, ...]] = field(default_factory=Answers)
    """Its answers read before they were asked for (a new worker starts with none)."""


def usable_cores(affinity: Callable[[int], set[int]] | None = None,
                 cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota
    (``cpu.max`` = ``quota period``; a container limited to 1.5 CPUs counts 1)."""
    get = affinity if affinity is not None else getattr(os, "sched_getaffinity", None)
    cores = len(get(0)) if get is not None else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    return max(1, cores)


def signer_processes(setting: int | str, cores: int) -> int:
    """How many signer processes ``[hub] signer_processes`` asks for on a host with
    ``cores`` usable cores (``auto``: one when there is a core to spare)."""
    if setting == "auto":
        return 1 if cores >= 2 else 0
    return int(setting)


class SignerPool:
    """``processes`` signer workers holding the keys of ``spec``; ``expected`` maps each
    organization to the SHA-256 fingerprint of its certificate in the consumer's keystore."""

    def __init__(self, spec: SignerSpec, processes: int, *, expected: Mapping[str, str],
                 timeout_s: float) -> None:
        if processes < 1:
            raise ValueError("a signer pool has at least one process")
        self.spec = spec
        self.processes = processes
        self.expected = dict(expected)
        self.timeout_s = timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._seq = itertools.count(1)
        self.restarts = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers and wait until each holds exactly the consumer's keys.

        Raises :class:`ConfigurationError` when a worker cannot load them (the message is the
        worker's one line), :class:`SignerUnavailable` when it dies or does not answer."""
        if self._workers:
            return
        try:
            for index in range(self.processes):
                self._workers.append(self._spawn(index))
            for worker in self._workers:
                self._handshake(worker)
        except BaseException:
            self.close()
            raise
        log.info("signer_started", processes=self.processes,
                 pids=[w.process.pid for w in self._workers], keys=sorted(self.expected))

    def _spawn(self, index: int) -> _Worker:
        mine, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=serve, args=(theirs, self.spec),
                                        name=f"edxml-hub signer {index}", daemon=True)
        process.start()
        theirs.close()  # the worker holds the only other end: its death is an EOF here
        return _Worker(process, mine)

    def _handshake(self, worker: _Worker) -> None:
        reply = self._receive(worker, time.monotonic() + START_TIMEOUT_S, None)
        if reply[0] == "error":
            raise ConfigurationError(f"signer process: {reply[1]}")
        held = reply[1]
        if held != self.expected:
            differs = sorted(k for k in {*held, *self.expected}
                             if held.get(k) != self.expected.get(k))
            raise ConfigurationError(
                "signer process: its keystore is not the consumer's (rotated keys? restart the "
                f"hub): {', '.join(differs[:5])}")

    def restart(self) -> None:
        """Stop every worker (killing one that hangs) and start them again."""
        self.restarts += 1
        self.close()
        try:
            self.start()
        except ConfigurationError as exc:
            # It worked before: a token unplugged, a file being replaced. Transient for the
            # batch in hand, which is held, never dropped.
            raise SignerUnavailable(str(exc)) from None

    def close(self) -> None:
        """Ask the workers to exit; kill those that do not within a second."""
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
            with contextlib.suppress(OSError):
                worker.conn.close()
        for worker in workers:
            worker.process.join(1.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5.0)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (for operators and tests)."""
        return [w.process.pid for w in self._workers]

    # -- one batch -----------------------------------------------------------------------------
    def submit(self, requests: Sequence[tuple[str, bytes]]) -> Ticket:
        """Send ``(organization, document digest)`` pairs in one message to the next worker
        (round robin). Raises :class:`SignerUnavailable` when that worker is gone."""
        if not self._workers:
            raise SignerUnavailable("not started")
        seq = next(self._seq)
        index = seq % len(self._workers)
        worker = self._workers[index]
        worker.answers.sent(seq)
        try:
            worker.conn.send(
                (seq, [org for org, _ in requests], [digest for _, digest in requests]))
        except (OSError, ValueError) as exc:
            worker.answers.abandon(seq)
            raise SignerUnavailable(f"cannot reach the signer: {exc}") from None
        return Ticket(seq, index, len(requests))

    def abandon(self, tickets: Sequence[Ticket]) -> None:
        """Nobody will collect ``tickets`` (their batch was given up on): their answers are
        dropped, not kept for a collect that never comes."""
        for ticket in tickets:
            if ticket.worker < len(self._workers):
                self._workers[ticket.worker].answers.abandon(ticket.seq)

    def collect(self, tickets: Sequence[Ticket], idle: Callable[[], None] | None = None
                ) -> list[bytes]:
        """The signature values of ``tickets``, in order. ``idle`` is called every ~0.2 s
        while waiting (the consumer pumps its broker connection there). Answers to other
        requests read meanwhile are kept for their tickets (:class:`Answers`)."""
        values: list[bytes] = []
        for ticket in tickets:
            if ticket.worker >= len(self._workers):
                raise SignerUnavailable("the signer was restarted since")
            worker = self._workers[ticket.worker]
            # Per request (a few dozen signatures): a slow token never times a whole batch out.
            deadline = time.monotonic() + self.timeout_s
            while (reply := worker.answers.take(ticket.seq)) is None:
                if not worker.answers.wanted(ticket.seq):
                    # Given up on, forgotten, or sent to a worker replaced since.
                    raise SignerUnavailable(f"request {ticket.seq} was given up on")
                got = self._receive(worker, deadline, idle)
                if not isinstance(got[0], int) or got[0] > ticket.seq:
                    # In order, a worker answers this request before any later one.
                    raise SignerUnavailable(f"answer to request {got[0]}, not {ticket.seq}")
                worker.answers.arrived(got[0], got)
            if reply[1] == "error":
                raise SignerUnavailable(str(reply[2]))
            if len(reply[2]) != ticket.size:
                raise SignerUnavailable(f"{len(reply[2])} signatures for {ticket.size} requests")
            values.extend(reply[2])
        return values

    def _receive(self, worker: _Worker, deadline: float, idle: Callable[[], None] | None
                 ) -> tuple[Any, ...]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SignerUnavailable(
                    f"no answer from pid {worker.process.pid} within {self.timeout_s:g} s")
            ready = wait([worker.conn, worker.process.sentinel], min(left, _IDLE_EVERY_S))
            if worker.conn in ready:
                try:
                    reply: tuple[Any, ...] = worker.conn.recv()
                except (EOFError, OSError):
                    ready = [worker.process.sentinel]
                else:
                    return reply
            if worker.process.sentinel in ready:
                worker.process.join(1.0)
                raise SignerUnavailable(
                    f"pid {worker.process.pid} exited (code {worker.process.exitcode})")
            if idle is not None:
                idle()


# -- the worker --------------------------------------------------------------------------------


def serve(conn: Connection, spec: SignerSpec) -> None:
    """A worker's main: load the keys once, then sign batches until the pipe closes."""
    # The consumer decides when to stop (SIGTERM finishes its batches first): the worker goes
    # when its pipe closes, never on a signal meant for the process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from hub import logs

    logs.configure(spec.log_format, spec.log_level)
    from hub.trust.keystore import Keystore
    from hub.trust.signing import sign_bytes, signed_info_c14n

    passphrase = os.environ.get(spec.passphrase_env)
    try:
        keystore = Keystore.load(spec.keystore, passphrase.encode() if passphrase else None)
    except ConfigurationError as exc:
        conn.send(("error", str(exc)))
        return
    try:
        conn.send(("ready", {org: signer.fingerprint for org, signer in keystore.items()}))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            seq, organizations, digests = message
            try:
                reply: tuple[Any, ...] = (seq, "ok", [
                    sign_bytes(keystore[org], signed_info_c14n(digest))
                    for org, digest in zip(organizations, digests, strict=True)])
            except KeyError as exc:
                reply = (seq, "error", f"no key for {exc.args[0]}")
            except TransientError as exc:  # a token that cannot sign now
                reply = (seq, "error", exc.detail)
            try:
                conn.send(reply)
            except OSError:  # the consumer is gone
                return
    finally:
        for signer in keystore.values():
            signer.close()
