"""The fast path's CMS steps give pyHanko's answers, function by function (issue 23).

:mod:`hub.validators._pdfcms` is pyHanko's signer-certificate matching, signing-certificate
(ESS) check and signature-integrity check with each RFC 5280 name comparison remembered, and
the ``/ByteRange`` digests hashed from memory. Each is compared here with the pyHanko function
it stands for — the same answer, or the same exception type — on names equal only once
prepared (RFC 4518: case, spaces, another string type), names that cannot be prepared, names
pyHanko cannot compare at all, the ESS forms of an issuer, every signature of the test PDFs
with their certificates found and their integrity checked, and random byte ranges. The
verdicts of the two whole paths are compared in ``test_pdf_fast_path.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import general as pyhanko_general
from pyhanko.sign.validation import generic_cms

from hub.trust.signing import minimal_pdf, sign_pdf
from hub.validators import _pdfcms
from tests.unit.validators.names import renamed
from tests.unit.validators.signature_vectors import Vectors

Outcome = tuple[object, ...]


def _outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """What ``fn`` returns, or the type of what it raises (the verdict depends on no more)."""
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:
        return ("raised", type(exc).__name__)
    if isinstance(value, pyhanko_general.SignedDataCerts):
        return ("certs", value.signer_cert.dump(), tuple(c.dump() for c in value.other_certs),
                tuple(c.dump() for c in value.attribute_certs))
    return ("returned", value)


def _asn1(cert: Any) -> asn1_x509.Certificate:
    from cryptography.hazmat.primitives import serialization

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _odd_name(value: int) -> Any:
    """A name whose one attribute (an unregistered type) holds an INTEGER: asn1crypto's
    comparison cannot prepare it (TypeError, not ValueError)."""
    return asn1_x509.Name.load(asn1_x509.Name(name="", value=asn1_x509.RDNSequence([
        asn1_x509.RelativeDistinguishedName([asn1_x509.NameTypeAndValue(
            {"type": "1.3.6.1.4.1.99999.1", "value": core.Integer(value)})])])).dump())


def _issued_by(cert: asn1_x509.Certificate, issuer: Any) -> asn1_x509.Certificate:
    """``cert`` with another issuer name (its signature no longer matters here)."""
    copy = asn1_x509.Certificate.load(cert.dump())
    copy["tbs_certificate"]["issuer"] = issuer
    return asn1_x509.Certificate.load(copy.dump())


ISSUER_VARIANTS: dict[str, Callable[[Any], Any]] = {
    "identical": lambda n: asn1_x509.Name.load(n.dump()),
    "upper_case_bmp": lambda n: renamed(n, str.upper),
    "spaces_utf8": lambda n: renamed(n, lambda v: f"  {v}  ".replace(" ", "   "), "utf8_string"),
    "private_use_character": lambda n: renamed(n, lambda v: v + "\ue000"),
    "unassigned_code_point": lambda n: renamed(n, lambda v: v + "\u0378"),
    "another_name": lambda n: renamed(n, lambda v: v + " khac"),
    "one_rdn_less": lambda n: asn1_x509.Name.load(asn1_x509.Name(
        name="", value=asn1_x509.RDNSequence(list(n.chosen)[:-1])).dump()),
}


def _issuer_serials(issuer: Any, serial: int) -> dict[str, Any]:
    """``issuer`` and ``serial`` as a SignerInfo names a signer, and as an ESS IssuerSerial
    does (one directory name; two names; no directory name)."""
    directory = asn1_x509.GeneralName(name="directory_name", value=issuer)
    dns = asn1_x509.GeneralName(name="dns_name", value="ca.example")
    return {
        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": issuer, "serial_number": serial}),
        "ess_one_directory_name": tsp.IssuerSerial(
            {"issuer": asn1_x509.GeneralNames([directory]), "serial_number": serial}),
        "ess_two_names": tsp.IssuerSerial(
            {"issuer": asn1_x509.GeneralNames([directory, dns]), "serial_number": serial}),
        "ess_no_directory_name": tsp.IssuerSerial(
            {"issuer": asn1_x509.GeneralNames([dns]), "serial_number": serial}),
    }


def _loaded(value: Any) -> Any:
    """``value`` as parsed from its encoding (as pyHanko meets it in a CMS)."""
    return type(value).load(value.dump())


@pytest.mark.parametrize("variant", ISSUER_VARIANTS)
def test_matching_a_certificate_by_issuer_and_serial_gives_pyhankos_answer(
    variant: str, vectors: Vectors,
) -> None:
    cert = _asn1(vectors.person.cert)
    issuer = ISSUER_VARIANTS[variant](cert.issuer)
    for serial in (cert.serial_number, cert.serial_number + 1):
        for form, expected in _issuer_serials(issuer, serial).items():
            reference = _outcome(pyhanko_general.match_issuer_serial, _loaded(expected), cert)
            # Twice: the second answer comes from what the first remembered
            for _ in range(2):
                assert _outcome(_pdfcms.match_issuer_serial, _loaded(expected), cert) == \
                    reference, (variant, form, serial)


def test_names_pyhanko_cannot_compare_raise_what_pyhanko_raises(vectors: Vectors) -> None:
    # Given a certificate whose issuer holds an INTEGER where a string is expected
    cert = _issued_by(_asn1(vectors.person.cert), _odd_name(5))
    for expected in (_odd_name(6), _odd_name(5)):
        for form, named in _issuer_serials(expected, cert.serial_number).items():
            reference = _outcome(pyhanko_general.match_issuer_serial, _loaded(named), cert)
            # Then the hub's matching raises (or answers) as pyHanko's does, every time
            for _ in range(2):
                assert _outcome(_pdfcms.match_issuer_serial, _loaded(named), cert) == reference, \
                    form
    assert _outcome(pyhanko_general.match_issuer_serial, _loaded(_issuer_serials(
        _odd_name(6), cert.serial_number)["issuer_and_serial_number"]), cert) == \
        ("raised", "TypeError")


CN_TEXT = st.text(st.characters(max_codepoint=0xFFFF).filter(
    lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=8)  # BMP, no lone surrogates


@settings(max_examples=300, deadline=None)
@given(first=CN_TEXT, second=CN_TEXT, kinds=st.sampled_from(
    [("utf8_string", "utf8_string"), ("utf8_string", "bmp_string"),
     ("bmp_string", "universal_string")]))
def test_any_two_names_compare_as_pyhanko_compares_them(
    first: str, second: str, kinds: tuple[str, str],
) -> None:
    # Given two one-attribute names, in two string types
    def name(value: str, kind: str) -> Any:
        return asn1_x509.Name.load(asn1_x509.Name(name="", value=asn1_x509.RDNSequence([
            asn1_x509.RelativeDistinguishedName([asn1_x509.NameTypeAndValue({
                "type": "common_name",
                "value": asn1_x509.DirectoryString(name=kind, value=value)})])])).dump())

    for expected_text in (first, first.upper(), f" {first}  ", second):
        expected = cms.IssuerAndSerialNumber(
            {"issuer": name(expected_text, kinds[0]), "serial_number": 7})
        cert = _fake_cert(name(first, kinds[1]), 7)
        reference = _outcome(pyhanko_general.match_issuer_serial, _loaded(expected), cert)
        assert _outcome(_pdfcms.match_issuer_serial, _loaded(expected), cert) == reference


def _fake_cert(issuer: Any, serial: int) -> Any:
    """What match_issuer_serial reads of a certificate: its issuer and serial."""
    @dataclass
    class Fake:
        issuer: Any
        serial: core.Integer

        def __getitem__(self, key: str) -> Any:
            return {"serial_number": self.serial} if key == "tbs_certificate" else None

    return Fake(issuer, core.Integer(serial))


# -- every signature of the test PDFs ---------------------------------------------------------


def _pdfs(vectors: Vectors) -> dict[str, bytes]:
    from tests.unit.validators.test_pdf_fast_path import SHAPES

    wanted = ("valid", "sha1_digest", "signature_value_changed", "cms_certificates_broken",
              "signer_named_by_issuer_equal_once_prepared", "signer_named_by_key_identifier",
              "signer_named_by_issuer_that_cannot_be_prepared", "signer_named_by_another_serial",
              "forged_twin_after_the_signer", "forged_twin_before_the_signer",
              "person_sha512_organization_sha256", "untrusted_public_ca")
    return {name: SHAPES[name].make(vectors) for name in wanted}


def _embedded(pdf: bytes) -> list[Any]:
    try:
        return list(PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures)
    except Exception:
        return []


def test_each_signature_gets_pyhankos_certificates_and_integrity(vectors: Vectors) -> None:
    checked = 0
    for name, pdf in _pdfs(vectors).items():
        for signature in _embedded(pdf):
            signed_data = signature.signed_data
            # The certificates found (signer, others), or the same exception type
            reference = _outcome(generic_cms.extract_certs_for_validation, signed_data)
            assert _outcome(_pdfcms.signer_certificates, signed_data) == reference, name
            if reference[0] == "raised":
                continue
            cert = _pdfcms.signer_certificates(signed_data).signer_cert
            signer_info = signature.signer_info
            # The integrity of the signature, with the right and a wrong digest and content type
            digest = signature.compute_digest()
            for content_type, actual in (("data", digest), ("data", bytes(len(digest))),
                                         ("tst_info", digest)):
                args = (signer_info, cert, content_type, actual)
                reference = _outcome(generic_cms.validate_sig_integrity, *args)
                assert _outcome(_pdfcms.validate_sig_integrity, *args) == reference, name
                assert _outcome(_pdfcms.validate_sig_integrity, *args,
                                signing_certificate_checked=True) == reference, name
            checked += 1
    assert checked >= 15


def test_a_signing_certificate_attribute_that_names_another_certificate_is_refused_alike(
    vectors: Vectors,
) -> None:
    # Given the person's signature and the organization's certificate
    signature = _embedded(sign_pdf(minimal_pdf(), vectors.person, field_name="Ky", reason="r"))[0]
    attrs = signature.signer_info["signed_attrs"]
    for cert in (_asn1(vectors.org.cert), _asn1(vectors.person.cert)):
        # Then the ESS check refuses (or accepts) it as pyHanko's does
        reference = _outcome(generic_cms._check_signing_certificate, cert, attrs)
        assert _outcome(_pdfcms.check_signing_certificate, cert, attrs) == reference
    assert _outcome(_pdfcms.check_signing_certificate, _asn1(vectors.org.cert), attrs) == \
        ("raised", "SignatureValidationError")


# -- /ByteRange digests ------------------------------------------------------------------------


@dataclass
class _Signature:
    """What byte_range_digests reads of a signature."""

    byte_range: Any
    external_md_algorithm: Any


def _range(values: list[object]) -> Any:
    def pdf_number(v: object) -> object:
        if isinstance(v, float):
            return generic.FloatObject(v)  # type: ignore[no-untyped-call]
        return generic.NumberObject(v)  # type: ignore[no-untyped-call]

    return generic.ArrayObject([pdf_number(v) for v in values])


SIZE = 3000
OFFSET = st.integers(min_value=0, max_value=SIZE + 50)
RANGES = st.one_of(
    st.tuples(st.just(0), OFFSET, OFFSET, OFFSET).map(list),  # the usual shape
    st.tuples(OFFSET, OFFSET, OFFSET, OFFSET).map(list),
    st.lists(st.integers(min_value=-3, max_value=SIZE + 50), min_size=1, max_size=7),
    st.tuples(st.just(0), OFFSET, st.sampled_from([1.0, 2.5, 2**70]), OFFSET).map(list),
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=0, max_size=SIZE), signatures=st.lists(st.tuples(
    RANGES, st.sampled_from(["sha256", "sha384", "sha1", "md5", "shake256", None])),
    min_size=1, max_size=4))
def test_byte_range_digests_are_pyhankos_or_left_to_it(
    data: bytes, signatures: list[tuple[list[object], str | None]],
) -> None:
    fakes = [_Signature(_range(r), md) for r, md in signatures]
    digests = _pdfcms.byte_range_digests(data, fakes)
    for fake, digest in zip(fakes, digests, strict=True):
        values = list(fake.byte_range)
        standard = len(values) == 4 and all(
            type(v) is generic.NumberObject and 0 <= v <= len(data) for v in values)
        # Computed exactly for the usual shapes and algorithms, left to pyHanko otherwise
        assert (digest is not None) == (standard and fake.external_md_algorithm in (
            "sha256", "sha384", "sha1")), (values, fake.external_md_algorithm)
        if digest is not None:
            _, reference = pyhanko_general.byte_range_digest(
                io.BytesIO(data), fake.byte_range, fake.external_md_algorithm)
            assert digest == reference, values


def test_the_two_signatures_of_a_pdf_get_pyhankos_digests(vectors: Vectors) -> None:
    for pdf in (vectors.good_pdf, _pdfs(vectors)["person_sha512_organization_sha256"]):
        signatures = _embedded(pdf)
        assert len(signatures) == 2
        ours = _pdfcms.byte_range_digests(pdf, signatures)
        assert ours == [s.compute_digest() for s in signatures]
