"""The hub's receipt issuer: signed organization receipts (QCVN 102:2016 status packets).

Keys are held once by the :class:`~hub.trust.keystore.Keystore`. Each receipt is written from
its template (:func:`~hub.receipts.template.render_receipt`: the bytes and their exclusive c14n,
no lxml tree) and signed by construction (:func:`~hub.trust.signing.presign`): only the RSA
operation is left, done here — or, while :meth:`HubReceipts.deferred` is open, later and
elsewhere (a signer process, :mod:`hub.consumers.signing`): the receipt's bytes are then a
placeholder until its signature comes back.

``accepted`` / ``rejected`` / ``countersigned`` are signed as the hub operator; ``received``
("01 đã đến") as the recipient organization, when the hub hosts that organization's key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from hub.edxml.model import Envelope, StatusPacket
from hub.reasons import Reason
from hub.receipts.content import signature_value_of, unread_document_id
from hub.receipts.template import RenderedReceipt, render_receipt
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import Presigned, presign, sign_presigned

PLACEHOLDER = b"\x00edxml-hub unsigned receipt "
"""How the bytes of a deferred receipt start until it is signed (never XML: a NUL first)."""


class PendingSignatures:
    """The receipts of one batch that wait for their signature, each behind a placeholder
    that stands for its bytes in the batch's plan.

    With ``on_chunk``, every ``chunk`` receipts added are handed to it at once (their requests,
    :meth:`take`), so that signing starts while the rest of the batch is still planned."""

    def __init__(self, chunk: int = 0,
                 on_chunk: Callable[[list[tuple[str, bytes]]], None] | None = None) -> None:
        self._prefix = PLACEHOLDER + os.urandom(8).hex().encode() + b":"
        self.placeholders: list[bytes] = []
        self.presigned: list[Presigned] = []
        self.chunk = chunk
        self.on_chunk = on_chunk
        self._taken = 0

    def add(self, presigned: Presigned) -> bytes:
        placeholder = self._prefix + str(len(self.placeholders)).encode()
        self.placeholders.append(placeholder)
        self.presigned.append(presigned)
        if self.on_chunk is not None and len(self.presigned) - self._taken >= self.chunk:
            self.on_chunk(self.take())
        return placeholder

    def requests(self) -> list[tuple[str, bytes]]:
        """What the signer needs: (organization, document digest) per receipt, in order; it
        signs :func:`hub.trust.signing.signed_info_c14n` of the digest."""
        return [(p.organ_id, p.digest) for p in self.presigned]

    def take(self) -> list[tuple[str, bytes]]:
        """The requests added since the last :meth:`take`."""
        taken, self._taken = self._taken, len(self.presigned)
        return [(p.organ_id, p.digest) for p in self.presigned[taken:]]

    def __len__(self) -> int:
        return len(self.presigned)


class HubReceipts:
    """Issues the hub's signed receipts; satisfies :class:`hub.consumers.plan.ReceiptIssuer`."""

    def __init__(self, keystore: Keystore, operator: str) -> None:
        self.keystore = keystore
        self.operator = operator
        self._pending: PendingSignatures | None = None

    @contextmanager
    def deferred(self, chunk: int = 0,
                 on_chunk: Callable[[list[tuple[str, bytes]]], None] | None = None
                 ) -> Iterator[PendingSignatures]:
        """While open, receipts are not signed here: each is a placeholder registered in the
        yielded :class:`PendingSignatures` (which hands every ``chunk`` of them to
        ``on_chunk``), to be replaced by its signed bytes."""
        if self._pending is not None:
            raise RuntimeError("receipts are already deferred")
        self._pending = pending = PendingSignatures(chunk, on_chunk)
        try:
            yield pending
        finally:
            self._pending = None

    def _operator(self) -> OrgSigner | None:
        return self.keystore.signer(self.operator)

    def _sign(self, rendered: RenderedReceipt, signer: OrgSigner) -> bytes:
        presigned = presign(rendered.before, rendered.after, rendered.c14n, signer)
        if self._pending is not None:
            return self._pending.add(presigned)
        return sign_presigned(presigned, signer)

    def _render(self, kind: str, env: Envelope | StatusPacket, reporter: str, at: datetime,
                reason: Reason | None = None, status_code: str | None = None,
                recipient: str | None = None) -> RenderedReceipt:
        """The unsigned receipt, read from the tree the parser already built."""
        sig = signature_value_of(env.raw, env.tree)
        if isinstance(env, Envelope):
            code, document_id, sender = env.header.code.text, env.document_id, env.sender.organ_id
        else:
            # ResponseFor names the original document's sender: for a forwarded status that is
            # the body the status is about, not the reporter.
            rf = env.response_for
            code, document_id, sender = rf.code, rf.document_id, rf.organ_id
        return render_receipt(
            kind, envelope_raw=env.raw, signature_value=sig, sender=sender,
            document_id=document_id, code=code, reporter=reporter, at=at, reason=reason,
            envelope_digest=env.digest, status_code=status_code, recipient=recipient,
        )

    def accepted(self, envelope: Envelope, at: datetime) -> tuple[str, bytes] | None:
        signer = self._operator()
        if signer is None:
            return None
        return self.operator, self._sign(self._render("accepted", envelope, self.operator, at),
                                         signer)

    def rejected(self, raw: bytes, packet: Envelope | StatusPacket | None, reason: Reason,
                 at: datetime, *, publisher: str | None = None,
                 digest: str | None = None) -> tuple[str, bytes] | None:
        """The hub's signed refusal (QCVN 102 ``02``). About the parsed ``packet`` when there is
        one; otherwise (unparseable, not EDXML, unknown sender) about the exact bytes ``raw``,
        addressed to ``publisher`` — the organization of the publishing broker account — and
        identified by their digest: no DocumentId could be read (or trusted), so ``ResponseFor``
        names the bytes as the publisher's ``{digest16}/HUB`` of the day
        (:func:`~hub.receipts.content.unread_document_id`), a DocumentId any QCVN 102 reader
        parses."""
        signer = self._operator()
        if signer is None:
            return None
        if packet is not None and publisher is None:
            return self.operator, self._sign(
                self._render("rejected", packet, self.operator, at, reason=reason), signer)
        if publisher is None:
            return None
        digest = digest or hashlib.sha256(raw).hexdigest()
        document_id, code = unread_document_id(publisher, digest, at)
        rendered = render_receipt(
            "rejected", envelope_raw=raw, signature_value=b"", sender=publisher,
            document_id=document_id, code=code, reporter=self.operator, at=at, reason=reason,
            envelope_digest=digest)
        return self.operator, self._sign(rendered, signer)

    def received(self, envelope: Envelope, recipient: str, at: datetime) -> bytes | None:
        signer = self.keystore.signer(recipient)
        if signer is None:
            return None
        # The evidence names the recipient: only that recipient may sign a "received".
        return self._sign(self._render("received", envelope, recipient, at, recipient=recipient),
                          signer)

    def countersign(self, status: StatusPacket, at: datetime) -> tuple[str, bytes] | None:
        """The hub's countersignature of a status it forwards: (the operator, the bytes)."""
        signer = self._operator()
        if signer is None:
            return None
        return self.operator, self._sign(
            self._render("countersigned", status, self.operator, at,
                         status_code=status.status_code), signer)
