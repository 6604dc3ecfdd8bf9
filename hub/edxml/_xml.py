"""The hub's only XML parser entry point (hardened), and the cached EDXML schema.

Nothing else in ``hub/`` calls an lxml parser: every byte that arrives goes through
:func:`parse_xml`, which (in this order, cheapest first)

1. refuses a packet over ``limits.max_bytes`` before reading it (ENVELOPE_TOO_LARGE);
2. decides the encoding on the raw bytes, before any parser runs (ENVELOPE_ENCODING_INVALID) —
   QCVN 102 packets are UTF-8: UTF-16/32 byte-order marks, any NUL byte (UTF-16/32 without a
   byte-order mark, binary data; U+0000 is no XML character in any encoding), EBCDIC, and any
   declared encoding other than UTF-8 are refused. The XML declaration is read whole, however
   long (XML 1.0 §2.8 allows any whitespace inside it), and must be a well-formed ``XMLDecl``:
   the parser is told UTF-8 whatever the document says, while every other processor decodes
   the routed bytes in the declared encoding — a declaration read only in part would let the
   hub verify one text and route another. So the bytes step 3 scans are the characters the
   parser reads (``<\0!\0`` in UTF-16 is refused here, never parsed);
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
6. enforces ``max_depth`` and ``max_elements`` (counted in C), and bounds attributes and
   namespace declarations, per element and in total (ENVELOPE_TOO_MANY_ATTRIBUTES): lxml
   copies every in-scope namespace of the ancestors to validate or canonicalize a sub-element
   (the XMLDSig schema check of ``ds:Signature``, the c14n of ``SignedInfo``) and canonicalizes
   an element's attributes in quadratic time, all before any signature is checked — 32,000
   declarations on the signature slot (0.85 MB) cost 7 s of CPU, 64,000 attributes 12 s.

``huge_tree=True`` lifts libxml2's 10 MB text-node limit (an attachment is one base64 text node):
the hub's own limits judge large documents, not a parser default (signxml's
``processor.py`` follows the same pattern of one hardened parser).
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
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
    max_attributes_per_element: int = 64
    """Attributes of one element, namespace declarations aside (ENVELOPE_TOO_MANY_ATTRIBUTES).
    QCVN 102's schema declares at most 4 on one element (``id``, ``version``,
    ``mustUnderstand``, ``actor``), XMLDSig 3 (``ds:Reference``); the vectors of
    ``tests/vectors`` carry at most 4. c14n orders an element's attributes in quadratic time."""
    max_attributes: int = 4096
    """Attributes of the whole packet, namespace declarations aside (a signed envelope carries
    about 15, 6 more per further signature)."""
    max_namespace_declarations_per_element: int = 32
    """``xmlns`` and ``xmlns:…`` declarations on one element (signers declare 1, at most 3)."""
    max_namespace_declarations: int = 1024
    """Declarations in the whole packet (a signed envelope carries 4–6). lxml copies every
    in-scope namespace to check or canonicalize a sub-element, at a cost that grows with their
    square: 1,016 declarations over a signed envelope's elements (30 on each) add ~2 ms to its
    ~22 ms of validation (PDF signatures included), where 32,000 on one element cost 7 s."""
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


_S = rb"[ \t\r\n]"
"""XML white space (XML 1.0 §2.3 ``S``): not Python's ``\\s``, which takes ``\\v`` and ``\\f``."""
_EQ = _S + rb"*+=" + _S + rb"*+"
_XML_DECLARATION = re.compile(
    # XML 1.0 §2.8 XMLDecl (VersionNum '1.' [0-9]+, which takes XML 1.1 too), §4.3.3
    # EncodingDecl, §2.9 SDDecl. Possessive quantifiers keep the match linear in the length of
    # the declaration, however much white space it holds: no value may give any back to S.
    rb"<\?xml" + _S + rb"++version" + _EQ + rb"""(?P<q1>["'])1\.[0-9]++(?P=q1)"""
    + rb"(?:" + _S + rb"++encoding" + _EQ
    + rb"""(?P<q2>["'])(?P<encoding>[A-Za-z][A-Za-z0-9._-]*+)(?P=q2))?"""
    + rb"(?:" + _S + rb"++standalone" + _EQ + rb"""(?P<q3>["'])(?:yes|no)(?P=q3))?"""
    + _S + rb"*+\?>"
)
_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARATION_OPENINGS = tuple(b"<?xml" + blank for blank in (b" ", b"\t", b"\r", b"\n"))
"""What opens an XML declaration (libxml2 reads one exactly there; ``<?xml-stylesheet`` is a
processing instruction)."""
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
    declared = _declared_encoding(data)
    if declared is not None and declared.lower() not in _UTF8_NAMES:
        name = declared.decode("ascii")  # the grammar admits ASCII letters, digits and ._- only
        raise EnvelopeRefused(Reason.ENVELOPE_ENCODING_INVALID, f"declared encoding {name!r}")


def _declared_encoding(data: bytes) -> bytes | None:
    """The encoding the XML declaration names; None without a declaration or an encoding
    (UTF-8 then, XML 1.0 §4.3.3).

    The declaration is read whole, up to its first ``?>`` (none of its values may hold a
    ``?``), with no byte window: white space inside it is unbounded, and a window let a
    ``encoding='ISO-8859-1'`` placed after byte 512 through. Only a declaration at the very
    start (after a UTF-8 byte-order mark) is one; ``<?xml`` anywhere else is refused by the
    parser. A declaration that is not a well-formed ``XMLDecl`` is refused here (any reading
    of it is a guess, and another processor might guess an encoding)."""
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    if not data.startswith(_DECLARATION_OPENINGS, start):
        return None
    end = data.find(b"?>", start)
    declaration = None if end == -1 else _XML_DECLARATION.fullmatch(data, start, end + 2)
    if declaration is None:
        raise EnvelopeRefused(
            Reason.ENVELOPE_MALFORMED,
            "the XML declaration is not well-formed (XML 1.0 §2.8: version, then encoding and "
            "standalone, each at most once, quoted)")
    encoding: bytes | None = declaration["encoding"]
    return encoding


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
    """True when the tree has more than ``$n`` elements, an element below ``max_depth`` levels
    or more than ``$attributes`` attributes: one XPath, evaluated in C (XPath's ``@*`` leaves
    namespace declarations out)."""
    return etree.XPath(
        "count(//*) > $n or boolean(/*" + "/*" * max_depth + ") or count(//*/@*) > $attributes")


def _check_shape(root: etree._Element, limits: Limits, data: bytes | None = None) -> None:
    """The shape limits (depth, elements, attributes, namespace declarations), judged in C (a
    Python walk over every element cost ~25–40 µs per 10 KB packet, this ~8 µs, of which the
    attribute and declaration counts ~3.5; ~12 µs at 1 MB); a packet that may be over one of
    them is walked again in document order, so the reason named is the one :func:`_walk_shape`
    meets first, as always.

    Attributes and declarations are counted in the whole packet against the smaller of their
    two limits: a packet with no more than that is within both (a signed envelope carries ~15
    attributes and ~5 declarations); only a packet with more is walked. ``data``: the bytes
    ``root`` was parsed from (:func:`_over_declarations`)."""
    attributes = min(limits.max_attributes_per_element, limits.max_attributes)
    declarations = min(limits.max_namespace_declarations_per_element,
                       limits.max_namespace_declarations)
    if limits.max_depth > _XPATH_DEPTH_CAP or _over_shape(limits.max_depth)(
            root, n=limits.max_elements, attributes=attributes) or _over_declarations(
            root, data, declarations):
        _walk_shape(root, limits)


def _over_declarations(root: etree._Element, data: bytes | None, bound: int) -> bool:
    """True when the tree may hold more than ``bound`` namespace declarations.

    XPath sees only the namespaces in scope (counting them is quadratic: each element inherits
    its ancestors'). Every declaration is written ``xmlns`` in the bytes (no reference can
    stand for a name, and no DTD adds any), so in a small packet counting that word decides in
    C (~0.12 µs per KB); a larger packet, or one whose text holds the word, is walked by lxml
    from C (~5 µs for an envelope's ~65 elements, whatever the size of its text), stopping at
    the declaration past the bound (lxml queues an element's declarations and pops each from
    the front: popping them all would be quadratic too)."""
    if data is not None and len(data) <= _SCAN_BYTES and data.count(b"xmlns") <= bound:
        return False
    beyond = itertools.islice(etree.iterwalk(root, events=("start-ns",)), bound, None)
    return next(beyond, None) is not None


_SCAN_BYTES = 32 * 1024
"""Up to this size counting ``xmlns`` in the bytes costs less than walking the tree (a 10 KB
envelope: ~1.5 µs against ~5 µs; 64 KB: ~8 µs; 1 MB of base64: ~1.4 ms)."""


_XPATH_DEPTH_CAP = 256
"""Deeper limits (a re-read with generous limits) are walked: libxml2 refuses an XPath of
thousands of steps."""


def _walk_shape(root: etree._Element, limits: Limits) -> None:
    count = 0
    depth = 0
    attributes = 0
    declarations = 0
    own_declarations = 0  # of the element whose "start" comes next: lxml reports them first
    for event, node in etree.iterwalk(root, events=("start", "end", "start-ns")):
        if event == "start-ns":
            # Judged at once, not at the element's start: an element's declarations are
            # queued together and popped from the front (quadratic if all were popped).
            own_declarations += 1
            declarations += 1
            if own_declarations > limits.max_namespace_declarations_per_element:
                raise EnvelopeRefused(
                    Reason.ENVELOPE_TOO_MANY_ATTRIBUTES,
                    f"more than {limits.max_namespace_declarations_per_element} namespace "
                    "declarations on one element")
            if declarations > limits.max_namespace_declarations:
                raise EnvelopeRefused(
                    Reason.ENVELOPE_TOO_MANY_ATTRIBUTES,
                    f"more than {limits.max_namespace_declarations} namespace declarations")
        elif event == "start":
            own_declarations = 0
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
            own = len(node.attrib)
            attributes += own
            if own > limits.max_attributes_per_element:
                raise EnvelopeRefused(
                    Reason.ENVELOPE_TOO_MANY_ATTRIBUTES,
                    f"line {node.sourceline}: more than {limits.max_attributes_per_element} "
                    "attributes on one element")
            if attributes > limits.max_attributes:
                raise EnvelopeRefused(
                    Reason.ENVELOPE_TOO_MANY_ATTRIBUTES,
                    f"line {node.sourceline}: more than {limits.max_attributes} attributes")
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
    _check_shape(root, limits, data)
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
