"""Operator certificates for the rotation tests: issued by the test PKI's issuing CA (a
legitimate rotation), or made by an attacker for themselves (same name, no CA)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from hub.trust.keystore import OrgSigner
from tests.pki_fixtures import PKI_NOW, GeneratedPki

OPERATOR = "000.00.01.H27"
"""The hub operator organization of the test settings (it has a seal in the test PKI)."""


@dataclass(frozen=True)
class Operator:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def sign(self, payload: bytes) -> bytes:
        return self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())

    @property
    def pem(self) -> bytes:
        """The certificate then its CAs, as the hub stores it with a checkpoint."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM)
                        for c in (self.cert, *self.chain))

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


def from_signer(signer: OrgSigner) -> Operator:
    return Operator(signer.key, signer.cert, tuple(signer.chain))


def _subject(uid: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Văn phòng UBND tỉnh Hà Tĩnh"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Văn phòng UBND tỉnh Hà Tĩnh"),
        x509.NameAttribute(NameOID.USER_ID, uid),
    ])


def rotated(pki: GeneratedPki, uid: str = OPERATOR) -> Operator:
    """A new operator certificate from the same issuing CA (what a rotation installs)."""
    ca_key = serialization.load_pem_private_key(pki.paths.issuing_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder().subject_name(_subject(uid)).issuer_name(pki.issuing_ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW).not_valid_after(PKI_NOW + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256()))
    return Operator(key, cert, (pki.issuing_ca,))


def self_made(uid: str = OPERATOR) -> Operator:
    """A certificate an attacker makes for themselves, with the operator's very name."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder().subject_name(_subject(uid)).issuer_name(_subject(uid))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW).not_valid_after(PKI_NOW + dt.timedelta(days=730))
        .sign(key, hashes.SHA256()))
    return Operator(key, cert)
