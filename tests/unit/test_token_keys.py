"""Keys held on a PKCS#11 token (SoftHSM2) sign exactly like key files (issue 15 item 6).

The hub's keystore accepts ``<organ_id>.pkcs11.toml`` beside the certificates; an operator whose
key is on a token signs receipts and ledger checkpoints through the token. The receipts are
checked with xmlsec1, the reference implementation, not with the hub's own verifier.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hub import app as app_module
from hub.app import build_hub
from hub.config import with_overrides
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.edxml import build_envelope, parse_packet, sample_header
from hub.errors import ConfigurationError
from hub.messages import Headers
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.signer_thread import holds_token_keys
from hub.trust.signing import sign_xml
from hub.trust.token import TokenKey, TokenKeySpec
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    OFFICE,
    hub_settings,
    make_pki,
    signed_envelope,
)
from tests.softhsm import MODULE, SoftHsm, Token, softhsm

OPERATOR = OFFICE
PIN = "246810"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("token-pki"))


def _file_signer(pki: PkiPaths, organ_id: str) -> OrgSigner:
    org = pki.organizations[organ_id]
    return OrgSigner.from_files(organ_id, org.key, org.cert)


def _key(pki: PkiPaths, organ_id: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pki.organizations[organ_id].key.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture
def hsm(tmp_path: Path) -> Iterator[SoftHsm]:
    with softhsm(tmp_path / "hsm") as made:
        yield made


@pytest.fixture
def operator_token(hsm: SoftHsm, pki: PkiPaths, monkeypatch: pytest.MonkeyPatch) -> Token:
    token = hsm.add_token("hub-operator", PIN, _key(pki, OPERATOR), "operator-2025")
    hsm.ready()
    monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", PIN)
    return token


def _spec(token: Token, **kw: str) -> TokenKeySpec:
    fields = {"module": MODULE, "token_label": token.label, "key_label": token.key_label,
              "pin_env": "HUB_TEST_OPERATOR_PIN", **kw}
    return TokenKeySpec.from_mapping(fields, "test")


def test_a_token_key_signs_an_envelope_byte_for_byte_like_the_same_key_in_a_file(
        pki: PkiPaths, operator_token: Token) -> None:
    envelope = build_envelope(sample_header(OPERATOR, FINANCE))
    on_token = OrgSigner.from_token(OPERATOR, _spec(
        operator_token, cert=str(pki.organizations[OPERATOR].cert)))
    assert isinstance(on_token.key, TokenKey)
    assert sign_xml(envelope, on_token) == sign_xml(envelope, _file_signer(pki, OPERATOR))


def test_the_keystore_opens_an_organization_s_token_key_from_its_pkcs11_toml(
        pki: PkiPaths, operator_token: Token, tmp_path: Path) -> None:
    keystore_dir = _keystore_with_token(pki, tmp_path, operator_token)
    keystore = Keystore.load(keystore_dir)
    signer = keystore.signer(OPERATOR)
    assert signer is not None
    assert isinstance(signer.key, TokenKey)
    assert signer.cert == _file_signer(pki, OPERATOR).cert
    # the other organizations still sign with their key files
    assert not isinstance(keystore[FINANCE].key, TokenKey)
    data = b"checkpoint"
    public = signer.cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signer.key.sign(data, padding.PKCS1v15(), hashes.SHA256()), data,
                  padding.PKCS1v15(), hashes.SHA256())


def test_without_a_certificate_file_the_certificate_is_read_from_the_token(
        hsm: SoftHsm, pki: PkiPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = _file_signer(pki, FINANCE)
    token = hsm.add_token("finance-usb", PIN, _key(pki, FINANCE), "seal",
                          certificates=[*signer.chain, signer.cert])
    hsm.ready()
    monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", PIN)
    on_token = OrgSigner.from_token(FINANCE, _spec(token))
    assert on_token.cert == signer.cert
    assert on_token.chain == signer.chain


def test_a_pin_written_in_the_token_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="never goes in a configuration file") as err:
        TokenKeySpec.from_mapping({"module": MODULE, "token_label": "t", "key_label": "k",
                                   "pin": "123456"}, "operator.pkcs11.toml")
    assert "123456" not in str(err.value)


def test_a_token_configuration_needs_exactly_one_pin_source() -> None:
    with pytest.raises(ConfigurationError, match="exactly one of pin_env or pin_file"):
        TokenKeySpec.from_mapping({"module": MODULE, "token_label": "t", "key_label": "k"}, "x")


def test_a_wrong_pin_is_one_line_that_does_not_echo_it(
        operator_token: Token, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", "999999")
    with pytest.raises(ConfigurationError, match="PIN was refused") as err:
        TokenKey.open(_spec(operator_token))
    assert "999999" not in str(err.value)


def test_a_pin_file_is_read_and_a_missing_key_label_is_named(
        operator_token: Token, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    spec = TokenKeySpec.from_mapping({"module": MODULE, "token_label": operator_token.label,
                                      "key_label": "nope", "pin_file": str(pin_file)}, "x")
    with pytest.raises(ConfigurationError, match="no private key labelled 'nope'"):
        TokenKey.open(spec)


def test_a_token_key_that_does_not_match_the_certificate_is_refused_at_start(
        pki: PkiPaths, operator_token: Token) -> None:
    with pytest.raises(ConfigurationError, match="does not match the certificate"):
        OrgSigner.from_token(OPERATOR, _spec(operator_token,
                                             cert=str(pki.organizations[FINANCE].cert)))


def test_a_token_key_cannot_be_exported(operator_token: Token) -> None:
    key = TokenKey.open(_spec(operator_token))
    with pytest.raises(TypeError, match="held on token"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())


def _keystore_with_token(pki: PkiPaths, tmp_path: Path, token: Token) -> Path:
    """The test PKI's keystore with the operator's key file replaced by its token."""
    keystore_dir = tmp_path / "keystore"
    shutil.copytree(pki.keystore, keystore_dir)
    (keystore_dir / f"{OPERATOR}.key.pem").unlink()
    (keystore_dir / f"{OPERATOR}.pkcs11.toml").write_text(
        f'module = "{MODULE}"\ntoken_label = "{token.label}"\n'
        f'key_label = "{token.key_label}"\npin_env = "HUB_TEST_OPERATOR_PIN"\n')
    return keystore_dir


def test_a_hub_whose_operator_key_is_on_a_token_signs_receipts_that_xmlsec1_verifies(
        pki: PkiPaths, operator_token: Token, tmp_path: Path) -> None:
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        pytest.skip("xmlsec1 binary not installed (apt-get install xmlsec1)")
    # Given a hub whose operator key is held on the token (no operator key file anywhere)
    settings = with_overrides(
        hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "token"),
        hub={"keystore": str(_keystore_with_token(pki, tmp_path, operator_token))})
    hub = build_hub(settings, clock=lambda: NOW)
    try:
        operator = hub.keystore.signer(OPERATOR)
        assert operator is not None
        assert isinstance(operator.key, TokenKey)
        # When an envelope goes through the real intake consumer and pipeline
        body = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,))
        stop = threading.Event()
        conn = FakeConnection(on_idle=lambda c: stop.set() if c.channel.acked_tags() else None)
        conn.put(body, message_id="m0", user_id="guest")
        IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                       hub.ledger, topology=hub.topology, stop=stop,
                       connector=lambda _url, _name: conn).run()
        receipts = [o for o in conn.published if o.headers.get(Headers.RECEIPT) == "accepted"]
        assert len(receipts) == 1
        # Then the accepted receipt is signed by the operator's certificate, as xmlsec1 sees it
        receipt = tmp_path / "accepted.xml"
        receipt.write_bytes(receipts[0].body)
        parse_packet(receipts[0].body)  # the hardened parser first: nothing unchecked to xmlsec1
        result = subprocess.run(
            [xmlsec1, "--verify", "--verification-gmt-time", NOW.strftime("%Y-%m-%d %H:%M:%S"),
             "--trusted-pem", str(pki.root_cert), "--untrusted-pem", str(pki.issuing_ca_cert),
             str(receipt)], capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        from cryptography import x509

        assert x509.load_pem_x509_certificates(pki.organizations[OPERATOR].cert.read_bytes())[
            0].public_bytes(serialization.Encoding.DER) in _x509_in(receipts[0].body)
        # And the ledger's checkpoint is signed on the token too, and verifies
        hub.ledger.checkpoint()
        assert hub.ledger.verify().ok
    finally:
        hub.close()


def test_a_single_process_hub_with_a_token_key_signs_receipts_in_its_loop_not_a_thread(
        pki: PkiPaths, operator_token: Token, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a one-process hub (signer_processes = 0) on two cores whose operator key is on a token
    monkeypatch.setattr(app_module, "usable_cores", lambda: 2)
    settings = with_overrides(
        hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "token"),
        hub={"keystore": str(_keystore_with_token(pki, tmp_path, operator_token)),
             "signer_processes": 0})
    hub = build_hub(settings, clock=lambda: NOW)
    try:
        # Then no signer thread shares the token's session with the ledger's checkpoints (a
        # thread stuck in a hung token could not be given up): the loop signs, as on one core
        assert holds_token_keys(hub.keystore)
        assert hub.receipt_signing() is None
    finally:
        hub.close()
    assert not holds_token_keys(Keystore.load(pki.keystore))


def _x509_in(receipt: bytes) -> list[bytes]:
    import base64
    import re

    return [base64.b64decode(m) for m in re.findall(
        rb"<ds:X509Certificate>([^<]+)</ds:X509Certificate>", receipt)]


def test_a_lost_token_session_is_reopened_and_the_signature_is_the_same(
        operator_token: Token) -> None:
    key = TokenKey.open(_spec(operator_token))
    before = key.sign(b"receipt", padding.PKCS1v15(), hashes.SHA256())
    key._session.close()  # the session is gone (token re-plugged, daemon restarted)
    assert key.sign(b"receipt", padding.PKCS1v15(), hashes.SHA256()) == before


def test_a_token_that_cannot_be_reopened_is_a_transient_error_not_a_crash(
        operator_token: Token, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.errors import TransientError
    from hub.trust.token import TokenUnavailable

    key = TokenKey.open(_spec(operator_token))
    key._session.close()
    monkeypatch.setenv("HUB_TEST_OPERATOR_PIN", "000000")  # the PIN no longer opens it
    with pytest.raises(TokenUnavailable) as err:
        key.sign(b"receipt", padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(err.value, TransientError)
    assert "000000" not in str(err.value)


def test_a_token_key_signs_only_pkcs1_v15_over_the_data(operator_token: Token) -> None:
    from cryptography.exceptions import UnsupportedAlgorithm

    key = TokenKey.open(_spec(operator_token))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with pytest.raises(UnsupportedAlgorithm):
        key.sign(b"x", pss, hashes.SHA256())
    with pytest.raises(UnsupportedAlgorithm):
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


def test_a_signer_process_signs_receipts_on_the_token_with_a_session_of_its_own(
        pki: PkiPaths, operator_token: Token, tmp_path: Path) -> None:
    # Given a hub whose operator key is held on the token only, with a signer process
    settings = with_overrides(
        hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "token"),
        hub={"keystore": str(_keystore_with_token(pki, tmp_path, operator_token)),
             "signer_processes": 1})
    body = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,))

    def accepted_receipt(hub_settings_: object, signing: bool) -> bytes:
        hub = build_hub(hub_settings_, clock=lambda: NOW)  # type: ignore[arg-type]
        try:
            stop = threading.Event()
            conn = FakeConnection(on_idle=lambda c: stop.set() if c.channel.acked_tags() else None)
            conn.put(body, message_id="m0", user_id="guest")
            consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"),
                                      hub.pipeline, hub.ledger, topology=hub.topology, stop=stop,
                                      connector=lambda _url, _name: conn,
                                      signing=hub.receipt_signing() if signing else None)
            consumer.run()
            if signing:
                assert consumer.stats.stages["sign_wait"].n == 1
            receipts = [o.body for o in conn.published
                        if o.headers.get(Headers.RECEIPT) == "accepted"]
            assert len(receipts) == 1
            return receipts[0]
        finally:
            hub.close()

    # When an envelope goes through the consumer, its receipts signed in the signer process
    # (which opened its own session on the token: there is no key file to load)
    on_token = accepted_receipt(settings, signing=True)
    # Then the receipt is the very bytes the operator's key file gives, signed in the consumer
    reference = with_overrides(
        settings, hub={"keystore": str(pki.keystore), "signer_processes": 0},
        ledger={"url": f"sqlite:///{tmp_path / 'reference.sqlite3'}"})
    with_file = accepted_receipt(reference, signing=False)
    assert on_token == with_file
