"""A signer thread: receipt signatures made beside the consumer's loop, in its own process.

With ``[hub] signer_processes = 0`` (one process) on a host with a core to spare, the consumer
still need not make the receipts' RSA signatures in its own thread: ``cryptography`` (51 here)
releases the GIL while OpenSSL signs, so a thread holding the same loaded keys signs batch
*k+1* on the other core while the consumer publishes and commits batch *k* and plans on —
the overlap a :class:`~hub.trust.signer_pool.SignerPool` gives, without a second process, a
second load of the keys, or pickling (measured on the 2-core VM: two threads make 2,000
RSA-2048 signatures in 0.275 s, one thread in 0.518 s; a Python-busy thread beside them loses
~3 % of its pace).

Same protocol as the pool (:class:`~hub.trust.signer_pool.ReceiptSigner`): requests of
``(organization, document digest)`` pairs are queued by :meth:`SignerThread.submit`, the
signature values taken back by :meth:`SignerThread.collect` in order, checked by the caller
(:mod:`hub.consumers.signing`) against the certificate before anything of the batch leaves.
Given the caller's certificate keys (:meth:`SignerThread.check_with`), the thread makes that
check itself, right after each signature and with the GIL released as for the signature, and
:meth:`SignerThread.collect_checked` answers each value with the request it signed, which the
caller matches to its receipt: the same check, off the consumer's loop (~3 % of it, measured).
Answers are kept by request number until collected, in whatever order
(:class:`~hub.trust.signer_pool.Answers`: after a ``receipt_conflict`` the batch in hand is
asked again and collected before the next batch, asked earlier); the thread does not sign a
request given up on (:meth:`SignerThread.abandon`). A request the thread cannot sign (no
key, a token that fails) or a thread that stopped makes :meth:`collect` raise
:class:`~hub.trust.signer_pool.SignerUnavailable`: the batch is held and signed again after
:meth:`restart`, as with a signer process. Not for keys on a PKCS#11 token
(:func:`holds_token_keys`): the token's session (and its lock) would be shared with the ledger's
checkpoint signature in the consumer's thread, and a thread stuck in a hung token cannot be
given up the way a signer process is killed — such a keystore is signed inline or by signer
processes, each with a session of its own.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from hub.errors import TransientError
from hub.logs import get_logger
from hub.trust.keystore import OrgSigner
from hub.trust.signer_pool import Answers, SignerUnavailable, Ticket
from hub.trust.signing import sign_bytes, signature_verifies, signed_info_c14n
from hub.trust.token import TokenKey

__all__ = ["SignerThread", "holds_token_keys"]

log = get_logger("hub.trust.signer_thread")

_IDLE_EVERY_S = 0.2
"""While waiting on the thread, call the caller's ``idle`` this often (broker heartbeats)."""


def holds_token_keys(keystore: Mapping[str, OrgSigner]) -> bool:
    """Whether some key of ``keystore`` is held on a PKCS#11 token."""
    return any(isinstance(signer.key, TokenKey) for signer in keystore.values())


class _Worker:
    """One signing thread with its queue and its answers (a restart makes a new one: answers
    of a thread given up on never reach its successor's requests)."""

    def __init__(self, keystore: Mapping[str, OrgSigner], name: str,
                 check: Mapping[str, rsa.RSAPublicKey] | None = None) -> None:
        self.keystore = keystore
        self.check = check
        """The certificate key each signature is verified with before it is answered (None:
        the caller checks)."""
        self.requests: queue.SimpleQueue[tuple[int, list[tuple[str, bytes]]] | None] = (
            queue.SimpleQueue())
        self.answers: Answers[tuple[str, Any]] = Answers()
        """Its answers until collected (read and written under :attr:`answered`'s lock)."""
        self.answered = threading.Condition()
        self.stopped = threading.Event()
        """Given up on: requests still queued are dropped, not signed."""
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        while True:
            item = self.requests.get()
            if item is None or self.stopped.is_set():
                return
            seq, requests = item
            with self.answered:
                if not self.answers.wanted(seq):
                    continue  # given up on while queued: never signed
            answer: tuple[str, Any]
            try:
                answer = ("ok", [(org, digest, self._sign(org, digest))
                                 for org, digest in requests])
            except KeyError as exc:
                answer = ("error", f"no key for {exc.args[0]}")
            except _NotVerified as exc:
                answer = ("error", f"a signature for {exc.org} does not verify")
            except TransientError as exc:  # a token that cannot sign now
                answer = ("error", exc.detail)
            except Exception as exc:  # never a silent death: the batch waiting on it is held
                log.error("signer_thread_failed", error=type(exc).__name__)
                answer = ("error", f"{type(exc).__name__} while signing")
            with self.answered:
                self.answers.arrived(seq, answer)
                self.answered.notify_all()

    def _sign(self, org: str, digest: bytes) -> bytes:
        signed_info = signed_info_c14n(digest)
        value = sign_bytes(self.keystore[org], signed_info)
        # A signature that does not verify under the certificate the receipt carries never
        # leaves: a fault, a key that is not the certificate's.
        if self.check is not None and not signature_verifies(self.check.get(org), value,
                                                             signed_info):
            raise _NotVerified(org)
        return value


class _NotVerified(Exception):
    """A signature the certificate's key does not verify (never answered)."""

    def __init__(self, org: str) -> None:
        super().__init__(org)
        self.org = org


class SignerThread:
    """Signs receipts in a thread of this process with ``keystore`` (already loaded)."""

    def __init__(self, keystore: Mapping[str, OrgSigner], *, timeout_s: float) -> None:
        self.keystore = keystore
        self.timeout_s = timeout_s
        self.restarts = 0
        self._seq = itertools.count(1)
        self._worker: _Worker | None = None
        self._check: Mapping[str, rsa.RSAPublicKey] | None = None

    def check_with(self, keys: Mapping[str, rsa.RSAPublicKey]) -> bool:
        """Verify each signature in the thread with ``keys`` (the caller's certificate key per
        organization) before answering it; :meth:`collect_checked` then answers each value
        with the request it signed. Before :meth:`start`. True: the thread checks."""
        if self._worker is not None:
            raise RuntimeError("check_with() after start()")
        self._check = dict(keys)
        return True

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = _Worker(self.keystore, f"receipt signer {self.restarts}",
                                   self._check)
            self._worker.thread.start()

    def restart(self) -> None:
        """Give the thread up (it ends once its request in hand is signed) and start another."""
        self.restarts += 1
        self.close(wait_s=0.0)
        self.start()

    def close(self, wait_s: float = 5.0) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stopped.set()
            worker.requests.put(None)
            worker.thread.join(wait_s)

    # -- one batch -----------------------------------------------------------------------------
    def submit(self, requests: Sequence[tuple[str, bytes]]) -> Ticket:
        """Queue ``(organization, document digest)`` pairs for the thread; never waits."""
        worker = self._worker
        if worker is None or not worker.thread.is_alive():
            raise SignerUnavailable("the signer thread is not running")
        seq = next(self._seq)
        with worker.answered:
            worker.answers.sent(seq)
        worker.requests.put((seq, list(requests)))
        return Ticket(seq, self.restarts, len(requests))

    def abandon(self, tickets: Sequence[Ticket]) -> None:
        """Nobody will collect ``tickets`` (their batch was given up on): those still queued
        are not signed, the answers of the others dropped."""
        worker = self._worker
        if worker is None:
            return
        with worker.answered:
            for ticket in tickets:
                if ticket.worker == self.restarts:
                    worker.answers.abandon(ticket.seq)

    def collect(self, tickets: Sequence[Ticket], idle: Callable[[], None] | None = None
                ) -> list[bytes]:
        """The signature values of ``tickets``, in order. ``idle`` is called every ~0.2 s
        while waiting (the consumer pumps its broker connection there)."""
        return [value for _org, _digest, value in self.collect_checked(tickets, idle)]

    def collect_checked(self, tickets: Sequence[Ticket],
                        idle: Callable[[], None] | None = None
                        ) -> list[tuple[str, bytes, bytes]]:
        """:meth:`collect`, each value with the ``(organization, digest)`` it was made for —
        verified in the thread with the keys of :meth:`check_with`, if given."""
        values: list[tuple[str, bytes, bytes]] = []
        for ticket in tickets:
            worker = self._worker
            if worker is None or ticket.worker != self.restarts:
                raise SignerUnavailable("the signer thread was restarted since")
            deadline = time.monotonic() + self.timeout_s
            while True:
                with worker.answered:
                    answer = worker.answers.take(ticket.seq)
                    if answer is None:
                        if not worker.answers.wanted(ticket.seq):
                            raise SignerUnavailable(f"request {ticket.seq} was given up on")
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise SignerUnavailable(
                                f"no answer from the signer thread within {self.timeout_s:g} s")
                        if not worker.thread.is_alive():
                            raise SignerUnavailable("the signer thread stopped")
                        worker.answered.wait(min(left, _IDLE_EVERY_S))
                        # Answers of other requests stay for their tickets, collected later
                        # (the next batch's, when the batch in hand was asked again).
                        answer = worker.answers.take(ticket.seq)
                if answer is not None:
                    break
                if idle is not None:
                    idle()
            status, payload = answer
            if status == "error":
                raise SignerUnavailable(str(payload))
            if len(payload) != ticket.size:
                raise SignerUnavailable(f"{len(payload)} signatures for {ticket.size} requests")
            values.extend(payload)
        return values
