"""No receipt signature and no checkpoint signature leaves the hub unchecked (review r7).

Receipts signed in the consumer's loop (:func:`hub.trust.signing.sign_presigned`) and the
ledger's checkpoint signatures (:func:`hub.app.open_ledger`) are verified under the
certificate the hub attaches or stores beside them before they are used; one that does not
verify is a transient failure (the batch is held and done again), never published nor stored.
A signer whose key is not its certificate's stands for a key that changed under the hub (a
token key replaced): real keys, real RSA.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.app import open_ledger
from hub.config import with_overrides
from hub.errors import TransientError
from hub.ledger.records import EventIn, EventKind
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import presign, sign_presigned
from hub.trust.token import TokenUnavailable
from tests.integration.pipeline.harness import FINANCE, OFFICE, hub_settings, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("checked-pki"))


def _operator(pki: PkiPaths) -> OrgSigner:
    signer = Keystore.load(pki.keystore).signer(OFFICE)
    assert signer is not None
    return signer


def _key_changed(pki: PkiPaths) -> OrgSigner:
    """The operator's certificate over another organization's key."""
    operator, other = _operator(pki), Keystore.load(pki.keystore)[FINANCE]
    return OrgSigner(OFFICE, other.key, operator.cert, operator.chain)


def test_a_receipt_signed_in_the_loop_is_verified_under_its_certificate(pki: PkiPaths) -> None:
    good = _operator(pki)
    assert sign_presigned(presign(b"<a>", b"</a>", b"<a></a>", good), good).startswith(b"<a>")
    bad = _key_changed(pki)
    with pytest.raises(TokenUnavailable) as err:
        sign_presigned(presign(b"<a>", b"</a>", b"<a></a>", bad), bad)
    assert isinstance(err.value, TransientError)
    assert "does not verify under its certificate" in err.value.detail


def test_a_checkpoint_signature_that_does_not_verify_is_never_stored(
        pki: PkiPaths, tmp_path: Path) -> None:
    settings = with_overrides(
        hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "checked"),
        ledger={"checkpoint_every": 1})
    event = EventIn(kind=EventKind.RECEIVED, message_id="m1", at=datetime.now(UTC),
                    digest="ab" * 32, organ_id=OFFICE)
    ledger = open_ledger(settings, _key_changed(pki))
    try:
        # the checkpoint is signed inside the write's transaction: refused whole
        with pytest.raises(TokenUnavailable):
            ledger.write([], [event])
        assert ledger.verify().rows == 0
    finally:
        ledger.close()
    ledger = open_ledger(settings, _operator(pki))
    try:
        ledger.write([], [event])
        verdict = ledger.verify()
        assert verdict.ok
        assert (verdict.rows, verdict.signed_checkpoints) == (1, 1)
    finally:
        ledger.close()

