"""Signing with loaded keys: enveloped XMLDSig over EDXML packets, and PDF signatures.

The hub's XMLDSig profile (what :mod:`hub.validators.xmldsig` enforces): one ``ds:Signature``,
where the EDXML builder put signxml's ``<ds:Signature Id="placeholder"/>`` — by default inside
``edXMLHeader/edXML:DigitalSignature``, the slot QCVN 102:2016 names (or, on request, the last
child of ``edXMLHeader``; :class:`hub.edxml.SignaturePlacement`); RSA-SHA256, SHA-256 digest;
exactly one ``Reference`` with ``URI=""`` and the transforms enveloped-signature + exclusive
c14n, so the signature covers the **whole document**, including the attachments that QCVN
102:2016 places outside ``edXMLEnvelope``; ``KeyInfo`` carries the signer certificate and the
issuing CA certificate.

Keys are always passed as loaded objects: signxml re-loading PEM costs ~37 ms per signature.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    methods,
)

from hub.trust.keystore import OrgSigner
from hub.validators._fastdsig import document_c14n

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
PLACEHOLDER_XPATH = "//ds:Signature[@Id='placeholder']"


def _signer() -> XMLSigner:
    return XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


def _parse(data: bytes) -> Any:
    from hub.edxml._xml import Limits, parse_xml

    return parse_xml(data, Limits())


def sign_xml(data: bytes, signer: OrgSigner) -> bytes:
    """Sign an EDXML packet that holds the ``<ds:Signature Id="placeholder"/>`` element.

    Enveloped XMLDSig over the whole document (``Reference URI=""``, enveloped-signature +
    exclusive c14n transforms, SHA-256 digest, RSA-SHA256, KeyInfo with the signer's chain),
    exactly the profile :func:`sign_xml_signxml` produces with signxml — byte for byte: RSA
    PKCS#1 v1.5 is deterministic, and ``tests/unit/test_signing_fast_path.py`` compares the
    two on the whole corpus; xmlsec1 verifies the result in the interop tests. Written
    directly because signxml re-parses and re-serializes the document several times (1.2 ms
    against ~0.4 ms for a 10 KB envelope; the hub signs two receipts per envelope).

    Returns the signed document serialized once (UTF-8 with an XML declaration). Raises
    ``ValueError`` when the document has no placeholder: the hub never guesses where a
    signature goes.
    """
    return sign_tree(_parse(data), signer)


def sign_tree(root: etree._Element, signer: OrgSigner) -> bytes:
    """:func:`sign_xml` on a tree the hub built itself (a receipt): no parse, same bytes.

    The tree must be what parsing its serialization would give (``build_receipt_tree`` is, and
    ``tests/unit/test_receipts.py`` proves it byte for byte). It is signed in place.
    """
    # The first match of PLACEHOLDER_XPATH, without compiling an XPath per call.
    placeholder = next((e for e in root.iter(_DS("Signature")) if e.get("Id") == "placeholder"),
                       None)
    if placeholder is None:
        raise ValueError("the document has no <ds:Signature Id=\"placeholder\"/> element")
    if root.get("Id") is not None or root.get("ID") is not None:
        raise ValueError("the document root must not carry an Id attribute")
    # The enveloped-signature transform, exactly as the verifier applies it (one shared helper).
    document, _commented = document_c14n(root, placeholder)
    digest = hashlib.sha256(document).digest()

    sig = etree.Element(_DS("Signature"), nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(sig, _DS("SignedInfo"))
    etree.SubElement(signed_info, _DS("CanonicalizationMethod"), Algorithm=_EXC_C14N)
    etree.SubElement(signed_info, _DS("SignatureMethod"), Algorithm=_RSA_SHA256)
    reference = etree.SubElement(signed_info, _DS("Reference"), URI="")
    transforms = etree.SubElement(reference, _DS("Transforms"))
    etree.SubElement(transforms, _DS("Transform"), Algorithm=_ENVELOPED)
    etree.SubElement(transforms, _DS("Transform"), Algorithm=_EXC_C14N)
    etree.SubElement(reference, _DS("DigestMethod"), Algorithm=_SHA256)
    etree.SubElement(reference, _DS("DigestValue")).text = base64.b64encode(digest).decode()
    signed_info_c14n = etree.tostring(signed_info, method="c14n", exclusive=True,
                                      with_comments=False)
    value = signer.key.sign(signed_info_c14n, padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(sig, _DS("SignatureValue")).text = base64.b64encode(value).decode()
    x509_data = etree.SubElement(etree.SubElement(sig, _DS("KeyInfo")), _DS("X509Data"))
    for text in _cert_texts(signer):
        etree.SubElement(x509_data, _DS("X509Certificate")).text = text
    sig.tail = placeholder.tail
    parent = placeholder.getparent()
    if parent is None:
        raise ValueError("the placeholder must not be the document root")
    parent.replace(placeholder, sig)
    out: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return out


def sign_xml_signxml(data: bytes, signer: OrgSigner) -> bytes:
    """The same signature made by signxml (the reference for the fast path above)."""
    root = _parse(data)
    if not root.xpath(PLACEHOLDER_XPATH, namespaces={"ds": DS_NS}):
        raise ValueError("the document has no <ds:Signature Id=\"placeholder\"/> element")
    if root.get("Id") is not None or root.get("ID") is not None:
        # signxml would then reference "#Id" instead of URI="" (the whole document).
        raise ValueError("the document root must not carry an Id attribute")
    # reference_uri=None: signxml references the whole document with URI="".
    signed = _signer().sign(root, key=signer.key, cert=[signer.cert, *signer.chain])
    out: bytes = etree.tostring(signed, encoding="UTF-8", xml_declaration=True)
    return out


_EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_CERT_TEXTS: dict[str, tuple[str, ...]] = {}


def _DS(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


def _cert_texts(signer: OrgSigner) -> tuple[str, ...]:
    """Base64 DER of the signer's chain, 64 columns like signxml (computed once per signer)."""
    cached = _CERT_TEXTS.get(signer.fingerprint)
    if cached is None:
        texts = []
        for cert in (signer.cert, *signer.chain):
            b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
            texts.append("\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\n")
        cached = _CERT_TEXTS[signer.fingerprint] = tuple(texts)
    return cached


# -- an enveloped signature by construction --------------------------------------------------------
#
# For a document the hub writes itself (a receipt) the serialized bytes and their exclusive c14n
# are known without building a tree, and so is everything sign_tree writes around the signature
# value: SignedInfo is constant but for DigestValue, and KeyInfo is the signer's chain. The text
# below is what sign_tree serializes and what lxml's exclusive c14n gives of SignedInfo, byte for
# byte (tests/unit/test_receipt_template.py compares the two paths on every receipt kind).

def _signed_info_children(c14n: bool) -> str:
    """SignedInfo's children up to the digest value; exclusive c14n writes empty elements as a
    start and an end tag, lxml's serializer closes them with ``/>``."""

    def empty(name: str, algorithm: str) -> str:
        close = f"></ds:{name}>" if c14n else "/>"
        return f'<ds:{name} Algorithm="{algorithm}"{close}'

    return (empty("CanonicalizationMethod", _EXC_C14N) + empty("SignatureMethod", _RSA_SHA256)
            + '<ds:Reference URI=""><ds:Transforms>' + empty("Transform", _ENVELOPED)
            + empty("Transform", _EXC_C14N) + "</ds:Transforms>" + empty("DigestMethod", _SHA256)
            + "<ds:DigestValue>")


_SIGNED_INFO_C14N_HEAD = (f'<ds:SignedInfo xmlns:ds="{DS_NS}">'
                          + _signed_info_children(c14n=True)).encode()
"""SignedInfo in exclusive c14n (what the key signs) up to the digest value."""
_SIGNED_INFO_C14N_TAIL = b"</ds:DigestValue></ds:Reference></ds:SignedInfo>"
_SIGNATURE_HEAD = (f'<ds:Signature xmlns:ds="{DS_NS}"><ds:SignedInfo>'
                   + _signed_info_children(c14n=False)).encode()
"""The Signature element as serialized in the document, up to the digest value."""
_SIGNATURE_MIDDLE = b"</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>"


@dataclass(frozen=True, slots=True)
class Presigned:
    """A document signed but for the RSA operation: :meth:`complete` with the signature value
    over :attr:`signed_info` gives its bytes. Nothing in it is secret: any process holding the
    same key may make the signature (RSA PKCS#1 v1.5 is deterministic)."""

    organ_id: str
    """Whose key signs it (the keystore's organization)."""
    digest: bytes
    """The document's SHA-256 (its DigestValue, decoded): all that varies in SignedInfo."""
    signed_info: bytes
    """SignedInfo in exclusive c14n (:func:`signed_info_c14n` of :attr:`digest`): what the key
    signs (RSA PKCS#1 v1.5, SHA-256)."""
    head: bytes
    """The document up to ``<ds:SignatureValue>``."""
    tail: bytes
    """The document from ``</ds:SignatureValue>`` to its end."""

    def complete(self, signature_value: bytes) -> bytes:
        return self.head + base64.b64encode(signature_value) + self.tail


def presign(before: bytes, after: bytes, document_c14n: bytes, signer: OrgSigner) -> Presigned:
    """Sign by construction a document the hub wrote itself, without lxml.

    ``before`` + the Signature element + ``after`` is the document as :func:`sign_tree` would
    serialize it (XML declaration included), and ``document_c14n`` is its exclusive c14n with
    the Signature removed (what the enveloped-signature transform hashes). The caller proves
    that for its template (:mod:`hub.receipts.template`).
    """
    digest = hashlib.sha256(document_c14n).digest()
    certificates = b"".join(b"<ds:X509Certificate>" + text.encode()
                            + b"</ds:X509Certificate>" for text in _cert_texts(signer))
    return Presigned(
        organ_id=signer.organ_id,
        digest=digest,
        signed_info=signed_info_c14n(digest),
        head=before + _SIGNATURE_HEAD + base64.b64encode(digest) + _SIGNATURE_MIDDLE,
        tail=(b"</ds:SignatureValue><ds:KeyInfo><ds:X509Data>" + certificates
              + b"</ds:X509Data></ds:KeyInfo></ds:Signature>" + after))


def signed_info_c14n(digest: bytes) -> bytes:
    """The profile's SignedInfo, in exclusive c14n, for a document whose SHA-256 is ``digest``:
    what the key signs. A signer process builds it from the digest alone."""
    return _SIGNED_INFO_C14N_HEAD + base64.b64encode(digest) + _SIGNED_INFO_C14N_TAIL


def sign_bytes(signer: OrgSigner, data: bytes) -> bytes:
    """The signature value over ``data`` (RSA PKCS#1 v1.5, SHA-256), with the loaded key or on
    its token. Deterministic: any process holding the same key gives the same bytes."""
    return bytes(signer.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def signature_verifies(key: rsa.RSAPublicKey | None, value: bytes, data: bytes) -> bool:
    """Whether ``value`` is :func:`sign_bytes`'s signature over ``data`` under ``key`` (no key:
    False) — the check no receipt signature leaves the hub without, wherever it was made: in a
    signer process or thread (:mod:`hub.consumers.signing`, :mod:`hub.trust.signer_thread`) or
    in this one (:func:`sign_checked`)."""
    if key is None:
        return False
    try:
        key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def sign_checked(signer: OrgSigner, data: bytes) -> bytes:
    """:func:`sign_bytes`, verified under ``signer``'s certificate before it is used (~0.02 ms).

    A key can change under the hub (a token re-plugged with another key under the label): a
    signature that does not verify under the certificate the hub attaches or stores beside it
    raises :class:`~hub.trust.token.TokenUnavailable` — transient, the batch is held and
    signed again — and is never published nor stored."""
    from hub.trust.token import TokenUnavailable

    value = sign_bytes(signer, data)
    if not signature_verifies(signer.public_key, value, data):
        raise TokenUnavailable(
            f"the key of {signer.organ_id} made a signature that does not verify under its "
            f"certificate (sha256 {signer.fingerprint[:16]}): not used")
    return value


def sign_presigned(presigned: Presigned, signer: OrgSigner) -> bytes:
    """Complete ``presigned`` with ``signer``'s key in this process (:func:`sign_checked`)."""
    return presigned.complete(sign_checked(signer, presigned.signed_info))


# -- PDF ----------------------------------------------------------------------------------------


def _pdf_signer(signer: OrgSigner) -> Any:
    """pyHanko signer built once per OrgSigner from the already-loaded key."""
    if signer._pdf_signer is None:
        from asn1crypto import keys as asn1_keys
        from asn1crypto import x509 as asn1_x509
        from pyhanko.sign import signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        der_key = signer.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert = asn1_x509.Certificate.load(signer.cert.public_bytes(serialization.Encoding.DER))
        chain = [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
            for c in signer.chain
        ]
        signer._pdf_signer = signers.SimpleSigner(
            signing_cert=cert,
            signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
            cert_registry=SimpleCertificateStore.from_certs(chain),  # type: ignore[no-untyped-call]
        )
    return signer._pdf_signer


def sign_pdf(pdf_bytes: bytes, signer: OrgSigner, *, field_name: str, reason: str) -> bytes:
    """Add a PAdES-style approval signature in a new field (incremental update).

    Uses pyHanko's synchronous API, which calls ``asyncio.run()``: never call it from inside a
    running event loop.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes))
    meta = signers.PdfSignatureMetadata(field_name=field_name, reason=reason, md_algorithm="sha256")
    out = signers.sign_pdf(writer, meta, signer=_pdf_signer(signer))
    data: bytes = out.getvalue()
    return data


def minimal_pdf(text: str = "edxml-hub test document") -> bytes:
    """A tiny valid one-page PDF (for tests and the demo), written by hand with a correct xref."""
    safe = "".join(c for c in text if c.isascii() and c.isprintable() and c not in "()\\")
    stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_from_objects(objects)


def pdf_from_objects(objects: list[bytes]) -> bytes:
    """Number ``objects`` from 1 (object 1 is the catalog) and write a PDF with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
