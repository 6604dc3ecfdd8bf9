"""Mutations of signed packets and PDFs: pure functions of (bytes, random generator).

Most work on the bytes as sent, never through a parse-and-serialize round trip, so every other
byte stays exactly as signed. Each returns the mutant, or ``None`` when it does not apply to
this input (the runner then picks another). Families:

- bytes: bit flips, interesting bytes, truncation, duplicated or deleted chunks;
- elements: duplicated, deleted, moved (found by their start and end tags);
- attributes and namespaces: Id/xml:id/xml:base/xsi:type attributes, redeclared prefixes,
  a default namespace dropped or changed, a prefix renamed;
- the signature: moved between the two accepted slots (inside ``edXML:DigitalSignature`` and
  last child of ``edXMLHeader``), duplicated in both, moved anywhere else;
- outside the root: processing instructions, comments, whitespace, text, a DOCTYPE;
- Unicode: whitespace that is not XML whitespace (U+00A0, U+0085, U+2028, U+3000 …) in base64
  and in routed text; equivalent serializations (character references, CDATA, CRLF, quotes);
- encodings: UTF-16/32 with and without byte-order marks, declarations that lie;
- base64: whitespace, line wrapping, padding, foreign alphabets, invalid characters;
- PDFs (the envelope around them is re-signed by the runner): bit flips, truncation, bytes
  appended, an incremental update that changes the page, ``/ByteRange`` and ``/Contents``
  edits.
"""

from __future__ import annotations

import codecs
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

Mutator = Callable[[bytes, random.Random], bytes | None]

_START_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)(?=[\s/>])")
_B64_TEXT = re.compile(
    rb"<((?:ds:)?(?:SignatureValue|X509Certificate|DigestValue)|edXML:ContentTransferEncoded|"
    rb"ContentTransferEncoded)(?:\s[^>]*)?>([^<]*)</\1>")
_TEXT = re.compile(rb">([^<>]+)</")
_SIGNATURE = re.compile(rb"<ds:Signature[\s>].*?</ds:Signature>", re.S)
_DIGITAL_SIGNATURE = re.compile(
    rb"<edXML:DigitalSignature>\s*(<ds:Signature[\s>].*?</ds:Signature>)\s*</edXML:DigitalSignature>",
    re.S)
_XML_DECL = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]*\?>")


def _pos(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


# -- bytes ------------------------------------------------------------------------------------


def bit_flip(data: bytes, rng: random.Random) -> bytes | None:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 4, 8))):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


_INTERESTING = b"<>&\"'=/ \x00\x80\xff\xc3\x0d\x0a\x09:;#["


def interesting_byte(data: bytes, rng: random.Random) -> bytes | None:
    out = bytearray(data)
    i = rng.randrange(len(out))
    out[i] = rng.choice(_INTERESTING)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes | None:
    cut = rng.choice((rng.randrange(len(data)), len(data) - rng.randrange(1, 300)))
    return data[:max(0, cut)]


def chunk_duplicate(data: bytes, rng: random.Random) -> bytes | None:
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.choice((1, 4, 16, 64, 512, 4096)))
    at = rng.choice((b, _pos(data, rng)))
    return data[:at] + data[a:b] + data[at:]


def chunk_delete(data: bytes, rng: random.Random) -> bytes | None:
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.choice((1, 2, 8, 64, 1024)))
    return data[:a] + data[b:]


# -- elements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One element in the serialized bytes: ``data[start:end]`` is the whole element."""

    name: bytes
    start: int
    end: int


def element_spans(data: bytes) -> list[Span]:
    """Elements found by their tags. No element of these packets nests inside one of the same
    qualified name, so the first closing tag after a start tag closes it."""
    spans: list[Span] = []
    for m in _START_TAG.finditer(data):
        name = m.group(1)
        close = data.find(b">", m.end())
        if close == -1:
            continue
        if data[close - 1:close] == b"/":
            spans.append(Span(name, m.start(), close + 1))
            continue
        end = data.find(b"</" + name + b">", close)
        if end != -1:
            spans.append(Span(name, m.start(), end + len(name) + 3))
    return spans


def _pick_span(data: bytes, rng: random.Random, *, root: bool = False) -> Span | None:
    spans = element_spans(data)
    if not root:
        spans = spans[1:]
    return rng.choice(spans) if spans else None


def element_duplicate(data: bytes, rng: random.Random) -> bytes | None:
    s = _pick_span(data, rng)
    if s is None:
        return None
    return data[:s.end] + data[s.start:s.end] + data[s.end:]


def element_delete(data: bytes, rng: random.Random) -> bytes | None:
    s = _pick_span(data, rng)
    if s is None:
        return None
    return data[:s.start] + data[s.end:]


def element_move(data: bytes, rng: random.Random) -> bytes | None:
    s = _pick_span(data, rng)
    if s is None:
        return None
    rest = data[:s.start] + data[s.end:]
    anchors = element_spans(rest)
    if not anchors:
        return None
    a = rng.choice(anchors)
    at = rng.choice((a.end, a.start))
    return rest[:at] + data[s.start:s.end] + rest[at:]


def element_copy_elsewhere(data: bytes, rng: random.Random) -> bytes | None:
    """A second copy of an element somewhere else (a routed field twice, a forged header …)."""
    s = _pick_span(data, rng)
    spans = element_spans(data)
    if s is None or not spans:
        return None
    a = rng.choice(spans)
    # Inside the anchor, just after its start tag, or just after it.
    start_tag_end = data.find(b">", a.start) + 1
    at = rng.choice((start_tag_end, a.end))
    if data[start_tag_end - 2:start_tag_end] == b"/>":
        at = a.end
    return data[:at] + data[s.start:s.end] + data[at:]


# -- attributes and namespaces ----------------------------------------------------------------

_ATTRIBUTES = (
    b'Id="forged"', b'ID="forged"', b'id="s1"', b'xml:id="s1"', b'wsu:Id="x"',
    b'xml:base="http://evil.example/"', b'xml:space="preserve"', b'xml:lang="vi"',
    b'URI="#forged"', b'Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"',
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="edXML:OpaqueType"',
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"',
    b'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:forged"',
    b'a="1" a="2"', b'xmlns:a="urn:a" a:x="1"',
)
_NAMESPACES = (
    b'xmlns=""', b'xmlns="urn:forged"', b'xmlns="http://www.w3.org/2000/09/xmldsig#"',
    b'xmlns:edXML="urn:forged"', b'xmlns:edXML="http://www.w3.org/2000/09/xmldsig#"',
    b'xmlns:ds="urn:forged"', b'xmlns:ds="http://www.mic.gov.vn/TBT/QCVN_102_2016"',
    b'xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"',
    b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"',
    b'xmlns:dsig11="http://www.w3.org/2009/xmldsig11#"', b'xmlns:xml="urn:forged"',
    b'xmlns:e="http://www.mic.gov.vn/TBT/QCVN_102_2016"',
)


def _insert_in_start_tag(data: bytes, rng: random.Random, text: bytes) -> bytes | None:
    tags = list(_START_TAG.finditer(data))
    if not tags:
        return None
    m = rng.choice(tags)
    return data[:m.end()] + b" " + text + data[m.end():]


def attribute_inject(data: bytes, rng: random.Random) -> bytes | None:
    return _insert_in_start_tag(data, rng, rng.choice(_ATTRIBUTES))


def namespace_inject(data: bytes, rng: random.Random) -> bytes | None:
    return _insert_in_start_tag(data, rng, rng.choice(_NAMESPACES))


def prefix_rename(data: bytes, rng: random.Random) -> bytes | None:
    """Rename one element's prefix, keeping its namespace (or binding it to another one)."""
    spans = [s for s in element_spans(data)[1:] if b":" in s.name]
    if not spans:
        return None
    s = rng.choice(spans)
    old_prefix, local = s.name.split(b":", 1)
    prefix = rng.choice((b"e", b"ds", b"edXML", b"x"))
    ns = {b"edXML": b"http://www.mic.gov.vn/TBT/QCVN_102_2016",
          b"ds": b"http://www.w3.org/2000/09/xmldsig#"}.get(old_prefix, b"urn:x")
    if rng.random() < 0.3:
        ns = rng.choice((b"urn:forged", b"http://www.w3.org/2000/09/xmldsig#",
                         b"http://www.mic.gov.vn/TBT/QCVN_102_2016"))
    element = data[s.start:s.end]
    new = prefix + b":" + local
    element = (b"<" + new + b' xmlns:' + prefix + b'="' + ns + b'"'
               + element[len(s.name) + 1:])
    if element.endswith(b"</" + s.name + b">"):
        element = element[:-len(s.name) - 3] + b"</" + new + b">"
    return data[:s.start] + element + data[s.end:]


# -- the signature ----------------------------------------------------------------------------


def _header_end(data: bytes) -> int:
    return data.find(b"</edXML:edXMLHeader>")


def signature_move(data: bytes, rng: random.Random) -> bytes | None:
    """Move or copy ``ds:Signature`` between the two accepted slots, into both, or elsewhere."""
    slot = _DIGITAL_SIGNATURE.search(data)
    sig = _SIGNATURE.search(data)
    if sig is None:
        return None
    signature = sig.group(0)
    if slot is not None:
        # In the standard slot: lift it out to the last child of edXMLHeader, or copy it there.
        without = data[:slot.start()] + data[slot.end():]
        choice = rng.randrange(4)
        if choice == 0:
            out = without
        elif choice == 1:
            out = without.replace(b"</edXML:edXMLHeader>",
                                  b"<edXML:DigitalSignature/>\n    </edXML:edXMLHeader>", 1)
        elif choice == 2:
            out = data  # both slots
        else:
            out = data[:slot.start()] + b"<edXML:DigitalSignature/>" + data[slot.end():]
        end = _header_end(out)
        return out[:end] + signature + b"\n    " + out[end:] if end != -1 else None
    without = data[:sig.start()] + data[sig.end():]
    targets: list[Callable[[bytes], bytes]] = [
        # into the standard slot (an empty one that is already there, or a new one)
        lambda d: d.replace(b"<edXML:DigitalSignature/>",
                            b"<edXML:DigitalSignature>" + signature + b"</edXML:DigitalSignature>",
                            1) if b"<edXML:DigitalSignature/>" in d else d,
        lambda d: d.replace(b"</edXML:edXMLHeader>", b"<edXML:DigitalSignature>" + signature
                            + b"</edXML:DigitalSignature></edXML:edXMLHeader>", 1),
        # both slots
        lambda d: data.replace(b"</edXML:edXMLHeader>", b"<edXML:DigitalSignature>" + signature
                               + b"</edXML:DigitalSignature></edXML:edXMLHeader>", 1),
        # a second copy next to it, or anywhere
        lambda d: data[:sig.end()] + signature + data[sig.end():],
        lambda d: d.replace(b"</edXML>", signature + b"</edXML>", 1),
        lambda d: d.replace(b"</edXML:MessageHeader>", signature + b"</edXML:MessageHeader>", 1),
        lambda d: d.replace(b"<edXML:edXMLBody>", b"<edXML:edXMLBody>" + signature, 1),
        lambda d: d.replace(b"</Attachment>", signature + b"</Attachment>", 1),
        lambda d: d.replace(b"</AttachmentEncoded>", signature + b"</AttachmentEncoded>", 1),
        lambda d: d.replace(b"<edXML:edXMLEnvelope", signature + b"<edXML:edXMLEnvelope", 1),
        lambda d: d.replace(b"<edXML:edXMLHeader>", b"<edXML:edXMLHeader>" + signature, 1),
        lambda d: d.replace(b"</edXML:Status>", signature + b"</edXML:Status>", 1),
        # a wrapper of another name around it
        lambda d: d.replace(b"</edXML:edXMLHeader>", b"<edXML:Signature>" + signature
                            + b"</edXML:Signature></edXML:edXMLHeader>", 1),
    ]
    out = rng.choice(targets)(without)
    return out if out != without else None


# -- outside the root -------------------------------------------------------------------------

_OUTSIDE = (
    b'<?xml-stylesheet type="text/xsl" href="http://evil.example/x.xsl"?>', b"<?pi data?>",
    b"<!-- comment -->", b"<!---->", b"\n", b" \t\r\n", b"\x00", b"text", b"<extra/>",
    b"<!DOCTYPE edXML>", b'<!DOCTYPE edXML [<!ENTITY x "y">]>', b'<?xml version="1.0"?>',
    b"\xef\xbb\xbf", b"\xc2\xa0", b"\xe3\x80\x80", b"]]>", b"<![CDATA[x]]>",
)


def outside_root(data: bytes, rng: random.Random) -> bytes | None:
    thing = rng.choice(_OUTSIDE)
    where = rng.randrange(3)
    if where == 0:
        return data + thing
    if where == 1:
        decl = _XML_DECL.match(data)
        at = decl.end() if decl else 0
        return data[:at] + thing + data[at:]
    return thing + data


# -- Unicode ----------------------------------------------------------------------------------

_UNICODE_SPACES = ("\u00a0", "\u0085", "\u2028", "\u2029", "\u3000", "\u2009", "\u200b", "\ufeff",
                   "\u1680", "\u180e", "\u202f", "\u205f", "\u000b", "\u000c", "\u001c")
_REFS = ("&#x2028;", "&#xA0;", "&#x3000;", "&#133;", "&#x85;", "&#10;", "&#x20;", "&#9;",
         "&#13;")


def unicode_whitespace(data: bytes, rng: random.Random) -> bytes | None:
    """A space that is not XML whitespace, raw or as a character reference, in base64 or text."""
    texts = list(_B64_TEXT.finditer(data)) if rng.random() < 0.7 else []
    if texts:
        m = rng.choice(texts)
        a, b = m.span(2)
    else:
        plain = list(_TEXT.finditer(data))
        if not plain:
            return None
        m = rng.choice(plain)
        a, b = m.span(1)
    at = rng.randint(a, b)
    char = rng.choice((*_UNICODE_SPACES, *_REFS)) if rng.random() < 0.8 else rng.choice(_REFS)
    return data[:at] + char.encode("utf-8") + data[at:]


def equivalent_serialization(data: bytes, rng: random.Random) -> bytes | None:
    """A change c14n undoes: character references, CDATA, CRLF, quotes, spaces in tags."""
    choice = rng.randrange(6)
    if choice == 0:
        plain = [m for m in _TEXT.finditer(data) if m.group(1).strip()]
        if not plain:
            return None
        m = rng.choice(plain)
        at = rng.randrange(*m.span(1))
        char = data[at:at + 1]
        if not char.isascii() or char in b"&<>\r":
            return None
        return data[:at] + b"&#%d;" % char[0] + data[at + 1:]
    if choice == 1:
        plain = [m for m in _TEXT.finditer(data) if b"]]>" not in m.group(1)]
        if not plain:
            return None
        m = rng.choice(plain)
        a, b = m.span(1)
        return data[:a] + b"<![CDATA[" + data[a:b] + b"]]>" + data[b:]
    if choice == 2:
        return data.replace(b"\n", b"\r\n")
    if choice == 3:
        return data.replace(b'="', b"='").replace(b'" ', b"' ").replace(b'">', b"'>").replace(
            b'"/>', b"'/>").replace(b'"?>', b"'?>")
    if choice == 4:
        return re.sub(rb"</([\w:.\-]+)>", rb"</\1 >", data.replace(b"/>", b" />"))
    return data.replace(b"\n", b"\r")


# -- encodings --------------------------------------------------------------------------------

_DECLARATIONS = (
    b"<?xml version='1.0' encoding='UTF-16'?>", b"<?xml version='1.0' encoding='ISO-8859-1'?>",
    b"<?xml version='1.0' encoding='US-ASCII'?>", b"<?xml version='1.0' encoding='utf8'?>",
    b"<?xml version='1.0' encoding='UTF-8 '?>", b"<?xml version='1.1' encoding='UTF-8'?>",
    b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>", b"<?xml version='1.0'?>",
    b"<?xml version='1.0' encoding='UTF-32'?>", b"<?xml version='1.0' encoding='windows-1258'?>",
    b"<?xml version='1.0' encoding='UCS-4'?>", b"",
)
_TRANSCODINGS: tuple[tuple[str, bytes, bytes], ...] = (
    # (codec, byte-order mark, declared name)
    ("utf-16-le", codecs.BOM_UTF16_LE, b"UTF-16"), ("utf-16-be", codecs.BOM_UTF16_BE, b"UTF-16"),
    ("utf-16-le", b"", b"UTF-16"), ("utf-16-be", b"", b"UTF-16"),
    ("utf-16-le", b"", b"UTF-8"), ("utf-16-le", b"", b""),
    ("utf-32-le", codecs.BOM_UTF32_LE, b"UTF-32"), ("utf-32-be", codecs.BOM_UTF32_BE, b"UTF-32"),
    ("utf-32-le", b"", b""), ("utf-32-be", b"", b"UCS-4"),
    ("utf-8", codecs.BOM_UTF8, b"UTF-8"), ("utf-8", codecs.BOM_UTF8, b""),
)


def encoding(data: bytes, rng: random.Random) -> bytes | None:
    """The same document in another encoding (or declared as one)."""
    decl = _XML_DECL.match(data)
    body = data[decl.end():] if decl else data
    if rng.random() < 0.3:
        return rng.choice(_DECLARATIONS) + body
    codec, bom, name = rng.choice(_TRANSCODINGS)
    declaration = (b"<?xml version='1.0' encoding='" + name + b"'?>") if name else b""
    text = (declaration + body).decode("utf-8", errors="replace")
    return bom + text.encode(codec)


# -- base64 -----------------------------------------------------------------------------------

_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _perturb_base64(text: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(12)
    if choice == 0 and text:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice((b" ", b"\t", b"\r\n", b"\n", b"\r", b"  \n  ")) + text[at:]
    if choice == 1:
        flat = b"".join(text.split())
        width = rng.choice((64, 76, 4, 1))
        return b"\n".join(flat[i:i + width] for i in range(0, len(flat), width))
    if choice == 2:
        return text.rstrip().rstrip(b"=")
    if choice == 3:
        return text + b"="
    if choice == 4:
        return text.translate(_URLSAFE)
    if choice == 5 and text:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice((b"!", b"*", b"-", b"_", b".", b"=", b"==", b"\xc3\xa9",
                                       b"&amp;", b"&#43;")) + text[at:]
    if choice == 6 and text:
        at = rng.randrange(len(text))
        return text[:at] + bytes([text[at] ^ 0x20]) + text[at + 1:]
    if choice == 7:
        return text + text
    if choice == 8:
        return b""
    if choice == 9:
        return b"<![CDATA[" + text + b"]]>"
    if choice == 10 and text:
        at = rng.randrange(len(text) + 1)
        return text[:at] + b"====" + text[at:]
    return b" \n" + text + b"\n "


def base64_perturb(data: bytes, rng: random.Random) -> bytes | None:
    texts = list(_B64_TEXT.finditer(data))
    if not texts:
        return None
    m = rng.choice(texts)
    a, b = m.span(2)
    return data[:a] + _perturb_base64(data[a:b], rng) + data[b:]


# -- PDFs -------------------------------------------------------------------------------------

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")
_CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f]+)>")


def pdf_append(data: bytes, rng: random.Random) -> bytes | None:
    return data + rng.choice((b"\n", b"%%EOF\n", b"garbage", b"\x00" * 64, data[:200],
                              b"%PDF-1.7\n", b"\nstartxref\n0\n%%EOF\n"))


def pdf_incremental_update(data: bytes, rng: random.Random) -> bytes | None:
    """A new revision after the signatures that redefines the page's content stream (the text a
    reader sees) or the catalog: what a signature's difference analysis must refuse."""
    sizes = re.findall(rb"/Size\s+(\d+)", data)
    starts = re.findall(rb"startxref\s+(\d+)", data)
    if not sizes or not starts:
        return None
    size, prev = int(sizes[-1]), int(starts[-1])
    text = rng.choice((b"Cong van 999", b"Quyet dinh huy bo", b"So tien 900000000"))
    stream = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    obj = rng.choice((4, 1, size))
    body = (b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
            + b"\nendstream") if obj != 1 else b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>"
    out = bytearray(data)
    if not out.endswith(b"\n"):
        out += b"\n"
    offset = len(out)
    out += f"{obj} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    new_size = max(size, obj + 1)
    out += (f"xref\n0 1\n0000000000 65535 f \n{obj} 1\n{offset:010d} 00000 n \n"
            f"trailer\n<< /Size {new_size} /Root 1 0 R /Prev {prev} >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def pdf_byte_range(data: bytes, rng: random.Random) -> bytes | None:
    found = list(_BYTE_RANGE.finditer(data))
    if not found:
        return None
    m = rng.choice(found)
    g = rng.randrange(1, 5)
    a, b = m.span(g)
    value = int(data[a:b]) + rng.choice((-1, 1, -10, 10, 1000))
    digits = str(max(0, value)).encode().rjust(b - a, b" ")[-(b - a):] if rng.random() < 0.5 \
        else str(max(0, value)).encode()
    return data[:a] + digits + data[b:]


def pdf_contents(data: bytes, rng: random.Random) -> bytes | None:
    found = list(_CONTENTS.finditer(data))
    if not found:
        return None
    m = rng.choice(found)
    a, b = m.span(1)
    hexes = data[a:b].rstrip(b"0")
    at = a + rng.randrange(max(1, len(hexes)))
    return data[:at] + rng.choice((b"0", b"F", b"a", b"G")) + data[at + 1:]


# -- the catalogues ---------------------------------------------------------------------------

XML_MUTATORS: dict[str, tuple[int, Mutator]] = {
    # name: (weight, function)
    "bit_flip": (10, bit_flip),
    "interesting_byte": (6, interesting_byte),
    "truncate": (5, truncate),
    "chunk_duplicate": (5, chunk_duplicate),
    "chunk_delete": (5, chunk_delete),
    "element_duplicate": (8, element_duplicate),
    "element_delete": (5, element_delete),
    "element_move": (5, element_move),
    "element_copy_elsewhere": (6, element_copy_elsewhere),
    "attribute_inject": (8, attribute_inject),
    "namespace_inject": (8, namespace_inject),
    "prefix_rename": (4, prefix_rename),
    "signature_move": (10, signature_move),
    "outside_root": (8, outside_root),
    "unicode_whitespace": (8, unicode_whitespace),
    "equivalent_serialization": (6, equivalent_serialization),
    "encoding": (8, encoding),
    "base64_perturb": (10, base64_perturb),
}
"""Mutations of whole packets (envelopes and status packets)."""

PDF_MUTATORS: dict[str, tuple[int, Mutator]] = {
    "pdf_bit_flip": (6, bit_flip),
    "pdf_interesting_byte": (3, interesting_byte),
    "pdf_truncate": (3, truncate),
    "pdf_chunk_duplicate": (3, chunk_duplicate),
    "pdf_chunk_delete": (2, chunk_delete),
    "pdf_append": (3, pdf_append),
    "pdf_incremental_update": (5, pdf_incremental_update),
    "pdf_byte_range": (3, pdf_byte_range),
    "pdf_contents": (3, pdf_contents),
}
"""Mutations of the main PDF; the envelope around the mutant is signed again."""


def pick(catalogue: dict[str, tuple[int, Mutator]], rng: random.Random) -> tuple[str, Mutator]:
    names = list(catalogue)
    name = rng.choices(names, weights=[catalogue[n][0] for n in names])[0]
    return name, catalogue[name][1]
