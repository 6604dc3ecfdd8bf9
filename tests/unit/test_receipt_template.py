"""Receipts written from the template are byte-identical to the lxml tree path (issue 23).

The tree path (:func:`build_receipt_tree` + :func:`sign_tree`) is the reference: the template's
serialization, its exclusive c14n and the signed receipt must be the same bytes for every receipt
kind and for adversarial field values; what lxml refuses, the template refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.edxml.model import DS_NS, Organization
from hub.reasons import Reason
from hub.receipts.content import build_receipt_tree, check_binding, read_evidence
from hub.receipts.template import render_receipt
from hub.trust.keystore import OrgSigner
from hub.trust.signing import presign, sign_presigned, sign_tree
from hub.validators._fastdsig import document_c14n

AT = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
SENDER = "000.00.02.H27"
OPERATOR = "000.00.01.H27"
ENVELOPE = b"<edXML>the exact bytes received</edXML>"


def _signer(with_chain: bool) -> OrgSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receipt template test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2045, 1, 1, tzinfo=UTC)).sign(key, hashes.SHA256()))
    return OrgSigner(OPERATOR, key, cert, (cert,) if with_chain else ())


@pytest.fixture(scope="module")
def signer() -> OrgSigner:
    return _signer(with_chain=True)


def arguments(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "envelope_raw": ENVELOPE, "signature_value": b"\x01" * 256, "sender": SENDER,
        "document_id": f"{SENDER},2026/11/20,123/UBND-VP", "code": "123/UBND-VP",
        "reporter": OPERATOR, "at": AT}
    base.update(overrides)
    return base


def via_tree(kind: str, signer: OrgSigner, **kw: object) -> bytes:
    return sign_tree(build_receipt_tree(kind, **arguments(**kw)), signer)  # type: ignore[arg-type]


def via_template(kind: str, signer: OrgSigner, **kw: object) -> bytes:
    rendered = render_receipt(kind, **arguments(**kw))  # type: ignore[arg-type]
    return sign_presigned(presign(rendered.before, rendered.after, rendered.c14n, signer), signer)


HOSTILE = "a&b<c>d\"e'f\tg\nh\ri]]>j&amp;k&#13;"
CASES: dict[str, tuple[str, dict[str, object]]] = {
    "accepted": ("accepted", {}),
    "received": ("received", {"reporter": SENDER, "recipient": SENDER}),
    "rejected with detail": ("rejected", {"reason": Reason.RECIPIENT_UNKNOWN,
                                          "detail": "recipient 000.00.77.H27 is unknown"}),
    "rejected about bytes": ("rejected", {"reason": Reason.ENVELOPE_MALFORMED,
                                          "signature_value": b"", "document_id": "x,y",
                                          "code": "0123456789abcdef"}),
    "countersigned": ("countersigned", {"status_code": "03"}),
    "unsigned envelope": ("accepted", {"signature_value": b""}),
    "markup everywhere": ("rejected", {
        "reason": Reason.SIGNATURE_INVALID, "detail": HOSTILE, "code": HOSTILE,
        "document_id": HOSTILE, "sender": HOSTILE, "recipient": HOSTILE}),
    "markup in the status attribute": ("countersigned", {"status_code": HOSTILE}),
    "Vietnamese and astral characters": ("accepted", {
        "code": "Số 5/QĐ-UBND ắằẳẵặ đ 😀 \U0010fffd", "sender": "Ủy ban", "reporter": "Sở Nội vụ"}),
    "C1 controls and line separators": ("rejected", {
        "reason": Reason.SIGNATURE_INVALID, "detail": "\x7f\x85\x9f\u2028\u2029\ufeff"}),
    "whitespace-only fields": ("rejected", {"reason": Reason.SIGNATURE_INVALID, "detail": " ",
                                            "code": " \t", "sender": "\n"}),
    "empty fields": ("accepted", {"code": "", "sender": "", "document_id": ""}),
    "long fields": ("rejected", {"reason": Reason.DOCUMENT_ID_INVALID, "detail": "x" * 100_000,
                                 "code": "ắ" * 5_000, "document_id": "<" * 3_000}),
    "a full reporter organization": ("accepted", {"reporter": Organization(
        OPERATOR, organ_name="Văn phòng <UBND>", organization_in_charge="UBND & tỉnh",
        organ_add="\r\n", email="a@b", telephone="", fax="1", website="https://x/?a=1&b=2")}),
    "a naive time": ("accepted", {"at": datetime(2026, 1, 2, 3, 4, 5, 6000)}),
    "another time zone": ("accepted", {"at": datetime(2026, 12, 31, 23, 59, 59, 999999,
                                                      tzinfo=timezone(timedelta(hours=-11)))}),
    "a digest given by the caller": ("accepted", {"envelope_digest": HOSTILE}),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_receipt_from_the_template_is_byte_identical_to_the_tree_path(
        signer: OrgSigner, case: tuple[str, dict[str, object]]) -> None:
    kind, kw = case
    # Given the arguments of one receipt, When it is built as a tree and signed, and written from
    # the template and signed by construction, Then the signed bytes are the same
    assert via_template(kind, signer, **kw) == via_tree(kind, signer, **kw)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_template_s_c14n_is_what_the_enveloped_signature_transform_hashes(
        case: tuple[str, dict[str, object]]) -> None:
    kind, kw = case
    tree = build_receipt_tree(kind, **arguments(**kw))  # type: ignore[arg-type]
    placeholder = next(tree.iter(f"{{{DS_NS}}}Signature"))
    reference, _ = document_c14n(tree, placeholder)
    assert render_receipt(kind, **arguments(**kw)).c14n == reference  # type: ignore[arg-type]


def test_a_signer_without_a_chain_gives_the_same_bytes_too() -> None:
    lone = _signer(with_chain=False)
    assert via_template("accepted", lone) == via_tree("accepted", lone)


def test_the_template_receipt_carries_its_evidence_and_binds_the_envelope(
        signer: OrgSigner) -> None:
    receipt = via_template("rejected", signer, reason=Reason.CERT_REVOKED, signature_value=b"")
    evidence = read_evidence(receipt)
    assert evidence is not None
    assert evidence.reason == "CERT_REVOKED"
    assert check_binding(receipt, ENVELOPE)


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x0b", "\x1f", "\ufffe", "\uffff", "\ud800"],
                         ids=["NUL", "SOH", "VT", "US", "U+FFFE", "U+FFFF", "a lone surrogate"])
@pytest.mark.parametrize("field", ["code", "detail", "recipient", "status_code"])
def test_what_lxml_refuses_the_template_refuses(signer: OrgSigner, bad: str, field: str) -> None:
    kind = "countersigned" if field == "status_code" else "rejected"
    kw: dict[str, object] = {field: f"x{bad}y"}
    if kind == "rejected":
        kw["reason"] = Reason.SIGNATURE_INVALID
    with pytest.raises(ValueError):  # noqa: PT011 - lxml's ValueError, or UnicodeEncodeError
        via_tree(kind, signer, **kw)
    with pytest.raises(ValueError):  # noqa: PT011
        render_receipt(kind, **arguments(**kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "kw"), [
    ("rejected", {}), ("accepted", {"reason": Reason.SIGNATURE_INVALID}),
    ("accepted", {"status_code": "03"}), ("nonsense", {})],
    ids=["rejection without reason", "acceptance with a reason",
         "status code outside a countersignature", "unknown kind"])
def test_inconsistent_requests_are_refused_by_the_template_as_by_the_tree(
        kind: str, kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        build_receipt_tree(kind, **arguments(**kw))  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # noqa: PT011
        render_receipt(kind, **arguments(**kw))  # type: ignore[arg-type]


_VALID_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                                    include_characters="\t\n\r\x7f\x85&<>\"'",
                                    exclude_characters="\ufffe\uffff"), max_size=40)
"""Characters XML allows, markup characters and carriage returns often."""
_ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_XML_TEXT = st.one_of(_VALID_TEXT, _VALID_TEXT, _ANY_TEXT)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=_XML_TEXT, detail=_XML_TEXT, document_id=_XML_TEXT, recipient=_XML_TEXT,
       status=_XML_TEXT)
def test_any_field_values_give_the_same_c14n_and_bytes_or_the_same_refusal(
        code: str, detail: str, document_id: str, recipient: str, status: str) -> None:
    kw: dict[str, object] = {"code": code, "detail": detail, "document_id": document_id,
                             "recipient": recipient, "status_code": status}
    try:
        tree = build_receipt_tree("countersigned", **arguments(**kw))  # type: ignore[arg-type]
    except ValueError:
        with pytest.raises(ValueError):  # noqa: PT011
            render_receipt("countersigned", **arguments(**kw))  # type: ignore[arg-type]
        return
    rendered = render_receipt("countersigned", **arguments(**kw))  # type: ignore[arg-type]
    placeholder = next(tree.iter(f"{{{DS_NS}}}Signature"))
    assert rendered.c14n == document_c14n(tree, placeholder)[0]
    # The serialization around the placeholder, too.
    signature = f'<ds:Signature xmlns:ds="{DS_NS}" Id="placeholder"/>'.encode()
    whole = etree.tostring(tree, encoding="UTF-8", xml_declaration=True)
    before, _, after = whole.partition(signature)
    assert (before, after) == (rendered.before, rendered.after)
