"""Attributes and namespace declarations are bounded, per element and in total, at parse time.

Unbounded, they made the signature check super-linear before any key was needed: lxml copies
every in-scope namespace of the ancestors to validate or canonicalize a sub-element (the
XMLDSig schema check of ``ds:Signature``, the c14n of ``SignedInfo``), and canonicalizes an
element's attributes in quadratic time — 32,000 declarations on the signature slot (0.85 MB)
cost 7 s of CPU, 64,000 attributes on it 12 s.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from hub.edxml import EnvelopeRefused, Limits, parse_packet, parse_xml
from hub.edxml._xml import _check_shape, _walk_shape
from hub.reasons import Reason
from hub.validators import TrustPolicy
from hub.validators.outcome import ValidationFailure
from hub.validators.xmldsig import check_xml_signature
from tests.pki_fixtures import GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import Vectors

SLOT = b"<edXML:DigitalSignature>"
VECTORS = Path(__file__).resolve().parents[2] / "vectors"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def signed(pki: GeneratedPki) -> bytes:
    return Vectors(pki).valid_raw


def _policy(pki: GeneratedPki) -> TrustPolicy:
    return TrustPolicy(roots=(pki.root,), intermediates=(pki.issuing_ca,),
                       public_roots=(pki.public_root,), policy_oids=frozenset({pki.paths.policy_oid}))


def _on_slot(document: bytes, markup: bytes) -> bytes:
    assert SLOT in document
    return document.replace(SLOT, b"<edXML:DigitalSignature" + markup + b">", 1)


def _declarations(n: int) -> bytes:
    return b"".join(b' xmlns:a%d="urn:a%d"' % (i, i) for i in range(n))


def _attributes(n: int) -> bytes:
    return b"".join(b' a%d="1"' % i for i in range(n))


def _refusal(data: bytes, limits: Limits | None = None) -> EnvelopeRefused:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data, limits)
    return caught.value


# -- the reviewer's inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [8_000, 32_000, 64_000])
def test_thousands_of_namespace_declarations_on_the_signature_slot_are_refused_at_parse_time(
        signed: bytes, pki: GeneratedPki, n: int) -> None:
    # Given a signed document with a garbage SignatureValue (no key of the victim needed) and
    # thousands of namespace declarations on the slot that holds ds:Signature
    garbage = re.sub(rb"(<ds:SignatureValue>)(....)", rb"\1AAAA", signed, count=1)
    data = _on_slot(garbage, _declarations(n))
    # When the hub parses it, or checks its signature on the raw bytes, Then it is refused on
    # its shape, before any schema check, c14n or signature check
    refused = _refusal(data)
    assert refused.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES
    assert "namespace declarations" in refused.detail
    with pytest.raises(ValidationFailure) as caught:
        check_xml_signature(data, _policy(pki))
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES


@pytest.mark.parametrize("n", [16_000, 64_000])
def test_thousands_of_attributes_on_the_signature_slot_are_refused_at_parse_time(
        signed: bytes, pki: GeneratedPki, n: int) -> None:
    # The slot's schema allows any attribute (anyAttribute ##any): only the limit stops them
    data = _on_slot(signed, _attributes(n))
    refused = _refusal(data)
    assert refused.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES
    assert "attributes" in refused.detail
    with pytest.raises(ValidationFailure) as caught:
        check_xml_signature(data, _policy(pki))
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES


def test_what_a_signed_document_carries_is_far_below_the_limits(signed: bytes,
                                                                 pki: GeneratedPki) -> None:
    parse_packet(signed)
    check_xml_signature(signed, _policy(pki))
    attributes_on_one_element = max(len(el.attrib) for el in parse_xml(signed, Limits()).iter())
    assert attributes_on_one_element * 8 <= Limits().max_attributes_per_element


def test_a_few_declarations_and_attributes_on_the_slot_are_within_the_limits(
        signed: bytes, pki: GeneratedPki) -> None:
    parse_packet(_on_slot(signed, _declarations(32) + _attributes(64)))
    # Declarations no element uses are outside exclusive c14n: the signature still verifies
    check_xml_signature(_on_slot(signed, _declarations(32)), _policy(pki))


# -- each limit, at and over its bound ------------------------------------------------------------


@pytest.mark.parametrize(("field", "make"), [
    ("max_attributes_per_element", lambda n: b"<a" + _attributes(n) + b"/>"),
    ("max_namespace_declarations_per_element", lambda n: b"<a" + _declarations(n) + b"/>"),
    ("max_attributes", lambda n: b"<r>" + b"<a x='1'/>" * n + b"</r>"),
    ("max_namespace_declarations", lambda n: b"<r>" + b"<a xmlns='urn:x'/>" * n + b"</r>"),
])
def test_each_limit_accepts_its_bound_and_refuses_one_more(
        field: str, make: Callable[[int], bytes]) -> None:
    limits = Limits(**{field: 10})
    parse_xml(make(10), limits)
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(make(11), limits)
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES


def test_a_default_namespace_and_its_undeclaration_count_as_declarations() -> None:
    data = b"<r xmlns='urn:x'><a xmlns=''/><b xmlns:p='urn:p'/></r>"
    parse_xml(data, Limits(max_namespace_declarations=3))
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_namespace_declarations=2))
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES


@pytest.mark.parametrize("text", [0, 200_000], ids=["small-packet", "large-packet"])
def test_declarations_are_counted_exactly_whatever_the_size_of_the_packet(text: int) -> None:
    # A small packet's bytes are counted, a large one's tree is walked: the same verdict
    def data(n: int) -> bytes:
        return b"<r><a" + _declarations(n) + b">" + b"x" * text + b"</a></r>"
    parse_xml(data(32), Limits())
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data(33), Limits())
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES
    assert caught.value.detail == "more than 32 namespace declarations on one element"


def test_text_that_looks_like_attributes_or_declarations_is_not_counted() -> None:
    text = b"xmlns:a='urn:a' b=c " * 200
    parse_xml(b"<r>" + text + b"<![CDATA[" + text + b"]]></r>",
              Limits(max_attributes=1, max_namespace_declarations=1,
                     max_attributes_per_element=1, max_namespace_declarations_per_element=1))


def test_the_element_and_depth_limits_are_still_met_first_in_document_order() -> None:
    data = b"<r>" + b"<a/>" * 20 + b"<b" + _attributes(20) + b"/></r>"
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_elements=15, max_attributes_per_element=10))
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ELEMENTS
    data = b"<r><b" + _attributes(20) + b"/>" + b"<a/>" * 20 + b"</r>"
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_elements=15, max_attributes_per_element=10))
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ATTRIBUTES


def test_the_shape_check_agrees_with_a_walk_of_the_tree_on_random_trees_with_attributes() -> None:
    rng = random.Random(102)
    for _ in range(400):
        root = etree.Element("a")
        nodes = [(root, 1)]
        for i in range(rng.randrange(1, 30)):
            parent, depth = rng.choice(nodes)
            nsmap = {f"p{j}": f"urn:{i}:{j}" for j in range(rng.choice((0, 0, 1, 3, 6)))}
            child = etree.SubElement(parent, "e", nsmap=nsmap)  # type: ignore[arg-type]
            for j in range(rng.choice((0, 0, 1, 2, 5, 9))):
                child.set(f"x{j}", "v")
            nodes.append((child, depth + 1))
        data = etree.tostring(root)
        tree = parse_xml(data, Limits(max_elements=10**6))
        limits = Limits(
            max_depth=rng.randrange(2, 12), max_elements=rng.randrange(5, 45),
            max_attributes_per_element=rng.randrange(1, 10), max_attributes=rng.randrange(1, 60),
            max_namespace_declarations_per_element=rng.randrange(1, 7),
            max_namespace_declarations=rng.randrange(1, 40))
        # With the bytes (counted in C), without them (lxml's walk), and the walk that names
        # the first violation in document order
        outcomes = [_outcome(_check_shape, tree, limits, data), _outcome(_check_shape, tree, limits),
                    _outcome(_walk_shape, tree, limits)]
        assert outcomes[0] == outcomes[1] == outcomes[2], data


def _outcome(check: Callable[..., None], *args: object) -> tuple[Reason, str] | None:
    try:
        check(*args)
    except EnvelopeRefused as refused:
        return refused.reason, refused.detail
    return None


# -- nothing that parsed before is refused now ----------------------------------------------------


def test_every_vector_of_the_corpus_is_within_the_limits() -> None:
    # (but the ones made to be over them, which say so in their manifest)
    limits = Limits()
    manifest = tomllib.loads((VECTORS / "edxml" / "manifest.toml").read_text(encoding="utf-8"))
    over = {VECTORS / "edxml" / v["file"] for v in manifest["vector"]
            if v["expect"] == "ENVELOPE_TOO_MANY_ATTRIBUTES"}
    assert over
    files = sorted(VECTORS.glob("**/*.xml"))
    assert files
    for path in files:
        data = path.read_bytes()
        try:
            root = parse_xml(data, Limits(max_attributes_per_element=10**9, max_attributes=10**9,
                                          max_namespace_declarations_per_element=10**9,
                                          max_namespace_declarations=10**9))
        except EnvelopeRefused:
            continue  # refused for another reason, as its manifest says
        if path in over:
            with pytest.raises(EnvelopeRefused):
                _check_shape(root, limits)
        else:
            _check_shape(root, limits)
