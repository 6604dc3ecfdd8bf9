"""A token that cannot sign the ledger's checkpoint holds the batch; the consumer keeps going
(review r11).

The ledger's checkpoint is signed with the operator's key inside the ledger transaction. When
the key is on a PKCS#11 token that cannot sign at that moment (pulled, its key gone), the
batch is held as while the ledger is down: nothing acknowledged, nothing recorded, retried with
backoff and logged with the token's own reason; once the token signs again the batch is
recorded and acknowledged once. Real SoftHSM2 token, real ledger (SQLite and PostgreSQL).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from hub.app import build_hub
from hub.config import with_overrides
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import NOW, hub_settings
from tests.softhsm import MODULE, Token, softhsm
from tests.unit.test_token_keys import OPERATOR, PIN, _key, _keystore_with_token


class _TokenBackOnWait(FakeConnection):
    """The consumer's backoff waits are where the token is put back (no real sleeping)."""

    def __init__(self, on_wait: Callable[[], None],
                 on_idle: Callable[[FakeConnection], None]) -> None:
        super().__init__(on_idle=on_idle)
        self.on_wait = on_wait
        self.waits: list[tuple[float, set[int]]] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append((seconds, self.channel.acked_tags()))
        if len(self.waits) == 2:
            self.on_wait()


def test_a_checkpoint_the_token_cannot_sign_holds_the_batch_until_it_can(
        pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with softhsm(tmp_path / "hsm") as hsm:
        token: Token = hsm.add_token("hub-operator", PIN, _key(pipeline_pki, OPERATOR),
                                     "operator-2025")
        hsm.ready()
        monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", PIN)
        # Given a hub whose operator key (receipts, checkpoints) is on the token and which
        # signs a checkpoint with every transaction
        settings = with_overrides(
            hub_settings(pipeline_pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "held",
                         ledger_url=ledger_url),
            hub={"keystore": str(_keystore_with_token(pipeline_pki, tmp_path, token))},
            ledger={"checkpoint_every": 1})
        hub = build_hub(settings, clock=lambda: NOW)
        try:
            # When the key is gone from the token (it was pulled; another one plugged in)
            with pkcs11.lib(MODULE).get_token(token_label=token.label).open(rw=True) as s:
                s.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                          label=token.key_label).destroy()
            before = hub.ledger.verify()

            def token_back() -> None:
                pem = tmp_path / "operator.pem"
                pem.write_bytes(_key(pipeline_pki, OPERATOR).private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
                subprocess.run(["softhsm2-util", "--import", str(pem), "--token", token.label,
                                "--label", token.key_label, "--id", "01", "--pin", PIN],
                               check=True, capture_output=True, timeout=30)
                pem.unlink()

            stop = threading.Event()
            conn = _TokenBackOnWait(
                token_back, on_idle=lambda c: stop.set() if c.channel.acked_tags() else None)
            # a packet refused without a receipt: the only signature its batch needs is the
            # ledger's checkpoint
            conn.put(b"not an envelope", message_id="m1", user_id="guest")
            consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"),
                                      hub.pipeline, hub.ledger, topology=hub.topology,
                                      stop=stop, connector=lambda _url, _name: conn)
            with capture_logs() as logs:
                consumer.run()  # returns: the consumer did not stop on the token
            # Then the batch was held (nothing acked, nothing recorded) while the token could
            # not sign, and recorded and acknowledged once when it could
            assert len(conn.waits) >= 2
            assert all(acked == set() for _seconds, acked in conn.waits)
            assert conn.channel.acked_tags() == {1}
            assert conn.channel.nacked == []
            held = [e for e in logs if e["event"] == "signing_token_unavailable"]
            assert len(held) == len(conn.waits)
            assert f"no private key labelled {token.key_label!r}" in held[0]["detail"]
            after = hub.ledger.verify()
            assert after.ok
            assert after.signed_checkpoints == before.signed_checkpoints + 1
            assert after.rows > before.rows
        finally:
            hub.close()
