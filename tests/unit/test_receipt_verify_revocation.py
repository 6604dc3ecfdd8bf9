"""``hub receipt verify`` does not let a receipt's own date hide a compromised key.

Found by a review: the check judged the signing certificate at the receipt's ``Timestamp`` —
a value its signer writes. Once the hub operator's key was revoked for key compromise, whoever
held the key minted an "accepted" receipt dated before the revocation, and ``hub receipt
verify`` said valid (exit 0). Now a revocation whose reason puts every signature of the key in
doubt (RFC 5280 §5.3.1: keyCompromise, cACompromise, aACompromise, unspecified or no reason,
a certificateHold in force) counts whatever date the receipt claims; a revocation that says
nothing against the key (superseded, cessationOfOperation, affiliationChanged,
privilegeWithdrawn) counts from its date, so the genuine receipts signed before it stay valid.
An auditor who knows when a receipt existed (the ledger's record of it) passes that time, and
everything is judged at it.

Real test PKI, real CRLs signed by the issuing CA, no broker.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.config import Settings, with_overrides
from hub.edxml import parse_envelope
from hub.ops.cli import EXIT_FAILURE, EXIT_OK, main
from hub.ops.receipt_verify import verify_receipt
from hub.receipts import HubReceipts
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    OFFICE,
    hub_settings,
    make_pki,
    settings_toml,
    signed_envelope,
)

REVOKED_AT = NOW + dt.timedelta(days=10)
"""When the signing certificate is revoked: ten days after the receipts are dated."""
CHECKED_AT = REVOKED_AT + dt.timedelta(days=1)
"""When the auditor checks (the CRLs are fresh then)."""
Flag = x509.ReasonFlags


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("receipt-revocation-pki"))


@pytest.fixture(scope="module")
def letter(pki: PkiPaths) -> bytes:
    return signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,), number="71")


@pytest.fixture(scope="module")
def accepted(pki: PkiPaths, letter: bytes) -> bytes:
    """The hub's genuine "accepted" receipt, dated :data:`NOW` and signed as the operator."""
    issued = HubReceipts(Keystore.load(pki.keystore), OFFICE).accepted(parse_envelope(letter), NOW)
    assert issued is not None
    return issued[1]


def _revoking(pki: PkiPaths, tmp_path: Path, reason: Flag | None, *,
              revoked_at: dt.datetime = REVOKED_AT, organization: str = OFFICE) -> Settings:
    """Settings whose issuing-CA CRL (published at ``revoked_at``) lists the organization's
    certificate, revoked at ``revoked_at`` for ``reason`` (None: no reasonCode)."""
    ca_cert = x509.load_pem_x509_certificate(pki.issuing_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.issuing_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    cert = x509.load_pem_x509_certificate(pki.organizations[organization].cert.read_bytes())
    entry = (x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
             .revocation_date(revoked_at))
    if reason is not None:
        entry = entry.add_extension(x509.CRLReason(reason), critical=False)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
           .last_update(revoked_at).next_update(revoked_at + dt.timedelta(days=7))
           .add_extension(x509.CRLNumber(2), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                          critical=False)
           .add_revoked_certificate(entry.build())
           .sign(ca_key, hashes.SHA256()))
    crl_file = tmp_path / "issuing-ca-after-revocation.crl"
    crl_file.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    settings = hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "revoked")
    return with_overrides(settings, trust={"crls": [str(crl_file), str(pki.root_crl_der)]})


@pytest.mark.parametrize("reason", [
    pytest.param(Flag.key_compromise, id="keyCompromise"),
    pytest.param(Flag.ca_compromise, id="cACompromise"),
    pytest.param(Flag.aa_compromise, id="aACompromise"),
    pytest.param(Flag.unspecified, id="unspecified"),
    pytest.param(None, id="no reason code"),
    pytest.param(Flag.certificate_hold, id="certificateHold"),
])
def test_a_receipt_signed_with_a_key_revoked_for_compromise_is_not_valid_whatever_its_date(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes, reason: Flag | None,
) -> None:
    # Given the operator's certificate revoked ten days after the receipt's own date, for a
    # reason that puts the key's every signature in doubt
    settings = _revoking(pki, tmp_path, reason)
    # When the receipt is checked without a time of the auditor's
    ok, lines = verify_receipt(settings, accepted, letter, now=CHECKED_AT)
    # Then it is not valid: its Timestamp is its signer's word, and the signer's key is in doubt
    assert not ok, lines
    assert lines[0].startswith("signature: NOT valid: CERT_REVOKED"), lines
    assert f"revoked {REVOKED_AT.isoformat()}" in lines[0]
    assert (reason.name if reason is not None else "no reason code") in lines[0]


@pytest.mark.parametrize("reason", [
    pytest.param(Flag.superseded, id="superseded"),
    pytest.param(Flag.cessation_of_operation, id="cessationOfOperation"),
    pytest.param(Flag.affiliation_changed, id="affiliationChanged"),
    pytest.param(Flag.privilege_withdrawn, id="privilegeWithdrawn"),
])
def test_a_receipt_signed_before_a_revocation_that_says_nothing_against_the_key_stays_valid(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes, reason: Flag,
) -> None:
    # Given the operator's certificate revoked after the receipt's date, the key not in doubt
    settings = _revoking(pki, tmp_path, reason)
    # When the receipt is checked
    ok, lines = verify_receipt(settings, accepted, letter, now=CHECKED_AT)
    # Then it is valid: made before the revocation, by a key nobody else held
    assert ok, lines
    assert lines[0].startswith("signature: valid")


def test_a_receipt_dated_after_any_revocation_is_not_valid(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes,
) -> None:
    # Given the operator's certificate revoked (superseded) before the receipt's date
    settings = _revoking(pki, tmp_path, Flag.superseded, revoked_at=NOW - dt.timedelta(minutes=1))
    # When the receipt is checked
    ok, lines = verify_receipt(settings, accepted, letter, now=CHECKED_AT)
    # Then it is not valid
    assert not ok
    assert lines[0].startswith("signature: NOT valid: CERT_REVOKED"), lines


def test_an_auditors_proof_of_existence_before_a_compromise_keeps_the_receipt_valid(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes,
) -> None:
    # Given the operator's key revoked for compromise after the receipt's date
    settings = _revoking(pki, tmp_path, Flag.key_compromise)
    # When an auditor who knows the receipt existed at NOW (the ledger's record) checks at NOW
    ok, lines = verify_receipt(settings, accepted, letter, at=NOW, now=CHECKED_AT)
    # Then everything is judged at that time: the receipt was made before the compromise
    assert ok, lines
    # and at a time after the revocation it is not valid
    ok, lines = verify_receipt(settings, accepted, letter, at=CHECKED_AT, now=CHECKED_AT)
    assert not ok


def test_a_hold_no_fresh_crl_shows_any_more_does_not_count_against_an_earlier_receipt(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes,
) -> None:
    # Given a certificateHold on a CRL long past its nextUpdate (the hold may have been lifted)
    settings = _revoking(pki, tmp_path, Flag.certificate_hold)
    # When the receipt, dated before the hold, is checked a year later
    ok, lines = verify_receipt(settings, accepted, letter, now=CHECKED_AT + dt.timedelta(days=365))
    # Then the stale hold does not count
    assert ok, lines


def test_a_received_receipt_signed_with_a_compromised_recipient_key_is_not_valid(
    pki: PkiPaths, tmp_path: Path, letter: bytes,
) -> None:
    # Given Finance's "01 đã đến", and then Finance's key revoked for compromise
    received = HubReceipts(Keystore.load(pki.keystore), OFFICE).received(
        parse_envelope(letter), FINANCE, NOW)
    assert received is not None
    settings = _revoking(pki, tmp_path, Flag.key_compromise, organization=FINANCE)
    # When it is checked, Then it is not valid
    ok, lines = verify_receipt(settings, received, letter, now=CHECKED_AT)
    assert not ok
    assert "key_compromise" in lines[0]


def test_the_auditors_command_refuses_a_receipt_backdated_with_a_compromised_key(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes,
) -> None:
    # Given the operator's key revoked for compromise (a CRL fresh now: the auditor's clock)
    now = dt.datetime.now(dt.UTC)
    settings = _revoking(pki, tmp_path, Flag.key_compromise, revoked_at=now - dt.timedelta(days=1))
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    (tmp_path / "receipt.xml").write_bytes(accepted)
    (tmp_path / "letter.xml").write_bytes(letter)
    # When the auditor runs hub receipt verify on a receipt dated long before the revocation
    code = main(["--config", str(config), "receipt", "verify", str(tmp_path / "receipt.xml"),
                 "--envelope", str(tmp_path / "letter.xml")])
    # Then it fails
    assert code == EXIT_FAILURE
    # and with a revocation for superseded it passes
    settings = _revoking(pki, tmp_path, Flag.superseded, revoked_at=now - dt.timedelta(days=1))
    config.write_text(settings_toml(settings), encoding="utf-8")
    assert main(["--config", str(config), "receipt", "verify", str(tmp_path / "receipt.xml"),
                 "--envelope", str(tmp_path / "letter.xml")]) == EXIT_OK


def test_the_auditors_command_takes_a_proof_of_existence_with_at(
    pki: PkiPaths, tmp_path: Path, letter: bytes, accepted: bytes,
) -> None:
    # Given the operator's key revoked for compromise a day ago (a CRL fresh now)
    now = dt.datetime.now(dt.UTC)
    settings = _revoking(pki, tmp_path, Flag.key_compromise, revoked_at=now - dt.timedelta(days=1))
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    (tmp_path / "receipt.xml").write_bytes(accepted)
    (tmp_path / "letter.xml").write_bytes(letter)

    def verify(*extra: str) -> int:
        return main(["--config", str(config), "receipt", "verify", str(tmp_path / "receipt.xml"),
                     "--envelope", str(tmp_path / "letter.xml"), *extra])

    # When the auditor shows the receipt existed at its date (the ledger recorded it then)
    # Then it is judged at that time, before the compromise: valid
    assert verify("--at", NOW.isoformat()) == EXIT_OK
    # and a proof dated after the revocation proves nothing for it
    assert verify("--at", now.isoformat()) == EXIT_FAILURE
