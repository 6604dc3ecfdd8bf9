"""RevocationCache: configured CRL files and CRLs fetched over HTTP (a real local server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import Settings, with_overrides
from hub.errors import ConfigurationError
from hub.trust.revocation import RevocationCache
from hub.validators.trust import distribution_points
from tests.pki_fixtures import PKI_NOW, GeneratedPki
from tests.unit.validators.file_server import serving


@pytest.fixture
def crl_server(pki: GeneratedPki) -> Iterator[str]:
    """Serves DIR/crl over HTTP on an ephemeral port; yields the base URL."""
    with serving(pki.paths.crl_der.parent) as url:
        yield url


def _settings(**trust: object) -> Settings:
    return with_overrides(Settings(), trust=trust)


def test_configured_crl_files_are_loaded_with_their_file_time(pki: GeneratedPki) -> None:
    cache = RevocationCache(_settings(crls=[str(pki.paths.crl_der), str(pki.paths.root_crl_pem)]))
    snapshot = cache.snapshot()
    entry = snapshot.for_issuer(pki.issuing_ca.subject)
    assert entry is not None
    assert entry.source.endswith("issuing-ca.crl")
    assert snapshot.for_issuer(pki.root.subject) is not None
    assert abs(entry.fetched_at - dt.datetime.fromtimestamp(
        pki.paths.crl_der.stat().st_mtime, dt.UTC)) < dt.timedelta(seconds=1)


def test_the_snapshot_is_kept_until_the_crls_change(pki: GeneratedPki, crl_server: str) -> None:
    cache = RevocationCache(_settings(crls=[str(pki.paths.root_crl_pem)]), clock=lambda: PKI_NOW)
    first = cache.snapshot()
    assert cache.snapshot() is first
    assert first.for_issuer(pki.issuing_ca.subject) is None
    # A fetched CRL is in the very next snapshot.
    cache.refresh([f"{crl_server}/issuing-ca.crl"])
    assert cache.snapshot() is not first
    assert cache.snapshot().for_issuer(pki.issuing_ca.subject) is not None


def test_an_unreadable_crl_file_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.crl"
    bad.write_bytes(b"not a crl")
    with pytest.raises(ConfigurationError, match=r"bad\.crl"):
        RevocationCache(_settings(crls=[str(bad)]))


def test_crls_are_fetched_from_distribution_points(pki: GeneratedPki, crl_server: str) -> None:
    url = f"{crl_server}/issuing-ca.crl"
    cache = RevocationCache(_settings(), clock=lambda: PKI_NOW)
    snapshot = cache.refresh([url])
    entry = snapshot.for_issuer(pki.issuing_ca.subject)
    assert entry is not None
    assert entry.fetched_at == PKI_NOW
    assert entry.source == url
    assert cache.errors == {}


def test_a_failed_fetch_is_recorded_not_raised(crl_server: str) -> None:
    cache = RevocationCache(_settings())
    snapshot = cache.refresh([f"{crl_server}/missing.crl"])
    assert snapshot.by_issuer == {}
    assert "HTTPError" in cache.errors[f"{crl_server}/missing.crl"]


def test_fetching_can_be_switched_off(crl_server: str) -> None:
    cache = RevocationCache(_settings(fetch_crls=False))
    assert cache.refresh([f"{crl_server}/issuing-ca.crl"]).by_issuer == {}


def test_the_certificates_carry_the_configured_distribution_points(pki: GeneratedPki) -> None:
    assert distribution_points(pki.org("000.00.01.H27").cert) == (
        f"{pki.paths.crl_base_url}/issuing-ca.crl",)
    assert distribution_points(pki.issuing_ca) == (f"{pki.paths.crl_base_url}/root-ca.crl",)
