"""The direct XMLDSig verifier gives exactly signxml's verdict (STYLE: a fast path is proven
equal to the slow one): on every vector of the signature manifest, on every valid EDXML vector
signed by :func:`hub.trust.signing.sign_xml`, on hand-made shapes at the edges of the profile, and on
hypothesis-mutated signed envelopes — each with the envelopes signed in QCVN 102's
``edXML:DigitalSignature`` slot and as the last child of ``edXMLHeader``. A verdict is "passed"
with the signer's fingerprint, or "failed" with the reason code."""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    methods,
)

from hub.edxml import Limits, SignaturePlacement, parse_xml
from hub.reasons import Reason
from hub.trust.keystore import OrgSigner
from hub.trust.signing import sign_xml
from hub.validators import _fastdsig
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import TrustPolicy, fingerprint
from hub.validators.xmldsig import check_xml_signature, verify_with_signxml
from tests.pki_fixtures import GeneratedPki, session_pki
from tests.unit.validators.signature_vectors import (
    DS_NS,
    Vectors,
    build,
    load_manifest,
)

Verdict = tuple[str, str]
EDXML_VALID = sorted(
    (Path(__file__).resolve().parents[2] / "vectors" / "edxml" / "valid").glob("*.xml"))
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
DS = f"{{{DS_NS}}}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module", params=list(SignaturePlacement), ids=lambda p: p.value)
def vectors(pki: GeneratedPki, request: pytest.FixtureRequest) -> Vectors:
    return Vectors(pki, placement=request.param)


def _verdict(raw: bytes, policy: TrustPolicy, *, direct: bool, legacy_sha1: bool = False
             ) -> Verdict:
    try:
        if direct:
            sig = check_xml_signature(raw, policy, legacy_sha1=legacy_sha1)
        else:
            sig = verify_with_signxml(raw, policy, legacy_sha1=legacy_sha1)
    except ValidationFailure as failure:
        return ("failed", failure.reason.value)
    return ("passed", fingerprint(sig.leaf))


def _same(raw: bytes, policy: TrustPolicy, *, legacy_sha1: bool = False) -> Verdict:
    fast = _verdict(raw, policy, direct=True, legacy_sha1=legacy_sha1)
    assert fast == _verdict(raw, policy, direct=False, legacy_sha1=legacy_sha1)
    return fast


# -- the corpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_manifest(), ids=lambda c: c.id)
@pytest.mark.parametrize("legacy_sha1", [False, True], ids=["profile", "legacy_sha1"])
def test_both_verifiers_agree_on_every_signature_vector(
    case: object, legacy_sha1: bool, vectors: Vectors
) -> None:
    built = build(case.recipe, vectors)  # type: ignore[attr-defined]
    _same(built.packet.raw, built.policy, legacy_sha1=legacy_sha1)


@pytest.mark.parametrize("vector", EDXML_VALID, ids=lambda p: p.stem)
def test_every_valid_edxml_vector_signed_by_the_hub_passes_both_verifiers(
    vector: Path, vectors: Vectors
) -> None:
    data = vector.read_bytes()
    if b'Id="placeholder"' not in data:
        pytest.skip("vector carries no signature placeholder")
    raw = sign_xml(data, vectors.org)
    assert _same(raw, vectors.policy) == ("passed", fingerprint(vectors.org.cert))


def test_the_edxml_corpus_signs_in_both_accepted_placements() -> None:
    texts = [p.read_bytes() for p in EDXML_VALID]
    assert any(b"<edXML:DigitalSignature>" in t and b'Id="placeholder"' in t for t in texts)
    assert any(b"DigitalSignature" not in t and b'Id="placeholder"' in t for t in texts)


# -- shapes at the edges of the profile ---------------------------------------------------------


def _resign(root: etree._Element, signer: OrgSigner) -> bytes:
    """Recompute SignatureValue over SignedInfo as it now stands (DigestValue unchanged)."""
    signed_info = root.find(f".//{DS}SignedInfo")
    assert signed_info is not None
    found = signed_info.find(f"{DS}CanonicalizationMethod/{{{EC_NS}}}InclusiveNamespaces")
    prefixes = None if found is None else (found.get("PrefixList") or "").split(" ")
    c14n = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=prefixes)
    value = root.find(f".//{DS}SignatureValue")
    assert value is not None
    value.text = base64.b64encode(
        signer.key.sign(c14n, padding.PKCS1v15(), hashes.SHA256())).decode()
    out: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return out


def _tree(raw: bytes) -> etree._Element:
    return parse_xml(raw, Limits())


def _signxml_signed(v: Vectors, method: SignatureMethod, **kwargs: Any) -> bytes:
    signer = XMLSigner(method=methods.enveloped, signature_algorithm=method,
                       digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(_tree(v.envelope()), key=v.org.key, cert=[v.org.cert, *v.org.chain],
                         **kwargs)
    out: bytes = etree.tostring(signed, encoding="UTF-8", xml_declaration=True)
    return out


def _with_prefix_list(v: Vectors, prefixes: str) -> bytes:
    root = _tree(v.valid_raw)
    method = root.find(f".//{DS}CanonicalizationMethod")
    assert method is not None
    etree.SubElement(method, f"{{{EC_NS}}}InclusiveNamespaces", PrefixList=prefixes)
    return _resign(root, v.org)


def _edit(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw
    return raw.replace(old, new, 1)


SHAPES: dict[str, tuple[str, Reason | None]] = {
    "rsa_pss_sha256": ("signed by signxml with RSA-PSS (sha256-rsa-MGF1)", None),
    "key_value_too": ("KeyInfo also carries the RSAKeyValue (signxml's own path)", None),
    "prefix_list_edxml": ("SignedInfo c14n with InclusiveNamespaces PrefixList=\"edXML\", "
                          "properly signed: not in the profile (signxml's schema refuses it)",
                          Reason.SIGNATURE_INVALID),
    "prefix_list_default": ("PrefixList=\"#default edXML\"", Reason.SIGNATURE_INVALID),
    "key_info_first": ("KeyInfo moved before SignatureValue (schema order)",
                       Reason.SIGNATURE_INVALID),
    "foreign_child": ("a foreign element inside ds:Signature", Reason.SIGNATURE_INVALID),
    "comment_in_content": ("a comment in the signed content", Reason.SIGNATURE_WRAPPING_SUSPECTED),
    "comment_in_signed_info": ("a comment inside SignedInfo (c14n drops it)", None),
    "comment_in_digest_value": ("DigestValue split by a comment", Reason.SIGNATURE_INVALID),
    "pi_in_content": ("a processing instruction added after signing",
                      Reason.SIGNATURE_DIGEST_MISMATCH),
    "text_after_signature": ("text after ds:Signature", Reason.SIGNATURE_WRAPPING_SUSPECTED),
    "junk_in_signature_value": ("a '!' in SignatureValue", Reason.SIGNATURE_INVALID),
    "empty_signature_value": ("empty SignatureValue", Reason.SIGNATURE_INVALID),
    "newlines_in_signature_value": ("SignatureValue wrapped at 20 columns", None),
    "whitespace_after_signature": ("whitespace after ds:Signature (a signed tail)",
                                   Reason.SIGNATURE_DIGEST_MISMATCH),
}


def _shape(name: str, v: Vectors) -> bytes:
    raw = v.valid_raw
    if name == "rsa_pss_sha256":
        return _signxml_signed(v, SignatureMethod.SHA256_RSA_MGF1)
    if name == "key_value_too":
        return _signxml_signed(v, SignatureMethod.RSA_SHA256, always_add_key_value=True)
    if name == "prefix_list_edxml":
        return _with_prefix_list(v, "edXML")
    if name == "prefix_list_default":
        return _with_prefix_list(v, "#default edXML")
    if name == "key_info_first":
        root = _tree(raw)
        signature, key_info = root.find(f".//{DS}Signature"), root.find(f".//{DS}KeyInfo")
        assert signature is not None
        assert key_info is not None
        signature.insert(1, key_info)
        out: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
        return out
    if name == "foreign_child":
        return _edit(raw, b"</ds:Signature>", b'<x:y xmlns:x="urn:x"/></ds:Signature>')
    if name == "comment_in_content":
        return _edit(raw, b"<edXML:Subject>", b"<!-- c --><edXML:Subject>")
    if name == "comment_in_signed_info":
        return _edit(raw, b"<ds:SignatureMethod", b"<!-- c --><ds:SignatureMethod")
    if name == "comment_in_digest_value":
        text = re.search(rb"<ds:DigestValue>([^<]*)<", raw)
        assert text is not None
        value = text.group(1)
        return _edit(raw, value, value[:8] + b"<!-- c -->" + value[8:])
    if name == "pi_in_content":
        return _edit(raw, b"<edXML:Subject>", b"<?hub x?><edXML:Subject>")
    if name == "text_after_signature":
        return _edit(raw, b"</ds:Signature>", b"</ds:Signature>x")
    if name == "junk_in_signature_value":
        return _edit(raw, b"<ds:SignatureValue>", b"<ds:SignatureValue>!")
    if name == "empty_signature_value":
        return re.sub(rb"<ds:SignatureValue>[^<]*<", b"<ds:SignatureValue><", raw)
    if name == "newlines_in_signature_value":
        text = re.search(rb"<ds:SignatureValue>([^<]*)<", raw)
        assert text is not None
        value = b"".join(text.group(1).split())
        return _edit(raw, text.group(1),
                     b"\n".join(value[i:i + 20] for i in range(0, len(value), 20)))
    if name == "whitespace_after_signature":
        return _edit(raw, b"</ds:Signature>", b"</ds:Signature> ")
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_both_verifiers_agree_at_the_edges_of_the_profile(name: str, vectors: Vectors) -> None:
    verdict = _same(_shape(name, vectors), vectors.policy)
    expected = SHAPES[name][1]
    if expected is None:
        assert verdict == ("passed", fingerprint(vectors.org.cert))
    else:
        assert verdict == ("failed", expected.value)


# -- the tree is left as it was ------------------------------------------------------------------


@pytest.mark.parametrize("edit", ["none", "content", "tail"])
def test_the_direct_verifier_leaves_the_tree_exactly_as_it_was(edit: str, vectors: Vectors
                                                              ) -> None:
    raw = vectors.valid_raw
    if edit == "content":
        raw = _edit(raw, b"<edXML:Subject>", b"<edXML:Subject>X")
    elif edit == "tail":
        raw = _edit(raw, b"</ds:Signature>", b"</ds:Signature>\n\t ")
    root = _tree(raw)
    signature = root.find(f".//{DS}Signature")
    assert signature is not None
    before = etree.tostring(root)
    found = _verdict(raw, vectors.policy, direct=True)
    try:
        _fastdsig.verify_enveloped(
            root, signature, vectors.org.cert.public_key(),  # type: ignore[arg-type]
            method="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest="http://www.w3.org/2001/04/xmlenc#sha256",
            digest_value=base64.b64decode(root.findtext(f".//{DS}DigestValue") or ""),
            signature_value=base64.b64decode(root.findtext(f".//{DS}SignatureValue") or ""))
        direct: Verdict = ("passed", fingerprint(vectors.org.cert))
    except ValidationFailure as failure:
        direct = ("failed", failure.reason.value)
    assert etree.tostring(root) == before
    assert direct == found


def test_removing_a_first_child_signature_keeps_its_tail_as_the_parent_text() -> None:
    root = etree.fromstring(b'<a xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><b>pre'
                            b"<ds:Signature/>post<c/>after</b></a>")
    signature = root.find(f".//{DS}Signature")
    assert signature is not None
    before = etree.tostring(root)
    data, commented = _fastdsig.document_c14n(root, signature)
    assert data == b"<a><b>prepost<c></c>after</b></a>"
    assert not commented
    assert etree.tostring(root) == before


# -- hypothesis: mutated signed envelopes --------------------------------------------------------


@cache
def _spans(raw: bytes) -> dict[str, list[int]]:
    """Byte offsets where each kind of mutation applies."""
    text = raw
    sig_start = text.index(b"<ds:Signature")
    sig_end = text.index(b"</ds:Signature>")
    si_start, si_end = text.index(b"<ds:SignedInfo"), text.index(b"</ds:SignedInfo>")

    def value_span(tag: bytes) -> list[int]:
        m = re.search(b"<ds:" + tag + rb">([^<]*)<", text)
        assert m is not None
        return [i for i in range(m.start(1), m.end(1)) if text[i:i + 1].isalnum()]

    body = text.index(b"<edXML:edXMLEnvelope")
    return {
        "content": [i for i in range(body, len(text))
                    if not sig_start <= i < sig_end and text[i:i + 1].isalnum()
                    and text[i - 1:i] in b">\n "],
        "signature_value": value_span(b"SignatureValue"),
        "digest_value": value_span(b"DigestValue"),
        "signed_info_boundary": [i + 1 for i in range(si_start, si_end) if text[i:i + 1] == b">"],
        "boundary": [i + 1 for i in range(body, len(text) - 1) if text[i:i + 1] == b">"],
    }


_REORDERABLE = re.compile(rb"<([\w:.-]+)((?:\s+[\w:.-]+=\"[^\"]*\"){2,})(\s*/?>)")


def _mutate(raw: bytes, kind: str, pick: int, char: str, perm_seed: int) -> bytes:
    spans = _spans(raw)
    if kind == "reorder_attributes":
        found = list(_REORDERABLE.finditer(raw))
        if not found:
            return raw
        m = found[pick % len(found)]
        attrs = re.findall(rb"\s+[\w:.-]+=\"[^\"]*\"", m.group(2))
        rotated = attrs[perm_seed % len(attrs):] + attrs[:perm_seed % len(attrs)]
        if rotated == attrs:
            rotated = attrs[::-1]
        return raw[:m.start(2)] + b"".join(rotated) + raw[m.end(2):]
    positions = spans[kind]
    i = positions[pick % len(positions)]
    if kind in {"signed_info_boundary", "boundary"}:
        insert = {"A": b" ", "B": b"\n", "C": b"\t", "!": b"<!--x-->"}.get(char, b" ")
        return raw[:i] + insert + raw[i:]
    new = char.encode()
    if raw[i:i + 1] == new:
        new = b"Q" if new != b"Q" else b"R"
    return raw[:i] + new + raw[i + 1:]


KINDS = ["content", "signature_value", "digest_value", "signed_info_boundary", "boundary",
         "reorder_attributes"]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), pick=st.integers(0, 10**6),
       char=st.sampled_from(list("ABQz09+/=!")), perm_seed=st.integers(1, 7),
       status=st.booleans())
def test_both_verifiers_agree_on_mutated_signed_packets(
    kind: str, pick: int, char: str, perm_seed: int, status: bool, vectors: Vectors
) -> None:
    raw = _status_raw(vectors) if status else vectors.valid_raw
    # a status packet may have no element with two attributes
    assume(kind != "reorder_attributes" or _REORDERABLE.search(raw) is not None)
    mutated = _mutate(raw, kind, pick, char, perm_seed)
    verdict = _same(mutated, vectors.policy)
    if kind in {"signature_value", "digest_value"} or (
        kind == "signed_info_boundary" and char != "!"  # a comment there is not signed
    ):
        assert verdict[0] == "failed"
    if kind == "reorder_attributes":
        # Attribute order is not signed (c14n sorts them): the signature still holds.
        assert verdict == ("passed", fingerprint(vectors.org.cert))


_STATUS: dict[int, bytes] = {}


def _status_raw(v: Vectors) -> bytes:
    if id(v) not in _STATUS:
        _STATUS[id(v)] = build("valid_status", v).packet.raw
    return _STATUS[id(v)]


def test_the_mutations_reach_every_reason_the_signature_step_gives(vectors: Vectors) -> None:
    """The mutation kinds are not vacuous: they produce digest and signature failures and
    wrapping suspicion (a comment), not only parse errors."""
    raw = vectors.valid_raw
    seen = {
        _same(_mutate(raw, "content", 3, "Q", 1), vectors.policy),
        _same(_mutate(raw, "signature_value", 5, "A", 1), vectors.policy),
        _same(_mutate(raw, "digest_value", 2, "z", 1), vectors.policy),
        _same(_mutate(raw, "boundary", 7, "!", 1), vectors.policy),
        _same(_mutate(raw, "reorder_attributes", 0, "A", 1), vectors.policy),
    }
    assert {v[1] for v in seen if v[0] == "failed"} >= {
        Reason.SIGNATURE_DIGEST_MISMATCH.value, Reason.SIGNATURE_INVALID.value,
        Reason.SIGNATURE_WRAPPING_SUSPECTED.value}
    assert ("passed", fingerprint(vectors.org.cert)) in seen


@pytest.mark.parametrize("name", ["comment_in_content", "pi_in_content", "whitespace_after_signature",
                                  "newlines_in_signature_value"])
def test_a_tree_already_parsed_gives_the_same_verdict_and_is_left_as_it_was(
    name: str, vectors: Vectors
) -> None:
    raw = _shape(name, vectors)
    root = _tree(raw)
    before = etree.tostring(root)
    try:
        sig = check_xml_signature(raw, vectors.policy, tree=root)
        given_tree: Verdict = ("passed", fingerprint(sig.leaf))
    except ValidationFailure as failure:
        given_tree = ("failed", failure.reason.value)
    assert given_tree == _same(raw, vectors.policy)
    assert etree.tostring(root) == before
