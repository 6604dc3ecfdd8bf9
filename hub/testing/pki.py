"""A generated **test** PKI shaped like Vietnam's specialized (Ban Cơ yếu Chính phủ) hierarchy.

Never use it for real traffic: every key is generated on the spot and written unencrypted
unless a passphrase is given. What it builds (the Government Cipher Committee's specialized
certification service, Circular 08/2016/TT-BQP):

- the trusted **specialized** hierarchy: root "RootCA chuyên dùng Chính phủ G2 (TEST)" and the
  issuing CA "CA phục vụ các cơ quan Nhà nước G2 (TEST)". The real root is RSA-4096; the test
  root uses **RSA-3072** (4096-bit generation costs about a second here) and everything below it
  RSA-2048;
- end-entity certificates for every person signer in the directory (subject ``UID`` =
  the signer's uid, ``CN`` = name, ``O`` = organization, ``C=VN``) and an **organization
  certificate** (the electronic seal) for every organization the hub serves directly (subject
  ``UID`` = the organization code, ``CN`` = ``O`` = organization name), with its key in
  ``DIR/keystore/<organ_id>.key.pem`` and ``DIR/keystore/<organ_id>.pem`` (certificate + chain);
- CRLs (DER and PEM) from both CAs; the issuing CA's revokes the ``revoked`` special certificate;
- with ``ocsp_url``: every certificate below the root names that OCSP responder
  (authorityInfoAccess), and a **delegated OCSP responder** certificate is issued by the issuing
  CA (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, 30 days; RFC 6960 §4.2.2.2) into
  ``DIR/ocsp-responder.pem``;
- with ``include_axis``: certificates for the bodies reached through the national axis too
  (the same specialized CA serves state bodies nationwide), under ``DIR/axis`` — never in the
  keystore: the hub does not sign for them;
- **untrusted** hierarchies for negative tests, kept apart under ``DIR/untrusted``: a public-CA-like
  chain ("NEAC-like public root (TEST)" → "Commercial CA (TEST)" → a business) and a self-signed
  certificate;
- special certificates under ``DIR/special`` for the signature vectors: ``expired``,
  ``not_yet_valid``, ``revoked``, ``wrong_key_usage`` (keyEncipherment only), ``rsa1024``,
  ``no_policy`` (no certificate policy). They carry the first organization's identity so that
  only the property under test makes them fail.

The specialized certificate policy OID is configurable; the default
:data:`TEST_POLICY_OID` ``1.3.6.1.4.1.99999.1.1`` sits under a private-enterprise arc that is
clearly not the Government Cipher Committee's (whose real OIDs belong in configuration).

Keys are written PKCS#8 PEM. Key generation dominates the cost (RSA-2048 ~50 ms, RSA-3072
~300 ms); :class:`KeyCache` lets tests reuse keys between calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

TEST_POLICY_OID = "1.3.6.1.4.1.99999.1.1"
"""Test stand-in for the specialized-certificate policy (private arc 99999 = example enterprise)."""
PUBLIC_POLICY_OID = "1.3.6.1.4.1.99999.2.1"
"""Policy of the public-CA-like chain (a public cert is refused for its root, not its policy)."""
DEFAULT_CRL_BASE_URL = "http://127.0.0.1:8089/crl"

ROOT_NAME = "RootCA chuyên dùng Chính phủ G2 (TEST)"
ISSUING_CA_NAME = "CA phục vụ các cơ quan Nhà nước G2 (TEST)"
PUBLIC_ROOT_NAME = "NEAC-like public root (TEST)"
PUBLIC_CA_NAME = "Commercial CA (TEST)"
ROOT_BITS = 3072
"""The real G2 root is RSA-4096; 3072 keeps the test PKI fast while still above the policy floor."""

SPECIAL_KINDS = ("expired", "not_yet_valid", "revoked", "wrong_key_usage", "rsa1024", "no_policy")

KeySource = Callable[[str, int], rsa.RSAPrivateKey]
"""Gives the private key for a label and size (lets tests cache keys)."""


@dataclass(frozen=True, slots=True)
class SignerSpec:
    """A person who signs for an organization (from the directory)."""

    uid: str
    name: str


@dataclass(frozen=True, slots=True)
class OrgSpec:
    """An organization the hub serves directly, with its person signers."""

    organ_id: str
    name: str
    signers: tuple[SignerSpec, ...] = ()
    seal_uid: str | None = None
    """UID of the organization certificate (default: ``organ_id``)."""


@dataclass(frozen=True, slots=True)
class IssuedPaths:
    """Where one issued certificate and its key were written."""

    cert: Path
    """PEM: the certificate followed by its issuing chain (not the root)."""
    key: Path
    """PKCS#8 PEM private key."""


@dataclass(frozen=True, slots=True)
class PkiPaths:
    """Every file :func:`init_pki` wrote."""

    dir: Path
    root_cert: Path
    issuing_ca_cert: Path
    issuing_ca_key: Path
    root_crl_der: Path
    root_crl_pem: Path
    crl_der: Path
    """The issuing CA's CRL (DER); it revokes ``special['revoked']``."""
    crl_pem: Path
    keystore: Path
    public_root_cert: Path
    public_ca_cert: Path
    business: IssuedPaths
    self_signed: IssuedPaths
    organizations: Mapping[str, IssuedPaths]
    """organ_id → organization (seal) certificate and key (the key also sits in ``keystore``)."""
    signers: Mapping[str, IssuedPaths]
    """signer uid → personal certificate and key."""
    special: Mapping[str, IssuedPaths]
    """kind (:data:`SPECIAL_KINDS`) → certificate and key."""
    policy_oid: str
    crl_base_url: str
    ocsp_url: str | None = None
    ocsp_responder: IssuedPaths | None = None
    """The delegated OCSP responder's certificate (+ issuing CA) and key, with ``ocsp_url``."""
    axis_organizations: Mapping[str, IssuedPaths] = field(default_factory=dict)
    """organ_id → seal certificate and key of bodies reached through the axis (``include_axis``)."""


@dataclass
class KeyCache:
    """Memoizes generated RSA keys by label and size (test speed only)."""

    keys: dict[tuple[str, int], rsa.RSAPrivateKey] = field(default_factory=dict)

    def __call__(self, label: str, bits: int) -> rsa.RSAPrivateKey:
        key = self.keys.get((label, bits))
        if key is None:
            key = _generate(label, bits)
            self.keys[(label, bits)] = key
        return key


def _generate(label: str, bits: int) -> rsa.RSAPrivateKey:
    del label
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# -- certificate building ---------------------------------------------------------------------


_UB_NAME = 64
"""RFC 5280 upper bound of commonName and organizationName (long Vietnamese names are cut)."""


def _cut(text: str) -> str:
    # cryptography counts UTF-8 bytes for commonName; cut on a character boundary.
    return text.encode()[:_UB_NAME].decode(errors="ignore")


def _name(cn: str, *, org: str | None = None, uid: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if org is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, _cut(org)))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, _cut(cn)))
    if uid is not None:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, uid))
    return x509.Name(attrs)


def _key_usage(**on: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
        ),
        False,
    )
    flags.update(on)
    return x509.KeyUsage(**flags)


@dataclass(frozen=True, slots=True)
class _Issuer:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    crl_url: str | None


def _build_cert(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: _Issuer | None,
    signing_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    path_length: int | None = None,
    key_usage: x509.KeyUsage,
    ekus: Sequence[x509.ObjectIdentifier] = (),
    policy_oid: str | None = None,
    ocsp_url: str | None = None,
    extra: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        if issuer.crl_url:
            builder = builder.add_extension(
                x509.CRLDistributionPoints([
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(issuer.crl_url)],
                        relative_name=None, reasons=None, crl_issuer=None,
                    )
                ]),
                critical=False,
            )
        if ocsp_url:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess([
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]),
                critical=False,
            )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    if policy_oid is not None:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(policy_oid), None)]
            ),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


def make_crl(
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    *,
    revoked: Iterable[tuple[int, dt.datetime]] = (),
    this_update: dt.datetime,
    next_update: dt.datetime,
    number: int = 1,
    extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> x509.CertificateRevocationList:
    """Sign a CRL listing ``revoked`` (serial, revocation date) pairs; ``extensions``: more
    (extension, critical) pairs (a delta CRL indicator, an issuing distribution point)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


# -- writing ----------------------------------------------------------------------------------


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: rsa.RSAPrivateKey, passphrase: bytes | None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 by the call that creates it: written first and narrowed afterwards, the key
    # would be readable by everyone in between (umask 022). O_NOFOLLOW: never through a link.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, 0o600)  # a file an earlier run left keeps its mode under O_TRUNC
        out.write(data)


def _write_issued(
    base: Path,
    stem: str,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    key: rsa.RSAPrivateKey,
    passphrase: bytes | None,
) -> IssuedPaths:
    base.mkdir(parents=True, exist_ok=True)
    cert_path = base / f"{stem}.pem"
    cert_path.write_bytes(_pem(cert) + b"".join(_pem(c) for c in chain))
    key_path = base / f"{stem}.key.pem"
    _write_key(key_path, key, passphrase)
    return IssuedPaths(cert=cert_path, key=key_path)


def _safe_stem(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)


# -- directory adapter ------------------------------------------------------------------------


def orgs_from_directory(
    directory: Any, reach: tuple[str, ...] = ("direct",)
) -> tuple[OrgSpec, ...]:
    """The organizations served directly, with their person signers, read from a Directory.

    Accepts :class:`hub.directory.Directory` or any iterable of :class:`OrgSpec`. The
    organization certificate's UID is the uid of the entry's ``role = "organization"`` signer
    (by the directory's convention, the organization's first code). ``reach`` selects the
    bodies (``("axis",)``: those reached through the national axis).
    """
    if not hasattr(directory, "entries"):
        specs = tuple(directory)
        if not all(isinstance(s, OrgSpec) for s in specs):
            raise TypeError("init_pki needs a Directory or OrgSpec values")
        return specs
    out: list[OrgSpec] = []
    seen_orgs: set[str] = set()
    seen_people: set[str] = set()
    for entry in directory.entries():
        if entry.reach not in reach or entry.code in seen_orgs:
            continue
        seen_orgs.add(entry.code)
        seal = next(
            (s.uid for s in entry.signers if s.role == "organization" and s.uid), entry.code)
        people = []
        for signer in entry.signers:
            if signer.role == "person" and signer.uid and signer.uid not in seen_people:
                seen_people.add(signer.uid)
                people.append(SignerSpec(uid=signer.uid, name=signer.name or signer.uid))
        out.append(OrgSpec(entry.code, entry.name, tuple(people), seal_uid=seal))
    return tuple(out)


# -- the PKI ----------------------------------------------------------------------------------


def init_pki(
    dir: Path,
    directory: Any,
    *,
    now: dt.datetime | None = None,
    policy_oid: str = TEST_POLICY_OID,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
    ocsp_url: str | None = None,
    passphrase: bytes | None = None,
    keys: KeySource | None = None,
    include_axis: bool = False,
) -> PkiPaths:
    """Generate the test PKI for every organization and signer of ``directory`` into ``dir``.

    ``directory`` is a :class:`hub.directory.Directory` or a sequence of :class:`OrgSpec`.
    ``now`` pins the validity windows (default: the current time). CRL distribution points are
    ``{crl_base_url}/root-ca.crl`` and ``{crl_base_url}/issuing-ca.crl``; ``ocsp_url`` names an
    OCSP responder in every certificate below the root and issues its delegated certificate;
    ``include_axis`` also issues certificates to the bodies reached through the national axis.
    """
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    key_for = keys or _generate
    orgs = orgs_from_directory(directory)
    if not orgs:
        raise ValueError("the directory lists no directly served organization")
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    crl_dir = dir / "crl"
    crl_dir.mkdir(exist_ok=True)
    day = dt.timedelta(days=1)
    root_url = f"{crl_base_url}/root-ca.crl"
    issuing_url = f"{crl_base_url}/issuing-ca.crl"

    # Trusted specialized hierarchy.
    root_key = key_for("root", ROOT_BITS)
    root_cert = _build_cert(
        subject=_name(ROOT_NAME, org="Ban Cơ yếu Chính phủ (TEST)"),
        public_key=root_key.public_key(), issuer=None, signing_key=root_key,
        not_before=now - 365 * day, not_after=now + 20 * 365 * day, ca=True,
        key_usage=_key_usage(key_cert_sign=True, crl_sign=True),
    )
    root = _Issuer(root_cert, root_key, root_url)
    ca_key = key_for("issuing-ca", 2048)
    ca_cert = _build_cert(
        subject=_name(ISSUING_CA_NAME, org="Ban Cơ yếu Chính phủ (TEST)"),
        public_key=ca_key.public_key(), issuer=root, signing_key=root_key,
        not_before=now - 300 * day, not_after=now + 10 * 365 * day, ca=True, path_length=0,
        key_usage=_key_usage(key_cert_sign=True, crl_sign=True), policy_oid=policy_oid,
        ocsp_url=ocsp_url,
    )
    ca = _Issuer(ca_cert, ca_key, issuing_url)
    root_cert_path = dir / "root-ca.pem"
    root_cert_path.write_bytes(_pem(root_cert))
    _write_key(dir / "root-ca.key.pem", root_key, passphrase)
    ca_cert_path = dir / "issuing-ca.pem"
    ca_cert_path.write_bytes(_pem(ca_cert))
    ca_key_path = dir / "issuing-ca.key.pem"
    _write_key(ca_key_path, ca_key, passphrase)

    signing_ku = _key_usage(digital_signature=True, content_commitment=True)
    # emailProtection + id-kp-documentSigning (RFC 9336).
    signing_ekus = (
        ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"))

    def leaf(
        label: str, subject: x509.Name, *, bits: int = 2048, issuer: _Issuer = ca,
        not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
        key_usage: x509.KeyUsage = signing_ku, policy: str | None = policy_oid,
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        key = key_for(label, bits)
        cert = _build_cert(
            subject=subject, public_key=key.public_key(), issuer=issuer,
            signing_key=issuer.key, not_before=not_before or now - 30 * day,
            not_after=not_after or now + 2 * 365 * day, ca=False, key_usage=key_usage,
            ekus=signing_ekus, policy_oid=policy, ocsp_url=ocsp_url,
        )
        return cert, key

    organizations: dict[str, IssuedPaths] = {}
    signers: dict[str, IssuedPaths] = {}
    for org in orgs:
        cert, key = leaf(
            f"org:{org.organ_id}", _name(org.name, org=org.name, uid=org.seal_uid or org.organ_id))
        organizations[org.organ_id] = _write_issued(
            dir / "keystore", org.organ_id, cert, [ca_cert], key, passphrase
        )
        for signer in org.signers:
            cert, key = leaf(
                f"person:{signer.uid}", _name(signer.name, org=org.name, uid=signer.uid)
            )
            signers[signer.uid] = _write_issued(
                dir / "signers", _safe_stem(signer.uid), cert, [ca_cert], key, passphrase
            )
    axis_organizations: dict[str, IssuedPaths] = {}
    for org in orgs_from_directory(directory, ("axis",)) if include_axis else ():
        cert, key = leaf(
            f"org:{org.organ_id}", _name(org.name, org=org.name, uid=org.seal_uid or org.organ_id))
        axis_organizations[org.organ_id] = _write_issued(
            dir / "axis", _safe_stem(org.organ_id), cert, [ca_cert], key, passphrase)
        for signer in org.signers:
            cert, key = leaf(
                f"person:{signer.uid}", _name(signer.name, org=org.name, uid=signer.uid))
            signers[signer.uid] = _write_issued(
                dir / "signers", _safe_stem(signer.uid), cert, [ca_cert], key, passphrase)

    ocsp_responder: IssuedPaths | None = None
    if ocsp_url:
        # RFC 6960 §4.2.2.2: a delegated responder, issued directly by the CA whose
        # certificates it answers for; nocheck because its own status cannot be asked of itself.
        responder_key = key_for("ocsp-responder", 2048)
        responder_cert = _build_cert(
            subject=_name("OCSP responder (TEST)", org="Ban Cơ yếu Chính phủ (TEST)"),
            public_key=responder_key.public_key(),
            issuer=_Issuer(ca_cert, ca_key, None), signing_key=ca_key,
            not_before=now - day, not_after=now + 30 * day, ca=False,
            key_usage=_key_usage(digital_signature=True), ekus=(ExtendedKeyUsageOID.OCSP_SIGNING,),
            extra=(x509.OCSPNoCheck(),),
        )
        ocsp_responder = _write_issued(
            dir, "ocsp-responder", responder_cert, [ca_cert], responder_key, passphrase)

    # Special certificates: the first organization's identity, one defect each.
    first = orgs[0]
    special_certs: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]] = {}

    def special_name(kind: str) -> x509.Name:
        return _name(f"{first.name} ({kind})", org=first.name, uid=first.seal_uid or first.organ_id)

    special_certs["expired"] = leaf(
        "special:expired", special_name("expired"),
        not_before=now - 400 * day, not_after=now - day,
    )
    special_certs["not_yet_valid"] = leaf(
        "special:not_yet_valid", special_name("not yet valid"),
        not_before=now + 30 * day, not_after=now + 400 * day,
    )
    special_certs["revoked"] = leaf("special:revoked", special_name("revoked"))
    special_certs["wrong_key_usage"] = leaf(
        "special:wrong_key_usage", special_name("wrong key usage"),
        key_usage=_key_usage(key_encipherment=True),
    )
    special_certs["rsa1024"] = leaf("special:rsa1024", special_name("rsa1024"), bits=1024)
    special_certs["no_policy"] = leaf("special:no_policy", special_name("no policy"), policy=None)
    special = {
        kind: _write_issued(dir / "special", kind, cert, [ca_cert], key, passphrase)
        for kind, (cert, key) in special_certs.items()
    }

    # CRLs (RFC 5280 §5): the root's (ARL, empty) and the issuing CA's with one revoked cert.
    root_crl = make_crl(root_cert, root_key, this_update=now, next_update=now + 30 * day)
    ca_crl = make_crl(
        ca_cert, ca_key,
        revoked=[(special_certs["revoked"][0].serial_number, now - day)],
        this_update=now, next_update=now + 7 * day,
    )
    paths_crl: dict[str, Path] = {}
    for stem, crl in (("root-ca", root_crl), ("issuing-ca", ca_crl)):
        der = crl_dir / f"{stem}.crl"
        der.write_bytes(crl.public_bytes(serialization.Encoding.DER))
        pem = crl_dir / f"{stem}.crl.pem"
        pem.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        paths_crl[stem] = der
        paths_crl[stem + ".pem"] = pem

    # Untrusted hierarchies, never configured as roots.
    untrusted = dir / "untrusted"
    untrusted.mkdir(exist_ok=True)
    pub_root_key = key_for("public-root", 2048)
    pub_root_cert = _build_cert(
        subject=_name(PUBLIC_ROOT_NAME, org="NEAC-like (TEST)"),
        public_key=pub_root_key.public_key(), issuer=None, signing_key=pub_root_key,
        not_before=now - 365 * day, not_after=now + 20 * 365 * day, ca=True,
        key_usage=_key_usage(key_cert_sign=True, crl_sign=True),
    )
    pub_root = _Issuer(pub_root_cert, pub_root_key, None)
    pub_ca_key = key_for("public-ca", 2048)
    pub_ca_cert = _build_cert(
        subject=_name(PUBLIC_CA_NAME, org="Commercial CA (TEST)"),
        public_key=pub_ca_key.public_key(), issuer=pub_root, signing_key=pub_root_key,
        not_before=now - 300 * day, not_after=now + 10 * 365 * day, ca=True, path_length=0,
        key_usage=_key_usage(key_cert_sign=True, crl_sign=True),
    )
    pub_ca = _Issuer(pub_ca_cert, pub_ca_key, None)
    business_cert, business_key = leaf(
        "public:business", _name("Công ty TNHH Ví Dụ (TEST)", org="Công ty TNHH Ví Dụ (TEST)",
                                 uid=first.seal_uid or first.organ_id),
        issuer=pub_ca, policy=PUBLIC_POLICY_OID,
    )
    pub_root_path = untrusted / "public-root.pem"
    pub_root_path.write_bytes(_pem(pub_root_cert))
    pub_ca_path = untrusted / "public-ca.pem"
    pub_ca_path.write_bytes(_pem(pub_ca_cert))
    business = _write_issued(untrusted, "business", business_cert, [pub_ca_cert], business_key,
                             passphrase)
    self_key = key_for("self-signed", 2048)
    self_cert = _build_cert(
        subject=special_name("self-signed"), public_key=self_key.public_key(), issuer=None,
        signing_key=self_key, not_before=now - 30 * day, not_after=now + 365 * day, ca=False,
        key_usage=signing_ku, policy_oid=policy_oid,
    )
    self_signed = _write_issued(untrusted, "self-signed", self_cert, [], self_key, passphrase)

    return PkiPaths(
        dir=dir, root_cert=root_cert_path, issuing_ca_cert=ca_cert_path,
        issuing_ca_key=ca_key_path,
        root_crl_der=paths_crl["root-ca"], root_crl_pem=paths_crl["root-ca.pem"],
        crl_der=paths_crl["issuing-ca"], crl_pem=paths_crl["issuing-ca.pem"],
        keystore=dir / "keystore", public_root_cert=pub_root_path, public_ca_cert=pub_ca_path,
        business=business, self_signed=self_signed, organizations=organizations,
        signers=signers, special=special, policy_oid=policy_oid, crl_base_url=crl_base_url,
        ocsp_url=ocsp_url, ocsp_responder=ocsp_responder, axis_organizations=axis_organizations,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hub.testing.pki DIR``: write the test PKI for the bundled sample directory."""
    parser = argparse.ArgumentParser(prog="hub pki init", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--policy-oid", default=TEST_POLICY_OID)
    parser.add_argument("--crl-base-url", default=DEFAULT_CRL_BASE_URL)
    parser.add_argument("--ocsp-url", default=None)
    args = parser.parse_args(argv)
    from hub.directory import Directory

    paths = init_pki(
        args.dir, Directory.sample(), policy_oid=args.policy_oid,
        crl_base_url=args.crl_base_url, ocsp_url=args.ocsp_url,
    )
    print(f"test PKI written to {paths.dir} (root {paths.root_cert.name}, "
          f"{len(paths.organizations)} organizations, {len(paths.signers)} signers)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
