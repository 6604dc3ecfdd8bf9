"""Rate limits per agency, client certificates mapped through the directory, the TLS pin."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest
from cryptography.hazmat.primitives import serialization

from hub.api.auth import CertificateMap, RateLimiter
from hub.api.tls import TlsH11Protocol, client_certificate
from hub.directory import Directory
from tests.pki_fixtures import AT, GeneratedPki, session_pki

FINANCE = "000.00.03.H27"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_agency_gets_its_burst_then_its_rate_and_another_agency_its_own_budget() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("A") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("A") == pytest.approx(0.5)
    assert limiter.take("B") == 0.0
    clock.now += 0.5  # one token back at 2/s
    assert limiter.take("A") == 0.0
    assert limiter.take("A") > 0


def test_an_organization_seal_certificate_maps_to_its_organization(pki: GeneratedPki) -> None:
    der = pki.org(FINANCE).cert.public_bytes(serialization.Encoding.DER)
    entry = CertificateMap(Directory.sample()).organization(der, AT)
    assert entry is not None
    assert entry.code == FINANCE


def test_a_person_certificate_or_garbage_maps_to_no_organization(pki: GeneratedPki) -> None:
    person = pki.person("CCCD:042080000001").cert.public_bytes(serialization.Encoding.DER)
    certificates = CertificateMap(Directory.sample())
    assert certificates.organization(person, AT) is None
    assert certificates.organization(b"not a certificate", AT) is None


def test_a_certificate_is_only_its_organizations_while_the_organization_exists(
    pki: GeneratedPki
) -> None:
    district = pki.org("000.00.36.H27").cert.public_bytes(serialization.Encoding.DER)
    certificates = CertificateMap(Directory.sample())
    assert certificates.organization(district, dt.datetime(2025, 3, 3, tzinfo=dt.UTC)) is not None
    assert certificates.organization(district, dt.datetime(2025, 8, 1, tzinfo=dt.UTC)) is None


def test_the_uvicorn_internal_the_tls_protocol_relies_on_is_still_there() -> None:
    # hub/api/tls.py intercepts `self.scope = {...}` in H11Protocol.handle_events: an upgrade
    # of uvicorn that builds the scope differently must fail here, not in production.
    from uvicorn.protocols.http.h11_impl import H11Protocol

    assert "self.scope = {" in inspect.getsource(H11Protocol.handle_events)
    protocol = TlsH11Protocol.__new__(TlsH11Protocol)
    protocol._tls = {"client_cert_chain": ["-----BEGIN CERTIFICATE-----\nAAAA\n"
                                           "-----END CERTIFICATE-----\n"]}
    protocol.scope = {"type": "http"}
    assert protocol.scope["extensions"]["tls"] is protocol._tls
    assert client_certificate({"type": "http"}) is None
