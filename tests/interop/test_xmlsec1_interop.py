"""Interoperability with xmlsec1, the C reference implementation of XML-DSig.

(a) an envelope signed by ``xmlsec1 --sign`` with the test PKI is accepted by the hub's
validators; (b) what :func:`hub.trust.signing.sign_xml` produces verifies with ``xmlsec1 --verify``
under the specialized root only. Both in QCVN 102's ``edXMLHeader/edXML:DigitalSignature`` slot
(where stock tools and the SDK templates put the signature) and as the last child of
``edXMLHeader``. Needs only the ``xmlsec1`` binary: without it these tests skip
with a reason, except in CI (``CI=true``), where they fail.

Nothing unchecked is ever handed to xmlsec1 (its Debian build crashes on entity bombs): every
input first passes the hub's hardened parser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from hub.edxml import (
    EnvelopeRefused,
    Limits,
    Organization,
    SignaturePlacement,
    build_envelope,
    parse_packet,
    parse_xml,
    sample_attachment,
    sample_header,
    sample_trace,
)
from hub.reasons import Reason
from hub.receipts.template import render_receipt
from hub.trust.signing import minimal_pdf, presign, sign_pdf, sign_presigned, sign_xml
from hub.validators import CrlEntry, CrlSnapshot, TrustPolicy, validate_packet
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW, GeneratedPki, session_pki

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
XMLSEC1 = shutil.which("xmlsec1")
SENDER = "000.00.01.H27"
PERSON = "CCCD:042080000003"

PLACEHOLDER = b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
TEMPLATE_SIGNATURE = (
    b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
    b"<ds:SignedInfo>"
    b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
    b'<ds:Reference URI=""><ds:Transforms>'
    b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    b"</ds:Transforms>"
    b'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
    b"<ds:DigestValue/></ds:Reference></ds:SignedInfo>"
    b"<ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"
)


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    if XMLSEC1 is None:
        if IN_CI:
            pytest.fail("xmlsec1 is required in CI (apt-get install xmlsec1)", pytrace=False)
        pytest.skip("xmlsec1 binary not installed (apt-get install xmlsec1)")
    return XMLSEC1


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def policy(pki: GeneratedPki) -> TrustPolicy:
    return TrustPolicy(
        roots=(pki.root,), intermediates=(pki.issuing_ca,), public_roots=(pki.public_root,),
        policy_oids=frozenset({pki.paths.policy_oid}))


@pytest.fixture(scope="module")
def signed_pdf(pki: GeneratedPki) -> bytes:
    pdf = sign_pdf(minimal_pdf(), pki.person(PERSON), field_name="NguoiKy", reason="Ký")
    return sign_pdf(pdf, pki.org(SENDER), field_name="DauCoQuan", reason="Đóng dấu")


@pytest.fixture(scope="module", params=list(SignaturePlacement), ids=lambda p: p.value)
def envelope_template(signed_pdf: bytes, request: pytest.FixtureRequest) -> bytes:
    header = sample_header(Organization(SENDER, "Văn phòng UBND tỉnh Hà Tĩnh"), "000.00.02.H27")
    return build_envelope(header, trace=sample_trace(SENDER, AT),
                          attachments=[sample_attachment(signed_pdf)],
                          signature_placement=request.param)


def _checked(data: bytes) -> bytes:
    """Only hand xmlsec1 what the hub's hardened parser accepts (no DTD, within limits)."""
    parse_xml(data, Limits())
    return data


AT_TEXT = AT.strftime("%Y-%m-%d %H:%M:%S")
"""xmlsec1 checks certificates at this (pinned) time, not the wall clock: tests stay stable."""


def _verify_args(xmlsec1: str, pki: GeneratedPki, file: Path) -> list[str]:
    return [xmlsec1, "--verify", "--verification-gmt-time", AT_TEXT,
            "--trusted-pem", str(pki.paths.root_cert),
            "--untrusted-pem", str(pki.paths.issuing_ca_cert), str(file)]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def test_an_envelope_signed_by_xmlsec1_is_accepted_by_the_hub(
    xmlsec1: str, pki: GeneratedPki, policy: TrustPolicy, envelope_template: bytes,
    tmp_path: Path,
) -> None:
    # Given an envelope whose placeholder (in edXML:DigitalSignature, or last in edXMLHeader) is
    # replaced by an xmlsec1 signature template
    assert PLACEHOLDER in envelope_template
    template = tmp_path / "template.xml"
    template.write_bytes(_checked(envelope_template.replace(PLACEHOLDER, TEMPLATE_SIGNATURE)))
    org = pki.paths.organizations[SENDER]
    out = tmp_path / "signed.xml"
    # When xmlsec1 signs it with the organization key (cert and issuing CA into X509Data)
    result = _run([xmlsec1, "--sign", "--privkey-pem", f"{org.key},{org.cert}",
                   "--output", str(out), str(template)])
    assert result.returncode == 0, result.stderr
    # Then xmlsec1 left the signature where the template was, and the hub accepts it
    assert (b"<edXML:DigitalSignature>" in out.read_bytes()) is (
        b"<edXML:DigitalSignature>" in envelope_template)
    packet = parse_packet(out.read_bytes())
    crls = CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW) for c in pki.crls)
    report = validate_packet(packet, at=AT, policy=policy, directory=DIRECTORY, crls=crls)
    assert report.accepted, report.describe()


def test_what_sign_xml_produces_verifies_with_xmlsec1_under_the_specialized_root(
    xmlsec1: str, pki: GeneratedPki, envelope_template: bytes, tmp_path: Path,
) -> None:
    signed = tmp_path / "signed.xml"
    signed.write_bytes(_checked(sign_xml(envelope_template, pki.org(SENDER))))
    result = _run(_verify_args(xmlsec1, pki, signed))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("kind", "extra"), [
    ("accepted", {}),
    ("received", {"recipient": SENDER}),
    ("rejected", {"reason": Reason.RECIPIENT_UNKNOWN, "detail": "a <detail> & \"quotes\"\r\n"}),
    ("countersigned", {"status_code": "03"}),
], ids=["accepted", "received", "rejected", "countersigned"])
def test_a_receipt_written_from_the_template_verifies_with_xmlsec1(
    xmlsec1: str, pki: GeneratedPki, tmp_path: Path, kind: str, extra: dict[str, object],
) -> None:
    # Given a receipt written from the template (no lxml tree) and signed by construction
    rendered = render_receipt(
        kind, envelope_raw=b"<edXML/>", signature_value=b"\x02" * 256, sender="000.00.02.H27",
        document_id="000.00.02.H27,2025/03/03,7/UBND-VP", code="7/UBND-VP Số ắ",
        reporter=SENDER, at=AT, **extra)  # type: ignore[arg-type]
    signer = pki.org(SENDER)
    receipt = tmp_path / f"{kind}.xml"
    receipt.write_bytes(_checked(sign_presigned(
        presign(rendered.before, rendered.after, rendered.c14n, signer), signer)))
    # Then xmlsec1 verifies it under the specialized root
    result = _run(_verify_args(xmlsec1, pki, receipt))
    assert result.returncode == 0, result.stderr


def test_xmlsec1_refuses_a_sign_xml_envelope_edited_after_signing(
    xmlsec1: str, pki: GeneratedPki, envelope_template: bytes, tmp_path: Path,
) -> None:
    signed = sign_xml(envelope_template, pki.org(SENDER))
    edited = tmp_path / "edited.xml"
    edited.write_bytes(_checked(signed.replace("triển khai".encode(), "hủy bỏ".encode(), 1)))
    result = _run(_verify_args(xmlsec1, pki, edited))
    assert result.returncode != 0


STYLESHEET = b'<?xml-stylesheet type="text/xsl" href="http://attacker.example/render.xsl"?>\n'


def _after_declaration(data: bytes, markup: bytes) -> bytes:
    declaration, rest = data.split(b"\n", 1)
    return declaration + b"\n" + markup + rest


def test_a_stylesheet_added_after_signing_is_refused_by_the_hub_and_by_xmlsec1(
    xmlsec1: str, pki: GeneratedPki, envelope_template: bytes, tmp_path: Path,
) -> None:
    # Given an envelope signed by the hub, then an <?xml-stylesheet?> put before its root
    signed = _checked(sign_xml(envelope_template, pki.org(SENDER)))
    edited = _after_declaration(signed, STYLESHEET)
    # When the hub parses it, Then it is refused at once: the PI is outside what is signed
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(edited)
    assert caught.value.reason is Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT
    # And xmlsec1 refuses it too (its URI="" digest covers the whole document node)
    file = tmp_path / "edited.xml"
    file.write_bytes(edited)
    result = _run(_verify_args(xmlsec1, pki, file))
    assert result.returncode != 0
    assert "digest" in result.stderr.lower() or "verification" in result.stderr.lower()


def test_xmlsec1_signs_a_stylesheet_outside_the_root_which_the_hub_never_signs_nor_accepts(
    xmlsec1: str, pki: GeneratedPki, envelope_template: bytes, tmp_path: Path,
) -> None:
    # Given a template carrying a stylesheet PI before its root
    template = _after_declaration(envelope_template.replace(PLACEHOLDER, TEMPLATE_SIGNATURE),
                                  STYLESHEET)
    _checked(envelope_template)
    # The hub's signer refuses to sign it (its c14n would leave the PI out of the digest)
    with pytest.raises(EnvelopeRefused):
        sign_xml(_after_declaration(envelope_template, STYLESHEET), pki.org(SENDER))
    # while xmlsec1 signs it with the PI inside its digest: removing the PI breaks its signature
    file = tmp_path / "template.xml"
    file.write_bytes(template)
    out = tmp_path / "signed.xml"
    org = pki.paths.organizations[SENDER]
    result = _run([xmlsec1, "--sign", "--privkey-pem", f"{org.key},{org.cert}",
                   "--output", str(out), str(file)])
    assert result.returncode == 0, result.stderr
    assert _run(_verify_args(xmlsec1, pki, out)).returncode == 0
    stripped = tmp_path / "stripped.xml"
    stripped.write_bytes(out.read_bytes().replace(STYLESHEET.strip(), b"", 1))
    assert _run(_verify_args(xmlsec1, pki, stripped)).returncode != 0
    # and the hub refuses the xmlsec1-signed document at the parse step
    with pytest.raises(EnvelopeRefused) as caught:
        parse_packet(out.read_bytes())
    assert caught.value.reason is Reason.ENVELOPE_CONTENT_OUTSIDE_ROOT


@pytest.mark.parametrize("where", ["SignatureValue", "X509Certificate"])
@pytest.mark.parametrize(
    "char", ["\u00a0", "\u2028", "\u3000", "\u0085", " \t\r\n"],
    ids=["no-break-space", "line-separator", "ideographic-space", "next-line", "xml-whitespace"])
def test_the_hub_and_xmlsec1_agree_on_which_whitespace_base64_may_carry(
    xmlsec1: str, pki: GeneratedPki, policy: TrustPolicy, envelope_template: bytes,
    where: str, char: str, tmp_path: Path,
) -> None:
    # Given a signed envelope with one character put inside a base64 value of its signature
    root = parse_xml(sign_xml(envelope_template, pki.org(SENDER)), Limits())
    node = root.find(f".//{{http://www.w3.org/2000/09/xmldsig#}}{where}")
    assert node is not None
    assert node.text
    node.text = node.text[:20] + char + node.text[20:]
    edited = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    file = tmp_path / "edited.xml"
    file.write_bytes(_checked(edited))
    # When xmlsec1 and the hub verify it, Then both accept only XML whitespace (L1)
    xmlsec1_accepts = _run(_verify_args(xmlsec1, pki, file)).returncode == 0
    crls = CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW) for c in pki.crls)
    report = validate_packet(parse_packet(edited), at=AT, policy=policy, directory=DIRECTORY,
                             crls=crls)
    assert report.accepted is xmlsec1_accepts is (char == " \t\r\n"), report.describe()
