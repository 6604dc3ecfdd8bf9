"""Soak benchmark (issue 16): memory stays bounded over many mixed valid and invalid envelopes.

The real intake consumer (pipeline, trust service, validators, receipts, SQLite ledger) runs in
process behind the in-memory broker connection and takes ``--count`` packets (10,000 by
default), in batches as the broker would hand them over, of five kinds in turn:

- valid signed 10 KB envelopes (each its own DocumentId);
- the same edited after signing (SIGNATURE_DIGEST_MISMATCH);
- valid envelopes whose KeyInfo also carries large certificate-shaped garbage (up to the
  KeyInfo limits) — every one distinct, so no cache may keep them;
- valid envelopes whose KeyInfo offers a distinct self-signed certificate (untrusted);
- bytes that are not XML.

It prints one JSON object: the resident set size after a warm-up, at the end and at its peak,
the growth (target: < 50 MB), the packets handled and their outcomes. No timing is asserted.

    .venv/bin/python bench/soak.py [--count 10000] [--batch 128]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import random
import re
import sys
import tempfile
import threading
from collections import Counter
from functools import partial
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workload import SMALL, hub_settings, make_envelopes, make_pki

from hub import logs
from hub.app import build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.testing.fakebroker import FakeConnection

_CERT_RE = re.compile(rb"(<ds:X509Certificate>)")



def _same(conn: FakeConnection, _url: str, _name: str) -> FakeConnection:
    """The consumer's connector: always this fake connection."""
    return conn

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _self_signed(i: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"soak {i}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _with_extra_certificates(envelope: bytes, ders: list[bytes]) -> bytes:
    """``envelope`` whose KeyInfo carries ``ders`` before its own certificates (KeyInfo is not
    covered by the signature, so the document's signature still verifies)."""
    extra = b"".join(b"<ds:X509Certificate>" + base64.b64encode(d) + b"</ds:X509Certificate>"
                     for d in ders)
    return _CERT_RE.sub(lambda m: extra + m.group(1), envelope, count=1)


def workload(count: int, pki_dir: Path) -> tuple[list[bytes], object]:
    pki = make_pki(pki_dir)
    per_kind = count // 5 + 1
    valid = make_envelopes(pki, SMALL, per_kind * 4, tag="S")
    rng = random.Random(16)
    packets: list[bytes] = []
    for i in range(per_kind):
        base = valid[4 * i: 4 * i + 4]
        packets.append(base[0])
        packets.append(base[1].replace("Nội dung".encode(), b"Noi dung", 1))
        packets.append(_with_extra_certificates(base[2], [rng.randbytes(12_000)]))
        packets.append(_with_extra_certificates(base[3], [_self_signed(i)]))
        packets.append(rng.randbytes(2_000))
    return packets[:count], pki


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--count", type=int, default=10_000, help="packets to feed (default 10000)")
    parser.add_argument("--batch", type=int, default=128, help="packets per broker hand-over")
    args = parser.parse_args(argv)
    logs.configure("auto", "error")  # 10,000 refusals would otherwise be 10,000 log lines
    with tempfile.TemporaryDirectory(prefix="hub-soak-") as tmp:
        root = Path(tmp)
        packets, pki = workload(args.count, root / "pki")
        state = root / "state"
        state.mkdir()
        settings = hub_settings(pki, state, "amqp://soak:soak@127.0.0.1:1/", "soak",  # type: ignore[arg-type]
                                require_pdf=False)
        hub = build_hub(settings)
        outcomes: Counter[str] = Counter()
        start_rss = 0.0
        try:
            for at in range(0, len(packets), args.batch):
                chunk = packets[at: at + args.batch]
                stop = threading.Event()

                def stop_when_acked(c: FakeConnection, n: int = len(chunk),
                                    done: threading.Event = stop) -> None:
                    if len(c.channel.acked_tags()) >= n:
                        done.set()

                conn = FakeConnection(on_idle=stop_when_acked)
                for i, body in enumerate(chunk):
                    conn.put(body, message_id=f"soak-{at + i}", user_id="guest")
                consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake",
                                                        batch_max=args.batch),
                                          hub.pipeline, hub.ledger, stop=stop,
                                          connector=partial(_same, conn))
                consumer.run()
                outcomes.update(consumer.stats.by_outcome)
                if not start_rss and at + len(chunk) >= 512:
                    start_rss = rss_mb()  # after the warm-up: imports, caches, first batches
            end_rss = rss_mb()
        finally:
            hub.close()
    result = {
        "benchmark": "soak", "packets": len(packets), "batch": args.batch,
        "rss_after_warmup_mb": round(start_rss, 1), "rss_end_mb": round(end_rss, 1),
        "rss_growth_mb": round(end_rss - start_rss, 1), "rss_peak_mb": round(peak_mb(), 1),
        "target_growth_mb": 50, "met": end_rss - start_rss < 50,
        "outcomes": dict(sorted(outcomes.items())),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
