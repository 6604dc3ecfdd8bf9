"""Subscriber report benchmark (issue 21): the plan's figures for 3,000 subscribers over a ledger
of 1,000,000 rows must come in under 5 s. Prints one JSON object.

    python bench/bench_subscribers.py [--rows 1000000] [--subscribers 3000] [--postgres]

The registry is imported from a generated office spreadsheet: 300 organizations of 10
subscribers each (the seal, a head, two deputies, two division heads, three specialists, a
clerk), certificates issued 2019–2025, some requested, revoked or expiring. The ledger is
written through :meth:`Ledger.write` in group-commit batches of 100 envelopes, 7 chained rows
each (the document with a validation report shaped as the hub stores it — envelope seal, PDF
person and organization — and 6 events), envelopes spread over 2025; 1 signer in 20 (at random) is not
in the registry. Envelope bytes are 2 KB (the report never reads them; SQLite with
``synchronous=NORMAL`` while generating, to spare the disk).

Measured: the first build of the signature index (once per ledger; incremental after), the
report with the index up to date (the figure that must stay under 5 s), the report after 1,000
new envelopes (it indexes them first), the daily notices, and — the worst case — a report on a
read-only ledger that was never indexed (every stored report read in memory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from hub.ledger import DocumentIn, EventIn, EventKind, Ledger
from hub.ledger.subscribers import import_registry, sync_observations
from hub.ledger.subscribers_report import notices, plan_report

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
CA = "CA phục vụ các cơ quan Nhà nước G2"
ISSUER_DN = f"CN={CA},O=Ban Cơ yếu Chính phủ,C=VN"
AT = datetime(2025, 12, 20, 3, 0, tzinfo=UTC)
START = datetime(2025, 1, 2, 1, 0, tzinfo=UTC)
ROLES = ("head", "deputy", "deputy", "division_head", "division_head", "specialist",
         "specialist", "specialist", "clerk")
EVENTS = (EventKind.RECEIVED, EventKind.VALIDATED, EventKind.ROUTED, EventKind.DELIVERED,
          EventKind.RECEIPT_ISSUED, EventKind.STATUS_RECEIVED)
ROWS_PER_ENVELOPE = 1 + len(EVENTS)
BATCH = 100


def organ(i: int) -> str:
    return f"000.{i // 100:02d}.{i % 100:02d}.H27"


def serial(i: int, n: int) -> str:
    return f"5401{i:04x}{n:02x}0f"


def person(i: int, n: int) -> str:
    return f"CCCD:042{i:05d}{n:04d}"


def registry_csv(orgs: int) -> bytes:
    lines = ["identifier,kind,name,position,organ_id,serial,issuer,valid_from,valid_to,status,"
             "status_date"]
    for i in range(orgs):
        code = organ(i)
        start = date(2019 + i % 7, 1 + i % 12, 1)
        lines.append(f"{code},organization,Đơn vị {i},,{code},{serial(i, 0)},{CA},{start},"
                     f"{start.replace(year=start.year + 5)},issued,")
        for n, position in enumerate(ROLES, start=1):
            who, issued = person(i, n), date(2019 + (i + n) % 7, 1 + n, 1)
            if (i + n) % 33 == 0:
                lines.append(f"{who},person,Người {i}-{n},{position},{code},,,,,requested,")
                continue
            status, status_date = "handed_over", ""
            until = issued.replace(year=issued.year + 5)
            if (i + n) % 50 == 0:
                status, status_date = "revoked", "2025-06-01"
            elif (i + n) % 40 == 0:
                until = (AT + timedelta(days=(i + n) % 90)).date()
            lines.append(f"{who},person,Người {i}-{n},{position},{code},{serial(i, n)},{CA},"
                         f"{issued},{until},{status},{status_date}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def report_for(i: int, n: int, unknown: bool) -> dict[str, Any]:
    """A stored validation report as the hub writes it (ValidationReport.to_dict shape)."""
    who = person(i, n) if not unknown else f"CCCD:099{i:05d}{n:04d}"
    person_serial = serial(i, n) if not unknown else f"77{i:06x}{n:04x}"
    seal = {"subject": f"C=VN,O=Đơn vị {i},CN=Đơn vị {i},UID={organ(i)}",
            "fingerprint": hashlib.sha256(f"seal{i}".encode()).hexdigest(),
            "issuer": ISSUER_DN, "serial": serial(i, 0), "uid": organ(i),
            "not_before": "2025-01-01T00:00:00+00:00", "not_after": "2027-01-01T00:00:00+00:00"}
    pfp = hashlib.sha256(f"person{i}-{n}".encode()).hexdigest()
    passed = {"indication": "PASSED", "reason": "OK"}
    return {
        "indication": "PASSED", "reason": "OK", "validated_at": "2025-06-01T00:00:00+00:00",
        "signer": seal,
        "checks": [
            {"check": "xmldsig", **passed, "evidence": {
                "signature_method": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digest_method": "http://www.w3.org/2001/04/xmlenc#sha256",
                "certificate": seal["fingerprint"]}},
            {"check": "trust", **passed, "evidence": {
                "path": f"{str(seal['fingerprint'])[:16]} > 3f0a9c1d2e4b5a69 > 9e8d7c6b5a493827",
                "root": "C=VN,O=Ban Cơ yếu Chính phủ,CN=RootCA chuyên dùng Chính phủ G2",
                "validity_judged_at": "2025-06-01T00:00:00+00:00"}},
            {"check": "revocation", **passed, "evidence": {"crl": "issuing-ca.crl",
                                                           "crl_this_update": "2025-06-01"}},
            {"check": "signer", **passed, "evidence": {"sender": organ(i),
                                                       "role": "organization"}},
            {"check": "pdf", **passed, "evidence": {
                "pdfs": "1", "main": "van-ban.pdf", "main_signatures": "2",
                "main_person": pfp, "main_person_serial": person_serial,
                "main_person_issuer": ISSUER_DN, "main_person_uid": who,
                "main_person_subject": f"C=VN,O=Đơn vị {i},CN=Người {i}-{n},UID={who}",
                "main_organization": seal["fingerprint"],
                "main_organization_serial": serial(i, 0), "main_organization_issuer": ISSUER_DN,
                "main_organization_uid": organ(i),
                "main_organization_subject": seal["subject"]}},
        ],
    }


def batch(start: int, count: int, orgs: int, spread_s: float) -> tuple[list[DocumentIn],
                                                                       list[EventIn]]:
    docs: list[DocumentIn] = []
    events: list[EventIn] = []
    for k in range(start, start + count):
        pick = random.Random(k)
        i, n = pick.randrange(orgs), 1 + pick.randrange(len(ROLES) - 1)  # clerks do not sign
        unknown = pick.random() < 0.05
        raw = f"<edXML n='{k}'>".encode() + b"x" * 2000 + b"</edXML>"
        digest = hashlib.sha256(raw).hexdigest()
        at = START + timedelta(seconds=k * spread_s)
        docs.append(DocumentIn(organ(i), f"{organ(i)},2025/06/01,{k}/UBND", digest, "envelope",
                               raw, at, code=f"{k}/UBND", recipients=(organ((i + 1) % orgs),),
                               report=report_for(i, n, unknown)))
        for kind in EVENTS:
            events.append(EventIn(kind, f"m{k}", at, digest, organ_id=organ((i + 1) % orgs)))
    return docs, events


CPU: dict[str, float] = {}
"""This process's CPU seconds per measure (the machine is shared: wall time includes waiting)."""


def _timed(action: Any, runs: int = 1, name: str = "") -> tuple[float, Any]:
    times, cpu, result = [], [], None
    for _ in range(runs):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = action()
        times.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    if name:
        CPU[name] = round(statistics.median(cpu), 3)
    return statistics.median(times), result


def run(url: str, rows: int, subscribers: int) -> dict[str, Any]:
    orgs = max(1, subscribers // (len(ROLES) + 1))
    envelopes = rows // ROWS_PER_ENVELOPE
    out: dict[str, Any] = {"subscribers": orgs * (len(ROLES) + 1), "envelopes": envelopes}
    with Ledger.open(url, sqlite_synchronous="NORMAL", checkpoint_every=10_000) as ledger:
        t, result = _timed(lambda: import_registry(ledger, registry_csv(orgs), source="b.csv"),
                           name="import_s")
        out["import_s"] = round(t, 2)
        out["import"] = result.summary()
        spread = 365 * 86400 * 0.95 / max(envelopes, 1)
        begin = time.perf_counter()
        for start in range(0, envelopes, BATCH):
            ledger.write(*batch(start, min(BATCH, envelopes - start), orgs, spread))
        out["generate_s"] = round(time.perf_counter() - begin, 1)
        out["generate_rows_per_s"] = int(envelopes * ROWS_PER_ENVELOPE / (
            time.perf_counter() - begin))
        out["ledger_rows"] = ledger.head()[0]
    with Ledger.open(url, read_only=True) as reader:
        t, _ = _timed(lambda: plan_report(reader, at=AT, sync=False),
                      name="report_unindexed_read_only_s")
        out["report_unindexed_read_only_s"] = round(t, 2)
    with Ledger.open(url) as ledger:
        t, read = _timed(lambda: sync_observations(ledger), name="index_build_s")
        out["index_build_s"] = round(t, 2)
        out["index_envelopes"] = read
        t, report = _timed(lambda: plan_report(ledger, at=AT), runs=3, name="report_s")
        out["report_s"] = round(t, 3)
        t, _ = _timed(lambda: plan_report(ledger, at=AT, period="quarter"), runs=3,
                      name="report_quarterly_s")
        out["report_quarterly_s"] = round(t, 3)
        ledger.write(*batch(envelopes, 1000, orgs, 1.0))
        t, _ = _timed(lambda: plan_report(ledger, at=AT), name="report_after_1000_new_envelopes_s")
        out["report_after_1000_new_envelopes_s"] = round(t, 3)
        t, found = _timed(lambda: notices(ledger, at=AT), runs=3, name="notices_s")
        out["notices_s"] = round(t, 3)
        out["figures"] = {
            "leaders": next(r.leaders.to_dict() for r in report.organizations
                            if r.organ_id == "*"),
            "staff": next(r.staff.to_dict() for r in report.organizations if r.organ_id == "*"),
            "issued_in_plan": report.issued_in_plan, "never_used": len(report.never_used),
            "expiring_90": report.expiring_within(90),
            "revoked_signing": len(report.revoked_signing), "unknown": len(report.unknown),
            "notice_organizations": len(found)}
    out["cpu_s"] = dict(CPU)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows to generate")
    parser.add_argument("--subscribers", type=int, default=3000, help="registry size")
    parser.add_argument("--postgres", action="store_true",
                        help="run against the PostgreSQL at 127.0.0.1:5432 instead of SQLite")
    parser.add_argument("--dir", type=Path, help="where the SQLite file goes (default: a"
                                                 " temporary directory)")
    args = parser.parse_args()
    out: dict[str, Any] = {"python": sys.version.split()[0], "rows_requested": args.rows}
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            out["postgres"] = run(f"{PG}?options=-csearch_path%3D{schema}", args.rows,
                                  args.subscribers)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    else:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            out["sqlite"] = run(f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}", args.rows,
                                args.subscribers)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
