"""The direct XMLDSig signer produces exactly what signxml produces (STYLE: a fast path is
proven equal to the slow one on the whole corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.edxml import parse_packet
from hub.trust.signing import sign_xml, sign_xml_signxml
from tests.pki_fixtures import GeneratedPki, session_pki

VALID = sorted((Path(__file__).resolve().parents[1] / "vectors" / "edxml" / "valid").glob("*.xml"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.mark.parametrize("vector", VALID, ids=lambda p: p.stem)
def test_the_fast_signer_is_byte_identical_to_signxml_on_every_valid_vector(
    vector: Path, pki: GeneratedPki
) -> None:
    data = vector.read_bytes()
    if b'Id="placeholder"' not in data:
        pytest.skip("vector carries no signature placeholder")
    signer = next(iter(pki.keystore.values()))
    fast = sign_xml(data, signer)
    assert fast == sign_xml_signxml(data, signer)
    assert parse_packet(fast).raw == fast
