"""KeyInfo with xmlsec1: what it writes is accepted, what it would act on is refused (D3).

KeyInfo is not signed. Stock xmlsec1 dereferences a ``RetrievalMethod`` found there (it reads
the local file or fetches the URL, then refuses the document), so a RetrievalMethod added in
transit turns a document the hub vouched for into one every recipient's xmlsec1 refuses — after
touching a resource of the attacker's choosing. The hub refuses it (SIGNATURE_INVALID), as
xmlsec1 does. The KeyInfo forms ``xmlsec1 --sign`` writes from its templates — an unfilled
``X509SubjectName`` beside the certificate, the ``RSAKeyValue`` beside ``X509Data``, and the
``X509SubjectName`` / ``X509IssuerSerial`` / ``X509SKI`` it fills in for the signer's
certificate — stay accepted; the names it also writes for the issuing CA when given the whole
chain are refused, as xmlsec1 itself refuses them. Both signature placements. Needs only the ``xmlsec1``
binary: without it these tests skip with a reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.edxml import (
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
from hub.trust.signing import minimal_pdf, sign_pdf
from hub.validators import CrlEntry, CrlSnapshot, TrustPolicy, ValidationReport, validate_packet
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW, GeneratedPki, session_pki

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
XMLSEC1 = shutil.which("xmlsec1")
SENDER = "000.00.01.H27"
PERSON = "CCCD:042080000003"
AT_TEXT = AT.strftime("%Y-%m-%d %H:%M:%S")

PLACEHOLDER = b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'


def _template_signature(key_info: bytes) -> bytes:
    """xmlsec1's signature template for the hub's profile, with ``key_info`` as KeyInfo's
    content (the empty nodes xmlsec1 fills in when it signs)."""
    return (
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        b'<ds:Reference URI=""><ds:Transforms>'
        b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        b'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        b"<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>"
        b"<ds:KeyInfo>" + key_info + b"</ds:KeyInfo></ds:Signature>")


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


@pytest.fixture(scope="module", params=list(SignaturePlacement), ids=lambda p: p.value)
def envelope_template(pki: GeneratedPki, request: pytest.FixtureRequest) -> bytes:
    pdf = sign_pdf(minimal_pdf(), pki.person(PERSON), field_name="NguoiKy", reason="Ký")
    pdf = sign_pdf(pdf, pki.org(SENDER), field_name="DauCoQuan", reason="Đóng dấu")
    header = sample_header(Organization(SENDER, "Văn phòng UBND tỉnh Hà Tĩnh"), "000.00.02.H27")
    return build_envelope(header, trace=sample_trace(SENDER, AT),
                          attachments=[sample_attachment(pdf)],
                          signature_placement=request.param)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def _xmlsec1_signed(xmlsec1: str, pki: GeneratedPki, template: bytes, key_info: bytes,
                    tmp_path: Path, *, chain: bool = False) -> bytes:
    """``template`` signed by ``xmlsec1 --sign`` with the organization's key (and its issuing CA
    too when ``chain``), KeyInfo written from ``key_info``."""
    data = template.replace(PLACEHOLDER, _template_signature(key_info))
    parse_xml(data, Limits())  # only hand xmlsec1 what the hub's hardened parser accepts
    source, out = tmp_path / "template.xml", tmp_path / "signed.xml"
    source.write_bytes(data)
    org = pki.paths.organizations[SENDER]
    keys = f"{org.key},{org.cert}" + (f",{pki.paths.issuing_ca_cert}" if chain else "")
    result = _run([xmlsec1, "--sign", "--privkey-pem", keys, "--output", str(out), str(source)])
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def _xmlsec1_verifies(xmlsec1: str, pki: GeneratedPki, data: bytes, tmp_path: Path
                      ) -> subprocess.CompletedProcess[str]:
    file = tmp_path / "verify.xml"
    file.write_bytes(data)
    return _run([xmlsec1, "--verify", "--verification-gmt-time", AT_TEXT,
                 "--trusted-pem", str(pki.paths.root_cert),
                 "--untrusted-pem", str(pki.paths.issuing_ca_cert), str(file)])


def _hub(data: bytes, pki: GeneratedPki, policy: TrustPolicy) -> ValidationReport:
    crls = CrlSnapshot.of(CrlEntry(c, fetched_at=PKI_NOW) for c in pki.crls)
    return validate_packet(parse_packet(data), at=AT, policy=policy, directory=DIRECTORY,
                           crls=crls)


def test_a_retrieval_method_added_to_keyinfo_is_refused_by_the_hub_as_by_xmlsec1(
    xmlsec1: str, pki: GeneratedPki, policy: TrustPolicy, envelope_template: bytes,
    tmp_path: Path,
) -> None:
    # Given an envelope signed by xmlsec1, which both xmlsec1 and the hub accept
    signed = _xmlsec1_signed(xmlsec1, pki, envelope_template, b"<ds:X509Data/>", tmp_path)
    assert _xmlsec1_verifies(xmlsec1, pki, signed, tmp_path).returncode == 0
    assert _hub(signed, pki, policy).accepted
    # When a RetrievalMethod to a local file is added to its (unsigned) KeyInfo in transit
    target = tmp_path / "hostname"
    target.write_text("not a certificate\n")
    edited = signed.replace(b"<ds:KeyInfo>", b'<ds:KeyInfo><ds:RetrievalMethod URI="'
                            + target.as_uri().encode()
                            + b'" Type="http://www.w3.org/2000/09/xmldsig#X509Data"/>', 1)
    assert edited != signed
    # Then xmlsec1 reads that file and refuses the document
    result = _xmlsec1_verifies(xmlsec1, pki, edited, tmp_path)
    assert result.returncode != 0
    # and the hub refuses it too, naming the RetrievalMethod
    report = _hub(edited, pki, policy)
    assert not report.accepted
    problem = report.first_problem
    assert problem is not None
    assert (problem.check, problem.reason) == ("xmldsig", Reason.SIGNATURE_INVALID)
    assert "RetrievalMethod" in problem.evidence["detail"]


@pytest.mark.parametrize("key_info", [
    b"<ds:X509Data><ds:X509SubjectName/><ds:X509Certificate/></ds:X509Data>",
    b"<ds:KeyValue/><ds:X509Data><ds:X509Certificate/></ds:X509Data>",
    b"<ds:X509Data><ds:X509SubjectName/></ds:X509Data>"
    b"<ds:X509Data><ds:X509IssuerSerial/></ds:X509Data><ds:X509Data><ds:X509SKI/></ds:X509Data>"
    b"<ds:X509Data><ds:X509Certificate/></ds:X509Data>",
], ids=["unfilled_subject_name", "key_value", "names_of_the_signer_filled_in"])
def test_the_keyinfo_forms_xmlsec1_writes_are_accepted_by_the_hub(
    xmlsec1: str, pki: GeneratedPki, policy: TrustPolicy, envelope_template: bytes,
    key_info: bytes, tmp_path: Path,
) -> None:
    # Given an envelope xmlsec1 signed from a template asking for these KeyInfo nodes
    signed = _xmlsec1_signed(xmlsec1, pki, envelope_template, key_info, tmp_path)
    if b"<ds:X509SKI/>" in key_info:  # xmlsec1 filled them in for the signer's certificate
        assert b"<ds:X509SubjectName>UID=" + SENDER.encode() in signed
        assert b"<ds:X509IssuerSerial>" in signed
        assert b"<ds:X509SKI>" in signed
    # Then xmlsec1 verifies it, and so does the hub
    assert _xmlsec1_verifies(xmlsec1, pki, signed, tmp_path).returncode == 0
    report = _hub(signed, pki, policy)
    assert report.accepted, report.describe()


def test_names_of_the_issuing_ca_in_keyinfo_are_refused_by_the_hub_as_by_xmlsec1(
    xmlsec1: str, pki: GeneratedPki, policy: TrustPolicy, envelope_template: bytes,
    tmp_path: Path,
) -> None:
    # Given an envelope xmlsec1 signed with the whole chain loaded: it writes an X509SKI for
    # the issuing CA as well as for the signer
    key_info = (b"<ds:X509Data><ds:X509SKI/></ds:X509Data>"
                b"<ds:X509Data><ds:X509Certificate/></ds:X509Data>")
    signed = _xmlsec1_signed(xmlsec1, pki, envelope_template, key_info, tmp_path, chain=True)
    assert signed.count(b"<ds:X509SKI>") == 2
    # Then xmlsec1 finds the CA in its store by that SKI, verifies with the CA's key and fails
    assert _xmlsec1_verifies(xmlsec1, pki, signed, tmp_path).returncode != 0
    # and the hub refuses it too: a name in KeyInfo must be the signer's (XMLDSig §4.4.4)
    report = _hub(signed, pki, policy)
    problem = report.first_problem
    assert problem is not None
    assert (problem.check, problem.reason) == ("xmldsig", Reason.SIGNATURE_INVALID)
    assert "X509SKI" in problem.evidence["detail"]
