"""Receipts signed off the consumer's thread: one signing request per batch (issue 23).

With ``[hub] signer_processes`` ≥ 1 the intake plans a batch with its receipts *deferred*
(:meth:`hub.receipts.HubReceipts.deferred`): each receipt is written and presigned, and a
placeholder stands for its bytes wherever the plan holds them — the outbox row, the message to
publish, the ledger document (its digest and id) and the ``receipt_issued`` event. The batch's
SignedInfo bytes go to the signer processes in one message (:class:`~hub.trust.signer_pool.
SignerPool`); the consumer finishes the batch before it meanwhile; then :meth:`ReceiptSigning.
complete` takes the signature values back, checks each against the certificate the consumer
holds for its organization, and puts the signed bytes in place of the placeholders. Only then is
the batch staged and published: a placeholder never leaves the consumer (checked).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hub.consumers.plan import BatchPlan
from hub.receipts.issuer import PLACEHOLDER, HubReceipts, PendingSignatures
from hub.trust.signer_pool import SignerPool, SignerUnavailable, Ticket

__all__ = ["ReceiptSigning", "SigningJob", "fill"]


@dataclass(slots=True)
class SigningJob:
    """The deferred receipts of one planned batch and the request sent for them."""

    pending: PendingSignatures
    ticket: Ticket | None = None


class ReceiptSigning:
    """Plans batches with deferred receipts and completes them with a :class:`SignerPool`."""

    def __init__(self, receipts: HubReceipts, pool: SignerPool) -> None:
        self.receipts = receipts
        self.pool = pool
        self._public: dict[str, rsa.RSAPublicKey] = {}
        for organ_id, signer in receipts.keystore.items():
            key = signer.cert.public_key()
            if isinstance(key, rsa.RSAPublicKey):
                self._public[organ_id] = key

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    def plan(self, make: Callable[[], BatchPlan]) -> tuple[BatchPlan, SigningJob | None]:
        """Plan with the receipts deferred, and send their signing request at once."""
        with self.receipts.deferred() as pending:
            plan = make()
        if not len(pending):
            return plan, None
        job = SigningJob(pending)
        # Without a ticket complete() reports the signer down, and the consumer restarts it.
        with contextlib.suppress(SignerUnavailable):
            self.submit(job)
        return plan, job

    def submit(self, job: SigningJob) -> None:
        """(Re)send the job's request. Raises :class:`SignerUnavailable`."""
        job.ticket = None
        job.ticket = self.pool.submit(job.pending.requests())

    def complete(self, plan: BatchPlan, job: SigningJob,
                 idle: Callable[[], None] | None = None) -> None:
        """Wait for the job's signatures, check them and fill them into ``plan``. Raises
        :class:`SignerUnavailable` (the plan untouched) when the signer fails: restart the pool
        (:meth:`SignerPool.restart`), :meth:`submit` again and retry."""
        if job.ticket is None:
            raise SignerUnavailable("the batch was not sent to the signer")
        values = self.pool.collect(job.ticket, idle)
        bodies: dict[bytes, bytes] = {}
        for placeholder, presigned, value in zip(job.pending.placeholders, job.pending.presigned,
                                                 values, strict=True):
            key = self._public.get(presigned.organ_id)
            try:
                if key is None:
                    raise InvalidSignature
                # ~0.02 ms: a signer process can never make the hub publish a receipt that does
                # not verify under the certificate it carries.
                key.verify(value, presigned.signed_info, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                raise SignerUnavailable(
                    f"a signature for {presigned.organ_id} does not verify") from None
            bodies[placeholder] = presigned.complete(value)
        fill(plan, bodies)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fill(plan: BatchPlan, bodies: Mapping[bytes, bytes]) -> None:
    """Replace every placeholder in ``plan`` by its signed receipt: the bytes in the outbox and
    in the messages, and in the ledger the document's bytes, digest and id and the event's
    ``receipt_digest``. Raises ``AssertionError`` if a placeholder would remain."""
    if not bodies:
        return
    digests = {_sha256(p): _sha256(b) for p, b in bodies.items()}
    plan.outbox[:] = [dataclasses.replace(r, body=bodies[r.body])
                      if r.body.startswith(PLACEHOLDER) else r for r in plan.outbox]
    for phase in (plan.first, plan.second):
        phase[:] = [dataclasses.replace(o, body=bodies[o.body])
                    if o.body.startswith(PLACEHOLDER) else o for o in phase]
    for i, d in enumerate(plan.documents):
        if d.kind == "receipt" and d.raw.startswith(PLACEHOLDER):
            digest = digests[d.digest]
            # document_id is "receipt:<kind>:<digest[:32]>" (hub.consumers.plan)
            assert d.document_id.endswith(d.digest[:32]), d.document_id
            plan.documents[i] = dataclasses.replace(
                d, raw=bodies[d.raw], digest=digest,
                document_id=d.document_id[:-32] + digest[:32])
    for i, e in enumerate(plan.events):
        old = e.detail.get("receipt_digest") if e.detail else None
        if old in digests:
            plan.events[i] = dataclasses.replace(e, detail={**e.detail,
                                                            "receipt_digest": digests[old]})
    _check_signed(plan, digests)


def _check_signed(plan: BatchPlan, placeholder_digests: Mapping[str, str]) -> None:
    left = [o.message_id for o in (*plan.first, *plan.second) if o.body.startswith(PLACEHOLDER)]
    left += [r.message_id for r in plan.outbox if r.body.startswith(PLACEHOLDER)]
    left += [d.document_id for d in plan.documents if d.raw.startswith(PLACEHOLDER)
             or d.digest in placeholder_digests]
    left += [e.message_id for e in plan.events
             if e.detail and e.detail.get("receipt_digest") in placeholder_digests]
    if left:
        raise AssertionError(f"unsigned receipts left in the plan: {left[:3]}")
