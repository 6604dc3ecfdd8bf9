"""The hub's only XML parser entry point (hardened), and the cached EDXML schema.

Nothing else in ``hub/`` calls an lxml parser: every byte that arrives goes through
:func:`parse_xml`, which (in this order, cheapest first)

1. refuses a packet over ``limits.max_bytes`` before reading it (ENVELOPE_TOO_LARGE);
2. decides the encoding on the raw bytes, before any parser runs (ENVELOPE_ENCODING_INVALID) —
   QCVN 102 packets are UTF-8: UTF-16/32 byte-order marks, any NUL byte (UTF-16/32 without a
   byte-order mark, binary data; U+0000 is no XML character in any encoding), EBCDIC, and any
   declared encoding other than UTF-8 are refused. So the bytes step 3 scans are the characters
   the parser reads (``<\0!\0`` in UTF-16 is refused here, never parsed), and the parser is
   told UTF-8 whatever the document says;
3. refuses any markup declaration (``<!DOCTYPE``, ``<!ENTITY``, ``<!ELEMENT`` …) found in the raw
   bytes (ENVELOPE_DTD_FORBIDDEN): no DTD ever reaches the parser, so entity-expansion bombs and
   external entities (XXE) are refused without being expanded or fetched;
4. parses with entity resolution, DTD loading and network access off, and checks again that the
   tree carries no DTD (defence in depth, in case step 3 was fooled);
5. refuses anything outside the root element but the XML declaration and whitespace — a
   processing instruction (``<?xml-stylesheet …?>``) or a comment
   (ENVELOPE_CONTENT_OUTSIDE_ROOT): the signature's exclusive c14n covers the root element only
   (``hub.validators._fastdsig.document_c14n``, and signxml likewise) while xmlsec1 digests the
   whole document node, so such markup would travel unsigned in bytes the hub routes as
   received, and xmlsec1 would refuse what the hub accepted;
6. enforces ``max_depth`` and ``max_elements`` (counted in C).

``huge_tree=True`` lifts libxml2's 10 MB text-node limit (an attachment is one base64 text node):
the hub's own limits judge large documents, not a parser default (signxml's
``processor.py`` follows the same pattern of one hardened parser).
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from hub.edxml.errors import EnvelopeRefused
from hub.reasons import Reason

if TYPE_CHECKING:
    from hub.config import LimitSettings

SCHEMA_FILE = "edxml-qcvn102-2016.xsd"


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits applied to every packet before and while it is parsed."""

    max_bytes: int = 50 * 1024 * 1024
    max_attachment_bytes: int = 40 * 1024 * 1024
    """Decoded size of one attachment."""
    max_depth: int = 64
    max_elements: int = 100_000
    max_key_info_certificates: int = 4
    """Certificates one signature's KeyInfo may carry (signer, issuing CA, a cross or root
    certificate: :mod:`hub.validators.xmldsig`, SIGNATURE_KEY_INFO_TOO_LARGE)."""
    max_certificate_bytes: int = 16 * 1024
    """Decoded size of one KeyInfo certificate (a specialized certificate is 1–2 KB)."""
    max_identifier_chars: int = 128
    """Identifiers the ledger indexes and stores in bounded columns: ``DocumentId`` (also in
    ``ResponseFor``, ``Bussiness``, ``ReplacementInfo``), ``CodeNumber``, ``CodeNotation`` and
    the code as stored (``number/notation``; ``ResponseFor/Code``), ``OrganId``, ``ContentId``,
    ``StatusCode`` (FIELD_TOO_LONG). 128 = ``VARCHAR(128)`` of ``hub.ledger.models``."""
    max_text_chars: int = 4096
    """Every other text field of the header, the status, the trace list, the manifest and the
    attachment metadata (names, addresses, subject, description, …): FIELD_TOO_LONG."""
    max_content_chars: int = 64 * 1024
    """``MessageHeader/Content`` (QCVN 102 §1.7), which may summarize the document."""

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> Limits:
        return cls(
            max_bytes=settings.max_envelope_bytes,
            max_attachment_bytes=settings.max_attachment_bytes,
            max_depth=settings.max_depth,
            max_elements=settings.max_elements,
        )


_XML_DECL = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8_NAMES = frozenset({b"utf-8", b"utf8"})
_FOREIGN_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
"""UTF-16 LE/BE and UTF-32 BE (UTF-32 LE, ``FF FE 00 00``, starts like UTF-16 LE)."""
_EBCDIC_DECLARATION = b"\x4c\x6f\xa7\x94"
"""``<?xm`` in EBCDIC: libxml2 would switch to EBCDIC on it (XML 1.0 Appendix F)."""


def _check_encoding(data: bytes) -> None:
    """UTF-8 only, decided on the raw bytes (module docstring, step 2)."""
    if data.startswith(_FOREIGN_BOMS):
        raise EnvelopeRefused(Reason.ENVELOPE_ENCODING_INVALID, "UTF-16/32 byte-order mark")
    nul = data.find(b"\x00")
    if nul != -1:
        raise EnvelopeRefused(
            Reason.ENVELOPE_ENCODING_INVALID,
            f"NUL byte at offset {nul} (UTF-16/32 or binary data; UTF-8 required)")
    if data.startswith(_EBCDIC_DECLARATION):
        raise EnvelopeRefused(Reason.ENVELOPE_ENCODING_INVALID, "EBCDIC-encoded document")
    match = _XML_DECL.match(data[:512])
    if match and match.group(1).lower() not in _UTF8_NAMES:
        name = match.group(1).decode("ascii", "replace")
        raise EnvelopeRefused(Reason.ENVELOPE_ENCODING_INVALID, f"declared encoding {name!r}")


def _check_no_markup_declarations(data: bytes) -> None:
    """Refuse any ``<!`` that does not open a comment or a CDATA section.

    A DTD is the only other construct starting with ``<!``; base64 never contains ``<``. A
    ``<!DOCTYPE`` quoted inside a comment is refused too, which costs nothing legitimate.
    """
    if b"!" not in data:  # one memchr: most packets have no "!" at all
        return
    # The first "<!" opening neither a comment nor a CDATA section, found in C (a find() loop
    # over "<!" cost ~7 µs per 10 KB packet: CPython's two-byte search is slow).
    found = _MARKUP_DECLARATION.search(data)
    if found is not None:
        raise EnvelopeRefused(
            Reason.ENVELOPE_DTD_FORBIDDEN, f"markup declaration at byte {found.start()}"
        )


_MARKUP_DECLARATION = re.compile(rb"<!(?!--|\[CDATA\[)")


def _new_parser() -> etree.XMLParser:
    # A parser per call: lxml parser objects must not be shared between threads.
    return etree.XMLParser(
        encoding="utf-8",  # never guessed from the document (step 2 already refused the rest)
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=True,
        remove_comments=False,
    )


def _syntax_reason(exc: etree.XMLSyntaxError) -> Reason:
    message = str(exc).lower()
    if "encoding" in message or "utf-8" in message or "not proper utf" in message:
        return Reason.ENVELOPE_ENCODING_INVALID
    if "entity" in message and ("undefined" in message or "declared" in message):
        return Reason.ENVELOPE_DTD_FORBIDDEN
    return Reason.ENVELOPE_MALFORMED


def _check_outside_root(root: etree._Element) -> None:
    """Nothing but the declaration and whitespace outside the root (module docstring, step 5).

    lxml keeps top-level comments and processing instructions as siblings of the root element
    (whitespace there is not kept; the XML declaration is no node)."""
    for where, nodes in (("before", root.itersiblings(preceding=True)),
                         ("after", root.itersiblings())):
        for node in nodes:
            kind = ("processing instruction" if isinstance(node, etree._ProcessingInstruction)
                    else "comment" if isinstance(node, etree._Comment) else "node")
            raise EnvelopeRefused(
                Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT,
                f"{kind} {where} the root element (line {node.sourceline}): it would travel "
                "unsigned")


@functools.lru_cache(maxsize=8)
def _over_shape(max_depth: int) -> etree.XPath:
    """True when the tree has more than ``$n`` elements or an element below ``max_depth``
    levels: one XPath, evaluated in C."""
    return etree.XPath("count(//*) > $n or boolean(/*" + "/*" * max_depth + ")")


def _check_shape(root: etree._Element, limits: Limits) -> None:
    """``max_depth`` and ``max_elements``, judged in C (a Python walk over every element cost
    ~25–40 µs per 10 KB packet, this ~5 µs); a packet over either limit is walked again in
    document order, so the reason named is the one :func:`_walk_shape` meets first, as always."""
    if limits.max_depth > _XPATH_DEPTH_CAP or _over_shape(limits.max_depth)(
            root, n=limits.max_elements):
        _walk_shape(root, limits)


_XPATH_DEPTH_CAP = 256
"""Deeper limits (a re-read with generous limits) are walked: libxml2 refuses an XPath of
thousands of steps."""


def _walk_shape(root: etree._Element, limits: Limits) -> None:
    count = 0
    depth = 0
    for event, _node in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            count += 1
            if depth > limits.max_depth:
                raise EnvelopeRefused(
                    Reason.ENVELOPE_TOO_DEEP, f"nesting deeper than {limits.max_depth}"
                )
            if count > limits.max_elements:
                raise EnvelopeRefused(
                    Reason.ENVELOPE_TOO_MANY_ELEMENTS, f"more than {limits.max_elements} elements"
                )
        else:
            depth -= 1


def parse_xml(data: bytes, limits: Limits) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise :class:`EnvelopeRefused`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml expects bytes")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise EnvelopeRefused(
            Reason.ENVELOPE_TOO_LARGE, f"{len(data)} bytes > limit {limits.max_bytes}"
        )
    if not data.strip():
        raise EnvelopeRefused(Reason.ENVELOPE_MALFORMED, "empty packet")
    _check_encoding(data)
    _check_no_markup_declarations(data)
    try:
        root = etree.fromstring(data, _new_parser())
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None)
        raise EnvelopeRefused(_syntax_reason(exc), f"line {line}: {exc.msg}") from None
    if root is None:
        raise EnvelopeRefused(Reason.ENVELOPE_MALFORMED, "no root element")
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise EnvelopeRefused(Reason.ENVELOPE_DTD_FORBIDDEN, "document type declaration")
    _check_outside_root(root)
    _check_shape(root, limits)
    return root


@functools.cache
def schema_bytes() -> bytes:
    """The EDXML schema shipped as package data (read once)."""
    return (importlib.resources.files("hub.edxml") / "schemas" / SCHEMA_FILE).read_bytes()


_per_thread = threading.local()


def schema() -> etree.XMLSchema:
    """The compiled EDXML schema, cached per thread.

    An ``XMLSchema`` keeps its ``error_log`` on the object, so two threads validating with one
    instance could read each other's errors; one instance per thread avoids that.
    """
    compiled: etree.XMLSchema | None = getattr(_per_thread, "schema", None)
    if compiled is None:
        compiled = etree.XMLSchema(etree.fromstring(schema_bytes(), _new_parser()))
        _per_thread.schema = compiled
    return compiled
