"""Trust paths, the chain cache, CRL snapshots, and the trust store loader."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hub.config import Settings, with_overrides
from hub.errors import ConfigurationError
from hub.reasons import Reason
from hub.testing.pki import make_crl
from hub.trust.store import load_policy
from hub.validators import CrlEntry, CrlSnapshot, Indication, TrustPolicy
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import check_revocation, validate_chain
from tests.pki_fixtures import AT, PKI_NOW, GeneratedPki

SENDER = "000.00.01.H27"


def _crls(pki: GeneratedPki, fetched_at: dt.datetime = PKI_NOW) -> CrlSnapshot:
    return CrlSnapshot.of(CrlEntry(c, fetched_at=fetched_at) for c in pki.crls)


def test_an_organization_certificate_chains_to_the_specialized_root(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    path = validate_chain(pki.org(SENDER).cert, (), policy, AT)
    assert path == (pki.org(SENDER).cert, pki.issuing_ca, pki.root)


def test_the_issuing_ca_can_come_from_key_info_alone(pki: GeneratedPki) -> None:
    policy = TrustPolicy(roots=(pki.root,))
    path = validate_chain(pki.org(SENDER).cert, (pki.issuing_ca,), policy, AT)
    assert path[-1] == pki.root


def test_without_the_issuing_ca_the_root_is_not_reached(pki: GeneratedPki) -> None:
    with pytest.raises(ValidationFailure) as failure:
        validate_chain(pki.org(SENDER).cert, (), TrustPolicy(roots=(pki.root,)), AT)
    assert failure.value.reason is Reason.CERT_UNTRUSTED_ROOT


def test_an_impostor_ca_with_the_right_name_but_another_key_breaks_the_path(
    pki: GeneratedPki,
) -> None:
    # Given a CA certificate that copies the issuing CA's name but holds another key
    key = pki.keys("impostor", 2048)
    impostor = (
        x509.CertificateBuilder().subject_name(pki.issuing_ca.subject)
        .issuer_name(pki.root.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW - dt.timedelta(days=1))
        .not_valid_after(PKI_NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    # When it is the only intermediate on offer
    policy = TrustPolicy(roots=(pki.root,))
    with pytest.raises(ValidationFailure) as failure:
        validate_chain(pki.org(SENDER).cert, (impostor,), policy, AT)
    # Then the path is broken (the name matches, the signature does not)
    assert failure.value.reason is Reason.CERT_PATH_INVALID


def test_path_results_are_cached_per_leaf_and_offered_chain(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    leaf = pki.org(SENDER).cert
    validate_chain(leaf, (), policy, AT)
    validate_chain(leaf, (), policy, AT)
    assert policy.cache.hits == 1
    assert policy.cache.misses == 1


def test_validity_is_rechecked_at_each_time_even_with_a_cached_path(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    leaf = pki.org(SENDER).cert
    validate_chain(leaf, (), policy, AT)
    with pytest.raises(ValidationFailure) as failure:
        validate_chain(leaf, (), policy, leaf.not_valid_after_utc + dt.timedelta(seconds=1))
    assert failure.value.reason is Reason.CERT_EXPIRED


def test_a_replaced_policy_does_not_share_the_cache(policy: TrustPolicy) -> None:
    assert dataclasses.replace(policy, public_roots=()).cache is not policy.cache


def test_a_revoked_certificate_is_refused_only_from_its_revocation_date(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    revoked = pki.special("revoked").cert
    path = (revoked, pki.issuing_ca, pki.root)
    with pytest.raises(ValidationFailure) as failure:
        check_revocation(path, _crls(pki), policy, AT)
    assert failure.value.reason is Reason.CERT_REVOKED
    # Revoked one day before PKI_NOW: a packet received two days before is not affected.
    check_revocation(path, _crls(pki), policy, PKI_NOW - dt.timedelta(days=2))


def test_a_crl_past_next_update_but_fetched_recently_is_still_used_within_the_window(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    # The test PKI's CRLs say nextUpdate PKI_NOW + 7 days; the window is crl_freshness (1 h).
    later = PKI_NOW + dt.timedelta(days=7, minutes=30)
    path = validate_chain(pki.org(SENDER).cert, (), policy, later)
    check_revocation(path, _crls(pki, fetched_at=later - dt.timedelta(minutes=5)), policy, later)
    a_day_late = PKI_NOW + dt.timedelta(days=8)
    with pytest.raises(ValidationFailure) as failure:
        check_revocation(path, _crls(pki, fetched_at=a_day_late - dt.timedelta(minutes=5)),
                         policy, a_day_late)
    assert failure.value.reason is Reason.REVOCATION_UNAVAILABLE


def test_a_crl_signed_by_another_key_is_not_trusted(pki: GeneratedPki, policy: TrustPolicy) -> None:
    forged = make_crl(pki.issuing_ca, pki.business.key, this_update=PKI_NOW,
                      next_update=PKI_NOW + dt.timedelta(days=7))
    snapshot = CrlSnapshot.of([CrlEntry(forged, PKI_NOW), CrlEntry(pki.crls[0], PKI_NOW)])
    path = validate_chain(pki.org(SENDER).cert, (), policy, AT)
    with pytest.raises(ValidationFailure) as failure:
        check_revocation(path, snapshot, policy, AT)
    assert failure.value.reason is Reason.REVOCATION_UNAVAILABLE
    assert failure.value.indication is Indication.INDETERMINATE
    assert "issuing-ca.crl" in failure.value.evidence["crl_urls"]


def test_a_crl_verified_for_its_issuer_is_still_refused_for_another_issuer(
    pki: GeneratedPki,
) -> None:
    # The verdict is remembered per (entry, issuer certificate), never per entry alone.
    entry = CrlEntry(pki.crls[0], PKI_NOW)
    issuer = pki.issuing_ca if entry.crl.issuer == pki.issuing_ca.subject else pki.root
    other = pki.root if issuer is pki.issuing_ca else pki.issuing_ca
    assert entry.signed_by(issuer)
    assert entry.signed_by(issuer)  # the remembered verdict
    assert not entry.signed_by(other)
    assert not entry.signed_by(pki.business.cert)


def test_the_snapshot_keeps_the_newest_crl_per_issuer(pki: GeneratedPki) -> None:
    newer = make_crl(pki.issuing_ca, pki.keys("issuing-ca", 2048), this_update=AT,
                     next_update=AT + dt.timedelta(days=7), number=2)
    snapshot = CrlSnapshot.of([CrlEntry(newer, AT), *[CrlEntry(c, PKI_NOW) for c in pki.crls]])
    entry = snapshot.for_issuer(pki.issuing_ca.subject)
    assert entry is not None
    assert entry.number == 2
    assert len(snapshot.versions) == 2


def test_load_policy_reads_roots_intermediates_and_public_roots(pki: GeneratedPki) -> None:
    settings = with_overrides(Settings(), trust={
        "roots": [str(pki.paths.root_cert)],
        "intermediates": [str(pki.paths.issuing_ca_cert)],
        "public_roots": [str(pki.paths.public_root_cert.parent)],
        "policy_oids": [pki.paths.policy_oid],
    })
    policy = load_policy(settings)
    assert policy.roots == (pki.root,)
    assert policy.intermediates == (pki.issuing_ca,)
    assert pki.public_root in policy.public_roots
    assert policy.policy_oids == frozenset({pki.paths.policy_oid})


def test_load_policy_refuses_an_empty_trust_store() -> None:
    with pytest.raises(ConfigurationError, match="never falls back"):
        load_policy(Settings())


def test_load_policy_names_a_missing_file(tmp_path: Path) -> None:
    settings = with_overrides(Settings(), trust={"roots": [str(tmp_path / "nope.pem")]})
    with pytest.raises(ConfigurationError, match=r"nope\.pem"):
        load_policy(settings)


def test_load_policy_refuses_a_root_that_is_not_self_issued(pki: GeneratedPki) -> None:
    settings = with_overrides(Settings(), trust={"roots": [str(pki.paths.issuing_ca_cert)]})
    with pytest.raises(ConfigurationError, match="not self-issued"):
        load_policy(settings)
