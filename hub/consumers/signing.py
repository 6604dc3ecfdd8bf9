"""Receipts signed off the consumer's thread, a few requests per batch (issue 23).

With ``[hub] signer_processes`` ≥ 1 the intake plans a batch with its receipts *deferred*
(:meth:`hub.receipts.HubReceipts.deferred`): each receipt is written and presigned, and a
placeholder stands for its bytes wherever the plan holds them — the issued receipt, the message
to publish, the ledger document (its digest and id) and the ``receipt_issued`` event. Every
:data:`SIGN_CHUNK` receipts, their digests go to the signer processes in one message
(:class:`~hub.trust.signer_pool.SignerPool`; with ``signer_processes = 0`` on a host with a
core to spare, a thread of the consumer's process, :class:`~hub.trust.signer_thread.SignerThread`)
while planning goes on; the consumer then
publishes the batch's packets and finishes the batch before this one; then
:meth:`ReceiptSigning.complete` takes the signature values back, checks each against the
certificate the consumer holds for its organization, and puts the signed bytes in place of the
placeholders. A signer thread is handed those certificate keys and makes that check itself as
it signs (the GIL released, off the loop); each of its answers names the request it was made
for, which must be the receipt's it completes. Only then is the batch recorded and are its
receipts published: a placeholder never leaves the consumer (checked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from hub.consumers.plan import BatchPlan
from hub.receipts.issuer import PLACEHOLDER, HubReceipts, PendingSignatures
from hub.trust.signer_pool import ReceiptSigner, SignerUnavailable, Ticket
from hub.trust.signing import Presigned, signature_verifies, signed_info_c14n

__all__ = ["SIGN_CHUNK", "ReceiptSigning", "SigningJob", "fill"]


SIGN_CHUNK = 32
"""Receipts per request message: the first leave for the signer while the rest of the batch is
still planned, so signing overlaps planning as well as the previous batch's commit (one message
per batch left the signer idle until the batch was planned, then the consumer waiting on it
once the ledger commit got short); 32 keeps the messages few and small (~2 KB)."""


@dataclass(slots=True)
class SigningJob:
    """The deferred receipts of one planned batch and the requests sent for them."""

    pending: PendingSignatures | None = None
    tickets: list[Ticket] = field(default_factory=list)
    broken: bool = False
    """A request could not be sent: the signer must be restarted and the job sent again."""
    generation: int = 0
    """The pool's restart count when the requests were sent (:attr:`SignerPool.restarts`)."""


class ReceiptSigning:
    """Plans batches with deferred receipts and completes them with a signer: signer
    processes (:class:`~hub.trust.signer_pool.SignerPool`) or a signer thread
    (:class:`~hub.trust.signer_thread.SignerThread`)."""

    def __init__(self, receipts: HubReceipts, pool: ReceiptSigner) -> None:
        self.receipts = receipts
        self.pool = pool
        self._public: dict[str, rsa.RSAPublicKey] = {}
        for organ_id, signer in receipts.keystore.items():
            key = signer.cert.public_key()
            if isinstance(key, rsa.RSAPublicKey):
                self._public[organ_id] = key
        # A signer thread of this process verifies each signature with these very keys as it
        # makes it (the GIL released, beside the loop); a signer process is checked here.
        check_with = getattr(pool, "check_with", None)
        self._collect_checked: Callable[..., list[tuple[str, bytes, bytes]]] | None = (
            pool.collect_checked  # type: ignore[attr-defined]
            if check_with is not None and check_with(self._public) else None)

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    def plan(self, make: Callable[[], BatchPlan]) -> tuple[BatchPlan, SigningJob | None]:
        """Plan with the receipts deferred; their requests leave every :data:`SIGN_CHUNK`
        receipts while planning goes on, the rest when it ends. Never raises for the signer
        (planning must not fail for it): a request that cannot be sent marks the job broken,
        and :meth:`complete` reports it."""
        job = SigningJob(generation=self.pool.restarts)

        def send(part: list[tuple[str, bytes]]) -> None:
            if job.broken or not part:
                return
            try:
                job.tickets.append(self.pool.submit(part))
            except SignerUnavailable:
                job.broken = True

        with self.receipts.deferred(SIGN_CHUNK, send) as pending:
            plan = make()
        if not len(pending):
            return plan, None
        job.pending = pending
        send(pending.take())
        return plan, job

    def submit(self, job: SigningJob) -> None:
        """Send the whole job again (after a restart). Raises :class:`SignerUnavailable`."""
        assert job.pending is not None
        requests = job.pending.requests()
        job.tickets, job.broken = [], True
        job.generation = self.pool.restarts
        job.tickets = [self.pool.submit(requests[i:i + SIGN_CHUNK])
                       for i in range(0, len(requests), SIGN_CHUNK)]
        job.broken = False

    def complete(self, plan: BatchPlan, job: SigningJob,
                 idle: Callable[[], None] | None = None) -> None:
        """Wait for the job's signatures, check them and fill them into ``plan``. Raises
        :class:`SignerUnavailable` (the plan untouched) when the signer fails: restart the pool
        (:meth:`SignerPool.restart`), :meth:`submit` again and retry."""
        pending = job.pending
        assert pending is not None
        if job.generation != self.pool.restarts:
            # Asked of signer processes replaced since (while the batch before this one was
            # finished): ask the new ones. Not a failure of theirs.
            self.submit(job)
        if job.broken:
            raise SignerUnavailable("a request could not be sent to the signer")
        if self._collect_checked is not None:
            values = _values(pending, self._collect_checked(job.tickets, idle), _matched)
        else:
            values = _values(pending, self.pool.collect(job.tickets, idle), self._verified)
        bodies = {placeholder: presigned.complete(value) for placeholder, presigned, value
                  in zip(pending.placeholders, pending.presigned, values, strict=True)}
        fill(plan, bodies)

    def _verified(self, presigned: Presigned, value: bytes) -> bytes:
        """``value`` once it verifies over the receipt's SignedInfo under the certificate the
        consumer holds for its organization (a signer process's answer)."""
        # ~0.02 ms: a signer process can never make the hub publish a receipt that does not
        # verify under the certificate it carries.
        if not signature_verifies(self._public.get(presigned.organ_id), value,
                                  presigned.signed_info):
            raise SignerUnavailable(f"a signature for {presigned.organ_id} does not verify")
        return value


_A = TypeVar("_A")


def _values(pending: PendingSignatures, answers: Sequence[_A],
            check: Callable[[Presigned, _A], bytes]) -> list[bytes]:
    """The signature value of each pending receipt, from the signer's ``answers`` in order,
    each passed by ``check`` (which raises :class:`SignerUnavailable`)."""
    if len(answers) != len(pending):
        raise SignerUnavailable(f"{len(answers)} signatures for {len(pending)} receipts")
    return [check(presigned, answer)
            for presigned, answer in zip(pending.presigned, answers, strict=True)]


def _matched(presigned: Presigned, answer: tuple[str, bytes, bytes]) -> bytes:
    """The value of an answer from a signer that verified it with this consumer's certificate
    keys as it made it (:meth:`SignerThread.check_with`), once the request it answers is the
    receipt's: an answer can never complete another receipt than the one it was verified for."""
    organ_id, digest, value = answer
    if (organ_id != presigned.organ_id or digest != presigned.digest
            or presigned.signed_info != signed_info_c14n(digest)):
        raise SignerUnavailable(f"a signature for {organ_id} answers another receipt than asked")
    return value


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_R = TypeVar("_R")


def _replaced(record: _R, **changes: Any) -> _R:
    """``dataclasses.replace`` for the plan's frozen records (none has a ``__post_init__``: a
    test holds them to it), by copying their fields instead of calling ``__init__`` again:
    ~0.5-1 µs a record instead of 3-5, four records per receipt."""
    new = object.__new__(type(record))
    state = getattr(record, "__dict__", None)
    if state is not None:
        new.__dict__.update(state, **changes)
    else:  # slots
        for name in type(record).__slots__:  # type: ignore[attr-defined]
            object.__setattr__(new, name, changes[name] if name in changes
                               else getattr(record, name))
    return new


def fill(plan: BatchPlan, bodies: Mapping[bytes, bytes]) -> None:
    """Replace every placeholder in ``plan`` by its signed receipt: the bytes of the issued
    receipts and of the messages, and in the ledger the document's bytes, digest and id and
    the event's ``receipt_digest``. Raises ``AssertionError`` if a placeholder would remain."""
    if not bodies:
        return
    digests = {_sha256(p): _sha256(b) for p, b in bodies.items()}
    plan.outbox[:] = [_replaced(r, body=bodies[r.body])
                      if r.body.startswith(PLACEHOLDER) else r for r in plan.outbox]
    for phase in (plan.first, plan.receipts):
        phase[:] = [_replaced(o, body=bodies[o.body])
                    if o.body.startswith(PLACEHOLDER) else o for o in phase]
    for i, d in enumerate(plan.documents):
        if d.kind == "receipt" and d.raw.startswith(PLACEHOLDER):
            digest = digests[d.digest]
            # document_id is "receipt:<kind>:<digest[:32]>" (hub.consumers.plan)
            assert d.document_id.endswith(d.digest[:32]), d.document_id
            plan.documents[i] = _replaced(
                d, raw=bodies[d.raw], digest=digest,
                document_id=d.document_id[:-32] + digest[:32])
    for i, e in enumerate(plan.events):
        old = e.detail.get("receipt_digest") if e.detail else None
        if old in digests:
            plan.events[i] = _replaced(e, detail={**e.detail, "receipt_digest": digests[old]})
    _check_signed(plan, digests)


def _check_signed(plan: BatchPlan, placeholder_digests: Mapping[str, str]) -> None:
    left = [o.message_id for o in (*plan.first, *plan.receipts)
            if o.body.startswith(PLACEHOLDER)]
    left += [r.message_id for r in plan.outbox if r.body.startswith(PLACEHOLDER)]
    left += [d.document_id for d in plan.documents if d.raw.startswith(PLACEHOLDER)
             or d.digest in placeholder_digests]
    left += [e.message_id for e in plan.events
             if e.detail and e.detail.get("receipt_digest") in placeholder_digests]
    if left:
        raise AssertionError(f"unsigned receipts left in the plan: {left[:3]}")
