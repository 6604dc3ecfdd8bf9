"""Differential check of the planning glue against another revision: same batches, same plans.

    python -m bench.plan_differential [--base 6fda166]

One set of inputs (a test PKI, signed packets, batches of deliveries) is made once; this tree and
the base revision (a temporary ``git worktree``) then each plan the same sequence of batches on a
fresh SQLite ledger, each in its own process, with the same ticking clock (one millisecond per
call, so that a change in when or how often the plan reads the time shows too). The sequence
covers valid envelopes (direct, several recipients, national axis), a copy twice in one batch,
refusals of several kinds (unreadable bytes, a tampered signature, a missing signature, an unknown
recipient, a classified document, a forged ``From``, a reused DocumentId, a recall of an unknown
document, an orphan status), statuses (forwarded and countersigned), duplicates, redeliveries
after the commit (receipts published again) and a batch planned while another is in flight.

Every field of every plan, and every log event with its bound context, must be equal: outgoing
messages (headers in order), documents, events, receipts (outbox), outcomes, acks, spans,
``leans_on_in_flight``; bytes are compared by SHA-256 and length. Exit status 1 when the plans
differ (the first differences are printed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import enum
import hashlib
import io
import itertools
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def canonical(value: Any) -> Any:
    """A JSON value holding every field of ``value``, recursively (types named)."""
    if isinstance(value, bytes):
        return f"bytes:{len(value)}:{hashlib.sha256(value).hexdigest()}"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}={value.value!r}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"@": type(value).__name__,
                **{f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {"@": "dict", "items": [[canonical(k), canonical(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value, key=repr) if isinstance(value, frozenset | set) else value
        return {"@": type(value).__name__, "items": [canonical(v) for v in items]}
    return f"{type(value).__name__}:{value!r}"


def make(where: Path) -> None:
    """The PKI and the batches (pickled), made once with this tree."""
    from hub.directory import Directory
    from hub.edxml import Organization, parse_envelope
    from hub.edxml.build import (
        build_envelope,
        build_status,
        response_for,
        sample_header,
        sample_trace,
    )
    from hub.edxml.model import BusinessDocType
    from hub.trust.keystore import Keystore
    from hub.trust.signing import sign_xml
    from tests.integration.pipeline.harness import (
        DISTRICT,
        FINANCE,
        HOME_AFFAIRS,
        MINISTRY,
        NOW,
        OFFICE,
        PROVINCE,
        make_pki,
        signed_envelope,
    )

    pki = make_pki(where / "pki")
    keystore = Keystore.load(pki.keystore)
    day = NOW.date()
    user = {e.codes[0]: e.broker_user for e in Directory.sample().entries}

    def sign(org: str, data: bytes) -> bytes:
        signer = keystore.signer(org)
        assert signer is not None
        return sign_xml(data, signer)

    def status(reporter: str, original: bytes, code: str) -> bytes:
        return sign(reporter, build_status(
            response_for=response_for(parse_envelope(original)), sender=Organization(reporter),
            status_code=code, timestamp=NOW, description=f"trạng thái {code}"))

    def revocation(sender: str, number: str, document_id: str) -> bytes:
        header = sample_header(sender, (FINANCE,), number=number, promulgation_date=day)
        return sign(sender, build_envelope(header, trace=sample_trace(
            sender, NOW, kind=BusinessDocType.REVOCATION, replaced_document_id=document_id)))

    a = signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS), number="1")
    b = signed_envelope(keystore, FINANCE, (PROVINCE,), number="2")
    c = signed_envelope(keystore, OFFICE, (MINISTRY, FINANCE), number="3")
    d = signed_envelope(keystore, PROVINCE, (DISTRICT, "H27.03"), number="4")
    tampered = signed_envelope(keystore, PROVINCE, (FINANCE,), number="5").replace(
        "Về việc".encode(), b"Ve viec", 1)
    unsigned = build_envelope(sample_header(PROVINCE, (FINANCE,), number="6",
                                            promulgation_date=day), signature_placeholder=False)
    unknown = signed_envelope(keystore, PROVINCE, ("000.00.99.H27",), number="7")
    classified = signed_envelope(keystore, PROVINCE, (FINANCE,), number="8",
                                 security_level="Mật")
    forged = signed_envelope(keystore, FINANCE, (PROVINCE,), number="9")
    a_header = sample_header(PROVINCE, (FINANCE, HOME_AFFAIRS), number="1", promulgation_date=day)
    reused = sign(PROVINCE, build_envelope(dataclasses.replace(a_header, subject="Khác")))
    recall = revocation(PROVINCE, "10", a_header.document_id)
    orphan_recall = revocation(PROVINCE, "11", f"{PROVINCE},{day:%Y/%m/%d},999/UBND-VP")
    never = sign(HOME_AFFAIRS, build_envelope(sample_header(HOME_AFFAIRS, (FINANCE,), number="12",
                                                            promulgation_date=day)))
    e = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE, PROVINCE), number="13")
    f = signed_envelope(keystore, OFFICE, (PROVINCE,), number="14")

    # (body, status?, redelivered, headers, user_id, message_id)
    def one(body: bytes, *, status_packet: bool = False, redelivered: bool = False,
            headers: dict[str, Any] | None = None, by: str | None = "guest",
            mid: str | None = "auto") -> tuple[Any, ...]:
        return (body, status_packet, redelivered, headers or {}, by,
                None if mid is None else mid)

    batches: list[dict[str, Any]] = [
        {"commit": True, "deliveries": [
            one(a), one(b, by=user[FINANCE]), one(c, headers={"x-hub-attempts": 2}), one(d),
            one(a), one(b"not xml at all", by=user[FINANCE]), one(b"<edXML/>", by=None),
            one(tampered), one(unsigned, mid=None), one(unknown), one(classified),
            one(forged, by=user[PROVINCE]),
            one(b"\x00\x01", headers={"x-death": [1], "x-hub-first-failure": "then"},
                by=user[HOME_AFFAIRS]),
        ]},
        {"commit": True, "deliveries": [
            one(a), one(b, by=user[FINANCE]), one(reused), one(recall), one(orphan_recall),
            one(status(FINANCE, a, "03"), status_packet=True, by=user[FINANCE]),
            one(status(HOME_AFFAIRS, a, "04"), status_packet=True),
            one(status(FINANCE, never, "03"), status_packet=True),
            one(status(PROVINCE, b, "05"), status_packet=True),
        ]},
        # Redelivered after the commit: recorded receipts are published again.
        {"commit": True, "redeliver": 1},
        {"commit": True, "redeliver": 0},
        # Planned while the previous batch is in flight.
        {"commit": False, "deliveries": [one(e), one(f)]},
        {"commit": True, "in_flight": True, "deliveries": [
            one(e), one(status(FINANCE, e, "03"), status_packet=True),
            one(revocation(HOME_AFFAIRS, "15", f"{HOME_AFFAIRS},{day:%Y/%m/%d},13/UBND-VP")),
        ]},
    ]
    (where / "batches.pkl").write_bytes(pickle.dumps((pki, batches)))


def plan(where: Path, out: Path) -> None:
    """Plan the batches with the tree on ``PYTHONPATH``; write every plan's canonical form."""
    import structlog
    import structlog.testing

    import hub.consumers.plan
    from hub import logs
    from hub.app import build_hub
    from hub.consumers.plan import BatchPlan
    from hub.messages import Delivery
    from hub.topology import ENVELOPE_KEY, STATUS_KEY
    from tests.integration.pipeline.harness import NOW, hub_settings

    print(f"planning with {Path(hub.consumers.plan.__file__).parents[2]}", file=sys.stderr)
    # Our own file, written by --make of the same run.
    pki, batches = pickle.loads((where / "batches.pkl").read_bytes())  # noqa: S301
    ticks = itertools.count()

    def clock() -> dt.datetime:
        return NOW + dt.timedelta(milliseconds=next(ticks))

    plans: list[Any] = []
    made: list[list[Delivery]] = []
    events = structlog.testing.LogCapture()
    with tempfile.TemporaryDirectory() as state, contextlib.redirect_stderr(io.StringIO()):
        logs.configure("json", "debug")
        # And the log events, with the context bound when each was logged.
        structlog.configure(processors=[structlog.contextvars.merge_contextvars, events])
        app = build_hub(hub_settings(pki, Path(state), "amqp://u:u@127.0.0.1:1/", "diff"),
                        clock=clock)
        in_flight: list[BatchPlan] = []
        tag = itertools.count(1)
        try:
            for batch in batches:
                if "redeliver" in batch:
                    deliveries = [dataclasses.replace(x, redelivered=True, tag=next(tag))
                                  for x in made[batch["redeliver"]]]
                else:
                    deliveries = []
                    for body, status, redelivered, headers, user, mid in batch["deliveries"]:
                        n = next(tag)
                        deliveries.append(Delivery(
                            n, body, STATUS_KEY if status else ENVELOPE_KEY, "diff.inbound",
                            redelivered, headers, f"m{n}" if mid == "auto" else mid, user,
                            None, 0))
                made.append(deliveries)
                p = app.pipeline.process_batch(
                    deliveries, in_flight=in_flight if batch.get("in_flight") else ())
                plans.append(canonical(p))
                if batch["commit"]:
                    for pending in in_flight:
                        app.write_ledger(pending)
                    in_flight = []
                    app.write_ledger(p)
                else:
                    in_flight.append(p)
        finally:
            app.close()
    # Keys sorted: merge_contextvars adds the context in the order the process's context holds
    # it, which varies from one process to the next (ContextVar hashes are addresses).
    plans.append(canonical([dict(sorted(e.items())) for e in events.entries]))
    out.write_text(json.dumps(plans, indent=1, ensure_ascii=False))


def _run(tree: Path, *args: str) -> None:
    """This script, planning with the ``hub`` (and test harness) of ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, __file__, *args], cwd=tree, env=env, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="6fda166")
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plan", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make(args.make)
        return 0
    if args.plan:
        plan(*args.plan)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        base = where / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            _run(ROOT, "--make", str(where))
            _run(ROOT, "--plan", str(where), str(where / "this.json"))
            _run(base, "--plan", str(where), str(where / "base.json"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT,
                           check=True)
        this = json.loads((where / "this.json").read_text())
        that = json.loads((where / "base.json").read_text())
    if this == that:
        print(f"{len(this) - 1} plans and {len(this[-1]['items'])} log events equal field by "
              f"field ({args.base} and this tree)")
        return 0
    if this[-1] != that[-1]:
        print("the log events differ")
    for i, (x, y) in enumerate(zip(this[:-1], that[:-1], strict=True)):
        for key in x:
            if x[key] != y[key]:
                print(f"plan {i} differs in {key}:\n  this {json.dumps(x[key])[:600]}\n"
                      f"  base {json.dumps(y[key])[:600]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
