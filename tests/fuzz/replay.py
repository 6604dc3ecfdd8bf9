"""Replay saved fuzz inputs against the PKI of the run that found them (``--replay``).

A run keeps its test PKI in ``OUT/pki`` (:func:`hub.pki.init_pki`'s layout); the trust inputs
are rebuilt from those files exactly as :class:`tests.unit.validators.signature_vectors.Vectors`
builds them, and each file is parsed and validated at the pinned time, timed, without a timer:
a hang shows as a long time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography import x509

from hub.edxml import EnvelopeRefused, parse_packet
from hub.testing.pki import TEST_POLICY_OID
from hub.validators import CrlEntry, CrlSnapshot, TrustPolicy, validate_packet
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def replay(files: Sequence[Path], pki: Path) -> Iterator[str]:
    """One line per file: the verdict (reason code) and the time parse + validate took."""
    policy = TrustPolicy(
        roots=(_cert(pki / "root-ca.pem"),), intermediates=(_cert(pki / "issuing-ca.pem"),),
        public_roots=(_cert(pki / "untrusted" / "public-root.pem"),),
        policy_oids=frozenset({TEST_POLICY_OID}))
    crls = CrlSnapshot.of(
        CrlEntry(x509.load_der_x509_crl((pki / "crl" / name).read_bytes()), fetched_at=PKI_NOW,
                 source="replay")
        for name in ("root-ca.crl", "issuing-ca.crl"))
    for file in files:
        started = time.perf_counter()
        try:
            packet = parse_packet(file.read_bytes())
            report = validate_packet(packet, at=AT, policy=policy, directory=DIRECTORY, crls=crls)
            verdict = f"{report.indication.value} {report.reason.value}"
            if not report.accepted:
                verdict += " " + next((f"{c.check}: {c.evidence.get('detail', '')}"
                                       for c in report.checks if c.reason == report.reason), "")
        except EnvelopeRefused as refused:
            verdict = f"REFUSED {refused.reason.value} {refused.detail}"
        except Exception as exc:
            verdict = f"RAISED {type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        yield f"{file}: {elapsed:.3f} s {verdict}"
