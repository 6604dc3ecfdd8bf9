"""Receipts canonical by construction: their bytes and exclusive c14n written from a template.

:func:`~hub.receipts.content.build_receipt_tree` builds a receipt as an lxml tree, and
:func:`~hub.trust.signing.sign_tree` canonicalizes and serializes it: the reference. The hub's
hot path writes the same receipt as text instead (issue 23): the document as lxml serializes it,
split where the signature goes, and — at the same time — its exclusive c14n without the
signature, which is what the enveloped-signature transform hashes. Nothing is parsed, built or
canonicalized by lxml; :func:`~hub.trust.signing.presign` then adds the signature around a
SignedInfo that is already in c14n form.

Both texts follow what libxml2 writes, field by field:

* the serialization escapes ``& < >`` in text (``\\r`` as ``&#13;``) and ``& < > "`` plus
  tab, newline and carriage return in attributes, and closes an empty element with ``/>``;
* exclusive c14n (W3C Exclusive XML Canonicalization 1.0, after Canonical XML 1.0 §2.3) escapes
  ``& < >`` and ``\\r`` (``&#xD;``) in text and ``& < "`` plus tab, newline and carriage return
  in attributes, writes empty elements as a start and an end tag, declares a namespace where it
  is first used, and orders attributes by namespace then local name;
* a string holding a character XML 1.0 does not allow (NUL, other C0 controls, U+FFFE, U+FFFF,
  a lone surrogate) is refused with ``ValueError``, as lxml refuses it.

``tests/unit/test_receipt_template.py`` proves the bytes identical to the tree path on every
receipt kind and on adversarial field values (markup characters, carriage returns, Vietnamese and
astral characters, long fields); xmlsec1 verifies the signed result. Pure: no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from hub.edxml.build import format_timestamp
from hub.edxml.model import NS, Organization
from hub.edxml.orgcode import format_date
from hub.reasons import Reason
from hub.receipts.content import (
    HUB_NS,
    ReceiptKind,
    checked_request,
    evidence_time,
    promulgation_date,
    standard_code,
)

__all__ = ["RenderedReceipt", "render_receipt"]

_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
"""What ``etree.tostring(root, encoding="UTF-8", xml_declaration=True)`` writes first."""
_PLAIN = re.compile("[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Any character that needs escaping in text (``& < > \\r``) or that XML does not allow."""
_PLAIN_ATTRIBUTE = re.compile(
    "[^\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""The same for an attribute value (also ``"``, tab and newline)."""
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_XML_MESSAGE = ("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or "
                    "control characters")
"""lxml's own words for the same refusal."""


def _checked(value: str) -> str:
    if _NOT_XML.search(value) is not None:
        raise ValueError(_NOT_XML_MESSAGE)
    return value.replace("&", "&amp;").replace("<", "&lt;")


def _text(value: str) -> tuple[str, str]:
    """Element text as serialized and as canonicalized."""
    if _PLAIN.search(value) is None:
        return value, value
    common = _checked(value).replace(">", "&gt;")
    return common.replace("\r", "&#13;"), common.replace("\r", "&#xD;")


def _attribute(value: str) -> tuple[str, str]:
    """An attribute value as serialized and as canonicalized (c14n keeps ``>``)."""
    if _PLAIN_ATTRIBUTE.search(value) is None:
        return value, value
    common = _checked(value).replace('"', "&quot;")
    serialized = (common.replace(">", "&gt;").replace("\t", "&#9;").replace("\n", "&#10;")
                  .replace("\r", "&#13;"))
    canonical = common.replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;")
    return serialized, canonical


class _Writer:
    """The serialized text and its exclusive c14n, written side by side."""

    __slots__ = ("c14n", "doc")

    def __init__(self) -> None:
        self.doc: list[str] = []
        self.c14n: list[str] = []

    def both(self, text: str) -> None:
        self.doc.append(text)
        self.c14n.append(text)

    def block(self, texts: tuple[str, str]) -> None:
        self.doc.append(texts[0])
        self.c14n.append(texts[1])

    def leaf(self, indent: str, tag: str, text: str | None, start_tag: str | None = None,
             start_tag_c14n: str | None = None) -> None:
        """``indent`` then one element holding only text (none: an empty element, as
        ``build.py``'s ``_sub`` leaves it for an empty value)."""
        start = start_tag or tag
        start_c14n = start_tag_c14n or start
        if not text:
            self.doc.append(f"{indent}<{start}/>")
            self.c14n.append(f"{indent}<{start_c14n}></{tag}>")
            return
        doc, c14n = _text(text)
        self.doc.append(f"{indent}<{start}>{doc}</{tag}>")
        self.c14n.append(f"{indent}<{start_c14n}>{c14n}</{tag}>")


@dataclass(frozen=True, slots=True)
class RenderedReceipt:
    """An unsigned receipt, split where its signature goes (:func:`hub.trust.signing.presign`)."""

    before: bytes
    """XML declaration and document up to the signature (inside ``edXML:DigitalSignature``)."""
    after: bytes
    """The document after the signature."""
    c14n: bytes
    """Exclusive c14n of the document without the signature: what its DigestValue is over."""


_L2, _L3, _L4, _L5 = "\n  ", "\n    ", "\n      ", "\n        "
_L6 = "\n          "
_ORGANIZATION_FIELDS = ("organ_id", "organization_in_charge", "organ_name", "organ_add", "email",
                        "telephone", "fax", "website")
_ORGANIZATION_TAGS = ("OrganId", "OrganizationInCharge", "OrganName", "OrganAdd", "Email",
                      "Telephone", "Fax", "Website")
_HEAD = (f'<edXML xmlns="{NS}">{_L2}<edXML:edXMLEnvelope xmlns:edXML="{NS}">'
         f"{_L3}<edXML:edXMLHeader>{_L4}<edXML:Status>{_L5}<edXML:ResponseFor>")
_AFTER = (f"{_L4}</edXML:DigitalSignature>{_L3}</edXML:edXMLHeader>{_L3}<edXML:edXMLBody/>"
          f"{_L2}</edXML:edXMLEnvelope>\n</edXML>").encode()
_AFTER_C14N = (f"{_L4}</edXML:DigitalSignature>{_L3}</edXML:edXMLHeader>"
               f"{_L3}<edXML:edXMLBody></edXML:edXMLBody>{_L2}</edXML:edXMLEnvelope>\n</edXML>")


# The parts that repeat from one receipt to the next are written once (what lxml refuses in
# them is refused again on each call: a raised exception is not cached).


@functools.lru_cache(maxsize=64)
def _from_block(org: Organization) -> tuple[str, str]:
    """End of ResponseFor and the reporter's ``From``."""
    w = _Writer()
    w.both(f"{_L5}</edXML:ResponseFor>{_L5}<edXML:From>")
    for field, tag in zip(_ORGANIZATION_FIELDS, _ORGANIZATION_TAGS, strict=True):
        w.leaf(_L6, f"edXML:{tag}", getattr(org, field))
    w.both(f"{_L5}</edXML:From>")
    return "".join(w.doc), "".join(w.c14n)


@functools.lru_cache(maxsize=64)
def _from_code(organ_id: str) -> tuple[str, str]:
    """:func:`_from_block` of a reporter given by its code alone (no Organization built)."""
    return _from_block(Organization(organ_id=organ_id))


@functools.lru_cache(maxsize=256)
def _status_block(code: str, description: str) -> tuple[str, str]:
    w = _Writer()
    w.leaf(_L5, "edXML:StatusCode", code)
    w.leaf(_L5, "edXML:Description", description)
    return "".join(w.doc), "".join(w.c14n)


@functools.lru_cache(maxsize=256)
def _reason_block(reason: Reason) -> tuple[str, str]:
    w = _Writer()
    w.leaf(_L5, "hub:ReasonText", reason.vi, 'hub:ReasonText xml:lang="vi"')
    w.leaf(_L5, "hub:ReasonText", reason.en, 'hub:ReasonText xml:lang="en"')
    return "".join(w.doc), "".join(w.c14n)


def render_receipt(
    kind: ReceiptKind | str,
    *,
    envelope_raw: bytes,
    signature_value: bytes,
    sender: str,
    document_id: str,
    code: str,
    reporter: Organization | str,
    at: datetime,
    reason: Reason | None = None,
    detail: str = "",
    status_code: str | None = None,
    recipient: str | None = None,
    envelope_digest: str | None = None,
) -> RenderedReceipt:
    """The receipt :func:`~hub.receipts.content.build_receipt_tree` builds (same arguments,
    same checks), written as text: its serialization around the signature and its c14n."""
    kind, description = checked_request(kind, reason, status_code)
    w = _Writer()
    w.both(_HEAD)
    promulgated = format_date(promulgation_date(document_id, at))
    if (sender and code and document_id
            and _PLAIN.search(f"{sender}{code}{promulgated}{document_id}") is None):
        # Non-empty text that needs no escaping (the usual case) is written alike in both.
        w.both(f"{_L6}<edXML:OrganId>{sender}</edXML:OrganId>{_L6}<edXML:Code>{code}</edXML:Code>"
               f"{_L6}<edXML:PromulgationDate>{promulgated}</edXML:PromulgationDate>"
               f"{_L6}<edXML:DocumentId>{document_id}</edXML:DocumentId>")
    else:
        w.leaf(_L6, "edXML:OrganId", sender)
        w.leaf(_L6, "edXML:Code", code)
        w.leaf(_L6, "edXML:PromulgationDate", promulgated)
        w.leaf(_L6, "edXML:DocumentId", document_id)
    w.block(_from_block(reporter) if isinstance(reporter, Organization) else _from_code(reporter))
    w.block(_status_block(standard_code(kind, status_code), description))
    # Digits, "/", " " and ":" only: never escaped, never empty.
    w.both(f"{_L5}<edXML:Timestamp>{format_timestamp(at)}</edXML:Timestamp>"
           f"{_L4}</edXML:Status>")
    # hub:HubEvidence: attributes in insertion order when serialized, sorted in c14n.
    attributes = {"version": "1", "kind": kind.value, "at": evidence_time(at)}
    if reason is not None:
        attributes["reason"] = reason.value
    if status_code is not None:
        attributes["status"] = status_code
    if recipient is not None:
        attributes["recipient"] = recipient
    # Values that need no escaping (the usual case, one search for all) are written as given.
    escaped = ({name: (value, value) for name, value in attributes.items()}
               if _PLAIN_ATTRIBUTE.search("".join(attributes.values())) is None
               else {name: _attribute(value) for name, value in attributes.items()})
    declaration = f'{_L4}<hub:HubEvidence xmlns:hub="{HUB_NS}"'
    w.doc.append(declaration + "".join(f' {name}="{doc}"'
                                       for name, (doc, _) in escaped.items()) + ">")
    w.c14n.append(declaration + "".join(f' {name}="{escaped[name][1]}"'
                                        for name in sorted(escaped)) + ">")
    digest = envelope_digest or hashlib.sha256(envelope_raw).hexdigest()
    alg = 'alg="sha-256"'
    w.leaf(_L5, "hub:EnvelopeDigest", digest, f"hub:EnvelopeDigest {alg}")
    if signature_value:
        # A hex digest: never escaped, never empty.
        w.both(f'{_L5}<hub:SignatureValueDigest {alg}>'
               f"{hashlib.sha256(signature_value).hexdigest()}</hub:SignatureValueDigest>")
    if reason is not None:
        w.block(_reason_block(reason))
    if detail:
        w.leaf(_L5, "hub:Detail", detail)
    w.both(f"{_L4}</hub:HubEvidence>{_L4}<edXML:DigitalSignature>{_L5}")
    w.c14n.append(_AFTER_C14N)
    return RenderedReceipt(before=(_DECLARATION + "".join(w.doc)).encode(), after=_AFTER,
                           c14n="".join(w.c14n).encode())
