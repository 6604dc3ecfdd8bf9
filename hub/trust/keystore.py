"""Organization signing keys, loaded once at start-up.

Layout of a keystore directory (what :func:`hub.testing.pki.init_pki` writes):
``<organ_id>.key.pem`` (PKCS#8 PEM, optionally encrypted) and ``<organ_id>.pem`` (the
organization certificate followed by its issuing chain). Loading an RSA key costs ~36 ms
(OpenSSL 3 checks it), so each key is loaded exactly once and handed around as an object.

An organization whose key is held on a PKCS#11 token (the operator's, or a hosted
organization's) has ``<organ_id>.pkcs11.toml`` instead of the key file::

    module = "/usr/lib/softhsm/libsofthsm2.so"   # the token's PKCS#11 module
    token_label = "hub-operator"
    key_label = "operator-2026"
    pin_env = "HUB_OPERATOR_PIN"                  # or pin_file = "/run/secrets/operator.pin"
    # cert = "000.00.01.H27.pem"                  # default: <organ_id>.pem if present,
    #                                             #   else the certificates on the token

The PIN is never written in that file (a ``pin`` key is refused). The signer offers the same
:class:`OrgSigner` interface: receipts, status packets and ledger checkpoints are signed on the
token (:mod:`hub.trust.token`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.errors import ConfigurationError

if TYPE_CHECKING:
    from hub.trust.token import TokenKeySpec

_KEY_SUFFIX = ".key.pem"
_TOKEN_SUFFIX = ".pkcs11.toml"  # noqa: S105 - a file suffix, not a secret


class OrgSigner:
    """An organization's loaded signing key with its certificate and issuing chain.

    ``repr`` never shows key material. The pyHanko PDF signer built from the same key is
    cached on first use (:func:`hub.trust.signing.sign_pdf`).
    """

    __slots__ = ("_fingerprint", "_pdf_signer", "cert", "chain", "key", "organ_id", "public_key")

    def __init__(
        self,
        organ_id: str,
        key: rsa.RSAPrivateKey,
        cert: x509.Certificate,
        chain: tuple[x509.Certificate, ...] = (),
    ) -> None:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("OrgSigner needs a loaded RSA private key object")
        self.organ_id = organ_id
        self.key = key
        self.cert = cert
        self.chain = chain
        self._pdf_signer: Any = None
        # The certificate's key, loaded once: every signature made in this process is verified
        # under it before it is used (hub.trust.signing.sign_checked).
        public = cert.public_key()
        self.public_key = public if isinstance(public, rsa.RSAPublicKey) else None
        self._fingerprint = hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate (hex)."""
        return self._fingerprint

    def __repr__(self) -> str:
        return (
            f"OrgSigner(organ_id={self.organ_id!r}, "
            f"subject={self.cert.subject.rfc4514_string()!r}, fingerprint={self.fingerprint[:16]}…)"
        )

    @classmethod
    def from_files(
        cls, organ_id: str, key_path: Path, cert_path: Path, passphrase: bytes | None = None
    ) -> OrgSigner:
        """Load one key and its certificate chain (the first certificate is the signer's)."""
        try:
            pem = key_path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"{key_path}: {exc.strerror}") from None
        # A keystore after a key rotation mixes encrypted and plain keys: the one passphrase
        # applies to the encrypted ones only (cryptography refuses a password for a plain key).
        encrypted = b"ENCRYPTED" in pem.split(b"-----END", 1)[0]
        if encrypted and passphrase is None:
            raise ConfigurationError(
                f"{key_path}: cannot load private key: it is encrypted and no passphrase was given "
                "(set the variable named by [hub] key_passphrase_env, HUB_KEY_PASSPHRASE by default)")
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase if encrypted else None)
        except (ValueError, TypeError) as exc:
            # Never echo the key or passphrase: only the file name.
            why = ("wrong passphrase, or the key is damaged" if encrypted
                   else f"not a readable PEM private key ({type(exc).__name__})")
            raise ConfigurationError(f"{key_path}: cannot load private key: {why}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"{key_path}: only RSA keys are supported")
        certs = _load_certificates(cert_path)
        cert_key = certs[0].public_key()
        if (
            not isinstance(cert_key, rsa.RSAPublicKey)
            or cert_key.public_numbers() != key.public_key().public_numbers()
        ):
            raise ConfigurationError(f"{cert_path}: certificate does not match {key_path.name}")
        return cls(organ_id, key, certs[0], tuple(certs[1:]))

    @classmethod
    def from_token(cls, organ_id: str, spec: TokenKeySpec) -> OrgSigner:
        """A signer whose key stays on a PKCS#11 token (certificates from ``spec.cert`` or,
        without it, from the token); the key is proven to match the certificate."""
        from hub.trust.token import TokenKey, token_certificates

        if spec.cert:
            certs = _load_certificates(Path(spec.cert))
            leaf, chain = certs[0], tuple(certs[1:])
        else:
            leaf, chain = token_certificates(spec)
        public = leaf.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise ConfigurationError(f"token {spec.token_label!r}: only RSA keys are supported")
        return cls(organ_id, TokenKey.open(spec, public), leaf, chain)

    def close(self) -> None:
        """Release what the key holds (a token session); file keys hold nothing."""
        close = getattr(self.key, "close", None)
        if callable(close):
            close()


def _load_certificates(cert_path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except (ValueError, OSError) as exc:
        raise ConfigurationError(f"{cert_path}: cannot load certificates ({exc})") from None
    if not certs:
        raise ConfigurationError(f"{cert_path}: no certificate")
    return certs


def load_token_spec(path: Path) -> TokenKeySpec:
    """Read a ``<organ_id>.pkcs11.toml`` (relative paths against its directory)."""
    import tomllib

    from hub.trust.token import TokenKeySpec

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    return TokenKeySpec.from_mapping(raw, str(path), base=path.parent)


class Keystore(Mapping[str, OrgSigner]):
    """Every organization signer of a keystore directory, keyed by organization code."""

    def __init__(self, signers: Mapping[str, OrgSigner]) -> None:
        self._signers = dict(signers)

    @classmethod
    def load(cls, dir: Path | str, passphrase: bytes | None = None) -> Keystore:
        """Load every ``<organ_id>.key.pem`` + ``<organ_id>.pem`` pair in ``dir`` once, and open
        every ``<organ_id>.pkcs11.toml`` token key."""
        base = Path(dir)
        if not base.is_dir():
            raise ConfigurationError(f"{base}: keystore directory not found")
        signers: dict[str, OrgSigner] = {}
        for key_path in sorted(base.glob(f"*{_KEY_SUFFIX}")):
            organ_id = key_path.name[: -len(_KEY_SUFFIX)]
            cert_path = base / f"{organ_id}.pem"
            if not cert_path.is_file():
                raise ConfigurationError(f"{key_path}: no certificate file {cert_path.name}")
            signers[organ_id] = OrgSigner.from_files(organ_id, key_path, cert_path, passphrase)
        for spec_path in sorted(base.glob(f"*{_TOKEN_SUFFIX}")):
            organ_id = spec_path.name[: -len(_TOKEN_SUFFIX)]
            if organ_id in signers:
                raise ConfigurationError(
                    f"{spec_path}: {organ_id} has both a key file and a token key")
            spec = load_token_spec(spec_path)
            if spec.cert is None and (base / f"{organ_id}.pem").is_file():
                import dataclasses

                spec = dataclasses.replace(spec, cert=str(base / f"{organ_id}.pem"))
            signers[organ_id] = OrgSigner.from_token(organ_id, spec)
        return cls(signers)

    def signer(self, organ_id: str) -> OrgSigner | None:
        """The organization's signer, or ``None`` when the keystore holds no key for it."""
        return self._signers.get(organ_id)

    def __getitem__(self, organ_id: str) -> OrgSigner:
        return self._signers[organ_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._signers)

    def __len__(self) -> int:
        return len(self._signers)

    def __repr__(self) -> str:
        return f"Keystore({sorted(self._signers)!r})"
