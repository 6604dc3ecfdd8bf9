"""Receipt content: status packets bound to the exact bytes received and the sender's signature."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLVerifier  # type: ignore[attr-defined]
from signxml.exceptions import InvalidSignature

from hub.edxml import SignaturePlacement, parse_status
from hub.edxml.build import build_envelope, sample_header, sample_trace
from hub.edxml.model import DS_NS, NS
from hub.reasons import Reason
from hub.receipts.content import (
    HUB_NS,
    QCVN_STATUS_CODES,
    ReceiptKind,
    build_receipt,
    build_receipt_tree,
    check_binding,
    read_evidence,
    signature_value_of,
)
from hub.trust.keystore import OrgSigner
from hub.trust.signing import sign_tree, sign_xml

AT = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)  # 09:30 in Hà Tĩnh
SENDER = "000.00.02.H27"
OPERATOR = "000.00.01.H27"


@pytest.fixture(scope="module")
def signer() -> OrgSigner:
    """A throwaway RSA-2048 key and self-signed certificate (receipts only need *a* signer)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receipt test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        # Wide validity: signxml checks it against the wall clock, and these tests must not age.
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2045, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return OrgSigner(SENDER, key, cert)


@pytest.fixture(scope="module")
def envelope_raw(signer: OrgSigner) -> bytes:
    header = sample_header(SENDER, ["000.00.03.H27"])
    return sign_xml(build_envelope(header, trace=sample_trace(SENDER, AT)), signer)


def receipt_arguments(raw: bytes, **overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "envelope_raw": raw,
        "signature_value": signature_value_of(raw),
        "sender": SENDER,
        "document_id": f"{SENDER},2026/11/20,123/UBND-VP",
        "code": "123/UBND-VP",
        "reporter": OPERATOR,
        "at": AT,
    }
    arguments.update(overrides)
    return arguments


def receipt_for(raw: bytes, kind: str = "accepted", **overrides: object) -> bytes:
    return build_receipt(kind, **receipt_arguments(raw, **overrides))  # type: ignore[arg-type]


def _status_text(receipt: bytes, name: str) -> str:
    root = etree.fromstring(receipt)
    found = root.findall(f".//{{{NS}}}Status/{{{NS}}}{name}")
    assert len(found) == 1
    return found[0].text or ""


# -- signature_value_of ------------------------------------------------------------------------


def test_the_senders_signature_value_is_extracted_and_decoded(envelope_raw: bytes) -> None:
    root = etree.fromstring(envelope_raw)
    text = root.findtext(f".//{{{DS_NS}}}SignatureValue")
    assert text is not None
    assert signature_value_of(envelope_raw) == base64.b64decode("".join(text.split()))
    assert len(signature_value_of(envelope_raw)) == 256  # RSA-2048


def test_an_unsigned_packet_has_no_signature_value() -> None:
    unsigned = build_envelope(sample_header(SENDER, ["000.00.03.H27"]), signature_placeholder=False)
    assert signature_value_of(unsigned) == b""
    # The placeholder carries no SignatureValue either.
    assert signature_value_of(build_envelope(sample_header(SENDER, ["000.00.03.H27"]))) == b""


@pytest.mark.parametrize(
    "raw",
    [b"", b"not xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", b"<x><y></x>"],
    ids=["empty", "not xml", "a DTD", "malformed"],
)
def test_unparseable_bytes_have_no_signature_value(raw: bytes) -> None:
    assert signature_value_of(raw) == b""


def test_two_packet_level_signatures_give_nothing_to_bind(envelope_raw: bytes) -> None:
    root = etree.fromstring(envelope_raw)
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert header is not None
    signature = header.find(f".//{{{DS_NS}}}Signature")  # in edXML:DigitalSignature
    assert signature is not None
    header.append(etree.fromstring(etree.tostring(signature)))
    assert signature_value_of(etree.tostring(root)) == b""


@pytest.mark.parametrize("placement", list(SignaturePlacement), ids=lambda p: p.value)
def test_the_signature_value_is_found_in_both_accepted_placements(
    placement: SignaturePlacement, envelope_raw: bytes
) -> None:
    root = etree.fromstring(envelope_raw)
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    signature = root.find(f".//{{{DS_NS}}}Signature")
    assert header is not None
    assert signature is not None
    if placement is SignaturePlacement.HEADER_END:
        header.append(signature)  # out of edXML:DigitalSignature, last in the header
    value = signature.findtext(f"{{{DS_NS}}}SignatureValue") or ""
    assert signature_value_of(etree.tostring(root)) == base64.b64decode("".join(value.split()))


def test_the_signature_value_read_from_the_parsed_tree_is_the_same(envelope_raw: bytes) -> None:
    from hub.edxml import parse_envelope

    envelope = parse_envelope(envelope_raw)
    assert signature_value_of(envelope_raw, envelope.tree) == signature_value_of(envelope_raw)


# -- the in-memory path (what the hub runs) equals the bytes path --------------------------------

IN_MEMORY_CASES: list[dict[str, object]] = [
    {"kind": "accepted"},
    {"kind": "received", "recipient": "000.00.03.H27"},
    {"kind": "rejected", "reason": Reason.RECIPIENT_UNKNOWN, "detail": "which check <&> \"'"},
    {"kind": "rejected", "reason": Reason.SIGNATURE_INVALID, "document_id": "not, an id"},
    {"kind": "countersigned", "status_code": "03"},
    {"kind": "accepted", "signature_value": b""},
    {"kind": "accepted", "at": datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)},
    {"kind": "accepted", "reporter": "000.00.99.H27", "code": "Số 5/Tiếng Việt ắ đ"},
]


@pytest.mark.parametrize("case", IN_MEMORY_CASES, ids=lambda c: str(sorted(c.items()))[:60])
def test_a_receipt_signed_in_memory_is_byte_identical_to_the_bytes_path(
    envelope_raw: bytes, signer: OrgSigner, case: dict[str, object]
) -> None:
    # Given the arguments of one receipt
    arguments = receipt_arguments(envelope_raw, **case)
    kind = str(arguments.pop("kind"))
    # When it is built as bytes then signed, and built as a tree then signed in memory
    via_bytes = sign_xml(build_receipt(kind, **arguments), signer)  # type: ignore[arg-type]
    unsigned_tree = build_receipt_tree(kind, **arguments)  # type: ignore[arg-type]
    # Then the unsigned bytes and the signed bytes are the same, byte for byte
    assert b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(
        unsigned_tree, encoding="UTF-8") == build_receipt(kind, **arguments)  # type: ignore[arg-type]
    assert sign_tree(unsigned_tree, signer) == via_bytes


# -- content -----------------------------------------------------------------------------------


def test_a_rejection_is_the_standard_02_with_the_reason_code_and_both_texts(
    envelope_raw: bytes,
) -> None:
    receipt = receipt_for(envelope_raw, "rejected", reason=Reason.RECIPIENT_UNKNOWN,
                          detail="recipient 000.00.77.H27 is not in the directory")
    assert _status_text(receipt, "StatusCode") == "02"
    description = _status_text(receipt, "Description")
    assert description.startswith(f"RECIPIENT_UNKNOWN: {Reason.RECIPIENT_UNKNOWN.vi}")
    assert Reason.RECIPIENT_UNKNOWN.vi in description
    assert Reason.RECIPIENT_UNKNOWN.en in description
    root = etree.fromstring(receipt)
    evidence = root.find(f".//{{{HUB_NS}}}HubEvidence")
    assert evidence is not None
    assert evidence.get("kind") == "rejected"
    assert evidence.get("reason") == "RECIPIENT_UNKNOWN"
    texts = {el.get("{http://www.w3.org/XML/1998/namespace}lang"): el.text
             for el in evidence.findall(f"{{{HUB_NS}}}ReasonText")}
    assert texts == {"vi": Reason.RECIPIENT_UNKNOWN.vi, "en": Reason.RECIPIENT_UNKNOWN.en}
    assert evidence.findtext(f"{{{HUB_NS}}}Detail") == (
        "recipient 000.00.77.H27 is not in the directory")


def test_a_receipt_names_the_received_document_and_its_reporter(envelope_raw: bytes) -> None:
    root = etree.fromstring(receipt_for(envelope_raw))
    response_for = root.find(f".//{{{NS}}}Status/{{{NS}}}ResponseFor")
    assert response_for is not None
    assert response_for.findtext(f"{{{NS}}}OrganId") == SENDER
    assert response_for.findtext(f"{{{NS}}}Code") == "123/UBND-VP"
    assert response_for.findtext(f"{{{NS}}}DocumentId") == f"{SENDER},2026/11/20,123/UBND-VP"
    assert response_for.findtext(f"{{{NS}}}PromulgationDate") == "2026/11/20"
    assert root.findtext(f".//{{{NS}}}Status/{{{NS}}}From/{{{NS}}}OrganId") == OPERATOR
    assert root.findtext(f".//{{{NS}}}Status/{{{NS}}}Timestamp") == "2026/11/20 09:30:00"


def test_arrival_keeps_the_standard_code_01(envelope_raw: bytes) -> None:
    receipt = receipt_for(envelope_raw, "received", reporter="000.00.03.H27",
                          recipient="000.00.03.H27")
    assert _status_text(receipt, "StatusCode") == "01"
    evidence = read_evidence(receipt)
    assert evidence is not None
    assert evidence.kind is ReceiptKind.RECEIVED
    assert evidence.recipient == "000.00.03.H27"


@pytest.mark.parametrize(("kind", "code"), [("received", "01"), ("accepted", "01"),
                                           ("rejected", "02"), ("countersigned", "05")])
def test_every_receipt_carries_only_a_qcvn_102_status_code(
        envelope_raw: bytes, kind: str, code: str) -> None:
    extra: dict[str, object] = {"reason": Reason.SIGNATURE_INVALID} if kind == "rejected" else {}
    if kind == "countersigned":
        extra["status_code"] = "05"
    if kind == "received":
        extra.update(reporter="000.00.03.H27", recipient="000.00.03.H27")
    receipt = receipt_for(envelope_raw, kind, **extra)
    assert _status_text(receipt, "StatusCode") == code
    assert code in QCVN_STATUS_CODES


@pytest.mark.parametrize("kind", ["received", "accepted", "rejected", "countersigned"])
def test_a_status_reader_that_knows_only_qcvn_102_reads_every_receipt(
        envelope_raw: bytes, kind: str) -> None:
    # A legacy reader: plain XML, the QCVN 102 namespace only, unknown elements ignored.
    extra: dict[str, object] = {"reason": Reason.SIGNATURE_INVALID} if kind == "rejected" else {}
    if kind == "countersigned":
        extra["status_code"] = "03"
    receipt = receipt_for(envelope_raw, kind, **extra)
    root = etree.fromstring(receipt, etree.XMLParser(resolve_entities=False, no_network=True))
    status = root.find(f".//{{{NS}}}Status")
    assert status is not None
    legacy = {child.tag.split("}")[1] for child in status
              if child.tag.startswith(f"{{{NS}}}")}
    assert {"ResponseFor", "From", "StatusCode", "Description", "Timestamp"} <= legacy
    assert status.findtext(f"{{{NS}}}StatusCode") in {"01", "02", "03", "04", "05", "06",
                                                       "13", "15", "16"}


def test_a_countersignature_records_the_forwarded_status_code(envelope_raw: bytes) -> None:
    evidence = read_evidence(receipt_for(envelope_raw, "countersigned", status_code="03"))
    assert evidence is not None
    assert evidence.status_code == "03"


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("rejected", {}),
        ("rejected", {"reason": Reason.OK}),
        ("accepted", {"reason": Reason.SIGNATURE_INVALID}),
        ("accepted", {"status_code": "03"}),
        ("nonsense", {}),
    ],
    ids=["rejection without reason", "rejection with OK", "acceptance with a reason",
         "status code outside a countersignature", "unknown kind"],
)
def test_inconsistent_receipt_requests_are_refused(
    envelope_raw: bytes, kind: str, extra: dict[str, object]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        receipt_for(envelope_raw, kind, **extra)


def test_a_receipt_for_a_malformed_document_id_still_builds(envelope_raw: bytes) -> None:
    receipt = receipt_for(envelope_raw, "rejected", reason=Reason.DOCUMENT_ID_INVALID,
                          document_id="no commas here")
    root = etree.fromstring(receipt)
    assert root.findtext(f".//{{{NS}}}ResponseFor/{{{NS}}}DocumentId") == "no commas here"
    assert root.findtext(f".//{{{NS}}}ResponseFor/{{{NS}}}PromulgationDate") == "2026/11/20"


# -- binding -----------------------------------------------------------------------------------


def test_the_receipt_binds_the_exact_bytes_and_the_senders_signature(envelope_raw: bytes) -> None:
    receipt = receipt_for(envelope_raw)
    evidence = read_evidence(receipt)
    assert evidence is not None
    assert evidence.envelope_digest == hashlib.sha256(envelope_raw).hexdigest()
    assert evidence.signature_value_digest == hashlib.sha256(
        signature_value_of(envelope_raw)).hexdigest()
    assert check_binding(receipt, envelope_raw)


def test_one_changed_byte_breaks_the_binding(envelope_raw: bytes) -> None:
    receipt = receipt_for(envelope_raw)
    changed = envelope_raw.replace(b"</edXML>", b"</edXML>\n")
    assert not check_binding(receipt, changed)


def test_a_receipt_bound_to_another_signature_value_does_not_bind(envelope_raw: bytes) -> None:
    receipt = receipt_for(envelope_raw, signature_value=b"another signature")
    assert not check_binding(receipt, envelope_raw)


def test_an_unsigned_envelope_is_bound_by_its_digest_alone() -> None:
    raw = build_envelope(sample_header(SENDER, ["000.00.03.H27"]), signature_placeholder=False)
    receipt = receipt_for(raw, "rejected", reason=Reason.SIGNATURE_MISSING)
    evidence = read_evidence(receipt)
    assert evidence is not None
    assert evidence.signature_value_digest is None
    assert check_binding(receipt, raw)


@pytest.mark.parametrize("receipt", [b"", b"<x/>", b"not xml"], ids=["empty", "other", "junk"])
def test_something_that_is_not_a_receipt_binds_nothing(envelope_raw: bytes, receipt: bytes) -> None:
    assert not check_binding(receipt, envelope_raw)


def test_a_signed_receipt_still_binds_and_its_signature_covers_the_evidence(
    envelope_raw: bytes, signer: OrgSigner
) -> None:
    signed = sign_xml(receipt_for(envelope_raw, "rejected", reason=Reason.CERT_REVOKED), signer)
    assert check_binding(signed, envelope_raw)
    XMLVerifier().verify(signed, x509_cert=signer.cert)
    # Rewriting the evidence after signing breaks the hub's signature.
    forged = signed.replace(b'reason="CERT_REVOKED"', b'reason="CERT_EXPIRED"')
    assert forged != signed
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(forged, x509_cert=signer.cert)


def test_the_evidence_sits_before_the_signature_slot_in_the_header(envelope_raw: bytes) -> None:
    root = etree.fromstring(receipt_for(envelope_raw))
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert header is not None
    assert [etree.QName(el).localname for el in header] == [
        "Status", "HubEvidence", "DigitalSignature"]
    assert [etree.QName(el).localname for el in header[-1]] == ["Signature"]


# -- schema ------------------------------------------------------------------------------------

_EXTENSION = (
    f'<xs:any namespace="{HUB_NS}" processContents="lax" minOccurs="0" maxOccurs="1"/>'
)


def test_a_receipt_parses_as_a_status_packet(envelope_raw: bytes) -> None:
    status = parse_status(receipt_for(envelope_raw))
    assert status.status_code == "01"
    assert status.response_for.document_id == f"{SENDER},2026/11/20,123/UBND-VP"
    assert status.response_for.promulgation_date == date(2026, 11, 20)


def test_receipts_import_neither_pika_nor_sqlalchemy() -> None:
    code = (
        "import sys, hub.receipts.content; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pika', 'sqlalchemy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _signature_value_by_paths(root: etree._Element) -> bytes:
    """The reference: signature_value_of as written with ElementPath (before issue 23)."""
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    candidates = [*(header.findall(f"{{{DS_NS}}}Signature") if header is not None else []),
                  *(header.findall(f"{{{NS}}}DigitalSignature/{{{DS_NS}}}Signature")
                    if header is not None else []),
                  *root.findall(f"{{{DS_NS}}}Signature")]
    if len(candidates) != 1:
        return b""
    values = candidates[0].findall(f"{{{DS_NS}}}SignatureValue")
    if len(values) != 1:
        return b""
    try:
        return base64.b64decode("".join((values[0].text or "").split()), validate=True)
    except ValueError:
        return b""


def _placements(envelope_raw: bytes) -> list[bytes]:
    """The signature moved, copied and doubled through every slot the reader looks at, and
    some it does not."""
    out: list[bytes] = []

    def variant(edit: Any) -> None:
        root = etree.fromstring(envelope_raw)
        header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
        signature = root.find(f".//{{{DS_NS}}}Signature")
        assert header is not None
        assert signature is not None
        edit(root, header, signature)
        out.append(etree.tostring(root))

    def copy(el: etree._Element) -> etree._Element:
        return etree.fromstring(etree.tostring(el))

    variant(lambda root, header, sig: None)
    variant(lambda root, header, sig: header.append(sig))
    variant(lambda root, header, sig: root.append(sig))
    variant(lambda root, header, sig: root.append(copy(sig)))
    variant(lambda root, header, sig: header.append(copy(sig)))
    variant(lambda root, header, sig: sig.getparent().append(copy(sig)))
    variant(lambda root, header, sig: header.append(copy(sig.getparent())))
    variant(lambda root, header, sig: sig.append(copy(sig.find(f"{{{DS_NS}}}SignatureValue"))))
    variant(lambda root, header, sig: sig.remove(sig.find(f"{{{DS_NS}}}SignatureValue")))
    variant(lambda root, header, sig: root.find(f"{{{NS}}}edXMLEnvelope").append(copy(sig)))
    variant(lambda root, header, sig: root.find(f"{{{NS}}}edXMLEnvelope").insert(
        0, etree.Element(f"{{{NS}}}edXMLHeader")))
    variant(lambda root, header, sig: root.insert(0, copy(root.find(f"{{{NS}}}edXMLEnvelope"))))
    variant(lambda root, header, sig: header.getparent().remove(header))
    variant(lambda root, header, sig: setattr(sig.find(f"{{{DS_NS}}}SignatureValue"), "text",
                                              "not base64 !"))
    return out


def test_the_signature_value_reader_agrees_with_its_elementpath_reference_on_every_placement(
        envelope_raw: bytes) -> None:
    for raw in _placements(envelope_raw):
        root = etree.fromstring(raw)
        assert signature_value_of(raw) == _signature_value_by_paths(root)
        assert signature_value_of(raw, root) == _signature_value_by_paths(root)
