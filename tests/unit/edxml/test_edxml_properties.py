"""Property tests: codes and envelopes round-trip; no input makes the parser leak an exception."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.edxml import (
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentId,
    DocumentType,
    EnvelopeRefused,
    MessageHeader,
    Organization,
    OrgCode,
    OrgCodeFormat,
    OtherInfo,
    PromulgationInfo,
    SignerInfo,
    StaffInfo,
    TraceHeader,
    TraceHeaderList,
    build_envelope,
    parse_envelope,
    parse_packet,
    sample_attachment,
    sample_header,
    sample_trace,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

digits = st.text("0123456789", min_size=1, max_size=1)
letter = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
level1 = st.builds(lambda a, b: a + b, letter, st.text("0123456789", min_size=2, max_size=2))
legacy = st.builds(
    lambda c, b, a, x: f"{c}.{b}.{a}.{x}",
    st.text("0123456789", min_size=3, max_size=3),
    st.text("0123456789", min_size=2, max_size=2),
    st.text("0123456789", min_size=2, max_size=2),
    level1,
)
eid_group = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4)
eid = st.builds(
    lambda first, rest: ".".join([first, *rest]), level1, st.lists(eid_group, max_size=6)
).filter(lambda s: len(s) <= 35)
codes = st.one_of(legacy, eid)

# XML 1.0 characters only (no C0 controls except tab/newline, no surrogates, no non-characters).
xml_char = st.characters(exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\ra ắđƯ")
free_text = st.text(xml_char, max_size=40)
token = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cn", "Zs", "Zl", "Zp")), min_size=1, max_size=12
).filter(lambda s: s == s.strip() and "/" not in s and "," not in s)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=VIETNAM_TZ)
)


@given(codes)
@SETTINGS
def test_any_well_formed_code_parses_and_keeps_its_text(text: str) -> None:
    code = OrgCode.parse(text)
    assert str(code) == text
    assert code.level1 == (text[-3:] if code.format is OrgCodeFormat.LEGACY else text[:3])
    parent = code.parent
    if parent is None:
        assert code.depth == 1
    else:
        assert parent.depth < code.depth
        assert parent.level1 == code.level1
        assert parent.format is code.format


@given(st.text(max_size=40))
@SETTINGS
def test_any_text_either_parses_as_a_code_or_is_refused(text: str) -> None:
    try:
        OrgCode.parse(text)
    except EnvelopeRefused as exc:
        reason = exc.reason
    else:
        return
    assert reason.value == "ORGAN_ID_INVALID"


@given(codes, days, token, token)
@SETTINGS
def test_a_document_id_round_trips(organ: str, day: date, number: str, notation: str) -> None:
    doc = DocumentId(organ, day, number, notation)
    assert DocumentId.parse(str(doc)) == doc


organizations = st.builds(
    Organization,
    organ_id=codes,
    organ_name=free_text,
    organization_in_charge=free_text,
    organ_add=free_text,
    email=st.just("") | token,
    telephone=st.just("") | token,
)


@st.composite
def headers(draw: st.DrawFn) -> MessageHeader:
    sender = draw(organizations)
    day = draw(days)
    number, notation = draw(token), draw(token)
    return MessageHeader(
        sender=sender,
        recipients=tuple(draw(st.lists(organizations, min_size=1, max_size=3))),
        code=Code(number, notation),
        promulgation_info=PromulgationInfo(draw(free_text), day),
        document_type=DocumentType(
            draw(st.integers(0, 99)), draw(free_text), draw(st.none() | free_text)
        ),
        subject=draw(free_text),
        document_id=str(DocumentId(sender.organ_id, day, number, notation)),
        content=draw(free_text),
        signer_info=draw(st.none() | st.builds(SignerInfo, free_text, free_text, free_text)),
        due_date=draw(st.none() | days),
        to_places=tuple(draw(st.lists(free_text, max_size=3))),
        other_info=OtherInfo(
            priority=draw(st.integers(0, 3)),
            sphere_of_promulgation=draw(free_text),
            promulgation_amount=draw(st.none() | st.integers(0, 1000)),
            page_amount=draw(st.none() | st.integers(0, 1000)),
            appendixes=tuple(draw(st.lists(free_text, max_size=2))),
            security_level=draw(st.none() | st.sampled_from(["Mật", "Tối mật", "Thường"])),
        ),
        steering_type=draw(st.integers(0, 2)),
    )


traces = st.none() | st.builds(
    TraceHeaderList,
    trace_headers=st.lists(st.builds(TraceHeader, codes, instants), max_size=3).map(tuple),
    business=st.none()
    | st.builds(
        Business,
        doc_type=st.sampled_from(BusinessDocType),
        reason=free_text,
        staff_info=st.none() | st.builds(StaffInfo, free_text, free_text, st.just(""), st.just("")),
        paper=st.integers(0, 1),
    ),
)

attachments = st.lists(
    st.builds(
        Attachment,
        content_id=st.uuids().map(str),
        attachment_name=free_text,
        content_type=st.just("application/pdf"),
        description=free_text,
        data=st.binary(max_size=300),
    ),
    max_size=3,
    unique_by=lambda a: a.content_id,
)


@given(headers(), traces, attachments)
@SETTINGS
def test_parse_of_build_is_identity(
    header: MessageHeader, trace: TraceHeaderList | None, files: list[Attachment]
) -> None:
    envelope = parse_envelope(build_envelope(header, trace=trace, attachments=files))
    assert envelope.header == header
    assert envelope.trace == trace
    assert envelope.attachments == tuple(files)


BASE = build_envelope(
    sample_header("000.00.02.H27", ["000.00.00.H27", "H27.01"]),
    trace=sample_trace("000.00.02.H27", datetime(2026, 11, 20, 9, 0, tzinfo=VIETNAM_TZ)),
    attachments=[sample_attachment(content_id="c1")],
)


@given(
    st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255)), min_size=1, max_size=4)
)
@SETTINGS
def test_a_corrupted_envelope_is_parsed_or_refused_never_crashes(
    edits: list[tuple[int, int]],
) -> None:
    data = bytearray(BASE)
    for position, value in edits:
        data[position] = value
    with contextlib.suppress(EnvelopeRefused):
        parse_packet(bytes(data))


@given(st.binary(max_size=200))
@SETTINGS
def test_arbitrary_bytes_are_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(EnvelopeRefused):
        parse_packet(data)


def test_timestamps_are_compared_as_instants() -> None:
    header = sample_header("H27.01", "H27")
    moment = datetime(2026, 1, 1, 8, 30, tzinfo=VIETNAM_TZ)
    trace = TraceHeaderList((TraceHeader("H27.01", moment - timedelta(hours=7)),))
    envelope = parse_envelope(build_envelope(header, trace=trace))
    assert envelope.trace is not None
    assert envelope.trace.trace_headers[0].timestamp == moment - timedelta(hours=7)
    assert dataclasses.asdict(envelope.header) == dataclasses.asdict(header)
