"""Profile the consumer's CPU work in process, without a broker: plan a batch, commit the ledger.

    python -m bench.profile_plan [--shape 10KB|1MB] [--n 640] [--batch 128] [--cprofile]

Prints milliseconds per envelope for planning (parse, validate, duplicates, route, receipts)
and the ledger commit, wall clock and this process's CPU time (``*_cpu_ms``: steadier on a
shared machine; the ledger's wall time also holds its fsync). Publishing is the broker's share
and is measured by ``bench/run``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from bench._workload import LARGE, SMALL, hub_settings, make_envelopes, make_pki
from hub import logs
from hub.app import build_hub
from hub.messages import Delivery
from hub.topology import ENVELOPE_KEY


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="10KB")
    ap.add_argument("--n", type=int, default=640)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--hosted", action="store_true",
                    help="the hub also signs the recipient's 01 receipt (two RSA signatures)")
    args = ap.parse_args()
    shape = SMALL if args.shape == "10KB" else LARGE
    root = Path(tempfile.mkdtemp(prefix="hub-prof-"))
    pki = make_pki(root / "pki")
    bodies = make_envelopes(pki, shape, args.n + args.batch)
    warm, bodies = bodies[:args.batch], bodies[args.batch:]
    state = root / "state"
    state.mkdir()
    settings = hub_settings(pki, state, "amqp://guest:guest@127.0.0.1:5672/", "prof",
                            require_pdf=shape.pdf_bytes > 0, hosted_recipient=args.hosted)
    with open(os.devnull, "w") as void, contextlib.redirect_stderr(void):
        logs.configure("json", "info")
        hub = build_hub(settings)
        key = ENVELOPE_KEY

        cpu = {"plan": 0.0, "ledger": 0.0}

        def run(chunk: list[bytes], tag: str) -> tuple[float, float]:
            deliveries = [Delivery(i, b, key, "prof.inbound", False, {}, f"{tag}-{i}", "guest",
                                   None, 0) for i, b in enumerate(chunk)]
            t0, c0 = time.perf_counter(), time.process_time()
            plan = hub.pipeline.process_batch(deliveries)
            t1, c1 = time.perf_counter(), time.process_time()
            hub.write_ledger(plan)
            t2, c2 = time.perf_counter(), time.process_time()
            cpu["plan"] += c1 - c0
            cpu["ledger"] += c2 - c1
            assert not any("dead" in o.exchange for o in plan.first + plan.second), "refused"
            return t1 - t0, t2 - t1

        run(warm, "warm")
        cpu.update(plan=0.0, ledger=0.0)
        prof = cProfile.Profile() if args.cprofile else None
        plan_s = ledger_s = 0.0
        if prof:
            prof.enable()
        for r in range(0, len(bodies), args.batch):
            p, w = run(bodies[r:r + args.batch], f"r{r}")
            plan_s += p
            ledger_s += w
        if prof:
            prof.disable()
        hub.close()
    n = len(bodies)
    out = {"shape": shape.name, "n": n, "batch": args.batch,
           "plan_ms": round(plan_s / n * 1000, 3), "ledger_ms": round(ledger_s / n * 1000, 3),
           "total_ms": round((plan_s + ledger_s) / n * 1000, 3),
           "plan_cpu_ms": round(cpu["plan"] / n * 1000, 3),
           "ledger_cpu_ms": round(cpu["ledger"] / n * 1000, 3),
           "env_per_s": round(n / (plan_s + ledger_s), 1)}
    print(json.dumps(out))
    if prof:
        prof.dump_stats("/tmp/prof/last.pstats")
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
