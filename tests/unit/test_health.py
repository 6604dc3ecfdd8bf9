"""``hub doctor`` and /readyz name every configured CA without usable revocation data."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Settings, with_overrides
from hub.ops.health import check_crls
from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import NOW, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("health-pki"))


def _settings(pki: PkiPaths, tmp: Path, crls: list[Path]) -> Settings:
    return with_overrides(Settings(base_dir=str(tmp)), trust={
        "roots": [str(pki.root_cert)], "intermediates": [str(pki.issuing_ca_cert)],
        "crls": [str(c) for c in crls], "fetch_crls": False})


def test_every_ca_with_a_fresh_crl_is_healthy(pki: PkiPaths, tmp_path: Path) -> None:
    line = check_crls(_settings(pki, tmp_path, [pki.crl_der, pki.root_crl_der]), now=NOW)
    assert line.startswith("2 CA(s) with fresh CRLs")


def test_a_root_without_a_crl_is_named(pki: PkiPaths, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CRL for") as caught:
        check_crls(_settings(pki, tmp_path, [pki.crl_der]), now=NOW)
    from cryptography import x509

    root = x509.load_pem_x509_certificate(pki.root_cert.read_bytes()).subject.rfc4514_string()
    issuing = x509.load_pem_x509_certificate(
        pki.issuing_ca_cert.read_bytes()).subject.rfc4514_string()
    assert root in str(caught.value)
    assert issuing not in str(caught.value)


def test_a_stale_crl_is_named_as_stale(pki: PkiPaths, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    # Loaded now, judged a year later: neither recently obtained nor before its nextUpdate
    with pytest.raises(ValueError, match="stale CRL for"):
        check_crls(_settings(pki, tmp_path, [pki.crl_der, pki.root_crl_der]),
                   now=datetime.now(UTC) + timedelta(days=400))
