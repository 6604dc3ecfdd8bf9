"""A token that fails while the loop signs a receipt leaves nothing of that delivery planned.

With the operator's key on a PKCS#11 token and receipts signed in the consumer's loop (one
process, one core), the envelope is routed and recorded before its ``accepted`` receipt is
signed. When that signature fails (TokenUnavailable: the token pulled, its session gone), the
delivery must be retried as if it had never been planned: no copy to the recipient, no
``routed`` or ``delivered`` row beside the ``retry_scheduled`` one. Else the retry finds it
delivered, calls it a duplicate, and the sender's ``accepted`` receipt is never issued.
Real SoftHSM2 token, real keys, the hub's own objects in process (no broker).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import app as app_module
from hub.app import Hub, build_hub
from hub.config import with_overrides
from hub.messages import Delivery, Headers
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    NOW,
    PROVINCE,
    hub_settings,
    make_pki,
    signed_envelope,
)
from tests.softhsm import Token, softhsm
from tests.unit.test_token_keys import OPERATOR, PIN, _key, _keystore_with_token


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("token-mid-plan-pki"))


@pytest.fixture
def inline_hub(pki: PkiPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    with softhsm(tmp_path / "hsm") as hsm:
        token: Token = hsm.add_token("hub-operator", PIN, _key(pki, OPERATOR), "operator-2025")
        hsm.ready()
        monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", PIN)
        monkeypatch.setattr(app_module, "usable_cores", lambda: 1)
        settings = with_overrides(
            hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "midplan"),
            hub={"keystore": str(_keystore_with_token(pki, tmp_path, token)),
                 "signer_processes": 0})
        hub = build_hub(settings, clock=lambda: NOW)
        try:
            assert hub.receipt_signing() is None  # the loop signs while it plans
            yield hub
        finally:
            hub.close()


def _delivery(body: bytes, tag: int, attempts: int = 0) -> Delivery:
    headers = {Headers.ATTEMPTS: attempts} if attempts else {}
    return Delivery(tag, body, ENVELOPE_KEY, "inbound", bool(attempts), headers, "m-555",
                    "guest", None, 0)


def _token_fails(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's token session is gone and the token no longer opens (its PIN refused)."""
    signer = hub.keystore.signer(OPERATOR)
    assert signer is not None
    signer.key._session.close()  # type: ignore[attr-defined]
    monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", "000000")


def test_a_receipt_the_token_cannot_sign_leaves_the_envelope_unrouted_and_retried(
    inline_hub: Hub, pki: PkiPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = Keystore.load(pki.keystore)
    body = signed_envelope(files, PROVINCE, (FINANCE,), number="555")
    # Given the operator's token failing while the loop plans an envelope to Finance
    _token_fails(inline_hub, monkeypatch)
    plan = inline_hub.pipeline.process_batch([_delivery(body, 1)])
    # Then nothing goes to Finance and no row says it was routed or delivered: only a retry
    assert [o.routing_key for o in plan.first if "inbox" in o.routing_key] == []
    assert {e.kind.value for e in plan.events} & {"routed", "delivered", "validated"} == set()
    assert "retry_scheduled" in {e.kind.value for e in plan.events}
    assert [d.kind for d in plan.documents] == []
    assert plan.receipts == []
    # And when the retry comes back with the token working (the first plan's rows recorded,
    # which sign a checkpoint with the token too), it is delivered and the sender gets its
    # accepted receipt
    monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", PIN)
    inline_hub.write_ledger(plan)
    again = inline_hub.pipeline.process_batch([_delivery(body, 2, attempts=1)])
    assert [o.routing_key for o in again.first if "inbox" in o.routing_key] == [
        f"inbox.{FINANCE}"]
    assert "duplicate" not in {e.kind.value for e in again.events}
    assert [r.kind for r in again.outbox if r.kind == "accepted"] == ["accepted"]
