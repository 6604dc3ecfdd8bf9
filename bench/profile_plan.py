"""Profile the consumer's CPU work in process, without a broker: plan a batch, commit the ledger.

    python -m bench.profile_plan [--shape 10KB|1MB] [--n 640] [--batch 128] [--cprofile]
                                 [--signer N]

Prints milliseconds per envelope for planning (parse, validate, duplicates, route, receipts)
and the ledger commit. Publishing is the broker's share and is measured by ``bench/run``.

``--signer N``: the receipts' RSA signatures are made by N signer processes, as ``hub run``
does with ``[hub] signer_processes``: batch *k+1* is planned and sent to the signer, batch *k*'s
ledger is written meanwhile, then *k+1*'s signatures are taken back (``sign_wait_ms``: the time
the consumer still waited for them). cProfile sees the consumer's thread only.
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

from bench._workload import LARGE, SMALL, hub_settings, make_envelopes, make_pki, not_delivered
from hub import logs
from hub.app import build_hub
from hub.config import with_overrides
from hub.consumers.plan import BatchPlan
from hub.messages import Delivery
from hub.ops.cli import settle_heap
from hub.topology import ENVELOPE_KEY
from hub.validators.pdf import preload


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="10KB")
    ap.add_argument("--n", type=int, default=640)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--signer", type=int, default=0,
                    help="signer processes for the receipts (0: one process; a signer thread of it when"
                         " a second core is usable, as `hub run` does)")
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
    settings = with_overrides(settings, hub={"signer_processes": args.signer})
    with open(os.devnull, "w") as void, contextlib.redirect_stderr(void):
        logs.configure("json", "info")
        hub = build_hub(settings)
        signing = hub.receipt_signing()
        if signing is not None:
            signing.start()
        key = ENVELOPE_KEY
        held: list[BatchPlan] = []  # the batch planned before, its ledger not yet written

        def run(chunk: list[bytes], tag: str) -> tuple[float, float, float]:
            deliveries = [Delivery(i, b, key, "prof.inbound", False, {}, f"{tag}-{i}", "guest",
                                   None, 0) for i, b in enumerate(chunk)]
            t0 = time.perf_counter()
            if signing is None:
                plan = hub.pipeline.process_batch(deliveries)
                t1 = time.perf_counter()
                hub.write_ledger(plan)
                t2 = t3 = time.perf_counter()
            else:
                plan, job = signing.plan(lambda: hub.pipeline.process_batch(deliveries))
                t1 = time.perf_counter()
                for before in held:  # written while the signer signs this batch
                    hub.write_ledger(before)
                held[:] = [plan]
                t2 = time.perf_counter()
                if job is not None:
                    signing.complete(plan, job)
                t3 = time.perf_counter()
            problems = not_delivered(plan, len(chunk))
            assert not problems, problems[:3]
            return t1 - t0, t2 - t1, t3 - t2

        preload()  # as `hub run` does at start-up (pyHanko's imports are not a batch's work)
        run(warm, "warm")
        settle_heap()  # as `hub run` does before it consumes
        prof = cProfile.Profile() if args.cprofile else None
        plan_s = ledger_s = wait_s = 0.0
        cpu0 = time.process_time()
        if prof:
            prof.enable()
        for r in range(0, len(bodies), args.batch):
            p, w, s = run(bodies[r:r + args.batch], f"r{r}")
            plan_s += p
            ledger_s += w
            wait_s += s
        if prof:
            prof.disable()
        cpu_s = time.process_time() - cpu0
        for before in held:
            hub.write_ledger(before)
        if signing is not None:
            signing.close()
        hub.close()
    n = len(bodies)
    total = plan_s + ledger_s + wait_s
    out = {"shape": shape.name, "n": n, "batch": args.batch, "signer_processes": args.signer,
           "plan_ms": round(plan_s / n * 1000, 3), "ledger_ms": round(ledger_s / n * 1000, 3),
           "sign_wait_ms": round(wait_s / n * 1000, 3), "total_ms": round(total / n * 1000, 3),
           "env_per_s": round(n / total, 1),
           # CPU of this process only (the signer processes' is theirs): steadier than the
           # wall clock on a machine shared with other work.
           "consumer_cpu_ms": round(cpu_s / n * 1000, 3),
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out))
    if prof:
        Path("/tmp/prof").mkdir(exist_ok=True)
        prof.dump_stats("/tmp/prof/last.pstats")
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
