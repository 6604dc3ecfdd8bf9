"""Ledger benchmark: batched write cost and full-chain verify rate; prints one JSON object.

    python bench/bench_ledger.py [--rows 1000000] [--batches 50] [--postgres]

Writes: group-commit batches of 100 documents (2 KB each) + 300 events through
:meth:`Ledger.write`, on SQLite with ``synchronous=FULL`` and ``NORMAL`` (and PostgreSQL when
asked). Verify: a ledger of ``--rows`` entries (1 document per 10 entries, a signed checkpoint
every 1000) generated with bulk inserts, then checked by :meth:`Ledger.verify`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import create_engine, insert, text, update

from hub.ledger import DocumentIn, EventIn, EventKind, Ledger, chain
from hub.ledger.models import Checkpoint, Document, Event, Head

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


def generate(url: str, rows: int) -> float:
    """Bulk-insert ``rows`` chained entries (bypassing Ledger.write) with signed checkpoints."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
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
                cps.append({"seq": seq, "head": link, "at": at, "cert_pem": None,
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
    generate.public_key = key.public_key()  # type: ignore[attr-defined]
    return time.perf_counter() - start


def bench_verify(url: str, rows: int) -> dict[str, Any]:
    generated_s = generate(url, rows)
    public_key = generate.public_key  # type: ignore[attr-defined]

    def check(payload: bytes, signature: bytes) -> bool:
        public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        return True

    with Ledger.open(url) as ledger:
        start = time.perf_counter()
        result = ledger.verify(verify_signature=check, require_signed=True)
        elapsed = time.perf_counter() - start
    return {"rows": result.rows, "ok": result.ok, "problem": result.problem,
            "checkpoints": result.checkpoints, "generate_s": round(generated_s, 1),
            "verify_s": round(elapsed, 2), "rows_per_s": int(result.rows / elapsed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        out["write_sqlite_full"] = bench_writes(f"sqlite:///{base / 'w1.sqlite3'}", args.batches)
        out["write_sqlite_normal"] = bench_writes(
            f"sqlite:///{base / 'w2.sqlite3'}", args.batches, sqlite_synchronous="NORMAL")
        if args.postgres:
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
        out["verify_sqlite"] = bench_verify(f"sqlite:///{base / 'v.sqlite3'}", args.rows)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
