"""Instructions per envelope (valgrind callgrind): the consumer's CPU work, counted, not timed.

    .venv/bin/python bench/bench_instructions.py [--n 128] [--batch 128] [--workload DIR]
                                                 [--output FILE]

A wall-clock figure on a shared machine moves 10-40 % between runs (``bench/run`` needs
interleaved series to see a 5 % change); an instruction count is the same for the same program
and inputs whatever else the machine does. This counts, under ``valgrind --tool=callgrind``:

* ``hub``: the objects ``hub run`` builds, in process, no broker — plan a batch of 128 (parse,
  XMLDSig verify, chain + CRL verdict, signer binding, duplicates, route, the "accepted"
  receipt signed by the operator), then write the ledger (hash chain, SQLite WAL commit);
* ``floor``: the primitives alone on the same envelopes — lxml parse, exclusive c14n of the
  document, SHA-256, one RSA-2048 verify, one RSA-2048 sign, 1/128 of a 128-row SQLite insert.

Each side runs twice (a warm batch plus ``n`` envelopes, and plus ``3n``); the difference divided
by ``2n`` is the steady-state count per envelope (start-up, imports and the warm batch cancel
out). The hub's count is also split by the shared object the instructions ran in (interpreter,
lxml/libxml2, the RSA of ``cryptography``, hashing, SQLite, libc). Publishing, framing and
acking (pika, the broker) are not in it: ``bench/run`` measures those.

Instructions are not time, nor the native count: under valgrind's emulated CPU OpenSSL takes
generic code paths (an RSA-2048 signature counts ~6.4 M instructions, SHA-256 ~28 per byte;
natively they run far fewer), and the interpreter runs fewer instructions per cycle than the
crypto does. Compare the counts of one side between two trees (``--workload``: the same keys
and bytes), and read ``ratio_floor_to_hub`` as a trend, not as ``bench/run``'s wall-clock ratio.
The hub is counted with ``signer_processes = 0`` (receipts signed in the consumer's process: by
a thread where two cores are usable, else inline; the same instructions either way). The
children run with a fixed hash seed, the ledger's time-driven work (signed checkpoints every
``checkpoint_interval_s``, the background WAL checkpointer) switched to its count-driven form,
so that a run's count does not depend on how long it took under valgrind.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _workload import (  # bench/ is on sys.path
    SMALL,
    hub_settings,
    make_envelopes,
    make_pki,
    not_delivered,
)

WARM = 128
BATCH = 128
OBJECTS = (  # shared object file name fragment -> what runs there
    ("libpython", "python_interpreter"),
    ("etree.", "lxml_libxml2"),
    ("_rust.abi3", "cryptography_rust_openssl"),
    ("libcrypto", "system_openssl_hashlib"),
    ("libsqlite3", "sqlite"),
    ("libc.so", "libc_malloc_memcpy"),
    ("orjson", "orjson"),
)


def say(msg: str) -> None:
    print(f"[bench_instructions] {msg}", file=sys.stderr, flush=True)


# -- the measured children (run under valgrind) ---------------------------------------------------
def child_hub(data: Path, n: int, batch: int = BATCH) -> None:
    from hub import logs
    from hub.app import build_hub
    from hub.config import with_overrides
    from hub.messages import Delivery
    from hub.ops.cli import settle_heap
    from hub.topology import ENVELOPE_KEY

    pki, bodies = pickle.loads((data / "workload.pickle").read_bytes())  # noqa: S301 (ours)
    with (tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp,
          open(os.devnull, "w") as void, contextlib.redirect_stderr(void)):
        state = Path(tmp)
        settings = with_overrides(
            hub_settings(pki, state, "amqp://guest:guest@127.0.0.1:5672/", "instr",
                         require_pdf=False),
            hub={"signer_processes": 0},
            # Count-driven only: a checkpoint signature every 1,000 rows, WAL checkpoints by
            # the committing connection (not by the clock, which valgrind slows ~50 x).
            ledger={"checkpoint_interval_s": 10**9, "sqlite_wal_checkpoints": "inline"})
        logs.configure("json", "info")
        hub = build_hub(settings)
        signing = hub.receipt_signing()
        if signing is not None:
            signing.start()

        def one(chunk: Sequence[bytes], tag: str) -> None:
            deliveries = [Delivery(i, b, ENVELOPE_KEY, "instr.inbound", False, {}, f"{tag}-{i}",
                                   "guest", None, 0) for i, b in enumerate(chunk)]
            if signing is None:
                plan = hub.pipeline.process_batch(deliveries)
            else:
                plan, job = signing.plan(lambda: hub.pipeline.process_batch(deliveries))
                if job is not None:
                    signing.complete(plan, job)
            hub.write_ledger(plan)
            problems = not_delivered(plan, len(chunk))
            if problems:
                raise SystemExit(f"not the valid path: {problems[:3]} (a stale --workload? "
                                 "its CRL lasts 7 days)")

        one(bodies[:WARM], "warm")
        settle_heap()  # as `hub run` does before it consumes
        rest = bodies[WARM:WARM + n]
        for start in range(0, len(rest), batch):
            one(rest[start:start + batch], f"b{start}")
        if signing is not None:
            signing.close()
        hub.close()


def child_floor(data: Path, n: int, batch: int = BATCH) -> None:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from lxml import etree

    from hub.trust.keystore import Keystore

    pki, bodies = pickle.loads((data / "workload.pickle").read_bytes())  # noqa: S301 (ours)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True, remove_blank_text=False)
    ds = "{http://www.w3.org/2000/09/xmldsig#}"
    store = Keystore.load(pki.keystore)
    key = store[next(iter(store))].key
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE d (seq INTEGER PRIMARY KEY, digest TEXT UNIQUE, raw BLOB)")
        rows: list[tuple[str, bytes]] = []
        for i, raw in enumerate(bodies[:WARM + n]):
            root = etree.fromstring(raw, parser)
            c14n = etree.tostring(root, method="c14n", exclusive=True)
            digest = hashlib.sha256(c14n).hexdigest()
            signed_info = etree.tostring(next(root.iter(ds + "SignedInfo")), method="c14n",
                                         exclusive=True)
            value = base64.b64decode(next(root.iter(ds + "SignatureValue")).text or "")
            der = base64.b64decode(next(root.iter(ds + "X509Certificate")).text or "")
            pub = x509.load_der_x509_certificate(der).public_key()
            assert isinstance(pub, rsa.RSAPublicKey)
            pub.verify(value, signed_info, pkcs1, sha256)
            key.sign(signed_info, pkcs1, sha256)
            rows.append((f"{digest}:{i}", raw))
            if len(rows) == batch:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO d (digest, raw) VALUES (?, ?)", rows)
                db.execute("COMMIT")
                rows.clear()
        db.close()


# -- the parent ----------------------------------------------------------------------------------
def callgrind(side: str, data: Path, n: int, out: Path, batch: int = BATCH) -> int:
    """Run one child under callgrind; its total instruction count."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, str(Path(__file__).resolve()), "--child", side, "--data", str(data),
           "--n", str(n), "--batch", str(batch)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines()
                if line.strip() and not line.startswith("==")]
        raise SystemExit(f"{side} ({n} envelopes) under callgrind failed (exit "
                         f"{done.returncode}): {said[-1] if said else 'no message'}")
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out}")


def by_object(out: Path) -> dict[str, int]:
    """Self instructions per shared object, summed from the callgrind file itself (``ob=``
    blocks; the cost line after a ``calls=`` line is the callee's inclusive cost: skipped)."""
    names: dict[str, str] = {}  # "(id)" -> path: defined once, on an ob= or cob= line
    counts: collections.Counter[str] = collections.Counter()
    current, skip_next = "other", False
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("ob=", "cob=")):
            m = re.match(r"c?ob=(\(\d+\))?\s*(.*)", line)
            assert m is not None
            ref, name = m.group(1) or "", m.group(2)
            if name and ref:
                names[ref] = name
            if line.startswith("ob="):
                obj = (name or names.get(ref, "")).rsplit("/", 1)[-1]
                current = next((label for part, label in OBJECTS if part in obj), "other")
        elif line.startswith("calls="):
            skip_next = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip_next:
                skip_next = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                counts[current] += int(fields[1])
    return dict(counts)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=128,
                    help="envelopes of the small run (the large one has 3n; default 128)")
    ap.add_argument("--batch", type=int, default=BATCH,
                    help="envelopes a batch (default %(default)s): a small batch shows what "
                         "each batch costs beside its envelopes (the half-load rounds)")
    ap.add_argument("--output", default=None, help="also write the JSON here")
    ap.add_argument("--workload", default=None, metavar="DIR",
                    help="keep the PKI and envelopes in DIR and reuse them when they are there: "
                         "two trees counted on the same keys and bytes (RSA counts vary a few "
                         "%% from one key to another)")
    ap.add_argument("--child", choices=("hub", "floor"), help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        (child_hub if args.child == "hub" else child_floor)(Path(args.data), args.n, args.batch)
        return 0
    if shutil.which("valgrind") is None:
        print("bench_instructions: valgrind not found (Debian package valgrind)",
              file=sys.stderr)
        return 2
    if args.batch <= 0 or args.n <= 0 or args.n % args.batch:
        print("bench_instructions: --n must be a positive multiple of --batch (whole batches)",
              file=sys.stderr)
        return 2
    n_small, n_large = args.n, 3 * args.n
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edxml-hub-instr-") as tmp:
        data = Path(args.workload).resolve() if args.workload else Path(tmp)
        workload = data / "workload.pickle"
        if workload.exists():
            say(f"the workload of {workload} (the same PKI and envelopes as before)")
            _pki, bodies = pickle.loads(workload.read_bytes())  # noqa: S301 (ours)
            if len(bodies) < WARM + n_large:
                raise SystemExit(f"{workload} holds {len(bodies)} envelopes, "
                                 f"{WARM + n_large} needed")
        else:
            say("issuing a test PKI and signing envelopes")
            data.mkdir(parents=True, exist_ok=True)
            pki = make_pki(data / "pki")
            bodies = make_envelopes(pki, SMALL, WARM + n_large)
            workload.write_bytes(pickle.dumps((pki, bodies)))
        runs = [(side, n) for side in ("hub", "floor") for n in (n_small, n_large)]
        outs = {run: Path(tmp) / f"{run[0]}.{run[1]}.callgrind" for run in runs}
        say(f"{len(runs)} runs under callgrind (hub and floor, {n_small} and {n_large} "
            "envelopes), as many at once as there are cores")
        with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            counted = pool.map(
                lambda run: callgrind(run[0], data, run[1], outs[run], args.batch), runs)
            totals = dict(zip(runs, counted, strict=True))
        span = n_large - n_small
        per = {side: (totals[side, n_large] - totals[side, n_small]) / span
               for side in ("hub", "floor")}
        small, large = by_object(outs["hub", n_small]), by_object(outs["hub", n_large])
        split = {k: round((large.get(k, 0) - small.get(k, 0)) / span)
                 for k in sorted(set(small) | set(large), key=lambda k: -large.get(k, 0))}
    result: dict[str, Any] = {
        "tool": "valgrind --tool=callgrind (instructions, Ir)",
        "envelope_bytes": len(bodies[0]),
        "envelopes_counted": span,
        "batch": args.batch,
        "hub_instructions_per_envelope": round(per["hub"]),
        "floor_instructions_per_envelope": round(per["floor"]),
        "ratio_floor_to_hub": round(per["floor"] / per["hub"], 3),
        # What the hub runs beyond the primitives: the share to drive down.
        "hub_beyond_floor_instructions_per_envelope": round(per["hub"] - per["floor"]),
        "hub_by_object_per_envelope": split,
        "seconds_total": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
