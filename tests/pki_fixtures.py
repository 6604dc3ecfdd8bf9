"""The generated test PKI as a session fixture (keys are generated once per test session).

``tests`` is a package (``from tests.pki_fixtures import ...``). A test module or conftest
declares::

    @pytest.fixture(scope="session")
    def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
        return session_pki(tmp_path_factory)

:func:`session_pki` generates the PKI once per session whichever module asks first.
Nothing here is a real key: everything is generated into a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from hub.directory import Directory
from hub.testing.pki import KeyCache, PkiPaths, init_pki, orgs_from_directory
from hub.trust.keystore import Keystore, OrgSigner

PKI_NOW = dt.datetime(2026, 3, 2, 8, 0, 0, tzinfo=dt.UTC)
"""The instant the test PKI is generated for: validity windows and CRLs are relative to it."""
AT = PKI_NOW + dt.timedelta(minutes=5)
"""A receipt time inside every validity window and within the CRLs' freshness."""

AXIS_SENDER = "000.00.00.H99"
"""A fictional province reached through the national axis, with a person signer (the bundled
sample lists only the seals of its axis bodies)."""
AXIS_PERSON = "CCCD:099080000001"
"""The person signer of :data:`AXIS_SENDER`."""
AXIS_EXTRA = f"""
[[org]]
codes = ["{AXIS_SENDER}", "H99"]
name = "Ủy ban nhân dân tỉnh Thử Nghiệm (TEST)"
level = 1
valid_from = 2016-04-01
broker_user = "axis-gateway"
reach = "axis"

  [[org.signer]]
  uid = "{AXIS_SENDER}"
  role = "organization"
  name = "Ủy ban nhân dân tỉnh Thử Nghiệm (TEST)"

  [[org.signer]]
  uid = "{AXIS_PERSON}"
  role = "person"
  name = "Lê Văn Trục"
  position = "Chủ tịch"
"""
DIRECTORY = Directory.from_toml(
    (importlib.resources.files("hub") / "data" / "directory-ha-tinh.toml").read_text("utf-8")
    + AXIS_EXTRA, "sample+axis")
"""The bundled Hà Tĩnh directory plus :data:`AXIS_SENDER`: the PKI issues a certificate to each
of their signers (axis bodies included, outside the keystore)."""
SAMPLE_ORGS = orgs_from_directory(DIRECTORY)
"""The directly served organizations and their person signers, as the PKI sees them."""


def _load_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


@dataclass
class GeneratedPki:
    """A generated PKI with its files and the loaded objects tests need."""

    paths: PkiPaths
    keys: KeyCache = field(default_factory=KeyCache)

    @cached_property
    def keystore(self) -> Keystore:
        return Keystore.load(self.paths.keystore)

    @cached_property
    def root(self) -> x509.Certificate:
        return _load_certs(self.paths.root_cert)[0]

    @cached_property
    def issuing_ca(self) -> x509.Certificate:
        return _load_certs(self.paths.issuing_ca_cert)[0]

    @cached_property
    def public_root(self) -> x509.Certificate:
        return _load_certs(self.paths.public_root_cert)[0]

    @cached_property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        return tuple(
            x509.load_der_x509_crl(p.read_bytes())
            for p in (self.paths.root_crl_der, self.paths.crl_der)
        )

    def org(self, organ_id: str) -> OrgSigner:
        """The organization (seal) signer, from the keystore."""
        signer = self.keystore.signer(organ_id)
        assert signer is not None, organ_id
        return signer

    def _load(self, name: str, where: Any) -> OrgSigner:
        return OrgSigner.from_files(name, where.key, where.cert)

    @cached_property
    def _loaded(self) -> dict[str, OrgSigner]:
        return {}

    def _cached(self, label: str, where: Any) -> OrgSigner:
        if label not in self._loaded:
            self._loaded[label] = self._load(label, where)
        return self._loaded[label]

    def person(self, uid: str) -> OrgSigner:
        """A person signer's key and certificate (wrapped as a signer)."""
        return self._cached(f"person:{uid}", self.paths.signers[uid])

    def special(self, kind: str) -> OrgSigner:
        """One of :data:`hub.testing.pki.SPECIAL_KINDS`."""
        return self._cached(f"special:{kind}", self.paths.special[kind])

    def axis_org(self, organ_id: str) -> OrgSigner:
        """The seal of a body reached through the axis (not in the keystore)."""
        return self._cached(f"axis:{organ_id}", self.paths.axis_organizations[organ_id])

    @property
    def business(self) -> OrgSigner:
        """A business certificate under the untrusted public-CA-like chain."""
        return self._cached("business", self.paths.business)

    @property
    def self_signed(self) -> OrgSigner:
        return self._cached("self-signed", self.paths.self_signed)


def make_pki(
    base: Path, directory: Any = DIRECTORY, *, keys: KeyCache | None = None,
    ocsp_url: str | None = None,
) -> GeneratedPki:
    """A test PKI at :data:`PKI_NOW`; pass the ``keys`` of another to reuse its keys (fast)."""
    keys = keys or KeyCache()
    paths = init_pki(base, directory, now=PKI_NOW, keys=keys, ocsp_url=ocsp_url,
                     include_axis=True)
    return GeneratedPki(paths, keys)


_SESSION: dict[Path, GeneratedPki] = {}


def session_pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    """The session's test PKI (generated once per session, ~0.6 s)."""
    base = tmp_path_factory.getbasetemp()
    if base not in _SESSION:
        _SESSION[base] = make_pki(tmp_path_factory.mktemp("pki"))
    return _SESSION[base]
