"""The content of the hub's receipts: EDXML status packets bound to the exact bytes received.

A receipt is a QCVN 102:2016 status packet (``edXML:Status``: ``ResponseFor`` names the received
document by its sender, ``Code`` and ``DocumentId``; ``From`` is the reporting organization;
``StatusCode``, ``Description``, ``Timestamp``) plus one extension element that binds it
cryptographically to what was received. This module builds the *unsigned* bytes (with the
``<ds:Signature Id="placeholder"/>`` the builder leaves in ``edXMLHeader/edXML:DigitalSignature``);
the caller signs them with :func:`hub.trust.signing.sign_xml` — as the hub operator, or as the
recipient organization for ``01``. Pure: no I/O, no broker, no database.

Kinds and status codes — QCVN 102 codes only, each with its standard meaning
(:func:`standard_code`), so that a reader that knows only the standard can act on every
receipt; what only the hub says is in ``hub:HubEvidence``:

=================  ===========  ===========================================================
kind               StatusCode   meaning
=================  ===========  ===========================================================
``received``       ``01``       Đã đến: the document is durably in the recipient's queue
                                (QCVN 102 status 01, "sent by the recipient, automatically");
                                signed as the recipient organization.
``accepted``       ``01``       Đã đến, as the exchange: the hub verified and recorded the
                                document (hub evidence); signed as the hub operator.
``rejected``       ``02``       Từ chối: the hub refused it; ``Description`` and ``reason``
                                carry the stable reason code; signed as the hub operator.
``countersigned``  the          The hub forwarded a status packet: its own code, also in the
                   forwarded    evidence's ``status`` attribute; signed as the hub operator.
                   code
=================  ===========  ===========================================================

A refusal is about the packet it read (``ResponseFor`` names that packet's sender, ``Code`` and
``DocumentId``), or — when the bytes could not be read, or named a ``From`` the publishing
account may not speak for — about the bytes, addressed to the publishing account's
organization: ``ResponseFor`` then names them ``{publisher},{YYYY/MM/DD},{digest16}/HUB``
(:func:`unread_document_id`), a DocumentId every QCVN 102 reader parses.

The extension (namespace :data:`HUB_NS`, prefix ``hub``), placed in ``edXMLHeader`` right
after ``edXML:Status`` and before the signature, so the hub's signature covers it::

    <hub:HubEvidence xmlns:hub="urn:edxml-hub:receipt:1" version="1"
                     kind="rejected" reason="RECIPIENT_UNKNOWN" at="2025-09-01T16:00:00.000+07:00"
                     [status="03"] [recipient="000.00.14.H27"]>
      <hub:EnvelopeDigest alg="sha-256">hex of SHA-256(exact bytes received)</hub:EnvelopeDigest>
      <hub:SignatureValueDigest alg="sha-256">hex of SHA-256(sender's ds:SignatureValue,
          base64-decoded)</hub:SignatureValueDigest>          (absent when unsigned)
      <hub:ReasonText xml:lang="vi">…</hub:ReasonText>        (rejected only)
      <hub:ReasonText xml:lang="en">…</hub:ReasonText>
      <hub:Detail>which codes, which check</hub:Detail>      (optional, never document content)
    </hub:HubEvidence>

``EnvelopeDigest`` proves *which bytes* the receipt is about (the hub never re-serializes, so
the sender can hash what it sent); ``SignatureValueDigest`` ties the receipt to the sender's
signature even if the sender only kept its signature value. The schema
(``edxml-qcvn102-2016.xsd``) must allow this element: in ``HeaderType``, after the
``MessageHeader|Status`` choice, ``<xs:any namespace="urn:edxml-hub:receipt:1"
processContents="lax" minOccurs="0" maxOccurs="1"/>``.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from hub.edxml._xml import Limits, parse_xml
from hub.edxml.b64 import strict_b64decode
from hub.edxml.build import XML_DECLARATION, build_status_tree
from hub.edxml.errors import EnvelopeRefused
from hub.edxml.model import DS_NS, NS, VIETNAM_TZ, Organization, ResponseFor, StatusCode
from hub.edxml.orgcode import DocumentId
from hub.reasons import Reason

__all__ = [
    "HUB_NS",
    "QCVN_STATUS_CODES",
    "QCVN_STATUS_RANGE",
    "UNREAD_NOTATION",
    "Evidence",
    "ReceiptKind",
    "build_receipt",
    "build_receipt_tree",
    "carries_hub_evidence",
    "check_binding",
    "issuer_mismatch",
    "read_evidence",
    "signature_value_of",
    "unread_document_id",
]

HUB_NS = "urn:edxml-hub:receipt:1"
"""Namespace of the hub's receipt extension (version 1; a new version gets a new URN)."""
QCVN_STATUS_CODES = frozenset(code.value for code in StatusCode)
"""The codes in use in QCVN 102:2016 status packets (as used by the national axis); the hub's
parser also passes the unused codes of the standard's range, 07-12 and 14, through."""
QCVN_STATUS_RANGE = frozenset(f"{n:02d}" for n in range(1, 17))
"""QCVN 102:2016 numbers its statuses 01 to 16 (DOMAIN.md §3: 01-06, 13, 15 and 16 in use;
07-12 and 14 unused in the samples, passed through). Any other code (00, 17-99) names no
status: the hub refuses such a status at its intake (STATUS_CODE_INVALID) and forwards and
countersigns only what the standard defines. The parser itself reads any two digits: a
receipt the hub countersigned before it refused them still parses and verifies."""
UNREAD_NOTATION = "HUB"
"""The notation of the DocumentId that names bytes refused unread (:func:`unread_document_id`)."""
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_ALG = "sha-256"
_RECEIPT_LIMITS = Limits(max_bytes=1024 * 1024, max_attachment_bytes=0, max_depth=32,
                         max_elements=10_000)
"""Receipts are small status packets; anything bigger is not one of ours."""


class ReceiptKind(enum.StrEnum):
    RECEIVED = "received"
    """QCVN 102 ``01`` (đã đến): durably in the recipient's queue."""
    ACCEPTED = "accepted"
    """The hub verified and recorded the document."""
    REJECTED = "rejected"
    """The hub refused the document (``reason``)."""
    COUNTERSIGNED = "countersigned"
    """The hub forwarded a status packet (``status_code`` is that packet's code)."""


_DESCRIPTION: dict[ReceiptKind, tuple[str, str]] = {
    ReceiptKind.RECEIVED: (StatusCode.ARRIVED.vi, StatusCode.ARRIVED.en),
    ReceiptKind.ACCEPTED: (
        "Hệ thống trung gian đã kiểm tra và tiếp nhận văn bản",
        "The hub verified and accepted the document",
    ),
    ReceiptKind.REJECTED: ("Hệ thống trung gian từ chối văn bản", "The hub refused the document"),
    ReceiptKind.COUNTERSIGNED: (
        "Hệ thống trung gian đã chuyển trạng thái văn bản",
        "The hub forwarded the document's status",
    ),
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a receipt's ``hub:HubEvidence`` says (read back by :func:`read_evidence`)."""

    kind: ReceiptKind
    envelope_digest: str
    """Hex SHA-256 of the exact bytes received."""
    signature_value_digest: str | None
    """Hex SHA-256 of the sender's decoded ``ds:SignatureValue``; None when it had none."""
    reason: str | None
    """The stable reason code (kept as text: a later release may know more codes)."""
    at: str
    """ISO 8601 time of the evidence, Vietnam time."""
    status_code: str | None = None
    recipient: str | None = None


def _hub(name: str) -> str:
    return f"{{{HUB_NS}}}{name}"


def _organization(value: Organization | str) -> Organization:
    return value if isinstance(value, Organization) else Organization(organ_id=value)


def unread_document_id(publisher: str, digest: str, at: datetime) -> tuple[str, str]:
    """``(DocumentId, Code)`` for ``ResponseFor`` in a refusal of bytes the hub did not read
    as a packet (unparseable, not EDXML, or a From the publishing account may not speak for):
    ``{publisher},{YYYY/MM/DD},{digest16}/HUB`` and ``{digest16}/HUB``.

    A QCVN 102 DocumentId (§1.14) whose number is the first 16 hex digits of the bytes'
    SHA-256 and whose notation is :data:`UNREAD_NOTATION`, dated the day of the refusal
    (Vietnam time; a naive ``at`` is taken as Vietnam time), so that any standard reader —
    the hub's own parser first — reads the refusal. Stable: the same bytes refused by the same
    publisher on the same day are named the same; ``hub:HubEvidence`` carries the full digest.
    """
    when = at.astimezone(VIETNAM_TZ) if at.tzinfo is not None else at
    number = digest[:16].lower()
    document_id = DocumentId.make(publisher, when.date(), number, UNREAD_NOTATION)
    return str(document_id), f"{number}/{UNREAD_NOTATION}"


def promulgation_date(document_id: str, fallback: datetime) -> date:
    """``ResponseFor/PromulgationDate``: the DocumentId's date, else the receipt's own day."""
    try:
        return DocumentId.parse(document_id).promulgation_date
    except EnvelopeRefused:
        # A rejected packet may carry a malformed DocumentId; ResponseFor still needs a date.
        # The DocumentId element keeps the text as received.
        return fallback.astimezone(VIETNAM_TZ).date() if fallback.tzinfo else fallback.date()


def _evidence_element(
    kind: ReceiptKind,
    *,
    envelope_digest: str,
    signature_value: bytes,
    at: datetime,
    reason: Reason | None,
    detail: str,
    status_code: str | None,
    recipient: str | None,
) -> etree._Element:
    attributes = {"version": "1", "kind": kind.value, "at": evidence_time(at)}
    if reason is not None:
        attributes["reason"] = reason.value
    if status_code is not None:
        attributes["status"] = status_code
    if recipient is not None:
        attributes["recipient"] = recipient
    evidence = etree.Element(_hub("HubEvidence"), attributes, nsmap={"hub": HUB_NS})
    digest = etree.SubElement(evidence, _hub("EnvelopeDigest"), {"alg": _ALG})
    digest.text = envelope_digest
    if signature_value:
        sv = etree.SubElement(evidence, _hub("SignatureValueDigest"), {"alg": _ALG})
        sv.text = hashlib.sha256(signature_value).hexdigest()
    if reason is not None:
        for lang, text in (("vi", reason.vi), ("en", reason.en)):
            etree.SubElement(evidence, _hub("ReasonText"), {f"{{{_XML_NS}}}lang": lang}).text = text
    if detail:
        etree.SubElement(evidence, _hub("Detail")).text = detail
    return evidence


def build_receipt(
    kind: ReceiptKind | str,
    *,
    envelope_raw: bytes,
    signature_value: bytes,
    sender: str,
    document_id: str,
    code: str,
    reporter: Organization | str,
    at: datetime,
    reason: Reason | None = None,
    detail: str = "",
    status_code: str | None = None,
    recipient: str | None = None,
) -> bytes:
    """Unsigned receipt bytes (with the signature placeholder) about ``envelope_raw``.

    ``sender``, ``document_id`` and ``code`` name the received document as it named itself
    (``ResponseFor``); ``reporter`` is the organization the receipt speaks for (``From``);
    ``signature_value`` is the sender's ``ds:SignatureValue`` (:func:`signature_value_of`),
    ``b""`` when it had none. ``reason`` is required for ``rejected`` and refused for the
    others; ``status_code`` is the forwarded status's code, for ``countersigned`` only.
    """
    root = build_receipt_tree(
        kind, envelope_raw=envelope_raw, signature_value=signature_value, sender=sender,
        document_id=document_id, code=code, reporter=reporter, at=at, reason=reason,
        detail=detail, status_code=status_code, recipient=recipient)
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def standard_code(kind: ReceiptKind, forwarded: str | None = None) -> str:
    """The QCVN 102 StatusCode a receipt carries, so that a status reader that knows only the
    standard can act on it (what only the hub says is in ``hub:HubEvidence``):

    - ``received`` and ``accepted``: ``01`` (đã đến — in the recipient's system, or verified and
      taken in by the exchange);
    - ``rejected``: ``02`` (từ chối), the reason code and its text in ``Description``;
    - ``countersigned``: the forwarded status's own code.
    """
    if kind is ReceiptKind.REJECTED:
        return StatusCode.REJECTED.value
    if kind is ReceiptKind.COUNTERSIGNED and forwarded is not None:
        return forwarded
    return StatusCode.ARRIVED.value


def checked_request(kind: ReceiptKind | str, reason: Reason | None,
                    status_code: str | None) -> tuple[ReceiptKind, str]:
    """The receipt's kind and its ``Description``; ``ValueError`` for an inconsistent request
    (a refusal without a reason, a reason on anything else, a status code outside a
    countersignature, an unknown kind)."""
    kind = ReceiptKind(kind)
    rejected = kind is ReceiptKind.REJECTED
    if rejected != (reason is not None and reason is not Reason.OK):
        needs = "needs a" if rejected else "takes no"
        raise ValueError(f"a {kind.value} receipt {needs} reason")
    if status_code is not None and kind is not ReceiptKind.COUNTERSIGNED:
        raise ValueError("status_code is the forwarded status's code: countersigned receipts only")
    if reason is not None:
        # A reader that knows only QCVN 102 sees a refusal (02) and why: the stable reason code
        # and its Vietnamese text first, then the English.
        return kind, f"{reason.value}: {reason.vi} / {reason.en}"
    vi, en = _DESCRIPTION[kind]
    return kind, f"{vi} / {en}"


def evidence_time(at: datetime) -> str:
    """The evidence's ``at``: ISO 8601 in Vietnam time, milliseconds (a naive time is taken as
    Vietnam time)."""
    when = at.astimezone(VIETNAM_TZ) if at.tzinfo is not None else at.replace(tzinfo=VIETNAM_TZ)
    return when.isoformat(timespec="milliseconds")


def build_receipt_tree(
    kind: ReceiptKind | str,
    *,
    envelope_raw: bytes,
    signature_value: bytes,
    sender: str,
    document_id: str,
    code: str,
    reporter: Organization | str,
    at: datetime,
    reason: Reason | None = None,
    detail: str = "",
    status_code: str | None = None,
    recipient: str | None = None,
    envelope_digest: str | None = None,
) -> etree._Element:
    """The tree :func:`build_receipt` serializes: what the hub signs in memory
    (:func:`hub.trust.signing.sign_tree`) without a serialize-and-parse round trip.
    ``envelope_digest``: the hex SHA-256 of ``envelope_raw`` when the caller already has it."""
    kind, description = checked_request(kind, reason, status_code)
    root = build_status_tree(
        response_for=ResponseFor(
            organ_id=sender,
            code=code,
            promulgation_date=promulgation_date(document_id, at),
            document_id=document_id,
        ),
        sender=_organization(reporter),
        status_code=standard_code(kind, status_code),
        timestamp=at,
        description=description,
        signature_placeholder=True,
    )
    header = _header(root)
    # The builder's default: the placeholder in edXML:DigitalSignature, the header's last child.
    slot = header.find(f"{{{NS}}}DigitalSignature") if header is not None else None
    previous = slot.getprevious() if slot is not None else None
    if slot is None or previous is None:
        raise AssertionError("build_status produced no Status followed by the signature slot")
    evidence = _evidence_element(
        kind, envelope_digest=envelope_digest or hashlib.sha256(envelope_raw).hexdigest(),
        signature_value=signature_value, at=at, reason=reason, detail=detail,
        status_code=status_code, recipient=recipient,
    )
    # After Status (and any TraceHeaderList), before the signature slot (the XSD's order): the
    # signature covers it.
    etree.indent(evidence, space="  ", level=3)  # the builder's layout: header children at 3
    evidence.tail = previous.tail
    slot.addprevious(evidence)
    return root


_DS_SIGNATURE = f"{{{DS_NS}}}Signature"
_DS_SIGNATURE_VALUE = f"{{{DS_NS}}}SignatureValue"
_DIGITAL_SIGNATURE = f"{{{NS}}}DigitalSignature"
_ENVELOPE = f"{{{NS}}}edXMLEnvelope"
_HEADER = f"{{{NS}}}edXMLHeader"


def _header(root: etree._Element) -> etree._Element | None:
    """The first ``edXMLEnvelope/edXMLHeader`` (what ``root.find`` of that path gives)."""
    for envelope in root.iterchildren(_ENVELOPE):
        for header in envelope.iterchildren(_HEADER):
            return header
    return None


def signature_value_of(raw: bytes, tree: etree._Element | None = None) -> bytes:
    """The packet-level ``ds:SignatureValue`` of ``raw``, base64-decoded; ``b""`` if none.

    The hub's profile puts the signature in ``edXMLHeader/edXML:DigitalSignature`` or last in
    ``edXMLHeader``; a signature directly under the root (some older tools) is read too. Zero
    or several candidates, unparseable bytes or a value that is not base64 all give ``b""``:
    there is nothing single to bind to (the validators refuse such packets with their own
    reasons). ``tree``: the root the hub's
    parser built from exactly ``raw`` (``Envelope.tree``), read instead of parsing again.
    """
    if tree is not None:
        root = tree
    else:
        try:
            root = parse_xml(raw, Limits())
        except EnvelopeRefused:
            return b""
    header = _header(root)
    # Children by tag, matched in C (ElementPath ``findall`` cost ~2 µs a call, four calls).
    candidates = list(root.iterchildren(_DS_SIGNATURE))
    if header is not None:
        candidates += header.iterchildren(_DS_SIGNATURE)
        for slot in header.iterchildren(_DIGITAL_SIGNATURE):
            candidates += slot.iterchildren(_DS_SIGNATURE)
    if len(candidates) != 1:
        return b""
    values = list(candidates[0].iterchildren(_DS_SIGNATURE_VALUE))
    if len(values) != 1:
        return b""
    text = "".join((values[0].text or "").split())
    try:
        return strict_b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def read_evidence(receipt: bytes) -> Evidence | None:
    """The ``hub:HubEvidence`` of a receipt, or None when it has not exactly one well-formed one."""
    try:
        root = parse_xml(receipt, _RECEIPT_LIMITS)
    except EnvelopeRefused:
        return None
    header = _header(root)
    found = header.findall(_hub("HubEvidence")) if header is not None else []
    if len(found) != 1:
        return None
    el = found[0]
    digests = el.findall(_hub("EnvelopeDigest"))
    sv = el.findall(_hub("SignatureValueDigest"))
    if len(digests) != 1 or len(sv) > 1 or any(d.get("alg") != _ALG for d in (*digests, *sv)):
        return None
    try:
        kind = ReceiptKind(el.get("kind", ""))
    except ValueError:
        return None
    return Evidence(
        kind=kind,
        envelope_digest=(digests[0].text or "").strip(),
        signature_value_digest=(sv[0].text or "").strip() if sv else None,
        reason=el.get("reason"),
        at=el.get("at", ""),
        status_code=el.get("status"),
        recipient=el.get("recipient"),
    )


def carries_hub_evidence(root: etree._Element) -> bool:
    """Whether a parsed packet holds anything in the hub's receipt namespace. Only the hub
    writes that: a packet from an agency that carries it is refused, so no agency can pass off
    a receipt of its own making as the hub's (issue 16, M4). Asked of every envelope: a
    tag match in C (3 µs), not an XPath compiled per call (110 µs)."""
    return next(root.iter(f"{{{HUB_NS}}}*"), None) is not None


def issuer_mismatch(evidence: Evidence, reporter: str, operator: str) -> str | None:
    """Why the organization that signed a receipt may not give its kind of evidence, or None.

    ``accepted``, ``rejected`` and ``countersigned`` are the hub's word: only the hub operator
    signs them. ``received`` ("01 đã đến") is the recipient's word: only the recipient it names.
    The signature itself (and that its certificate belongs to ``reporter``) is checked apart.
    """
    if evidence.kind is ReceiptKind.RECEIVED:
        if evidence.recipient and evidence.recipient == reporter:
            return None
        return f"a 'received' receipt signed by {reporter}, not by the recipient it names " \
               f"({evidence.recipient or 'none'})"
    if reporter == operator:
        return None
    return f"an '{evidence.kind.value}' receipt is the hub operator's ({operator}), " \
           f"but {reporter} signed it"


def _same(expected_hex: str, data: bytes) -> bool:
    return hmac.compare_digest(expected_hex.lower(), hashlib.sha256(data).hexdigest())


def check_binding(receipt: bytes, envelope_raw: bytes) -> bool:
    """Whether ``receipt`` is about exactly ``envelope_raw`` (and its signature, if bound).

    Checks the content only; the receipt's own signature is checked by the validators
    (``hub receipt verify`` does both).
    """
    evidence = read_evidence(receipt)
    if evidence is None or not _same(evidence.envelope_digest, envelope_raw):
        return False
    if evidence.signature_value_digest is None:
        return True
    return _same(evidence.signature_value_digest, signature_value_of(envelope_raw))
