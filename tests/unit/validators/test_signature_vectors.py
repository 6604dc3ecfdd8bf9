"""Data-driven signature vectors (tests/vectors/signatures/manifest.toml), each run twice: with
the envelopes the recipes start from signed in QCVN 102's ``edXML:DigitalSignature`` slot, and
signed as the last child of ``edXMLHeader`` (the two accepted placements). So every XSW shape is
proven to fail in both placements."""

from __future__ import annotations

import pytest

from hub.edxml import SignaturePlacement
from hub.validators import validate_packet
from tests.pki_fixtures import GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import (
    RECIPES,
    VectorCase,
    Vectors,
    build,
    load_manifest,
)

CASES = load_manifest()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module", params=list(SignaturePlacement), ids=lambda p: p.value)
def vectors(pki: GeneratedPki, request: pytest.FixtureRequest) -> Vectors:
    return Vectors(pki, placement=request.param)


def test_every_manifest_row_has_a_recipe_and_every_recipe_a_row() -> None:
    assert {c.recipe for c in CASES} == set(RECIPES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_signature_vector_gets_its_expected_outcome(case: VectorCase, vectors: Vectors) -> None:
    # Given the packet the recipe built from the generated PKI
    built = build(case.recipe, vectors)
    # When the hub validates it (this never raises)
    report = validate_packet(
        built.packet, at=built.at, policy=built.policy, directory=built.directory,
        crls=built.crls, ocsp=built.ocsp)
    # Then the indication and the first reason are the expected ones
    assert (report.indication, report.reason) == (case.indication, case.reason), report.describe()
    assert report.to_dict()["reason"] == case.reason.value
