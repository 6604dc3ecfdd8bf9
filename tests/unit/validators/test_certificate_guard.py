"""Certificates as untrusted input: every field is read once inside a guard (a malformed one is
CERT_MALFORMED, never INTERNAL_ERROR or an exception out of ``validate_packet``); envelope
signers get the RFC 5280 path-length and critical-extension rules PDF signers get from
pyhanko-certvalidator; the path cache holds values, never exceptions, and stays bounded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import traceback
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, NameOID

from hub.edxml import parse_packet
from hub.reasons import Reason
from hub.validators import ChainCache, Indication, TrustPolicy, validate_packet
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import KNOWN_CRITICAL_EXTENSIONS, validate_chain
from tests.pki_fixtures import (
    AT,
    DIRECTORY,
    PKI_NOW,
    SHA256_RSA,
    GeneratedPki,
    Issued,
    issue,
    issuing_ca,
    patched,
    session_pki,
)
from tests.unit.validators.signature_vectors import Vectors

SENDER = "000.00.01.H27"
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.99999.9.9")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki) -> Vectors:
    return Vectors(pki)


def _policy(pki: GeneratedPki) -> TrustPolicy:
    return TrustPolicy(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                       public_roots=(pki.public_root,),
                       policy_oids=frozenset({pki.paths.policy_oid}))


def _reason(leaf: Issued, policy: TrustPolicy) -> Reason:
    with pytest.raises(ValidationFailure) as failure:
        validate_chain(leaf.cert, leaf.chain, policy, AT)
    return failure.value.reason


# -- malformed certificates --------------------------------------------------------------------


MALFORMED_EXTENSIONS = {
    "key usage": (ExtensionOID.KEY_USAGE, b"\x01\x01\xff", True),
    "basic constraints": (ExtensionOID.BASIC_CONSTRAINTS, b"", True),
    "certificate policies": (ExtensionOID.CERTIFICATE_POLICIES, b"\x04\x00", False),
    "CRL distribution points": (ExtensionOID.CRL_DISTRIBUTION_POINTS, b"\x30\x05", False),
    "authority information access": (
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS, b"\x30\x05", False),
}


def _root(pki: GeneratedPki) -> Issued:
    return Issued(pki.root, pki.keys("root", 3072))


def _malformed_extension(name: str) -> Maker:
    oid, value, critical = MALFORMED_EXTENSIONS[name]

    def make(pki: GeneratedPki, issuer: Issued, ca: bool) -> Issued:
        label = f"bad {name}{' CA' if ca else ''}"
        if oid == ExtensionOID.BASIC_CONSTRAINTS:
            # The builder always adds basicConstraints: cut the encoded one short instead.
            good = issue(pki, label, issuer, ca=ca, uid=None if ca else SENDER)
            encoded = x509.BasicConstraints(ca=ca, path_length=None).public_bytes()
            return patched(good, issuer, b"\x04" + bytes([len(encoded)]) + encoded,
                           b"\x04" + bytes([len(encoded)]) + b"\x30\x01" + encoded[2:])
        return issue(pki, label, issuer, ca=ca, uid=None if ca else SENDER,
                     extensions=((x509.UnrecognizedExtension(oid, value), critical),))
    return make


def _bad_subject(pki: GeneratedPki, issuer: Issued, ca: bool) -> Issued:
    """A subject commonName whose UTF8String is not UTF-8."""
    good = issue(pki, f"zzzz{ca:d}", issuer, ca=ca, uid=None if ca else SENDER)
    return patched(good, issuer, f"zzzz{ca:d} (TEST)".encode(), f"\xff\xfezz{ca:d} (TEST)".encode(
        "latin-1"))


def _unknown_signature_algorithm(pki: GeneratedPki, issuer: Issued, ca: bool) -> Issued:
    good = issue(pki, f"unknown algorithm{' CA' if ca else ''}", issuer, ca=ca,
                 uid=None if ca else SENDER)
    return patched(good, issuer, SHA256_RSA, SHA256_RSA[:-1] + b"\x7f")


Maker = Callable[[GeneratedPki, Issued, bool], Issued]
MALFORMED: dict[str, Maker] = {
    **{f"malformed {name}": _malformed_extension(name) for name in MALFORMED_EXTENSIONS},
    "subject name not UTF-8": _bad_subject,
    "unknown signature algorithm": _unknown_signature_algorithm,
}


def _expected(name: str) -> Reason:
    """An unknown signature algorithm is no parse error: the path rules refuse it."""
    return Reason.CERT_PATH_INVALID if name == "unknown signature algorithm" else (
        Reason.CERT_MALFORMED)


def _malformed_leaf(pki: GeneratedPki, name: str) -> Issued:
    return MALFORMED[name](pki, issuing_ca(pki), False)


def _raises_on_some_field(cert: x509.Certificate) -> bool:
    for read in (lambda: cert.extensions, lambda: cert.subject,
                 lambda: cert.signature_hash_algorithm):
        try:
            read()
        except Exception:
            return True
    return False


@pytest.mark.parametrize("ca", [False, True], ids=["leaf", "CA"])
def test_the_malformed_vectors_load_and_fail_only_when_a_field_is_read(
    ca: bool, pki: GeneratedPki,
) -> None:
    for name, make in MALFORMED.items():
        # Given each malformed certificate: it loads (cryptography parses fields lazily) and
        # reading some field raises: the vector is really malformed
        assert _raises_on_some_field(make(pki, _root(pki), ca).cert), name


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_signer_certificate_is_refused_as_malformed(
    name: str, pki: GeneratedPki,
) -> None:
    assert _reason(_malformed_leaf(pki, name), _policy(pki)) is _expected(name)


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_ca_certificate_is_refused_as_malformed(
    name: str, pki: GeneratedPki,
) -> None:
    # Given a signer under a CA (issued by the root) whose certificate is malformed
    ca = MALFORMED[name](pki, _root(pki), True)
    leaf = issue(pki, "leaf under a malformed CA", ca, uid=SENDER)
    # When the signer offers that CA, Then the path is refused for the malformed certificate
    assert _reason(leaf, TrustPolicy(roots=(pki.root,))) is _expected(name)


@pytest.mark.parametrize("name", [n for n in MALFORMED if n != "subject name not UTF-8"])
def test_an_envelope_signed_with_a_malformed_certificate_gets_a_certificate_reason(
    name: str, vectors: Vectors,
) -> None:
    # Given an envelope signed with a malformed certificate (KeyInfo: the leaf and its CA)
    signer = _malformed_leaf(vectors.pki, name).signer
    packet = parse_packet(vectors.signed(signer))
    # When it is validated
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    # Then it is refused for the certificate, for good
    assert report.reason is _expected(name), report.describe()
    assert report.indication is Indication.FAILED


def test_an_envelope_whose_only_certificate_has_an_unreadable_subject_is_refused_without_raising(
    vectors: Vectors,
) -> None:
    # Given an envelope whose KeyInfo carries only the leaf, with a subject that is not UTF-8
    bad = _malformed_leaf(vectors.pki, "subject name not UTF-8")
    signer = dataclasses.replace(bad, chain=()).signer
    packet = parse_packet(vectors.signed(signer))
    # When it is validated (the issuing CA is configured)
    report = validate_packet(packet, at=AT, policy=vectors.policy, directory=DIRECTORY,
                             crls=vectors.crls)
    # Then the report says why; validate_packet did not raise
    assert report.reason is Reason.CERT_MALFORMED, report.describe()
    assert report.signer is not None
    assert report.signer.fingerprint


def test_a_well_formed_certificate_still_passes_the_guard(pki: GeneratedPki) -> None:
    leaf = issue(pki, "well formed", issuing_ca(pki), uid=SENDER)
    assert validate_chain(leaf.cert, leaf.chain, _policy(pki), AT)[-1] == pki.root


# -- path length and critical extensions (RFC 5280 §6.1.4 (l)-(m), §6.1.3-4 (o)) --------------


def _sub_ca(pki: GeneratedPki, **kwargs: object) -> Issued:
    """A CA under the issuing CA, whose pathLenConstraint is 0: nothing may sit below it."""
    return issue(pki, "sub CA", issuing_ca(pki), ca=True, **kwargs)  # type: ignore[arg-type]


def test_a_signer_below_a_ca_whose_path_length_is_exhausted_is_refused(pki: GeneratedPki) -> None:
    leaf = issue(pki, "leaf under sub CA", _sub_ca(pki), uid=SENDER)
    assert _reason(leaf, _policy(pki)) is Reason.CERT_PATH_INVALID


def test_a_path_within_every_path_length_is_accepted(pki: GeneratedPki) -> None:
    # Given a two-level CA hierarchy under a root whose issuing CA allows one more CA
    root = _root(pki)
    upper = issue(pki, "upper CA", root, ca=True, path_length=1)
    lower = issue(pki, "lower CA", upper, ca=True, path_length=0)
    leaf = issue(pki, "leaf two levels down", lower, uid=SENDER)
    # Then the path is built and passes
    path = validate_chain(leaf.cert, leaf.chain, TrustPolicy(roots=(pki.root,)), AT)
    assert path == (leaf.cert, lower.cert, upper.cert, pki.root)


def test_a_signer_certificate_with_an_unknown_critical_extension_is_refused(
    pki: GeneratedPki,
) -> None:
    leaf = issue(pki, "unknown critical leaf", issuing_ca(pki), uid=SENDER, extensions=(
        (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True),))
    with pytest.raises(ValidationFailure) as failure:
        validate_chain(leaf.cert, leaf.chain, _policy(pki), AT)
    assert failure.value.reason is Reason.CERT_PATH_INVALID
    assert UNKNOWN_OID.dotted_string in failure.value.detail


def test_an_unknown_extension_that_is_not_critical_is_ignored(pki: GeneratedPki) -> None:
    leaf = issue(pki, "unknown non-critical leaf", issuing_ca(pki), uid=SENDER, extensions=(
        (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), False),))
    validate_chain(leaf.cert, leaf.chain, _policy(pki), AT)


def test_a_ca_with_an_unknown_critical_extension_is_refused(pki: GeneratedPki) -> None:
    ca = issue(pki, "unknown critical CA", _root(pki), ca=True, path_length=0, extensions=(
        (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True),))
    leaf = issue(pki, "leaf under unknown critical CA", ca, uid=SENDER)
    assert _reason(leaf, TrustPolicy(roots=(pki.root,))) is Reason.CERT_PATH_INVALID


@pytest.mark.parametrize("case", ["path length", "unknown critical extension"])
def test_an_envelope_signer_gets_the_pdf_signers_path_rules(case: str, vectors: Vectors) -> None:
    # Given an envelope signed by a certificate whose path breaks one rule
    pki = vectors.pki
    if case == "path length":
        signer = issue(pki, "leaf under sub CA", _sub_ca(pki), uid=SENDER).signer
    else:
        signer = issue(pki, "unknown critical leaf", issuing_ca(pki), uid=SENDER, extensions=(
            (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True),)).signer
    report = validate_packet(parse_packet(vectors.signed(signer)), at=AT, policy=vectors.policy,
                             directory=DIRECTORY, crls=vectors.crls)
    # Then the trust check refuses it, as pyHanko refuses it for a PDF signature
    trust = next(c for c in report.checks if c.check == "trust")
    assert trust.reason is Reason.CERT_PATH_INVALID, report.describe()
    assert report.indication is Indication.FAILED


def test_the_known_critical_extensions_are_those_pyhanko_processes_and_the_hub_too() -> None:
    from asn1crypto.x509 import ExtensionId
    from pyhanko_certvalidator.validate import SUPPORTED_EXTENSIONS

    # Name constraints and policy mappings/constraints are processed by pyHanko but not by the
    # hub (the specialized hierarchy does not use them): critical ones are refused.
    not_processed = {"name_constraints", "policy_mappings", "policy_constraints",
                     "inhibit_any_policy", "aa_controls"}
    names = {v: k for k, v in ExtensionId._map.items()}
    expected = {names.get(n, n) for n in SUPPORTED_EXTENSIONS - not_processed}
    assert {o.dotted_string for o in KNOWN_CRITICAL_EXTENSIONS} == expected


# -- the path cache: values, not exceptions; bounded -----------------------------------------


def _self_signed(pki: GeneratedPki, serial: int) -> x509.Certificate:
    key = pki.keys("self-signed", 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"self {serial} (TEST)")])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(PKI_NOW - dt.timedelta(days=1))
        .not_valid_after(PKI_NOW + dt.timedelta(days=30))
        .sign(key, hashes.SHA256()))


def test_a_remembered_refusal_is_raised_afresh_each_time_with_a_short_traceback(
    pki: GeneratedPki,
) -> None:
    # Given a policy that has refused one certificate once
    policy = _policy(pki)
    cert = pki.self_signed.cert
    raised = []
    for _ in range(50):
        # When it is judged again and again (from the cache)
        with pytest.raises(ValidationFailure) as failure:
            validate_chain(cert, (), policy, AT)
        raised.append(failure.value)
    # Then each refusal is a new exception, whose traceback does not grow with the calls
    assert policy.cache.hits >= 49
    assert len({id(f) for f in raised}) == len(raised)
    depths = {len(traceback.extract_tb(f.__traceback__)) for f in raised}
    assert max(depths) < 10, depths
    assert all(f.reason is Reason.CERT_SELF_SIGNED for f in raised)
    # And the cache keeps values only: no exception, no traceback, no frame
    assert not any(isinstance(v, BaseException) for v in policy.cache.values())


def test_the_path_cache_holds_no_pdf_objects_after_refused_pdf_signatures(
    vectors: Vectors,
) -> None:
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    from hub.trust.signing import minimal_pdf, sign_pdf

    # Given envelopes whose PDF is signed under a public CA (refused by the path check)
    pdf = sign_pdf(minimal_pdf(), vectors.pki.business, field_name="NguoiKy", reason="Ký")
    policy = dataclasses.replace(vectors.policy)
    packet = parse_packet(vectors.signed(pdf=pdf))

    def live() -> int:
        gc.collect()
        return sum(isinstance(o, EmbeddedPdfSignature) for o in gc.get_objects())

    before = live()
    for _ in range(20):
        report = validate_packet(packet, at=AT, policy=policy, directory=DIRECTORY,
                                 crls=vectors.crls)
        assert report.reason is Reason.PDF_SIGNER_UNTRUSTED, report.describe()
    # Then no PDF signature object outlives its validation (none is kept by a cached failure)
    assert live() <= before


def test_the_path_cache_is_bounded_in_entries_and_bytes(pki: GeneratedPki) -> None:
    cache = ChainCache(size=8, max_bytes=6_000)
    policy = _policy(pki)
    # Given more distinct signers than the cache holds, each judged once
    for serial in range(1, 40):
        cache.put((str(serial),), (_self_signed(pki, serial), pki.issuing_ca, pki.root))
        with pytest.raises(ValidationFailure):
            validate_chain(_self_signed(pki, serial), (), policy, AT)
    # Then the cache stays within both bounds
    assert len(cache) <= 8
    assert cache.size_bytes <= 6_000
    assert len(policy.cache) <= policy.cache.max_entries
