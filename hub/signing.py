"""Signing with loaded keys: enveloped XMLDSig over EDXML packets, and PDF signatures.

The hub's XMLDSig profile (what :mod:`hub.validators.xmldsig` enforces): one ``ds:Signature``,
the last child of ``edXML:edXMLHeader`` (where the EDXML builder puts signxml's
``<ds:Signature Id="placeholder"/>``); RSA-SHA256, SHA-256 digest; exactly one ``Reference``
with ``URI=""`` and the transforms enveloped-signature + exclusive c14n, so the signature covers
the **whole document**, including the attachments that QCVN 102:2016 places outside
``edXMLEnvelope``; ``KeyInfo`` carries the signer certificate and the issuing CA certificate.

Keys are always passed as loaded objects: signxml re-loading PEM costs ~37 ms per signature.
"""

from __future__ import annotations

import io
from typing import Any

from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import (  # type: ignore[attr-defined]
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    methods,
)

from hub.keystore import OrgSigner

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

    Returns the signed document serialized once (UTF-8 with an XML declaration). Raises
    ``ValueError`` when the document has no placeholder: the hub never guesses where a
    signature goes.
    """
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
