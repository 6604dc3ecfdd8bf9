"""signxml 5.2 fills the builder's placeholder in place (by default inside
``edXML:DigitalSignature``), over the whole document.

signxml's enveloped signer looks for exactly one ``ds:Signature[@Id='placeholder']``
(``signxml/signer.py``, ``_unpack``), drops the ``Id`` and puts the signature there; the digest is
computed over the document root with the placeholder excised (Reference URI="").
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import signxml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from hub.edxml import (
    DS_NS,
    NS,
    VIETNAM_TZ,
    Limits,
    build_envelope,
    build_status,
    parse_envelope,
    parse_status,
    parse_xml,
    response_for,
    sample_attachment,
    sample_header,
    sample_trace,
)

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=VIETNAM_TZ)


@pytest.fixture(scope="module")
def key_and_cert() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throwaway test signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def _sign(data: bytes, key: rsa.RSAPrivateKey, cert: str) -> bytes:
    root = parse_xml(data, Limits())
    signer = XMLSigner(
        method=signxml.methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    signed = signer.sign(root, key=key, cert=cert)
    out: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    return out


def _verify(data: bytes, cert: str) -> None:
    XMLVerifier().verify(data, x509_cert=cert)


def test_signxml_fills_the_envelope_placeholder_in_place_and_it_verifies(
    key_and_cert: tuple[rsa.RSAPrivateKey, str],
) -> None:
    key, cert = key_and_cert
    data = build_envelope(
        sample_header("000.00.02.H27", "000.00.00.H27"),
        trace=sample_trace("000.00.02.H27", AT),
        attachments=[sample_attachment(b"%PDF-1.7 main", content_id="m1")],
    )

    signed = _sign(data, key, cert)

    header = parse_xml(signed, Limits()).find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert header is not None
    slot = header[-1]
    assert slot.tag == f"{{{NS}}}DigitalSignature"  # QCVN 102's slot, the builder's default
    last = slot[-1]
    assert last.tag == f"{{{DS_NS}}}Signature"
    assert last.get("Id") is None
    assert last.find(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference").get("URI") == ""  # type: ignore[union-attr]
    envelope = parse_envelope(signed)
    assert envelope.signature_count == 1
    _verify(signed, cert)


def test_the_signature_covers_the_attachments_outside_the_envelope(
    key_and_cert: tuple[rsa.RSAPrivateKey, str],
) -> None:
    key, cert = key_and_cert
    original = b"%PDF-1.7 the real decision"
    data = build_envelope(
        sample_header("000.00.02.H27", "000.00.00.H27"),
        attachments=[sample_attachment(original, content_id="m1")],
    )
    signed = _sign(data, key, cert)
    tampered = signed.replace(
        base64.b64encode(original), base64.b64encode(b"%PDF-1.7 a forged decision")
    )
    assert tampered != signed
    assert parse_envelope(tampered).attachments[0].data != original

    with pytest.raises(signxml.exceptions.InvalidSignature):
        _verify(tampered, cert)


def test_signxml_fills_the_status_placeholder_too(
    key_and_cert: tuple[rsa.RSAPrivateKey, str],
) -> None:
    key, cert = key_and_cert
    data = build_status(
        response_for=response_for(sample_header("000.00.02.H27", "000.00.00.H27")),
        sender=sample_header("000.00.00.H27", "000.00.02.H27").sender,
        status_code="03",
        timestamp=AT,
    )
    signed = _sign(data, key, cert)
    assert parse_status(signed).signature_count == 1
    _verify(signed, cert)
