"""The generated test PKI as a session fixture (keys are generated once per test session).

``tests`` is a package (``from tests.pki_fixtures import ...``). A test module or conftest
declares::

    @pytest.fixture(scope="session")
    def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
        return session_pki(tmp_path_factory)

:func:`session_pki` generates the PKI once per session whichever module asks first.
Nothing here is a real key: everything is generated into a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from hub.directory import Directory
from hub.testing.pki import KeyCache, PkiPaths, init_pki, orgs_from_directory
from hub.trust.keystore import Keystore, OrgSigner

PKI_NOW = dt.datetime(2026, 3, 2, 8, 0, 0, tzinfo=dt.UTC)
"""The instant the test PKI is generated for: validity windows and CRLs are relative to it."""
AT = PKI_NOW + dt.timedelta(minutes=5)
"""A receipt time inside every validity window and within the CRLs' freshness."""

AXIS_SENDER = "000.00.00.H99"
"""A fictional province reached through the national axis, with a person signer (the bundled
sample lists only the seals of its axis bodies)."""
AXIS_PERSON = "CCCD:099080000001"
"""The person signer of :data:`AXIS_SENDER`."""
AXIS_EXTRA = f"""
[[org]]
codes = ["{AXIS_SENDER}", "H99"]
name = "Ủy ban nhân dân tỉnh Thử Nghiệm (TEST)"
level = 1
valid_from = 2016-04-01
broker_user = "axis-gateway"
reach = "axis"

  [[org.signer]]
  uid = "{AXIS_SENDER}"
  role = "organization"
  name = "Ủy ban nhân dân tỉnh Thử Nghiệm (TEST)"

  [[org.signer]]
  uid = "{AXIS_PERSON}"
  role = "person"
  name = "Lê Văn Trục"
  position = "Chủ tịch"
"""
DIRECTORY = Directory.from_toml(
    (importlib.resources.files("hub") / "data" / "directory-ha-tinh.toml").read_text("utf-8")
    + AXIS_EXTRA, "sample+axis")
"""The bundled Hà Tĩnh directory plus :data:`AXIS_SENDER`: the PKI issues a certificate to each
of their signers (axis bodies included, outside the keystore)."""
SAMPLE_ORGS = orgs_from_directory(DIRECTORY)
"""The directly served organizations and their person signers, as the PKI sees them."""


def _load_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


@dataclass
class GeneratedPki:
    """A generated PKI with its files and the loaded objects tests need."""

    paths: PkiPaths
    keys: KeyCache = field(default_factory=KeyCache)

    @cached_property
    def keystore(self) -> Keystore:
        return Keystore.load(self.paths.keystore)

    @cached_property
    def root(self) -> x509.Certificate:
        return _load_certs(self.paths.root_cert)[0]

    @cached_property
    def issuing_ca(self) -> x509.Certificate:
        return _load_certs(self.paths.issuing_ca_cert)[0]

    @cached_property
    def public_root(self) -> x509.Certificate:
        return _load_certs(self.paths.public_root_cert)[0]

    @cached_property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        return tuple(
            x509.load_der_x509_crl(p.read_bytes())
            for p in (self.paths.root_crl_der, self.paths.crl_der)
        )

    def org(self, organ_id: str) -> OrgSigner:
        """The organization (seal) signer, from the keystore."""
        signer = self.keystore.signer(organ_id)
        assert signer is not None, organ_id
        return signer

    def _load(self, name: str, where: Any) -> OrgSigner:
        return OrgSigner.from_files(name, where.key, where.cert)

    @cached_property
    def _loaded(self) -> dict[str, OrgSigner]:
        return {}

    def _cached(self, label: str, where: Any) -> OrgSigner:
        if label not in self._loaded:
            self._loaded[label] = self._load(label, where)
        return self._loaded[label]

    def person(self, uid: str) -> OrgSigner:
        """A person signer's key and certificate (wrapped as a signer)."""
        return self._cached(f"person:{uid}", self.paths.signers[uid])

    def special(self, kind: str) -> OrgSigner:
        """One of :data:`hub.testing.pki.SPECIAL_KINDS`."""
        return self._cached(f"special:{kind}", self.paths.special[kind])

    def axis_org(self, organ_id: str) -> OrgSigner:
        """The seal of a body reached through the axis (not in the keystore)."""
        return self._cached(f"axis:{organ_id}", self.paths.axis_organizations[organ_id])

    @property
    def business(self) -> OrgSigner:
        """A business certificate under the untrusted public-CA-like chain."""
        return self._cached("business", self.paths.business)

    @property
    def self_signed(self) -> OrgSigner:
        return self._cached("self-signed", self.paths.self_signed)


def make_pki(
    base: Path, directory: Any = DIRECTORY, *, keys: KeyCache | None = None,
    ocsp_url: str | None = None,
) -> GeneratedPki:
    """A test PKI at :data:`PKI_NOW`; pass the ``keys`` of another to reuse its keys (fast)."""
    keys = keys or KeyCache()
    paths = init_pki(base, directory, now=PKI_NOW, keys=keys, ocsp_url=ocsp_url,
                     include_axis=True)
    return GeneratedPki(paths, keys)


_SESSION: dict[Path, GeneratedPki] = {}


def session_pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    """The session's test PKI (generated once per session, ~0.6 s)."""
    base = tmp_path_factory.getbasetemp()
    if base not in _SESSION:
        _SESSION[base] = make_pki(tmp_path_factory.mktemp("pki"))
    return _SESSION[base]


# -- certificates made for one test (CA constraints, malformed fields) ------------------------


@dataclass(frozen=True)
class Issued:
    """A certificate made for a test, with its key and the chain above it (root excluded)."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    name: x509.Name | None = None
    """The subject as issued, when :func:`patched` made it unreadable (to issue under it)."""

    @property
    def signer(self) -> OrgSigner:
        """As a signer (envelope or PDF), offering its chain."""
        return OrgSigner("test", self.key, self.cert, self.chain)


def issuing_ca(pki: GeneratedPki) -> Issued:
    """The test PKI's issuing CA (pathLenConstraint 0), to issue from."""
    return Issued(pki.issuing_ca, pki.keys("issuing-ca", 2048))


_SIGNING_USAGE = {"digital_signature": True, "content_commitment": True}
_CA_USAGE = {"key_cert_sign": True, "crl_sign": True}


def issue(
    pki: GeneratedPki,
    label: str,
    issuer: Issued,
    *,
    ca: bool = False,
    path_length: int | None = None,
    key_usage: dict[str, bool] | None = None,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    uid: str | None = None,
    bits: int = 2048,
) -> Issued:
    """A certificate under ``issuer`` with the test policy OID; ``extensions`` are added as
    (value, critical) pairs (an :class:`x509.UnrecognizedExtension` carries any bytes, so a
    known extension's OID with garbage makes a malformed extension)."""
    usage = dict.fromkeys((
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    usage.update(key_usage or (_CA_USAGE if ca else _SIGNING_USAGE))
    key = pki.keys(f"issued:{label}", bits)
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                  x509.NameAttribute(NameOID.COMMON_NAME, f"{label} (TEST)")]
    if uid is not None:
        attributes.append(x509.NameAttribute(NameOID.USER_ID, uid))
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name(attributes))
        .issuer_name(issuer.name or issuer.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(PKI_NOW - dt.timedelta(days=30))
        .not_valid_after(PKI_NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    given = {e.oid for e, _ in extensions}
    if ExtensionOID.KEY_USAGE not in given:
        builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if ExtensionOID.CERTIFICATE_POLICIES not in given:
        builder = builder.add_extension(x509.CertificatePolicies([x509.PolicyInformation(
            x509.ObjectIdentifier(pki.paths.policy_oid), None)]), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return Issued(cert, key, (issuer.cert, *issuer.chain))


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    head = bytes([size]) if size < 0x80 else (
        bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes((size.bit_length() + 7) // 8,
                                                                       "big"))
    return bytes([tag]) + head + content


SHA256_RSA = bytes.fromhex("2a864886f70d01010b")
"""The DER body of the sha256WithRSAEncryption OID (to patch in an unknown algorithm)."""


def patched(issued: Issued, issuer: Issued, old: bytes, new: bytes) -> Issued:
    """``issued`` with ``old`` replaced by ``new`` (same length) everywhere in its DER, then
    re-signed by ``issuer``: a certificate whose signature verifies but whose content is
    malformed (a name that is not UTF-8, an unknown signature algorithm ...). Parsed lazily by
    ``cryptography``, it loads; reading the field raises."""
    assert len(old) == len(new)
    tbs = issued.cert.tbs_certificate_bytes
    assert old in tbs, old
    tbs = tbs.replace(old, new)
    signature = issuer.key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    algorithm = _tlv(0x30, _tlv(0x06, SHA256_RSA) + b"\x05\x00").replace(old, new)
    der = _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))
    return Issued(x509.load_der_x509_certificate(der), issued.key, issued.chain,
                  issued.cert.subject)


# -- PDFs for the change policy (issue 16, M2) --------------------------------------------------


FORM_FIELDS = ("SoKyHieu", "NgayBanHanh")
"""The text fields a clerk fills when issuing (document number and notation, date)."""
_FIELD_BOX = (228, 20)


def form_pdf(text: str = "Cong van", fields: tuple[str, ...] = FORM_FIELDS) -> bytes:
    """A one-page PDF with empty text fields (merged field + widget, each with an empty
    appearance), as drafting software leaves the number and date of a document to be issued."""
    from hub.trust.signing import pdf_from_objects

    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    first = 6
    refs = [f"{first + 2 * i} 0 R" for i in range(len(fields))]
    objects = [
        (f"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{' '.join(refs)}] "
         "/DA (/Helv 10 Tf 0 g) /DR << /Font << /Helv 5 0 R >> >> >> >>").encode(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [{' '.join(refs)}] "
         "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>").encode(),
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    width, height = _FIELD_BOX
    for i, name in enumerate(fields):
        top = 800 - 30 * i
        objects.append(
            (f"<< /FT /Tx /T ({name}) /Type /Annot /Subtype /Widget /F 4 "
             f"/Rect [320 {top - height} {320 + width} {top}] /P 3 0 R "
             f"/DA (/Helv 10 Tf 0 g) /AP << /N {first + 2 * i + 1} 0 R >> >>").encode())
        objects.append(
            f"<< /Type /XObject /Subtype /Form /BBox [0 0 {width} {height}] /Length 0 >>\n"
            "stream\n\nendstream".encode())
    return pdf_from_objects(objects)


def fill_form(pdf: bytes, values: dict[str, str]) -> bytes:
    """An incremental update that fills text fields (value and a new appearance), as a clerk's
    tool does: what pyHanko's difference analysis calls form filling."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    width, height = _FIELD_BOX
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        name = str(field["/T"])
        if name not in values:
            continue
        value = values[name]
        field["/V"] = generic.pdf_string(value)
        safe = "".join(c for c in value if c.isascii() and c not in "()\\")
        appearance = generic.StreamObject(
            {generic.NameObject("/Type"): generic.NameObject("/XObject"),
             generic.NameObject("/Subtype"): generic.NameObject("/Form"),
             generic.NameObject("/BBox"): generic.ArrayObject(
                 [generic.NumberObject(n)  # type: ignore[no-untyped-call]
                  for n in (0, 0, width, height)]),
             generic.NameObject("/Resources"): writer.root["/AcroForm"].raw_get("/DR")},
            stream_data=f"/Tx BMC BT /Helv 10 Tf 2 6 Td ({safe}) Tj ET EMC".encode())
        field["/AP"] = generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {generic.NameObject("/N"): writer.add_object(appearance)})
        writer.update_container(field)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def sign_visible(pdf: bytes, signer: OrgSigner, field_name: str,
                 box: tuple[int, int, int, int] = (0, 0, 595, 842)) -> bytes:
    """A signature in a new field whose appearance covers ``box`` of the first page (by default
    the whole A4 page: a "shadow" that hides what was signed before)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    from hub.trust.signing import _pdf_signer

    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm="sha256")
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=_pdf_signer(signer),
        new_field_spec=fields.SigFieldSpec(field_name, box=box, on_page=0))
    data: bytes = out.getvalue()
    return data
