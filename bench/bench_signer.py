"""What a receipt signature costs: a key file or a PKCS#11 token, in the consumer or in a signer
process (issue 23).

    python bench/bench_signer.py [--n 1024] [--batch 128]

Prints one JSON object: milliseconds per RSA-2048 signature over a receipt's SignedInfo with the
key loaded from a file and with the key on a SoftHSM2 token (the token signs, the key never
leaves it), both in this process and through a :class:`~hub.trust.signer_pool.SignerPool`
worker fed ``--batch`` signatures per message (the round trip the consumer waits for when
nothing else overlaps it). Needs ``softhsm2-util`` and python-pkcs11 for the token figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub import logs
from hub.directory import Directory
from hub.testing.pki import KeyCache, init_pki
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signer_pool import SignerPool, SignerSpec
from hub.trust.signing import sign_bytes, signed_info_c14n

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
OPERATOR = "000.00.01.H27"
PIN = "135790"


def per_signature(fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def through_pool(keystore: Path, signer: OrgSigner, digest: bytes, n: int, batch: int
                 ) -> float:
    pool = SignerPool(SignerSpec(keystore=str(keystore), passphrase_env="HUB_BENCH_NONE"), 1,
                      expected={k: s.fingerprint for k, s in Keystore.load(keystore).items()},
                      timeout_s=600)
    pool.start()
    try:
        requests = [(signer.organ_id, digest)] * batch
        pool.collect([pool.submit(requests)])
        start = time.perf_counter()
        rounds = max(1, n // batch)
        for _ in range(rounds):
            values = pool.collect([pool.submit(requests)])
        assert values[0] == sign_bytes(signer, signed_info_c14n(digest))
        return (time.perf_counter() - start) / (rounds * batch) * 1000
    finally:
        pool.close()


def token_keystore(base: Path, pki_keystore: Path) -> Path | None:
    """A keystore whose operator key is on a fresh SoftHSM2 token, or None without SoftHSM2."""
    if shutil.which("softhsm2-util") is None or not Path(MODULE).is_file():
        return None
    tokens = base / "tokens"
    tokens.mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for args in (["--init-token", "--free", "--label", "bench", "--so-pin", "12345678",
                  "--pin", PIN],
                 ["--import", str(pki_keystore / f"{OPERATOR}.key.pem"), "--token", "bench",
                  "--label", "operator", "--id", "01", "--pin", PIN]):
        subprocess.run(["softhsm2-util", *args], check=True, capture_output=True, timeout=60)
    keystore = base / "keystore"
    keystore.mkdir()
    shutil.copyfile(pki_keystore / f"{OPERATOR}.pem", keystore / f"{OPERATOR}.pem")
    (keystore / f"{OPERATOR}.pkcs11.toml").write_text(
        f'module = "{MODULE}"\ntoken_label = "bench"\nkey_label = "operator"\n'
        'pin_env = "HUB_BENCH_TOKEN_PIN"\n')
    os.environ["HUB_BENCH_TOKEN_PIN"] = PIN
    return keystore


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    logs.configure("json", "warning")  # stdout carries the JSON only
    out: dict[str, Any] = {"n": args.n, "batch": args.batch,
                           "load_average_at_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="hub-bench-signer-") as tmp:
        base = Path(tmp)
        pki = init_pki(base / "pki", Directory.sample(), keys=KeyCache())
        files = base / "files"
        files.mkdir()
        for name in (f"{OPERATOR}.key.pem", f"{OPERATOR}.pem"):
            shutil.copyfile(pki.keystore / name, files / name)
        signer = Keystore.load(files)[OPERATOR]
        digest = bytes(range(32))
        data = signed_info_c14n(digest)  # what a receipt's signature is over
        out["file_key_in_process_ms"] = round(
            per_signature(lambda: sign_bytes(signer, data), args.n), 4)
        out["file_key_signer_process_ms"] = round(
            through_pool(files, signer, digest, args.n, args.batch), 4)
        on_token = token_keystore(base / "hsm", pki.keystore)
        if on_token is not None:
            token_signer = Keystore.load(on_token)[OPERATOR]
            out["token_key_in_process_ms"] = round(
                per_signature(lambda: sign_bytes(token_signer, data), args.n), 4)
            token_signer.close()
            out["token_key_signer_process_ms"] = round(
                through_pool(on_token, signer, digest, args.n, args.batch), 4)
            out["token"] = "SoftHSM2 (software token: a USB token signs far slower)"
    out["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
