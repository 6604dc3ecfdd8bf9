"""The direct XMLDSig verifier gives exactly signxml's verdict (a fast path proven equal to
the slow one on the whole corpus, plus mutations of signed packets)."""

from __future__ import annotations

import random

import pytest

from hub.edxml.model import Envelope, StatusPacket
from hub.reasons import Reason
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import TrustPolicy
from hub.validators.xmldsig import check_xml_signature
from tests.pki_fixtures import GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import RECIPES, Vectors, build

Verdict = tuple[str, str]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def vectors(pki: GeneratedPki) -> Vectors:
    return Vectors(pki)


def _verdict(raw: bytes, policy: TrustPolicy, *, direct: bool) -> Verdict:
    try:
        sig = check_xml_signature(raw, policy, direct=direct)
    except ValidationFailure as failure:
        return ("failed", failure.reason.value)
    return ("passed", sig.leaf.fingerprint(__import__("cryptography").hazmat.primitives.hashes
                                           .SHA256()).hex())


def _raw(packet: Envelope | StatusPacket) -> bytes:
    return packet.raw


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_both_verifiers_agree_on_every_signature_vector(recipe: str, vectors: Vectors) -> None:
    built = build(recipe, vectors)
    raw = _raw(built.packet)
    assert _verdict(raw, built.policy, direct=True) == _verdict(raw, built.policy, direct=False)


def _mutations(raw: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    text = raw.decode("utf-8")
    out = []
    for marker in ("<ds:SignatureValue>", "<ds:DigestValue>", "<edXML:Subject>",
                   "<edXML:OrganId>", "</ds:SignedInfo>"):
        i = text.find(marker)
        if i < 0:
            continue
        j = i + len(marker) + rng.randrange(1, 8)
        if j < len(text) and text[j].isalnum():
            c = text[j]
            flipped = "A" if c != "A" else "B"
            out.append((text[:j] + flipped + text[j + 1:]).encode("utf-8"))
    # whitespace inside SignedInfo (signed: must break the signature, for both)
    out.append(text.replace("<ds:SignedInfo>", "<ds:SignedInfo> ", 1).encode("utf-8"))
    # whitespace after the signature (not signed content? it is: enveloped keeps the tail)
    out.append(text.replace("</ds:Signature>", "</ds:Signature> ", 1).encode("utf-8"))
    # a comment in the signed content (URI="" removes comments: still valid, for both)
    out.append(text.replace("<edXML:Subject>", "<!-- c --><edXML:Subject>", 1).encode("utf-8"))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_both_verifiers_agree_on_mutated_signed_packets(seed: int, vectors: Vectors) -> None:
    built = build("valid", vectors)
    raw = _raw(built.packet)
    verdicts = []
    for mutated in _mutations(raw, seed):
        fast = _verdict(mutated, built.policy, direct=True)
        slow = _verdict(mutated, built.policy, direct=False)
        assert fast == slow, mutated[:200]
        verdicts.append(fast)
    # the mutations do exercise failures, not only passes
    assert any(v[0] == "failed" for v in verdicts)
    assert ("failed", Reason.SIGNATURE_INVALID.value) in verdicts or (
        "failed", Reason.SIGNATURE_DIGEST_MISMATCH.value) in verdicts
