"""A hub whose receipts are signed by its signer process, against the real broker (issue 23).

The consumer runs as ``hub run`` builds it (``[hub] signer_processes = 1``, the default); the
signer process is a real spawned process, killed with SIGKILL while it holds a batch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hub.config import with_overrides
from hub.messages import Headers
from hub.ops.receipt_verify import verify_receipt
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from hub.trust.signer_pool import SignerPool
from tests.integration.pipeline.harness import (
    FINANCE,
    NOW,
    PROVINCE,
    hub_settings,
    running_hub,
    signed_envelope,
)

pytestmark = pytest.mark.broker
N = 24


def _xmlsec1_verifies(pki: PkiPaths, data: bytes, tmp: Path) -> bool:
    exe = shutil.which("xmlsec1")
    assert exe is not None, "xmlsec1 (Debian package xmlsec1) is required"
    f = tmp / "receipt.xml"
    f.write_bytes(data)
    proc = subprocess.run([exe, "--verify", "--verification-gmt-time",
                           NOW.strftime("%Y-%m-%d %H:%M:%S"), "--trusted-pem", str(pki.root_cert),
                           "--untrusted-pem", str(pki.issuing_ca_cert), str(f)],
                          capture_output=True, check=False, timeout=30)
    return proc.returncode == 0


def test_a_signer_process_killed_with_a_batch_in_hand_loses_and_doubles_nothing(
    pipeline_pki: PkiPaths, broker_url: str, names: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a running hub whose signer process is killed (SIGKILL) holding the first batch it
    # is given (stopped first, so that it can never have answered)
    killed: list[int] = []
    submit = SignerPool.submit

    def submit_then_kill(self: SignerPool, requests: Sequence[tuple[str, bytes]]) -> Any:
        if killed:
            return submit(self, requests)
        pid = self.pids[0]
        os.kill(pid, signal.SIGSTOP)
        ticket = submit(self, requests)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        return ticket

    monkeypatch.setattr(SignerPool, "submit", submit_then_kill)
    keystore = Keystore.load(pipeline_pki.keystore)
    # One signer process: what the default ("auto") gives on a host with a core to spare
    settings = with_overrides(hub_settings(pipeline_pki, tmp_path, broker_url, names),
                              hub={"signer_processes": 1})
    envelopes = [signed_envelope(keystore, PROVINCE, (FINANCE,), number=f"7{i:02d}")
                 for i in range(N)]
    with running_hub(settings) as hub:
        # When envelopes arrive
        for env in envelopes:
            hub.client(PROVINCE).send(env)
        hub.wait_acked(N, timeout=90)
        # Then the signer was killed once and restarted, and the batch it held signed again
        assert len(killed) == 1
        assert hub.consumer.stats.signer_restarts == 1
        # And the recipient's queue holds every document exactly once
        delivered = hub.drain(hub.names.inbox(FINANCE))
        assert sorted(d.body for d in delivered) == sorted(envelopes)
        # And the sender's queue every receipt exactly once: the hub's "accepted" and the hosted
        # recipient's "01", each verifying (the hub's verifier and xmlsec1) and bound to its
        # envelope
        receipts = hub.drain(hub.names.status(PROVINCE))
        ids = [r.message_id for r in receipts]
        assert len(ids) == len(set(ids)) == 2 * N
        kinds = sorted(str(r.headers[Headers.RECEIPT]) for r in receipts)
        assert kinds == ["accepted"] * N + ["received"] * N
        sent = {hashlib.sha256(env).hexdigest(): env for env in envelopes}
        for receipt in receipts:
            about = sent[str(receipt.headers[Headers.ORIGINAL])]
            ok, lines = verify_receipt(settings, receipt.body, about, at=NOW)
            assert ok, lines
        assert all(_xmlsec1_verifies(pipeline_pki, r.body, tmp_path) for r in receipts[:4])
        # And the ledger holds each envelope once, its chain intact
        assert len(hub.hub.ledger.documents(kind="envelope")) == N
        assert hub.hub.ledger.verify().ok
        assert hub.drain(hub.names.dlq) == []
