"""The parser's cheaper forms of its checks (issue #23) decide exactly what the previous forms
decided: each previous form is copied here verbatim and run against the current one on the
test vectors and on generated inputs.

- the markup-declaration scan (``hub.edxml._xml``): a regex search, after a ``b"!"`` memchr,
  instead of a ``find(b"<!")`` loop;
- ``_Fields``: the EDXML namespace matched by lxml in C instead of a Python test of each tag;
- attachments against the manifest: sets instead of Counters, and ASCII base64 stripped of
  whitespace as bytes instead of as text.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.edxml import NS, Attachment, EnvelopeRefused, Limits, Reference, parse_xml
from hub.edxml import _xml as xml_module
from hub.edxml import parse as parse_module
from hub.reasons import Reason

VECTORS = sorted(
    p for p in (Path(__file__).resolve().parents[2] / "vectors").rglob("*")
    if p.is_file() and p.suffix not in {".toml", ".py"})
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PREFIX = "{" + NS + "}"


# -- the previous forms, verbatim (31d8baa) ----------------------------------------------------


def _previous_markup_scan(data: bytes) -> None:
    start = data.find(b"<!")
    while start != -1:
        if not (data.startswith(b"<!--", start) or data.startswith(b"<![CDATA[", start)):
            raise EnvelopeRefused(
                Reason.ENVELOPE_DTD_FORBIDDEN, f"markup declaration at byte {start}"
            )
        start = data.find(b"<!", start + 2)


def _previous_fields(el: etree._Element) -> dict[str, list[etree._Element]]:
    by_name: dict[str, list[etree._Element]] = {}
    cut = len(PREFIX)
    for child in el:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(PREFIX):
            found = by_name.get(tag[cut:])
            if found is None:
                by_name[tag[cut:]] = [child]
            else:
                found.append(child)
    return by_name


_B64_WHITESPACE = str.maketrans("", "", " \t\r\n")


def _previous_attachments(
    encoded: etree._Element | None, manifest: tuple[Reference, ...], limits: Limits
) -> tuple[Attachment, ...]:
    fields = parse_module._Fields
    content_id_of = parse_module._content_id
    text_of = parse_module._text_of
    elements = [] if encoded is None else [
        fields(a) for a in parse_module._kids(encoded, "Attachment")]
    declared = Counter(ref.content_id for ref in manifest)
    present = Counter(content_id_of(a.text("ContentId")) for a in elements)
    if any(n > 1 for n in declared.values()) or any(n > 1 for n in present.values()):
        raise EnvelopeRefused(Reason.ATTACHMENT_NOT_IN_MANIFEST, "duplicate ContentId")
    if declared != present:
        missing = len(declared - present)
        extra = len(present - declared)
        raise EnvelopeRefused(
            Reason.ATTACHMENT_NOT_IN_MANIFEST,
            f"{missing} declared attachment(s) absent, {extra} attachment(s) not declared",
        )
    out: list[Attachment] = []
    for a in elements:
        cte = a.child("ContentTransferEncoded")
        encoded_text = text_of(cte).translate(_B64_WHITESPACE)
        if len(encoded_text) // 4 * 3 > limits.max_attachment_bytes + 2:
            raise EnvelopeRefused(
                Reason.ATTACHMENT_TOO_LARGE,
                f"line {a.el.sourceline}: over {limits.max_attachment_bytes} bytes",
            )
        try:
            data = base64.b64decode(encoded_text, validate=True)
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
                content_id=content_id_of(a.text("ContentId")),
                attachment_name=a.text("AttachmentName"),
                content_type=a.token("ContentType"),
                description=a.text("Description"),
                data=data,
            )
        )
    order = {ref.content_id: i for i, ref in enumerate(manifest)}
    out.sort(key=lambda att: order[att.content_id])
    return tuple(out)


# -- helpers ----------------------------------------------------------------------------------


def _outcome(call: object, *args: object) -> object:
    try:
        return ("ok", call(*args))  # type: ignore[operator]
    except EnvelopeRefused as exc:
        return ("refused", exc.reason, exc.detail)
    except Exception as exc:  # a crash must be the same crash
        return ("raised", type(exc).__name__)


# -- the markup-declaration scan --------------------------------------------------------------


MARKUP_PIECES = [b"<!", b"<!-", b"<!--", b"-->", b"<![CDATA[", b"<![CDATA", b"]]>", b"<",
                 b"!", b"<a>", b"</a>", b"x", b"\n", b"<!DOCTYPE a>", b"<!ENTITY", "ẩ".encode()]


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.name)
def test_the_markup_scan_decides_as_before_on_every_vector_and_its_edits(path: Path) -> None:
    data = path.read_bytes()
    inputs = [data] + [data[:i] + piece + data[i:]
                       for i in range(0, len(data), max(1, len(data) // 40))
                       for piece in (b"<!", b"<!-x", b"<![CDATA", b"!", b"<!--<!x-->")]
    for one in inputs:
        assert (_outcome(xml_module._check_no_markup_declarations, one)
                == _outcome(_previous_markup_scan, one))


@SETTINGS
@given(st.lists(st.sampled_from(MARKUP_PIECES), max_size=30).map(b"".join))
def test_the_markup_scan_decides_as_before_on_any_mix_of_markup(data: bytes) -> None:
    assert (_outcome(xml_module._check_no_markup_declarations, data)
            == _outcome(_previous_markup_scan, data))


# -- the children of an element by name -------------------------------------------------------


def _parseable_vectors() -> list[etree._Element]:
    roots = []
    for path in VECTORS:
        try:
            roots.append(parse_xml(path.read_bytes(), Limits(max_bytes=1 << 30)))
        except EnvelopeRefused:
            continue
    return roots


def test_fields_finds_the_same_children_as_before_in_every_element_of_every_vector() -> None:
    roots = _parseable_vectors()
    assert len(roots) > 30
    compared = 0
    for root in roots:
        for el in root.iter():
            assert parse_module._Fields(el)._by_name == _previous_fields(el)
            compared += 1
    assert compared > 3000


@pytest.mark.parametrize("uri", [NS + "}x", NS + "}", "urn:a}b"])
def test_no_parsed_element_can_have_a_tag_that_starts_like_edxml_in_another_namespace(
        uri: str) -> None:
    """The one case where the two forms could differ: a namespace URI ``NS + "}…"`` gives tags
    starting with ``{NS}``. The parser refuses any namespace URI holding ``}``."""
    with pytest.raises(EnvelopeRefused) as caught:
        parse_xml(f'<a xmlns="{NS}" xmlns:o="{uri}"><o:From/></a>'.encode(), Limits())
    assert caught.value.reason is Reason.ENVELOPE_MALFORMED
    assert "is not a valid URI" in caught.value.detail


# -- attachments against the manifest ---------------------------------------------------------


IDS = st.sampled_from(["a", "b", "c", "cid:a", " a ", "CID:b", "Cid:c "])
BASE64 = st.one_of(
    st.tuples(st.binary(max_size=7), st.sampled_from(["", " ", "\n", "\r\n\t"])).map(
        lambda pair: pair[1].join(base64.b64encode(pair[0]).decode())),
    st.lists(st.sampled_from(["QUJD", "ZGVm", "Zw==", "YQ", "=", " ", "\t", "\r\n", "\n",
                              "\u00a0", "\u2003", "ẩ", "*", "-", "_", "+/+/", "A"]),
             max_size=8).map("".join))
"""Valid base64 (possibly spread by XML whitespace), or pieces of valid and invalid text."""


def _encoded(attachments: list[tuple[str, str]]) -> etree._Element:
    root = etree.Element(PREFIX + "AttachmentEncoded")
    for content_id, text in attachments:
        a = etree.SubElement(root, PREFIX + "Attachment")
        etree.SubElement(a, PREFIX + "ContentId").text = content_id
        etree.SubElement(a, PREFIX + "AttachmentName").text = f"{content_id}.txt"
        etree.SubElement(a, PREFIX + "ContentType").text = " text/plain "
        etree.SubElement(a, PREFIX + "ContentTransferEncoded").text = text
    return root


@st.composite
def _attachments_and_manifest(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    """Mostly a manifest declaring what is present (so that decoding is reached), else any."""
    unique = draw(st.booleans())
    present = draw(st.lists(
        st.tuples(IDS, BASE64), max_size=4,
        unique_by=(lambda pair: parse_module._content_id(pair[0])) if unique else None))
    if draw(st.booleans()):
        return draw(st.permutations([content_id for content_id, _ in present])), present
    return draw(st.lists(IDS, max_size=4)), present


@SETTINGS
@given(case=_attachments_and_manifest(), limit=st.sampled_from([0, 1, 3, 4, 6, 1000, 1000]))
def test_attachments_are_matched_and_decoded_as_before(
        case: tuple[list[str], list[tuple[str, str]]], limit: int) -> None:
    declared, present = case
    manifest = tuple(Reference(parse_module._content_id(i), "n") for i in declared)
    encoded = _encoded(present)
    limits = Limits(max_attachment_bytes=limit)
    assert (_outcome(parse_module._attachments, encoded, manifest, limits)
            == _outcome(_previous_attachments, encoded, manifest, limits))


def test_no_attachment_element_is_no_attachment_as_before() -> None:
    for manifest in ((), (Reference("a", "n"),)):
        assert (_outcome(parse_module._attachments, None, manifest, Limits())
                == _outcome(_previous_attachments, None, manifest, Limits()))
