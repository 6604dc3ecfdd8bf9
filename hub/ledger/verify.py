"""Check a whole ledger: every entry's hash, every link, every checkpoint, every document's bytes.

The check streams both chained tables in ``seq`` order, recomputes each entry's canonical hash
and chain link (:mod:`hub.ledger.chain`), and stops at the first entry that fails, naming it.
What each mutation looks like to it:

- an edited row: its content no longer hashes to its ``entry_hash``;
- an edited row whose hashes were recomputed: the next link (or the signed head) disagrees;
- a deleted row: a gap in ``seq``;
- reordered rows: the links disagree;
- a truncated chain: the chain ends before the recorded head or before a checkpoint;
- a forged checkpoint: its head is not the chain's, or its signature does not verify;
- swapped envelope bytes: they no longer hash to the document's digest (which is chained).
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Callable, Iterator
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import Connection, select

from hub.ledger import chain
from hub.ledger.blobs import BlobStore
from hub.ledger.models import Checkpoint, Document, Event, Head
from hub.ledger.records import VerifyResult

SignatureCheck = Callable[[bytes, bytes], bool]
PROGRESS_EVERY = 10_000


def signature_check_from_cert(cert_pem: bytes) -> SignatureCheck:
    """A checker for signatures made with the key of ``cert_pem`` (RSA PKCS#1 v1.5 or PSS with
    SHA-256, or ECDSA with SHA-256). It proves who signed only if the caller trusts the cert."""
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()

    def check(payload: bytes, signature: bytes) -> bool:
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                try:
                    public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:
                    public_key.verify(
                        signature, payload,
                        padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                    salt_length=padding.PSS.AUTO),
                        hashes.SHA256())
                return True
            if isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
                return True
        except InvalidSignature:
            return False
        return False

    return check


def document_entry_from_row(row: Any) -> dict[str, Any]:
    report_digest = (chain.sha256_hex(row.report.encode("utf-8"))
                     if row.report is not None else None)
    return chain.document_entry(
        seq=int(row.seq), digest=row.digest, sender=row.sender, document_id=row.document_id,
        kind=row.kind, code=row.code, subject_digest=row.subject_digest,
        recipients=json.loads(row.recipients), received_at=chain.utc_text(row.received_at),
        links_to=row.links_to, size=int(row.size), report_digest=report_digest)


def event_entry_from_row(row: Any) -> dict[str, Any]:
    return chain.event_entry(
        seq=int(row.seq), kind=row.kind, message_id=row.message_id,
        at=chain.utc_text(row.at), digest=row.digest, organ_id=row.organ_id,
        reason=row.reason, actor=row.actor, detail=row.detail)


def entries(
    conn: Connection, up_to: int, *, with_raw: bool = True
) -> Iterator[tuple[int, str, Any]]:
    """Every chained row up to ``up_to``, in ``seq`` order: ``(seq, "document"|"event", row)``."""
    doc_cols = [c for c in Document.__table__.c if with_raw or c.name != "raw"]
    # Options on the statements, not the connection: Connection.execution_options() would
    # leave later statements on a server-side cursor.
    docs = conn.execute(select(*doc_cols).where(Document.seq <= up_to).order_by(Document.seq)
                        .execution_options(yield_per=500))
    events = conn.execute(select(*Event.__table__.c).where(Event.seq <= up_to)
                          .order_by(Event.seq).execution_options(yield_per=5000))
    doc_iter = ((int(r.seq), "document", r) for r in docs)
    event_iter = ((int(r.seq), "event", r) for r in events)
    yield from heapq.merge(doc_iter, event_iter, key=lambda t: t[0])


def verify_ledger(
    conn: Connection,
    blobs: BlobStore | None,
    *,
    progress: Callable[[int, int], None] | None = None,
    verify_signature: SignatureCheck | None = None,
    require_signed: bool = False,
    check_bytes: bool = True,
) -> VerifyResult:
    """Verify the ledger reachable through ``conn`` (one consistent snapshot)."""
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    with conn.begin():
        head = conn.execute(select(Head.seq, Head.chain_hash, Head.checkpoint_seq)
                            .where(Head.id == 1)).one()
        total = int(head.seq)
        checkpoints = {int(c.seq): c for c in conn.execute(select(*Checkpoint.__table__.c))}
        result = _walk(conn, blobs, total, checkpoints, progress, verify_signature,
                       require_signed, check_bytes)
        if result is not None:
            return result
        rows = total
        signed = sum(1 for c in checkpoints.values() if c.signature is not None)
        beyond = sorted(s for s in checkpoints if s > total)
        if beyond:
            return VerifyResult(
                rows, total + 1,
                f"checkpoint at row {beyond[0]} lies beyond the end of the chain (row {total}):"
                " the ledger was truncated", len(checkpoints), signed)
        if checkpoints and max(checkpoints) != int(head.checkpoint_seq):
            return VerifyResult(
                rows, int(head.checkpoint_seq),
                f"the head records a checkpoint at row {int(head.checkpoint_seq)} but the"
                f" latest present is at row {max(checkpoints)}: checkpoints were removed",
                len(checkpoints), signed)
        if progress is not None:
            progress(rows, total)
        return VerifyResult(rows, None, None, len(checkpoints), signed)


def _walk(
    conn: Connection,
    blobs: BlobStore | None,
    total: int,
    checkpoints: dict[int, Any],
    progress: Callable[[int, int], None] | None,
    verify_signature: SignatureCheck | None,
    require_signed: bool,
    check_bytes: bool,
) -> VerifyResult | None:
    link = chain.GENESIS
    expected = 1
    checked_cps = signed_cps = 0

    def bad(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(expected - 1, seq, problem, checked_cps, signed_cps)

    for seq, kind, row in entries(conn, total, with_raw=check_bytes):
        if seq != expected:
            if seq > expected:
                return bad(expected, f"row {expected} is missing (deleted)")
            return bad(seq, f"row {seq} appears twice")
        entry = document_entry_from_row(row) if kind == "document" else event_entry_from_row(row)
        entry_hash = hashlib.sha256(chain.canonical_json(entry)).hexdigest()
        if entry_hash != row.entry_hash:
            return bad(seq, f"row {seq} ({kind}) was modified: its content does not match its hash")
        link = chain.link(link, entry_hash)
        if link != row.chain_hash:
            return bad(seq, f"row {seq} ({kind}) breaks the chain: rows were reordered, inserted"
                            " or rewritten")
        if kind == "document" and check_bytes:
            data: bytes | None = bytes(row.raw) if row.raw is not None else (
                blobs.get(row.digest) if blobs is not None else None)
            if data is None:
                return bad(seq, f"row {seq}: the bytes of document {row.digest} are missing")
            if hashlib.sha256(data).hexdigest() != row.digest:
                return bad(seq, f"row {seq}: the stored bytes of document {row.digest} do not"
                                " match its digest (swapped)")
        cp = checkpoints.get(seq)
        if cp is not None:
            checked_cps += 1
            if cp.head != link:
                return bad(seq, f"checkpoint at row {seq} does not match the chain (forged,"
                                " or the rows before it were rewritten)")
            problem = check_checkpoint(cp, verify_signature, require_signed)
            if problem is not None:
                return bad(seq, problem)
            if cp.signature is not None:
                signed_cps += 1
        expected += 1
        if progress is not None and seq % PROGRESS_EVERY == 0:
            progress(seq, total)
    if expected - 1 != total:
        return VerifyResult(expected - 1, expected,
                            f"the chain ends at row {expected - 1} but the head records row"
                            f" {total}: the ledger was truncated", checked_cps, signed_cps)
    head_hash = conn.scalar(select(Head.chain_hash).where(Head.id == 1))
    if head_hash != link:
        return VerifyResult(total, total, "the recorded chain head does not match the last row",
                            checked_cps, signed_cps)
    return None


def check_checkpoint(cp: Any, verify_signature: SignatureCheck | None,
                     require_signed: bool) -> str | None:
    """None when the checkpoint's signature is acceptable, else the problem."""
    seq = int(cp.seq)
    if cp.signature is None:
        return f"checkpoint at row {seq} is not signed" if require_signed else None
    payload = chain.checkpoint_payload(seq, cp.head, chain.utc_text(cp.at))
    check = verify_signature
    if check is None:
        if cp.cert_pem is None:
            return f"checkpoint at row {seq} carries no certificate to check its signature"
        check = signature_check_from_cert(bytes(cp.cert_pem))
    if not check(payload, bytes(cp.signature)):
        return f"checkpoint at row {seq} has an invalid signature (forged)"
    return None
