"""The generated test PKI has the shape of the specialized hierarchy (DOMAIN.md §4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from hub.errors import ConfigurationError
from hub.testing.pki import ISSUING_CA_NAME, ROOT_NAME, TEST_POLICY_OID, KeyCache, OrgSpec, init_pki, main
from hub.trust.keystore import Keystore
from tests.pki_fixtures import AT, PKI_NOW, SAMPLE_ORGS, GeneratedPki, session_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


def _policies(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return {p.policy_identifier.dotted_string for p in ext}


def test_the_root_and_issuing_ca_carry_the_specialized_names(pki: GeneratedPki) -> None:
    assert pki.root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ROOT_NAME
    assert pki.issuing_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        ISSUING_CA_NAME
    )
    assert pki.issuing_ca.issuer == pki.root.subject
    pki.issuing_ca.verify_directly_issued_by(pki.root)
    constraints = pki.issuing_ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    key = pki.root.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 3072


def test_an_organization_certificate_names_the_organization_and_allows_signing(
    pki: GeneratedPki,
) -> None:
    org = SAMPLE_ORGS[0]
    cert = pki.org(org.organ_id).cert
    assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == org.organ_id
    o_name = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert o_name == org.name.encode()[:64].decode(errors="ignore")
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "VN"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment
    assert not usage.key_cert_sign
    assert _policies(cert) == {TEST_POLICY_OID}
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name is not None
    assert str(points[0].full_name[0].value).endswith("/issuing-ca.crl")
    assert cert.not_valid_before_utc <= AT <= cert.not_valid_after_utc


def test_every_person_signer_gets_a_certificate_with_the_uid(pki: GeneratedPki) -> None:
    for org in SAMPLE_ORGS:
        for signer in org.signers:
            cert = pki.person(signer.uid).cert
            assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == signer.uid
            assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
                signer.name
            )
            cert.verify_directly_issued_by(pki.issuing_ca)


def test_the_issuing_crl_revokes_exactly_the_revoked_special_certificate(
    pki: GeneratedPki,
) -> None:
    root_crl, ca_crl = pki.crls
    assert ca_crl.is_signature_valid(pki.issuing_ca.public_key())  # type: ignore[arg-type]
    assert root_crl.is_signature_valid(pki.root.public_key())  # type: ignore[arg-type]
    revoked = {r.serial_number for r in ca_crl}
    assert revoked == {pki.special("revoked").cert.serial_number}
    assert ca_crl.last_update_utc == PKI_NOW


def test_the_special_certificates_each_have_their_one_defect(pki: GeneratedPki) -> None:
    assert pki.special("expired").cert.not_valid_after_utc < PKI_NOW
    assert pki.special("not_yet_valid").cert.not_valid_before_utc > AT
    usage = pki.special("wrong_key_usage").cert.extensions.get_extension_for_class(
        x509.KeyUsage).value
    assert usage.key_encipherment
    assert not usage.digital_signature
    assert not usage.content_commitment
    assert pki.special("rsa1024").key.key_size == 1024
    no_policy = pki.special("no_policy").cert.extensions
    assert all(e.oid != ExtensionOID.CERTIFICATE_POLICIES for e in no_policy)


def test_the_untrusted_hierarchies_do_not_chain_to_the_specialized_root(
    pki: GeneratedPki,
) -> None:
    business = pki.business
    assert business.cert.issuer != pki.issuing_ca.subject
    assert business.chain[0].issuer == pki.public_root.subject
    assert pki.self_signed.cert.issuer == pki.self_signed.cert.subject


def test_the_keystore_loads_every_organization_key_once(pki: GeneratedPki) -> None:
    keystore = Keystore.load(pki.paths.keystore)
    assert sorted(keystore) == sorted(o.organ_id for o in SAMPLE_ORGS)
    signer = keystore.signer(SAMPLE_ORGS[0].organ_id)
    assert signer is not None
    assert signer.chain == (pki.issuing_ca,)
    assert keystore.signer("000.00.99.H27") is None


def test_a_signer_repr_shows_no_key_material(pki: GeneratedPki) -> None:
    signer = pki.org(SAMPLE_ORGS[0].organ_id)
    text = repr(signer)
    assert "PRIVATE" not in text
    assert str(signer.key.private_numbers().d)[:12] not in text
    assert SAMPLE_ORGS[0].organ_id in text


def test_an_encrypted_keystore_needs_its_passphrase(tmp_path: Path) -> None:
    orgs = (OrgSpec("000.00.01.H27", "Văn phòng UBND tỉnh Hà Tĩnh"),)
    paths = init_pki(tmp_path, orgs, now=PKI_NOW, passphrase=b"test-only", keys=KeyCache())
    assert b"ENCRYPTED" in paths.organizations["000.00.01.H27"].key.read_bytes()
    with pytest.raises(ConfigurationError, match="cannot load private key"):
        Keystore.load(paths.keystore)
    keystore = Keystore.load(paths.keystore, passphrase=b"test-only")
    assert keystore.signer("000.00.01.H27") is not None


def test_the_pki_command_writes_the_sample_directory_pki(tmp_path: Path) -> None:
    assert main([str(tmp_path / "pki"), "--crl-base-url", "http://127.0.0.1:9999/crl"]) == 0
    keystore = Keystore.load(tmp_path / "pki" / "keystore")
    assert "000.00.00.H27" in keystore
    assert (tmp_path / "pki" / "crl" / "issuing-ca.crl.pem").is_file()
