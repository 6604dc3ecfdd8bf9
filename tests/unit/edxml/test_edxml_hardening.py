"""The hardened XML entry point: DTDs, entities, size, depth, element count, encoding."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from lxml import etree

from hub.edxml import (
    EnvelopeRefused,
    Limits,
    build_envelope,
    parse_packet,
    parse_xml,
    sample_header,
)
from hub.edxml._xml import _check_shape, _new_parser, _walk_shape, schema, schema_bytes
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
    # CPU time of this process, not the clock: a loaded machine may deschedule the test, while
    # an expanded billion laughs costs seconds of CPU (the refusal: tens of microseconds).
    started = time.process_time()
    assert _refusal(data) is Reason.ENVELOPE_DTD_FORBIDDEN
    assert time.process_time() - started < 1.0


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


@pytest.mark.parametrize(("data", "first"), [
    (b"<a>" + b"<d>" * 10 + b"</d>" * 10 + b"<b/>" * 20 + b"</a>", Reason.ENVELOPE_TOO_DEEP),
    (b"<a>" + b"<b/>" * 20 + b"<d>" * 10 + b"</d>" * 10 + b"</a>",
     Reason.ENVELOPE_TOO_MANY_ELEMENTS),
], ids=["deep-first", "many-first"])
def test_a_packet_over_both_shape_limits_is_refused_for_the_one_met_first_in_document_order(
        data: bytes, first: Reason) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_depth=8, max_elements=15))
    assert caught.value.reason is first


def test_the_shape_check_in_c_agrees_with_a_walk_of_the_tree_on_random_trees() -> None:
    rng = random.Random(102)
    for _ in range(300):
        root = etree.Element("a")
        nodes = [(root, 1)]
        for _ in range(rng.randrange(1, 40)):
            parent, depth = rng.choice(nodes)
            nodes.append((etree.SubElement(parent, "e"), depth + 1))
        limits = Limits(max_depth=rng.randrange(1, 12), max_elements=rng.randrange(1, 45))
        outcomes: list[tuple[Reason, str] | None] = []
        for check in (_check_shape, _walk_shape):
            try:
                check(root, limits)
                outcomes.append(None)
            except EnvelopeRefused as refused:
                outcomes.append((refused.reason, refused.detail))
        assert outcomes[0] == outcomes[1]


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


# -- only the root element travels: nothing outside it but the declaration and whitespace -------


def _signed_like() -> bytes:
    return build_envelope(sample_header("000.00.01.H27", "000.00.00.H27"))


@pytest.mark.parametrize(
    ("where", "markup"),
    [
        ("before", b'<?xml-stylesheet type="text/xsl" href="http://attacker.example/x.xsl"?>'),
        ("after", b'<?xml-stylesheet type="text/xsl" href="x.xsl"?>'),
        ("before", b"<!-- unsigned note -->"),
        ("after", b"<!-- unsigned note -->"),
        ("after", b"<?hub anything?>"),
    ],
    ids=["stylesheet-before-root", "stylesheet-after-root", "comment-before-root",
         "comment-after-root", "pi-after-root"],
)
def test_a_processing_instruction_or_comment_outside_the_root_is_refused(
    where: str, markup: bytes
) -> None:
    # Given a packet the parser accepts, and markup outside its root element (exclusive c14n of
    # the root, what the signature covers, never sees it: it would travel unsigned)
    data = _signed_like()
    declaration, rest = data.split(b"\n", 1)
    edited = (declaration + b"\n" + markup + b"\n" + rest if where == "before"
              else data + markup + b"\n")
    # When it is parsed, Then it is refused with a precise reason, at the parse step
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(edited, Limits())
    assert caught.value.reason is Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT
    assert ("processing instruction" if markup.startswith(b"<?") else "comment") in (
        caught.value.detail)
    assert _refusal(edited) is Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT


def test_the_declaration_a_bom_and_whitespace_around_the_root_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + _signed_like().replace(b"?>\n", b"?>\n\n \t\r\n", 1) + b"\n\n  \n"
    assert parse_packet(data).raw == data


def test_comments_and_processing_instructions_inside_the_root_are_left_to_the_signature_check(
) -> None:
    # Inside the root they are canonicalized with the document (the signature check judges them)
    parse_xml(b"<a><?pi x?><!-- c --></a>", Limits())


# -- UTF-8 only, decided on the raw bytes before the parser runs ----------------------------------


def _utf16_document(codec: str) -> bytes:
    text = _signed_like().decode("utf-8").replace('encoding="UTF-8"', f'encoding="{codec}"', 1)
    return text.encode(codec.lower())


@pytest.mark.parametrize("codec", ["UTF-16-LE", "UTF-16-BE", "UTF-32-LE", "UTF-32-BE"])
def test_a_utf16_or_utf32_packet_without_a_byte_order_mark_is_refused(codec: str) -> None:
    data = _utf16_document(codec)
    assert not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    assert _refusal(data) is Reason.ENVELOPE_ENCODING_INVALID


@pytest.mark.parametrize(
    "bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"],
    ids=["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_utf16_or_utf32_byte_order_mark_is_refused(bom: bytes) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(bom + b"<a/>", Limits())
    assert caught.value.reason is Reason.ENVELOPE_ENCODING_INVALID


def test_a_dtd_in_utf16_cannot_slip_past_the_markup_declaration_scan() -> None:
    # "<\0!\0" is not "<!": the raw scan must not be the only guard. The packet is refused on its
    # bytes (NUL), before any parser sees the DTD.
    data = BOMB.decode("ascii").replace('version="1.0"', 'version="1.0" encoding="UTF-16"', 1)
    encoded = data.encode("utf-16-le")
    assert b"<!" not in encoded
    started = time.process_time()
    assert _refusal(encoded) is Reason.ENVELOPE_ENCODING_INVALID
    assert time.process_time() - started < 1.0


def test_a_nul_byte_in_a_utf8_packet_is_refused_before_parsing() -> None:
    data = _signed_like().replace("triển khai".encode(), "triển\x00khai".encode(), 1)
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits())
    assert caught.value.reason is Reason.ENVELOPE_ENCODING_INVALID
    assert "NUL" in caught.value.detail


@pytest.mark.parametrize("codec", ["cp037", "cp500"])
def test_an_ebcdic_packet_is_refused_as_an_encoding_error(codec: str) -> None:
    data = f'<?xml version="1.0" encoding="{codec.upper()}"?><a>x</a>'.encode(codec)
    assert _refusal(data) is Reason.ENVELOPE_ENCODING_INVALID


@pytest.mark.parametrize("name", ["UTF-16", "utf-32", "US-ASCII", "UTF-7", "utf_8"])
def test_an_encoding_declaration_other_than_utf8_is_refused(name: str) -> None:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(f'<?xml version="1.0" encoding="{name}"?><a/>'.encode("ascii"), Limits())
    assert caught.value.reason is Reason.ENVELOPE_ENCODING_INVALID


def test_a_depth_limit_deeper_than_an_xpath_can_express_is_still_enforced() -> None:
    data = b"<a>" * 300 + b"</a>" * 300
    parse_xml(data, Limits(max_depth=10_000))
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits(max_depth=299))
    assert caught.value.reason is Reason.ENVELOPE_TOO_DEEP


def _declaration_at(data: bytes) -> str:
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(data, Limits())
    assert caught.value.reason is Reason.ENVELOPE_DTD_FORBIDDEN
    return caught.value.detail


@pytest.mark.parametrize("data", [
    b"<a><!-- <!x --><![CDATA[<!y]]> ! <!ELEMENT b ANY><!DOCTYPE c></a>",
    b"<a>!!<!-x--></a>",
    b"<a><![CDATA<![CDATA[x]]></a>",
    b"<a><!--x--><!--y--><!></a>",
], ids=["after-comment-and-cdata", "half-comment", "half-cdata", "empty"])
def test_the_markup_declaration_named_is_the_first_that_opens_no_comment_or_cdata(
        data: bytes) -> None:
    first = min(i for i in range(len(data) - 1) if data[i:i + 2] == b"<!"
                and not data.startswith((b"<!--", b"<![CDATA["), i))
    assert _declaration_at(data) == f"markup declaration at byte {first}"


def test_exclamation_marks_alone_are_no_markup_declaration() -> None:
    assert parse_xml("<a>Khẩn! <b>!</b>!<!-- ! --></a>".encode(), Limits()).tag == "a"


MARKER = "SECRET-ON-THE-HUB-MACHINE"


def _external_forms(tmp: Path) -> dict[str, bytes]:
    """Each way a document can make a parser read another file, pointing at files of ``tmp``
    that hold :data:`MARKER`."""
    secret = tmp / "secret.txt"
    secret.write_text(MARKER, encoding="utf-8")
    dtd = tmp / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "{secret.as_uri()}">', encoding="utf-8")
    root = '<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    return {
        "external DTD": (f'<?xml version="1.0"?>\n<!DOCTYPE edXML SYSTEM "{dtd.as_uri()}">\n'
                         f"{root}&leak;</edXML>").encode(),
        "external general entity": (
            f'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY x SYSTEM "{secret.as_uri()}">]>\n'
            f"{root}&x;</edXML>").encode(),
        "external parameter entity": (
            f'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY % p SYSTEM "{dtd.as_uri()}"> %p;]>'
            f"\n{root}&leak;</edXML>").encode(),
    }


def _read_by(parser: etree.XMLParser, data: bytes) -> bool:
    """Whether parsing ``data`` with ``parser`` pulled the marker file's content in."""
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return False
    return MARKER in etree.tostring(root, encoding="unicode")


def test_a_permissive_parser_reads_the_files_these_documents_point_at(tmp_path: Path) -> None:
    # The control: the forms below do reach a file when a parser lets them
    permissive = etree.XMLParser(load_dtd=True, resolve_entities=True, no_network=True)
    read = {name: _read_by(permissive, data) for name, data in _external_forms(tmp_path).items()}
    assert read == dict.fromkeys(read, True)


def test_no_external_dtd_or_entity_is_ever_read_by_the_hub_or_by_its_parser(
        tmp_path: Path) -> None:
    for name, data in _external_forms(tmp_path).items():
        # The hub refuses each on its bytes, before any parser runs …
        assert _refusal(data) is Reason.ENVELOPE_DTD_FORBIDDEN, name
        # … and its parser, given the same bytes directly (the defence behind that scan),
        # loads no DTD and resolves no entity
        assert not _read_by(_new_parser(), data), name
