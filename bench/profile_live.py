"""Where a live ``hub run`` spends its time: py-spy samples of the consumer's main thread.

    .venv/bin/pip install py-spy          # once: a sampling profiler, not a project dependency
    .venv/bin/python bench/profile_live.py [--n 8000] [--signer 1] [--gil] [--broker-url URL]

The intake queue is pre-loaded with ``--n`` signed 10 KB envelopes (as ``bench/bench_hub.py``
does), one ``hub run`` drains it, and py-spy samples the consumer process from the moment it
registers on the queue until the ledger holds every envelope. Without ``--gil`` every sample
of the main thread counts, waiting included (how the loop's wall time divides); with ``--gil``
only samples where the main thread holds the GIL (its Python work; compare the two to see what
runs with the GIL released — SQLite's statements and commit, socket writes, waits). One JSON
object: the rate, the main thread's samples and samples a second (a ``--gil`` run against a
wall run bounds the share of the loop that holds the GIL; ``--gil`` slows the consumer, so read
it per second and per envelope, as session 22 in docs/PERFORMANCE.md does), each stage's share
of the main thread (inclusive: a sample counts in every stage on its stack) and the top leaves.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _workload import SMALL, emit, make_envelopes, make_pki  # bench/ is on sys.path: run as a script
from bench_hub import broker_url, throughput

STAGES: dict[str, tuple[str, ...]] = {
    "planning": ("IntakeConsumer._plan ",),
    "  parsing": ("parse_packet ",),
    "    lxml parse and hardening": ("parse_xml (hub/edxml/",),
    "    EDXML schema": ("_validate (hub/edxml/",),
    "    header read": ("_message_header ",),
    "    field lengths": ("_check_field_lengths ",),
    "  validation": ("validate_packet ",),
    "    XMLDSig": ("check_xml_signature ",),
    "  receipts": ("HubReceipts.accepted ",),
    "finishing a batch": ("IntakeConsumer._finish ",),
    "  ledger write": ("Ledger.write ",),
    "    SQLite statements": ("_on_cursor ",),
    "    commit": ("do_commit ",),
    "  signatures from the signer": ("IntakeConsumer._signatures ",),
    "settling (receipt confirms, ack)": ("IntakeConsumer._settle ",),
    "pika": ("(pika/", "/pika/"),
    "requests to the signer": ("SignerPool.submit ", "SignerThread.submit "),
}
"""Stage -> substrings of a py-spy frame ("function (file:line)") that put a sample in it."""

LEAVES: dict[str, tuple[str, ...]] = {
    "idle in poll (nothing to do)": ("PollPoller.poll ",),
}
"""The same, matched against the innermost frame only (``poll`` also dispatches pika's events)."""


def _py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("profile_live: py-spy is not installed "
                         "(.venv/bin/pip install py-spy)")
    return found


def analyse(raw: Path, top: int) -> dict[str, Any]:
    """Shares of the main thread's samples in py-spy's raw (collapsed) output."""
    total = 0
    stages: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if "MainThread" not in stack.split(";", 1)[0] or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")[1:]
        for stage, needles in STAGES.items():
            if any(needle in frame for frame in frames for needle in needles):
                stages[stage] += n
        if frames:
            leaves[frames[-1]] += n
            for stage, needles in LEAVES.items():
                if any(needle in frames[-1] for needle in needles):
                    stages[stage] += n
    share = (lambda n: round(100.0 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "main_thread_samples": total,
        "stage_percent": {stage: share(stages[stage]) for stage in (*STAGES, *LEAVES)},
        "top_leaves_percent": {leaf: share(n) for leaf, n in leaves.most_common(top)},
    }


def sampling(spy: str, args: argparse.Namespace, raw: Path, report: Path
             ) -> Callable[[list[int]], contextlib.AbstractContextManager[None]]:
    """For :func:`bench_hub.throughput`'s ``during``: py-spy records the first consumer while
    the bench's clock runs (samples to ``raw``, its summary to ``report``)."""
    @contextlib.contextmanager
    def record(pids: list[int]) -> Iterator[None]:
        with report.open("w", encoding="utf-8") as out:
            sampler = subprocess.Popen(
                [spy, "record", "--pid", str(pids[0]), "--rate", str(args.rate),
                 "--format", "raw", "--threads", "--nonblocking", "-o", str(raw),
                 "--gil" if args.gil else "--idle"],
                stdout=out, stderr=subprocess.STDOUT)
            try:
                yield
            finally:
                sampler.send_signal(signal.SIGINT)
                try:
                    sampler.wait(60)
                except subprocess.TimeoutExpired:
                    sampler.kill()
                    sampler.wait()
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8000, help="envelopes to drain (10 KB)")
    ap.add_argument("--signer", type=int, default=1, choices=(0, 1),
                    help="signer processes of the consumer (0: single-process mode)")
    ap.add_argument("--gil", action="store_true",
                    help="sample only while the main thread holds the GIL")
    ap.add_argument("--rate", type=int, default=400, help="samples per second")
    ap.add_argument("--top", type=int, default=30, help="leaves to list")
    ap.add_argument("--broker-url", default=None,
                    help="use this broker instead of starting the testcontainers image")
    ap.add_argument("--output", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    spy = _py_spy()
    with tempfile.TemporaryDirectory(prefix="edxml-hub-live-") as tmp, \
            contextlib.ExitStack() as stack:
        root = Path(tmp)
        url = broker_url(stack, args.broker_url)
        pki = make_pki(root / "pki")
        bodies = make_envelopes(pki, SMALL, args.n)
        raw, report = root / "samples.txt", root / "py-spy.txt"
        # The bench's own drain: pre-load, one consumer, the clock from its registration on
        # the queue to the ledger holding every envelope — py-spy records meanwhile.
        run = throughput(pki, url, root, SMALL, bodies, 1, "warning",
                         signer_processes=args.signer, during=sampling(spy, args, raw, report))
        summary = re.search(r"Samples: (\d+) Errors: (\d+)", report.read_text(encoding="utf-8"))
        result = {"envelopes": args.n, "signer_processes": args.signer,
                  "sampled": "holding the GIL" if args.gil else "wall (waits included)",
                  "envelopes_per_s": run["envelopes_per_s"], "seconds": run["seconds"],
                  "delivered": run["delivered"], "dead_lettered": run["dead_lettered"],
                  **analyse(raw, args.top)}
        # py-spy's own counts: stacks recorded (one per thread sampled; with --gil only those
        # holding the GIL, so no share of the time can be read from them) and failed reads.
        result["py_spy_samples"] = int(summary.group(1)) if summary else None
        result["py_spy_errors"] = int(summary.group(2)) if summary else None
        result["main_thread_samples_per_s"] = round(
            result["main_thread_samples"] / run["seconds"], 1)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
