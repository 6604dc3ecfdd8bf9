"""Private SoftHSM2 tokens for tests (Debian's ``softhsm2`` + ``python-pkcs11``).

SoftHSM2 reads ``SOFTHSM2_CONF`` when the PKCS#11 library is initialized, and sees only the
tokens that existed then. :func:`softhsm` writes a configuration with a token directory of the
test's own, points ``SOFTHSM2_CONF`` at it, and lets the test add tokens (each with an imported
key and, if asked, certificates); :meth:`SoftHsm.ready` then re-initializes the library so the
process sees exactly these tokens. The environment is restored afterwards.

Without ``softhsm2-util`` or ``python-pkcs11`` the tests that need a token skip with one line,
except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "87654321"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_softhsm() -> None:
    """Skip (fail in CI) when SoftHSM2 or python-pkcs11 is missing."""
    problem = None
    if shutil.which("softhsm2-util") is None or not Path(MODULE).is_file():
        problem = "SoftHSM2 is not installed (apt-get install softhsm2)"
    else:
        try:
            import pkcs11  # noqa: F401
        except ImportError:
            problem = "python-pkcs11 is not installed (pip install python-pkcs11)"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)


@dataclass(frozen=True)
class Token:
    label: str
    pin: str
    key_label: str


@dataclass
class SoftHsm:
    dir: Path
    conf: Path
    tokens: list[Token] = field(default_factory=list)

    def add_token(self, label: str, pin: str, key: rsa.RSAPrivateKey, key_label: str,
                  certificates: Sequence[x509.Certificate] = ()) -> Token:
        """A new token holding ``key`` (imported as PKCS#8) and ``certificates``."""
        _run(["softhsm2-util", "--init-token", "--free", "--label", label,
              "--so-pin", SO_PIN, "--pin", pin])
        pem = self.dir / f"{label}.import.pem"
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        try:
            _run(["softhsm2-util", "--import", str(pem), "--token", label,
                  "--label", key_label, "--id", f"{len(self.tokens) + 1:02x}", "--pin", pin])
        finally:
            pem.unlink()
        token = Token(label, pin, key_label)
        self.tokens.append(token)
        if certificates:
            self._store_certificates(token, certificates)
        return token

    def _store_certificates(self, token: Token, certificates: Sequence[x509.Certificate]) -> None:
        import pkcs11

        self.ready()
        with pkcs11.lib(MODULE).get_token(token_label=token.label).open(
                rw=True, user_pin=token.pin) as session:
            for n, cert in enumerate(certificates):
                session.create_object({
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE,
                    pkcs11.Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
                    pkcs11.Attribute.TOKEN: True,
                    pkcs11.Attribute.LABEL: f"{token.key_label}-{n}",
                    pkcs11.Attribute.SUBJECT: cert.subject.public_bytes(),
                    pkcs11.Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
                })

    def ready(self) -> None:
        """Re-initialize the PKCS#11 library so this process sees the tokens made so far."""
        import pkcs11

        pkcs11.unload(MODULE)


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"{args[:2]}: {result.stdout}{result.stderr}"


@contextmanager
def softhsm(base: Path) -> Iterator[SoftHsm]:
    """A SoftHSM2 of the test's own under ``base`` (``SOFTHSM2_CONF`` set meanwhile)."""
    require_softhsm()
    tokens = base / "tokens"
    tokens.mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    hsm = SoftHsm(base, conf)
    try:
        yield hsm
    finally:
        import pkcs11

        pkcs11.unload(MODULE)
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old
