"""Check a whole ledger: every entry's hash, every link, every checkpoint, every document's bytes.

The check streams both chained tables in ``seq`` order, recomputes each entry's canonical hash
and chain link (:mod:`hub.ledger.chain`), and stops at the first entry that fails, naming it.
It reads plain driver rows (no ORM objects or type processing per row) and rebuilds each entry
from them exactly as :func:`document_entry_from_row` and :func:`event_entry_from_row` do from
typed rows (:class:`_TimeText` proves its shortcut for the timestamps against the column type).
What each mutation looks like to it:

- an edited row: its content no longer hashes to its ``entry_hash``;
- an edited row whose hashes were recomputed: the next link (or the signed head) disagrees;
- a deleted row: a gap in ``seq``;
- reordered rows: the links disagree;
- a truncated chain: the chain ends before the recorded head or before a checkpoint. A cut
  made with the head moved back and the checkpoints after the cut removed leaves a shorter
  chain that holds together: nothing inside the database can tell it from a ledger that never
  grew further. Only a witness can: a row and its chain hash noted earlier (the head or the
  last signed checkpoint this check reports, :meth:`LedgerVerdict.head_line`; a checkpoint of
  an evidence bundle) and given back as ``expect``, which fails unless the chain holds that
  row with that hash;
- a forged checkpoint: its head is not the chain's, or its signature does not verify;
- swapped envelope bytes: they no longer hash to the document's digest (which is chained);
- swapped revocation evidence: a CRL or OCSP answer no longer hashes to its chained reference;
- a checkpoint signed by anyone but the operator: its certificate does not chain to the
  operator's CA roots, was not valid at the checkpoint's time, or names another organization
  (:class:`OperatorTrust`; a certificate is never trusted because the database holds it);
- signed checkpoints removed: the head records a later one, or (signatures required) no signed
  checkpoint covers any row. What no signature covers is always reported
  (:attr:`LedgerVerdict.signed_through`): an honest ledger has such rows between two
  checkpoints, so they cannot be refused, and only the database vouches for them;
- rows stored outside the chain (beyond the head's position, or at one that is not a whole
  number), which a walk up to the head would never read but every reader shows;
- a value the hub never writes (a number where a text belongs, JSON of another shape, a text
  that is not UTF-8, on SQLite a timestamp in another text than the hub's, which would move the
  row between periods since period queries compare the text): the row was modified. Nothing a
  row holds makes the check fail with anything but a verdict.

Once the chain holds, the derived tables (not chained) are compared with a recomputation from
the chained rows: the adoption report's rollup (``ledger_adoption``, :mod:`hub.ledger.adoption`)
and the per-recipient delivery state (``ledger_deliveries``, :mod:`hub.ledger.deliveries`). One
edited by hand would make the report, or a search by recipient, lie while the chain verifies.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, Dialect, exc, select, text

from hub.ledger import adoption, chain, deliveries
from hub.ledger.blobs import BlobStore
from hub.ledger.models import Document, Event, EvidenceBlob, UtcDateTime
from hub.ledger.records import REFUSED, VerifyResult

SignatureCheck = Callable[[bytes, bytes], bool]
PROGRESS_EVERY = 10_000
_UNREADABLE: tuple[type[Exception], ...] = (
    TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)
"""What rebuilding an entry from a value the hub never writes raises (a number where a text
belongs, a JSON text of another shape, bytes where a text belongs, a time in another text):
the row holding it was modified."""
_REREAD = 10_000
"""Rows read one at a time past the last judged one when a driver cannot read a row: more than
a cursor reads ahead (PostgreSQL: a batch of 5,000 events)."""


@dataclass(frozen=True)
class LedgerVerdict(VerifyResult):
    """A :class:`VerifyResult` of a whole ledger that also says how far its signatures reach.

    Rows after the last signed checkpoint hold together only as a chain: nothing but the
    database vouches for them. An honest ledger has some between two checkpoints (the hub signs
    when ``checkpoint_every`` rows or ``checkpoint_interval_s`` seconds have passed, at its next
    write, and when it stops; a crash leaves the rows since unsigned), and how many depends on
    the writer's settings, which the ledger does not record: they are reported, never refused."""

    signed_through: int = 0
    """The last row covered by a signed checkpoint the check accepted (0: none). Whether its
    signer is the operator's is :attr:`signers_trusted`."""
    head_hash: str = ""
    """The chain hash at row :attr:`rows` (the head), as the walk recomputed it."""
    signed_hash: str = ""
    """The chain hash at row :attr:`signed_through`, which that checkpoint signs ("": none)."""

    @property
    def unsigned_rows(self) -> int:
        """Rows after :attr:`signed_through`: no signature covers them."""
        return max(0, self.rows - self.signed_through)

    def head_line(self) -> str:
        """The head and the last signed checkpoint as ``SEQ:HASH`` witnesses (``expect``): what
        an auditor notes down, outside the database, to prove on a later day that the chain was
        not cut back (nothing inside the database can)."""
        signed = (f"{self.signed_through}:{self.signed_hash}" if self.signed_through
                  else "none")
        return (f"head {self.rows}:{self.head_hash}; last signed checkpoint {signed} (note"
                " them: `--expect SEQ:HASH` fails unless the chain still holds that row)")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "signed_through": self.signed_through,
                "unsigned_rows": self.unsigned_rows,
                "head": {"seq": self.rows, "chain_hash": self.head_hash},
                "signed_checkpoint": ({"seq": self.signed_through,
                                       "chain_hash": self.signed_hash}
                                      if self.signed_through else None)}


Witness = tuple[int, str]
"""A row and the chain hash it had when someone outside the database noted it."""


def witness(text: str) -> Witness:
    """``SEQ:HASH`` (a row from 1 and its 64-hex-digit chain hash) as a :data:`Witness`;
    ValueError otherwise (the ``type`` of ``--expect``: argparse names the option)."""
    seq, sep, chain_hash = text.strip().partition(":")
    chain_hash = chain_hash.strip().lower()
    if (not sep or not seq.isascii() or not seq.isdigit() or int(seq) < 1
            or len(chain_hash) != 64 or any(c not in "0123456789abcdef" for c in chain_hash)):
        raise ValueError(f"not SEQ:HASH (a row from 1, a colon, 64 hex digits): {text!r}")
    return int(seq), chain_hash


class SegmentWalkers(Protocol):
    """Who walks a long chain's segments elsewhere (:class:`hub.ledger.verify_parallel.Helpers`:
    helper processes); this module only judges their walks."""

    def segments(self, total: int) -> int:
        """How many segments to cut a chain of ``total`` rows into (1: walk it here)."""
        ...

    def walk(
        self,
        conn: Connection,
        blobs: BlobStore | None,
        segments: Sequence[Segment],
        *,
        check_bytes: bool,
        progress: Callable[[int, int], None] | None,
        meanwhile: Callable[[], None],
    ) -> list[tuple[Segment, SegmentWalk]]:
        """The walks of ``segments`` in the chain's order, up to the first with a problem,
        each begun from the link the one before ended on; ``meanwhile`` runs here."""
        ...


def signature_check_from_cert(cert: bytes | x509.Certificate) -> SignatureCheck:
    """A checker for signatures made with the key of ``cert`` (PEM or loaded; RSA PKCS#1 v1.5
    or PSS with SHA-256, or ECDSA with SHA-256). It proves who signed only if the caller
    trusts the certificate."""
    loaded = cert if isinstance(cert, x509.Certificate) else x509.load_pem_x509_certificate(cert)
    public_key = loaded.public_key()

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


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM text (a chain, leaf first)."""
    return list(x509.load_pem_x509_certificates(pem))


def _uid(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(values[0].value) if values else None


@dataclass(frozen=True)
class OperatorTrust:
    """Whose checkpoint signatures a verifier accepts (issue 16 L5, issue 17 item 3).

    A signer certificate is the operator's when it was valid at the checkpoint's time and

    - it is one of ``pinned`` (certificates an auditor got from the operator out of band), or
    - it chains (through ``intermediates`` or the CAs stored with it, never trusted for being
      there) to one of ``roots`` and its subject UID is ``operator_id`` — the hub operator
      organization's code, as the specialized CA writes it into organization certificates.
      Binding the identity matters: every agency's certificate chains to the same roots.

    So checkpoints signed before and after a rotation (a new operator certificate from the same
    CA) verify in one run, and a checkpoint under a self-made certificate is forged.
    ``self_signed_ok`` instead trusts whatever certificate is stored beside a signature: only an
    explicit, loudly printed choice (it proves integrity, not who signed)."""

    roots: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    pinned: tuple[x509.Certificate, ...] = ()
    operator_id: str | None = None
    self_signed_ok: bool = False

    @property
    def anchored(self) -> bool:
        """Signers are judged against anchors the caller chose (not the stored certificates)."""
        return bool(self.pinned) or (bool(self.roots) and self.operator_id is not None)

    def signer_problem(self, chain_certs: Sequence[x509.Certificate],
                       at: datetime) -> str | None:
        """None when ``chain_certs[0]`` may sign a checkpoint made at ``at``, else why not."""
        if not chain_certs:
            return "no certificate"
        cert = chain_certs[0]
        if not _valid_at(cert, at):
            return (f"certificate {_describe(cert)} was not valid at {chain.utc_text(at)}")
        if any(fingerprint(cert) == fingerprint(p) for p in self.pinned):
            return None
        if self.self_signed_ok and not self.anchored:
            return None
        if not self.roots or self.operator_id is None:
            return f"certificate {_describe(cert)} is not one of the pinned operator certificates"
        uid = _uid(cert)
        if uid != self.operator_id:
            return (f"certificate {_describe(cert)} names organization {uid!r}, not the hub"
                    f" operator {self.operator_id!r}")
        path_problem = _chain_to_roots(cert, [*chain_certs[1:], *self.intermediates],
                                       self.roots, at)
        if path_problem is not None:
            return f"certificate {_describe(cert)} {path_problem}"
        return None


def _describe(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()!r} (sha256 {fingerprint(cert)[:16]})"


def _valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(usage.key_cert_sign)


def _chain_to_roots(cert: x509.Certificate, candidates: Iterable[x509.Certificate],
                    roots: Sequence[x509.Certificate], at: datetime,
                    depth: int = 0) -> str | None:
    """None when ``cert`` chains to a root through CA certificates valid at ``at``."""
    if depth > 8:
        return "has a certification path longer than 8"
    root_prints = {fingerprint(r) for r in roots}
    for root in roots:
        if _issued_by(cert, root) and _is_ca(root) and _valid_at(root, at):
            return None
    for ca in candidates:
        if fingerprint(ca) in root_prints or fingerprint(ca) == fingerprint(cert):
            continue
        if _issued_by(cert, ca) and _is_ca(ca) and _valid_at(ca, at):
            rest = [c for c in candidates if fingerprint(c) != fingerprint(ca)]
            if _chain_to_roots(ca, rest, roots, at, depth + 1) is None:
                return None
    return "does not chain to the operator CA roots"


def document_entry_from_row(row: Any) -> dict[str, Any]:
    report_digest = (chain.sha256_hex(row.report.encode("utf-8"))
                     if row.report is not None else None)
    refusal = getattr(row, "refusal", None)
    revocation = getattr(row, "revocation", None)
    return chain.document_entry(
        seq=int(row.seq), digest=row.digest, sender=row.sender, document_id=row.document_id,
        kind=row.kind, code=row.code, subject_digest=row.subject_digest,
        recipients=json.loads(row.recipients), received_at=chain.utc_text(row.received_at),
        links_to=row.links_to, size=int(row.size), report_digest=report_digest,
        refusal=json.loads(refusal) if refusal is not None else None,
        revocation=json.loads(revocation) if revocation is not None else None)


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
    trust: OperatorTrust | None = None,
    verify_signature: SignatureCheck | None = None,
    require_signed: bool = False,
    check_bytes: bool = True,
    helpers: SegmentWalkers | None = None,
    expect: Sequence[Witness] = (),
) -> VerifyResult:
    """Verify the ledger reachable through ``conn`` (one consistent snapshot).

    ``helpers``: walk segments of a long chain elsewhere (helper processes,
    :mod:`hub.ledger.verify_parallel`); the verdict is the one walk's, row for row.
    ``expect``: rows and chain hashes noted earlier (:meth:`LedgerVerdict.head_line`); the
    verdict fails unless the chain holds each (a chain cut back below one fails)."""
    checker = _CheckpointChecker(trust, verify_signature)
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    with conn.begin():
        head = _read_head(conn)
        if isinstance(head, str):
            return VerifyResult(0, None, head)
        total, head_link, head_checkpoint = head
        checkpoints, misplaced = _read_checkpoints(conn)
        segments = plan_segments(total, checkpoints, helpers.segments(total)
                                 if helpers is not None else 1)
        differ: str | None = None
        differ_read = False
        differ_error: Exception | None = None
        if len(segments) > 1 and helpers is not None:
            def meanwhile() -> None:
                # The rollup's check, while the helpers walk; what it raises is raised where
                # one walk meets it: after the chain holds. In a savepoint, so a database error
                # leaves the snapshot's transaction usable.
                nonlocal differ, differ_read, differ_error
                try:
                    with conn.begin_nested():
                        differ = _derived_differences(conn)
                        differ_read = True
                except Exception as error:  # kept, raised in the chain's order
                    differ_error = error

            walks: Iterable[tuple[Segment, SegmentWalk]] = helpers.walk(
                conn, blobs, segments, check_bytes=check_bytes, progress=progress,
                meanwhile=meanwhile)
        else:
            def step(seq: int) -> None:
                if progress is not None:
                    progress(seq, total)

            walks = ((s, walk_segment(conn, blobs, s, None, check_bytes=check_bytes,
                                      progress=step)) for s in segments)
        result, link = judge_walks(walks, checkpoints, checker, require_signed)
        if result.problem is not None:
            return result
        checked_cps, signed = result.checkpoints, result.signed_checkpoints
        if head_link != link:
            return VerifyResult(total, total, "the recorded chain head does not match the"
                                " last row", checked_cps, signed)
        signed = sum(1 for c in checkpoints.values() if c.signature is not None)

        def verdict(problem: str | None = None, first_bad_row: int | None = None
                    ) -> LedgerVerdict:
            through = checker.signed_through
            return LedgerVerdict(total, first_bad_row, problem, len(checkpoints), signed,
                                 tuple(checker.signers), checker.trusted, through, link,
                                 checkpoints[through].head if through else "")

        beyond = sorted(s for s in checkpoints if s > total)
        if beyond:
            return verdict(
                f"checkpoint at row {beyond[0]} lies beyond the end of the chain (row {total}):"
                " the ledger was truncated", total + 1)
        if misplaced:
            return verdict(f"a checkpoint is stored at position {misplaced[0]!r}, not at a row"
                           " (a whole number from 1): it was modified")
        outside = _outside_chain(conn, total)
        if outside is not None:
            return verdict(*outside)
        latest = max(checkpoints, default=0)
        if latest != head_checkpoint:
            present = f"the latest present is at row {latest}" if latest else "none is present"
            return verdict(f"the head records a checkpoint at row {head_checkpoint} but"
                           f" {present}: checkpoints were removed", head_checkpoint or latest)
        if require_signed and total > 0 and checker.signed_through == 0:
            # The hub signs its first write's checkpoint (its checkpoint interval makes the
            # first one due) and one on the way out: signed rows without one were stripped.
            return verdict(
                f"no signed checkpoint covers any of the {total:,} rows: the checkpoints were"
                " removed (and the chain recomputed), or the ledger was never signed")
        unwitnessed = _witness_problem(conn, total, expect)
        if unwitnessed is not None:
            return verdict(*unwitnessed)
        if differ_error is not None:
            raise differ_error
        if not differ_read:
            differ = _derived_differences(conn)
        if differ is not None:
            return verdict(differ)
        if progress is not None:
            progress(total, total)
        return verdict()


def _witness_problem(conn: Connection, total: int,
                     expect: Iterable[Witness]) -> tuple[str, int] | None:
    """Why the chain of ``total`` rows (verified) does not hold a witnessed row, and the row
    to name; None when it holds every one. Called once the chain holds: each of its rows is
    then stored once, with the chain hash the walk recomputed."""
    for seq, chain_hash in sorted(set(expect)):
        if seq > total:
            return (f"the chain ends at row {total:,}, but the witness given holds row {seq:,}"
                    f" (chain hash {chain_hash[:16]}…): the ledger was cut back, its head moved"
                    " back and its later checkpoints removed", total + 1)
        stored = start_link(conn, seq)
        if stored != chain_hash:
            return (f"row {seq:,} has chain hash {str(stored)[:16]}…, not {chain_hash[:16]}… as"
                    " the witness given holds: the chain was rewritten up to that row (or the"
                    " witness is another ledger's)", seq)
    return None


def _read_head(conn: Connection) -> tuple[int, Any, int] | str:
    """The head's ``(seq, chain_hash, checkpoint_seq)``, or why the head cannot be trusted to
    say where the chain ends: missing, doubled, or holding values the hub never writes."""
    modified = "the chain head (ledger_head) was modified: it holds a value the hub never writes"
    try:
        rows = conn.execute(text(
            "SELECT id, seq, chain_hash, checkpoint_seq FROM ledger_head")).all()
    except exc.OperationalError as error:
        if not _undecodable(error.orig):
            raise
        return modified
    if not any(r[0] == 1 for r in rows):
        return "the ledger has no chain head (its ledger_head row was deleted)"
    if len(rows) != 1:
        return (f"the chain head table (ledger_head) holds {len(rows)} rows; the hub keeps one:"
                " it was modified")
    _id, seq, chain_hash, checkpoint_seq = rows[0]
    if (type(seq) is not int or type(checkpoint_seq) is not int or seq < 0
            or checkpoint_seq < 0 or type(chain_hash) is not str):
        return modified
    return seq, chain_hash, checkpoint_seq


@dataclass(frozen=True, slots=True)
class _StoredCheckpoint:
    """A checkpoint row, read without trusting it: ``problem`` says why it cannot be judged."""

    seq: int
    head: str
    at: datetime
    signature: bytes | None
    cert_pem: bytes | None
    problem: str | None = None


_CHECKPOINT_SQL = ("SELECT seq, head, at, signature, cert_pem FROM ledger_checkpoints"
                   " {where} ORDER BY seq")


def _read_checkpoints(conn: Connection) -> tuple[dict[int, _StoredCheckpoint], list[Any]]:
    """Every checkpoint by position, and the positions stored that are no row's (not a whole
    number from 1).

    A checkpoint holding a value the hub never writes (a signature or certificate as text, a
    time in another text) is kept with its ``problem``: judged where the chain reaches it."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    try:
        rows: list[Sequence[Any] | None] = list(_driver_rows(
            conn, _CHECKPOINT_SQL.format(where=""), (), 1000))
        stored = [r[0] for r in rows if r is not None]
    except _UNREADABLE:  # a text that is not UTF-8: find its row, one at a time
        stored = [r[0] for r in _driver_rows(
            conn, "SELECT seq FROM ledger_checkpoints ORDER BY seq", (), 1000, named=False)]
        rows = []
        for position in stored:
            try:
                rows.extend(_driver_rows(conn, _CHECKPOINT_SQL.format(where=f"WHERE seq = {mark}"),
                                         (position,), 1, named=False))
            except _UNREADABLE:
                rows.append(None)
    time = _TimeText(conn.dialect)
    checkpoints: dict[int, _StoredCheckpoint] = {}
    misplaced: list[Any] = []
    for position, row in zip(stored, rows, strict=True):
        if type(position) is not int or position < 1:
            misplaced.append(position)
            continue
        try:
            if row is None:
                raise ValueError("unreadable")
            _seq, head, at, signature, cert_pem = row
            if type(head) is not str:
                raise TypeError("head")
            checkpoints[position] = _StoredCheckpoint(
                position, head, time.instant(at), _stored_bytes(signature),
                _stored_bytes(cert_pem))
        except _UNREADABLE:
            checkpoints[position] = _StoredCheckpoint(
                position, "", datetime.min.replace(tzinfo=UTC), None, None,
                f"checkpoint at row {position} was modified: it holds a value the hub never"
                " writes")
    return checkpoints, misplaced


def _stored_bytes(value: Any) -> bytes | None:
    """A binary column's value (PostgreSQL's driver gives a memoryview); TypeError for a text
    or a number, which the hub never writes there."""
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    raise TypeError("not bytes")


def _outside_chain(conn: Connection, total: int) -> tuple[str, int | None] | None:
    """A chained row stored where no walk up to the head reads it, and the row to name: beyond
    the head's position, or at a position that is not a whole number or none. Readers (queries,
    evidence, the adoption recount) would show it as part of the ledger."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    beyond: list[tuple[int, str]] = []
    other: str | None = None
    for name, table in (("document", _DOCUMENTS), ("event", _EVENTS)):
        # SQLite orders texts and blobs after every number: the least beyond is a number if any
        least = _scalar(conn, _BEYOND_SQL.format(table=table, mark=mark), (total,))
        if type(least) is int:
            beyond.append((least, name))
        elif least is not None:
            other = other or (f"a {name} is stored at position {least!r}, not a whole number:"
                              " it was added outside the chain")
        elif _scalar(conn, _NOWHERE_SQL.format(table=table), ()):
            other = other or (f"a {name} is stored at no position (seq is NULL): it was added"
                              " outside the chain")
    if beyond:
        seq, name = min(beyond)
        return (f"row {seq} ({name}) lies beyond the end of the chain (row {total}): it was"
                " added outside the chain, or the head was moved back", seq)
    return None if other is None else (other, None)


_DOCUMENTS, _EVENTS = "ledger_documents", "ledger_events"
_BEYOND_SQL = "SELECT min(seq) FROM {table} WHERE seq > {mark}"
_NOWHERE_SQL = "SELECT count(*) FROM {table} WHERE seq IS NULL"
_LISTING_SQL = ("SELECT seq FROM {table} WHERE seq > {mark} AND seq <= {mark} ORDER BY seq"
                " LIMIT {limit}")


def _scalar(conn: Connection, sql: str, params: tuple[Any, ...]) -> Any:
    """The first column of the only row of ``sql``."""
    return next(iter(_driver_rows(conn, sql, params, 1, named=False)))[0]


def _derived_differences(conn: Connection) -> str | None:
    """What the derived tables say that the chain does not, or None: each of
    :data:`_DERIVED` in turn, either differing from its recomputation or holding values the
    hub never writes there. Either way a reader of it would be lied to."""
    for differences, table, source, unit, flag in _DERIVED:
        rebuild = f"rebuild it with `hub ledger migrate {flag}`"
        try:
            count, example = differences(conn)
        except _UNREADABLE:
            return f"the chain holds, but {table} holds values the hub never writes: {rebuild}"
        except exc.OperationalError as error:
            if not _undecodable(error.orig):
                raise
            return f"the chain holds, but {table} holds values the hub never writes: {rebuild}"
        if count:
            return (f"the chain holds, but {table} differs from {source} for {count:,} {unit},"
                    f" e.g. {example}: {rebuild}")
    return None


def _adoption_differences(conn: Connection) -> tuple[int, str]:
    """:func:`adoption.differences` counted, with its first line."""
    lines = adoption.differences(conn)
    return len(lines), lines[0] if lines else ""


_DERIVED: tuple[tuple[Callable[[Connection], tuple[int, str]], str, str, str, str], ...] = (
    (_adoption_differences, "the adoption report's rollup (ledger_adoption, derived)",
     "the documents", "organization-day(s)", "--rebuild-adoption"),
    (deliveries.differences, "the per-recipient delivery state (ledger_deliveries, derived)",
     "the chain", "document-recipient pair(s)", "--rebuild-deliveries"),
)
"""The derived tables verify compares with the rows they are derived from: (count and first
difference, the table, what it is derived from, what a difference counts, the migrate flag
that rebuilds it)."""


def _undecodable(error: BaseException | None) -> bool:
    """The SQLite driver could not read a text: it is not UTF-8 (the hub writes only UTF-8)."""
    return str(error).startswith("Could not decode to UTF-8")


_EVENT_SQL = ("SELECT seq, entry_hash, chain_hash, kind, message_id, at, digest, organ_id,"
              " reason, actor, detail FROM ledger_events WHERE seq <= {mark} ORDER BY seq")
_DOCUMENT_SQL = ("SELECT seq, entry_hash, chain_hash, digest, sender, document_id, kind, code,"
                 " subject_digest, recipients, received_at, links_to, size, report, refusal,"
                 " revocation, {raw} FROM ledger_documents WHERE seq <= {mark} ORDER BY seq")
_LINK_SQL = ("SELECT chain_hash FROM ledger_documents WHERE seq >= {mark} AND seq < {mark}"
             " UNION ALL SELECT chain_hash FROM ledger_events WHERE seq >= {mark} AND seq < {mark}")
_EVENT, _DOCUMENT = 0, 1
_NAMES = ("event", "document")
_UNSET = object()


class _TimeText:
    """A stored ``UtcDateTime`` value, as the driver returns it, to the canonical UTC text:
    ``chain.utc_text`` of what the column type reads (the reference, for anything unusual),
    or a shortcut proven equal to it for the form the hub writes (SQLite: the text
    ``YYYY-MM-DD HH:MM:SS.ffffff``; PostgreSQL: a naive datetime), from year 1000 on.

    On SQLite only that text is a time (:meth:`instant`): another text of the same instant
    (``20240301T080200``, an offset, no fraction) hashes the same but sorts elsewhere, and
    period queries compare the stored text, so the row holding it was modified (ValueError)."""

    def __init__(self, dialect: Dialect) -> None:
        self._process = UtcDateTime().dialect_impl(dialect).result_processor(dialect, None)
        self._sqlite = dialect.name == "sqlite"
        self._stored_as: type = str if self._sqlite else datetime
        self._last: Any = _UNSET
        self._last_text = ""

    def reference(self, value: Any) -> str:
        return chain.utc_text(self._process(value) if self._process is not None else value)

    def instant(self, value: Any) -> datetime:
        """The aware UTC time the column type reads from ``value``; on SQLite only from the
        very text the hub writes (``hub.ledger.store._sqlite_time``), else ValueError."""
        at = self._process(value) if self._process is not None else value
        if type(at) is not datetime or at.tzinfo is None:
            raise TypeError(f"{type(value).__name__} is not a stored time")
        if self._sqlite and (type(value) is not str
                             or at.replace(tzinfo=None).isoformat(" ", "microseconds") != value):
            raise ValueError(f"{value!r} is not a time as the hub writes it")
        return at

    def __call__(self, value: Any) -> str:
        if value == self._last and type(value) is type(self._last):
            return self._last_text  # the events of one batch share their time
        text = self._shortcut(value) if type(value) is self._stored_as else None
        if text is None:
            text = (chain.utc_text(self.instant(value)) if self._sqlite
                    else self.reference(value))
        self._last, self._last_text = value, text
        return text

    @staticmethod
    def _shortcut(value: Any) -> str | None:
        if type(value) is str:
            # The column type parses with datetime.fromisoformat: with every separator in
            # place, a 26-character text it accepts without an offset is digits in the form
            # the hub writes, and the canonical text is that text re-punctuated.
            if (len(value) != 26 or value[0] == "0" or value[4] != "-" or value[7] != "-"
                    or value[10] != " " or value[13] != ":" or value[16] != ":"
                    or value[19] != "."):
                return None
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            if parsed.tzinfo is not None:
                return None
            return value[:10] + "T" + value[11:] + "Z"
        if type(value) is datetime and value.tzinfo is None and value.year >= 1000:
            return value.isoformat("T", "microseconds") + "Z"
        return None


def _driver_rows(conn: Connection, sql: str, params: tuple[Any, ...],
                 batch: int, *, named: bool = True) -> Generator[Sequence[Any], None, None]:
    """The rows of ``sql`` straight from a driver cursor in ``conn``'s transaction (a
    server-side cursor on PostgreSQL, fetching ``batch`` rows at a time, unless not ``named``);
    the driver's errors wrapped as SQLAlchemy wraps them, so an unavailable database is still
    told apart, except a text SQLite cannot decode: :class:`_UnreadableText`, a modified row."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    raw: Any = conn.connection.dbapi_connection
    try:
        if conn.dialect.name == "postgresql" and named:
            cursor = raw.cursor(name=f"hub_verify_{uuid.uuid4().hex}")
            cursor.itersize = batch
        else:
            cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            yield from cursor
        finally:
            cursor.close()
    except dbapi_error as error:
        if _undecodable(error):
            raise _UnreadableText(str(error)) from None
        raise exc.DBAPIError.instance(sql, params, error, dbapi_error,
                                      dialect=conn.dialect) from error


class _UnreadableText(ValueError):
    """SQLite holds a text that is not UTF-8 (the hub writes only UTF-8): its row was
    modified."""


def _chained_rows(conn: Connection, up_to: int, *, with_raw: bool,
                  after: int = 0) -> Generator[tuple[int, int, Sequence[Any]], None, None]:
    """Both chained tables merged in ``seq`` order, as plain driver rows:
    ``(seq, _EVENT|_DOCUMENT, row)``; a row's columns are those of :data:`_EVENT_SQL` or
    :data:`_DOCUMENT_SQL`. ``seq`` is ``int()`` of the stored value, as the typed rows gave.
    ``after`` > 0: only the rows beyond that position (0: every row, whatever its ``seq``):
    those whose ``int(seq)`` is beyond it (a SQLite column may hold 11.5, which counts as 11).
    """
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    bound = f" AND seq >= {mark}" if after > 0 else ""
    params = (up_to, after + 1) if after > 0 else (up_to,)
    docs = _driver_rows(conn, _DOCUMENT_SQL.format(mark=mark + bound,
                                                   raw="raw" if with_raw else "NULL"),
                        params, 500)
    events = _driver_rows(conn, _EVENT_SQL.format(mark=mark + bound), params, 5000)
    with closing(docs), closing(events):
        doc = next(docs, None)
        doc_seq = _position(doc[0]) if doc is not None else 0
        for event in events:
            seq = event[0]
            if type(seq) is not int:
                seq = _position(seq)
            while doc is not None and doc_seq <= seq:  # a document first on a tie, as before
                yield doc_seq, _DOCUMENT, doc
                doc = next(docs, None)
                doc_seq = _position(doc[0]) if doc is not None else 0
            yield seq, _EVENT, event
        while doc is not None:
            yield doc_seq, _DOCUMENT, doc
            doc = next(docs, None)
            doc_seq = _position(doc[0]) if doc is not None else 0


def _position(stored: Any) -> int:
    """``int()`` of a stored ``seq`` (a SQLite column may hold 11.5: 11), as the typed rows
    gave; 0 for what has none (an infinity), which a walk finds out of place. The walk refuses
    every position that is not stored as a whole number."""
    if type(stored) is int:
        return stored
    try:
        return int(stored)
    except _UNREADABLE:
        return 0


def _one_by_one(conn: Connection, after: int, total: int, *,
                with_raw: bool) -> Generator[tuple[int, int, Sequence[Any] | None], None, None]:
    """The chained rows beyond ``after`` (up to :data:`_REREAD` of each table) as
    :func:`_chained_rows` gives them, each read on its own, up to the first the driver cannot
    read (a SQLite text that is not UTF-8, a PostgreSQL time Python cannot hold), which comes
    as ``(seq, kind, None)``: a cursor reading ahead meets such a row before the walk reaches
    it; read one at a time, the rows before it are judged first, in order."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    listing: list[tuple[int, int, Any]] = []
    for kind, table in ((_DOCUMENT, _DOCUMENTS), (_EVENT, _EVENTS)):
        sql = _LISTING_SQL.format(table=table, mark=mark, limit=_REREAD)
        listing.extend((_position(s), kind, s) for (s,) in _driver_rows(
            conn, sql, (after, total), _REREAD, named=False))
    listing.sort(key=lambda item: (item[0], item[1] == _EVENT))  # a document first on a tie
    one = f"{mark} AND seq = {mark}"
    for seq, kind, stored in listing:
        sql = (_DOCUMENT_SQL.format(mark=one, raw="raw" if with_raw else "NULL")
               if kind == _DOCUMENT else _EVENT_SQL.format(mark=one))
        try:
            rows = list(_driver_rows(conn, sql, (total, stored), 1, named=False))
        except _UNREADABLE:
            yield seq, kind, None
            return
        for row in rows:
            yield seq, kind, row


@dataclass(frozen=True, slots=True)
class Segment:
    """The rows ``(after, up_to]`` of a chain whose head records ``total`` rows, walked on
    their own: from the link stored at row ``after`` (the chain's start when 0).
    ``checkpoints``: the checkpoint positions among them, whose links the walk keeps."""

    after: int
    up_to: int
    total: int
    checkpoints: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentWalk:
    """What a walk of one :class:`Segment` found; checkpoints are judged by the caller.

    ``start`` is the link the walk began from (None: row ``after`` is not stored exactly once,
    so the walk did not begin); the walk stands for the chain's only if that is the link the
    walk of the rows before it ended on. ``rows`` is the last row judged sound; ``bad_row``
    and ``problem`` name the first that is not, or ``error`` is what reading it raised."""

    start: str | None
    rows: int
    link: str
    links: dict[int, str]
    bad_row: int | None = None
    problem: str | None = None
    error: BaseException | None = None
    walker: int = field(default_factory=os.getpid)
    """The process that walked it."""


def start_link(conn: Connection, after: int) -> str | None:
    """The link a walk of the rows beyond ``after`` begins from: the chain's start for 0, else
    the link stored at row ``after`` (None unless exactly one row holds that position, as
    ``int(seq)`` reads it)."""
    if after <= 0:
        return chain.GENESIS
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    bounds = (after, after + 1)
    found = list(_driver_rows(conn, _LINK_SQL.format(mark=mark), bounds + bounds, 2))
    return str(found[0][0]) if len(found) == 1 else None


def walk_segment(
    conn: Connection,
    blobs: BlobStore | None,
    segment: Segment,
    begin: str | None,
    *,
    check_bytes: bool,
    progress: Callable[[int], None] | None = None,
) -> SegmentWalk:
    """Walk ``segment`` from the link ``begin`` (:func:`start_link` when None): every row's
    hash, its link and (``check_bytes``) its document's bytes, up to the first that fails.

    Rows are judged as one walk of the whole chain judges them (a row missing, twice, edited,
    out of the chain; the chain truncated): a segment's rows beyond its end are read only to
    tell a row missing at its end from a truncated chain. ``progress(seq)`` is called every
    :data:`PROGRESS_EVERY` rows."""
    if begin is None:
        begin = start_link(conn, segment.after)
        if begin is None:
            return SegmentWalk(None, segment.after, "", {})
    start = link = begin
    up_to, total = segment.up_to, segment.total
    marks = frozenset(segment.checkpoints)
    links: dict[int, str] = {}
    link_bytes = bytes.fromhex(link)
    expected = segment.after + 1
    time_text = _TimeText(conn.dialect)
    sha256 = hashlib.sha256
    canonical_json = chain.canonical_json
    event_entry = chain.event_entry

    def bad(seq: int, problem: str) -> SegmentWalk:
        return SegmentWalk(start, expected - 1, link, links, seq, problem)

    rows: Generator[tuple[int, int, Any], None, None] = _chained_rows(
        conn, total, with_raw=check_bytes, after=segment.after)
    seq, kind, reread = segment.after, _EVENT, False
    try:
        while True:
            try:
                for seq, kind, row in rows:
                    if seq != expected:
                        if seq > expected:
                            return bad(expected, f"row {expected} is missing (deleted)")
                        return bad(seq, f"row {seq} appears twice")
                    if seq > up_to:  # the next segment's first row: this one ends whole
                        return SegmentWalk(start, up_to, link, links)
                    if type(row[0]) is not int:  # (a row the driver could not read is None)
                        return bad(seq, f"row {seq} ({_NAMES[kind]}) was modified: its position"
                                        f" {row[0]!r} is not a whole number")
                    if kind == _EVENT:
                        (_s, stored_hash, stored_link, event_kind, message_id, at, digest,
                         organ_id, reason, actor, detail) = row
                        entry = event_entry(
                            seq=seq, kind=event_kind, message_id=message_id, at=time_text(at),
                            digest=digest, organ_id=organ_id, reason=reason, actor=actor,
                            detail=detail)
                    else:
                        stored_hash, stored_link = row[1], row[2]
                        entry = _document_entry(seq, row, time_text)
                    entry_digest = sha256(canonical_json(entry)).digest()
                    if entry_digest.hex() != stored_hash:
                        return bad(seq, f"row {seq} ({_NAMES[kind]}) was modified: its content"
                                        " does not match its hash")
                    # chain.link(link, entry_hash), on bytes
                    link_bytes = sha256(link_bytes + entry_digest).digest()
                    link = link_bytes.hex()
                    if link != stored_link:
                        return bad(seq, f"row {seq} ({_NAMES[kind]}) breaks the chain: rows"
                                        " were reordered, inserted or rewritten")
                    if kind == _DOCUMENT and check_bytes:
                        problem = _bytes_problem(conn, blobs, seq, row[6], row[3], row[16],
                                                 entry)
                        if problem is not None:
                            return bad(seq, problem)
                    if seq in marks:
                        links[seq] = link
                    expected += 1
                    if progress is not None and seq % PROGRESS_EVERY == 0:
                        progress(seq)
                if expected - 1 != up_to:
                    return SegmentWalk(
                        start, expected - 1, link, links, expected,
                        f"the chain ends at row {expected - 1} but the head records row"
                        f" {total}: the ledger was truncated")
                return SegmentWalk(start, up_to, link, links)
            except _UNREADABLE:
                if seq == expected:  # the row in hand (a row read as None included)
                    return bad(seq, f"row {seq} ({_NAMES[kind]}) was modified: it holds a"
                                    " value the hub never writes")
                if reread:
                    return bad(expected, f"row {expected} or one after it was modified: it"
                                         " holds a value that cannot be read")
                # the driver could not read a row ahead: read on one row at a time
                rows.close()
                rows = _one_by_one(conn, expected - 1, total, with_raw=check_bytes)
                reread = True
    except Exception as error:  # kept for the caller: raised in the chain's order
        return SegmentWalk(start, expected - 1, link, links, expected, error=error)
    finally:
        rows.close()


def judge_walks(
    walks: Iterable[tuple[Segment, SegmentWalk]],
    checkpoints: dict[int, Any],
    checker: _CheckpointChecker,
    require_signed: bool,
) -> tuple[VerifyResult, str]:
    """The first problem of the chain, in its order, from walks of consecutive segments
    (each begun from the link the one before ended on), with the checkpoints among the rows
    each judged sound; and the chain's last link. An error a walk met is raised there."""
    checked_cps = signed_cps = 0
    link = chain.GENESIS
    for segment, walk in walks:
        for seq in segment.checkpoints:
            if seq > walk.rows:
                break
            cp = checkpoints[seq]
            checked_cps += 1
            if cp.problem is not None:
                return VerifyResult(seq - 1, seq, cp.problem, checked_cps, signed_cps), link
            if cp.head != walk.links[seq]:
                return VerifyResult(seq - 1, seq, f"checkpoint at row {seq} does not match the"
                                    " chain (forged, or the rows before it were rewritten)",
                                    checked_cps, signed_cps), link
            problem = checker.check(cp, require_signed)
            if problem is not None:
                return VerifyResult(seq - 1, seq, problem, checked_cps, signed_cps), link
            if cp.signature is not None:
                signed_cps += 1
        link = walk.link
        if walk.error is not None:
            raise walk.error
        if walk.problem is not None:
            return VerifyResult(walk.rows, walk.bad_row, walk.problem, checked_cps,
                                signed_cps), link
    return VerifyResult(0, None, None, checked_cps, signed_cps), link


def plan_segments(total: int, checkpoints: Iterable[int], count: int) -> list[Segment]:
    """``count`` consecutive segments of about equal rows covering ``1..total`` (one when
    ``count`` is below 2), each with the checkpoint positions among its rows."""
    count = max(1, min(count, total))
    marks = sorted(s for s in checkpoints if s <= total)
    bounds = [total * i // count for i in range(count + 1)]
    return [Segment(lo, hi, total, tuple(s for s in marks if lo < s <= hi))
            for lo, hi in itertools.pairwise(bounds)]


def _document_entry(seq: int, row: Sequence[Any], time_text: _TimeText) -> dict[str, Any]:
    """:func:`document_entry_from_row` of a plain row of :data:`_DOCUMENT_SQL`."""
    (_s, _h, _c, digest, sender, document_id, kind, code, subject_digest, recipients,
     received_at, links_to, size, report, refusal, revocation, _raw) = row
    # json.loads takes bytes and int() a fraction: what reads the same is not what was written
    if (type(recipients) is not str or type(size) is not int
            or (refusal is not None and type(refusal) is not str)
            or (revocation is not None and type(revocation) is not str)):
        raise TypeError("a column holds a value of a type the hub never writes there")
    return chain.document_entry(
        seq=seq, digest=digest, sender=sender, document_id=document_id, kind=kind, code=code,
        subject_digest=subject_digest, recipients=json.loads(recipients),
        received_at=time_text(received_at), links_to=links_to, size=size,
        report_digest=(chain.sha256_hex(report.encode("utf-8"))
                       if report is not None else None),
        refusal=json.loads(refusal) if refusal is not None else None,
        revocation=json.loads(revocation) if revocation is not None else None)


def _bytes_problem(conn: Connection, blobs: BlobStore | None, seq: int, kind: str,
                   digest: str, raw: Any, entry: dict[str, Any]) -> str | None:
    refusal = entry.get("refusal")
    kept = not (kind == REFUSED and isinstance(refusal, dict) and not refusal.get("kept"))
    if kept:
        data: bytes | None = bytes(raw) if raw is not None else (
            blobs.get(digest) if blobs is not None else None)
        if data is None:
            return f"row {seq}: the bytes of document {digest} are missing"
        if hashlib.sha256(data).hexdigest() != digest:
            return (f"row {seq}: the stored bytes of document {digest} do not match its"
                    " digest (swapped)")
    for ref in entry.get("revocation") or ():
        for name in ("digest", "certificate", "issuer"):
            digest = ref.get(name)
            if digest is None:
                continue
            blob = conn.scalar(select(EvidenceBlob.data).where(EvidenceBlob.digest == digest))
            if blob is None:
                return f"row {seq}: the revocation evidence {digest} is missing"
            if hashlib.sha256(bytes(blob)).hexdigest() != digest:
                return (f"row {seq}: the stored revocation evidence {digest} does not match its"
                        " digest (swapped)")
    return None


class _CheckpointChecker:
    """Checks checkpoint signatures against the caller's trust and remembers the signers."""

    def __init__(self, trust: OperatorTrust | None,
                 verify_signature: SignatureCheck | None) -> None:
        self.trust = trust
        self.verify_signature = verify_signature
        self.signers: list[str] = []
        self.trusted = verify_signature is not None or (trust is not None and trust.anchored)
        self.signed_through = 0
        """The last checkpoint with a signature this checker accepted (merely present when it
        has nothing to check signatures against)."""

    def check(self, cp: _StoredCheckpoint, require_signed: bool) -> str | None:
        seq = cp.seq
        if cp.signature is None:
            return f"checkpoint at row {seq} is not signed" if require_signed else None
        if self.trust is None and self.verify_signature is None:
            # nothing to judge signers by: chain only (signers_trusted False)
            self.signed_through = max(self.signed_through, seq)
            return None
        payload = chain.checkpoint_payload(seq, cp.head, chain.utc_text(cp.at))
        problem = checkpoint_signature_problem(
            seq, payload, cp.signature, cp.cert_pem, cp.at, self.trust, self.verify_signature)
        if problem is None:
            self.signed_through = max(self.signed_through, seq)
            signer = _signer(cp.cert_pem)
            if signer is not None and (not self.signers or self.signers[-1] != signer):
                self.signers.append(signer)
        return problem


def _signer(cert_pem: bytes | None) -> str | None:
    """The fingerprint of the certificate stored beside a signature, if it is one (a signature
    checked by the caller's own check never needed it)."""
    try:
        certs = load_certificates(cert_pem) if cert_pem is not None else []
    except ValueError:
        return None
    return fingerprint(certs[0]) if certs else None


def checkpoint_signature_problem(
    seq: int,
    payload: bytes,
    signature: bytes,
    cert_pem: bytes | None,
    at: datetime,
    trust: OperatorTrust | None,
    verify_signature: SignatureCheck | None = None,
) -> str | None:
    """None when the checkpoint at ``seq`` was signed by the operator (per ``trust``), else
    the problem. ``cert_pem`` is what was stored beside the signature: a path to check, never
    a reason to trust."""
    return operator_signature_problem(f"checkpoint at row {seq}", payload, signature, cert_pem,
                                      at, trust, verify_signature)


def operator_signature_problem(
    what: str,
    payload: bytes,
    signature: bytes,
    cert_pem: bytes | None,
    at: datetime,
    trust: OperatorTrust | None,
    verify_signature: SignatureCheck | None = None,
) -> str | None:
    """None when ``payload`` (``what``, for the problem's text) was signed at ``at`` by the
    operator (per ``trust``, or ``verify_signature``), else the problem. ``cert_pem`` is what
    came beside the signature: a path to check, never a reason to trust."""
    if verify_signature is not None:
        if verify_signature(payload, signature):
            return None
        return f"{what} has an invalid signature (forged)"
    if trust is None:
        return f"{what}: no operator trust anchor to check its signer"
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    stored: list[x509.Certificate] = []
    if cert_pem is not None:
        try:
            stored = load_certificates(cert_pem)
        except ValueError:
            return f"{what} carries an unreadable certificate (forged)"
    candidates: list[list[x509.Certificate]] = []
    if stored:
        candidates.append(stored)
    candidates.extend([p] for p in trust.pinned
                      if not stored or fingerprint(p) != fingerprint(stored[0]))
    if not candidates:
        return f"{what} carries no certificate to check its signature"
    first_problem: str | None = None
    for path in candidates:
        problem = trust.signer_problem(path, at)
        if problem is None:
            if signature_check_from_cert(path[0])(payload, signature):
                return None
            problem = "its signature does not verify"
        first_problem = first_problem or problem
    return f"{what} is not signed by the hub operator (forged): {first_problem}"
