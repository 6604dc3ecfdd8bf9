"""The KeyInfo certificate cache of :mod:`hub.validators.xmldsig` keeps only what verified, is
bounded in bytes, and never keeps a failure (issue 16, M5: memory exhaustion before any check).

Real certificates and real signatures: each test floods the verifier with distinct KeyInfos of
about 10 KB (a certificate padded with a private extension) and reads the cache's own account.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID, ObjectIdentifier

from hub.reasons import Reason
from hub.trust.keystore import OrgSigner
from hub.trust.signing import sign_xml
from hub.validators import xmldsig
from hub.validators.outcome import ValidationFailure
from hub.validators.xmldsig import SignerCache, check_xml_signature
from tests.pki_fixtures import PKI_NOW, GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import SENDER, Vectors, build

PADDING_OID = ObjectIdentifier("1.3.6.1.4.1.55555.1")
"""A private extension OID used only to make test certificates large."""


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki) -> Vectors:
    return Vectors(pki)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> SignerCache:
    """A fresh, small cache in place of the process's one (100 kB: about eight 10 kB KeyInfos)."""
    fresh = SignerCache(max_bytes=100_000, max_entries=1024)
    monkeypatch.setattr(xmldsig, "SIGNER_CACHE", fresh)
    return fresh


def _large_signers(pki: GeneratedPki, count: int) -> list[OrgSigner]:
    """``count`` distinct self-signed certificates of ~10 kB for one RSA key."""
    key = pki.keys("key-info-flood", 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KeyInfo flood (TEST)")])
    signers = []
    for n in range(count):
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1000 + n)
            .not_valid_before(PKI_NOW - dt.timedelta(days=1))
            .not_valid_after(PKI_NOW + dt.timedelta(days=30))
            .add_extension(x509.UnrecognizedExtension(PADDING_OID, bytes([n % 256]) * 10_000),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        signers.append(OrgSigner(SENDER, key, cert))
    return signers


def _verdict(raw: bytes, vectors: Vectors) -> str:
    try:
        check_xml_signature(raw, vectors.policy)
    except ValidationFailure as failure:
        return failure.reason.value
    return "passed"


def test_a_flood_of_distinct_key_infos_that_do_not_verify_leaves_the_cache_empty(
    cache: SignerCache, pki: GeneratedPki, vectors: Vectors
) -> None:
    # Given 40 envelopes, each signed by the sender, whose KeyInfo was swapped in transit for a
    # distinct 10 kB certificate (KeyInfo is not covered by the signature)
    template = vectors.valid_raw
    original = template.split(b"<ds:X509Certificate>", 1)[1].split(b"</ds:X509Certificate>")[0]
    for signer in _large_signers(pki, 40):
        der = signer.cert.public_bytes(serialization.Encoding.DER)
        forged = template.replace(original, base64.b64encode(der), 1)
        # When each is checked, Then each is refused
        assert _verdict(forged, vectors) == Reason.SIGNATURE_INVALID.value
    # And nothing was kept: only a signature that verified puts its KeyInfo in the cache
    assert (len(cache), cache.held_bytes) == (0, 0)


def test_a_flood_of_distinct_valid_key_infos_stays_within_the_byte_bound(
    cache: SignerCache, pki: GeneratedPki, vectors: Vectors
) -> None:
    # Given 40 envelopes, each validly signed with its own 10 kB certificate
    envelope = vectors.envelope()
    packets = [sign_xml(envelope, signer) for signer in _large_signers(pki, 40)]
    highest = 0
    for raw in packets:
        # When each is checked (the signature verifies; trust is judged later)
        assert _verdict(raw, vectors) == "passed"
        highest = max(highest, cache.held_bytes)
    # Then the cache never held more than its byte bound, and evicted the oldest entries
    assert highest <= cache.max_bytes
    assert 0 < len(cache) < 40
    assert len(cache) * 10_000 <= cache.max_bytes
    # And the most recent KeyInfo is still there: checking it again adds nothing
    entries = len(cache)
    assert _verdict(packets[-1], vectors) == "passed"
    assert len(cache) == entries


def test_a_key_info_that_fails_is_never_cached_and_fails_again_the_same_way(
    cache: SignerCache, vectors: Vectors
) -> None:
    raw = build("certificate_malformed_extension", vectors).packet.raw
    first = _verdict(raw, vectors)
    assert first == Reason.SIGNATURE_CERTIFICATE_MISSING.value
    assert len(cache) == 0
    assert _verdict(raw, vectors) == first
    assert len(cache) == 0


def test_the_senders_key_info_is_cached_once_after_it_verified(
    cache: SignerCache, vectors: Vectors
) -> None:
    assert _verdict(vectors.valid_raw, vectors) == "passed"
    assert len(cache) == 1
    held = cache.held_bytes
    assert _verdict(vectors.valid_raw, vectors) == "passed"
    assert (len(cache), cache.held_bytes) == (1, held)


def test_an_entry_larger_than_the_whole_bound_is_not_kept(monkeypatch: pytest.MonkeyPatch,
                                                          vectors: Vectors) -> None:
    tiny = SignerCache(max_bytes=1_000)
    monkeypatch.setattr(xmldsig, "SIGNER_CACHE", tiny)
    assert _verdict(vectors.valid_raw, vectors) == "passed"
    assert (len(tiny), tiny.held_bytes) == (0, 0)
