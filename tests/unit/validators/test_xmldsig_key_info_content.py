"""What ``KeyInfo`` may carry besides the certificates (issue 16 review, D3).

KeyInfo is outside what the signature covers: anyone handling the bytes can add to it, and the
XMLDSig schema lets it hold almost anything (``RetrievalMethod``, ``KeyName``, ``PGPData``,
foreign elements ...). A recipient's verifier acts on some of it — xmlsec1 dereferences a
``RetrievalMethod`` (a local file, a URL chosen by whoever edited the bytes) and then refuses the
document the hub vouched for — and the rest is a claim about the signer the hub did not check.
So the hub accepts only what real signing tools write and it can vouch for: ``X509Data`` with
the certificates, ``X509SubjectName`` / ``X509IssuerSerial`` / ``X509SKI`` that name the signer's certificate
(or are left empty, as xmlsec1 leaves an unfilled template node), and one ``KeyValue`` holding
the signer's own key. Everything else is SIGNATURE_INVALID — the same verdict
on the direct path and on signxml's (every case runs both), in both signature placements.

The edits are made after signing (KeyInfo is unsigned): the signature itself still verifies.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from hub.reasons import Reason
from hub.trust.keystore import OrgSigner
from hub.trust.signing import sign_xml
from hub.validators import validate_packet
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import TrustPolicy, fingerprint
from hub.validators.xmldsig import check_xml_signature, verify_with_signxml
from tests.pki_fixtures import AT, DIRECTORY, PKI_NOW
from tests.unit.validators.signature_vectors import SENDER, Vectors

VECTORS_IN_EVERY_PLACEMENT = True
"""Each test that uses ``vectors`` runs once per signature placement (conftest)."""

KEY_INFO = b"<ds:KeyInfo>"
X509_DATA = b"<ds:X509Data>"
CERT_END = b"</ds:X509Data>"


def _verdict(raw: bytes, policy: TrustPolicy) -> tuple[str, str]:
    """The verdict of both verifiers, which must agree: ("passed", fingerprint) or
    ("failed", reason code + detail)."""
    verdicts = []
    for check in (check_xml_signature, verify_with_signxml):
        try:
            verdicts.append(("passed", fingerprint(check(raw, policy).leaf)))
        except ValidationFailure as failure:
            verdicts.append(("failed", f"{failure.reason.value}: {failure.detail}"))
    assert verdicts[0][0] == verdicts[1][0]
    assert verdicts[0][1].split(":")[0] == verdicts[1][1].split(":")[0]
    return verdicts[0]


def _edit(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw
    return raw.replace(old, new, 1)


def _in_key_info(raw: bytes, extra: bytes) -> bytes:
    return _edit(raw, KEY_INFO, KEY_INFO + extra)


def _in_x509_data(raw: bytes, extra: bytes) -> bytes:
    return _edit(raw, X509_DATA, X509_DATA + extra)


def _openssl_name(name: x509.Name) -> str:
    """``name`` as xmlsec1 (OpenSSL's RFC 2253 printer) writes it: non-ASCII as ``\\XX`` UTF-8
    escapes — the exact text xmlsec1 1.2.37 put in X509SubjectName in the interop check."""
    return "".join(ch if ord(ch) < 128 else "".join(f"\\{b:02X}" for b in ch.encode())
                   for ch in name.rfc4514_string())


def _dotnet_name(name: x509.Name) -> str:
    """``name`` as .NET's ``X500DistinguishedName.Name`` writes it (``SignedXml`` tools):
    ``", "`` between RDNs, ``OID.`` before a dotted type, ``E``/``S`` keywords."""
    parts = []
    for rdn in reversed(name.rdns):
        (attr,) = list(rdn)
        key = {"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "S",
               "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "E"}.get(
                   attr.oid.dotted_string, "OID." + attr.oid.dotted_string)
        value = attr.value if isinstance(attr.value, str) else attr.value.decode()
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def _ski(cert: x509.Certificate) -> str:
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return base64.b64encode(ski.digest).decode()


def _rsa_key_value(cert: x509.Certificate) -> bytes:
    numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]

    def b64(n: int) -> bytes:
        return base64.b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    return (b"<ds:KeyValue><ds:RSAKeyValue><ds:Modulus>" + b64(numbers.n)  # type: ignore[union-attr]
            + b"</ds:Modulus><ds:Exponent>" + b64(numbers.e)  # type: ignore[union-attr]
            + b"</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>")


# -- refused -------------------------------------------------------------------------------------


def _other_org(vectors: Vectors) -> x509.Certificate:
    return vectors.pki.org("000.00.02.H27").cert


Edit = Callable[[Vectors], bytes]
"""Builds an edited envelope from the vectors."""

REFUSED: dict[str, Edit] = {
    "retrieval_method_file": lambda v: _in_key_info(
        v.valid_raw, b'<ds:RetrievalMethod URI="file:///etc/hostname" '
        b'Type="http://www.w3.org/2000/09/xmldsig#X509Data"/>'),
    "retrieval_method_http": lambda v: _in_key_info(
        v.valid_raw, b'<ds:RetrievalMethod URI="http://127.0.0.1:9/c.der" '
        b'Type="http://www.w3.org/2000/09/xmldsig#rawX509Certificate"/>'),
    "key_name": lambda v: _in_key_info(v.valid_raw, b"<ds:KeyName>Thu tuong Chinh phu</ds:KeyName>"),
    "empty_key_name": lambda v: _in_key_info(v.valid_raw, b"<ds:KeyName/>"),
    "xinclude": lambda v: _in_key_info(
        v.valid_raw, b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        b'href="file:///etc/passwd" parse="text"/>'),
    "pgp_data": lambda v: _in_key_info(
        v.valid_raw, b"<ds:PGPData><ds:PGPKeyID>AAAA</ds:PGPKeyID></ds:PGPData>"),
    "spki_data": lambda v: _in_key_info(
        v.valid_raw, b"<ds:SPKIData><ds:SPKISexp>AAAA</ds:SPKISexp></ds:SPKIData>"),
    "mgmt_data": lambda v: _in_key_info(v.valid_raw, b"<ds:MgmtData>x</ds:MgmtData>"),
    "foreign_element": lambda v: _in_key_info(v.valid_raw, b'<x:claim xmlns:x="urn:x">y</x:claim>'),
    "text_in_key_info": lambda v: _in_key_info(v.valid_raw, "Người ký: Thủ tướng".encode()),
    "der_encoded_key_value": lambda v: _in_key_info(
        v.valid_raw, b'<dsig11:DEREncodedKeyValue xmlns:dsig11="http://www.w3.org/2009/xmldsig11#">'
        + base64.b64encode(v.org.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        + b"</dsig11:DEREncodedKeyValue>"),
    "text_in_x509_data": lambda v: _in_x509_data(v.valid_raw, b"Thu tuong"),
    "text_in_key_value": lambda v: _in_key_info(
        v.valid_raw, _rsa_key_value(v.org.cert).replace(b"<ds:RSAKeyValue>",
                                                        b"Thu tuong<ds:RSAKeyValue>")),
    "foreign_in_x509_data": lambda v: _in_x509_data(v.valid_raw, b'<x:y xmlns:x="urn:x"/>'),
    "x509_crl": lambda v: _in_x509_data(v.valid_raw, b"<ds:X509CRL>AAAA</ds:X509CRL>"),
    "empty_x509_crl": lambda v: _in_x509_data(v.valid_raw, b"<ds:X509CRL/>"),
    "x509_digest": lambda v: _in_x509_data(
        v.valid_raw, b'<dsig11:X509Digest xmlns:dsig11="http://www.w3.org/2009/xmldsig11#" '
        b'Algorithm="http://www.w3.org/2001/04/xmlenc#sha256">AAAA</dsig11:X509Digest>'),
    "subject_name_of_another_signer": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509SubjectName>" + _openssl_name(_other_org(v).subject).encode()
        + b"</ds:X509SubjectName>"),
    "subject_name_of_the_issuing_ca_it_carries": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509SubjectName>" + _openssl_name(v.pki.issuing_ca.subject).encode()
        + b"</ds:X509SubjectName>"),
    "ski_of_the_issuing_ca_it_carries": lambda v: _in_key_info(
        v.valid_raw, b"<ds:X509Data><ds:X509SKI>" + _ski(v.pki.issuing_ca).encode()
        + b"</ds:X509SKI></ds:X509Data>"),
    "subject_name_not_a_name": lambda v: _in_x509_data(
        v.valid_raw, "<ds:X509SubjectName>Bộ trưởng Bộ Nội vụ</ds:X509SubjectName>".encode()),
    "issuer_serial_other_serial": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509IssuerSerial><ds:X509IssuerName>"
        + _openssl_name(v.org.cert.issuer).encode() + b"</ds:X509IssuerName><ds:X509SerialNumber>"
        + str(_other_org(v).serial_number).encode() + b"</ds:X509SerialNumber></ds:X509IssuerSerial>"),
    "issuer_serial_other_issuer": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509IssuerSerial><ds:X509IssuerName>CN=Nobody</ds:X509IssuerName>"
        b"<ds:X509SerialNumber>" + str(v.org.cert.serial_number).encode()
        + b"</ds:X509SerialNumber></ds:X509IssuerSerial>"),
    "ski_of_another_key": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509SKI>" + _ski(_other_org(v)).encode() + b"</ds:X509SKI>"),
    "key_value_of_another_key": lambda v: _in_key_info(v.valid_raw, _rsa_key_value(_other_org(v))),
    "two_key_values": lambda v: _in_key_info(
        v.valid_raw, _rsa_key_value(v.org.cert) + _rsa_key_value(v.org.cert)),
    "dsa_key_value": lambda v: _in_key_info(
        v.valid_raw, b"<ds:KeyValue><ds:DSAKeyValue><ds:Y>AAAA</ds:Y></ds:DSAKeyValue>"
        b"</ds:KeyValue>"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_keyinfo_content_the_hub_cannot_vouch_for_is_refused_on_both_paths(
    name: str, vectors: Vectors
) -> None:
    # Given a validly signed envelope whose (unsigned) KeyInfo was added to in transit
    raw = REFUSED[name](vectors)
    # When both verifiers judge it, Then both refuse it as an invalid signature, saying why
    verdict, detail = _verdict(raw, vectors.policy)
    assert verdict == "failed"
    assert detail.startswith(Reason.SIGNATURE_INVALID.value + ": "), detail
    assert "KeyInfo" in detail or "X509" in detail or "KeyValue" in detail, detail


def test_a_retrieval_method_envelope_is_refused_by_the_full_validation(vectors: Vectors) -> None:
    # Given the reviewer's reproducer: a RetrievalMethod to a local file added to KeyInfo
    raw = REFUSED["retrieval_method_file"](vectors)
    # When the hub validates the packet, Then it refuses it (no receipt for a document a
    # recipient's xmlsec1 refuses after reading /etc/hostname)
    report = validate_packet(vectors.packet(raw), at=AT, policy=vectors.policy,
                             directory=DIRECTORY, crls=vectors.crls)
    assert not report.accepted
    problem = report.first_problem
    assert problem is not None
    assert (problem.check, problem.reason) == ("xmldsig", Reason.SIGNATURE_INVALID)
    assert "RetrievalMethod" in problem.evidence.get("detail", "")


# -- accepted ------------------------------------------------------------------------------------


ACCEPTED: dict[str, Edit] = {
    "certificates_only": lambda v: v.valid_raw,
    "empty_subject_name": lambda v: _in_x509_data(v.valid_raw, b"<ds:X509SubjectName/>"),
    "subject_name_as_xmlsec1_writes_it": lambda v: _in_key_info(
        v.valid_raw, b"<ds:X509Data><ds:X509SubjectName>" + _openssl_name(v.org.cert.subject).encode()
        + b"</ds:X509SubjectName></ds:X509Data>"),
    "subject_name_in_unicode": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509SubjectName>" + v.org.cert.subject.rfc4514_string().encode()
        + b"</ds:X509SubjectName>"),
    "subject_name_as_dotnet_writes_it": lambda v: _in_x509_data(
        v.valid_raw, b"<ds:X509SubjectName>" + _dotnet_name(v.org.cert.subject).encode()
        + b"</ds:X509SubjectName>"),
    "issuer_serial_of_the_leaf": lambda v: _in_key_info(
        v.valid_raw, b"<ds:X509Data><ds:X509IssuerSerial>\n<ds:X509IssuerName>"
        + _openssl_name(v.org.cert.issuer).encode() + b"</ds:X509IssuerName>\n"
        b"<ds:X509SerialNumber>" + str(v.org.cert.serial_number).encode()
        + b"</ds:X509SerialNumber>\n</ds:X509IssuerSerial></ds:X509Data>"),
    "ski_of_the_leaf": lambda v: _in_key_info(
        v.valid_raw, b"<ds:X509Data><ds:X509SKI>" + _ski(v.org.cert).encode()
        + b"\n</ds:X509SKI></ds:X509Data>"),
    "empty_ski": lambda v: _in_x509_data(v.valid_raw, b"<ds:X509SKI/>"),
    "key_value_of_the_signer": lambda v: _in_key_info(v.valid_raw, _rsa_key_value(v.org.cert)),
    "comment_in_key_info": lambda v: _in_key_info(v.valid_raw, b"<!-- c -->"),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_keyinfo_forms_real_tools_write_are_accepted_on_both_paths(
    name: str, vectors: Vectors
) -> None:
    # Given a validly signed envelope whose KeyInfo has a shape xmlsec1, signxml or .NET writes,
    # every claim in it true of the signer's certificate
    raw = ACCEPTED[name](vectors)
    # When / Then: both verifiers accept it and name the organization's certificate
    assert _verdict(raw, vectors.policy) == ("passed", fingerprint(vectors.org.cert))


def test_too_many_certificate_references_in_keyinfo_are_refused_before_any_is_read(
    vectors: Vectors
) -> None:
    # Given 50 copies of a (true) X509SubjectName: KeyInfo holds at most 3 names per certificate
    # it may carry
    name = b"<ds:X509SubjectName>" + _openssl_name(vectors.org.cert.subject).encode() + (
        b"</ds:X509SubjectName>")
    raw = _in_x509_data(vectors.valid_raw, name * 50)
    # Then it is refused as too large, on both paths
    verdict, detail = _verdict(raw, vectors.policy)
    assert (verdict, detail.split(":")[0]) == ("failed", Reason.SIGNATURE_KEY_INFO_TOO_LARGE.value)


def test_a_subject_name_longer_than_any_certificate_is_refused_before_it_is_parsed(
    vectors: Vectors
) -> None:
    raw = _in_x509_data(vectors.valid_raw,
                        b"<ds:X509SubjectName>CN=" + b"a" * 200_000 + b"</ds:X509SubjectName>")
    verdict, detail = _verdict(raw, vectors.policy)
    assert (verdict, detail.split(":")[0]) == ("failed", Reason.SIGNATURE_KEY_INFO_TOO_LARGE.value)


@pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")  # on purpose
def test_the_subject_name_of_a_signer_whose_common_name_is_over_64_characters_is_accepted(
    vectors: Vectors
) -> None:
    # Given a signer whose certificate's CN is longer than RFC 5280's bound (long agency names;
    # cryptography refuses to build such a name from text, but reads it from a certificate)
    long_name = "Trung tâm Công nghệ thông tin và Truyền thông tỉnh Thừa Thiên Huế — Văn thư"
    assert len(long_name) > 64
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, long_name, _validate=False),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
    key = vectors.pki.keys("long-common-name", 2048)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(4242)
            .not_valid_before(PKI_NOW - dt.timedelta(days=1))
            .not_valid_after(PKI_NOW + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    signed = sign_xml(vectors.envelope(), OrgSigner(SENDER, key, cert))
    # When KeyInfo names it as xmlsec1 writes it, Then both verifiers accept the name
    raw = _in_x509_data(signed, b"<ds:X509SubjectName>" + _openssl_name(cert.subject).encode()
                        + b"</ds:X509SubjectName>")
    assert _verdict(raw, vectors.policy) == ("passed", fingerprint(cert))
