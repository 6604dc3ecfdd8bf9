"""Building and parsing EDXML packets: round trips, leniency on input, strictness on values."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lxml import etree

from hub.edxml import (
    DS_NS,
    NS,
    VIETNAM_TZ,
    BusinessDocType,
    Envelope,
    EnvelopeRefused,
    Organization,
    ResponseFor,
    SignaturePlacement,
    StaffInfo,
    StatusCode,
    StatusPacket,
    build_envelope,
    build_status,
    parse_envelope,
    parse_packet,
    parse_status,
    parse_xml,
    response_for,
    sample_attachment,
    sample_header,
    sample_trace,
)
from hub.edxml._xml import Limits
from hub.edxml.build import DOCUMENT_TYPES
from hub.reasons import Reason

ROOT = Path(__file__).resolve().parents[3]
AT = datetime(2026, 11, 20, 9, 15, 2, tzinfo=VIETNAM_TZ)
SENDER = Organization(
    "000.00.02.H27", "Sở Nội vụ tỉnh Hà Tĩnh", "Ủy ban nhân dân tỉnh Hà Tĩnh", "Số 1 Nguyễn Du"
)
RECIPIENTS = (
    Organization("000.00.00.H27", "Ủy ban nhân dân tỉnh Hà Tĩnh"),
    Organization("H27.01", "Văn phòng Ủy ban nhân dân tỉnh Hà Tĩnh"),
)


def _header_el(data: bytes) -> etree._Element:
    root = parse_xml(data, Limits())
    found = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert found is not None
    return found


def test_the_packaged_schema_is_identical_to_the_source_schema() -> None:
    source = (ROOT / "schemas" / "edxml-qcvn102-2016.xsd").read_bytes()
    packaged = (ROOT / "hub" / "edxml" / "schemas" / "edxml-qcvn102-2016.xsd").read_bytes()
    assert packaged == source


@pytest.mark.parametrize("kind", sorted(DOCUMENT_TYPES))
def test_every_demo_document_type_round_trips(kind: str) -> None:
    header = sample_header(SENDER, RECIPIENTS, kind=kind, subject="Về việc kiểm thử — Hà Tĩnh")
    trace = sample_trace(SENDER.organ_id, AT)
    attachments = (
        sample_attachment(b"%PDF-1.7 main", content_id="a1"),
        sample_attachment(b"phu luc", name="phu-luc.docx", content_id="a2"),
    )
    data = build_envelope(header, trace=trace, attachments=attachments)

    envelope = parse_envelope(data)

    assert envelope.header == header
    assert envelope.trace == trace
    assert envelope.attachments == attachments
    assert envelope.manifest == tuple(a.reference for a in attachments)
    assert envelope.raw == data
    assert envelope.sender == SENDER
    assert envelope.recipients == RECIPIENTS
    assert envelope.document_id == "000.00.02.H27,2026/11/20,123/UBND-VP"
    assert envelope.business_kind is BusinessDocType.NEW
    assert not envelope.is_classified
    assert envelope.signature_count == 1


def test_building_is_deterministic_and_utf8_with_a_declaration() -> None:
    header = sample_header(SENDER, RECIPIENTS, subject="Tiếng Việt: ắ ằ ẳ ẵ ặ đ Ư")
    first = build_envelope(header, trace=sample_trace(SENDER.organ_id, AT))
    assert first == build_envelope(header, trace=sample_trace(SENDER.organ_id, AT))
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "Tiếng Việt: ắ ằ ẳ ẵ ặ đ Ư".encode() in first


def test_the_digest_is_the_sha256_of_the_exact_bytes() -> None:
    import hashlib

    data = build_envelope(sample_header(SENDER, RECIPIENTS))
    assert parse_envelope(data).digest == hashlib.sha256(data).hexdigest()


def test_a_parsed_packet_carries_the_tree_of_exactly_its_bytes() -> None:
    data = build_envelope(sample_header(SENDER, RECIPIENTS))
    envelope = parse_envelope(data)
    assert envelope.tree is not None
    assert etree.tostring(envelope.tree) == etree.tostring(parse_xml(data, Limits()))
    status = parse_status(build_status(
        response_for=response_for(envelope), sender=RECIPIENTS[0], status_code=StatusCode.ARRIVED,
        timestamp=AT))
    assert status.tree is not None


def test_a_copy_with_other_bytes_never_carries_the_original_tree() -> None:
    envelope = parse_envelope(build_envelope(sample_header(SENDER, RECIPIENTS)))
    other = build_envelope(sample_header(SENDER, RECIPIENTS, subject="Khác"))
    copy = dataclasses.replace(envelope, raw=other)
    # The validators then parse the copy's own bytes (the signature vectors rely on it).
    assert copy.tree is None
    assert copy.digest != envelope.digest


def test_a_repr_never_shows_document_bodies() -> None:
    data = build_envelope(
        sample_header(SENDER, RECIPIENTS), attachments=[sample_attachment(b"SECRET-BODY")]
    )
    text = repr(parse_envelope(data))
    assert "SECRET-BODY" not in text
    assert "raw=" not in text


def test_the_placeholder_goes_in_the_qcvn_digital_signature_slot_by_default() -> None:
    data = build_envelope(sample_header(SENDER, RECIPIENTS), trace=sample_trace("H27.01", AT))
    slot = _header_el(data)[-1]
    assert slot.tag == f"{{{NS}}}DigitalSignature"
    assert [child.tag for child in slot] == [f"{{{DS_NS}}}Signature"]
    assert slot[0].get("Id") == "placeholder"
    status = build_status(response_for=response_for(sample_header(SENDER, RECIPIENTS)),
                          sender=SENDER, status_code="01", timestamp=AT)
    assert _header_el(status)[-1].tag == f"{{{NS}}}DigitalSignature"


@pytest.mark.parametrize("build", ["envelope", "status"])
def test_the_placeholder_is_the_last_child_of_the_header_on_request(build: str) -> None:
    if build == "envelope":
        data = build_envelope(sample_header(SENDER, RECIPIENTS), trace=sample_trace("H27.01", AT),
                              signature_placement=SignaturePlacement.HEADER_END)
    else:
        data = build_status(response_for=response_for(sample_header(SENDER, RECIPIENTS)),
                            sender=SENDER, status_code="01", timestamp=AT,
                            signature_placement=SignaturePlacement.HEADER_END)
    last = _header_el(data)[-1]
    assert last.tag == f"{{{DS_NS}}}Signature"
    assert last.get("Id") == "placeholder"


def test_an_envelope_without_placeholder_carries_no_signature() -> None:
    no_placeholder = build_envelope(sample_header(SENDER, RECIPIENTS), signature_placeholder=False)
    assert parse_envelope(no_placeholder).signature_count == 0


def test_message_header_children_are_accepted_in_any_order() -> None:
    data = build_envelope(sample_header(SENDER, RECIPIENTS))
    root = parse_xml(data, Limits())
    mh = root.find(f".//{{{NS}}}MessageHeader")
    assert mh is not None
    document_id = mh.find(f"{{{NS}}}DocumentId")
    assert document_id is not None
    mh.remove(document_id)
    mh.insert(1, document_id)  # right after From, as some integrators do
    shuffled = etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    assert parse_envelope(shuffled).header == parse_envelope(data).header


def test_a_missing_recipient_is_a_schema_error_with_the_line() -> None:
    data = build_envelope(sample_header(SENDER, RECIPIENTS))
    root = parse_xml(data, Limits())
    mh = root.find(f".//{{{NS}}}MessageHeader")
    assert mh is not None
    for to in mh.findall(f"{{{NS}}}To"):
        mh.remove(to)
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(etree.tostring(root))
    assert caught.value.reason is Reason.ENVELOPE_SCHEMA_INVALID
    assert caught.value.detail.startswith("line ")
    assert "To" in caught.value.detail


def test_a_schema_error_names_the_first_offending_line() -> None:
    data = build_envelope(sample_header(SENDER, RECIPIENTS)).replace(
        b"<edXML:Subject>", b"<edXML:Unknown/><edXML:Subject>"
    )
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data)
    assert caught.value.reason is Reason.ENVELOPE_SCHEMA_INVALID
    line = data[: data.index(b"<edXML:Unknown/>")].count(b"\n") + 1
    assert caught.value.detail.startswith(f"line {line}:")


def test_a_document_id_naming_another_sender_is_refused() -> None:
    header = dataclasses.replace(
        sample_header(SENDER, RECIPIENTS), document_id="000.00.03.H27,2026/11/20,123/UBND-VP"
    )
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(build_envelope(header))
    assert caught.value.reason is Reason.DOCUMENT_ID_INVALID


def test_a_classified_document_is_recognised() -> None:
    for level, classified in [
        ("Mật", True),
        ("Tối mật", True),
        ("TUYỆT MẬT", True),
        ("Thường", False),
    ]:
        header = sample_header(SENDER, RECIPIENTS, security_level=level)
        envelope = parse_envelope(build_envelope(header))
        assert envelope.header.other_info.security_level == level
        assert envelope.is_classified is classified


@pytest.mark.parametrize("kind", list(BusinessDocType))
def test_the_business_kind_comes_from_the_trace_list(kind: BusinessDocType) -> None:
    trace = sample_trace(
        SENDER.organ_id, AT, kind=kind, replaced_document_id="H27.01,2026/11/01,9/VP"
    )
    envelope = parse_envelope(build_envelope(sample_header(SENDER, RECIPIENTS), trace=trace))
    assert envelope.business_kind is kind


def test_without_a_trace_list_the_business_kind_is_new() -> None:
    envelope = parse_envelope(build_envelope(sample_header(SENDER, RECIPIENTS)))
    assert envelope.trace is None
    assert envelope.business_kind is BusinessDocType.NEW


def test_a_reply_carries_response_for_the_original() -> None:
    original = parse_envelope(build_envelope(sample_header(SENDER, RECIPIENTS)))
    reply_header = sample_header(
        RECIPIENTS[0], SENDER, number="45", notation="UBND-NC", response_to=[response_for(original)]
    )
    reply = parse_envelope(build_envelope(reply_header))
    assert reply.header.response_for == (
        ResponseFor("000.00.02.H27", "123/UBND-VP", date(2026, 11, 20), original.document_id),
    )


@pytest.mark.parametrize("code", list(StatusCode))
def test_every_status_code_round_trips(code: StatusCode) -> None:
    original = parse_envelope(build_envelope(sample_header(SENDER, RECIPIENTS)))
    staff = StaffInfo("Văn phòng", "Lê Văn Cường", "0912345678", "vt@hatinh.gov.vn")
    data = build_status(
        response_for=response_for(original),
        sender=RECIPIENTS[0],
        status_code=code,
        timestamp=AT,
        description=code.vi,
        staff_info=staff,
    )

    status = parse_status(data)

    assert status.code is code
    assert status.status_code == code.value
    assert status.sender == RECIPIENTS[0]
    assert status.response_for.document_id == original.document_id
    assert status.document_id == original.document_id
    assert status.description == code.vi
    assert status.timestamp == AT
    assert status.staff_info == staff
    assert status.signature_count == 1
    assert _header_el(data)[-1][0].tag == f"{{{DS_NS}}}Signature"  # in edXML:DigitalSignature


def test_a_reserved_status_code_is_passed_through_as_text() -> None:
    rf = response_for(sample_header(SENDER, RECIPIENTS))
    status = parse_status(
        build_status(response_for=rf, sender=RECIPIENTS[0], status_code="09", timestamp=AT)
    )
    assert status.status_code == "09"
    assert status.code is None


def test_a_status_timestamp_in_utc_is_written_in_vietnam_time() -> None:
    rf = response_for(sample_header(SENDER, RECIPIENTS))
    data = build_status(
        response_for=rf,
        sender=RECIPIENTS[0],
        status_code=StatusCode.ARRIVED,
        timestamp=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
    )
    assert b"2026/11/20 09:00:00" in data
    assert parse_status(data).timestamp == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_the_day_first_timestamp_some_senders_write_is_read() -> None:
    rf = response_for(sample_header(SENDER, RECIPIENTS))
    data = build_status(response_for=rf, sender=RECIPIENTS[0], status_code="03", timestamp=AT)
    data = data.replace(b"2026/11/20 09:15:02", b"20/11/2026 09:15:02")
    assert parse_status(data).timestamp == AT


def test_parse_envelope_and_parse_status_refuse_the_other_kind() -> None:
    doc = build_envelope(sample_header(SENDER, RECIPIENTS))
    status = build_status(
        response_for=response_for(sample_header(SENDER, RECIPIENTS)),
        sender=RECIPIENTS[0],
        status_code="01",
        timestamp=AT,
    )
    assert isinstance(parse_packet(doc), Envelope)
    assert isinstance(parse_packet(status), StatusPacket)
    with pytest.raises(EnvelopeRefused):
        parse_status(doc)
    with pytest.raises(EnvelopeRefused):
        parse_envelope(status)


def test_an_attachment_over_the_limit_is_refused() -> None:
    data = build_envelope(
        sample_header(SENDER, RECIPIENTS), attachments=[sample_attachment(b"x" * 1000)]
    )
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data, Limits(max_attachment_bytes=999))
    assert caught.value.reason is Reason.ATTACHMENT_TOO_LARGE
    assert (
        parse_envelope(data, Limits(max_attachment_bytes=1000)).attachments[0].data == b"x" * 1000
    )


def test_wrapped_base64_lines_are_accepted() -> None:
    payload = bytes(range(256)) * 4
    data = build_envelope(
        sample_header(SENDER, RECIPIENTS), attachments=[sample_attachment(payload, content_id="c1")]
    )
    import base64

    flat = base64.b64encode(payload)
    wrapped = b"\n".join(flat[i : i + 76] for i in range(0, len(flat), 76))
    data = data.replace(flat, wrapped)
    assert parse_envelope(data).attachments[0].data == payload


def _with_extension(data: bytes, namespace: str) -> bytes:
    element = f'<hub:HubEvidence xmlns:hub="{namespace}" version="1" kind="accepted"/>'
    slot = b"    <edXML:DigitalSignature>"
    return data.replace(slot, element.encode() + b"\n  " + slot, 1)


def test_the_hub_evidence_extension_is_allowed_before_the_signature() -> None:
    rf = response_for(sample_header(SENDER, RECIPIENTS))
    data = build_status(response_for=rf, sender=RECIPIENTS[0], status_code="01", timestamp=AT)
    extended = _with_extension(data, "urn:edxml-hub:receipt:1")
    assert extended != data
    assert parse_status(extended).status_code == "01"
    with pytest.raises(EnvelopeRefused) as caught:
        parse_status(_with_extension(data, "urn:example:other"))
    assert caught.value.reason is Reason.ENVELOPE_SCHEMA_INVALID


# -- attachments against the manifest (the parser's set-based matching, issue #23) -------------


def _two_attachments() -> bytes:
    return build_envelope(
        sample_header(SENDER, RECIPIENTS),
        attachments=[sample_attachment(b"abc", content_id="c1"),
                     sample_attachment(b"defg", content_id="c2")])


def _refused(data: bytes) -> EnvelopeRefused:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data)
    return caught.value


def test_attachments_come_in_the_order_the_manifest_declares_them() -> None:
    data = _two_attachments()
    first = data.index(b"    <Attachment>")
    second = data.index(b"    <Attachment>", first + 1)
    end = data.index(b"  </AttachmentEncoded>")
    swapped = data[:first] + data[second:end] + data[first:second] + data[end:]
    assert swapped != data
    envelope = parse_envelope(swapped)
    assert [a.content_id for a in envelope.attachments] == ["c1", "c2"]
    assert [a.data for a in envelope.attachments] == [b"abc", b"defg"]


@pytest.mark.parametrize(("edit", "detail"), [
    ((b"<ContentId>c2</ContentId>", b"<ContentId>c1</ContentId>"), "duplicate ContentId"),
    ((b"<edXML:ContentId>cid:c2<", b"<edXML:ContentId>cid:c1<"), "duplicate ContentId"),
    ((b"<ContentId>c2</ContentId>", b"<ContentId> CID:c1 </ContentId>"), "duplicate ContentId"),
    ((b"<ContentId>c2</ContentId>", b"<ContentId>c3</ContentId>"),
     "1 declared attachment(s) absent, 1 attachment(s) not declared"),
    ((b"<edXML:ContentId>cid:c2<", b"<edXML:ContentId>cid:c3<"),
     "1 declared attachment(s) absent, 1 attachment(s) not declared"),
], ids=["encoded-twice", "declared-twice", "encoded-twice-with-prefix", "encoded-other",
        "declared-other"])
def test_attachments_and_manifest_must_name_the_same_content_ids_once(
        edit: tuple[bytes, bytes], detail: str) -> None:
    data = _two_attachments()
    assert data.count(edit[0]) == 1
    refused = _refused(data.replace(*edit))
    assert (refused.reason, refused.detail) == (Reason.ATTACHMENT_NOT_IN_MANIFEST, detail)


def test_a_declared_attachment_that_is_absent_is_counted() -> None:
    data = _two_attachments()
    first = data.index(b"    <Attachment>")
    second = data.index(b"    <Attachment>", first + 1)
    refused = _refused(data[:first] + data[second:])
    assert (refused.reason, refused.detail) == (
        Reason.ATTACHMENT_NOT_IN_MANIFEST,
        "1 declared attachment(s) absent, 0 attachment(s) not declared")


@pytest.mark.parametrize("spaces", [b" ", b"\t", b"\r\n", b"\n  \t "])
def test_base64_broken_by_xml_whitespace_is_decoded(spaces: bytes) -> None:
    data = _two_attachments().replace(b">ZGVmZw==<", b">ZG" + spaces + b"VmZw" + spaces + b"==<")
    assert parse_envelope(data).attachments[1].data == b"defg"


@pytest.mark.parametrize("odd", ["\u00a0", "\u2003", "\u0131", "*", "-"])
def test_base64_with_any_other_character_is_not_base64(odd: str) -> None:
    data = _two_attachments().replace(b">ZGVmZw==<", b">ZGVm" + odd.encode() + b"Zw==<")
    refused = _refused(data)
    assert refused.reason is Reason.ATTACHMENT_ENCODING_INVALID
    assert refused.detail.endswith(": not base64")


def test_the_size_of_base64_with_foreign_characters_is_judged_before_decoding() -> None:
    data = _two_attachments().replace(b">ZGVmZw==<", ">ZGVm\u00a0Zw==<".encode())
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data, Limits(max_attachment_bytes=3))  # "abc" passes; 9 characters do not
    assert caught.value.reason is Reason.ATTACHMENT_TOO_LARGE
    assert caught.value.detail.endswith(": over 3 bytes")


@pytest.mark.parametrize("field", [
    b"edXML:OrganName", b"edXML:OrganId", b"edXML:CodeNumber", b"edXML:TypeName",
    b"edXML:Competence", b"edXML:Description", b"edXML:ContentType", b"ContentId",
    b"AttachmentName",
])
def test_a_comment_or_processing_instruction_inside_a_field_is_not_part_of_its_text(
        field: bytes) -> None:
    data = build_envelope(sample_header(SENDER, RECIPIENTS),
                          attachments=[sample_attachment(b"abc", content_id="c1")])
    start = data.index(b"<" + field + b">") + len(field) + 2
    end = data.index(b"</" + field + b">", start)
    value = data[start:end].decode()
    assert len(value) >= 2
    edited = (data[:start] + value[:1].encode() + b"<!-- x --><?pi y?>" + value[1:].encode()
              + b"<!--z-->" + data[end:])
    before, after = parse_envelope(data), parse_envelope(edited)
    assert (after.header, after.manifest, after.attachments) == (
        before.header, before.manifest, before.attachments)
