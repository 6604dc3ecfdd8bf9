"""Checkpoints verify against the operator's certificate history, chained to the operator CA
roots (issue 17 item 3, issue 16 L5): a rotation passes in one run; a checkpoint signed by a
self-made certificate, or by another organization's genuine certificate, is forged."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from hub.ledger import Ledger, chain
from hub.ledger.models import Checkpoint
from hub.ledger.verify import OperatorTrust
from tests.integration.ledger.ledger_samples import sample_batch
from tests.integration.ledger.operator_certs import (
    OPERATOR,
    Operator,
    from_signer,
    rotated,
    self_made,
)
from tests.pki_fixtures import GeneratedPki


def _open(url: str, operator: Operator) -> Ledger:
    return Ledger.open(url, checkpoint_every=8, checkpoint_signer=operator.sign,
                       checkpoint_cert_pem=operator.pem)


@pytest.fixture
def rotated_ledger(ledger_url: str, pki: GeneratedPki) -> tuple[str, Operator, Operator]:
    """Rows 1-20 checkpointed by the operator's first certificate, rows 21-40 by the one a
    rotation installed (a new key from the same CA): checkpoints at 10, 20, 30, 40."""
    old, new = from_signer(pki.org(OPERATOR)), rotated(pki)
    with _open(ledger_url, old) as ledger:
        ledger.write(*sample_batch(0, 2))
        ledger.write(*sample_batch(2, 2))
    with _open(ledger_url, new) as ledger:
        ledger.write(*sample_batch(4, 2))
        ledger.write(*sample_batch(6, 2))
    return ledger_url, old, new


def _trust(pki: GeneratedPki, **changes: object) -> OperatorTrust:
    base = OperatorTrust(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                         operator_id=OPERATOR)
    from dataclasses import replace

    return replace(base, **changes)  # type: ignore[arg-type]


def test_one_verify_run_passes_across_a_rotation(
    rotated_ledger: tuple[str, Operator, Operator], pki: GeneratedPki,
) -> None:
    url, old, new = rotated_ledger
    with Ledger.open(url, read_only=True) as ledger:
        result = ledger.verify(trust=_trust(pki), require_signed=True)
    assert result.ok, result.problem
    assert (result.checkpoints, result.signed_checkpoints) == (4, 4)
    assert result.signers == (old.fingerprint, new.fingerprint)
    assert result.signers_trusted


def test_the_rotation_passes_with_the_pinned_history_and_not_with_one_certificate(
    rotated_ledger: tuple[str, Operator, Operator],
) -> None:
    url, old, new = rotated_ledger
    with Ledger.open(url, read_only=True) as ledger:
        assert ledger.verify(trust=OperatorTrust(pinned=(old.cert, new.cert))).ok
        only_new = ledger.verify(trust=OperatorTrust(pinned=(new.cert,)))
    assert only_new.first_bad_row == 10
    assert "forged" in (only_new.problem or "")


def _re_sign(url: str, signer: Operator, seq: int) -> None:
    engine = Ledger.open(url).engine
    with engine.begin() as conn:
        at = conn.execute(select(Checkpoint.at).where(Checkpoint.seq == seq)).scalar_one()
        head = conn.execute(select(Checkpoint.head).where(Checkpoint.seq == seq)).scalar_one()
        payload = chain.checkpoint_payload(seq, head, chain.utc_text(at))
        conn.execute(text("UPDATE ledger_checkpoints SET signature=:s, cert_pem=:c WHERE seq=:q"),
                     {"s": signer.sign(payload), "c": signer.pem, "q": seq})
    engine.dispose()


def test_a_checkpoint_signed_by_a_self_made_certificate_is_forged(
    rotated_ledger: tuple[str, Operator, Operator], pki: GeneratedPki,
) -> None:
    # Given a checkpoint re-signed by an attacker whose certificate carries the operator's name
    url, _old, _new = rotated_ledger
    _re_sign(url, self_made(), 30)
    with Ledger.open(url, read_only=True) as ledger:
        result = ledger.verify(trust=_trust(pki))
        # Then verify names it as forged; trusting the stored certificate would be fooled
        assert result.first_bad_row == 30
        assert "forged" in (result.problem or "")
        assert "does not chain to the operator CA roots" in (result.problem or "")
        assert ledger.verify(trust=OperatorTrust(self_signed_ok=True)).ok


def test_a_checkpoint_signed_by_another_organizations_genuine_certificate_is_forged(
    rotated_ledger: tuple[str, Operator, Operator], pki: GeneratedPki,
) -> None:
    # Every agency's certificate chains to the same specialized roots: the UID decides
    url, _old, _new = rotated_ledger
    _re_sign(url, from_signer(pki.org("000.00.02.H27")), 20)
    with Ledger.open(url, read_only=True) as ledger:
        result = ledger.verify(trust=_trust(pki))
    assert result.first_bad_row == 20
    assert "names organization '000.00.02.H27'" in (result.problem or "")


def test_without_a_trust_anchor_signers_are_not_called_trusted(
    rotated_ledger: tuple[str, Operator, Operator],
) -> None:
    url, _old, _new = rotated_ledger
    with Ledger.open(url, read_only=True) as ledger:
        result = ledger.verify()
        assert result.ok
        assert not result.signers_trusted
        self_signed = ledger.verify(trust=OperatorTrust(self_signed_ok=True))
        assert self_signed.ok
        assert not self_signed.signers_trusted
