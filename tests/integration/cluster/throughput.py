"""Throughput of 1, 2 and 4 ``hub run`` processes against a three-node cluster; prints JSON.

    python -m tests.integration.cluster.throughput [--consumers 1 2 4] [--envelopes 2000]

For each consumer count: a fresh topology prefix (quorum queues, 3 replicas) and a fresh
PostgreSQL ledger schema; the consumers are started round-robin on the three nodes and attach;
then the envelopes are published (batched confirms) and the clock runs until the ledger holds
every one of them. Signed envelopes, full validation, signed receipts, PostgreSQL group commit:
the whole pipeline, not a broker micro-benchmark. Results depend on the machine: the JSON names
its CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.broker import connect
from hub.ledger import Ledger
from hub.testing.cluster import Cluster, start_cluster
from tests.integration.cluster.workload import (
    Consumers,
    envelope_count,
    hub_settings,
    live_pki,
    pg_schema,
    publish_reliably,
    signed_envelopes,
    topology_of,
    wait_until,
)


def measure(cluster: Cluster, pki: Any, envelopes: list[bytes], consumers_n: int,
            tmp: Path, batch_max: int) -> dict[str, Any]:
    seed = cluster.nodes[0]
    prefix = f"bench-{consumers_n}-{secrets.token_hex(3)}"
    with pg_schema("cluster_bench") as ledger_url:
        run_dir = tmp / prefix
        settings = hub_settings(pki, run_dir, url=seed.url, prefix=prefix, ledger_url=ledger_url,
                                batch_max=batch_max)
        topology = topology_of(settings)
        conn = connect(seed.url, f"{prefix} bench")
        conn.declare(topology)
        Ledger.open(ledger_url).close()
        consumers = Consumers(settings, run_dir / "consumers")
        consumers.start([cluster.nodes[i % len(cluster.nodes)].url for i in range(consumers_n)])
        try:
            if not wait_until(lambda: conn.channel.queue_declare(
                    topology.names.intake, passive=True).method.consumer_count >= consumers_n,
                              60, conn.sleep):
                raise RuntimeError(f"consumers did not attach:\n{consumers.tail()}")
            items = [(f"b{i}", body) for i, body in enumerate(envelopes)]
            t0 = time.monotonic()
            publish_reliably([n.url for n in cluster.nodes], topology.names.inbound, items)
            published_s = time.monotonic() - t0
            if not wait_until(lambda: envelope_count(ledger_url) >= len(items), 600, conn.sleep):
                raise RuntimeError(f"not all recorded:\n{consumers.tail()}")
            elapsed = time.monotonic() - t0
        finally:
            codes = consumers.stop()
        conn.delete(topology)
        conn.close()
    return {"consumers": consumers_n, "envelopes": len(envelopes),
            "seconds": round(elapsed, 2), "envelopes_per_s": round(len(envelopes) / elapsed, 1),
            "publish_s": round(published_s, 2), "exit_codes": codes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--envelopes", type=int, default=2000)
    parser.add_argument("--batch-max", type=int, default=64)
    args = parser.parse_args(argv)

    def log(msg: str) -> None:  # progress to stderr, JSON to stdout
        print(msg, file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="edxml-hub-bench-"))
    pki = live_pki(tmp / "pki")
    envelopes = signed_envelopes(pki, args.envelopes, "T")
    cluster = start_cluster(3, log=log)
    results = []
    try:
        for n in args.consumers:
            log(f"measuring {n} consumer(s)")
            results.append(measure(cluster, pki, envelopes, n, tmp, args.batch_max))
            log(json.dumps(results[-1]))
    finally:
        cluster.remove()
    print(json.dumps({"cpus": os.cpu_count(), "broker": "3-node RabbitMQ 3.10 cluster, quorum queues",
                      "ledger": "PostgreSQL", "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
