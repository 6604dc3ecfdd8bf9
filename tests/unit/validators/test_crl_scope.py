"""Which CRLs decide a certificate's status: complete CRLs whose scope covers it (RFC 5280
§5.2.4-5, §6.3.3 (b)-(c)), fresh by their own dates — never a delta, a partition or an old CRL
standing in for the one that revokes the signer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ObjectIdentifier

from hub.config import Settings
from hub.reasons import Reason
from hub.testing.pki import ROOT_BITS, make_crl
from hub.trust.revocation import RevocationCache
from hub.validators import CrlEntry, CrlSnapshot, TrustPolicy
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import check_revocation, crl_scope, distribution_points
from tests.pki_fixtures import AT, PKI_NOW, GeneratedPki
from tests.unit.validators.file_server import serving

SENDER = "000.00.01.H27"
NEWER = PKI_NOW + dt.timedelta(minutes=1)
"""After the test PKI's own CRLs: a CRL issued then is the newest of its issuer."""


def _idp(*, points: tuple[str, ...] = (), only_user: bool = False, only_ca: bool = False,
         some_reasons: frozenset[x509.ReasonFlags] | None = None, indirect: bool = False,
         attribute: bool = False) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(p) for p in points] or None,
        relative_name=None, only_contains_user_certs=only_user, only_contains_ca_certs=only_ca,
        only_some_reasons=some_reasons, indirect_crl=indirect,
        only_contains_attribute_certs=attribute)


def _ca_crl(pki: GeneratedPki, *extensions: tuple[x509.ExtensionType, bool],
            revoked: tuple[tuple[int, dt.datetime], ...] = (),
            this_update: dt.datetime = NEWER, number: int = 2,
            next_update: dt.datetime | None = None) -> x509.CertificateRevocationList:
    return make_crl(pki.issuing_ca, pki.keys("issuing-ca", 2048), revoked=revoked,
                    this_update=this_update,
                    next_update=next_update or this_update + dt.timedelta(days=7),
                    number=number, extensions=extensions)


def _root_crl(pki: GeneratedPki) -> x509.CertificateRevocationList:
    return next(c for c in pki.crls if c.issuer == pki.root.subject)


def _full_ca_crl(pki: GeneratedPki) -> x509.CertificateRevocationList:
    """The test PKI's issuing-CA CRL: complete, and it revokes ``special['revoked']``."""
    return next(c for c in pki.crls if c.issuer == pki.issuing_ca.subject)


def _snapshot(*crls: x509.CertificateRevocationList,
              fetched_at: dt.datetime = PKI_NOW) -> CrlSnapshot:
    return CrlSnapshot.of(CrlEntry(c, fetched_at=fetched_at) for c in crls)


def _revoked_path(pki: GeneratedPki) -> tuple[x509.Certificate, ...]:
    return (pki.special("revoked").cert, pki.issuing_ca, pki.root)


def _sender_path(pki: GeneratedPki) -> tuple[x509.Certificate, ...]:
    return (pki.org(SENDER).cert, pki.issuing_ca, pki.root)


def _reason(path: tuple[x509.Certificate, ...], crls: CrlSnapshot, policy: TrustPolicy,
            at: dt.datetime = AT) -> tuple[Reason, str]:
    with pytest.raises(ValidationFailure) as failure:
        check_revocation(path, crls, policy, at)
    return failure.value.reason, failure.value.detail


# -- a CRL of narrower scope never stands in for the complete one --------------------------------

def test_a_newer_delta_crl_does_not_stand_in_for_the_complete_crl_that_revokes_the_signer(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    delta = _ca_crl(pki, (x509.DeltaCRLIndicator(1), True))
    crls = _snapshot(_root_crl(pki), _full_ca_crl(pki), delta)
    assert _reason(_revoked_path(pki), crls, policy)[0] is Reason.CERT_REVOKED


def test_a_newer_crl_of_ca_certificates_only_does_not_decide_an_organization_certificate(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    ca_only = _ca_crl(pki, (_idp(only_ca=True), True))
    crls = _snapshot(_root_crl(pki), _full_ca_crl(pki), ca_only)
    assert _reason(_revoked_path(pki), crls, policy)[0] is Reason.CERT_REVOKED


def test_a_newer_crl_of_another_partition_does_not_decide_a_certificate_outside_it(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    other = _ca_crl(pki, (_idp(points=("http://ca.example/p2.crl",), only_user=True), True))
    crls = _snapshot(_root_crl(pki), _full_ca_crl(pki), other)
    assert _reason(_revoked_path(pki), crls, policy)[0] is Reason.CERT_REVOKED
    # Alone, it decides nothing for that certificate: undecided, never a pass.
    reason, detail = _reason(_sender_path(pki), _snapshot(_root_crl(pki), other), policy)
    assert reason is Reason.REVOCATION_UNAVAILABLE
    assert "no CRL covering this certificate" in detail


def test_a_partition_crl_naming_the_certificates_own_distribution_point_decides_it(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    # Generous about the standard's forms: a CA that partitions its CRLs is read correctly.
    revoked = pki.special("revoked").cert
    (point,) = distribution_points(revoked)
    partition = _ca_crl(pki, (_idp(points=(point,)), True),
                        revoked=((revoked.serial_number, PKI_NOW - dt.timedelta(days=1)),))
    crls = _snapshot(_root_crl(pki), partition)
    assert _reason(_revoked_path(pki), crls, policy)[0] is Reason.CERT_REVOKED
    evidence = check_revocation(_sender_path(pki), crls, policy, AT)
    assert evidence["crl_signer"].endswith(NEWER.isoformat())


def test_a_crl_of_end_entity_certificates_only_decides_the_signer_but_not_its_ca(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    users_only = _ca_crl(pki, (_idp(only_user=True), True))
    check_revocation(_sender_path(pki), _snapshot(_root_crl(pki), users_only), policy, AT)
    # The root's CRL limited to end entities says nothing about the issuing CA it certified.
    root_users_only = make_crl(pki.root, pki.keys("root", ROOT_BITS), this_update=NEWER,
                               next_update=NEWER + dt.timedelta(days=7),
                               extensions=[(_idp(only_user=True), True)])
    reason, detail = _reason(_sender_path(pki), _snapshot(root_users_only, users_only), policy)
    assert reason is Reason.REVOCATION_UNAVAILABLE
    assert "CA certificate" in detail
    assert "no CRL covering this certificate" in detail


@pytest.mark.parametrize("extension", [
    pytest.param((x509.DeltaCRLIndicator(1), True), id="a delta CRL"),
    pytest.param((x509.DeltaCRLIndicator(1), False), id="a delta CRL marked non-critical"),
    pytest.param((_idp(indirect=True), True), id="an indirect CRL"),
    pytest.param((_idp(some_reasons=frozenset({x509.ReasonFlags.key_compromise})), True),
                 id="a CRL of some reasons only"),
    pytest.param((_idp(attribute=True), True), id="a CRL of attribute certificates"),
    pytest.param((x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                                             b"\x05\x00"), True),
                 id="an unknown critical extension"),
])
def test_a_crl_the_hub_must_not_use_decides_nothing(
    pki: GeneratedPki, policy: TrustPolicy, extension: tuple[x509.ExtensionType, bool],
) -> None:
    unusable = _ca_crl(pki, extension)
    assert crl_scope(unusable) is None
    crls = _snapshot(_root_crl(pki), unusable)
    assert crls.for_issuer(pki.issuing_ca.subject) is None
    assert _reason(_sender_path(pki), crls, policy)[0] is Reason.REVOCATION_UNAVAILABLE


def test_an_unknown_non_critical_extension_does_not_make_a_crl_unusable(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    noted = _ca_crl(pki, (x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.2"),
                                                      b"\x05\x00"), False))
    check_revocation(_sender_path(pki), _snapshot(_root_crl(pki), noted), policy, AT)


# -- freshness by the CRL's own dates ---------------------------------------------------------------

def test_a_crl_past_its_next_update_but_fetched_recently_is_used_for_the_freshness_window(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    # A CA late to publish: its last CRL stays usable for crl_freshness past its nextUpdate.
    next_update = _full_ca_crl(pki).next_update_utc
    assert next_update is not None
    at = next_update + policy.crl_freshness - dt.timedelta(minutes=1)
    crls = _snapshot(*pki.crls, fetched_at=at - dt.timedelta(minutes=5))
    check_revocation(_sender_path(pki), crls, policy, at)


def test_an_old_crl_fetched_again_now_is_stale_once_past_its_next_update_and_the_window(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    # A genuine CRL issued before the signer's revocation, served again weeks later (a replay
    # on the plain-HTTP distribution point): being fetched just now does not make it fresh.
    revoked_on = PKI_NOW - dt.timedelta(days=1)
    old = _ca_crl(pki, this_update=revoked_on - dt.timedelta(days=30), number=0)
    assert old.get_revoked_certificate_by_serial_number(
        pki.special("revoked").cert.serial_number) is None
    at = AT
    root = CrlEntry(_root_crl(pki), fetched_at=PKI_NOW)
    crls = CrlSnapshot.of([root, CrlEntry(old, fetched_at=at - dt.timedelta(minutes=1))])
    reason, detail = _reason(_revoked_path(pki), crls, policy, at)
    assert reason is Reason.REVOCATION_UNAVAILABLE
    assert "stale" in detail


def test_a_crl_is_fresh_until_its_next_update_and_if_fetched_later_the_window_past_it(
    pki: GeneratedPki, policy: TrustPolicy,
) -> None:
    entry = CrlEntry(_full_ca_crl(pki), fetched_at=PKI_NOW + dt.timedelta(days=3))
    next_update = entry.crl.next_update_utc
    assert next_update is not None
    # With one: until nextUpdate, fetched after it or not.
    assert entry.fresh_until(policy.crl_freshness) == next_update
    fetched_late = CrlEntry(entry.crl, fetched_at=next_update + dt.timedelta(days=9))
    assert fetched_late.fresh_until(policy.crl_freshness) == next_update + policy.crl_freshness


# -- a distribution point never takes the hub back to an older CRL ------------------------------------

@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server of one directory; yields (directory, base URL)."""
    with serving(tmp_path) as url:
        yield tmp_path, url


def test_a_distribution_point_serving_an_older_crl_does_not_replace_the_newer_one(
    pki: GeneratedPki, policy: TrustPolicy, served: tuple[Path, str],
) -> None:
    directory, base = served
    url = f"{base}/issuing-ca.crl"
    cache = RevocationCache(Settings(), clock=lambda: AT)
    der = serialization.Encoding.DER
    (directory / "root-ca.crl").write_bytes(_root_crl(pki).public_bytes(der))
    cache.fetch(f"{base}/root-ca.crl")
    (directory / "issuing-ca.crl").write_bytes(_full_ca_crl(pki).public_bytes(der))
    assert cache.fetch(url) is not None
    assert _reason(_revoked_path(pki), cache.snapshot(), policy)[0] is Reason.CERT_REVOKED
    # Now the same URL answers with a genuine CRL from before the revocation.
    old = _ca_crl(pki, this_update=PKI_NOW - dt.timedelta(days=3), number=0)
    (directory / "issuing-ca.crl").write_bytes(old.public_bytes(der))
    kept = cache.fetch(url)
    assert kept is not None
    assert kept.crl == _full_ca_crl(pki)
    assert "older than the CRL" in cache.errors[url]
    assert _reason(_revoked_path(pki), cache.snapshot(), policy)[0] is Reason.CERT_REVOKED
    # A lower CRL number with a later thisUpdate is no newer CRL either.
    renumbered = _ca_crl(pki, this_update=NEWER, number=0)
    (directory / "issuing-ca.crl").write_bytes(renumbered.public_bytes(der))
    assert cache.fetch(url) == kept
    # A genuinely newer CRL replaces it, and the error is cleared.
    newer = _ca_crl(pki, revoked=((pki.special("revoked").cert.serial_number,
                                   PKI_NOW - dt.timedelta(days=1)),), number=5)
    (directory / "issuing-ca.crl").write_bytes(newer.public_bytes(der))
    fetched = cache.fetch(url)
    assert fetched is not None
    assert fetched.crl == newer
    assert url not in cache.errors
