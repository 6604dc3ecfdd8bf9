"""Build EDXML packets (documents and status packets) as UTF-8 bytes.

The output follows the layout of the official SDK sample ``edoc_new.edxml``: an ``<edXML>`` root
with the QCVN namespace as default namespace, ``edXML:edXMLEnvelope`` redeclaring the ``edXML``
prefix, the message header in the documented order (QCVN 102 items 1.1–1.14), the manifest
generated from the attachments, and the attachments in ``AttachmentEncoded`` outside the envelope.

With ``signature_placeholder=True`` the header carries signxml's enveloped signature placeholder
``<ds:Signature Id="placeholder"/>``: the signer (:func:`hub.trust.signing.sign_xml`, or
``signxml.XMLSigner(method=enveloped)``) replaces it with the real signature in that position and
excises it when computing the digest, so the signature (Reference URI="") covers the whole
document, attachments included. Where the placeholder goes is :class:`SignaturePlacement`: by
default inside ``edXML:DigitalSignature``, the last child of ``edXMLHeader`` — the slot QCVN
102:2016 names and stock tools (xmlsec1 with the SDK templates) fill; or, on request, directly as
the last child of ``edXMLHeader`` (what the hub emitted before; still accepted by the validators).

The builder creates elements; it never parses (the only parser is :mod:`hub.edxml._xml`).
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from lxml import etree

from hub.edxml.model import (
    DS_NS,
    NS,
    VIETNAM_TZ,
    XLINK_NS,
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
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    TraceHeader,
    TraceHeaderList,
)
from hub.edxml.orgcode import DocumentId, format_date

TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
TRACE_ACTOR = "http://schemas.xmlsoap.org/soap/actor/next"


def format_timestamp(value: datetime) -> str:
    """``yyyy/MM/dd HH:mm:ss`` in Vietnam time (a naive value is taken as Vietnam time)."""
    if value.tzinfo is not None:
        value = value.astimezone(VIETNAM_TZ)
    return value.strftime(TIMESTAMP_FORMAT)


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _q(name))
    if text is not None and text != "":
        el.text = text
    return el


def _organization(parent: etree._Element, name: str, org: Organization) -> None:
    el = _sub(parent, name)
    _sub(el, "OrganId", org.organ_id)
    _sub(el, "OrganizationInCharge", org.organization_in_charge)
    _sub(el, "OrganName", org.organ_name)
    _sub(el, "OrganAdd", org.organ_add)
    _sub(el, "Email", org.email)
    _sub(el, "Telephone", org.telephone)
    _sub(el, "Fax", org.fax)
    _sub(el, "Website", org.website)


def _response_for(parent: etree._Element, rf: ResponseFor) -> None:
    el = _sub(parent, "ResponseFor")
    _sub(el, "OrganId", rf.organ_id)
    _sub(el, "Code", rf.code)
    _sub(el, "PromulgationDate", format_date(rf.promulgation_date))
    _sub(el, "DocumentId", rf.document_id)


def _staff(parent: etree._Element, staff: StaffInfo) -> None:
    el = _sub(parent, "StaffInfo")
    _sub(el, "Department", staff.department)
    _sub(el, "Staff", staff.staff)
    _sub(el, "Mobile", staff.mobile)
    _sub(el, "Email", staff.email)


def _optional_int(value: int | None) -> str | None:
    return None if value is None else str(value)


def _message_header(parent: etree._Element, h: MessageHeader) -> None:
    mh = _sub(parent, "MessageHeader")
    _organization(mh, "From", h.sender)  # 1.1
    for recipient in h.recipients:  # 1.2
        _organization(mh, "To", recipient)
    code = _sub(mh, "Code")  # 1.3
    _sub(code, "CodeNumber", h.code.code_number)
    _sub(code, "CodeNotation", h.code.code_notation)
    pi = _sub(mh, "PromulgationInfo")  # 1.4
    _sub(pi, "Place", h.promulgation_info.place)
    _sub(pi, "PromulgationDate", format_date(h.promulgation_info.promulgation_date))
    dt = _sub(mh, "DocumentType")  # 1.5
    _sub(dt, "Type", str(h.document_type.type))
    _sub(dt, "TypeName", h.document_type.type_name)
    if h.document_type.type_detail is not None:
        _sub(dt, "TypeDetail", h.document_type.type_detail)
    _sub(mh, "Subject", h.subject)  # 1.6
    _sub(mh, "Content", h.content)  # 1.7
    if h.signer_info is not None:  # 1.8
        si = _sub(mh, "SignerInfo")
        _sub(si, "Competence", h.signer_info.competence)
        _sub(si, "Position", h.signer_info.position)
        _sub(si, "FullName", h.signer_info.full_name)
    if h.due_date is not None:  # 1.9
        _sub(mh, "DueDate", format_date(h.due_date))
    places = _sub(mh, "ToPlaces")  # 1.10
    for place in h.to_places:
        _sub(places, "Place", place)
    oi = _sub(mh, "OtherInfo")  # 1.11
    other = h.other_info
    _sub(oi, "Priority", str(other.priority))
    _sub(oi, "SphereOfPromulgation", other.sphere_of_promulgation)
    _sub(oi, "TyperNotation", other.typer_notation)
    _sub(oi, "PromulgationAmount", _optional_int(other.promulgation_amount))
    _sub(oi, "PageAmount", _optional_int(other.page_amount))
    appendixes = _sub(oi, "Appendixes")
    for appendix in other.appendixes:
        _sub(appendixes, "Appendix", appendix)
    if other.security_level is not None:  # hub extension (Decision 28/2018 scope)
        _sub(oi, "SecurityLevel", other.security_level)
    for rf in h.response_for:  # 1.12
        _response_for(mh, rf)
    _sub(mh, "SteeringType", str(h.steering_type))  # 1.13
    _sub(mh, "DocumentId", h.document_id)  # 1.14


def _trace(parent: etree._Element, trace: TraceHeaderList, document_id: str) -> None:
    tl = _sub(parent, "TraceHeaderList")
    # Deterministic id: the same header always builds the same bytes.
    tl.set("id", uuid.uuid5(uuid.NAMESPACE_URL, document_id).hex)
    tl.set("version", "1.0")
    tl.set("mustUnderstand", "1")
    tl.set("actor", TRACE_ACTOR)
    for hop in trace.trace_headers:
        th = _sub(tl, "TraceHeader")
        _sub(th, "OrganId", hop.organ_id)
        _sub(th, "Timestamp", format_timestamp(hop.timestamp))
    b = trace.business
    if b is not None:
        be = _sub(tl, "Bussiness")
        _sub(be, "BussinessDocType", str(int(b.doc_type)))
        _sub(be, "BussinessDocReason", b.reason)
        if b.document_id is not None:
            _sub(be, "DocumentId", b.document_id)
        if b.staff_info is not None:
            _staff(be, b.staff_info)
        _sub(be, "Paper", str(b.paper))
        if b.replacements:
            rl = _sub(be, "ReplacementInfoList")
            for r in b.replacements:
                ri = _sub(rl, "ReplacementInfo")
                _sub(ri, "DocumentId", r.document_id)
                ol = _sub(ri, "OrganIdList")
                for organ in r.organ_ids:
                    _sub(ol, "OrganId", organ)


class SignaturePlacement(enum.StrEnum):
    """Where the envelope-level ``ds:Signature`` goes in ``edXMLHeader`` (the two placements
    :mod:`hub.validators.xmldsig` accepts; exactly one signature in all)."""

    SLOT = "slot"
    """Inside ``edXML:DigitalSignature``, itself the last child of ``edXMLHeader``: the slot QCVN
    102:2016 names (SDK sample ``edoc_new.edxml``). The default."""
    HEADER_END = "header-end"
    """Directly the last child of ``edXMLHeader`` (some tools; the hub's earlier output)."""


def _placeholder(parent: etree._Element, placement: SignaturePlacement) -> None:
    # signxml 5.x looks for exactly one ds:Signature[@Id='placeholder'] and fills it in place;
    # so does hub.trust.signing.sign_tree.
    if SignaturePlacement(placement) is SignaturePlacement.SLOT:
        parent = _sub(parent, "DigitalSignature")
    etree.SubElement(parent, f"{{{DS_NS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DS_NS})


def _skeleton() -> tuple[etree._Element, etree._Element, etree._Element]:
    default_ns: Any = {None: NS}  # lxml-stubs do not allow the None (default) prefix
    root = etree.Element(_q("edXML"), nsmap=default_ns)
    envelope = etree.SubElement(root, _q("edXMLEnvelope"), nsmap={"edXML": NS})
    header = etree.SubElement(envelope, _q("edXMLHeader"))
    return root, envelope, header


def _serialize(root: etree._Element) -> bytes:
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
    return XML_DECLARATION + body


def build_envelope(
    header: MessageHeader,
    *,
    trace: TraceHeaderList | None = None,
    attachments: Sequence[Attachment] = (),
    signature_placeholder: bool = True,
    signature_placement: SignaturePlacement = SignaturePlacement.SLOT,
) -> bytes:
    """Serialize a document packet; the manifest is generated from ``attachments``."""
    root, envelope, xheader = _skeleton()
    _message_header(xheader, header)
    if trace is not None:
        _trace(xheader, trace, header.document_id)
    if signature_placeholder:
        _placeholder(xheader, signature_placement)
    body = etree.SubElement(envelope, _q("edXMLBody"))
    manifest = etree.SubElement(body, _q("edXMLManifest"), {"version": "1.0"})
    for att in attachments:
        ref = etree.SubElement(
            manifest,
            _q("Reference"),
            {
                f"{{{XLINK_NS}}}href": f"cid:{att.content_id}",
                f"{{{XLINK_NS}}}role": "XLinkRole",
                f"{{{XLINK_NS}}}type": "simple",
            },
            nsmap={"xlink": XLINK_NS},
        )
        _sub(ref, "Description", att.description)
        _sub(ref, "AttachmentName", att.attachment_name)
        _sub(ref, "ContentType", att.content_type)
        _sub(ref, "ContentId", f"cid:{att.content_id}")
    if attachments:
        encoded = etree.SubElement(root, _q("AttachmentEncoded"))
        for att in attachments:
            a = _sub(encoded, "Attachment")
            _sub(a, "ContentType", att.content_type)
            _sub(a, "ContentId", att.content_id)
            _sub(a, "Description", att.description)
            cte = _sub(a, "ContentTransferEncoded")
            cte.text = base64.b64encode(att.data).decode("ascii")
            _sub(a, "AttachmentName", att.attachment_name)
    return _serialize(root)


def build_status(
    *,
    response_for: ResponseFor,
    sender: Organization,
    status_code: StatusCode | str,
    timestamp: datetime,
    description: str = "",
    staff_info: StaffInfo | None = None,
    signature_placeholder: bool = True,
    signature_placement: SignaturePlacement = SignaturePlacement.SLOT,
) -> bytes:
    """Serialize a status packet: ``edXML:Status`` in ``edXMLHeader`` and an empty body."""
    return _serialize(build_status_tree(
        response_for=response_for, sender=sender, status_code=status_code, timestamp=timestamp,
        description=description, staff_info=staff_info,
        signature_placeholder=signature_placeholder, signature_placement=signature_placement))


def build_status_tree(
    *,
    response_for: ResponseFor,
    sender: Organization,
    status_code: StatusCode | str,
    timestamp: datetime,
    description: str = "",
    staff_info: StaffInfo | None = None,
    signature_placeholder: bool = True,
    signature_placement: SignaturePlacement = SignaturePlacement.SLOT,
) -> etree._Element:
    """The tree :func:`build_status` serializes, already indented the way it is written.

    For the hub's receipts, which add their evidence and are signed in memory: no
    serialize-and-parse round trip (``tests/unit/test_receipts.py`` proves the bytes equal).
    """
    root, envelope, xheader = _skeleton()
    st = _sub(xheader, "Status")
    _response_for(st, response_for)
    _organization(st, "From", sender)
    _sub(st, "StatusCode", str(status_code))
    _sub(st, "Description", description)
    _sub(st, "Timestamp", format_timestamp(timestamp))
    if staff_info is not None:
        _staff(st, staff_info)
    if signature_placeholder:
        _placeholder(xheader, signature_placement)
    etree.SubElement(envelope, _q("edXMLBody"))
    # What pretty_print does when writing (libxml2 leaves elements with text children alone,
    # so serializing the indented tree with pretty_print gives the same bytes).
    etree.indent(root, space="  ")
    return root


# -- conveniences for tests, vectors and the demo ------------------------------------------------


def response_for(document: Envelope | MessageHeader) -> ResponseFor:
    """The ``ResponseFor`` that answers ``document`` (for replies and status packets)."""
    h = document.header if isinstance(document, Envelope) else document
    return ResponseFor(
        organ_id=h.sender.organ_id,
        code=h.code.text,
        promulgation_date=h.promulgation_info.promulgation_date,
        document_id=h.document_id,
    )


DOCUMENT_TYPES: dict[str, DocumentType] = {
    "cong_van": DocumentType(18, "Công văn"),
    "quyet_dinh": DocumentType(2, "Quyết định"),
    "to_trinh": DocumentType(22, "Tờ trình"),
    "bao_cao": DocumentType(23, "Báo cáo"),
    "thong_bao": DocumentType(11, "Thông báo"),
}
"""Document types the demo uses. Numbers follow the .NET SDK sample (18 = công văn); the others
are illustrative — QCVN 102 does not fix one list and the hub does not check it."""


def _org(value: Organization | str) -> Organization:
    return value if isinstance(value, Organization) else Organization(organ_id=value)


def sample_header(
    sender: Organization | str,
    recipients: Organization | str | Iterable[Organization | str],
    *,
    number: str = "123",
    notation: str = "UBND-VP",
    subject: str = "V/v triển khai chữ ký số chuyên dùng",
    promulgation_date: date = date(2026, 11, 20),
    kind: str = "cong_van",
    place: str = "Hà Tĩnh",
    security_level: str | None = None,
    response_to: Sequence[ResponseFor] = (),
    due_date: date | None = None,
) -> MessageHeader:
    """A realistic, consistent header (DocumentId derived from sender, date, number, notation)."""
    if isinstance(recipients, Organization | str):
        recipients = [recipients]
    sender_org = _org(sender)
    return MessageHeader(
        sender=sender_org,
        recipients=tuple(_org(r) for r in recipients),
        code=Code(number, notation),
        promulgation_info=PromulgationInfo(place, promulgation_date),
        document_type=DOCUMENT_TYPES[kind],
        subject=subject,
        document_id=str(DocumentId(sender_org.organ_id, promulgation_date, number, notation)),
        content="",
        signer_info=SignerInfo("TM. Ủy ban nhân dân", "Chủ tịch", "Nguyễn Văn A"),
        due_date=due_date,
        to_places=("Như trên", "Lưu: VT"),
        other_info=OtherInfo(
            priority=0,
            sphere_of_promulgation="Liên thông văn bản",
            typer_notation="NVA",
            promulgation_amount=1,
            page_amount=1,
            security_level=security_level,
        ),
        response_for=tuple(response_to),
        steering_type=0,
    )


def sample_trace(
    sender: str,
    at: datetime,
    *,
    kind: BusinessDocType = BusinessDocType.NEW,
    reason: str = "Văn bản điện tử mới",
    replaced_document_id: str | None = None,
) -> TraceHeaderList:
    """The sender's own trace list: one hop and its ``Bussiness`` block."""
    return TraceHeaderList(
        trace_headers=(TraceHeader(sender, at),),
        business=Business(
            doc_type=kind,
            reason=reason,
            document_id=replaced_document_id,
            staff_info=StaffInfo("Văn thư", "Trần Thị B", "", ""),
            paper=0,
        ),
    )


def sample_attachment(
    data: bytes = b"%PDF-1.7\n% hub sample\n%%EOF\n",
    *,
    name: str = "van-ban.pdf",
    content_id: str | None = None,
    description: str = "Văn bản chính",
) -> Attachment:
    """An attachment with a fresh content id (a UUID, as the SDK uses)."""
    return Attachment(
        content_id=content_id or str(uuid.uuid4()),
        attachment_name=name,
        content_type="application/pdf",
        description=description,
        data=data,
    )
