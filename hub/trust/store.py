"""Build the :class:`~hub.validators.trust.TrustPolicy` once at start-up (this module does I/O).

Reads the PEM files or directories named in ``[trust]``: ``roots`` (the specialized roots — the
**only** trust anchors; the system trust store is never consulted), ``intermediates`` (issuing
CAs) and ``public_roots`` (public-CA roots, recognised only to refuse their certificates with
CERT_PUBLIC_CA). Every problem is a :class:`~hub.errors.ConfigurationError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from hub.config import Settings
from hub.errors import ConfigurationError
from hub.validators.trust import TrustPolicy

_PEM_SUFFIXES = (".pem", ".crt", ".cer")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        # Keys may sit next to certificates (``*.key.pem``): never read them here.
        return sorted(
            p for p in path.iterdir()
            if p.suffix.lower() in _PEM_SUFFIXES and not p.name.endswith(".key.pem")
        )
    if path.is_file():
        return [path]
    raise ConfigurationError(f"{path}: certificate file or directory not found")


def load_certificates(paths: Iterable[Path]) -> tuple[x509.Certificate, ...]:
    """Every certificate in the PEM files (or directories of PEM files) ``paths``."""
    certs: list[x509.Certificate] = []
    for path in paths:
        for file in _files(path):
            try:
                data = file.read_bytes()
                loaded = (
                    x509.load_pem_x509_certificates(data)
                    if b"-----BEGIN" in data
                    else [x509.load_der_x509_certificate(data)]
                )
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"{file}: cannot read certificates ({exc})") from None
            certs.extend(loaded)
    return tuple(certs)


def load_policy(settings: Settings) -> TrustPolicy:
    """The trust policy from ``settings.trust`` (built once; hand it down explicitly)."""
    trust = settings.trust
    roots = load_certificates(settings.path(p) for p in trust.roots)
    if not roots:
        raise ConfigurationError(
            "[trust] roots is empty: configure the specialized root certificates "
            "(the hub never falls back to a system trust store)")
    for root in roots:
        if root.issuer != root.subject:
            raise ConfigurationError(
                f"[trust] roots: {root.subject.rfc4514_string()} is not self-issued")
    return TrustPolicy(
        roots=roots,
        intermediates=load_certificates(settings.path(p) for p in trust.intermediates),
        public_roots=load_certificates(settings.path(p) for p in trust.public_roots),
        policy_oids=frozenset(trust.policy_oids),
        min_rsa_bits=trust.min_rsa_bits,
        crl_freshness=timedelta(seconds=trust.crl_freshness_s),
        require_pdf_signatures=trust.require_pdf_signatures,
        axis_legacy_envelope_signature=trust.axis_legacy_envelope_signature,
    )
