"""``hub api serve`` killed between fetch and acknowledge: the document is offered again.

The API holds what it shows unacknowledged on its own broker connection; when the process dies,
RabbitMQ requeues it and the next API process offers it again. The agency's acknowledgement is
what settles a document, never the fetch.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.config import Settings
from hub.testing.pki import PkiPaths
from hub.testing.ports import free_port
from hub.trust.keystore import Keystore
from tests.integration.api.conftest import SYSTEMS, api_settings, register_systems
from tests.integration.pipeline.harness import (
    FINANCE,
    PROVINCE,
    running_hub,
    settings_toml,
    signed_envelope,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def _config(settings: Settings, tmp: Path, port: int) -> Path:
    api = settings.api
    path = tmp / "hub.toml"
    path.write_text(settings_toml(settings) + "[api]\n"
                    f"port = {port}\ncredentials_file = \"{api.credentials_file}\"\n"
                    f"state_dir = \"{api.state_dir}\"\nverdict_wait_s = 20\n", encoding="utf-8")
    return path


@contextmanager
def api_process(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``hub api serve`` as a process, ready when it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "hub", "--config", str(config), "api", "serve"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "HUB_DEBUG": ""})
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            try:
                proc.wait(timeout=0.1)  # wait on the process: it must not have died
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"hub api serve exited: {proc.stderr.read().decode()[-2000:]}"
                                 if proc.stderr else "hub api serve exited")
        else:
            raise AssertionError("hub api serve did not answer in 30 s")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _client(port: int, secrets: dict[str, str], org: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0,
                        headers={"X-System-Id": SYSTEMS[org], "X-System-Secret": secrets[org]})


def test_a_document_fetched_but_not_acknowledged_is_offered_again_after_the_api_is_killed(
    api_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, tmp_path: Path
) -> None:
    settings = api_settings(api_pki, tmp_path, broker_url, names)
    secrets = register_systems(settings)
    port = free_port()
    config = _config(settings, tmp_path, port)
    envelope = signed_envelope(keystore, PROVINCE, (FINANCE,), number="1821")
    digest = hashlib.sha256(envelope).hexdigest()
    with running_hub(settings) as hub:
        with api_process(config, port) as first:
            with _client(port, secrets, PROVINCE) as province:
                sent = province.post("/api/v1/edocs", content=envelope,
                                     headers={"Content-Type": "application/xml"})
                assert sent.status_code == 200, sent.text
            with _client(port, secrets, FINANCE) as finance:
                items = finance.get("/api/v1/edocs").json()["items"]
                assert [(i["docId"], i["redelivered"]) for i in items] == [(digest, False)]
                assert finance.get(f"/api/v1/edocs/{digest}/content").content == envelope
            # The API dies between the agency's fetch and its acknowledgement
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=20)

        with api_process(config, port), _client(port, secrets, FINANCE) as finance:
            items = finance.get("/api/v1/edocs").json()["items"]
            assert [(i["docId"], i["redelivered"], i["state"]) for i in items] == [
                (digest, True, "new")]
            assert finance.get(f"/api/v1/edocs/{digest}/content").content == envelope
            assert finance.post(f"/api/v1/edocs/{digest}/ack").json()["acknowledged"] == [digest]

        # Settled now: a third API process offers nothing, and the queue is empty
        with api_process(config, port), _client(port, secrets, FINANCE) as finance:
            assert finance.get("/api/v1/edocs", params={"messageType": "edoc"}).json()[
                "items"] == []
        assert hub.drain(hub.names.inbox(FINANCE)) == []


def test_a_copy_of_an_acknowledged_document_is_dropped_for_the_agency(
    api_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, tmp_path: Path
) -> None:
    """Receiver-side dedup done by the API: the hub may republish a document under the same
    message id (a crash between its confirm and its ledger commit); the agency never sees the
    copy, even from a restarted API process (the acknowledged ids are kept on disk)."""
    from hub.broker import Outgoing, connect

    settings = api_settings(api_pki, tmp_path, broker_url, names)
    secrets = register_systems(settings)
    port = free_port()
    config = _config(settings, tmp_path, port)
    envelope = signed_envelope(keystore, PROVINCE, (FINANCE,), number="1822")
    digest = hashlib.sha256(envelope).hexdigest()
    with running_hub(settings) as hub:
        with api_process(config, port), _client(port, secrets, PROVINCE) as province, \
                _client(port, secrets, FINANCE) as finance:
            assert province.post("/api/v1/edocs", content=envelope).status_code == 200
            assert finance.post(f"/api/v1/edocs/{digest}/ack").json()["acknowledged"] == [digest]
        # The hub republishes the delivery as it would after a crash (same message id)
        conn = connect(hub.url, "republish")
        conn.publish([Outgoing(hub.names.deliver, f"inbox.{FINANCE}", envelope,
                               {"x-hub-digest": digest}, message_id=f"{digest}:{FINANCE}")])
        conn.close()
        with api_process(config, port), _client(port, secrets, FINANCE) as finance:
            listed: Any = finance.get("/api/v1/edocs", params={"messageType": "edoc"}).json()
            assert listed["items"] == []
        assert hub.drain(hub.names.inbox(FINANCE)) == []  # the copy was settled, not left
