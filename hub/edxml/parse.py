"""Parse EDXML packets into the model: hardened parse, XSD validation, then extraction.

Every refusal is an :class:`EnvelopeRefused` with a stable reason; no builtin or lxml exception
leaves :func:`parse_packet`, :func:`parse_envelope` or :func:`parse_status` (they all go through
:func:`_guard`, the one place that maps unexpected exceptions).

Values the schema leaves as strings are checked here with precise reasons: organization codes
(ORGAN_ID_INVALID), DocumentIds (DOCUMENT_ID_INVALID), dates and timestamps (DATE_INVALID),
status codes (STATUS_CODE_INVALID), attachments (ATTACHMENT_*), and the length of every text
field the hub reads (FIELD_TOO_LONG; :class:`hub.edxml.Limits`: identifiers the ledger stores in
bounded columns, free text, ``Content``) — before anything is extracted, so no later step (the
ledger above all) meets a value it cannot hold. Elements are found by namespace
and local name, never by prefix.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from lxml import etree

from hub.edxml._xml import Limits, parse_xml, schema
from hub.edxml.b64 import strict_b64decode
from hub.edxml.errors import EnvelopeRefused
from hub.edxml.model import (
    DS_NS,
    NS,
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    Envelope,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
)
from hub.edxml.orgcode import DocumentId, OrgCode, parse_date
from hub.reasons import Reason

T = TypeVar("T")
_El = etree._Element

_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S", "%d/%m/%Y %H:%M:%S")
# ASCII digits only ([0-9], not \d, which takes any Unicode digit: "٠٦" or "０３" is no code).
_TIMESTAMP = re.compile(r"[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
                        r"|[0-9]{2}/[0-9]{2}/[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_STATUS_CODE = re.compile(r"[0-9]{2}")
_B64_WHITESPACE = str.maketrans("", "", " \t\r\n")
_B64_WHITESPACE_BYTES = b" \t\r\n"

# QCVN 102 §1.1–1.14: (minimum, maximum) occurrences; None = unbounded.
_HEADER_CARDINALITY: dict[str, tuple[int, int | None]] = {
    "From": (1, 1),
    "To": (1, None),
    "Code": (1, 1),
    "PromulgationInfo": (1, 1),
    "DocumentType": (1, 1),
    "Subject": (1, 1),
    "Content": (0, 1),
    "SignerInfo": (0, 1),
    "DueDate": (0, 1),
    "ToPlaces": (0, 1),
    "OtherInfo": (0, 1),
    "ResponseFor": (0, None),
    "SteeringType": (0, 1),
    "DocumentId": (1, 1),
}


# -- small helpers --------------------------------------------------------------------------


def _local(el: _El) -> str:
    return etree.QName(el).localname


_PREFIX = "{" + NS + "}"
_ANY_EDXML = _PREFIX + "*"
"""lxml's tag filter for every element in the EDXML namespace (matched in C; comments and
processing instructions never match)."""
_CUT = len(_PREFIX)


def _kids(el: _El, name: str | None = None) -> list[_El]:
    # Compare Clark-notation tag strings: building an etree.QName per child per lookup was the
    # parser's main cost (measured ~1 ms of a 1.1 ms parse for a 12 KB envelope).
    if name is None:
        return [c for c in el if isinstance(c.tag, str) and c.tag.startswith(_PREFIX)]
    # lxml matches the tag in C (a Python loop over every child cost ~0.1 ms per packet).
    return list(el.iterchildren(_PREFIX + name))


def _child(el: _El, name: str) -> _El | None:
    found = _kids(el, name)
    return found[0] if found else None


def _text_of(el: _El | None) -> str:
    """Text content without comments (what exclusive c14n without comments signs)."""
    if el is None:
        return ""
    if len(el) == 0:
        return el.text or ""
    parts: list[str] = [el.text or ""]
    for node in el.iterdescendants():
        if isinstance(node.tag, str):
            parts.append(node.text or "")
        parts.append(node.tail or "")
    return "".join(parts)


class _Fields:
    """The EDXML children of one element by local name, read in one pass.

    Extraction reads ~45 fields per packet; a C-level child search per field still cost
    ~1.5 µs of Python calls each (~70 µs per packet), one pass per element and dict look-ups
    cost a fifth of that. Same semantics as :func:`_kids`: children in the EDXML namespace, in
    document order."""

    __slots__ = ("_by_name", "el")

    def __init__(self, el: _El) -> None:
        self.el = el
        by_name: dict[str, list[_El]] = {}
        # The namespace is matched in C (a Python test of every child's tag cost ~1 µs per
        # element read). Same children as the test of tag.startswith(_PREFIX): only a namespace
        # URI holding "}" could start like it, and the parser refuses such a URI.
        for child in el.iterchildren(_ANY_EDXML):
            name = child.tag[_CUT:]
            found = by_name.get(name)
            if found is None:
                by_name[name] = [child]
            else:
                found.append(child)
        self._by_name = by_name

    def kids(self, name: str) -> list[_El]:
        return self._by_name.get(name, [])

    def child(self, name: str) -> _El | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    def count(self, name: str) -> int:
        found = self._by_name.get(name)
        return 0 if found is None else len(found)

    def text(self, name: str) -> str:
        """:func:`_text_of` the first child called ``name`` ("" when there is none), inlined
        for the usual leaf (~45 fields per packet)."""
        found = self._by_name.get(name)
        if found is None:
            return ""
        el = found[0]
        if len(el):
            return _text_of(el)
        return el.text or ""

    def token(self, name: str) -> str:
        return self.text(name).strip()

    def int(self, name: str, default: int | None) -> int | None:
        value = self.token(name)
        return int(value) if value else default


def _schema_error(el: _El, detail: str) -> EnvelopeRefused:
    return EnvelopeRefused(Reason.ENVELOPE_SCHEMA_INVALID, f"line {el.sourceline}: {detail}")


def _organ_id(f: _Fields, name: str = "OrganId") -> str:
    """An OrganId as received (whitespace trimmed), checked against both code formats."""
    value = f.token(name)
    try:
        OrgCode.parse(value)
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(exc.reason, f"line {f.el.sourceline}: {exc.detail}") from None
    return value


def _date(f: _Fields, name: str) -> date | None:
    value = f.token(name)
    if not value:
        return None
    try:
        return parse_date(value)
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(exc.reason,
                              f"{name} line {f.el.sourceline}: {exc.detail}") from None


def _required_date(f: _Fields, name: str) -> date:
    value = _date(f, name)
    if value is None:
        raise EnvelopeRefused(Reason.DATE_INVALID, f"{name} line {f.el.sourceline}: empty date")
    return value


def parse_timestamp(text: str) -> datetime:
    """``yyyy/MM/dd HH:mm:ss`` (or the ``dd/MM/yyyy HH:mm:ss`` some senders write), Vietnam time."""
    candidate = text.strip()
    if _TIMESTAMP.fullmatch(candidate):
        for fmt in _TIMESTAMP_FORMATS:
            try:
                if fmt[1] == "Y":  # the usual form: no strptime (~20 µs each, four per packet)
                    return datetime(int(candidate[0:4]), int(candidate[5:7]),
                                    int(candidate[8:10]), int(candidate[11:13]),
                                    int(candidate[14:16]), int(candidate[17:19]),
                                    tzinfo=VIETNAM_TZ)
                return datetime.strptime(candidate, fmt).replace(tzinfo=VIETNAM_TZ)
            except ValueError:
                continue
    raise EnvelopeRefused(
        Reason.DATE_INVALID, f"timestamp {text[:25]!r} is not yyyy/MM/dd HH:mm:ss"
    )


def _timestamp(f: _Fields, name: str) -> datetime:
    try:
        return parse_timestamp(f.text(name))
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(exc.reason, f"line {f.el.sourceline}: {exc.detail}") from None


def _content_id(text: str) -> str:
    value = text.strip()
    return value[4:] if value.lower().startswith("cid:") else value


# -- model extraction -----------------------------------------------------------------------


def _organization(el: _El) -> Organization:
    f = _Fields(el)
    return Organization(
        organ_id=_organ_id(f),
        organ_name=f.text("OrganName"),
        organization_in_charge=f.text("OrganizationInCharge"),
        organ_add=f.text("OrganAdd"),
        email=f.token("Email"),
        telephone=f.token("Telephone"),
        fax=f.token("Fax"),
        website=f.token("Website"),
    )


def _document_id(f: _Fields, name: str = "DocumentId") -> DocumentId:
    value = f.token(name)
    try:
        return DocumentId.parse(value)
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(exc.reason, f"line {f.el.sourceline}: {exc.detail}") from None


def _response_for(el: _El) -> ResponseFor:
    f = _Fields(el)
    organ = _organ_id(f)
    doc_id = _document_id(f)
    promulgated = _date(f, "PromulgationDate") or doc_id.promulgation_date
    return ResponseFor(
        organ_id=organ,
        code=f.token("Code"),
        promulgation_date=promulgated,
        document_id=f.token("DocumentId"),
    )


def _staff(el: _El | None) -> StaffInfo | None:
    if el is None:
        return None
    f = _Fields(el)
    return StaffInfo(
        department=f.text("Department"),
        staff=f.text("Staff"),
        mobile=f.token("Mobile"),
        email=f.token("Email"),
    )


def _check_header_cardinality(mh: _Fields) -> None:
    for name, (low, high) in _HEADER_CARDINALITY.items():
        n = mh.count(name)
        if n < low:
            raise _schema_error(mh.el, f"MessageHeader lacks {name}")
        if high is not None and n > high:
            raise _schema_error(mh.el,
                                f"MessageHeader has {n} {name} elements (at most {high})")


def _message_header(mh_el: _El, limits: Limits) -> MessageHeader:
    mh = _Fields(mh_el)
    _check_header_cardinality(mh)
    sender = _organization(mh.kids("From")[0])
    recipients = tuple(_organization(t) for t in mh.kids("To"))
    code_el = mh.kids("Code")[0]
    code_f = _Fields(code_el)
    code = Code(code_f.token("CodeNumber"), code_f.token("CodeNotation"))
    _check_code_length(code, code_el, limits)
    pi = _Fields(mh.kids("PromulgationInfo")[0])
    promulgation = PromulgationInfo(pi.text("Place"), _required_date(pi, "PromulgationDate"))
    dt = _Fields(mh.kids("DocumentType")[0])
    detail_el = dt.child("TypeDetail")
    document_type = DocumentType(
        type=int(dt.token("Type")),
        type_name=dt.text("TypeName"),
        type_detail=None if detail_el is None else _text_of(detail_el),
    )
    signer_el = mh.child("SignerInfo")
    signer: SignerInfo | None = None
    if signer_el is not None:
        si = _Fields(signer_el)
        signer = SignerInfo(si.text("Competence"), si.text("Position"), si.text("FullName"))
    places_el = mh.child("ToPlaces")
    places = () if places_el is None else tuple(_text_of(p) for p in _kids(places_el, "Place"))
    other_el = mh.child("OtherInfo")
    other = OtherInfo() if other_el is None else _other_info(other_el)
    steering = mh.int("SteeringType", 0)

    doc_id = _document_id(mh)
    doc_id_el = mh.kids("DocumentId")[0]
    # QCVN 102 §1.14: DocumentId = "{From/OrganId},{PromulgationDate},{number}/{notation}".
    if doc_id.organ_id.strip() != sender.organ_id.strip():
        raise EnvelopeRefused(
            Reason.DOCUMENT_ID_INVALID,
            f"line {doc_id_el.sourceline}: DocumentId names another sender than From/OrganId",
        )
    if doc_id.promulgation_date != promulgation.promulgation_date:
        raise EnvelopeRefused(
            Reason.DOCUMENT_ID_INVALID,
            f"line {doc_id_el.sourceline}: DocumentId date differs from PromulgationDate",
        )
    return MessageHeader(
        sender=sender,
        recipients=recipients,
        code=code,
        promulgation_info=promulgation,
        document_type=document_type,
        subject=mh.text("Subject"),
        document_id=mh.token("DocumentId"),
        content=mh.text("Content"),
        signer_info=signer,
        due_date=_date(mh, "DueDate"),
        to_places=places,
        other_info=other,
        response_for=tuple(_response_for(r) for r in mh.kids("ResponseFor")),
        steering_type=steering if steering is not None else 0,
    )


def _other_info(el: _El) -> OtherInfo:
    f = _Fields(el)
    appendixes_el = f.child("Appendixes")
    security_el = f.child("SecurityLevel")
    return OtherInfo(
        priority=f.int("Priority", 0) or 0,
        sphere_of_promulgation=f.text("SphereOfPromulgation"),
        typer_notation=f.text("TyperNotation"),
        promulgation_amount=f.int("PromulgationAmount", None),
        page_amount=f.int("PageAmount", None),
        appendixes=()
        if appendixes_el is None
        else tuple(_text_of(a) for a in _kids(appendixes_el, "Appendix")),
        security_level=None if security_el is None else _text_of(security_el),
    )


def _trace(el: _El) -> TraceHeaderList:
    hops = tuple(
        TraceHeader(_organ_id(th), _timestamp(th, "Timestamp"))
        for th in map(_Fields, _kids(el, "TraceHeader"))
    )
    b_el = _child(el, "Bussiness")
    business = None
    if b_el is not None:
        b = _Fields(b_el)
        replacements: list[ReplacementInfo] = []
        rl = b.child("ReplacementInfoList")
        if rl is not None:
            for ri_el in _kids(rl, "ReplacementInfo"):
                ri = _Fields(ri_el)
                ol = ri.child("OrganIdList")
                organs = (
                    () if ol is None else tuple(_organ_id_text(o) for o in _kids(ol, "OrganId"))
                )
                replacements.append(ReplacementInfo(ri.token("DocumentId"), organs))
        doc_id_el = b.child("DocumentId")
        business = Business(
            doc_type=BusinessDocType(int(b.token("BussinessDocType"))),
            reason=b.text("BussinessDocReason"),
            document_id=None if doc_id_el is None else _text_of(doc_id_el).strip(),
            staff_info=_staff(b.child("StaffInfo")),
            paper=b.int("Paper", 0) or 0,
            replacements=tuple(replacements),
        )
    return TraceHeaderList(hops, business)


def _organ_id_text(el: _El) -> str:
    value = _text_of(el).strip()
    try:
        OrgCode.parse(value)
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(exc.reason, f"line {el.sourceline}: {exc.detail}") from None
    return value


def _manifest(body: _El) -> tuple[Reference, ...]:
    manifest = _child(body, "edXMLManifest")
    if manifest is None:
        return ()
    return tuple(
        Reference(
            content_id=_content_id(ref.text("ContentId")),
            attachment_name=ref.text("AttachmentName"),
            content_type=ref.token("ContentType"),
            description=ref.text("Description"),
        )
        for ref in map(_Fields, _kids(manifest, "Reference"))
    )


def _attachments(
    encoded: _El | None, manifest: tuple[Reference, ...], limits: Limits
) -> tuple[Attachment, ...]:
    """The files of ``encoded`` (``AttachmentEncoded``), exactly those the manifest declares."""
    elements = [] if encoded is None else [_Fields(a) for a in _kids(encoded, "Attachment")]
    declared_ids = [ref.content_id for ref in manifest]
    present_ids = [_content_id(a.text("ContentId")) for a in elements]
    # Sets, not Counters (~4 µs per packet): once neither list repeats an id, the multisets
    # are sets, and a set difference counts what a Counter difference counted.
    declared = set(declared_ids)
    present = set(present_ids)
    if len(declared) != len(declared_ids) or len(present) != len(present_ids):
        raise EnvelopeRefused(Reason.ATTACHMENT_NOT_IN_MANIFEST, "duplicate ContentId")
    if declared != present:
        missing = len(declared - present)
        extra = len(present - declared)
        raise EnvelopeRefused(
            Reason.ATTACHMENT_NOT_IN_MANIFEST,
            f"{missing} declared attachment(s) absent, {extra} attachment(s) not declared",
        )
    out: list[Attachment] = []
    for a, content_id in zip(elements, present_ids, strict=True):
        cte = a.child("ContentTransferEncoded")
        text = _text_of(cte)
        encoded_text: str | bytes
        if text.isascii():  # O(1); the bytes' C translate is ~7x faster than str's
            encoded_text = text.encode("ascii")
            # translate copies the whole text (1.07 ms for a 1 MB attachment); four memchr
            # scans (0.09 ms) find whether there is whitespace to drop at all (none where the
            # sender wrote the base64 on one line, as hub.edxml.build does).
            if (b"\n" in encoded_text or b" " in encoded_text or b"\r" in encoded_text
                    or b"\t" in encoded_text):
                encoded_text = encoded_text.translate(None, _B64_WHITESPACE_BYTES)
        else:  # decoding refuses it below, after the size check, as always
            encoded_text = text.translate(_B64_WHITESPACE)
        # Cheap bound before decoding: base64 carries 3 bytes per 4 characters.
        if len(encoded_text) // 4 * 3 > limits.max_attachment_bytes + 2:
            raise EnvelopeRefused(
                Reason.ATTACHMENT_TOO_LARGE,
                f"line {a.el.sourceline}: over {limits.max_attachment_bytes} bytes",
            )
        try:
            data = strict_b64decode(encoded_text)
        except (binascii.Error, ValueError):
            raise EnvelopeRefused(
                Reason.ATTACHMENT_ENCODING_INVALID, f"line {a.el.sourceline}: not base64"
            ) from None
        if len(data) > limits.max_attachment_bytes:
            raise EnvelopeRefused(
                Reason.ATTACHMENT_TOO_LARGE,
                f"line {a.el.sourceline}: {len(data)} bytes > {limits.max_attachment_bytes}",
            )
        out.append(
            Attachment(
                content_id=content_id,
                attachment_name=a.text("AttachmentName"),
                content_type=a.token("ContentType"),
                description=a.text("Description"),
                data=data,
            )
        )
    if len(out) > 1:
        # Keep the manifest's order: it is the order the sender declared.
        order = {content_id: i for i, content_id in enumerate(declared_ids)}
        out.sort(key=lambda att: order[att.content_id])
    return tuple(out)


def _status(st_el: _El, raw: bytes, signatures: int) -> StatusPacket:
    st = _Fields(st_el)
    code = st.token("StatusCode")
    if not _STATUS_CODE.fullmatch(code):
        raise EnvelopeRefused(
            Reason.STATUS_CODE_INVALID, f"line {st_el.sourceline}: status code is not two digits"
        )
    rf_el = st.kids("ResponseFor")[0]
    return StatusPacket(
        response_for=_response_for(rf_el),
        sender=_organization(st.kids("From")[0]),
        status_code=code,
        description=st.text("Description"),
        timestamp=_timestamp(st, "Timestamp"),
        staff_info=_staff(st.child("StaffInfo")),
        raw=raw,
        signature_count=signatures,
    )


_IDENTIFIERS = frozenset({
    "DocumentId", "CodeNumber", "CodeNotation", "Code", "OrganId", "ContentId", "StatusCode"})
"""Leaf elements bounded by ``Limits.max_identifier_chars`` (measured trimmed, as stored)."""


def _field_limit(name: str, limits: Limits) -> int:
    if name in _IDENTIFIERS:
        return limits.max_identifier_chars
    return limits.max_content_chars if name == "Content" else limits.max_text_chars


_LONG_TEXTS = etree.XPath("descendant-or-self::text()[string-length() > $shortest]")
"""Text nodes longer than the smallest limit, found in C (a Python walk reading every leaf's
text cost ~50 µs per packet; this ~20 µs)."""
_NOT_FIELDS = frozenset({f"{{{NS}}}ContentTransferEncoded", f"{{{NS}}}BussinessDocumentInfo"})
"""Not free text: the attachment's base64 (bounded by the attachment limit), and an opaque
element the hub never reads."""


def _check_field_lengths(parts: list[_El], attachments: list[_El], limits: Limits) -> None:
    """Every field under ``parts`` and every metadata field of ``attachments`` within its
    limit, or FIELD_TOO_LONG naming the field. Fields are leaf elements (the schema allows no
    mixed content where the hub reads)."""
    shortest = min(limits.max_identifier_chars, limits.max_text_chars, limits.max_content_chars)
    candidates: list[_El] = []
    for part in parts:
        texts: Any = _LONG_TEXTS(part, shortest=shortest)
        candidates.extend(t.getparent() for t in texts if t.is_text)
    for attachment in attachments:
        candidates.extend(c for c in attachment if c.tag not in _NOT_FIELDS)
    for el in candidates:
        text = el.text or ""
        if len(text) <= shortest or len(el) or el.tag in _NOT_FIELDS or any(
            a.tag in _NOT_FIELDS for a in el.iterancestors()
        ):
            continue
        name = _local(el)
        limit = _field_limit(name, limits)
        size = len(text.strip()) if name in _IDENTIFIERS else len(text)
        if size > limit:
            raise EnvelopeRefused(
                Reason.FIELD_TOO_LONG,
                f"line {el.sourceline}: {name} has {size} characters (at most {limit})")


def _check_code_length(code: Code, el: _El, limits: Limits) -> None:
    # The ledger stores "number/notation" in the same bounded column as each part would need.
    if len(code.text) > limits.max_identifier_chars:
        raise EnvelopeRefused(
            Reason.FIELD_TOO_LONG,
            f"line {el.sourceline}: Code (number/notation) has {len(code.text)} characters "
            f"(at most {limits.max_identifier_chars})")


def _validate(root: _El) -> None:
    if root.tag != f"{{{NS}}}edXML":
        raise EnvelopeRefused(
            Reason.ENVELOPE_NOT_EDXML,
            f"root element {etree.QName(root).localname!r} in namespace "
            f"{etree.QName(root).namespace!r}",
        )
    validator = schema()
    if not validator.validate(root):
        log: Any = validator.error_log  # lxml-stubs declare _ErrorLog without its methods
        first = log[0]
        raise EnvelopeRefused(Reason.ENVELOPE_SCHEMA_INVALID, f"line {first.line}: {first.message}")


def _parse_packet(data: bytes, limits: Limits) -> Envelope | StatusPacket:
    root = parse_xml(data, limits)
    _validate(root)
    raw = bytes(data)
    signatures = sum(1 for _ in root.iter(f"{{{DS_NS}}}Signature"))
    # One pass over the children of each level (each _kids call was another one).
    top = _Fields(root)
    envelope = _Fields(top.kids("edXMLEnvelope")[0])
    header = _Fields(envelope.kids("edXMLHeader")[0])
    _check_field_lengths(
        [*header.kids("MessageHeader"), *header.kids("Status"),
         *header.kids("TraceHeaderList"), *envelope.kids("edXMLBody")],
        [a for e in top.kids("AttachmentEncoded") for a in _kids(e, "Attachment")], limits)
    status_el = header.child("Status")
    packet: Envelope | StatusPacket
    if status_el is not None:
        packet = _status(status_el, raw, signatures)
    else:
        message_header = _message_header(header.kids("MessageHeader")[0], limits)
        trace_el = header.child("TraceHeaderList")
        manifest = _manifest(envelope.kids("edXMLBody")[0])
        packet = Envelope(
            header=message_header,
            trace=None if trace_el is None else _trace(trace_el),
            manifest=manifest,
            attachments=_attachments(top.child("AttachmentEncoded"), manifest, limits),
            raw=raw,
            signature_count=signatures,
        )
    object.__setattr__(packet, "tree", root)  # only the parser attaches its tree
    return packet


def _guard(call: Callable[[], T]) -> T:
    """The one place that maps unexpected exceptions: nothing but EnvelopeRefused escapes."""
    try:
        return call()
    except EnvelopeRefused:
        raise
    except etree.LxmlError as exc:
        raise EnvelopeRefused(
            Reason.ENVELOPE_MALFORMED, f"XML error: {type(exc).__name__}"
        ) from None
    except (ValueError, KeyError, IndexError, TypeError, OverflowError, RecursionError) as exc:
        raise EnvelopeRefused(
            Reason.ENVELOPE_MALFORMED, f"unexpected content: {type(exc).__name__}"
        ) from None


def parse_packet(data: bytes, limits: Limits | None = None) -> Envelope | StatusPacket:
    """Parse a document or status packet; raise :class:`EnvelopeRefused` when refused."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_packet expects bytes")
    effective = limits or Limits()
    return _guard(lambda: _parse_packet(bytes(data), effective))


def parse_envelope(data: bytes, limits: Limits | None = None) -> Envelope:
    """Parse a document packet; a status packet is refused (ENVELOPE_SCHEMA_INVALID)."""
    packet = parse_packet(data, limits)
    if not isinstance(packet, Envelope):
        raise EnvelopeRefused(Reason.ENVELOPE_SCHEMA_INVALID, "expected a document, got a status")
    return packet


def parse_status(data: bytes, limits: Limits | None = None) -> StatusPacket:
    """Parse a status packet; a document packet is refused (ENVELOPE_SCHEMA_INVALID)."""
    packet = parse_packet(data, limits)
    if not isinstance(packet, StatusPacket):
        raise EnvelopeRefused(Reason.ENVELOPE_SCHEMA_INVALID, "expected a status, got a document")
    return packet
