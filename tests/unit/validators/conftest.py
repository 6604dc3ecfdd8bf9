"""Fixtures shared by the validator tests: the session's test PKI, the signature vectors built
from it, and the specialized trust policy.

``vectors`` builds envelopes signed in QCVN 102's ``edXML:DigitalSignature`` slot. A module that
sets ``VECTORS_IN_EVERY_PLACEMENT = True`` gets each of its tests that use ``vectors`` once per
accepted signature placement (the slot, and the last child of ``edXMLHeader``), so what it
proves holds in both. A module that needs vectors from another PKI (``test_ocsp.py``: every
certificate names a local OCSP responder) overrides ``vectors`` itself.
"""

from __future__ import annotations

import pytest

from hub.edxml import SignaturePlacement
from hub.validators import TrustPolicy
from tests.pki_fixtures import GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import Vectors


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    """The session's test PKI (generated once, shared with every test package)."""
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki, request: pytest.FixtureRequest) -> Vectors:
    """Signature vectors from :func:`pki`, built once per module (and placement)."""
    placement: SignaturePlacement = getattr(request, "param", SignaturePlacement.SLOT)
    return Vectors(pki, placement=placement)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vectors" in metafunc.fixturenames and getattr(
            metafunc.module, "VECTORS_IN_EVERY_PLACEMENT", False):
        metafunc.parametrize("vectors", list(SignaturePlacement), indirect=True,
                             ids=lambda p: p.value, scope="module")


@pytest.fixture
def policy(pki: GeneratedPki) -> TrustPolicy:
    """The specialized trust policy of the test PKI, fresh for each test (its path cache starts
    empty): the specialized root and issuing CA, the public root to refuse, the policy OID."""
    return TrustPolicy(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                       public_roots=(pki.public_root,),
                       policy_oids=frozenset({pki.paths.policy_oid}))
