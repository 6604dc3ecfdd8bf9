"""A token key signs only as the key proven at start-up, says why when it cannot, and is told
apart from a configuration mistake (review r7, r4, r11).

The operator's key on a PKCS#11 token is proven against its certificate when the hub starts.
After a lost session the key is found again by its label: whatever key then bears the label
must be the same key, or nothing is signed with it. A key the token will not sign with is a
configuration error (exit 3) named in one line; a token that is simply not there at start-up
is transient (exit 4), so the service manager starts the hub again once it is back.
Real SoftHSM2 tokens, real keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hub.app import load_keystore, open_ledger
from hub.config import with_overrides
from hub.edxml import build_envelope, parse_envelope, sample_header
from hub.errors import ConfigurationError, TransientError
from hub.ledger.records import EventIn, EventKind
from hub.ops.cli import EXIT_CONFIG, EXIT_UNAVAILABLE
from hub.ops.cli import main as hub_main
from hub.receipts import HubReceipts
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signing import sign_xml, signature_verifies
from hub.trust.token import TokenKey, TokenKeySpec, TokenUnavailable
from tests.integration.pipeline.harness import FINANCE, HOME_AFFAIRS, hub_settings, make_pki
from tests.softhsm import MODULE, SoftHsm, Token, softhsm
from tests.unit.test_token_keys import OPERATOR, PIN, _key, _keystore_with_token

PIN_ENV = "HUB_TEST_OPERATOR_PIN"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("token-proof-pki"))


@pytest.fixture
def hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    monkeypatch.setenv(PIN_ENV, PIN)
    with softhsm(tmp_path / "hsm") as made:
        yield made


@pytest.fixture
def operator_token(hsm: SoftHsm, pki: PkiPaths) -> Token:
    token = hsm.add_token("hub-operator", PIN, _key(pki, OPERATOR), "operator-2025")
    hsm.ready()
    return token


def _spec(token: Token) -> TokenKeySpec:
    return TokenKeySpec(module=MODULE, token_label=token.label, key_label=token.key_label,
                        pin_env=PIN_ENV)


def _on_token(pki: PkiPaths, token: Token) -> OrgSigner:
    return OrgSigner.from_token(OPERATOR, TokenKeySpec(
        module=MODULE, token_label=token.label, key_label=token.key_label, pin_env=PIN_ENV,
        cert=str(pki.organizations[OPERATOR].cert)))


def _put_key(token: Token, key: rsa.RSAPrivateKey, *, sign: bool = True,
             always_authenticate: bool = False) -> None:
    """Replace whatever private key bears the token key's label by ``key`` (from a session of
    its own, as an operator's tool or another token plugged in would)."""
    import pkcs11
    from pkcs11.util.rsa import decode_rsa_private_key

    der = key.private_bytes(serialization.Encoding.DER,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    with _session(token) as session:
        for old in session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                                        pkcs11.Attribute.LABEL: token.key_label}):
            old.destroy()
        attributes = decode_rsa_private_key(der)
        attributes.update({pkcs11.Attribute.LABEL: token.key_label, pkcs11.Attribute.TOKEN: True,
                           pkcs11.Attribute.SIGN: sign, pkcs11.Attribute.PRIVATE: True,
                           pkcs11.Attribute.SENSITIVE: True,
                           pkcs11.Attribute.ALWAYS_AUTHENTICATE: always_authenticate})
        session.create_object(attributes)


@contextmanager
def _session(token: Token) -> Iterator[Any]:
    """A read-write session of the test's own; this process may already be logged in to the
    token (the hub's session), and a new session then shares that login."""
    import pkcs11

    on = pkcs11.lib(MODULE).get_token(token_label=token.label)
    try:
        session = on.open(rw=True, user_pin=token.pin)
    except pkcs11.UserAlreadyLoggedIn:
        session = on.open(rw=True)
    with session:
        yield session


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


# -- r7: a key swapped under the label -------------------------------------------------------

def test_a_key_swapped_under_the_token_label_is_never_used_to_sign(
        pki: PkiPaths, operator_token: Token) -> None:
    signer = _on_token(pki, operator_token)
    public = signer.cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert signature_verifies(public, _sign(signer.key, b"before"), b"before")
    # When another key is put on the token under the same label
    _put_key(operator_token, _key(pki, FINANCE))
    # Then the token key refuses to sign with it (transient: the batch is held), and says why
    with pytest.raises(TokenUnavailable) as err:
        _sign(signer.key, b"after")
    assert isinstance(err.value, TransientError)
    assert "not the key proven at start-up" in err.value.detail
    assert "\n" not in str(err.value)
    # And once the proven key is back under the label, it signs again
    _put_key(operator_token, _key(pki, OPERATOR))
    assert signature_verifies(public, _sign(signer.key, b"back"), b"back")


def test_an_inline_receipt_is_never_signed_by_a_key_swapped_on_the_token(
        pki: PkiPaths, operator_token: Token) -> None:
    files = Keystore.load(pki.keystore)
    envelope = parse_envelope(sign_xml(build_envelope(sample_header(HOME_AFFAIRS, FINANCE)),
                                       files[HOME_AFFAIRS]))
    receipts = HubReceipts(Keystore({OPERATOR: _on_token(pki, operator_token)}), OPERATOR)
    assert receipts.accepted(envelope, datetime.now(UTC)) is not None
    _put_key(operator_token, _key(pki, FINANCE))
    # the receipt signed in the consumer's loop (sign_presigned): no receipt that does not verify
    with pytest.raises(TokenUnavailable):
        receipts.accepted(envelope, datetime.now(UTC))


def test_a_ledger_checkpoint_is_never_signed_by_a_key_swapped_on_the_token(
        pki: PkiPaths, operator_token: Token, tmp_path: Path) -> None:
    settings = with_overrides(hub_settings(pki, tmp_path, "amqp://x@127.0.0.1:1/", "proof"),
                              ledger={"checkpoint_every": 1})
    ledger = open_ledger(settings, _on_token(pki, operator_token))
    try:
        ledger.write([], [_event("m1")])
        _put_key(operator_token, _key(pki, FINANCE))
        # the write signs its checkpoint in its transaction: refused whole, nothing recorded
        with pytest.raises(TokenUnavailable):
            ledger.write([], [_event("m2")])
        verdict = ledger.verify()
        assert verdict.ok
        assert (verdict.rows, verdict.signed_checkpoints) == (1, 1)
    finally:
        ledger.close()


def _event(message_id: str) -> EventIn:
    return EventIn(kind=EventKind.RECEIVED, message_id=message_id, at=datetime.now(UTC),
                   digest="ab" * 32, organ_id=OPERATOR)


# -- r11: why, in one line; absent at start-up is transient --------------------------------

def test_a_token_that_cannot_sign_says_why_not_only_an_exception_class(
        operator_token: Token) -> None:
    import pkcs11

    key = TokenKey.open(_spec(operator_token))
    with _session(operator_token) as session:
        session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                        label=operator_token.key_label).destroy()
    with pytest.raises(TokenUnavailable) as err:
        _sign(key, b"receipt")
    assert f"no private key labelled {operator_token.key_label!r}" in err.value.detail


def _hub_config(pki: PkiPaths, tmp_path: Path, token: Token) -> Path:
    keystore = _keystore_with_token(pki, tmp_path, token)
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\nkeystore = "{keystore}"\n'
                      f'[ledger]\nurl = "sqlite:///{tmp_path / "ledger.sqlite3"}"\n')
    return config


@pytest.mark.parametrize("how", ["no such token", "pulled after the library loaded"])
def test_hub_run_without_its_token_exits_unavailable_so_its_service_restarts_it(
        how: str, hsm: SoftHsm, pki: PkiPaths, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import pkcs11

    # Given a hub configured for a token that is not there when it starts
    if how == "no such token":
        hsm.add_token("another-token", PIN, _key(pki, FINANCE), "seal")
        hsm.ready()
    else:
        hsm.add_token("hub-operator", PIN, _key(pki, OPERATOR), "operator-2025")
        hsm.ready()
        pkcs11.lib(MODULE).get_token(token_label="hub-operator")  # the library sees it
        (hsm.dir / "tokens").rename(hsm.dir / "tokens.pulled")
    config = _hub_config(pki, tmp_path, Token("hub-operator", PIN, "operator-2025"))
    # When `hub run` starts: exit 4 (unavailable), not 3 (RestartPreventExitStatus=3)
    assert hub_main(["-c", str(config), "run"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "hub: unavailable:" in err
    assert "token 'hub-operator'" in err


def test_a_refused_pin_at_start_up_stays_a_configuration_error(
        pki: PkiPaths, operator_token: Token, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # restarting with a wrong PIN would lock the token after a few tries: stay down
    monkeypatch.setenv(PIN_ENV, "999999")
    config = _hub_config(pki, tmp_path, operator_token)
    assert hub_main(["-c", str(config), "run"]) == EXIT_CONFIG
    assert "the PIN was refused" in capsys.readouterr().err


def test_the_keystore_of_a_hub_whose_token_is_out_is_transient_to_the_hub_only(
        hsm: SoftHsm, pki: PkiPaths, tmp_path: Path) -> None:
    hsm.add_token("another-token", PIN, _key(pki, FINANCE), "seal")
    hsm.ready()
    keystore = _keystore_with_token(pki, tmp_path, Token("hub-operator", PIN, "operator-2025"))
    settings = with_overrides(hub_settings(pki, tmp_path, "amqp://x@127.0.0.1:1/", "out"),
                              hub={"keystore": str(keystore)})
    with pytest.raises(TokenUnavailable, match="no such token"):
        load_keystore(settings)
    # a signer process, loading the keystore itself, reports one line (its pool retries)
    with pytest.raises(ConfigurationError, match="no such token"):
        Keystore.load(keystore)


# -- r4: a key the token will not sign with ---------------------------------------------------

def test_a_token_key_that_may_not_sign_is_a_configuration_error_in_one_line(
        pki: PkiPaths, operator_token: Token, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _put_key(operator_token, _key(pki, OPERATOR), sign=False)
    with pytest.raises(ConfigurationError, match="CKA_SIGN"):
        TokenKey.open(_spec(operator_token))
    # and through the command that signs with a token: exit 3, not "internal error (a bug)"
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(build_envelope(sample_header(OPERATOR, FINANCE)))
    code = hub_main(["envelope", "sign", str(unsigned), "-o", str(tmp_path / "signed.xml"),
                     "--pkcs11-module", MODULE, "--token-label", operator_token.label,
                     "--key-label", operator_token.key_label, "--pin-env", PIN_ENV,
                     "--cert", str(pki.organizations[OPERATOR].cert)])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG, err
    assert err.count("\n") == 1
    assert "CKA_SIGN" in err


def test_a_token_key_whose_probe_signature_fails_is_a_configuration_error(
        pki: PkiPaths, operator_token: Token) -> None:
    # A key that needs its PIN again for every signature (CKA_ALWAYS_AUTHENTICATE): the hub
    # cannot sign with it unattended
    _put_key(operator_token, _key(pki, OPERATOR), always_authenticate=True)
    with pytest.raises(ConfigurationError, match="cannot sign") as err:
        _on_token(pki, operator_token)
    assert not isinstance(err.value, TokenUnavailable)
    assert "UserNotLoggedIn" in str(err.value)



def test_a_running_hub_stops_logging_in_after_two_refused_pins(
        operator_token: Token, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a session lost while the PIN the hub reads is wrong (a pin_file edited by mistake)
    key = TokenKey.open(_spec(operator_token))
    key.close()
    monkeypatch.setenv(PIN_ENV, "999999")
    # Then each held retry of the batch is refused, and after two refused logins no third is
    # tried: a token locks its PIN after a few wrong ones
    for _ in range(2):
        with pytest.raises(TokenUnavailable, match="the PIN was refused"):
            _sign(key, b"receipt")
    monkeypatch.setenv(PIN_ENV, PIN)
    with pytest.raises(TokenUnavailable, match="not trying it again") as err:
        _sign(key, b"receipt")
    assert "restart the hub" in err.value.detail
    assert "999999" not in str(err.value)
