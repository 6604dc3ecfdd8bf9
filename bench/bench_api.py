"""Agency API benchmark (issue 18): the same traffic over AMQP and over ``hub api``, one run.

    .venv/bin/python bench/bench_api.py [--systems 8] [--docs 250] [--broker-url URL]

N agency systems (round-robin over four agencies of the sample directory, each sending to
another) send signed ~10 KB envelopes and receive what is sent to them, against a real broker
and one ``hub run`` consumer process:

* **AMQP**: each system publishes with a confirm per message (``hub.client`` semantics); each
  receiving agency consumes its inbox and acknowledges;
* **API**: the same envelopes (new DocumentIds) through a ``hub api serve`` process: each system
  ``POST /api/v1/edocs`` (``wait=0``: no verdict wait, like an AMQP publish); each receiving
  agency long-polls ``GET /api/v1/edocs``, fetches each document's bytes and acknowledges in
  batches (``POST /api/v1/acks``).

Reported as JSON: documents/s (first send to last acknowledgement), latency p50/p99 from the
send to *fetchable* (delivered to the AMQP consumer / listed by the API), the CPU seconds per
document of the hub consumer and of the API process (``/proc``), and the ratios API/AMQP.
Nothing is asserted; the issue's targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from _workload import consumer_env, hub_settings, make_pki  # bench/ is on sys.path

from hub.api.credentials import add_system
from hub.broker import Delivery, Outgoing, connect
from hub.consumers.plan import message_id_for
from hub.edxml import Attachment, build_envelope, sample_header
from hub.testing import devbroker
from hub.testing.pki import PkiPaths
from hub.testing.ports import free_port
from hub.topology import ENVELOPE_KEY, Names
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (("000.00.00.H27", "000.00.02.H27"), ("000.00.01.H27", "000.00.03.H27"),
         ("000.00.02.H27", "000.00.00.H27"), ("000.00.03.H27", "000.00.01.H27"))
"""(sender, recipient): four agencies served by the hub that exist today, each sending to one."""
TARGETS = {"api_documents_per_s": 300.0, "api_cpu_added_over_amqp_path": 0.20}


def say(msg: str) -> None:
    print(f"bench-api: {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def envelopes(pki: PkiPaths, systems: int, docs: int, tag: str) -> list[list[bytes]]:
    """Per system, ``docs`` signed ~10 KB envelopes from its agency to that agency's partner."""
    keystore = Keystore.load(pki.keystore)
    filler = random.Random(1).randbytes(1900)
    today = dt.datetime.now(dt.UTC).date()
    out: list[list[bytes]] = []
    for s in range(systems):
        sender, recipient = PAIRS[s % len(PAIRS)]
        signer = keystore.signer(sender)
        assert signer is not None
        batch = []
        for i in range(docs):
            header = sample_header(sender, (recipient,), number=f"{tag}{s}x{i}",
                                   promulgation_date=today)
            header = dataclasses.replace(header, content="Nội dung văn bản phục vụ đo hiệu năng.")
            body = build_envelope(header, attachments=[
                Attachment(f"annex-{tag}{s}x{i}", "phu-luc.txt", "text/plain", "Phụ lục", filler)])
            batch.append(sign_xml(body, signer))
        out.append(batch)
    return out


@dataclasses.dataclass
class Phase:
    sent_at: dict[str, float] = dataclasses.field(default_factory=dict)
    seen_at: dict[str, float] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    errors: list[str] = dataclasses.field(default_factory=list)

    def sent(self, key: str) -> None:
        with self.lock:
            self.sent_at[key] = time.perf_counter()

    def seen(self, key: str) -> None:
        now = time.perf_counter()
        with self.lock:
            self.seen_at.setdefault(key, now)

    def figures(self, total: int, start: float, end: float, cpu: dict[str, float]
                ) -> dict[str, Any]:
        lat = [(self.seen_at[k] - self.sent_at[k]) * 1000 for k in self.seen_at if k in self.sent_at]
        secs = end - start
        return {"documents": total, "received": len(self.seen_at), "seconds": round(secs, 2),
                "documents_per_s": round(len(self.seen_at) / secs, 1),
                "latency_p50_ms": round(percentile(lat, 0.5), 1),
                "latency_p99_ms": round(percentile(lat, 0.99), 1),
                "cpu_ms_per_document": {k: round(v * 1000 / max(1, total), 3)
                                        for k, v in cpu.items()},
                "errors": self.errors[:5]}


def run_amqp(url: str, names: Names, bodies: list[list[bytes]], phase: Phase,
             timeout: float) -> None:
    total = sum(len(b) for b in bodies)
    done = threading.Event()
    stop = threading.Event()

    def receive(org: str) -> None:
        conn = connect(url, f"bench amqp receive {org}")
        settler = conn.settler()

        def on(d: Delivery) -> None:
            phase.seen(d.message_id.split(":")[0] if d.message_id else "")
            settler.ack([d.tag])
            if len(phase.seen_at) >= total:
                done.set()

        conn.consume(names.inbox(org), 200, on)
        while not stop.is_set() and not done.is_set():
            conn.pump(0.05)
        conn.close()

    def send(batch: list[bytes]) -> None:
        conn = connect(url, "bench amqp send")
        for body in batch:
            digest = __import__("hashlib").sha256(body).hexdigest()
            phase.sent(digest)
            conn.publish([Outgoing(names.inbound, ENVELOPE_KEY, body,
                                   message_id=message_id_for(body), user_id="guest")])
        conn.close()

    receivers = [threading.Thread(target=receive, args=(r,)) for _, r in PAIRS]
    for t in receivers:
        t.start()
    senders = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.wait(timeout)
    stop.set()
    for t in receivers:
        t.join()


def run_api(base: str, secrets: dict[int, tuple[str, str]], bodies: list[list[bytes]],
            phase: Phase, timeout: float) -> None:
    total = sum(len(b) for b in bodies)
    done = threading.Event()

    def headers(system: int) -> dict[str, str]:
        sid, secret = secrets[system]
        return {"X-System-Id": sid, "X-System-Secret": secret}

    def receive(system: int) -> None:
        with httpx.Client(base_url=base, headers=headers(system), timeout=60) as client:
            while not done.is_set():
                try:
                    items = client.get("/api/v1/edocs", params={
                        "wait": 1, "pageSize": 100, "messageType": "edoc"}).json()["items"]
                except (httpx.HTTPError, KeyError) as exc:
                    phase.errors.append(f"list: {exc!r}")
                    continue
                keys = [i["docId"] for i in items]
                for key in keys:
                    phase.seen(key)
                    client.get(f"/api/v1/edocs/{key}/content")
                if keys:
                    client.post("/api/v1/acks", json={"docIds": keys})
                if len(phase.seen_at) >= total:
                    done.set()

    def send(system: int, batch: list[bytes]) -> None:
        with httpx.Client(base_url=base, headers=headers(system), timeout=60) as client:
            for body in batch:
                digest = __import__("hashlib").sha256(body).hexdigest()
                phase.sent(digest)
                answer = client.post("/api/v1/edocs", content=body, params={"wait": 0},
                                     headers={"Content-Type": "application/xml"})
                if answer.status_code >= 300:
                    phase.errors.append(f"send {answer.status_code}: {answer.text[:200]}")

    # One receiving system per agency (the first system of each pair's recipient)
    receivers = []
    for _, recipient in PAIRS:
        system = next(s for s in secrets if PAIRS[s % len(PAIRS)][0] == recipient)
        receivers.append(threading.Thread(target=receive, args=(system,)))
    for t in receivers:
        t.start()
    senders = [threading.Thread(target=send, args=(s, b)) for s, b in enumerate(bodies)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.wait(timeout)
    done.set()
    for t in receivers:
        t.join()


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("bench-api: hub api serve exited")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit("bench-api: hub api serve did not answer")


def wait_consumer(url: str, queue: str, limit: float = 60) -> None:
    conn = connect(url, "bench wait consumer")
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            stats = conn.queue_stats(queue)
            if stats is not None and stats[1] > 0:
                return
            conn.sleep(0.1)
    finally:
        conn.close()
    raise SystemExit("bench-api: hub run did not start consuming")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", type=int, default=8, help="agency systems sending")
    parser.add_argument("--docs", type=int, default=250, help="documents per system and phase")
    parser.add_argument("--broker-url", default=None, help="use this broker (default: container)")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    with devbroker.broker_for(args.broker_url, log=say) as (url, _broker):
        pki = make_pki(root / "pki")
        prefix = f"bench-api-{os.getpid()}"
        settings = hub_settings(pki, root / "state", url, prefix, require_pdf=False)
        say("signing envelopes")
        amqp_bodies = envelopes(pki, args.systems, args.docs, "A")
        api_bodies = envelopes(pki, args.systems, args.docs, "H")
        from hub.app import load_directory, topology_for

        topology = topology_for(settings, load_directory(settings))
        conn = connect(url, "bench declare")
        conn.declare(topology)
        conn.close()
        creds = root / "api-credentials.toml"
        from argon2 import PasswordHasher

        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        secrets = {s: (f"sys{s}", add_system(creds, f"sys{s}", PAIRS[s % len(PAIRS)][0], cheap,
                                             dt.datetime.now(dt.UTC)))
                   for s in range(args.systems)}
        env = consumer_env(settings, "warning")
        port = free_port()
        api_env = {**env, "HUB_API__PORT": str(port), "HUB_API__CREDENTIALS_FILE": str(creds),
                   "HUB_API__STATE_DIR": str(root / "api-state"), "HUB_API__RATE_PER_S": "1000000",
                   "HUB_API__RATE_BURST": "1000000", "HUB_API__VERDICT_WAIT_S": "0",
                   "HUB_API__WINDOW": "500",
                   # every sender signs in at once: no argon2 check refused for the cap
                   "HUB_API__SIGNIN_CONCURRENCY": "64", "HUB_API__WAITS_PER_ORG": "64"}
        total = args.systems * args.docs
        result: dict[str, Any] = {"systems": args.systems, "documents_per_phase": total,
                                  "envelope_bytes": len(amqp_bodies[0][0]),
                                  "cpus": os.cpu_count(),
                                  "load_average_at_start": list(os.getloadavg())}
        with process([sys.executable, "-m", "hub", "run"], env) as hub, \
                process([sys.executable, "-m", "hub", "api", "serve"], api_env) as api:
            wait_consumer(url, topology.names.intake)
            wait_http(f"http://127.0.0.1:{port}/openapi.json", api)
            for name, runner, bodies in (("amqp", "amqp", amqp_bodies),
                                         ("api", "api", api_bodies)):
                say(f"{name}: {total} documents from {args.systems} systems")
                phase = Phase()
                cpu0 = {"hub_consumer": cpu_seconds(hub.pid), "api_process": cpu_seconds(api.pid)}
                start = time.perf_counter()
                if runner == "amqp":
                    run_amqp(url, topology.names, bodies, phase, timeout=600)
                else:
                    run_api(f"http://127.0.0.1:{port}", secrets, bodies, phase, timeout=600)
                end = max(phase.seen_at.values(), default=time.perf_counter())
                cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in
                       (("hub_consumer", hub.pid), ("api_process", api.pid))}
                result[name] = phase.figures(total, start, end, cpu)
        amqp, api_r = result["amqp"], result["api"]
        hub_cpu = amqp["cpu_ms_per_document"]["hub_consumer"]
        api_cpu = api_r["cpu_ms_per_document"]["api_process"]
        result["ratios"] = {
            "api_over_amqp_documents_per_s": round(api_r["documents_per_s"]
                                                   / max(amqp["documents_per_s"], 1e-9), 3),
            "api_over_amqp_latency_p50": round(api_r["latency_p50_ms"]
                                               / max(amqp["latency_p50_ms"], 1e-9), 2),
            "api_cpu_added_over_amqp_path": round(api_cpu / max(hub_cpu, 1e-9), 3),
        }
        result["targets"] = {
            "api_documents_per_s": {"target": ">= 300", "value": api_r["documents_per_s"],
                                    "met": api_r["documents_per_s"] >= 300},
            "api_cpu_added_over_amqp_path": {
                "target": "<= 0.20", "value": result["ratios"]["api_cpu_added_over_amqp_path"],
                "met": result["ratios"]["api_cpu_added_over_amqp_path"] <= 0.20}}
        text = json.dumps(result, indent=2)
        print(text)
        if args.output:
            Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
