"""Evidence bundles: one zip proving what happened to one document, checkable offline.

A bundle holds the exact envelope bytes, every status packet and receipt that refers to it, the
validation reports, the ledger entries that concern it in canonical form, the hash of every other
entry from the first concerned entry to the chain head (the chain proof), the latest signed
checkpoint with its signature and certificate, the exact revocation data (CRL, OCSP answer) the
validation used, and the trust material (certificates, CRLs) handed in by the caller.
:func:`verify_bundle` checks it without a database; ``README.txt`` inside the bundle lists
commands for Debian's stock ``xmlsec1`` (1.2.37: it has no CRL option, so revocation is checked
with ``openssl verify -crl_check``) and ``openssl`` that check it by hand (a test runs them).

What is checked is the bundle's *content*: the members by name, never the zip's bytes, so a
bundle unzipped and zipped again (directory entries, another compression, a top folder) verifies,
and so does an unpacked directory; a changed byte in any member does not.

Layout (format 2)::

    README.txt                      how to check by hand (commands prefixed with "$ ")
    manifest.json                   canonical JSON {"document", "files": {name: sha256}, "format"}
    SHA256SUMS                      the same digests for ``sha256sum -c``
    documents/<digest>.xml          exact packet bytes, named by their SHA-256
    reports/<digest>.json           validation report, the exact text the ledger hashed
    reports/<digest>.refused.json   the report kept with a refused packet's record
    ledger/entries.jsonl            the concerned entries, one canonical JSON per line
    ledger/proof.json               {"start", "prev", "hashes": [[seq, entry_hash], ...],
                                     "head": {"seq", "chain_hash"}}
    ledger/checkpoint.json          the exact signed checkpoint bytes
    ledger/checkpoint.sig           its signature (RSA SHA-256)
    ledger/checkpoints/<seq>.*      every signed checkpoint from the first entry (.json .sig .pem)
    ledger/statement.json|.sig|.pem the operator's signed list of every entry concerning the
                                    document up to the head the exporter read (absent when the
                                    exporter had no operator key, and from older bundles: such a
                                    bundle proves its entries are in the chain, not that they
                                    are all; :func:`statement_payload`)
    certs/operator.pem              the latest checkpoint's signer certificate, then its CAs
    revocation/<digest>.crl|.ocsp   the exact DER revocation data a validation used (chained)
    revocation/certs/<digest>.der   the certificates that data is about, and their issuers
    trust/roots|intermediates|crls/ the hub's configured trust material (compare it with the
                                    CA's published fingerprints: it is not evidence by itself)
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.ledger import chain
from hub.ledger.backup import snapshot
from hub.ledger.models import Checkpoint, Document, Event, EvidenceBlob, Head
from hub.ledger.records import REFUSED
from hub.ledger.store import Ledger
from hub.ledger.verify import (
    OperatorTrust,
    checkpoint_signature_problem,
    document_entry_from_row,
    event_entry_from_row,
    fingerprint,
    load_certificates,
    operator_signature_problem,
)

FORMAT = "edxml-hub-evidence/2"
FORMAT_V1 = "edxml-hub-evidence/1"
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)  # zip member times carry nothing: the content says when
_UNLISTED = ("out/",)  # where the README's commands write their own files


class EvidenceError(Exception):
    """The bundle cannot be made (unknown document, no signed checkpoint)."""


class _Malformed(Exception):
    """A member's structure is not the format's (a missing key, a value of the wrong type).

    Raised while reading a bundle and turned into a problem by :func:`verify_bundle`: a bundle
    is evidence under examination, so a malformed one fails verification, it is not a bug."""


@dataclass(frozen=True)
class TrustMaterial:
    """The hub's configured trust material, shipped so the README's commands run as they are."""

    roots: Mapping[str, bytes] = field(default_factory=dict)
    intermediates: Mapping[str, bytes] = field(default_factory=dict)
    crls: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class BundleResult:
    """Outcome of checking a bundle offline. ``ok`` is derived."""

    document: str | None
    problems: tuple[str, ...] = ()
    entries: int = 0
    checkpoint_seq: int | None = None
    signer_trusted: bool = False
    """The checkpoint signatures were checked against the caller's operator trust anchors."""
    notes: tuple[str, ...] = field(default=())
    signers: tuple[str, ...] = ()
    """SHA-256 fingerprints of the checkpoint signers, oldest first."""
    complete: bool = False
    """The entries are every one concerning the document up to the head the exporter read,
    as the operator signed (``ledger/statement.json``). False: the bundle proves that its
    entries are in the chain, not that no other entry concerns the document."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "document": self.document, "problems": list(self.problems),
                "entries": self.entries, "checkpoint_seq": self.checkpoint_seq,
                "signer_trusted": self.signer_trusted, "notes": list(self.notes),
                "signers": list(self.signers), "complete": self.complete}


def resolve_document(ledger: Ledger, key: str) -> str:
    """A document digest from a digest, a DocumentId or a code (first match in that order);
    refused packets are found by digest too."""
    if ledger.document_by_digest(key, include_refused=True) is not None:
        return key
    found = ledger.documents(document_id=key, limit=1) or ledger.documents(code=key, limit=1)
    if not found:
        raise EvidenceError(f"no document with digest, DocumentId or code {key!r}")
    return found[0].digest


def _report_name(digest: str, kind: str) -> str:
    return f"reports/{digest}.refused.json" if kind == REFUSED else f"reports/{digest}.json"


def export_evidence(
    ledger: Ledger,
    digest: str,
    path: Path,
    *,
    trust: TrustMaterial | None = None,
    trust_files: Mapping[str, bytes] | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the evidence bundle of the document ``digest`` to ``path``.

    ``trust`` is the configured trust material (``trust_files``, the older flat form, lands
    under ``trust/roots/``)."""
    if ledger.document_by_digest(digest, include_refused=True) is None:
        raise EvidenceError(f"unknown document {digest}")
    if trust is None:
        trust = TrustMaterial(roots=dict(trust_files or {}))
    with ledger.engine.connect() as conn, snapshot(conn):
        # One snapshot: every entry concerning the document up to this head is read, which
        # the signed statement (ledger/statement.json) says.
        through = int(conn.execute(select(Head.seq)).scalar_one())
        related = {digest} | set(conn.scalars(
            select(Document.digest).where(Document.links_to == digest)))
        doc_rows = list(conn.execute(
            select(*Document.__table__.c).where(Document.digest.in_(related))
            .order_by(Document.seq)))
        event_rows = list(conn.execute(
            select(*Event.__table__.c).where(Event.digest.in_(related)).order_by(Event.seq)))
        latest = conn.execute(select(Checkpoint.seq, Checkpoint.signature)
                              .order_by(Checkpoint.seq.desc()).limit(1)).first()
    concerned = sorted(
        [(int(r.seq), document_entry_from_row(r)) for r in doc_rows]
        + [(int(r.seq), event_entry_from_row(r)) for r in event_rows],
        key=lambda t: t[0])
    last_seq = concerned[-1][0]
    if ledger.can_sign and (latest is None or latest.signature is None
                            or latest.seq < last_seq):
        ledger.checkpoint()
    with ledger.engine.connect() as conn:
        head = conn.execute(select(Head.seq, Head.chain_hash, Head.checkpoint_seq)).one()
        start = concerned[0][0]
        checkpoints = list(conn.execute(
            select(*Checkpoint.__table__.c).where(Checkpoint.seq >= start,
                                                  Checkpoint.signature.is_not(None))
            .order_by(Checkpoint.seq)))
        if not checkpoints or checkpoints[-1].seq < last_seq:
            raise EvidenceError(
                "no signed checkpoint covers this document yet; configure the operator key"
                " so the ledger can sign one")
        end = max(int(head.seq), int(checkpoints[-1].seq))
        hashes = sorted(
            [[int(r.seq), str(r.entry_hash)] for r in conn.execute(
                select(Document.seq, Document.entry_hash)
                .where(Document.seq >= start, Document.seq <= end))]
            + [[int(r.seq), str(r.entry_hash)] for r in conn.execute(
                select(Event.seq, Event.entry_hash)
                .where(Event.seq >= start, Event.seq <= end))])
        prev = chain.GENESIS if start == 1 else _chain_hash_at(conn, start - 1)
        references = [ref for _s, e in concerned if e.get("type") == "document"
                      for ref in e.get("revocation") or ()]
        wanted = {ref[k] for ref in references for k in ("digest", "certificate", "issuer")
                  if ref.get(k)}
        blobs = {r.digest: bytes(r.data) for r in conn.execute(
            select(EvidenceBlob.digest, EvidenceBlob.data)
            .where(EvidenceBlob.digest.in_(sorted(wanted))))}
    files: dict[str, bytes] = {}
    for row in doc_rows:
        raw = bytes(row.raw) if row.raw is not None else ledger.raw(row.digest)
        if raw is not None:
            files[f"documents/{row.digest}.xml"] = raw
        if row.report is not None:
            files[_report_name(row.digest, row.kind)] = row.report.encode("utf-8")
    for ref in references:
        if ref["digest"] in blobs:
            files[f"revocation/{ref['digest']}.{ref['kind']}"] = blobs[ref["digest"]]
        for key in ("certificate", "issuer"):
            if ref.get(key) in blobs:
                files[f"revocation/certs/{ref[key]}.der"] = blobs[ref[key]]
    files["ledger/entries.jsonl"] = b"".join(chain.canonical_json(e) + b"\n" for _s, e in concerned)
    files["ledger/proof.json"] = chain.canonical_json({
        "start": start, "prev": prev, "hashes": hashes,
        "head": {"seq": int(head.seq), "chain_hash": head.chain_hash,
                 "checkpoint_seq": int(head.checkpoint_seq)}})
    for cp in checkpoints:
        payload = chain.checkpoint_payload(int(cp.seq), cp.head, chain.utc_text(cp.at))
        files[f"ledger/checkpoints/{cp.seq}.json"] = payload
        files[f"ledger/checkpoints/{cp.seq}.sig"] = bytes(cp.signature)
        if cp.cert_pem is not None:
            files[f"ledger/checkpoints/{cp.seq}.pem"] = bytes(cp.cert_pem)
    last = checkpoints[-1]
    files["ledger/checkpoint.json"] = files[f"ledger/checkpoints/{last.seq}.json"]
    files["ledger/checkpoint.sig"] = bytes(last.signature)
    if last.cert_pem is not None:
        files["certs/operator.pem"] = bytes(last.cert_pem)
    for folder, material in (("roots", trust.roots), ("intermediates", trust.intermediates),
                             ("crls", trust.crls)):
        for name, data in material.items():
            files[f"trust/{folder}/{Path(name).name}"] = data
    created = chain.utc_text(now or datetime.now(UTC))
    operator = ledger.checkpoint_signing  # the operator's key: export opens the ledger with it
    if operator is not None:
        sign, cert_pem = operator
        statement = statement_payload(digest, through, created, [
            (seq, chain.entry_hash(entry)) for seq, entry in concerned])
        files[_STATEMENT] = statement
        files[_STATEMENT_SIG] = sign(statement)
        if cert_pem is not None:
            files[_STATEMENT_PEM] = cert_pem
    files["README.txt"] = _readme(digest, created, concerned, files, last).encode("utf-8")
    listed = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    manifest = chain.canonical_json({"format": FORMAT, "document": digest, "files": listed})
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [("manifest.json", manifest), ("SHA256SUMS", _sums(listed)),
                           *sorted(files.items())]:
            zf.writestr(zipfile.ZipInfo(name, _FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return path


_STATEMENT = "ledger/statement.json"
_STATEMENT_SIG = "ledger/statement.sig"
_STATEMENT_PEM = "ledger/statement.pem"
STATEMENT_TYPE = "evidence-statement"


def statement_payload(document: str, through: int, at: str,
                      entries: Sequence[tuple[int, str]]) -> bytes:
    """The exact bytes the operator signs to say which entries concern ``document``: every one
    up to row ``through`` (the head when the bundle was made), as ``[seq, entry_hash]``.

    A hash-chain proof shows that the entries a bundle holds are in the chain; it cannot show
    that no other entry concerns the document (one removed from the bundle leaves the rest
    proven). This list, signed like the checkpoints, can: the verifier wants exactly these.
    Its ``type`` keeps it apart from a checkpoint signed by the same key."""
    return chain.canonical_json({
        "v": chain.ENCODING_VERSION, "type": STATEMENT_TYPE, "ledger": "edxml-hub",
        "document": document, "through": through, "at": at,
        "entries": [[seq, entry_hash] for seq, entry_hash in entries]})


def _sums(listed: Mapping[str, str]) -> bytes:
    return "".join(f"{h}  {name}\n" for name, h in sorted(listed.items())).encode("utf-8")


def _chain_hash_at(conn: Any, seq: int) -> str:
    value = conn.scalar(select(Event.chain_hash).where(Event.seq == seq))
    if value is None:
        value = conn.scalar(select(Document.chain_hash).where(Document.seq == seq))
    return str(value) if value is not None else chain.GENESIS


def read_members(data: bytes | Path) -> dict[str, bytes]:
    """A bundle's members by name, from a zip (its bytes or path) or an unpacked directory.

    Directory entries are skipped, and a single top folder (``zip -r b.zip evidence-x/``) is
    taken off: only names and contents count."""
    files: dict[str, bytes] = {}
    if isinstance(data, Path) and data.is_dir():
        for item in sorted(data.rglob("*")):
            if item.is_file():
                files[item.relative_to(data).as_posix()] = item.read_bytes()
    else:
        raw = data.read_bytes() if isinstance(data, Path) else data
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    files[info.filename] = zf.read(info)
    if "manifest.json" not in files:
        tops = {name.split("/", 1)[0] for name in files if "/" in name}
        if len(tops) == 1 and all("/" in n for n in files):
            top = tops.pop() + "/"
            files = {name[len(top):]: body for name, body in files.items()}
    return files


def verify_bundle(
    data: bytes | Path,
    *,
    trust: OperatorTrust | None = None,
    trusted_cert_pem: bytes | None = None,
) -> BundleResult:
    """Check a bundle offline: its members against the manifest, the entries against the proof,
    the chain to each signed checkpoint, and each checkpoint's signer against ``trust`` (the
    operator's CA roots or pinned certificates; ``trusted_cert_pem`` pins one certificate).

    Only the checkpoints are signed: the manifest and ``ledger/proof.json`` are not, so nothing
    in them is taken on trust (see :func:`_binding_problems`). An entry counts only when the
    chain walked from the proof's start reproduces the signed head of a checkpoint at or after
    its row; an entry past the last signed checkpoint is a problem, never silently ok (the
    exporter signs a checkpoint over the document's last entry, or makes no bundle). Only the
    members the manifest lists are read.

    Without a trust anchor the signatures are reported as a problem: nothing in the bundle can
    vouch for itself (issue 16, L5). Nor can its structure: a member that is not what the
    format says (not JSON, a missing key, a value of the wrong type) is a problem naming the
    member, and the bundle fails; this never raises for what the bundle holds."""
    if trusted_cert_pem is not None:
        pinned = tuple(load_certificates(trusted_cert_pem)[:1])
        trust = replace(trust, pinned=trust.pinned + pinned) if trust else OperatorTrust(
            pinned=pinned)
    problems: list[str] = []
    notes: list[str] = []
    try:
        files = read_members(data)
        manifest_bytes = files.pop("manifest.json")
    # what zipfile raises for a damaged archive: a bad directory or CRC (BadZipFile), a
    # truncated or corrupt stream (EOFError, zlib.error), an encrypted member (RuntimeError),
    # an unknown compression method (NotImplementedError)
    except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError,
            KeyError, OSError) as error:
        return BundleResult(None, (f"not an evidence bundle: {error}",))
    try:
        manifest = _object(_load_json("manifest.json", manifest_bytes), "manifest.json")
        document, listed = _manifest_fields(manifest)
    except _Malformed as error:
        return BundleResult(None, (str(error),))
    fmt = manifest.get("format")
    if fmt not in (FORMAT, FORMAT_V1):
        problems.append(f"unknown bundle format {fmt!r}")
    if fmt == FORMAT:
        if chain.canonical_json(manifest) != manifest_bytes:
            problems.append("manifest.json is not in canonical form (edited)")
        if files.pop("SHA256SUMS", None) != _sums(listed):
            problems.append("SHA256SUMS does not match manifest.json")
    for name in sorted(set(listed) | set(files)):
        if name not in files:
            problems.append(f"{name} is listed in the manifest but missing")
        elif name not in listed:
            if not name.startswith(_UNLISTED):
                notes.append(f"{name} is not part of the evidence (not in the manifest): ignored")
        elif hashlib.sha256(files[name]).hexdigest() != listed[name]:
            problems.append(f"{name} does not match its digest in the manifest")
    # From here on only what the manifest lists is read: what the verdict relies on is what
    # the manifest (and SHA256SUMS, and the README's "sha256sum -c") vouches for.
    files = {name: body for name, body in files.items() if name in listed}
    try:
        proof = _proof(files[_PROOF])
        lines = _entries(files[_ENTRIES])
        signed: dict[int, tuple[bytes, bytes, bytes | None]] = {}
        checkpoints: dict[int, dict[str, Any]] = {}
        for name in listed:
            if name.startswith("ledger/checkpoints/") and name.endswith(".json") and name in files:
                seq = _checkpoint_seq(name)
                signed[seq] = (files[name], files[name[:-5] + ".sig"],
                               files.get(name[:-5] + ".pem"))
                checkpoints[seq] = _object(_load_json(name, files[name]), name)
    except KeyError as error:
        return BundleResult(document, (*problems, f"bundle incomplete: {error.args[0]} is"
                                       " missing or not listed in the manifest"))
    except _Malformed as error:
        return BundleResult(document, (*problems, str(error)))
    if not signed:
        return BundleResult(document, (*problems, "the bundle holds no signed checkpoint"))
    hashes = proof.hashes
    # 1. the concerned entries, each hashing to its place in the proof
    entries = []
    for line, entry in lines:
        entries.append(entry)
        if chain.canonical_json(entry) != line:
            problems.append(f"entry {entry.get('seq')} is not in canonical form")
        if hashes.get(entry["seq"]) != hashlib.sha256(line).hexdigest():
            problems.append(f"entry {entry.get('seq')} does not match the chain proof (modified)")
    # 2. the packets, reports and revocation data against their entries, and nothing else
    for entry in entries:
        if entry.get("type") == "document":
            problems.extend(_document_problems(entry, files))
    problems.extend(_unaccounted_members(entries, files))
    if document is not None and not any(e.get("digest") == document and e.get("type") ==
                                         "document" for e in entries):
        problems.append("the bundle holds no ledger entry for its document")
    last_cp = max(checkpoints)
    recorded_cp = proof.head_checkpoint_seq
    if recorded_cp is not None and recorded_cp != last_cp:
        problems.append(f"the head records a checkpoint at row {recorded_cp}"
                        f" but the latest signed one is at row {last_cp} (removed)")
    problems.extend(_latest_alias_problems(files, last_cp))
    # 3. every entry and checkpoint inside the proof, and the chain through every checkpoint
    problems.extend(_binding_problems(proof, [int(e["seq"]) for e in entries], checkpoints))
    # 4. the checkpoint signatures, by signers the caller trusts
    signers: list[str] = []
    for seq, (body, signature, cert_pem) in sorted(signed.items()):
        cp = checkpoints[seq]
        if body != chain.checkpoint_payload(seq, str(cp.get("head")), str(cp.get("at"))):
            problems.append(f"checkpoint {seq} is not a canonical checkpoint")
            continue
        try:
            at = datetime.fromisoformat(str(cp.get("at")).replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"checkpoint {seq} has no readable time")
            continue
        problem = checkpoint_signature_problem(seq, body, signature, cert_pem, at, trust)
        if problem is not None:
            problems.append(problem)
        elif cert_pem is not None:
            signer = fingerprint(load_certificates(cert_pem)[0])
            if signer not in signers:
                signers.append(signer)
    # 5. the operator's signed list of the entries concerning the document: all there
    held = {int(e["seq"]): hashlib.sha256(line).hexdigest() for line, e in lines}
    try:
        statement = _statement(files, document, held, trust)
    except _Malformed as error:
        statement = _StatementCheck([str(error)])
    problems.extend(statement.problems)
    trusted = trust is not None and trust.anchored
    if trust is not None and not trusted:
        notes.append("UNVERIFIED signer: signatures were checked against the certificates"
                     " inside the bundle (--self-signed-ok)")
    if not problems:
        notes.append(_proven(len(entries), last_cp, statement))
    return BundleResult(document, tuple(problems), len(entries), last_cp, trusted, tuple(notes),
                        tuple(signers), statement.through is not None and not problems)


@dataclass(frozen=True)
class _StatementCheck:
    """What the signed list of the concerned entries (``ledger/statement.json``) showed."""

    problems: list[str] = field(default_factory=list)
    through: int | None = None
    """The head up to which the list is complete (None: no signed list was checked)."""
    at: str = ""


def _statement(files: Mapping[str, bytes], document: str | None, held: Mapping[int, str],
               trust: OperatorTrust | None) -> _StatementCheck:
    """Check the operator's signed list of the entries concerning the document against the
    entries the bundle holds (``held``: entry_hash by row): exactly those, or a problem for
    each one removed, added or changed. No list: nothing is checked (see :func:`_proven`)."""
    body = files.get(_STATEMENT)
    if body is None:
        return _StatementCheck()
    what = f"the signed list of the entries concerning the document ({_STATEMENT})"
    fields = _object(_load_json(_STATEMENT, body), _STATEMENT)
    if fields.get("type") != STATEMENT_TYPE or fields.get("ledger") != "edxml-hub":
        raise _Malformed(f"{_STATEMENT}: not an evidence statement of an edxml-hub ledger")
    listed_document = _text(_required(fields, "document", _STATEMENT, '"document"'),
                            _STATEMENT, '"document"')
    through = _integer(_required(fields, "through", _STATEMENT, '"through"'), _STATEMENT,
                       '"through"')
    at_text = _text(_required(fields, "at", _STATEMENT, '"at"'), _STATEMENT, '"at"')
    pairs = _required(fields, "entries", _STATEMENT, '"entries"')
    if not (isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)
            and not isinstance(p[0], bool) and isinstance(p[1], str)
            and _SHA256_HEX.fullmatch(p[1]) for p in pairs)):
        raise _Malformed(f'{_STATEMENT}: "entries" is not a list of [row, SHA-256] pairs')
    try:
        at = _gmt(at_text)
    except ValueError:
        raise _Malformed(f'{_STATEMENT}: "at" is not a time') from None
    problems: list[str] = []
    if chain.canonical_json(fields) != body:
        problems.append(f"{_STATEMENT} is not in canonical form (edited)")
    signature = files.get(_STATEMENT_SIG)
    if signature is None:
        problems.append(f"{what} has no signature ({_STATEMENT_SIG} is missing)")
    else:
        problem = operator_signature_problem(what, body, signature, files.get(_STATEMENT_PEM),
                                             at, trust)
        if problem is not None:
            problems.append(problem)
    if listed_document != document:
        problems.append(f"{what} is about document {listed_document}, not the bundle's")
    listed = {int(seq): str(entry_hash) for seq, entry_hash in pairs}
    for seq in sorted(listed.keys() | held.keys()):
        if seq not in held:
            problems.append(f"entry {seq} concerns the document, as the operator signed, but"
                            " is not in the bundle (removed)")
        elif seq not in listed:
            problems.append(f"entry {seq} is in the bundle but not among the entries the"
                            " operator signed as concerning the document (added)")
        elif listed[seq] != held[seq]:
            problems.append(f"entry {seq} is not the one the operator signed as concerning"
                            " the document")
    return _StatementCheck(problems, through, at_text)


def _proven(entries: int, checkpoint: int, statement: _StatementCheck) -> str:
    """What a bundle that verified proves, exactly."""
    chained = (f"proven: these {entries} entries are in the chain that the signed checkpoint"
               f" at row {checkpoint} covers")
    if statement.through is None:
        return (chained + "; NOT proven: that no other entry concerns the document (a chain"
                f" proof shows presence, not completeness, and the bundle holds no {_STATEMENT}"
                " signed by the operator to list them: it was made without the operator key,"
                " by an older hub, or the list was removed)")
    return (chained + f", and they are every entry concerning the document up to row"
            f" {statement.through}, as the hub operator signed at {statement.at} (later ones,"
            " if any, are not in this bundle)")


# -- reading a bundle's structured members: each raises _Malformed naming the member ----------

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ENTRIES = "ledger/entries.jsonl"
_PROOF = "ledger/proof.json"


@dataclass(frozen=True)
class _Proof:
    """``ledger/proof.json``, its types checked."""

    start: int
    prev: str
    rows: tuple[tuple[int, str], ...]
    """[row, entry_hash] as listed, which the exporter lists once each from ``start`` through
    the head, in order (the README's check walks them in this order)."""
    head_seq: int
    head_chain_hash: str
    head_checkpoint_seq: int | None
    """The latest checkpoint the ledger's head recorded (absent from older bundles)."""

    @property
    def hashes(self) -> dict[int, str]:
        """entry_hash by row (a row listed twice is reported by :func:`_binding_problems`)."""
        return dict(self.rows)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; JSON has none


def _load_json(where: str, data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise _Malformed(f"{where}: not JSON ({error})") from None


def _object(value: Any, where: str, label: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{where}: {label + ' is ' if label else ''}not a JSON object")
    return value


def _required(obj: Mapping[str, Any], key: str, where: str, label: str) -> Any:
    if key not in obj:
        raise _Malformed(f"{where}: {label} is missing")
    return obj[key]


def _integer(value: Any, where: str, label: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(f"{where}: {label} is not an integer")
    return value


def _text(value: Any, where: str, label: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{where}: {label} is not a string")
    return value


def _sha256_hex(value: Any, where: str, label: str) -> str:
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise _Malformed(f"{where}: {label} is not a SHA-256 hex digest")
    return value


def _manifest_fields(manifest: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The document digest (absent in no released format, tolerated) and the listed files."""
    document = manifest.get("document")
    if document is not None:
        _text(document, "manifest.json", '"document"')
    listed = manifest.get("files", {})
    if not (isinstance(listed, dict) and all(isinstance(v, str) for v in listed.values())):
        raise _Malformed('manifest.json: "files" is not an object of member names and SHA-256'
                         " digests")
    return document, listed


def _proof(data: bytes) -> _Proof:
    proof = _object(_load_json(_PROOF, data), _PROOF)
    pairs = _required(proof, "hashes", _PROOF, '"hashes"')
    if not (isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)
            and not isinstance(p[0], bool) and isinstance(p[1], str)
            and _SHA256_HEX.fullmatch(p[1]) for p in pairs)):
        raise _Malformed(f'{_PROOF}: "hashes" is not a list of [row, SHA-256] pairs')
    head = _object(_required(proof, "head", _PROOF, '"head"'), _PROOF, '"head"')
    checkpoint_seq = head.get("checkpoint_seq")
    return _Proof(
        start=_integer(_required(proof, "start", _PROOF, '"start"'), _PROOF, '"start"'),
        prev=_sha256_hex(_required(proof, "prev", _PROOF, '"prev"'), _PROOF, '"prev"'),
        rows=tuple((seq, entry_hash) for seq, entry_hash in pairs),
        head_seq=_integer(_required(head, "seq", _PROOF, '"head"."seq"'), _PROOF,
                          '"head"."seq"'),
        head_chain_hash=_text(_required(head, "chain_hash", _PROOF, '"head"."chain_hash"'),
                              _PROOF, '"head"."chain_hash"'),
        head_checkpoint_seq=None if checkpoint_seq is None else _integer(
            checkpoint_seq, _PROOF, '"head"."checkpoint_seq"'))


def _entries(data: bytes) -> list[tuple[bytes, dict[str, Any]]]:
    """Each line of ``ledger/entries.jsonl`` with its entry, whose fields that verification
    reads have the types the ledger writes (``seq``; a document's ``digest`` and revocation
    references)."""
    entries: list[tuple[bytes, dict[str, Any]]] = []
    for number, line in enumerate(data.splitlines(), 1):
        where = f"{_ENTRIES} line {number}"
        entry = _object(_load_json(where, line), where)
        _integer(_required(entry, "seq", where, '"seq"'), where, '"seq"')
        if entry.get("type") == "document":
            _text(_required(entry, "digest", where, '"digest"'), where, '"digest"')
            references = entry.get("revocation") or []
            if not (isinstance(references, list)
                    and all(isinstance(ref, dict) for ref in references)):
                raise _Malformed(f'{where}: "revocation" is not a list of objects')
            for index, ref in enumerate(references):
                label = f'"revocation"[{index}]'
                for key in ("digest", "kind"):
                    _text(_required(ref, key, where, f'{label}."{key}"'), where,
                          f'{label}."{key}"')
                for key in ("certificate", "issuer"):
                    if ref.get(key) is not None:
                        _text(ref[key], where, f'{label}."{key}"')
        entries.append((line, entry))
    return entries


def _binding_problems(proof: _Proof, entry_rows: Sequence[int],
                      checkpoints: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """What in the proof is not bound to a signed checkpoint.

    The proof and the manifest are not signed: whoever holds a bundle can move "start" and
    "prev", add rows to "hashes" or change the head. What cannot be forged is a signed
    checkpoint's head, the chain hash at its row. So the chain is walked from "start" (with
    "prev") over every row up to the head, listed once each and in order, and must reproduce
    the head of every checkpoint the bundle holds, each within those rows; an entry counts
    only at a row from "start" up to the last checkpoint, since each row up to a checkpoint is
    then fixed by its signed head (SHA-256 second preimages aside). Rows after the last
    checkpoint are vouched for by the unsigned head alone."""
    problems: list[str] = []
    start, end = proof.start, proof.head_seq
    if start > end:
        problems.append(f"the chain proof starts at row {start}, after its head at row {end}:"
                        " it binds nothing to a signed checkpoint")
    else:
        problems.extend(_coverage_problems(proof))
    for seq in sorted(checkpoints):
        if seq < start:
            problems.append(f"the signed checkpoint at row {seq} lies before the chain proof's"
                            f" start at row {start}: the chain does not reach it")
        elif seq > end:
            problems.append(f"the signed checkpoint at row {seq} lies beyond the head"
                            " (truncated)")
    covered = [seq for seq in checkpoints if start <= seq <= end]
    if start <= end and not covered:
        problems.append(f"no signed checkpoint lies within the chain proof's rows {start} to"
                        f" {end}: nothing signed binds its entries")
    last = max(covered, default=None)
    seen: set[int] = set()
    for seq in entry_rows:
        if seq in seen:
            problems.append(f"entry {seq} appears more than once")
        seen.add(seq)
        if seq < start:
            problems.append(f"entry {seq} lies before the chain proof's start at row {start}:"
                            " no signed checkpoint covers it")
        elif last is not None and seq > last:
            problems.append(f"entry {seq} lies after the last signed checkpoint (row {last}):"
                            " no signature covers it")
    if problems:
        return problems  # the walk below means something only over a well-formed proof
    link = proof.prev
    for seq, entry_hash in proof.rows:
        link = chain.link(link, entry_hash)
        if seq in checkpoints and link != checkpoints[seq].get("head"):
            problems.append(f"the chain does not reach the signed checkpoint at row {seq}")
    if link != proof.head_chain_hash:
        problems.append("the chain does not reach the recorded head")
    return problems


def _coverage_problems(proof: _Proof) -> list[str]:
    """The first departure of the proof's rows from "start" through the head, once each in
    order (it walks the list, never the range: the range is the bundle's to claim)."""
    start, end = proof.start, proof.head_seq
    expected = start
    for seq, _hash in proof.rows:
        if seq < start or seq > end:
            return [f"the chain proof lists row {seq}, outside its rows {start} to {end}"]
        if seq < expected:
            return [f"the chain proof lists row {seq} twice or out of order"]
        if seq > expected:
            return [f"the chain proof lacks row {expected} (deleted or truncated)"]
        expected += 1
    if expected <= end:
        return [f"the chain proof lacks row {expected} (deleted or truncated)"]
    return []


_LATEST_ALIASES = (("ledger/checkpoint.json", ".json"), ("ledger/checkpoint.sig", ".sig"),
                   ("certs/operator.pem", ".pem"))
"""The copies of the latest checkpoint's members the exporter writes under fixed names."""


def _latest_alias_problems(files: Mapping[str, bytes], last_cp: int) -> list[str]:
    """The fixed-name copies of the latest checkpoint are that checkpoint's members: the
    verdict names that row, and an auditor reading the README looks there."""
    problems = []
    for alias, suffix in _LATEST_ALIASES:
        if alias in files and files[alias] != files.get(f"ledger/checkpoints/{last_cp}{suffix}"):
            problems.append(f"{alias} is not the latest signed checkpoint (row {last_cp})")
    return problems


_EVIDENCE_FOLDERS = ("documents/", "reports/", "revocation/")


def _unaccounted_members(entries: Sequence[Mapping[str, Any]],
                         files: Mapping[str, bytes]) -> list[str]:
    """Packets, reports and revocation data the manifest lists but no entry names: the
    exporter writes none, and nothing in the chain vouches for them."""
    named: set[str] = set()
    for entry in entries:
        if entry.get("type") != "document":
            continue
        digest = str(entry["digest"])
        named |= {f"documents/{digest}.xml", _report_name(digest, str(entry.get("kind")))}
        for ref in entry.get("revocation") or ():
            named.add(f"revocation/{ref['digest']}.{ref['kind']}")
            named |= {f"revocation/certs/{ref[k]}.der" for k in ("certificate", "issuer")
                      if ref.get(k)}
    return [f"{name} is not named by any ledger entry in the bundle (unaccounted)"
            for name in sorted(files) if name.startswith(_EVIDENCE_FOLDERS) and name not in named]


def _checkpoint_seq(name: str) -> int:
    """The row of ``ledger/checkpoints/<seq>.json``."""
    stem = name.rsplit("/", 1)[1][:-5]
    if not (stem.isascii() and stem.isdigit()):
        raise _Malformed(f"{name}: not named by its row number")
    return int(stem)


def _document_problems(entry: Mapping[str, Any], files: Mapping[str, bytes]) -> list[str]:
    problems: list[str] = []
    digest = str(entry["digest"])
    refusal = entry.get("refusal")
    kept = not (entry.get("kind") == REFUSED and isinstance(refusal, dict)
                and not refusal.get("kept"))
    name = f"documents/{digest}.xml"
    if name not in files:
        if kept:
            problems.append(f"{name} is missing")
    elif hashlib.sha256(files[name]).hexdigest() != digest:
        problems.append(f"{name}: the bytes do not match the ledger digest (swapped)")
    report = files.get(_report_name(digest, str(entry.get("kind"))))
    report_digest = hashlib.sha256(report).hexdigest() if report is not None else None
    if report_digest != entry.get("report_digest"):
        problems.append(f"the report of {digest} does not match the ledger")
    for ref in entry.get("revocation") or ():
        wanted = [(f"revocation/{ref['digest']}.{ref['kind']}", ref["digest"])]
        wanted += [(f"revocation/certs/{ref[k]}.der", ref[k]) for k in ("certificate", "issuer")
                   if ref.get(k)]
        for member, member_digest in wanted:
            body = files.get(member)
            if body is None:
                problems.append(f"{member} (revocation evidence of {digest}) is missing")
            elif hashlib.sha256(body).hexdigest() != member_digest:
                problems.append(f"{member} does not match the ledger digest (swapped)")
    return problems


def _gmt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _readme(digest: str, created: str, concerned: Sequence[tuple[int, Mapping[str, Any]]],
            files: Mapping[str, bytes], last_checkpoint: Any) -> str:
    """The bundle's README: what it proves and, on lines starting with ``$ ``, the commands
    that check it with stock tools (Debian bookworm: xmlsec1 1.2.37, OpenSSL 3, Python 3)."""
    roots = sorted(n for n in files if n.startswith("trust/roots/"))
    intermediates = sorted(n for n in files if n.startswith("trust/intermediates/"))
    untrusted = " -untrusted out/intermediates.pem" if intermediates else ""
    out = [
        f"Evidence bundle for document {digest}",
        f"(format {FORMAT}, made by edxml-hub at {created})",
        "",
        "This bundle proves what the hub recorded about one document: the exact bytes it",
        "received, every status and receipt referring to it, the validation reports, the exact",
        "revocation data (CRL or OCSP answer) the validation used, and the ledger entries,",
        "chained to checkpoints signed by the hub operator organization; that these entries",
        "are all of those concerning the document only by the operator's signed list of",
        "them (step 6). Everything can be",
        "checked offline. Each line starting with \"$ \" is a command to run (bash) in the",
        "unpacked bundle's folder with Debian's stock xmlsec1 and openssl and python3; the",
        "commands write their own files under out/. Every command must succeed.",
        "",
        "$ mkdir -p out",
        "$ cat /dev/null " + " ".join(roots) + " > out/roots.pem",
        "$ cat /dev/null " + " ".join(intermediates) + " > out/intermediates.pem",
        "",
        "trust/ holds the trust material the hub was configured with. It is not evidence by",
        "itself: compare each root with the fingerprint the certification authority (Ban Cơ",
        "yếu Chính phủ) publishes, or put your own copy in its place.",
        *[f"$ openssl x509 -noout -fingerprint -sha256 -subject -in {r}" for r in roots],
        "",
        "1. The files are intact (manifest.json lists the same digests)",
        "$ sha256sum -c --quiet SHA256SUMS",
        "",
        "2. The senders' signatures (XML-DSig, QCVN 102:2016), under the specialized roots, at",
        "   the time the hub received each packet (xmlsec1 1.2.37 has no CRL option:",
        "   revocation is step 3)",
    ]
    trusted = " ".join(f"--trusted-pem {r}" for r in roots)
    untrusted_x = " ".join(f"--untrusted-pem {i}" for i in intermediates)
    signed_docs = [e for _s, e in concerned if e.get("type") == "document"
                   and e.get("kind") != REFUSED and f"documents/{e['digest']}.xml" in files]
    for entry in signed_docs:
        at = _gmt(str(entry["received_at"])).strftime("%Y-%m-%d %H:%M:%S")
        if roots:
            out.append(f"$ xmlsec1 --verify --verification-gmt-time \"{at}\" {trusted}"
                       f"{' ' + untrusted_x if untrusted_x else ''}"
                       f" documents/{entry['digest']}.xml")
        else:
            out.append(f"   documents/{entry['digest']}.xml: no roots in this bundle; run"
                       " xmlsec1 --verify with your own --trusted-pem")
    refused = [e for _s, e in concerned if e.get("type") == "document"
               and e.get("kind") == REFUSED]
    for entry in refused:
        refusal = entry.get("refusal") or {}
        out.append(f"   documents/{entry['digest']}.xml was refused ({refusal.get('reason')});"
                   + (" its bytes are included" if refusal.get("kept") else
                      f" its bytes were not kept (over {refusal.get('cap')} bytes)"))
    out += ["", "3. The revocation status the hub used (exact CRL / OCSP answer, at its time)"]
    references = [ref for _s, e in concerned if e.get("type") == "document"
                  for ref in e.get("revocation") or ()]
    if not references:
        out.append("   (no revocation data was recorded with this document)")
    for ref in references:
        epoch = int(_gmt(str(ref["at"])).timestamp())
        cert = ref.get("certificate")
        if cert:
            out.append(f"$ openssl x509 -inform DER -in revocation/certs/{cert}.der"
                       f" -out out/{cert}.pem")
        if ref["kind"] == "crl":
            out.append(f"$ openssl crl -inform DER -in revocation/{ref['digest']}.crl"
                       f" -out out/{ref['digest']}.crl.pem")
            if cert and roots:
                out.append(f"$ openssl verify -attime {epoch} -crl_check -CRLfile"
                           f" out/{ref['digest']}.crl.pem -CAfile out/roots.pem{untrusted}"
                           f" out/{cert}.pem")
        else:
            out.append(f"$ openssl ocsp -respin revocation/{ref['digest']}.ocsp -resp_text"
                       " -noverify")
            out.append("   (check the responder's signature with openssl ocsp -issuer ...)")
    out += ["", "4. The checkpoint signatures (the hub operator organization)",
            "   Each ledger/checkpoints/<row>.pem is the signer's certificate then its CAs;"
            " its",
            "   subject UID must be the operator organization's code, and it must chain to the",
            "   roots at the checkpoint's time (certificates rotate: each checkpoint has its own)."]
    for name in sorted(n for n in files if n.startswith("ledger/checkpoints/")
                       and n.endswith(".json")):
        stem = name[:-5]
        if f"{stem}.pem" not in files:
            continue
        seq = stem.rsplit("/", 1)[1]
        cp = json.loads(files[name])
        epoch = int(_gmt(str(cp["at"])).timestamp())
        out += [
            f"$ openssl x509 -in {stem}.pem -pubkey -noout -out out/operator-{seq}.pub",
            f"$ openssl dgst -sha256 -verify out/operator-{seq}.pub -signature {stem}.sig"
            f" {name}",
            f"$ openssl x509 -in {stem}.pem -noout -subject -nameopt RFC2253",
        ]
        if roots:
            out.append(f"$ openssl verify -attime {epoch} -CAfile out/roots.pem -untrusted"
                       f" {stem}.pem {stem}.pem")
    out += [
        "   (PKCS#1 v1.5; for RSA-PSS add -sigopt rsa_padding_mode:pss"
        " -sigopt rsa_pss_saltlen:auto)",
        f"   ledger/checkpoint.json is the latest (row {last_checkpoint.seq}).",
        "",
        "5. The ledger entries are those the checkpoints cover",
        "   ledger/entries.jsonl has one canonical JSON object per line (keys sorted, no",
        "   spaces, UTF-8); entry_hash = SHA-256(line). ledger/proof.json lists [seq,",
        "   entry_hash] for every row from \"start\" to the head, once each, in order. link =",
        "   prev; for each row: link = SHA-256(bytes(link) + bytes(entry_hash)); at each",
        "   checkpoint's \"seq\" the link must equal its \"head\". proof.json is not signed:",
        "   only the checkpoints are, so every entry must lie from \"start\" up to the last",
        "   checkpoint. A document entry names the SHA-256 of its bytes",
        "   (documents/<digest>.xml), of its report, and of its revocation data.",
        "$ python3 - <<'EOF'",
        "import glob, hashlib, json, sys",
        "p = json.load(open('ledger/proof.json'))",
        "rows = [seq for seq, h in p['hashes']]",
        "end = p['head']['seq']",
        "if rows != list(range(p['start'], p['start'] + len(rows))) or rows[-1:] != [end]:",
        "    sys.exit('the chain proof does not list each row from its start to its head once')",
        "proof = {seq: h for seq, h in p['hashes']}",
        "heads = {}",
        "for name in glob.glob('ledger/checkpoints/*.json'):",
        "    c = json.load(open(name))",
        "    heads[c['seq']] = c['head']",
        "if not heads:",
        "    sys.exit('no signed checkpoint')",
        "for line in open('ledger/entries.jsonl', 'rb').read().splitlines():",
        "    e = json.loads(line)",
        "    if not p['start'] <= e['seq'] <= max(heads):",
        "        sys.exit(f\"entry {e['seq']} is not covered by a signed checkpoint\")",
        "    if proof.get(e['seq']) != hashlib.sha256(line).hexdigest():",
        "        sys.exit(f\"entry {e['seq']} is not in the chain proof\")",
        "    if e['type'] == 'document':",
        "        try:",
        "            data = open(f\"documents/{e['digest']}.xml\", 'rb').read()",
        "        except FileNotFoundError:",
        "            data = None",
        "        if data is not None and hashlib.sha256(data).hexdigest() != e['digest']:",
        "            sys.exit(f\"documents/{e['digest']}.xml does not match its entry\")",
        "link = bytes.fromhex(p['prev'])",
        "for seq, h in p['hashes']:",
        "    link = hashlib.sha256(link + bytes.fromhex(h)).digest()",
        "    if seq in heads and link.hex() != heads.pop(seq):",
        "        sys.exit(f'the chain does not reach the checkpoint at row {seq}')",
        "if heads:",
        "    sys.exit(f'checkpoints outside the proof: {sorted(heads)}')",
        "print('chain ok')",
        "EOF",
        "",
        "6. Which entries concern the document",
        "   Step 5 proves that the entries in ledger/entries.jsonl are in the chain the signed",
        "   checkpoints cover: presence, not completeness. An entry left out of the bundle",
        "   leaves the others proven.",
    ]
    out += _readme_statement(files)
    return "\n".join(out)


def _readme_statement(files: Mapping[str, bytes]) -> list[str]:
    """Step 6 of the README: the operator's signed list of the concerned entries, if any."""
    if _STATEMENT not in files:
        return [
            "   This bundle holds no list of them signed by the operator (it was made without",
            "   the operator key): it does NOT prove that no other entry concerns the",
            "   document.", ""]
    statement = json.loads(files[_STATEMENT])
    out = [
        f"   {_STATEMENT}, signed by the hub operator like the checkpoints, lists [seq,",
        "   entry_hash] of every entry concerning the document up to row"
        f" {statement['through']} (the",
        "   head when the bundle was made); the bundle must hold exactly those.",
        f"$ openssl x509 -in {_STATEMENT_PEM} -pubkey -noout -out out/statement.pub",
        f"$ openssl dgst -sha256 -verify out/statement.pub -signature {_STATEMENT_SIG}"
        f" {_STATEMENT}",
        f"$ openssl x509 -in {_STATEMENT_PEM} -noout -subject -nameopt RFC2253",
    ]
    if any(n.startswith("trust/roots/") for n in files):
        epoch = int(_gmt(str(statement["at"])).timestamp())
        out.append(f"$ openssl verify -attime {epoch} -CAfile out/roots.pem -untrusted"
                   f" {_STATEMENT_PEM} {_STATEMENT_PEM}")
    out += [
        "$ python3 - <<'EOF'",
        "import hashlib, json, sys",
        f"s = json.load(open('{_STATEMENT}'))",
        "listed = sorted((seq, h) for seq, h in s['entries'])",
        "held = sorted((json.loads(line)['seq'], hashlib.sha256(line).hexdigest())",
        "              for line in open('ledger/entries.jsonl', 'rb').read().splitlines())",
        "if listed != held:",
        "    sys.exit('the bundle does not hold exactly the entries the operator signed')",
        "print('entries complete')",
        "EOF",
        "",
    ]
    return out
