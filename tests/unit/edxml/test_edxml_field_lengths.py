"""Every text field the ledger stores is bounded at parse time with FIELD_TOO_LONG (issue 16,
H1: a validly signed envelope with a 300-character DocumentId crash-looped every consumer on
PostgreSQL's VARCHAR(128)). The limits live in one place, :class:`hub.edxml.Limits`."""

from __future__ import annotations

import dataclasses

import pytest

from hub.edxml import (
    EnvelopeRefused,
    Limits,
    Organization,
    build_envelope,
    build_status,
    parse_packet,
    response_for,
    sample_attachment,
    sample_header,
    sample_trace,
)
from hub.edxml.model import VIETNAM_TZ, MessageHeader
from hub.reasons import Reason

SENDER = Organization("000.00.01.H27", "Văn phòng UBND tỉnh Hà Tĩnh")
RECIPIENT = "000.00.02.H27"
PREFIX = len("000.00.01.H27,2026/11/20,")
"""A DocumentId is "{sender},{date},{number}/{notation}": the part before the code."""
LIMITS = Limits()


def _envelope(header: MessageHeader | None = None, **kwargs: str) -> bytes:
    from datetime import datetime

    header = header or sample_header(SENDER, RECIPIENT, **kwargs)  # type: ignore[arg-type]
    return build_envelope(header, trace=sample_trace(SENDER.organ_id,
                                                     datetime(2026, 11, 20, tzinfo=VIETNAM_TZ)),
                          attachments=[sample_attachment(content_id="main")])


def _refused(data: bytes, limits: Limits | None = None) -> EnvelopeRefused:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data, limits)
    return caught.value


def test_a_document_id_of_the_ledgers_length_is_accepted_and_one_more_character_refused() -> None:
    # Given DocumentIds of exactly 128 and 129 characters (the code inside stays short enough)
    fits = _envelope(number="1", notation="X" * (LIMITS.max_identifier_chars - PREFIX - 2))
    too_long = _envelope(number="1", notation="X" * (LIMITS.max_identifier_chars - PREFIX - 1))
    # Then the first parses, the second is refused with a reason naming the field
    assert len(parse_packet(fits).document_id) == LIMITS.max_identifier_chars  # type: ignore[union-attr]
    refused = _refused(too_long)
    assert refused.reason is Reason.FIELD_TOO_LONG
    assert "DocumentId" in refused.detail
    assert f"at most {LIMITS.max_identifier_chars}" in refused.detail


@pytest.mark.parametrize("field", ["number", "notation"])
def test_a_code_number_or_notation_longer_than_the_ledger_column_is_refused(field: str) -> None:
    long = "9" * (LIMITS.max_identifier_chars + 1)
    refused = _refused(_envelope(number=long) if field == "number" else _envelope(notation=long))
    assert refused.reason is Reason.FIELD_TOO_LONG
    assert ("CodeNumber" if field == "number" else "CodeNotation") in refused.detail


def test_the_code_as_the_ledger_stores_it_number_slash_notation_is_bounded_too() -> None:
    # number (64) + "/" + notation (64) = 129 characters: each part fits, the code does not
    header = sample_header(SENDER, RECIPIENT, number="1" * 64, notation="N" * 64)
    header = dataclasses.replace(header, document_id="000.00.01.H27,2026/11/20,1/N")
    refused = _refused(_envelope(header))
    assert refused.reason is Reason.FIELD_TOO_LONG
    assert "Code" in refused.detail


@pytest.mark.parametrize(
    "edit",
    ["subject", "sender_name", "recipient_name", "attachment_name", "content"],
)
def test_free_text_fields_are_bounded(edit: str) -> None:
    limit = LIMITS.max_content_chars if edit == "content" else LIMITS.max_text_chars
    header = sample_header(SENDER, RECIPIENT)
    long = "ắ" * (limit + 1)
    fits = "ắ" * limit
    attachment = sample_attachment(content_id="main")

    def packet(text: str) -> bytes:
        h = header
        att = attachment
        if edit == "subject":
            h = dataclasses.replace(h, subject=text)
        elif edit == "sender_name":
            h = dataclasses.replace(h, sender=dataclasses.replace(h.sender, organ_name=text))
        elif edit == "recipient_name":
            h = dataclasses.replace(h, recipients=(Organization(RECIPIENT, text),))
        elif edit == "content":
            h = dataclasses.replace(h, content=text)
        else:
            att = dataclasses.replace(att, attachment_name=text)
        return build_envelope(h, attachments=[att])

    parse_packet(packet(fits))
    refused = _refused(packet(long))
    assert refused.reason is Reason.FIELD_TOO_LONG
    assert f"{limit + 1} characters" in refused.detail


def test_a_status_packet_is_bounded_the_same_way() -> None:
    from datetime import datetime

    rf = response_for(sample_header(SENDER, RECIPIENT))
    long_id = dataclasses.replace(rf, document_id=rf.document_id + "X" * 200)
    at = datetime(2026, 11, 20, tzinfo=VIETNAM_TZ)
    refused = _refused(build_status(response_for=long_id, sender=Organization(RECIPIENT),
                                    status_code="03", timestamp=at))
    assert refused.reason is Reason.FIELD_TOO_LONG
    assert "DocumentId" in refused.detail
    refused = _refused(build_status(response_for=rf, sender=Organization(RECIPIENT),
                                    status_code="03", timestamp=at,
                                    description="x" * (LIMITS.max_text_chars + 1)))
    assert refused.reason is Reason.FIELD_TOO_LONG
    assert "Description" in refused.detail


def test_the_limits_are_configurable_in_one_place() -> None:
    data = _envelope()
    parse_packet(data)
    refused = _refused(data, Limits(max_identifier_chars=16))
    assert refused.reason is Reason.FIELD_TOO_LONG


def test_the_parse_limits_fit_the_ledger_columns() -> None:
    # The ledger keeps DocumentId, the code and the sender's organization code in bounded
    # columns (or unbounded ones, once widened): what the parser lets through always fits.
    from hub.edxml.orgcode import EID_MAX_LENGTH
    from hub.ledger.models import Document

    columns = Document.__table__.c
    needed = {"document_id": LIMITS.max_identifier_chars, "code": LIMITS.max_identifier_chars,
              "sender": EID_MAX_LENGTH}
    for name, longest in needed.items():
        length = getattr(columns[name].type, "length", None)
        assert length is None or length >= longest, name
