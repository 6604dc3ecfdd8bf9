"""The XMLDSig checks' own element lookups and base64 whitespace rule are lxml's and the
documented ones: the hot path reads children in one pass instead of ``find`` paths."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.validators.xmldsig import (
    _B64_WHITESPACE,
    DS,
    DSIG11_NS,
    _b64_text,
    _by_tag,
    _carries_key_value,
    _first,
    _has_element_child,
    _last_element,
    _one,
)

TAGS = ("SignedInfo", "Reference", "DigestValue", "Object", "KeyInfo", "KeyValue", "X509Data")

Spec = tuple[str, list[Any]]
"""An element to build: its tag (or ``#comment``/``#pi``) and its children."""

_element: st.SearchStrategy[Spec] = st.recursive(
    st.tuples(st.sampled_from((*TAGS, "#comment", "#pi")), st.just([])),
    lambda inner: st.tuples(st.sampled_from(TAGS), st.lists(inner, max_size=3)),
    max_leaves=12)


def _build(parent: etree._Element, spec: Spec) -> None:
    tag, children = spec
    if tag == "#comment":
        parent.append(etree.Comment("c"))
        return
    if tag == "#pi":
        parent.append(etree.ProcessingInstruction("p", "x"))
        return
    element = etree.SubElement(parent, f"{DS}{tag}")
    for child in children:
        _build(element, child)


@settings(max_examples=200, deadline=None)
@given(st.lists(_element, max_size=5),
       st.lists(st.sampled_from(TAGS), min_size=1, max_size=3))
def test_the_first_lookup_finds_what_lxml_find_finds(
    children: list[Spec], path: list[str],
) -> None:
    root = etree.Element(f"{DS}Signature")
    for spec in children:
        _build(root, spec)
    tags = [f"{DS}{t}" for t in path]
    assert _first(root, *tags) is root.find("/".join(tags))
    kids = _by_tag(root)
    for tag in TAGS:
        assert kids.get(f"{DS}{tag}", []) == root.findall(f"{DS}{tag}")
        assert _one(kids, f"{DS}{tag}") is root.find(f"{DS}{tag}")


@given(st.text(alphabet=st.sampled_from(
    "AZaz09+/= \t\r\n\x0b\x0c\u0085\u00a0\u1680\u2028\u3000\ufeff"), max_size=80))
def test_base64_whitespace_is_dropped_exactly_as_the_documented_table_says(text: str) -> None:
    assert _b64_text(text) == text.translate(_B64_WHITESPACE)


@settings(max_examples=200, deadline=None)
@given(st.lists(_element, max_size=5), st.sampled_from(TAGS), st.lists(
    st.sampled_from(("#comment", "#pi")), max_size=3))
def test_the_last_element_lookup_steps_over_trailing_comments_and_processing_instructions(
    children: list[Spec], last: str, trailing: list[str],
) -> None:
    parent = etree.Element(f"{DS}edXMLHeader")
    for spec in [*children, (last, []), *((t, []) for t in trailing)]:
        _build(parent, spec)
    assert _last_element(parent) is [c for c in parent if isinstance(c.tag, str)][-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(
    ("KeyValue", "DEREncodedKeyValue", "X509Data", "KeyName", "#comment", "#pi")), max_size=5))
def test_the_key_value_lookup_finds_what_two_lxml_finds_find(children: list[str]) -> None:
    key_info = etree.Element(f"{DS}KeyInfo")
    for name in children:
        if name == "DEREncodedKeyValue":
            etree.SubElement(key_info, f"{{{DSIG11_NS}}}{name}")
        else:
            _build(key_info, (name, []))
    expected = (key_info.find(f"{DS}KeyValue") is not None
                or key_info.find(f"{{{DSIG11_NS}}}DEREncodedKeyValue") is not None)
    assert _carries_key_value(key_info) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from((*TAGS, "#comment", "#pi", "#entity")), max_size=4))
def test_the_element_child_lookup_ignores_comments_processing_instructions_and_entities(
    children: list[str],
) -> None:
    signature = etree.Element(f"{DS}Signature")
    for name in children:
        if name == "#entity":
            signature.append(etree.Entity("x"))
        else:
            _build(signature, (name, []))
    assert _has_element_child(signature) is any(isinstance(c.tag, str) for c in signature)
