"""A/B of the intake consumer's settings, in process, with its own stage timers.

    .venv/bin/python bench/stages_inprocess.py [--n 4000] [--rounds 2]
        [--variant NAME=SECTION.KEY:VALUE[,SECTION.KEY:VALUE…]]… [--broker-url URL]

The consumer ``hub run`` builds (:meth:`hub.app.Hub.consumer`), run in this process on a
pre-loaded intake queue of ``--n`` signed 10 KB envelopes (``bench/bench_hub.py``'s scenario and
pre-load), until every envelope is acked. Variants run interleaved, ``--rounds`` times each, in
the order given (without ``--variant``: single-process mode). One JSON object: per run, the rate
(over the whole run, and after the first settled batch — a signer process's start-up is before
it), this process's CPU an envelope (a signer process's is not in it), the consumer's stage timers
(:class:`hub.consumers.stats.Stats`: batches, mean milliseconds a batch — where a change moves
time between stages, which a rate alone hides) and the ledger's commits (count, mean
milliseconds, milliseconds an envelope: the dialect's commit, timed).

Session 23 measured the commit beside planning with this (docs/PERFORMANCE.md): the rate alone
said "slower"; the stage timers said why — the writer's transaction doubled, planning slowed.
In process means the bench's own threads share the consumer's GIL (nothing heavy runs meanwhile:
a watcher waits on the stats condition); ``bench/bench_hub.py`` measures ``hub run`` processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _workload import SMALL, emit, make_envelopes, make_pki  # bench/ is on sys.path: run as a script
from bench_hub import broker_url, preload, scenario

from hub import logs
from hub.app import build_hub
from hub.config import with_overrides
from hub.ops.cli import settle_heap
from hub.testing.pki import PkiPaths

Overrides = dict[str, dict[str, Any]]


def parse_variant(text: str) -> tuple[str, Overrides]:
    """``NAME=SECTION.KEY:VALUE,…`` → the name and the sections' overrides (values as JSON when
    they parse as JSON — ``0``, ``true`` — else as text)."""
    name, _, spec = text.partition("=")
    if not name or not spec:
        raise argparse.ArgumentTypeError(f"expected NAME=SECTION.KEY:VALUE, got {text!r}")
    overrides: Overrides = {}
    for item in spec.split(","):
        path, sep, raw = item.partition(":")
        section, dot, key = path.partition(".")
        if not sep or not dot or not section or not key:
            raise argparse.ArgumentTypeError(f"expected SECTION.KEY:VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.setdefault(section, {})[key] = value
    return name, overrides


def drain(pki: PkiPaths, url: str, root: Path, bodies: Sequence[bytes],
          overrides: Overrides) -> dict[str, Any]:
    """One in-process consumer over ``bodies`` with ``overrides``; its figures."""
    n = len(bodies)
    with (open(os.devnull, "w") as void, contextlib.redirect_stderr(void),
          scenario(pki, url, root, SMALL, "warning") as s):
        logs.configure("json", "warning")
        preload(s.conn, s.names.inbound, bodies, 200)
        hub = build_hub(with_overrides(s.settings, **overrides))
        dialect: Any = hub.ledger.engine.dialect
        commit = dialect.do_commit
        commits: list[float] = []

        def timed_commit(dbapi_connection: Any) -> None:
            t0 = time.perf_counter()
            commit(dbapi_connection)
            commits.append(time.perf_counter() - t0)

        dialect.do_commit = timed_commit
        stop = threading.Event()
        consumer = hub.consumer(name=f"{s.prefix} stages", stop=stop)

        first: list[tuple[float, int]] = []

        def watch() -> None:
            # The first settled batch: start-up (a signer process spawned) is behind it.
            consumer.stats.wait_for(lambda st: st.batches >= 1, 600)
            first.append((time.perf_counter(), consumer.stats.acked))
            consumer.stats.wait_for(lambda st: st.acked >= n, 600)
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
        settle_heap()  # as `hub run` does before it consumes
        t0, cpu0 = time.perf_counter(), time.process_time()
        consumer.run()
        t1 = time.perf_counter()
        elapsed, cpu = t1 - t0, time.process_time() - cpu0
        t_first, acked_first = first[0] if first else (t0, 0)
        stages = {name: {"batches": h.n, "mean_ms": round(h.total / max(h.n, 1) * 1000, 2)}
                  for name, h in sorted(consumer.stats.stages.items())}
        acked = consumer.stats.acked
        hub.close()
    return {"envelopes": n, "acked": acked, "envelopes_per_s": round(n / elapsed, 1),
            "envelopes_per_s_after_first_batch": round(
                (n - acked_first) / max(t1 - t_first, 1e-9), 1),
            "process_cpu_ms_per_envelope": round(cpu / n * 1000, 3), "stages": stages,
            "commits": {"count": len(commits),
                        "mean_ms": round(sum(commits) / max(len(commits), 1) * 1000, 2),
                        "ms_per_envelope": round(sum(commits) / n * 1000, 3)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="envelopes a run (10 KB)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each variant, interleaved")
    ap.add_argument("--variant", action="append", type=parse_variant, default=[],
                    metavar="NAME=SECTION.KEY:VALUE[,…]",
                    help="settings of one variant (repeat for each; e.g. "
                         "signer=hub.signer_processes:1)")
    ap.add_argument("--broker-url", default=None,
                    help="use this broker instead of starting the testcontainers image")
    ap.add_argument("--output", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    variants: list[tuple[str, Overrides]] = args.variant or [
        ("single-process", {"hub": {"signer_processes": 0}})]
    result: dict[str, Any] = {"envelopes": args.n, "rounds": args.rounds,
                              "variants": {name: o for name, o in variants}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="edxml-hub-stages-") as tmp, \
            contextlib.ExitStack() as stack:
        root = Path(tmp)
        url = broker_url(stack, args.broker_url)
        pki = make_pki(root / "pki")
        bodies = make_envelopes(pki, SMALL, args.n)
        for round_ in range(1, args.rounds + 1):
            for name, overrides in variants:
                run = drain(pki, url, root, bodies, overrides)
                result["runs"].append({"variant": name, "round": round_, **run})
                print(json.dumps(result["runs"][-1], ensure_ascii=False), file=sys.stderr)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
