"""Evidence bundles: one zip proving what happened to one document, checkable offline.

A bundle holds the exact envelope bytes, every status packet and receipt that refers to it, the
validation reports, the ledger entries that concern it in canonical form, the hash of every other
entry from the first concerned entry to the chain head (the chain proof), the latest signed
checkpoint with its signature and certificate, and the trust material (certificates, CRLs) handed
in by the caller. :func:`verify_bundle` checks it without a database; ``README.txt`` inside the
bundle says how to check the signatures with ``xmlsec1`` and ``openssl`` alone.

Layout::

    README.txt                      how to check by hand
    manifest.json                   sha256 of every other file
    documents/<digest>.xml          exact packet bytes, named by their SHA-256
    reports/<digest>.json           validation report, the exact text the ledger hashed
    ledger/entries.jsonl            the concerned entries, one canonical JSON per line
    ledger/proof.json               {"start", "prev", "hashes": [[seq, entry_hash], ...],
                                     "head": {"seq", "chain_hash"}}
    ledger/checkpoint.json          the exact signed checkpoint bytes
    ledger/checkpoint.sig           its signature (RSA SHA-256)
    ledger/checkpoints/<seq>.*      every signed checkpoint from the first entry (.json .sig .pem)
    certs/operator.pem              the certificate of the checkpoint signer
    trust/...                       certificates and CRLs used to validate (from the caller)
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.ledger import chain
from hub.ledger.models import Checkpoint, Document, Event, Head
from hub.ledger.store import Ledger
from hub.ledger.verify import (
    document_entry_from_row,
    event_entry_from_row,
    signature_check_from_cert,
)

FORMAT = "edxml-hub-evidence/1"
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)  # zip member times carry nothing: the manifest says when


class EvidenceError(Exception):
    """The bundle cannot be made (unknown document, no signed checkpoint)."""


@dataclass(frozen=True)
class BundleResult:
    """Outcome of checking a bundle offline. ``ok`` is derived."""

    document: str | None
    problems: tuple[str, ...] = ()
    entries: int = 0
    checkpoint_seq: int | None = None
    signer_trusted: bool = False
    """The checkpoint signature was checked against a certificate the caller trusts."""
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "document": self.document, "problems": list(self.problems),
                "entries": self.entries, "checkpoint_seq": self.checkpoint_seq,
                "signer_trusted": self.signer_trusted, "notes": list(self.notes)}


def resolve_document(ledger: Ledger, key: str) -> str:
    """A document digest from a digest, a DocumentId or a code (first match in that order)."""
    if ledger.document_by_digest(key) is not None:
        return key
    found = ledger.documents(document_id=key, limit=1) or ledger.documents(code=key, limit=1)
    if not found:
        raise EvidenceError(f"no document with digest, DocumentId or code {key!r}")
    return found[0].digest


def export_evidence(
    ledger: Ledger,
    digest: str,
    path: Path,
    *,
    trust_files: Mapping[str, bytes] | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the evidence bundle of the document ``digest`` to ``path``."""
    if ledger.document_by_digest(digest) is None:
        raise EvidenceError(f"unknown document {digest}")
    with ledger.engine.connect() as conn:
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
    files: dict[str, bytes] = {}
    for row in doc_rows:
        raw = bytes(row.raw) if row.raw is not None else ledger.raw(row.digest)
        files[f"documents/{row.digest}.xml"] = raw or b""
        if row.report is not None:
            files[f"reports/{row.digest}.json"] = row.report.encode("utf-8")
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
    for name, data in (trust_files or {}).items():
        files[f"trust/{Path(name).name}"] = data
    files["README.txt"] = _readme(digest).encode("utf-8")
    manifest = {
        "format": FORMAT, "document": digest,
        "created_at": chain.utc_text(now or datetime.now(UTC)),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [("manifest.json", json.dumps(manifest, indent=2).encode()),
                           *sorted(files.items())]:
            zf.writestr(zipfile.ZipInfo(name, _FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return path


def _chain_hash_at(conn: Any, seq: int) -> str:
    value = conn.scalar(select(Event.chain_hash).where(Event.seq == seq))
    if value is None:
        value = conn.scalar(select(Document.chain_hash).where(Document.seq == seq))
    return str(value) if value is not None else chain.GENESIS


def verify_bundle(data: bytes | Path, *, trusted_cert_pem: bytes | None = None) -> BundleResult:
    """Check a bundle offline: file digests, entries against the proof, the chain to the
    signed checkpoint, and the signature (with ``trusted_cert_pem`` when given)."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    problems: list[str] = []
    notes: list[str] = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        files = {name: zf.read(name) for name in zf.namelist()}
        manifest = json.loads(files.pop("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        return BundleResult(None, (f"not an evidence bundle: {error}",))
    document = manifest.get("document")
    if manifest.get("format") != FORMAT:
        problems.append(f"unknown bundle format {manifest.get('format')!r}")
    listed: dict[str, str] = manifest.get("files", {})
    for name in sorted(set(listed) | set(files)):
        if name not in files:
            problems.append(f"{name} is listed in the manifest but missing")
        elif name not in listed:
            problems.append(f"{name} is not listed in the manifest")
        elif hashlib.sha256(files[name]).hexdigest() != listed[name]:
            problems.append(f"{name} does not match its digest in the manifest")
    try:
        proof = json.loads(files["ledger/proof.json"])
        lines = files["ledger/entries.jsonl"].splitlines()
        signed = {
            int(name.rsplit("/", 1)[1][:-5]): (
                files[name], files[name[:-5] + ".sig"], files.get(name[:-5] + ".pem"))
            for name in files
            if name.startswith("ledger/checkpoints/") and name.endswith(".json")}
        checkpoints = {seq: json.loads(body) for seq, (body, _s, _c) in signed.items()}
    except (KeyError, ValueError) as error:
        return BundleResult(document, (*problems, f"bundle incomplete: {error}"))
    if not signed:
        return BundleResult(document, (*problems, "the bundle holds no signed checkpoint"))
    hashes = {int(s): str(h) for s, h in proof["hashes"]}
    start, end = int(proof["start"]), int(proof["head"]["seq"])
    # 1. the concerned entries, each hashing to its place in the proof
    entries = []
    for line in lines:
        entry = json.loads(line)
        entries.append(entry)
        if chain.canonical_json(entry) != line:
            problems.append(f"entry {entry.get('seq')} is not in canonical form")
        if hashes.get(int(entry["seq"])) != hashlib.sha256(line).hexdigest():
            problems.append(f"entry {entry.get('seq')} does not match the chain proof (modified)")
    # 2. the packets and reports against their entries
    for entry in entries:
        if entry.get("type") != "document":
            continue
        name = f"documents/{entry['digest']}.xml"
        if name not in files:
            problems.append(f"{name} is missing")
        elif hashlib.sha256(files[name]).hexdigest() != entry["digest"]:
            problems.append(f"{name}: the bytes do not match the ledger digest (swapped)")
        report = files.get(f"reports/{entry['digest']}.json")
        report_digest = hashlib.sha256(report).hexdigest() if report is not None else None
        if report_digest != entry.get("report_digest"):
            problems.append(f"the report of {entry['digest']} does not match the ledger")
    if document is not None and not any(e.get("digest") == document and e.get("type") ==
                                         "document" for e in entries):
        problems.append("the bundle holds no ledger entry for its document")
    last_cp = max(checkpoints)
    if int(proof["head"].get("checkpoint_seq", last_cp)) != last_cp:
        problems.append(f"the head records a checkpoint at row {proof['head']['checkpoint_seq']}"
                        f" but the latest signed one is at row {last_cp} (removed)")
    if last_cp > end:
        problems.append(f"the signed checkpoint at row {last_cp} lies beyond the head (truncated)")
    # 3. the chain from the first concerned entry through every checkpoint to the head
    link = str(proof["prev"])
    for seq in range(start, max(end, last_cp) + 1):
        if seq not in hashes:
            problems.append(f"the chain proof lacks row {seq} (deleted or truncated)")
            break
        link = chain.link(link, hashes[seq])
        if seq in checkpoints and link != checkpoints[seq].get("head"):
            problems.append(f"the chain does not reach the signed checkpoint at row {seq}")
        if seq == end and link != proof["head"]["chain_hash"]:
            problems.append("the chain does not reach the recorded head")
    # 4. the checkpoint signatures
    trusted = trusted_cert_pem is not None
    for seq, (body, signature, cert_pem) in sorted(signed.items()):
        cp = checkpoints[seq]
        if body != chain.checkpoint_payload(seq, str(cp.get("head")), str(cp.get("at"))):
            problems.append(f"checkpoint {seq} is not a canonical checkpoint")
        pem = trusted_cert_pem if trusted_cert_pem is not None else cert_pem
        if pem is None:
            problems.append(f"no certificate to check the checkpoint at row {seq}")
        elif not signature_check_from_cert(pem)(body, signature):
            problems.append(f"the checkpoint signature at row {seq} does not verify (forged)")
    if not trusted:
        notes.append("signatures checked against the certificates inside the bundle; compare"
                     " them with the operator's published certificate")
    cp_seq = last_cp
    return BundleResult(document, tuple(problems), len(entries), cp_seq, trusted, tuple(notes))


def _readme(digest: str) -> str:
    return f"""Evidence bundle for document {digest}
(format {FORMAT}, made by edxml-hub)

This bundle proves what the hub recorded about one document: the exact bytes it received,
every status and receipt referring to it, the validation reports, and the ledger entries, chained
to a checkpoint signed by the hub operator organization. Everything can be checked offline.

1. Files are intact
   Compare every file with manifest.json:   sha256sum documents/* reports/* ledger/* certs/*
   A document file is named by the SHA-256 of its bytes:
       sha256sum documents/{digest}.xml      (must print {digest})

2. The sender's signature on the envelope (QCVN 102:2016, XML-DSig)
       xmlsec1 --verify --trusted-pem trust/ROOT.pem --untrusted-pem trust/ISSUING_CA.pem \\
               documents/{digest}.xml
   Add --crl-pem trust/CRL.pem (or --crl for DER) to check revocation with the CRLs included.
   Status packets and receipts in documents/ are checked the same way.

3. The checkpoint signature (hub operator organization)
       openssl x509 -in certs/operator.pem -pubkey -noout > operator.pub
       openssl dgst -sha256 -verify operator.pub -signature ledger/checkpoint.sig \\
               ledger/checkpoint.json
   (PKCS#1 v1.5; for RSA-PSS add -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto)
   Check that certs/operator.pem is the operator's certificate:
       openssl verify -CAfile trust/ROOT.pem -untrusted trust/ISSUING_CA.pem certs/operator.pem

4. The ledger entries are those the checkpoint covers
   ledger/entries.jsonl has one canonical JSON object per line (keys sorted, no spaces, UTF-8).
   entry_hash = SHA-256(line). ledger/proof.json lists [seq, entry_hash] for every row from
   "start" to the head; the concerned entries must appear there with the same hash. Then
       link = prev;  for each row in order: link = SHA-256(bytes(link) + bytes(entry_hash))
   (hex decoded to 32 bytes each); at the checkpoint's "seq" the link must equal its "head".
   In Python 3 with the standard library only:

       import hashlib, json
       p = json.load(open("ledger/proof.json")); c = json.load(open("ledger/checkpoint.json"))
       link = bytes.fromhex(p["prev"])
       for seq, h in p["hashes"]:
           link = hashlib.sha256(link + bytes.fromhex(h)).digest()
           if seq == c["seq"]: print("checkpoint ok" if link.hex() == c["head"] else "BAD")

   A document entry carries the document's digest and its report's digest
   (SHA-256 of reports/<digest>.json); an event carries the document digest it concerns.
"""
