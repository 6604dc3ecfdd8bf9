"""Signing with loaded keys: the hub's XMLDSig profile and PDF signatures."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from lxml import etree
from signxml import XMLVerifier  # type: ignore[attr-defined]

from hub.edxml import VIETNAM_TZ, build_envelope, build_status, response_for, sample_header
from hub.trust.signing import minimal_pdf, sign_pdf, sign_xml
from tests.pki_fixtures import SAMPLE_ORGS, GeneratedPki, session_pki

DS = "{http://www.w3.org/2000/09/xmldsig#}"
ED = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
ORGAN = SAMPLE_ORGS[0].organ_id

TEMPLATE = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    b'<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    b"<edXML:edXMLHeader><edXML:MessageHeader><edXML:Subject>V/v th\xe1\xbb\xad</edXML:Subject>"
    b"</edXML:MessageHeader>"
    b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
    b"</edXML:edXMLHeader><edXML:edXMLBody/></edXML:edXMLEnvelope>"
    b"<AttachmentEncoded><Attachment>QUJD</Attachment></AttachmentEncoded></edXML>"
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


def test_sign_xml_puts_one_whole_document_signature_where_the_placeholder_was(
    pki: GeneratedPki,
) -> None:
    signed = sign_xml(TEMPLATE, pki.org(ORGAN))
    root = etree.fromstring(signed)
    header = root[0][0]
    signature = header[-1]
    assert signature.tag == f"{DS}Signature"
    assert signature.get("Id") is None
    references = signature.findall(f"{DS}SignedInfo/{DS}Reference")
    assert [r.get("URI") for r in references] == [""]
    transforms = [t.get("Algorithm") for t in references[0].iter(f"{DS}Transform")]
    assert transforms == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    certs = signature.findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert len(certs) == 2
    result = XMLVerifier().verify(signed, x509_cert=pki.org(ORGAN).cert, expect_references=1)
    assert isinstance(result, object)


def test_what_the_hub_builds_and_signs_carries_its_signature_in_the_qcvn_slot(
    pki: GeneratedPki,
) -> None:
    # Given an envelope and a status packet built with the builder's defaults
    header = sample_header(ORGAN, SAMPLE_ORGS[1].organ_id)
    packets = [build_envelope(header),
               build_status(response_for=response_for(header), sender=header.recipients[0],
                            status_code="03", timestamp=datetime(2026, 11, 20, tzinfo=VIETNAM_TZ))]
    for packet in packets:
        # When the hub signs them
        root = etree.fromstring(sign_xml(packet, pki.org(ORGAN)))
        # Then the one signature is in edXMLHeader/edXML:DigitalSignature, the header's last child
        slot = root.find(f"{ED}edXMLEnvelope/{ED}edXMLHeader")[-1]  # type: ignore[index]
        assert slot.tag == f"{ED}DigitalSignature"
        assert [child.tag for child in slot] == [f"{DS}Signature"]
        assert len(root.findall(f".//{DS}Signature")) == 1


def test_sign_xml_refuses_a_document_without_placeholder(pki: GeneratedPki) -> None:
    without = TEMPLATE.replace(
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>', b"")
    with pytest.raises(ValueError, match="placeholder"):
        sign_xml(without, pki.org(ORGAN))


def test_sign_pdf_adds_two_signatures_that_pyhanko_can_read(pki: GeneratedPki) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    person = pki.person(SAMPLE_ORGS[0].signers[0].uid)
    pdf = sign_pdf(minimal_pdf(), person, field_name="Person", reason="Ký duyệt")
    pdf = sign_pdf(pdf, pki.org(ORGAN), field_name="Organization", reason="Đóng dấu")
    reader = PdfFileReader(io.BytesIO(pdf))
    names = [s.field_name for s in reader.embedded_signatures]
    assert names == ["Person", "Organization"]


def test_the_pdf_signer_is_built_once_per_org_signer(pki: GeneratedPki) -> None:
    signer = pki.org(ORGAN)
    sign_pdf(minimal_pdf(), signer, field_name="A", reason="r")
    first = signer._pdf_signer
    sign_pdf(minimal_pdf(), signer, field_name="B", reason="r")
    assert signer._pdf_signer is first
