"""The hub's XMLDSig profile for EDXML packets, enforced (pure: no I/O).

The profile (produced by :func:`hub.trust.signing.sign_xml`):

- exactly **one** ``ds:Signature`` in the packet (SIGNATURE_MISSING / SIGNATURE_MULTIPLE), in
  one of two places under ``edXML/edXMLEnvelope/edXMLHeader`` — otherwise
  SIGNATURE_WRAPPING_SUSPECTED:

  1. the **standard slot**: the only child of ``edXML:DigitalSignature``, itself the last child
     of ``edXMLHeader`` (QCVN 102:2016 names this element; the SDK samples leave it in the
     header and stock tools such as xmlsec1 fill it; the hub's builder puts its placeholder
     there by default);
  2. the **last child of** ``edXMLHeader`` (some tools; the hub's earlier output), an empty
     ``edXML:DigitalSignature`` possibly before it (only whitespace in it: the slot is opaque to
     the schema, and a filled one could hide a second, signed ``MessageHeader``).

  Nothing but whitespace may follow the signature (or the slot) or share the slot with it; a
  signature in both places is two signatures; no ``ds:Object``. Why neither placement opens a
  wrapping attack (McIntosh & Austel 2005; Somorovsky et al. 2012): the one ``Reference`` is
  ``URI=""`` — the whole document, attachments included — and its enveloped-signature transform
  removes exactly that ``ds:Signature`` element (W3C XMLDSig §6.6.4), nothing else; the slot
  element stays and is digested. The signed content is therefore the very tree the parser
  reads the header, the routing and the attachments from: there is no second copy to point the
  reference at (``#Id`` references, XPath transforms and extra references are refused), and a
  fixed position leaves no room to move the signature around signed content;
- ``SignedInfo`` canonicalized with exclusive c14n, signed with RSA-SHA256/384/512 (or RSA-PSS);
  SHA-1, MD5, DSA, HMAC and anything else are SIGNATURE_ALGORITHM_FORBIDDEN;
- exactly one ``Reference`` with ``URI=""`` and the transforms enveloped-signature then exclusive
  c14n, digest SHA-256/384/512. Anything else is SIGNATURE_SCOPE_INCOMPLETE: QCVN 102 places the
  attachments *outside* ``edXMLEnvelope``, so only a whole-document reference protects the files;
- ``KeyInfo/X509Data`` carries the signer certificate (SIGNATURE_CERTIFICATE_MISSING), whose RSA
  key has at least ``policy.min_rsa_bits`` bits (SIGNATURE_KEY_TOO_WEAK). KeyInfo is not covered
  by the signature, so it is bounded before anything in it is decoded: at most
  ``Limits.max_key_info_certificates`` certificates of at most ``Limits.max_certificate_bytes``
  each (SIGNATURE_KEY_INFO_TOO_LARGE); every certificate is read once, whole, inside one guard,
  and a malformed one (DER, extensions, names, key or algorithm cryptography cannot read) is
  SIGNATURE_CERTIFICATE_MISSING — never an internal error in a later step. KeyInfo carries
  only what signing tools write and the hub can vouch for: ``X509Data`` with the certificates
  and, filled or left empty, ``X509SubjectName`` / ``X509IssuerSerial`` / ``X509SKI`` naming
  the signer's certificate, and one ``KeyValue`` that is the signer's RSA key. A
  ``RetrievalMethod`` (which xmlsec1 dereferences at the recipient), ``KeyName``, ``PGPData``,
  ``SPKIData``, ``MgmtData``, ``X509CRL``, a foreign element, text, or a name or key of anyone
  else is SIGNATURE_INVALID;
- an empty ``ds:Signature`` (the builder's placeholder, never signed) is SIGNATURE_MISSING;
- the ``ds:Signature`` element is valid against the XMLDSig schema signxml ships (element
  order, no foreign children; so no ``InclusiveNamespaces``), otherwise SIGNATURE_INVALID;
- ``SignatureValue`` and ``DigestValue`` are plain, non-empty base64 (no markup inside),
  otherwise SIGNATURE_INVALID; base64 there and in ``X509Certificate`` may carry only the XML
  whitespace characters space, tab, CR and LF — as xmlsec1 decodes it (U+0085, U+00A0, U+2028,
  U+3000 … are refused: ``tests/interop`` checks the two agree); no text after the signature
  (SIGNATURE_WRAPPING_SUSPECTED).

The parsed KeyInfo certificates are cached (:class:`SignerCache`) only after the signature
verified with them, by the SHA-256 of their texts, bounded in bytes held and in entries;
failures are never cached.

``legacy_sha1=True`` is used only by the national-axis interop policy (:mod:`hub.validators`):
the same profile, except that rsa-sha1 and a SHA-1 digest are verified instead of refused — to
prove the legacy signature is otherwise sound (a digest mismatch is never waived); SHA-1 proves
nothing about who signed, so the waiver rests on the PDF signatures.

Then the signature is verified directly on the parsed tree (:mod:`hub.validators._fastdsig`:
exclusive c14n of ``SignedInfo``, one RSA verify, exclusive c14n of the document minus the
signature, digest compared in constant time; a comment in the document, which ``URI=""`` leaves
unsigned, is SIGNATURE_WRAPPING_SUSPECTED). The legacy SHA-1 algorithms and a KeyInfo that also
carries a ``KeyValue`` go through signxml instead, with a fresh ``XMLVerifier`` per packet,
against the leaf certificate the hub picked itself (``x509_cert=``; the chain is judged by
:mod:`hub.validators.trust`), and the hub checks that what signxml says is signed is the whole
document minus the signature ("see what is signed"). :func:`verify_with_signxml` runs every
packet through signxml: the reference the direct path is proven equal to
(``tests/unit/validators/test_xmldsig_fast_path.py``).
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    InvalidSignature,
    SignXMLException,
)
from signxml.processor import get_schema

from hub.edxml._xml import Limits, _new_parser, parse_xml
from hub.edxml.b64 import strict_b64decode
from hub.edxml.errors import EnvelopeRefused
from hub.reasons import Reason
from hub.validators import _fastdsig
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import TrustPolicy, read_certificate

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"
EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS = f"{{{DS_NS}}}"
ED = f"{{{EDXML_NS}}}"
# Clark-notation tags, spelt once (an f-string per look-up costs on the hot path).
_SIGNATURE = f"{DS}Signature"
_SIGNED_INFO = f"{DS}SignedInfo"
_OBJECT = f"{DS}Object"
_C14N_METHOD = f"{DS}CanonicalizationMethod"
_SIGNATURE_METHOD = f"{DS}SignatureMethod"
_REFERENCE = f"{DS}Reference"
_TRANSFORMS = f"{DS}Transforms"
_TRANSFORM = f"{DS}Transform"
_DIGEST_METHOD = f"{DS}DigestMethod"
_DIGEST_VALUE = f"{DS}DigestValue"
_SIGNATURE_VALUE = f"{DS}SignatureValue"
_KEY_INFO = f"{DS}KeyInfo"
_X509_DATA = f"{DS}X509Data"
_X509_CERTIFICATE = f"{DS}X509Certificate"
_X509_SUBJECT_NAME = f"{DS}X509SubjectName"
_X509_ISSUER_SERIAL = f"{DS}X509IssuerSerial"
_X509_ISSUER_NAME = f"{DS}X509IssuerName"
_X509_SERIAL_NUMBER = f"{DS}X509SerialNumber"
_X509_SKI = f"{DS}X509SKI"
_X509_REFERENCES = frozenset({_X509_SUBJECT_NAME, _X509_ISSUER_SERIAL, _X509_SKI})
"""The X509Data children that name a certificate rather than carry one."""
_KEY_VALUE = f"{DS}KeyValue"
_RSA_KEY_VALUE = f"{DS}RSAKeyValue"
_MODULUS = f"{DS}Modulus"
_EXPONENT = f"{DS}Exponent"
_DER_KEY_VALUE = f"{{{DSIG11_NS}}}DEREncodedKeyValue"
_SLOT = f"{ED}DigitalSignature"
_HEADER = f"{ED}edXMLHeader"
_ENVELOPE = f"{ED}edXMLEnvelope"

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALLOWED_SIGNATURE_METHODS = frozenset({
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
    "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
    "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
})
ALLOWED_DIGESTS = frozenset({
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
})
REQUIRED_TRANSFORMS = (ENVELOPED, EXC_C14N)
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
LEGACY_SHA1 = frozenset({RSA_SHA1, SHA1_DIGEST})
"""The legacy algorithms of the envelope signatures in the Government Office's QCVN
102:2016/BTTTT SDK samples (rsa-sha1, sha1)."""

_GENEROUS = Limits(max_bytes=2**62, max_attachment_bytes=2**62, max_depth=10_000,
                   max_elements=2**62)
"""The packet already passed the configured limits when it was parsed; here it is only re-read."""
_DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class XmlSignature:
    """What a verified envelope signature tells the trust check."""

    leaf: x509.Certificate
    """The signer certificate (from KeyInfo; verified against the signature)."""
    offered: tuple[x509.Certificate, ...]
    """The other certificates KeyInfo carried (candidate intermediates, untrusted)."""
    signature_method: str
    digest_method: str


def _first(element: etree._Element, *tags: str) -> etree._Element | None:
    """``element.find("a/b/c")`` for Clark-notation tags — the first match in document order —
    without parsing a path on every call (lxml's ``find`` does; this is the hot path)."""
    head, rest = tags[0], tags[1:]
    for child in element.iterchildren(head):
        found = _first(child, *rest) if rest else child
        if found is not None:
            return found
    return None


def _by_tag(element: etree._Element) -> dict[Any, list[etree._Element]]:
    """The children of ``element`` by tag, in document order, in one pass (comments and
    processing instructions fall under their factory functions, never under a name)."""
    kids: dict[Any, list[etree._Element]] = {}
    for child in element:
        kids.setdefault(child.tag, []).append(child)
    return kids


def _one(kids: dict[Any, list[etree._Element]], tag: str) -> etree._Element | None:
    """The first child with ``tag`` (``element.find(tag)``) from :func:`_by_tag`."""
    found = kids.get(tag)
    return found[0] if found else None


def _algorithm(element: etree._Element | None) -> str:
    return "" if element is None else (element.get("Algorithm") or "")


def _wrapping(detail: str) -> ValidationFailure:
    return ValidationFailure(Reason.SIGNATURE_WRAPPING_SUSPECTED, detail)


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _last_element(parent: etree._Element) -> etree._Element:
    """The last child element of ``parent``, which holds at least one (the comments and
    processing instructions after it stepped over, from the end: no list of every child)."""
    last = parent[-1]
    while not isinstance(last.tag, str):
        last = cast(etree._Element, last.getprevious())
    return last


def _has_element_child(element: etree._Element) -> bool:
    """Whether ``element`` has a child element (comments and processing instructions aside):
    lxml's element-only child filter, no proxy per child."""
    return next(element.iterchildren(etree.Element), None) is not None


def _carries_key_value(key_info: etree._Element) -> bool:
    """Whether ``key_info`` has a ``KeyValue`` or ``dsig11:DEREncodedKeyValue`` child (one
    look-up for both names)."""
    return next(key_info.iterchildren(_KEY_VALUE, _DER_KEY_VALUE), None) is not None


def _check_position(signature: etree._Element, root: etree._Element) -> None:
    """The one signature sits in one of the two accepted places (module docstring), and nothing
    but whitespace follows it there."""
    parent = signature.getparent()
    slot = parent if parent is not None and parent.tag == _SLOT else None
    header = parent if slot is None else slot.getparent()
    envelope = header.getparent() if header is not None else None
    if (
        header is None
        or header.tag != _HEADER
        or envelope is None
        or envelope.tag != _ENVELOPE
        or envelope.getparent() is not root
    ):
        raise _wrapping("ds:Signature is neither in edXMLHeader/edXML:DigitalSignature nor the "
                        "last child of edXMLHeader of edXML/edXMLEnvelope")
    last = _last_element(header)
    if slot is not None:
        if last is not slot:
            raise _wrapping("edXML:DigitalSignature holding ds:Signature is not the last child "
                            "of edXMLHeader")
        if [child for child in slot if isinstance(child.tag, str)] != [signature] or not (
            _blank(slot.text)
        ):
            raise _wrapping("edXML:DigitalSignature holds more than the ds:Signature")
        if not _blank(slot.tail):
            raise _wrapping("text after edXML:DigitalSignature in edXMLHeader")
    elif last is not signature:
        raise _wrapping("ds:Signature is not the last child of edXMLHeader")
    else:
        # At the end of the header the signature may follow only an EMPTY slot (the SDK's): the
        # slot is opaque to the schema, and a filled one — signed, so it verifies — could hide a
        # second MessageHeader that the hub never reads and a recipient searching descendants
        # does (issue 16 review, D4).
        for unused in header.iterchildren(_SLOT):
            if _has_element_child(unused) or not _blank(unused.text) or any(
                not _blank(child.tail) for child in unused
            ):
                raise _wrapping("edXML:DigitalSignature before a ds:Signature at the end of "
                                "edXMLHeader is not empty")
    if not _blank(signature.tail):
        # Text after the signature is no part of EDXML (and signxml cannot re-read a signature
        # serialized with it): refused on both paths.
        raise _wrapping("text after ds:Signature")


class _Profile(NamedTuple):
    """What :func:`_check_signed_info` established, and the elements it found on the way."""

    method: str
    digest: str
    kids: dict[Any, list[etree._Element]]
    """The ``ds:Signature``'s children by tag."""
    reference: dict[Any, list[etree._Element]]
    """The one ``Reference``'s children by tag."""

    def digest_value(self, signature: etree._Element) -> etree._Element | None:
        """``signature.find("SignedInfo/Reference/DigestValue")``: in the one Reference of the
        first SignedInfo, else (a malformed signature) searched as ``find`` would."""
        found = _one(self.reference, _DIGEST_VALUE)
        if found is None:
            found = _first(signature, _SIGNED_INFO, _REFERENCE, _DIGEST_VALUE)
        return found


def _check_signed_info(signature: etree._Element, legacy_sha1: bool) -> _Profile:
    kids = _by_tag(signature)
    if _OBJECT in kids:  # _by_tag lists are never empty
        raise ValidationFailure(
            Reason.SIGNATURE_WRAPPING_SUSPECTED, "ds:Object inside the signature")
    signed_info = _one(kids, _SIGNED_INFO)
    if signed_info is None:
        raise ValidationFailure(Reason.SIGNATURE_INVALID, "no SignedInfo")
    info = _by_tag(signed_info)
    c14n = _algorithm(_one(info, _C14N_METHOD))
    if c14n != EXC_C14N:
        raise ValidationFailure(
            Reason.SIGNATURE_ALGORITHM_FORBIDDEN, f"SignedInfo canonicalization {c14n!r}")
    method = _algorithm(_one(info, _SIGNATURE_METHOD))
    if method not in ALLOWED_SIGNATURE_METHODS and not (legacy_sha1 and method == RSA_SHA1):
        raise ValidationFailure(
            Reason.SIGNATURE_ALGORITHM_FORBIDDEN, f"signature method {method!r}",
            evidence={"signature_method": method})
    references = info.get(_REFERENCE, [])
    if len(references) != 1:
        raise ValidationFailure(
            Reason.SIGNATURE_SCOPE_INCOMPLETE, f"{len(references)} references (exactly 1 needed)")
    reference = references[0]
    uri = reference.get("URI")
    if uri != "":
        raise ValidationFailure(
            Reason.SIGNATURE_SCOPE_INCOMPLETE,
            f"reference URI {uri!r} does not cover the whole document")
    parts = _by_tag(reference)
    transforms: list[etree._Element] = []
    for parent in parts.get(_TRANSFORMS, ()):
        transforms.extend(parent.iterchildren(_TRANSFORM))
    algorithms = tuple(map(_algorithm, transforms))
    if algorithms != REQUIRED_TRANSFORMS or any(map(len, transforms)):
        raise ValidationFailure(
            Reason.SIGNATURE_SCOPE_INCOMPLETE, f"transforms {list(algorithms)}")
    digest = _algorithm(_one(parts, _DIGEST_METHOD))
    if digest not in ALLOWED_DIGESTS and not (legacy_sha1 and digest == SHA1_DIGEST):
        raise ValidationFailure(
            Reason.SIGNATURE_ALGORITHM_FORBIDDEN, f"digest method {digest!r}",
            evidence={"digest_method": digest})
    return _Profile(method, digest, kids, parts)


_B64_WHITESPACE = str.maketrans("", "", " \t\r\n")
"""The only characters base64 in XMLDSig may carry besides its alphabet (XML whitespace; W3C
XMLDSig §4.0.1 ``base64Binary``): xmlsec1 skips exactly these. ``str.split()`` would also skip
U+0085, U+00A0, U+2028, U+3000 …, which the reference implementation refuses (issue 16, L1)."""


def _b64_text(text: str | None) -> str:
    """``text`` without the four XML whitespace characters (:data:`_B64_WHITESPACE`'s
    deletions; four ``str.replace`` are several times faster than ``translate``)."""
    return (text or "").replace("\n", "").replace(" ", "").replace("\t", "").replace("\r", "")


class _KeyInfo(NamedTuple):
    """What KeyInfo carries, read by :func:`_read_key_info` (nothing decoded yet)."""

    texts: tuple[str, ...]
    """The ``X509Certificate`` texts as they are (whitespace included: decoding drops it,
    :func:`_load_signer`)."""
    references: tuple[etree._Element, ...]
    """The filled ``X509SubjectName`` / ``X509IssuerSerial`` / ``X509SKI``: each must name the
    signer's certificate (:func:`_check_key_info_claims`)."""
    key_value: etree._Element | None
    """The one ``KeyValue``, if any: it must be the signer's key."""


def _ds_name(tag: str) -> str:
    """``ds:Local`` for an XMLDSig tag, the Clark name of any other (for refusal texts)."""
    return f"ds:{tag[len(DS):]}" if tag.startswith(DS) else tag


def _key_info_refused(what: str) -> ValidationFailure:
    return ValidationFailure(
        Reason.SIGNATURE_INVALID,
        f"KeyInfo carries {what}: only X509Data (X509Certificate, and X509SubjectName, "
        "X509IssuerSerial or X509SKI naming the signer's certificate) and a KeyValue holding "
        "the signer's key are accepted")


def _read_key_info(
    signature: etree._Element, limits: Limits,
    kids: dict[Any, list[etree._Element]] | None = None,
) -> _KeyInfo:
    """What KeyInfo carries, refused unless it is what real signing tools write, and bounded
    before anything is decoded.

    KeyInfo is outside what the signature covers (anyone can add to it in transit), and the
    XMLDSig schema lets it hold almost anything (issue 16 review, D3). A recipient's verifier
    acts on some of it — xmlsec1 dereferences a ``RetrievalMethod`` (a local file, a URL of
    the editor's choosing) and then refuses the document — and the rest (``KeyName``,
    ``PGPData``, foreign elements, text) is a claim about the signer the hub cannot check. So
    only ``X509Data`` and one ``KeyValue`` are accepted, and in ``X509Data`` only
    ``X509Certificate`` and the three elements that name a certificate, which
    :func:`_check_key_info_claims` matches with the signer's once the certificates are read;
    an empty one (a template node xmlsec1 leaves unfilled beside the certificate) claims
    nothing. ``X509CRL`` is refused too: the hub judges revocation from its own sources, and a
    verifier that loads the document's CRL may reach another verdict. Anything else is
    SIGNATURE_INVALID.

    Every certificate is parsed: so at most ``limits.max_key_info_certificates``, each at most
    ``limits.max_certificate_bytes`` once its whitespace is dropped, and at most three names
    per certificate allowed, none longer than a certificate could hold
    (SIGNATURE_KEY_INFO_TOO_LARGE)."""
    key_infos = (signature.iterchildren(_KEY_INFO) if kids is None
                 else kids.get(_KEY_INFO, ()))
    nodes: list[etree._Element] = []
    references: list[etree._Element] = []
    key_values: list[etree._Element] = []
    for key_info in key_infos:
        if not _blank(key_info.text):
            raise _key_info_refused("text")
        for child in key_info:
            tag = child.tag
            if not _blank(child.tail):
                raise _key_info_refused("text")
            if tag == _X509_DATA:
                for item in child:  # element-only in the schema: its check refuses text
                    if item.tag == _X509_CERTIFICATE:
                        nodes.append(item)
                    elif item.tag in _X509_REFERENCES:
                        if _has_element_child(item) or not _blank(item.text):
                            references.append(item)
                    elif isinstance(item.tag, str):
                        raise _key_info_refused(f"{_ds_name(item.tag)} in X509Data")
            elif tag == _KEY_VALUE:
                key_values.append(child)
            elif isinstance(tag, str):  # comments and processing instructions are not read
                raise _key_info_refused(_ds_name(tag))
    if len(key_values) > 1:
        raise _key_info_refused(f"{len(key_values)} KeyValue (at most one, the signer's key)")
    return _KeyInfo(_bounded_texts(nodes, references, limits), tuple(references),
                    key_values[0] if key_values else None)


def _bounded_texts(nodes: list[etree._Element], references: list[etree._Element],
                   limits: Limits) -> tuple[str, ...]:
    """The texts of the ``X509Certificate`` ``nodes`` once KeyInfo is within ``limits``
    (:func:`_read_key_info`)."""
    if len(nodes) > limits.max_key_info_certificates:
        raise ValidationFailure(
            Reason.SIGNATURE_KEY_INFO_TOO_LARGE,
            f"{len(nodes)} X509Certificate in KeyInfo (at most "
            f"{limits.max_key_info_certificates})")
    if len(references) > 3 * limits.max_key_info_certificates:
        raise ValidationFailure(
            Reason.SIGNATURE_KEY_INFO_TOO_LARGE,
            f"{len(references)} certificate names in KeyInfo/X509Data (at most "
            f"{3 * limits.max_key_info_certificates})")
    for reference in references:
        # A name escaped as xmlsec1 writes it (\XX per byte) takes at most three characters
        # per byte of the certificate that holds it.
        if sum(map(len, reference.itertext())) > 3 * limits.max_certificate_bytes:
            raise ValidationFailure(
                Reason.SIGNATURE_KEY_INFO_TOO_LARGE,
                f"{_ds_name(reference.tag)} longer than a certificate of at most "
                f"{limits.max_certificate_bytes} bytes could hold")
    longest = (limits.max_certificate_bytes + 2) // 3 * 4  # base64 length of the largest DER
    texts = []
    for position, node in enumerate(nodes, start=1):
        raw = node.text or ""
        if len(raw) > longest:  # else it fits, whitespace or not
            text = _b64_text(raw) if len(raw) <= 2 * longest else raw
            if len(text) > longest:
                raise ValidationFailure(
                    Reason.SIGNATURE_KEY_INFO_TOO_LARGE,
                    f"X509Certificate {position} is over {limits.max_certificate_bytes} bytes")
        texts.append(raw)
    if not texts:
        raise ValidationFailure(
            Reason.SIGNATURE_CERTIFICATE_MISSING, "no X509Certificate in KeyInfo")
    return tuple(texts)


_NAME_KEYWORDS = {
    "E": NameOID.EMAIL_ADDRESS, "emailAddress": NameOID.EMAIL_ADDRESS,
    "S": NameOID.STATE_OR_PROVINCE_NAME, "T": NameOID.TITLE, "title": NameOID.TITLE,
    "G": NameOID.GIVEN_NAME, "GN": NameOID.GIVEN_NAME, "SN": NameOID.SURNAME,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER, "serialNumber": NameOID.SERIAL_NUMBER,
}
"""Attribute keywords beyond RFC 4514's that OpenSSL (xmlsec1) and .NET write in names."""
_DOTNET_SEPARATOR = re.compile(r"(?<!\\)\s*([,+])\s*(?=(?:OID\.)?[A-Za-z0-9.]+=)")
_DOTNET_OID = re.compile(r"(^|[,+])OID\.(?=[0-9])")


def _read_names(text: str) -> list[x509.Name]:
    """The distinguished names ``text`` can be read as: RFC 4514 / RFC 2253 as xmlsec1
    (OpenSSL, non-ASCII as ``\\XX`` escapes) and Java write it, or as .NET's
    ``X500DistinguishedName.Name`` writes it (``", "`` between attributes, ``OID.`` before a
    dotted type); none when it is no name. A reading names the signer only if it equals the
    signer's name attribute for attribute (:func:`_names_leaf`), so a looser reading can refuse
    a sender's text, never accept a claim about another signer."""
    text = text.strip()
    names = []
    for candidate in {text, _DOTNET_OID.sub(r"\1", _DOTNET_SEPARATOR.sub(r"\1", text))}:
        try:
            names.append(x509.Name.from_rfc4514_string(candidate, _NAME_KEYWORDS))
        except ValueError:  # not a name (cryptography raises ValueError for every form)
            continue
    return names


_SERIAL = re.compile(r"\s*\+?[0-9]{1,200}\s*")
"""``xs:integer`` text of a certificate serial number (RFC 5280: at most 20 octets)."""


def _is_name(text: str, name: x509.Name) -> bool:
    """Whether ``text`` is ``name``: written exactly as xmlsec1 (OpenSSL) or cryptography write
    it — which also covers a name cryptography would not build again, such as a common name
    over RFC 5280's 64 characters — or read as the same name (:func:`_read_names`)."""
    text = text.strip()
    plain = name.rfc4514_string()
    if text == plain or text == "".join(
        ch if ch < "\x80" else "".join(f"\\{byte:02X}" for byte in ch.encode()) for ch in plain
    ):
        return True
    return name in _read_names(text)


def _names_leaf(reference: etree._Element, leaf: x509.Certificate) -> bool:
    """Whether the X509SubjectName / X509IssuerSerial / X509SKI ``reference`` names ``leaf``
    exactly: the same subject, the same issuer and serial number, the same subject key
    identifier."""
    tag = reference.tag
    if tag == _X509_SUBJECT_NAME:
        return not len(reference) and _is_name(reference.text or "", leaf.subject)
    if tag == _X509_ISSUER_SERIAL:
        parts = _by_tag(reference)
        issuer, serial = _one(parts, _X509_ISSUER_NAME), _one(parts, _X509_SERIAL_NUMBER)
        if issuer is None or serial is None or len(issuer) or len(serial):
            return False
        return (_SERIAL.fullmatch(serial.text or "") is not None
                and int(serial.text or "") == leaf.serial_number
                and _is_name(issuer.text or "", leaf.issuer))
    try:  # X509SKI
        digest = strict_b64decode(_b64_text(reference.text)) if not len(reference) else b""
        ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except (binascii.Error, ValueError, x509.ExtensionNotFound):
        return False
    return ski.digest == digest


def _key_value_number(parent: dict[Any, list[etree._Element]], tag: str, longest: int
                      ) -> int | None:
    """The ``CryptoBinary`` integer of ``tag`` in an RSAKeyValue, None if it is not one."""
    found = _one(parent, tag)
    if found is None or len(found) or len(found.text or "") > 2 * longest:
        return None
    try:
        value = strict_b64decode(_b64_text(found.text))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(value, "big") if value else None


def _check_key_info_claims(key_info: _KeyInfo, signer: _Signer, limits: Limits) -> None:
    """What KeyInfo says besides the certificates (:func:`_read_key_info`) is true of the
    signer's certificate: each filled X509SubjectName / X509IssuerSerial / X509SKI names it, and
    the KeyValue is its RSA key, alone (signxml and xmlsec1 write it beside X509Data).
    Otherwise SIGNATURE_INVALID: a claim about another signer the hub would be vouching for.

    The leaf only, as W3C XMLDSig §4.4.4 says ("MUST refer to the certificate or certificates
    containing the validation key"), though xmlsec1 given a whole chain writes names for each
    of its certificates: a verifier looks the named certificates up in its own store, and
    xmlsec1, finding the issuing CA there by its X509SKI, verifies with the CA's key and refuses
    the document (``tests/interop/test_xmlsec1_key_info.py``)."""
    for reference in key_info.references:
        if not _names_leaf(reference, signer.leaf):
            raise ValidationFailure(
                Reason.SIGNATURE_INVALID,
                f"KeyInfo/X509Data/{_ds_name(reference.tag)} does not name the signer's "
                "certificate")
    if key_info.key_value is not None:
        key_value = key_info.key_value
        values = [child for child in key_value if isinstance(child.tag, str)]
        numbers = signer.key.public_numbers() if signer.key is not None else None
        if numbers is None or len(values) != 1 or values[0].tag != _RSA_KEY_VALUE:
            raise _key_info_refused("a KeyValue other than an RSAKeyValue")
        if not _blank(key_value.text) or any(not _blank(child.tail) for child in key_value):
            raise _key_info_refused("text in KeyValue")  # mixed content in the schema
        longest = (limits.max_certificate_bytes + 2) // 3 * 4
        parts = _by_tag(values[0])
        if (_key_value_number(parts, _MODULUS, longest) != numbers.n
                or _key_value_number(parts, _EXPONENT, longest) != numbers.e):
            raise ValidationFailure(
                Reason.SIGNATURE_INVALID,
                "KeyInfo/KeyValue is not the public key of the signer's certificate")


_CERTIFICATE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension,
                       x509.UnsupportedGeneralNameType)
"""What cryptography raises on reading a malformed certificate field (lazily, on access)."""


def _read_certificate(text: str, position: int) -> x509.Certificate:
    """Decode and load one KeyInfo certificate and read, once, inside a guard, every field the
    later checks read (:func:`hub.validators.trust.read_certificate`: names, validity, key,
    extensions): text that is not base64 is SIGNATURE_CERTIFICATE_MISSING, a certificate that
    cannot be read is CERT_MALFORMED — never an exception in the trust or report steps (issue
    16, L4). cryptography parses a field the same way on every access, so a field read here
    once is readable later."""
    what = f"X509Certificate {position} in KeyInfo"
    try:
        der = strict_b64decode(text)
    except (binascii.Error, ValueError):
        raise ValidationFailure(
            Reason.SIGNATURE_CERTIFICATE_MISSING, f"{what} is not base64") from None
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.public_key()
        cert.public_bytes(serialization.Encoding.DER)
    except Exception as exc:  # any failure to load DER is a malformed certificate, by definition
        raise ValidationFailure(
            Reason.CERT_MALFORMED, f"{what} is malformed ({type(exc).__name__})") from None
    # CERT_MALFORMED when a field cannot be read. Not remembered by object: the signature has
    # not verified yet (a flood of distinct KeyInfos must leave nothing but the digest cache).
    read_certificate(cert, remember=False)
    return cert


def _pick_leaf(certs: list[x509.Certificate]) -> x509.Certificate:
    """The certificate that issued none of the others (the end of the chain KeyInfo carries)."""
    for cert in certs:
        if not any(other.issuer == cert.subject for other in certs if other is not cert):
            return cert
    return certs[0]


def _count(element: etree._Element) -> int:
    return sum(1 for _ in element.iter())


_per_thread = threading.local()


def _signature_schema() -> etree.XMLSchema:
    """signxml's own XMLDSig 1.1 schema (the W3C schemas it ships, loaded by its own loader),
    compiled once per thread (an ``XMLSchema`` keeps its error log on the object)."""
    schema: etree.XMLSchema | None = getattr(_per_thread, "schema", None)
    if schema is None:
        schema = _per_thread.schema = get_schema("xmldsig1-schema.xsd")
    return schema


def _check_schema(signature: etree._Element) -> None:
    """The ``ds:Signature`` element is valid against the XMLDSig schema, as signxml demands
    before it verifies (W3C XMLDSig 1.0 §4): element order, no foreign children, base64
    values. That also refuses ``InclusiveNamespaces`` under ``CanonicalizationMethod`` (no
    declaration for the schema's strict wildcard): the profile has no PrefixList."""
    schema = _signature_schema()
    if not schema.validate(signature):
        error: Any = cast(Any, schema.error_log).last_error  # lxml-stubs lack last_error
        raise ValidationFailure(
            Reason.SIGNATURE_INVALID,
            f"ds:Signature does not follow the XMLDSig schema: {error.message if error else ''}"
            [:200])


def _strict_b64(element: etree._Element | None, what: str) -> bytes:
    """The bytes of a base64 value; anything but base64 and the four XML whitespace characters
    (:data:`_B64_WHITESPACE`) is SIGNATURE_INVALID.

    signxml decodes leniently (characters outside the alphabet are skipped), so junk inside
    ``SignatureValue`` — which no signature covers — would otherwise still verify: one more
    malleable spot in signed bytes the hub routes as received. Both paths refuse it here.
    """
    if element is None or len(element):
        # A child (element or comment) splits the text: signxml reads only the part before it.
        raise ValidationFailure(Reason.SIGNATURE_INVALID, f"{what} missing or holds markup")
    try:
        value = strict_b64decode(_b64_text(element.text))
    except (binascii.Error, ValueError):
        raise ValidationFailure(Reason.SIGNATURE_INVALID, f"{what} is not base64") from None
    if not value:
        raise ValidationFailure(Reason.SIGNATURE_INVALID, f"{what} is empty")
    return value


@dataclass(frozen=True, slots=True)
class _Signer:
    certs: tuple[x509.Certificate, ...]
    leaf: x509.Certificate
    key: rsa.RSAPublicKey | None
    """The leaf's key when it is RSA (otherwise the key type is refused below)."""
    size: int
    """Bytes of DER held (what the cache counts)."""
    offered: tuple[x509.Certificate, ...]
    """``certs`` but the leaf (what :class:`XmlSignature` offers the trust check)."""


def _load_signer(texts: tuple[str, ...]) -> _Signer:
    """The certificates of the KeyInfo texts (as :func:`_read_key_info` reads them)."""
    decoded = [_b64_text(text) for text in texts]
    certs = [_read_certificate(text, n) for n, text in enumerate(decoded, start=1)]
    leaf = _pick_leaf(certs)
    key = leaf.public_key()
    return _Signer(tuple(certs), leaf, key if isinstance(key, rsa.RSAPublicKey) else None,
                   sum(len(text) * 3 // 4 for text in decoded),
                   tuple(c for c in certs if c is not leaf))


class SignerCache:
    """KeyInfo certificates of signatures that verified, by the SHA-256 of their base64 texts.

    A sender signs thousands of envelopes with one certificate, and loading + reading + picking
    the leaf cost ~0.1 ms per packet. Only what passed the signature check is kept (a flood of
    distinct KeyInfos that do not verify leaves nothing behind), least recently used first out,
    bounded in bytes of DER held as well as in entries (issue 16, M5). Values only: a failure
    is never cached. Thread-safe; pure (no I/O)."""

    _OVERHEAD = 2048
    """Bytes counted per entry on top of the DER (parsed objects, key, dict slot)."""

    def __init__(self, max_bytes: int = 4 * 1024 * 1024, max_entries: int = 1024) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, _Signer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def _cost(self, signer: _Signer) -> int:
        return signer.size + self._OVERHEAD

    @property
    def held_bytes(self) -> int:
        """What the entries held count (DER plus a fixed overhead each)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _Signer | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: bytes, signer: _Signer) -> None:
        cost = self._cost(signer)
        if cost > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            while self._entries and (self._bytes + cost > self.max_bytes
                                     or len(self._entries) >= self.max_entries):
                _, old = self._entries.popitem(last=False)
                self._bytes -= self._cost(old)
            self._entries[key] = signer
            self._bytes += cost


SIGNER_CACHE = SignerCache()
"""The process's cache of verified KeyInfo certificates (4 MiB, 1,024 entries at most)."""


def _cache_key(texts: tuple[str, ...]) -> bytes:
    """The digest of the KeyInfo texts exactly as they are (the same certificates written with
    other whitespace are another entry; UTF-8, so distinct texts never share a key)."""
    return hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).digest()


def _signxml_only(profile: _Profile) -> bool:
    """Shapes the direct verifier leaves to signxml: legacy SHA-1, and a KeyInfo that also
    carries a ``KeyValue`` (the hub has matched it with the leaf's key already, and signxml
    matches it again; ``DEREncodedKeyValue`` was refused by :func:`_read_key_info`)."""
    if not _fastdsig.handles(profile.method, profile.digest):
        return True
    key_info = _one(profile.kids, _KEY_INFO)
    return key_info is not None and _carries_key_value(key_info)


def check_xml_signature(
    raw: bytes, policy: TrustPolicy, *, legacy_sha1: bool = False, direct: bool = True,
    tree: etree._Element | None = None, limits: Limits | None = None,
) -> XmlSignature:
    """Enforce the hub's XMLDSig profile on the exact packet bytes ``raw``.

    Raises :class:`ValidationFailure` with a SIGNATURE_* reason. ``legacy_sha1`` also verifies
    (rather than refuses) rsa-sha1 and SHA-1 digests: for the interop policy only.
    ``direct=False`` verifies with signxml instead of the direct verifier
    (:func:`verify_with_signxml`): the same verdict, several times slower; kept as the
    reference the direct path is proven against. ``tree``: the root element the hub's
    hardened parser already built from exactly ``raw`` (saves the re-parse, ~0.1 ms at 10 KB);
    it is left exactly as it was. ``limits``: the KeyInfo caps
    (``max_key_info_certificates``, ``max_certificate_bytes``; defaults of :class:`Limits`).
    """
    if tree is not None:
        root = tree
    else:
        try:
            root = parse_xml(raw, _GENEROUS)
        except EnvelopeRefused as refused:
            raise ValidationFailure(refused.reason, refused.detail) from None
    signatures = list(root.iter(_SIGNATURE))
    if not signatures:
        raise ValidationFailure(Reason.SIGNATURE_MISSING)
    if len(signatures) > 1:
        raise ValidationFailure(Reason.SIGNATURE_MULTIPLE, f"{len(signatures)} ds:Signature")
    signature = signatures[0]
    _check_position(signature, root)
    if not _has_element_child(signature):
        raise ValidationFailure(Reason.SIGNATURE_MISSING, "empty placeholder ds:Signature")
    profile = _check_signed_info(signature, legacy_sha1)
    method, digest = profile.method, profile.digest
    signature_value = _strict_b64(_one(profile.kids, _SIGNATURE_VALUE), "SignatureValue")
    digest_value = _strict_b64(profile.digest_value(signature), "DigestValue")
    limits = limits or _DEFAULT_LIMITS
    key_info = _read_key_info(signature, limits, profile.kids)
    texts = key_info.texts
    cache_key = _cache_key(texts)
    cached = SIGNER_CACHE.get(cache_key)
    found = cached if cached is not None else _load_signer(texts)
    leaf, key = found.leaf, found.key
    if key is None:
        raise ValidationFailure(
            Reason.SIGNATURE_ALGORITHM_FORBIDDEN,
            f"{type(leaf.public_key()).__name__} key (RSA required)")
    if key.key_size < policy.min_rsa_bits:
        raise ValidationFailure(
            Reason.SIGNATURE_KEY_TOO_WEAK, f"RSA-{key.key_size} < {policy.min_rsa_bits}")
    if key_info.references or key_info.key_value is not None:
        _check_key_info_claims(key_info, found, limits)

    _check_schema(signature)

    try:
        if direct and not _signxml_only(profile):
            _fastdsig.verify_enveloped(root, signature, key, method=method, digest=digest,
                                       digest_value=digest_value,
                                       signature_value=signature_value)
        else:
            _verify_signxml(raw, root, signature, leaf, legacy_sha1)
    except etree.C14NError:
        # libxml2's canonicalizer refuses some well-formed input — relative namespace URIs,
        # which Namespaces in XML 1.0 deprecates and Canonical XML forbids: nothing any
        # verifier (xmlsec1 included) can check, on either path.
        raise ValidationFailure(
            Reason.SIGNATURE_INVALID,
            "the document cannot be canonicalized (exclusive c14n), e.g. a relative namespace "
            "URI") from None
    if cached is None:
        SIGNER_CACHE.put(cache_key, found)  # only now: the signature verified with this key
    return XmlSignature(leaf=leaf, offered=found.offered, signature_method=method,
                        digest_method=digest)


def verify_with_signxml(
    raw: bytes, policy: TrustPolicy, *, legacy_sha1: bool = False
) -> XmlSignature:
    """:func:`check_xml_signature` with signxml doing the cryptographic part (the reference)."""
    return check_xml_signature(raw, policy, legacy_sha1=legacy_sha1, direct=False)


def _verify_signxml(raw: bytes, root: etree._Element, signature: etree._Element,
                    leaf: x509.Certificate, legacy_sha1: bool) -> None:
    # A fresh verifier per packet (signxml keeps per-call state); the hardened parser factory
    # of hub.edxml._xml, so huge base64 attachments are judged by the hub's limits.
    # signxml also checks the certificate's validity window; the hub judges that in the trust
    # check, at the receipt time, with its own reason codes (CERT_EXPIRED …). So signxml is told
    # to look at a moment inside the window, and only verifies the signature here.
    config = SignatureConfiguration(
        expect_references=1, verification_time=leaf.not_valid_before_utc)
    if legacy_sha1:
        config = dataclasses.replace(
            config,
            signature_methods=config.signature_methods | {SignatureMethod.RSA_SHA1},
            digest_algorithms=config.digest_algorithms | {DigestAlgorithm.SHA1})
    try:
        result = XMLVerifier().verify(
            raw, x509_cert=leaf, expect_config=config, parser=_new_parser(),
            # The position was checked above; signxml looks for the signature by itself.
        )
    except InvalidDigest as exc:
        raise ValidationFailure(Reason.SIGNATURE_DIGEST_MISMATCH, str(exc)[:200]) from None
    except InvalidSignature as exc:
        raise ValidationFailure(Reason.SIGNATURE_INVALID, str(exc)[:200]) from None
    except (InvalidInput, InvalidCertificate, SignXMLException, etree.DocumentInvalid) as exc:
        raise ValidationFailure(Reason.SIGNATURE_INVALID, str(exc)[:200]) from None

    # "See what is signed": the signed content must be the whole document minus the signature.
    signed = result.signed_xml if not isinstance(result, list) else None
    if signed is None or signed.tag != root.tag or _count(signed) != _count(root) - _count(
        signature
    ):
        raise ValidationFailure(
            Reason.SIGNATURE_WRAPPING_SUSPECTED, "signed content is not the whole document")
