"""Ledger benchmark: batched write cost and full-chain verify rate; prints one JSON object.

    python bench/bench_ledger.py [--rows 1000000] [--batches 50] [--postgres]
                                 [--verify-only] [--keep DIR]

Writes: group-commit batches of 100 documents (2 KB each) + 300 events through
:meth:`Ledger.write`, on SQLite with ``synchronous=FULL`` and ``NORMAL`` (and PostgreSQL when
asked); then CPU per write for batches of 1, 2 and 128 envelopes in the pipeline's row shape
(2 documents + 5 events each, SQLite ``NORMAL``: the per-batch fixed cost). Verify: a ledger
of ``--rows`` entries (1 document per 10 entries, a checkpoint every 1000 signed by an operator
certificate kept beside it) generated with bulk inserts, then checked
by :meth:`Ledger.verify` in process (with a helper process per usable core, as the auditor's
command runs it, then by this process alone) and by ``hub ledger verify --operator-cert`` (the
auditor's command, a fresh process; wall and CPU time, helpers included). ``--keep DIR`` keeps
the generated ledger (and its certificate) there and reuses it on the next run;
``--verify-only`` skips the write benchmarks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, insert, text, update

from hub import logs
from hub.ledger import DocumentIn, EventIn, EventKind, Ledger, chain
from hub.ledger.models import Checkpoint, Document, Event, Head
from hub.trust.signer_pool import usable_cores

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def batch(n: int) -> tuple[list[DocumentIn], list[EventIn]]:
    docs, events = [], []
    for i in range(100):
        raw = (f"<edXMLEnvelope n='{n}-{i}'>".encode() + b"x" * 2000 + b"</edXMLEnvelope>")
        digest = hashlib.sha256(raw).hexdigest()
        docs.append(DocumentIn("000.00.00.H27", f"D{n}-{i}", digest, "envelope", raw, T0,
                               code=f"{i}/UBND", recipients=("000.01.01.H27", "000.02.01.H27"),
                               report={"accepted": True, "reason": "OK"}))
        events.append(EventIn(EventKind.RECEIVED, f"m{n}-{i}", T0, digest))
        for organ in ("000.01.01.H27", "000.02.01.H27"):
            events.append(EventIn(EventKind.DELIVERED, f"m{n}-{i}", T0, digest, organ_id=organ))
    return docs, events


def bench_writes(url: str, batches: int, **kwargs: Any) -> dict[str, Any]:
    with Ledger.open(url, **kwargs) as ledger:
        ledger.write(*batch(-1))  # warm up: connection, statement cache
        prepared = [batch(n) for n in range(batches)]
        times = []
        for docs, events in prepared:
            start = time.perf_counter()
            ledger.write(docs, events)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"batches": batches, "documents_per_batch": 100, "events_per_batch": 300,
            "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "max_ms": round(times[-1], 2)}


REPORT = {
    "indication": "PASSED", "reason": "OK", "validated_at": "2024-01-01T00:00:00+00:00",
    "signer": {"subject": "CN=Văn phòng UBND tỉnh Hà Tĩnh,O=UBND tỉnh Hà Tĩnh",
               "fingerprint": "ab" * 32, "issuer": "CN=CA", "serial": "0102",
               "uid": "000.00.01.H27", "not_before": "2024-01-01T00:00:00+00:00",
               "not_after": "2026-01-01T00:00:00+00:00"},
    "checks": [{"check": c, "indication": "PASSED", "reason": "OK", "evidence": {"detail": "-"}}
               for c in ("schema", "xmldsig", "chain", "revocation", "signer", "header")],
}
"""A validation report of the shape ``ValidationReport.to_dict()`` gives (nested)."""


def pipeline_rows(n: int, at: datetime) -> tuple[list[DocumentIn], list[EventIn]]:
    """One accepted 10 KB envelope as the pipeline records it: the envelope and the operator's
    receipt, received / validated / routed / delivered / receipt_issued."""
    raw = f"<edXMLEnvelope n='{n}'>".encode() + b"x" * 10_000 + b"</edXMLEnvelope>"
    digest = hashlib.sha256(raw).hexdigest()
    receipt = f"<receipt n='{n}'/>".encode() + b"r" * 4_000
    receipt_digest = hashlib.sha256(receipt).hexdigest()
    sender, recipient = "000.00.01.H27", "000.00.02.H27"
    docs = [DocumentIn(sender, f"D{n}", digest, "envelope", raw, at, code=f"{n}/UBND",
                       recipients=(recipient,), report=REPORT),
            DocumentIn(sender, f"receipt:accepted:{receipt_digest[:32]}", receipt_digest,
                       "receipt", receipt, at, recipients=(sender,), links_to=digest,
                       code="accepted")]
    mid = f"m{n}"
    events = [
        EventIn(EventKind.RECEIVED, mid, at, digest, organ_id=sender,
                detail={"bytes": len(raw), "attempt": 1}),
        EventIn(EventKind.VALIDATED, mid, at, digest, organ_id=sender,
                detail={"indication": "PASSED", "reason": "OK", "signer_fingerprint": "ab" * 32}),
        EventIn(EventKind.ROUTED, mid, at, digest, organ_id=recipient,
                detail={"via": "direct", "queue": f"org.{recipient}"}),
        EventIn(EventKind.DELIVERED, mid, at, digest, organ_id=recipient,
                detail={"via": "direct"}),
        EventIn(EventKind.RECEIPT_ISSUED, f"{digest}:accepted:{sender}", at, digest,
                organ_id=sender, detail={"kind": "accepted", "receipt_digest": receipt_digest,
                                         "to": sender}),
    ]
    return docs, events


def bench_batch_sizes(url: str, **kwargs: Any) -> dict[str, Any]:
    """CPU (this process: Python, SQLite, the kernel's share of the writes) and wall time per
    Ledger.write for batches of 1, 2 and 128 envelopes in the pipeline's row shape: the
    per-batch fixed cost is what a small batch (half load) pays."""
    out: dict[str, Any] = {}
    for size, count in ((1, 300), (2, 300), (128, 10)):
        with Ledger.open(url.format(size=size), **kwargs) as ledger:
            made = 0

            def one_batch(size: int = size) -> tuple[list[DocumentIn], list[EventIn]]:
                nonlocal made
                docs: list[DocumentIn] = []
                events: list[EventIn] = []
                at = T0 + timedelta(seconds=made)
                for _ in range(size):
                    d, e = pipeline_rows(made, at)
                    docs += d
                    events += e
                    made += 1
                return docs, events

            for _ in range(5):
                ledger.write(*one_batch())  # warm up
            prepared = [one_batch() for _ in range(count)]
            start, cpu = time.perf_counter(), time.process_time()
            for docs, events in prepared:
                ledger.write(docs, events)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        out[f"envelopes_{size}"] = {
            "cpu_ms_per_write": round(cpu / count * 1000, 3),
            "cpu_ms_per_envelope": round(cpu / count / size * 1000, 3),
            "wall_ms_per_write": round(wall / count * 1000, 3)}
    return out


def operator_certificate(key: rsa.RSAPrivateKey) -> bytes:
    """A self-signed operator certificate (PEM) for ``key``, valid over the generated times."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench operator")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(T0 - timedelta(days=1))
            .not_valid_after(T0 + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def generate(url: str, rows: int) -> float:
    """Bulk-insert ``rows`` chained entries (bypassing Ledger.write) with signed checkpoints,
    then build the adoption rollup from them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert_pem = operator_certificate(key)
    Ledger.open(url).close()
    engine = create_engine(url)
    start = time.perf_counter()
    link = chain.GENESIS
    docs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    cps: list[dict[str, Any]] = []
    last_digest = ""
    with engine.begin() as conn:
        for seq in range(1, rows + 1):
            at = T0 + timedelta(seconds=seq)
            if seq % 10 == 1:
                raw = f"<edXMLEnvelope n='{seq}'>".encode() + b"x" * 500 + b"</edXMLEnvelope>"
                last_digest = digest = hashlib.sha256(raw).hexdigest()
                recipients = ["000.01.01.H27", "000.02.01.H27"]
                report = chain.canonical_text({"accepted": True, "reason": "OK"})
                entry = chain.document_entry(
                    seq=seq, digest=digest, sender="000.00.00.H27", document_id=f"D{seq}",
                    kind="envelope", code=f"{seq}/UBND", subject_digest="",
                    recipients=recipients, received_at=chain.utc_text(at), links_to=None,
                    size=len(raw), report_digest=chain.sha256_hex(report.encode()))
                eh = chain.entry_hash(entry)
                link = chain.link(link, eh)
                docs.append({"digest": digest, "seq": seq, "entry_hash": eh, "chain_hash": link,
                             "sender": "000.00.00.H27", "document_id": f"D{seq}",
                             "kind": "envelope", "code": f"{seq}/UBND", "subject_digest": "",
                             "recipients": json.dumps(recipients, separators=(",", ":")),
                             "received_at": at, "links_to": None, "size": len(raw), "raw": raw,
                             "report": report})
            else:
                entry = chain.event_entry(
                    seq=seq, kind="delivered", message_id=f"m{seq}", at=chain.utc_text(at),
                    digest=last_digest, organ_id="000.01.01.H27", reason=None, actor="hub",
                    detail="{}")
                eh = chain.entry_hash(entry)
                link = chain.link(link, eh)
                events.append({"seq": seq, "entry_hash": eh, "chain_hash": link,
                               "kind": "delivered", "message_id": f"m{seq}", "at": at,
                               "digest": last_digest, "organ_id": "000.01.01.H27",
                               "reason": None, "actor": "hub", "detail": "{}"})
            if seq % 1000 == 0:
                payload = chain.checkpoint_payload(seq, link, chain.utc_text(at))
                cps.append({"seq": seq, "head": link, "at": at, "cert_pem": cert_pem,
                            "signature": key.sign(payload, padding.PKCS1v15(), hashes.SHA256())})
            if len(events) >= 20_000 or seq == rows:
                if docs:
                    conn.execute(insert(Document), docs)
                if events:
                    conn.execute(insert(Event), events)
                if cps:
                    conn.execute(insert(Checkpoint), cps)
                docs, events, cps = [], [], []
        last_cp = rows - rows % 1000
        conn.execute(update(Head).where(Head.id == 1).values(
            seq=rows, chain_hash=link, checkpoint_seq=last_cp,
            checkpoint_at=T0 + timedelta(seconds=last_cp)))
    engine.dispose()
    # The derived tables, from the rows as the writer keeps them (the adoption report's daily
    # rollup, each recipient's delivery state): `hub ledger verify` compares them with the rows.
    with Ledger.open(url) as ledger:
        ledger.rebuild_adoption()
        ledger.rebuild_deliveries()
    generate.cert_pem = cert_pem  # type: ignore[attr-defined]
    return time.perf_counter() - start


def bench_verify(path: Path, rows: int) -> dict[str, Any]:
    """Verify the ledger at ``path`` (generated first when missing), in process and by the CLI."""
    url = f"sqlite:///{path}"
    cert_file = path.with_name(path.name + ".operator.pem")
    generated_s = None
    if not path.exists():
        generated_s = round(generate(url, rows), 1)
        cert_file.write_bytes(generate.cert_pem)  # type: ignore[attr-defined]
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)

    def check(payload: bytes, signature: bytes) -> bool:
        public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        return True

    jobs = usable_cores()
    with Ledger.open(url, read_only=True) as ledger:
        start, cpu = time.perf_counter(), time.process_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = ledger.verify(verify_signature=check, require_signed=True, jobs=jobs)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the same check by this process alone (--jobs 1), for the comparison
        start_one = time.perf_counter()
        alone = ledger.verify(verify_signature=check, require_signed=True, jobs=1)
        elapsed_one = time.perf_counter() - start_one
    assert alone == result, (alone, result)
    out: dict[str, Any] = {
        "rows": result.rows, "ok": result.ok, "problem": result.problem,
        "checkpoints": result.checkpoints, "generate_s": generated_s, "jobs": jobs,
        "verify_s": round(elapsed, 2), "verify_cpu_s": round(cpu, 2),
        "verify_helpers_cpu_s": round(helpers.ru_utime + helpers.ru_stime
                                      - children.ru_utime - children.ru_stime, 2),
        "rows_per_s": int(result.rows / elapsed),
        "verify_one_process_s": round(elapsed_one, 2)}
    # The auditor's command, as an auditor runs it: a fresh process, the operator pinned.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hub.ops.cli", "ledger", "verify", "--url", url,
         "--operator-cert", str(cert_file), "--json"],
        capture_output=True, text=True, check=False, env={**os.environ, "HUB_CONFIG": ""})
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr[-500:]}
    out["cli"] = {"exit": done.returncode, "ok": cli.get("ok"), "rows": cli.get("rows"),
                  "signers_trusted": cli.get("signers_trusted"), "wall_s": round(elapsed, 2),
                  "cpu_s": round(after.ru_utime + after.ru_stime
                                 - before.ru_utime - before.ru_stime, 2)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--verify-only", action="store_true")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep (and reuse) the generated ledger in this directory")
    args = parser.parse_args()
    logs.configure("auto", "warning")  # stdout is for the figures; events go to stderr
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if not args.verify_only:
            out["write_sqlite_full"] = bench_writes(f"sqlite:///{base / 'w1.sqlite3'}",
                                                    args.batches)
            out["write_sqlite_normal"] = bench_writes(
                f"sqlite:///{base / 'w2.sqlite3'}", args.batches, sqlite_synchronous="NORMAL")
            out["batch_sizes_sqlite_normal"] = bench_batch_sizes(
                f"sqlite:///{base}/b{{size}}.sqlite3", sqlite_synchronous="NORMAL")
        if args.postgres and not args.verify_only:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                out["write_postgres"] = bench_writes(
                    f"{PG}?options=-csearch_path%3D{schema}", args.batches)
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        keep = args.keep or base
        keep.mkdir(parents=True, exist_ok=True)
        out["verify_sqlite"] = bench_verify(keep / f"verify-{args.rows}.sqlite3", args.rows)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
