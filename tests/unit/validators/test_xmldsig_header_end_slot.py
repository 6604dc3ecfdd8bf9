"""A signature at the end of ``edXMLHeader`` may follow only an **empty**
``edXML:DigitalSignature`` (issue 16 review, D4; the profile in :mod:`hub.validators.xmldsig`
and the comment in ``schemas/edxml-qcvn102-2016.xsd``).

The slot is opaque to the schema (``processContents="skip"``): filled and signed, it can hide a
second ``MessageHeader`` — another ``To``, another ``Subject`` — that the hub never reads but a
recipient searching descendants (``getElementsByTagName("To")``) does. The signature covers it,
so it verifies: the hub must refuse the shape itself, on both verifier paths.
"""

from __future__ import annotations

import dataclasses

import pytest

from hub.edxml import SignaturePlacement
from hub.reasons import Reason
from hub.trust.signing import sign_xml
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import fingerprint
from hub.validators.xmldsig import check_xml_signature, verify_with_signxml
from tests.unit.validators.signature_vectors import Vectors

PLACEHOLDER = b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
HIDDEN_HEADER = (
    "<edXML:DigitalSignature><edXML:MessageHeader><edXML:To><edXML:OrganId>000.00.09.H27"
    "</edXML:OrganId></edXML:To><edXML:Subject>Nội dung khác</edXML:Subject>"
    "</edXML:MessageHeader></edXML:DigitalSignature>").encode()


def _signed_after(slot: bytes, vectors: Vectors) -> bytes:
    """An envelope signed at the end of edXMLHeader, ``slot`` written just before the signature
    (so the signature covers it)."""
    template = dataclasses.replace(vectors, placement=SignaturePlacement.HEADER_END).envelope()
    assert PLACEHOLDER in template
    assert b"DigitalSignature" not in template
    return sign_xml(template.replace(PLACEHOLDER, slot + PLACEHOLDER), vectors.org)


def _both(raw: bytes, vectors: Vectors) -> tuple[str, str]:
    verdicts = []
    for check in (check_xml_signature, verify_with_signxml):
        try:
            verdicts.append(("passed", fingerprint(check(raw, vectors.policy).leaf)))
        except ValidationFailure as failure:
            verdicts.append(("failed", failure.reason.value))
    assert verdicts[0] == verdicts[1]
    return verdicts[0]


@pytest.mark.parametrize("slot", [
    HIDDEN_HEADER,
    b"<edXML:DigitalSignature>x</edXML:DigitalSignature>",
    b"<edXML:DigitalSignature><!-- c -->x</edXML:DigitalSignature>",
    b"<edXML:DigitalSignature><edXML:Subject/></edXML:DigitalSignature>",
], ids=["hidden_message_header", "text", "text_after_a_comment", "empty_element"])
def test_a_non_empty_slot_before_a_header_end_signature_is_refused_on_both_paths(
    slot: bytes, vectors: Vectors
) -> None:
    # Given an envelope signed after an edXML:DigitalSignature that holds something (signed)
    raw = _signed_after(slot, vectors)
    # Then both verifiers refuse the shape as suspected wrapping, although the signature verifies
    assert _both(raw, vectors) == ("failed", Reason.SIGNATURE_WRAPPING_SUSPECTED.value)


@pytest.mark.parametrize("slot", [
    b"<edXML:DigitalSignature/>",
    b"<edXML:DigitalSignature>\n  \t</edXML:DigitalSignature>",
], ids=["empty", "whitespace"])
def test_an_empty_slot_before_a_header_end_signature_is_still_accepted(
    slot: bytes, vectors: Vectors
) -> None:
    # Given the SDK's shape: an empty (or blank) edXML:DigitalSignature, the signature after it
    raw = _signed_after(slot, vectors)
    # Then it is accepted on both paths
    assert _both(raw, vectors) == ("passed", fingerprint(vectors.org.cert))


def test_the_refusal_says_the_slot_is_not_empty(vectors: Vectors) -> None:
    with pytest.raises(ValidationFailure) as caught:
        check_xml_signature(_signed_after(HIDDEN_HEADER, vectors), vectors.policy)
    assert "edXML:DigitalSignature" in caught.value.detail
    assert "not empty" in caught.value.detail
