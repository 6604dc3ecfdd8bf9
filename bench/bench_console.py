"""Console benchmark: server-side render time of each page on a large ledger; one JSON object.

    python -m bench.bench_console [--rows 1000000] [--runs 15] [--keep DIR]
                                  [--broker-url amqp://guest:guest@127.0.0.1:5672/]

The ledger is generated through :meth:`Ledger.write` in group-commit batches, as the pipeline
writes it (SQLite, ``synchronous=NORMAL`` for the generation only): per envelope one document
(~3 KB, a validation report), RECEIVED, VALIDATED, ROUTED, DELIVERED and RECEIPT_ISSUED events
and the receipt document; one envelope in twenty is refused instead (a ``refused`` document,
REJECTED and DEAD_LETTERED). 30 senders, 30 recipients, a year of dates. ``--keep DIR`` reuses
(or leaves) the ledger there, so a second run measures without regenerating. The adoption
report's rollup (``ledger_adoption``) is built as in production: by those writes, or, for a
ledger kept from before migration r0005, by the migration when the ledger is opened (the
``opened_s`` figure then includes it).

Each page is requested ``--runs`` times through the ASGI app in process (Starlette's test
client: routing, the session check, the queries, Jinja2 — no network, no browser), signed in
as an operator; the figure is the median and the worst of the runs after one warm-up request.
The adoption report's first computation of a period is measured over ``--runs`` different
windows (each a period the console has not computed yet: a month, a year, starting on successive
days), and the reference count from the documents (``adoption_report_scan``, what the page did
before the rollup) once for a month and once for the year.
The dead-letter and health pages need a broker: 200 dead letters are put into a fresh
dead-letter queue on ``--broker-url`` (skipped when none answers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SENDERS = [f"000.00.{i:02d}.H27" for i in range(1, 31)]
RECIPIENTS = [f"000.{i:02d}.36.H27" for i in range(1, 31)]
ROWS_PER_ENVELOPE = 7
BODY = b"<AttachmentEncoded>" + b"QUJD" * 700 + b"</AttachmentEncoded>"
REPORT = {"indication": "PASSED", "reason": "OK", "validated_at": "2025-01-01T00:00:00+00:00",
          "signer": {"subject": "UID=000.00.01.H27,CN=Test", "fingerprint": "ab" * 32,
                     "issuer": "CN=CA", "serial": "01"},
          "checks": [{"check": c, "indication": "PASSED", "reason": "OK", "evidence": {}}
                     for c in ("xmldsig", "trust", "revocation", "signer", "pdf")]}


def _batch(start: int, n: int, step_s: float) -> tuple[list[Any], list[Any]]:
    from hub.ledger import DocumentIn, EventIn, EventKind, Refusal

    docs, events = [], []
    for i in range(start, start + n):
        sender, recipient = SENDERS[i % 30], RECIPIENTS[(i * 7) % 30]
        at = T0 + timedelta(seconds=i * step_s)  # the envelopes spread over 2025
        doc_id = f"{sender},2025/01/01,{i}/UBND-VP"
        raw = (f"<edXML><DocumentId>{doc_id}</DocumentId>".encode() + BODY + b"</edXML>")
        digest = hashlib.sha256(raw).hexdigest()
        mid = f"m{i}"
        if i % 20 == 19:
            docs.append(DocumentIn(sender, doc_id, digest, "refused", raw, at,
                                   code=f"{i}/UBND-VP", report={**REPORT, "indication": "FAILED",
                                                                "reason": "CERT_REVOKED"},
                                   refusal=Refusal("CERT_REVOKED", sender)))
            events += [EventIn(EventKind.RECEIVED, mid, at, digest, organ_id=sender),
                       EventIn(EventKind.REJECTED, mid, at, digest, organ_id=sender,
                               reason="CERT_REVOKED"),
                       EventIn(EventKind.DEAD_LETTERED, mid, at, digest, organ_id=sender,
                               reason="CERT_REVOKED")]
            continue
        receipt = b"<edXML:Status>receipt " + digest.encode() + b"</edXML:Status>"
        receipt_digest = hashlib.sha256(receipt).hexdigest()
        docs.append(DocumentIn(sender, doc_id, digest, "envelope", raw, at, code=f"{i}/UBND-VP",
                               recipients=(recipient,), report=REPORT))
        docs.append(DocumentIn("000.00.01.H27", f"receipt:accepted:{receipt_digest[:32]}",
                               receipt_digest, "receipt", receipt, at, code="accepted",
                               recipients=(sender,), links_to=digest))
        events += [EventIn(EventKind.RECEIVED, mid, at, digest, organ_id=sender),
                   EventIn(EventKind.VALIDATED, mid, at, digest, organ_id=sender),
                   EventIn(EventKind.ROUTED, mid, at, digest, organ_id=recipient),
                   EventIn(EventKind.DELIVERED, mid, at, digest, organ_id=recipient),
                   EventIn(EventKind.RECEIPT_ISSUED, f"{digest}:accepted", at, digest,
                           organ_id="000.00.01.H27", detail={"kind": "accepted",
                                                             "receipt_digest": receipt_digest})]
    return docs, events


def build_ledger(url: str, rows: int) -> tuple[float, float]:
    """Generate (or complete) the ledger; returns (seconds to open it, migrations included;
    seconds to generate)."""
    from hub.ledger import Ledger

    started = time.perf_counter()
    with Ledger.open(url, sqlite_synchronous="NORMAL", checkpoint_every=10_000) as ledger:
        opened = time.perf_counter() - started
        started = time.perf_counter()
        done = ledger.head()[0]
        envelope = done // ROWS_PER_ENVELOPE
        while done < rows:
            docs, events = _batch(envelope, 500, 365 * 86400 / (rows / ROWS_PER_ENVELOPE))
            ledger.write(docs, events)
            envelope += 500
            done = ledger.head()[0]
            if done // 50_000 != (done - 3_500) // 50_000:
                print(f"{done:,} rows", file=sys.stderr, flush=True)
    generated = time.perf_counter() - started
    print(f"opened in {opened:.1f} s, generated in {generated:.1f} s", file=sys.stderr)
    return opened, generated


def _fill_dlq(settings: Any, count: int) -> bool:
    from hub.app import load_directory, topology_for
    from hub.broker import BrokerUnavailable, Outgoing, connect
    from hub.messages import Headers

    try:
        conn = connect(settings.broker.url, "bench console")
    except BrokerUnavailable:
        return False
    topology = topology_for(settings, load_directory(settings))
    conn.declare(topology)
    reasons = ["SIGNATURE_DIGEST_MISMATCH", "RECIPIENT_UNKNOWN", "CERT_REVOKED",
               "REVOCATION_UNAVAILABLE"]
    messages = []
    for i in range(count):
        body = b"<edXML>" + BODY + str(i).encode() + b"</edXML>"
        digest = hashlib.sha256(body).hexdigest()
        messages.append(Outgoing("", topology.names.dlq, body, {
            Headers.REASON: reasons[i % 4], Headers.SENDER: SENDERS[i % 30],
            Headers.DIGEST: digest, Headers.FIRST_FAILURE: (T0 + timedelta(hours=i)).isoformat(),
            Headers.ATTEMPTS: 1}, message_id=f"bench-{i}"))
    conn.publish(messages)
    conn.close()
    return True


def _drop(settings: Any) -> None:
    from hub.app import load_directory, topology_for
    from hub.broker import connect

    conn = connect(settings.broker.url, "bench console cleanup")
    conn.delete(topology_for(settings, load_directory(settings)))
    conn.close()


def measure(client: Any, path: str, runs: int) -> dict[str, Any]:
    response = client.get(path)  # warm-up
    assert response.status_code == 200, (path, response.status_code, response.text[-300:])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def measure_first(client: Any, paths: list[str]) -> dict[str, Any]:
    """Each path once, none computed before: the report's first computation of a period."""
    times = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
            "windows": len(paths)}


def _months(count: int) -> list[str]:
    """31-day windows from 2025-08-01, 08-02 …: one month each, each new to the console."""
    starts = [datetime(2025, 8, 1, tzinfo=UTC) + timedelta(days=k) for k in range(count)]
    return [f"/report?since={s:%Y-%m-%d}&until={s + timedelta(days=31):%Y-%m-%d}"
            for s in starts]


def _years(count: int) -> list[str]:
    """Windows ending 2026-01-01 and starting 2025-01-01, 2024-12-31 …: the whole year each."""
    starts = [datetime(2025, 1, 1, tzinfo=UTC) - timedelta(days=k) for k in range(count)]
    return [f"/report?since={s:%Y-%m-%d}&until=2026-01-01" for s in starts]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows to generate")
    parser.add_argument("--runs", type=int, default=15, help="requests per page")
    parser.add_argument("--keep", type=Path, default=None,
                        help="directory of the ledger (reused when present, left after)")
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672/",
                        help="broker for the dead-letter and health pages")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from hub.config import Settings, with_overrides
    from hub.console.services import ConsoleServices
    from hub.console.users import UserStore
    from hub.console.web import create_app
    from hub.directory import Directory
    from hub.testing.pki import init_pki

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-console-"))
    base.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{base / 'ledger.sqlite3'}"
    opened, generated = build_ledger(url, args.rows)
    paths = init_pki(Path(tempfile.mkdtemp(prefix="bench-console-pki-")) / "pki",
                     Directory.sample())
    prefix = f"bench-console-{int(time.time())}"
    settings = with_overrides(
        Settings(base_dir=str(base)),
        broker={"url": args.broker_url, "prefix": prefix},
        trust={"roots": [str(paths.root_cert)], "intermediates": [str(paths.issuing_ca_cert)],
               "crls": [str(paths.crl_der), str(paths.root_crl_der)], "fetch_crls": False},
        hub={"keystore": str(paths.keystore)},
        ledger={"url": url, "blob_dir": str(base / "blobs")},
        console={"secure_cookies": False})
    users = UserStore(base / "users.sqlite3",
                      hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    if users.get("bench") is None:
        users.add("bench", "operator", "bench password 1")
    services = ConsoleServices(settings)
    client = TestClient(create_app(services, users), base_url="http://127.0.0.1")
    form = client.get("/signin").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    client.post("/signin", data={"csrf_token": token.group(1), "name": "bench",
                                 "password": "bench password 1", "next": "/"})
    head = services.ledger.head()[0]
    some = services.ledger.documents(kind="envelope", limit=1, since=T0 + timedelta(days=180))[0]
    print(f"ledger: {head:,} rows; a document of {some.received_at:%Y-%m-%d}", file=sys.stderr)
    pages = {
        "ledger (newest 50)": "/ledger",
        "ledger by DocumentId": f"/ledger?document_id={some.document_id}",
        "ledger by sender": f"/ledger?sender={SENDERS[3]}",
        "ledger by recipient": f"/ledger?recipient={RECIPIENTS[5]}",
        "ledger by period (one day)": "/ledger?since=2025-06-01&until=2025-06-02",
        "ledger refused, one sender": f"/ledger?sender={SENDERS[7]}&outcome=refused",
        "document timeline": f"/ledger/doc/{some.digest}",
        "adoption report, one month (warm)": "/report?since=2025-06-01&until=2025-07-01",
        "adoption report chart, one month (warm)":
            "/report/chart.svg?since=2025-06-01&until=2025-07-01&period=month",
    }
    results: dict[str, Any] = {}
    for name, path in pages.items():
        results[name] = measure(client, path, args.runs)
        print(f"{name:42} {results[name]}", file=sys.stderr)
    # The report's first computation of a period (never computed before), a month and a year
    for name, windows in (("adoption report, one month (first time)", _months(args.runs)),
                          ("adoption report, whole year (first time)", _years(args.runs))):
        results[name] = measure_first(client, windows)
        print(f"{name:42} {results[name]}", file=sys.stderr)
    # What the page did before the rollup: the count from the documents (once each)
    from hub.ledger.report import adoption_report_scan

    for name, since, until in (
            ("adoption report scan (reference), one month",
             datetime(2025, 8, 1, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC)),
            ("adoption report scan (reference), whole year",
             datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))):
        start = time.perf_counter()
        adoption_report_scan(services.ledger, since=since, until=until)
        results[name] = {"once_ms": round((time.perf_counter() - start) * 1000, 1)}
        print(f"{name:42} {results[name]}", file=sys.stderr)
    broker = _fill_dlq(settings, 200)
    if broker:
        try:
            for name, path in (("dead letters (200 in the queue)", "/dlq"),
                               ("dead letters filtered", f"/dlq?reason=CERT_REVOKED&sender={SENDERS[2]}"),
                               ("dead letter page", "/dlq/letter?id=bench-7"),
                               ("health", "/health")):
                results[name] = measure(client, path, args.runs)
                print(f"{name:42} {results[name]}", file=sys.stderr)
        finally:
            _drop(settings)
    services.close()
    users.close()
    print(json.dumps({"rows": head, "opened_s": round(opened, 1),
                      "generated_s": round(generated, 1),
                      "broker": broker, "pages": results}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
