"""Certificate trust and revocation (pure: no I/O; the policy and CRLs are handed in).

Rules (Circular 41/2017/TT-BTTTT Art. 8: the certificate's validity and status, and the chain up
to the root; the source of each rule is named with it):

- Only configured **specialized** roots are trust anchors (Circular 08/2016/TT-BQP: the Government
  Cipher Committee's certification service). No system trust store, ever.
- A chain that reaches a configured *public* root (NEAC and the commercial CAs that serve
  businesses) is refused with its own reason, CERT_PUBLIC_CA.
- Decree 130/2018/NĐ-CP: a signature is valid when the certificate was valid — not expired, not
  revoked, not suspended — **at signing time**. An XML signature carries no trusted signing
  time, so the hub judges validity at ``at``, its own receipt time, and records that time.
- The leaf must allow signing (keyUsage digitalSignature or nonRepudiation; a certificate without
  a keyUsage extension is refused: specialized certificates always carry one) and carry one of
  the configured specialized policy OIDs (when any are configured).
- Revocation comes from CRLs handed in as a :class:`CrlSnapshot` and OCSP answers handed in as
  an :class:`~hub.validators.ocsp.OcspSnapshot` (both fetched by :mod:`hub.trust.revocation`). The
  decision rule, per certificate of the path but the root (:func:`check_revocation`):

  1. "revoked" from either source — a CRL that lists the serial or an OCSP answer that says
     revoked, with a revocation time at or before ``at``, verified under the issuing CA — is
     CERT_REVOKED. Revocation is final, so even a stale source counts, except a stale
     certificateHold (a suspension may have been lifted since);
  2. otherwise a fresh "good" OCSP answer, or a fresh CRL without the serial, is "not revoked".
     Only a *complete* CRL whose scope covers the certificate is read (RFC 5280 §5.2.4-5,
     §6.3.3 (b)-(c): :func:`crl_scope`): a delta CRL, an indirect CRL, one for some reasons
     only or for attribute certificates, or one with a critical extension the hub does not
     process is never used; one for CA certificates only, end-entity certificates only or one
     partition (its issuingDistributionPoint names a distribution point, which the certificate
     must name too) is used for the certificates it covers. A CRL is fresh up to its
     nextUpdate; one the hub obtained within ``crl_freshness`` stays usable at most
     ``crl_freshness`` past it (a CA late to publish), never longer — an old CRL served again
     is not made fresh by being fetched (:meth:`CrlEntry.fresh_until`);
  3. otherwise (no source, none fresh, OCSP "unknown", a source that does not verify) the check
     is INDETERMINATE (REVOCATION_UNAVAILABLE), never a silent pass: the pipeline retries later.
     The evidence names where to look: ``crl_urls`` (distribution points) and ``ocsp_urls``
     (authorityInfoAccess); :attr:`ValidationReport.ocsp_queries` carries the OCSP questions.

Path building is by issuer name plus signature check (RFC 5280 §6 in its simple form: no name
constraints or policy mappings, which the specialized hierarchy does not use), with the rules
pyhanko-certvalidator applies to PDF signers, so that envelope signers get the same ones
(:func:`_check_constraints`): every CA's ``pathLenConstraint`` (RFC 5280 §6.1.4 (l)-(m)) and
no critical extension the hub does not process (§6.1.3-4 (o); the trust anchor itself is not
judged, as pyHanko does not). The expensive part — finding and verifying the path — is cached
per (leaf, offered intermediates), with the verdict of the checks that depend only on the path
and the policy (algorithms, key sizes, the leaf's key usage and policies: :class:`CertPath`);
validity times and revocation are judged on every call, at its ``at`` and with its CRLs.

Certificates are untrusted input (``cryptography`` parses their fields lazily, on first read):
:func:`read_certificate` reads every field the hub uses once, inside one guard, and maps a field
that cannot be read to CERT_MALFORMED. The checks below read only those facts. Caches keep
values, never exceptions (:class:`~hub.validators.outcome.Refusal`), keyed by certificate
digests (the facts are also found by certificate object, :class:`_ByObject`, which holds the
object), and are bounded in entries and in bytes. What a CRL says about a serial is looked up
once per CRL entry (:meth:`CrlEntry.listed`): a refreshed CRL is a new entry, so nothing learnt
from a CRL outlives it; freshness and revocation dates are judged against ``at`` every time.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from hub.reasons import Reason
from hub.validators.ocsp import (
    CertId,
    OcspQuery,
    OcspSnapshot,
    OcspStatus,
    OcspUnusable,
    read_answer,
)
from hub.validators.outcome import Indication, Refusal, ValidationFailure

MAX_PATH_LENGTH = 6
_WEAK_HASHES = frozenset({hashes.SHA1.name, hashes.MD5.name})


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate DER, hex (remembered: by object for a certificate already
    read, else by the certificate, which compares by its DER)."""
    known = _BY_OBJECT.get(cert)
    return known.fingerprint if known is not None else _fingerprint(cert)


@functools.lru_cache(maxsize=8192)
def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class BoundedCache:
    """A small thread-safe LRU bounded in entries and in (estimated) bytes.

    Values must be plain values — never exceptions (see :class:`Refusal`). ``cost`` estimates
    what a value keeps alive; an entry costing more than the whole budget is not kept.
    """

    entry_overhead: ClassVar[int] = 512
    """Bytes counted per entry on top of the certificates and texts it keeps (the key tuple,
    the value's object, the LRU's node); a cache of smaller values states its own."""

    def __init__(self, size: int = 1024, max_bytes: int = 16 << 20) -> None:
        self.max_entries = size
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[str, ...], tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> tuple[Any, ...]:
        """What the cache holds now (for tests and ``hub doctor``)."""
        with self._lock:
            return tuple(value for value, _ in self._data.values())

    def clear(self) -> None:
        """Forget everything (tests start cold with it)."""
        with self._lock:
            self._data.clear()
            self.size_bytes = 0

    def get(self, key: tuple[str, ...]) -> Any:
        with self._lock:
            found = self._data.get(key)
            if found is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return found[0]

    def _put(self, key: tuple[str, ...], value: Any, cost: int) -> None:
        if isinstance(value, BaseException):  # a traceback holds every frame's locals
            raise TypeError("caches keep values, never exceptions")
        with self._lock:
            previous = self._data.pop(key, None)
            if previous is not None:
                self.size_bytes -= previous[1]
            if cost > self.max_bytes:
                return
            self._data[key] = (value, cost)
            self.size_bytes += cost
            while len(self._data) > self.max_entries or self.size_bytes > self.max_bytes:
                _, (_, freed) = self._data.popitem(last=False)
                self.size_bytes -= freed


def _der_size(cert: x509.Certificate) -> int:
    known = _BY_OBJECT.get(cert)
    return known.size if known is not None else len(cert.public_bytes(serialization.Encoding.DER))


class ChainCache(BoundedCache):
    """Path-building results of a :class:`TrustPolicy`: a path (leaf → root, a :class:`CertPath`
    as :func:`build_path` stores it) or a :class:`Refusal`, by certificate digests. Bounded
    in entries and bytes."""

    def get(self, key: tuple[str, ...]) -> tuple[x509.Certificate, ...] | Refusal | None:
        value: tuple[x509.Certificate, ...] | Refusal | None = super().get(key)
        return value

    def put(self, key: tuple[str, ...], value: tuple[x509.Certificate, ...] | Refusal) -> None:
        if isinstance(value, Refusal):
            cost = self.entry_overhead + len(value.detail) + sum(
                len(k) + len(v) for k, v in value.evidence.items())
        else:
            cost = self.entry_overhead + sum(_der_size(c) for c in value)
        self._put(key, value, cost + sum(len(k) for k in key))


# -- reading certificates: once, inside one guard ---------------------------------------------


KNOWN_CRITICAL_EXTENSIONS = frozenset({
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.FRESHEST_CRL,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.OCSP_NO_CHECK,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"),  # qcStatements
})
"""Critical extensions a path may carry: pyhanko-certvalidator's ``SUPPORTED_EXTENSIONS``
(``validate.py``) less those it processes and the hub does not — nameConstraints,
policyMappings, policyConstraints, inhibitAnyPolicy, AA controls — which the specialized
hierarchy does not use: a critical one is refused rather than ignored (RFC 5280 §4.2). A test
keeps this list in step with pyHanko's."""


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """Every field of a certificate the validators read, read once (:func:`read_certificate`)."""

    fingerprint: str
    subject: x509.Name
    issuer: x509.Name
    subject_text: str
    """RFC 4514 form, for details and evidence."""
    issuer_text: str
    issuer_der: bytes
    """The issuer name's DER: what a :class:`CrlSnapshot` is keyed by."""
    uid: str | None
    """The subject's UID attribute (OID 0.9.2342.19200300.100.1.1), if any."""
    serial: int
    not_before: datetime
    not_after: datetime
    ca: bool
    """basicConstraints cA (False without the extension)."""
    path_length: int | None
    """basicConstraints pathLenConstraint."""
    key_usage: x509.KeyUsage | None
    policies: frozenset[str] | None
    """Dotted OIDs of certificatePolicies (None: no extension)."""
    critical: frozenset[x509.ObjectIdentifier]
    """OIDs of the extensions marked critical."""
    signature_hash: str | None
    """Hash algorithm of the issuer's signature on this certificate (None: unknown)."""
    rsa_bits: int | None
    """The subject key's size when it is RSA."""
    crl_urls: tuple[str, ...]
    """HTTP(S) CRL distribution points."""
    ocsp_urls: tuple[str, ...]
    """HTTP(S) OCSP responders (authorityInfoAccess id-ad-ocsp)."""
    size: int
    """DER length (for cache budgets)."""

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    @property
    def may_issue(self) -> bool:
        """A CA whose keyUsage, if present, allows keyCertSign (RFC 5280 §6.1.4 (k), (n))."""
        return self.ca and (self.key_usage is None or self.key_usage.key_cert_sign)


_FACTS = BoundedCache(size=4096, max_bytes=32 << 20)
"""Facts of readable certificates by digest (pure and bounded: no I/O, no exceptions kept)."""


class _ByObject:
    """The facts of the certificate *objects* read lately, found by ``id()``: the hot path.

    Validation meets the same objects again and again — the KeyInfo certificates the signer
    cache keeps, the policy's, the paths the chain cache keeps — and ``id()`` finds them in a
    fraction of a microsecond, where hashing a certificate (its parsed DER) costs ~1.5 µs and
    re-serializing it for its digest ~6 µs; :func:`read_certificate` used to do both up to a
    dozen times per envelope. Each entry holds its object, so no other object can take that id
    while the entry lives, and a lookup also checks identity. The facts are those of the
    digest-keyed :data:`_FACTS` (a certificate with the same DER is the same certificate).
    Bounded in entries and in bytes; the oldest entry goes first (a certificate dropped is
    read again from :data:`_FACTS` on its next use). Thread-safe; readers take no lock.
    """

    def __init__(self, size: int = 1024, max_bytes: int = 4 << 20) -> None:
        self.max_entries = size
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._data: dict[int, tuple[x509.Certificate, CertificateFacts]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    @staticmethod
    def _cost(facts: CertificateFacts) -> int:
        # the object, its DER, the facts' names
        return BoundedCache.entry_overhead + 3 * facts.size

    def get(self, cert: x509.Certificate) -> CertificateFacts | None:
        found = self._data.get(id(cert))
        return found[1] if found is not None and found[0] is cert else None

    def put(self, cert: x509.Certificate, facts: CertificateFacts) -> None:
        cost = self._cost(facts)
        if cost > self.max_bytes:
            return
        with self._lock:
            previous = self._data.pop(id(cert), None)
            if previous is not None:
                self.size_bytes -= self._cost(previous[1])
            while self._data and (len(self._data) >= self.max_entries
                                  or self.size_bytes + cost > self.max_bytes):
                _, oldest = self._data.pop(next(iter(self._data)))
                self.size_bytes -= self._cost(oldest)
            self._data[id(cert)] = (cert, facts)
            self.size_bytes += cost


_BY_OBJECT = _ByObject()
"""Facts by certificate object (:class:`_ByObject`)."""
_UNREADABLE = (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
               UnsupportedAlgorithm)
"""What ``cryptography`` raises when a lazily parsed field of a loaded certificate is malformed."""


def _uris(names: Iterable[x509.GeneralName]) -> list[str]:
    return [n.value for n in names if isinstance(n, x509.UniformResourceIdentifier)
            and n.value.startswith(("http://", "https://"))]


def _read(cert: x509.Certificate, fp: str, size: int) -> CertificateFacts:
    """The fields, read in one go; raises what ``cryptography`` raises for a malformed one."""
    extensions = cert.extensions
    values: dict[x509.ObjectIdentifier, x509.ExtensionType] = {e.oid: e.value for e in extensions}
    basic = values.get(ExtensionOID.BASIC_CONSTRAINTS)
    usage = values.get(ExtensionOID.KEY_USAGE)
    policies = values.get(ExtensionOID.CERTIFICATE_POLICIES)
    points = values.get(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    access = values.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    try:
        algorithm = cert.signature_hash_algorithm
        signature_hash = algorithm.name if algorithm is not None else None
    except UnsupportedAlgorithm:
        signature_hash = None  # refused by the path rules, not unreadable
    key = cert.public_key()
    subject = cert.subject
    uid = subject.get_attributes_for_oid(NameOID.USER_ID)
    return CertificateFacts(
        fingerprint=fp,
        subject=subject,
        issuer=cert.issuer,
        subject_text=subject.rfc4514_string(),
        issuer_text=cert.issuer.rfc4514_string(),
        issuer_der=cert.issuer.public_bytes(),
        uid=str(uid[0].value) if uid else None,
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        ca=isinstance(basic, x509.BasicConstraints) and basic.ca,
        path_length=basic.path_length if isinstance(basic, x509.BasicConstraints) else None,
        key_usage=usage if isinstance(usage, x509.KeyUsage) else None,
        policies=frozenset(p.policy_identifier.dotted_string for p in policies)
        if isinstance(policies, x509.CertificatePolicies) else None,
        critical=frozenset(e.oid for e in extensions if e.critical),
        signature_hash=signature_hash,
        rsa_bits=key.key_size if isinstance(key, rsa.RSAPublicKey) else None,
        crl_urls=tuple(u for p in points for u in _uris(p.full_name or ()))
        if isinstance(points, x509.CRLDistributionPoints) else (),
        ocsp_urls=tuple(_uris(d.access_location for d in access
                              if d.access_method == AuthorityInformationAccessOID.OCSP))
        if isinstance(access, x509.AuthorityInformationAccess) else (),
        size=size,
    )


def read_certificate(cert: x509.Certificate, *, remember: bool = True) -> CertificateFacts:
    """The facts of ``cert``, read once per certificate (remembered by digest, and by object
    unless ``remember`` is false: for certificates that may never be seen again, such as a
    KeyInfo's before its signature verified).

    Raises :class:`ValidationFailure` CERT_MALFORMED when a field cannot be read (a malformed
    extension, name or key): a certificate reason, never an internal error.
    """
    known = _BY_OBJECT.get(cert)
    if known is not None:
        return known
    der = cert.public_bytes(serialization.Encoding.DER)
    fp = hashlib.sha256(der).hexdigest()
    facts: CertificateFacts | None = _FACTS.get((fp,))
    if facts is None:
        try:
            facts = _read(cert, fp, len(der))
        except _UNREADABLE as exc:
            raise ValidationFailure(
                Reason.CERT_MALFORMED,
                f"certificate {fp[:16]} cannot be read ({type(exc).__name__})",
                evidence={"certificate": fp}) from None
        _FACTS._put((fp,), facts, _FACTS.entry_overhead + 2 * len(der))
    if remember:
        _BY_OBJECT.put(cert, facts)
    return facts


def subject_uid(cert: x509.Certificate) -> str | None:
    """The subject's UID attribute (OID 0.9.2342.19200300.100.1.1), if any (None when the
    certificate cannot be read)."""
    try:
        return read_certificate(cert).uid
    except ValidationFailure:
        return None


def distribution_points(cert: x509.Certificate) -> tuple[str, ...]:
    """The HTTP(S) CRL distribution-point URLs of a certificate (none when it cannot be read)."""
    try:
        return read_certificate(cert).crl_urls
    except ValidationFailure:
        return ()


def _ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        return read_certificate(cert).ocsp_urls
    except ValidationFailure:
        return ()


class PdfChange(enum.StrEnum):
    """How much a PDF may change after a signature (pyHanko's ``ModificationLevel``, by name;
    each level allows the ones before it)."""

    NONE = "none"
    """Nothing: the signature covers the whole file."""
    REVOCATION_DATA = "revocation_data"
    """Revocation data (the DSS) and document timestamps only (pyHanko's LTA_UPDATES): what
    long-term archiving adds; no change to what is shown."""
    FORM_FILLING = "form_filling"
    """Also filling form fields and adding signatures (pyHanko's FORM_FILLING)."""
    ANNOTATIONS = "annotations"
    """Also annotations (pyHanko's ANNOTATIONS; its standard difference analysis does not yet
    classify any change at this level: other annotation changes stay refused)."""


@dataclass(frozen=True, slots=True)
class PdfChangePolicy:
    """What may change in a signed PDF, and when (issue 16, M2: PDF "shadow" attacks).

    Vietnamese practice (Circular 41/2017/TT-BTTTT; Decree 30/2020/NĐ-CP on clerical work —
    article numbers to be confirmed): the competent person signs, the clerk (văn thư) then
    numbers and dates the document when issuing it, and the organization's seal signs last.
    So by default changes between the person's signature and the seal are allowed as form
    filling (and recorded in the report), and after the seal — and after the last signature
    of any PDF — only revocation data and document timestamps. Any further signature after
    the seal is refused.
    """

    before_seal: PdfChange = PdfChange.ANNOTATIONS
    """Allowed after a signature that the seal (or a later signature) follows."""
    after_seal: PdfChange = PdfChange.REVOCATION_DATA
    """Allowed after the organization's seal, and after the last signature of a PDF."""
    signatures_after_seal: bool = False
    """Whether a further signature may follow the organization's seal."""


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """What the hub trusts. Built once at start-up by :func:`hub.trust.store.load_policy`."""

    roots: tuple[x509.Certificate, ...]
    """The specialized roots: the only trust anchors."""
    intermediates: tuple[x509.Certificate, ...] = ()
    """Configured issuing CAs (signatures may also carry them in KeyInfo)."""
    public_roots: tuple[x509.Certificate, ...] = ()
    """Public-CA roots: recognised only to refuse with CERT_PUBLIC_CA."""
    policy_oids: frozenset[str] = frozenset()
    """A leaf must carry one of these certificate policies (empty: not checked)."""
    min_rsa_bits: int = 2048
    crl_freshness: timedelta = timedelta(hours=1)
    """Freshness window of revocation data, CRLs and OCSP answers alike."""
    require_pdf_signatures: bool = True
    """Circular 41/2017, Decree 30/2020 Art. 5: the main PDF carries person + organization
    signatures (see :mod:`hub.validators.pdf`)."""
    axis_legacy_envelope_signature: bool = False
    """Interop policy for national-axis traffic: accept a legacy (rsa-sha1 or missing) envelope
    signature from an axis sender when the main PDF's person + organization signatures are
    valid; recorded as the ``axis_legacy_policy`` check (see :mod:`hub.validators`)."""
    pdf_changes: PdfChangePolicy = PdfChangePolicy()
    """What may change in a signed PDF after each signature (see :class:`PdfChangePolicy`)."""
    cache: ChainCache = field(default_factory=ChainCache, init=False, compare=False, repr=False)
    """Path-building results of this policy (a changed policy, even via ``replace``, starts
    with an empty cache). Values and refusals only, never exceptions; bounded."""

    @property
    def root_fingerprints(self) -> frozenset[str]:
        return frozenset(fingerprint(c) for c in self.roots)


# -- revocation data --------------------------------------------------------------------------


MAX_PASSED_MEMO = 1024
"""Paths one :class:`CrlSnapshot` remembers as cleared (then it starts again)."""
MAX_LISTED_MEMO = 4096
"""Serials whose CRL lookup one :class:`CrlEntry` remembers (then it starts again)."""


@dataclass(frozen=True, slots=True)
class CrlEntry:
    """One CRL as fetched, with its issuer's name and the time the hub obtained it."""

    crl: x509.CertificateRevocationList
    fetched_at: datetime
    source: str = ""
    """File path or URL it came from (for operators)."""
    _signed_by: dict[str, bool] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    _listed: dict[int, x509.RevokedCertificate | None] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def signed_by(self, issuer: x509.Certificate) -> bool:
        """Whether ``issuer``'s (RSA) key signed this CRL: verified once per issuer (by its
        DER digest) and entry (a new CRL is a new entry), not once per envelope."""
        fp = fingerprint(issuer)
        known = self._signed_by.get(fp)
        if known is None:
            key = issuer.public_key()
            known = isinstance(key, rsa.RSAPublicKey) and self.crl.is_signature_valid(key)
            self._signed_by[fp] = known
        return known

    def listed(self, serial: int) -> x509.RevokedCertificate | None:
        """The CRL's entry for ``serial`` (None: not listed). Looked up once per serial and
        CRL (cryptography scans the CRL's list), remembered by this entry only — so never
        beyond this CRL — and at most :data:`MAX_LISTED_MEMO` serials of it."""
        if serial in self._listed:
            return self._listed[serial]
        found = self.crl.get_revoked_certificate_by_serial_number(serial)
        if len(self._listed) >= MAX_LISTED_MEMO:
            self._listed.clear()
        self._listed[serial] = found
        return found

    @property
    def number(self) -> int | None:
        if "number" not in self._memo:  # a malformed extension raises, every time
            try:
                number = self.crl.extensions.get_extension_for_class(
                    x509.CRLNumber).value.crl_number
            except x509.ExtensionNotFound:
                number = None
            self._memo["number"] = number
        number_: int | None = self._memo["number"]
        return number_

    @property
    def label(self) -> str:
        """``number@thisUpdate``: how evidence names this CRL."""
        label: str | None = self._memo.get("label")
        if label is None:
            label = self._memo["label"] = f"{self.number}@{self.crl.last_update_utc.isoformat()}"
        return label

    def is_fresh(self, at: datetime, freshness: timedelta) -> bool:
        """Usable at ``at`` (:meth:`fresh_until`). The one rule for validation, ``hub doctor``
        and the readiness probe."""
        return at <= self.fresh_until(freshness)

    def fresh_until(self, freshness: timedelta) -> datetime:
        """The last instant this CRL is fresh (:meth:`is_fresh` is true up to it, inclusive):
        its nextUpdate; past it, while the hub obtained it within ``freshness`` (a CA late to
        publish its next CRL), but at most ``freshness`` past its nextUpdate. Without a
        nextUpdate, ``freshness`` past its thisUpdate. The CRL's own dates bound it: an old CRL
        served again (a replay on the plain-HTTP distribution point, a stalled mirror) is not
        made fresh by being fetched now."""
        next_update = self.crl.next_update_utc
        if next_update is None:
            return min(self.fetched_at, self.crl.last_update_utc) + freshness
        return max(next_update, min(self.fetched_at, next_update) + freshness)


@dataclass(frozen=True, slots=True)
class CrlScope:
    """Which certificates of its issuer a complete CRL speaks for (its issuingDistributionPoint,
    RFC 5280 §5.2.5): all of them (the default), one partition, CA or end-entity ones only."""

    points: frozenset[str] | None = None
    """The distribution point URIs the CRL is for (None: every certificate of the issuer)."""
    only_user: bool = False
    only_ca: bool = False

    def covers(self, facts: CertificateFacts) -> bool:
        """Whether this CRL decides ``facts``' status (RFC 5280 §6.3.3 (b)): the right kind of
        certificate, and when the CRL is a partition's, one whose CRL distribution points name
        it (a certificate without distribution points is in no partition)."""
        if (self.only_ca and not facts.ca) or (self.only_user and facts.ca):
            return False
        return self.points is None or not self.points.isdisjoint(facts.crl_urls)


_FULL_SCOPE = CrlScope()


def crl_scope(crl: x509.CertificateRevocationList) -> CrlScope | None:
    """The scope of a complete CRL, or None when the hub must not use it to decide anything:
    a delta CRL (it lists only what changed since its base), an indirect CRL or one whose
    issuingDistributionPoint limits it to some reasons or to attribute certificates or names
    its partition only relative to the issuer, a CRL with any other critical extension (RFC
    5280 §5.2: one the hub does not process), or extensions that cannot be read."""
    try:
        extensions = list(crl.extensions)
    except _UNREADABLE:
        return None
    scope = _FULL_SCOPE
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.IssuingDistributionPoint):
            if (value.indirect_crl or value.only_some_reasons is not None
                    or value.only_contains_attribute_certs or value.relative_name is not None):
                return None
            points: frozenset[str] | None = None
            if value.full_name is not None:
                points = frozenset(n.value for n in value.full_name
                                   if isinstance(n, x509.UniformResourceIdentifier))
                if not points:
                    return None  # a partition named only by names the hub does not match
            scope = CrlScope(points, value.only_contains_user_certs,
                             value.only_contains_ca_certs)
        elif isinstance(value, x509.DeltaCRLIndicator) or extension.critical:
            return None
    return scope


@dataclass(frozen=True, slots=True)
class CrlSnapshot:
    """The CRLs known at one moment, by issuer name (DER). Immutable: handed to validators."""

    by_issuer: Mapping[bytes, CrlEntry] = field(default_factory=lambda: MappingProxyType({}))
    """The newest usable CRL per issuer, whatever its scope: what operators are shown."""
    scoped: Mapping[bytes, tuple[tuple[CrlScope, CrlEntry], ...]] = field(
        default_factory=lambda: MappingProxyType({}))
    """Per issuer, the newest usable CRL of each scope, newest first: what validation reads
    (:meth:`covering`)."""
    _passed: dict[tuple[Any, ...], tuple[datetime, dict[str, str]]] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    """Paths this snapshot's CRLs cleared without OCSP: until when, with what evidence
    (:func:`check_revocation`). Lives and dies with the snapshot: new CRLs, new snapshot."""

    @classmethod
    def of(cls, entries: Iterable[CrlEntry]) -> CrlSnapshot:
        """Keep the newest CRL (by thisUpdate) per issuer and scope; leave out the CRLs the hub
        must not use (:func:`crl_scope`)."""
        best: dict[tuple[bytes, CrlScope], CrlEntry] = {}
        for entry in entries:
            scope = crl_scope(entry.crl)
            if scope is None:
                continue
            key = (entry.crl.issuer.public_bytes(), scope)
            current = best.get(key)
            if current is None or entry.crl.last_update_utc >= current.crl.last_update_utc:
                best[key] = entry
        scoped: dict[bytes, list[tuple[CrlScope, CrlEntry]]] = {}
        for (issuer, scope), entry in best.items():
            scoped.setdefault(issuer, []).append((scope, entry))
        for found in scoped.values():
            found.sort(key=lambda item: item[1].crl.last_update_utc, reverse=True)
        return cls(MappingProxyType({k: v[0][1] for k, v in scoped.items()}),
                   MappingProxyType({k: tuple(v) for k, v in scoped.items()}))

    def for_issuer(self, name: x509.Name) -> CrlEntry | None:
        # Exact DER, never a cache keyed by Name: Name equality ignores the string type
        # (PrintableString and UTF8String compare equal), the DER does not.
        return self.by_issuer.get(name.public_bytes())

    def covering(self, facts: CertificateFacts) -> CrlEntry | None:
        """The newest CRL of ``facts``' issuer (exact DER) whose scope covers it."""
        for scope, entry in self.scoped.get(facts.issuer_der, ()):
            if scope.covers(facts):
                return entry
        return None

    @property
    def versions(self) -> tuple[str, ...]:
        """(issuer, CRL number/thisUpdate) pairs: changes whenever any CRL changes."""
        return tuple(
            sorted(
                f"{hashlib.sha256(k).hexdigest()[:16]}:{e.number}:{e.crl.last_update_utc.isoformat()}"
                for k, found in self.scoped.items() for _, e in found
            )
        )


# -- path building ----------------------------------------------------------------------------


def _is_self_signed(cert: x509.Certificate, facts: CertificateFacts) -> bool:
    return facts.self_issued and _issued_by(cert, cert)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _readable(certs: Iterable[x509.Certificate], what: str) -> list[
    tuple[x509.Certificate, CertificateFacts]
]:
    out = []
    for position, cert in enumerate(certs, start=1):
        try:
            out.append((cert, read_certificate(cert)))
        except ValidationFailure as failure:
            raise ValidationFailure(
                Reason.CERT_MALFORMED, f"{what} #{position}: {failure.detail}",
                evidence=failure.evidence) from None
    return out


def _build_path(
    leaf: x509.Certificate, offered: Sequence[x509.Certificate], policy: TrustPolicy
) -> tuple[x509.Certificate, ...]:
    """leaf → … → trusted root, or raise :class:`ValidationFailure` with why not."""
    leaf_facts = read_certificate(leaf)
    roots = {fingerprint(c) for c in policy.roots}
    public = {fingerprint(c) for c in policy.public_roots}
    if _is_self_signed(leaf, leaf_facts):
        if leaf_facts.fingerprint in public:
            raise ValidationFailure(Reason.CERT_PUBLIC_CA, "a public root used as signer")
        raise ValidationFailure(Reason.CERT_SELF_SIGNED, leaf_facts.subject_text)
    pool = [*_readable(offered, "offered certificate"),
            *_readable((*policy.intermediates, *policy.roots, *policy.public_roots),
                       "configured certificate")]
    path = [leaf]
    current = leaf_facts
    name_matched_but_bad = False
    while len(path) <= MAX_PATH_LENGTH:
        candidates = [(c, f) for c, f in pool if f.subject == current.issuer and c not in path]
        found = next(((c, f) for c, f in candidates if _issued_by(path[-1], c)), None)
        if found is None:
            name_matched_but_bad = bool(candidates)
            break
        issuer, facts = found
        if facts.fingerprint in roots:
            return (*path, issuer)
        if facts.fingerprint in public:
            raise ValidationFailure(Reason.CERT_PUBLIC_CA, f"chains to {facts.subject_text}")
        if not facts.may_issue:
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID, f"issuer is not a CA: {facts.subject_text}")
        if _is_self_signed(issuer, facts):
            raise ValidationFailure(Reason.CERT_UNTRUSTED_ROOT, f"root {facts.subject_text}")
        path.append(issuer)
        current = facts
    if name_matched_but_bad:
        raise ValidationFailure(
            Reason.CERT_PATH_INVALID,
            f"issuer signature does not verify: {current.issuer_text}")
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationFailure(Reason.CERT_PATH_INVALID, "path too long")
    if any(current.issuer == f.subject for _, f in pool[len(offered):]
           if f.fingerprint in public):
        raise ValidationFailure(Reason.CERT_PUBLIC_CA, f"issued under {current.issuer_text}")
    raise ValidationFailure(Reason.CERT_UNTRUSTED_ROOT, f"unknown issuer {current.issuer_text}")


def _check_constraints(path: Sequence[x509.Certificate]) -> None:
    """The RFC 5280 §6.1 rules pyhanko-certvalidator applies to PDF signers, for every signer:
    each CA's pathLenConstraint counts the non-self-issued CAs below it (§6.1.4 (l)-(m)), and
    no certificate but the trust anchor carries a critical extension the hub does not
    process (§6.1.3-4 (o), :data:`KNOWN_CRITICAL_EXTENSIONS`)."""
    facts = [read_certificate(c) for c in path]
    intermediates = facts[1:-1]  # the leaf's issuer first
    for position, ca in enumerate(intermediates):
        below = sum(1 for c in intermediates[:position] if not c.self_issued)
        if ca.path_length is not None and below > ca.path_length:
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID,
                f"pathLenConstraint {ca.path_length} of {ca.subject_text} exceeded "
                f"({below} CA certificates below it)")
    for position, cert in enumerate(facts[:-1]):
        unknown = cert.critical - KNOWN_CRITICAL_EXTENSIONS
        if unknown:
            role = "signer" if position == 0 else "CA"
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID,
                f"{role} certificate {cert.subject_text} carries an unsupported critical "
                f"extension {', '.join(sorted(o.dotted_string for o in unknown))}")


class CertPath(tuple[x509.Certificate, ...]):
    """A certification path leaf → root as the chain cache keeps it (a tuple of certificates),
    with what was established about it once, under the policy that built it: its
    certificates' facts and digests, and the verdict of the checks that depend on nothing but
    the path and the policy — algorithms and key sizes, the leaf's key usage and policies —
    as a :class:`Refusal` or None. Validity times are never part of it: they are judged at
    each call's ``at`` (:func:`validate_chain`)."""

    facts: tuple[CertificateFacts, ...]
    fingerprints: tuple[str, ...]
    on_path: frozenset[str]
    """The fingerprints as a set (is an offered certificate on the path?)."""
    text: str
    """The path as the report writes it: short fingerprints, leaf first, joined by `` > ``."""
    refusal: Refusal | None

    @classmethod
    def of(cls, certs: Sequence[x509.Certificate], policy: TrustPolicy) -> CertPath:
        path = cls(certs)
        path.facts = tuple(read_certificate(c) for c in certs)
        path.fingerprints = tuple(f.fingerprint for f in path.facts)
        path.on_path = frozenset(path.fingerprints)
        path.text = " > ".join(fp[:16] for fp in path.fingerprints)
        try:
            _check_algorithms(path, policy)
            _check_leaf(path[0], policy)
        except ValidationFailure as failure:
            path.refusal = Refusal.of(failure)
        else:
            path.refusal = None
        return path


def build_path(
    leaf: x509.Certificate, offered: Sequence[x509.Certificate], policy: TrustPolicy
) -> CertPath:
    """The certification path leaf → root (cached per leaf and offered intermediates: the
    path, or the refusal as a value — a fresh exception is raised each time)."""
    key = (fingerprint(leaf), *sorted(fingerprint(c) for c in offered))
    cached = policy.cache.get(key)
    if isinstance(cached, Refusal):
        raise cached.failure()
    if isinstance(cached, CertPath):
        return cached
    try:
        path = CertPath.of(cached or _build_path(leaf, offered, policy), policy)
        _check_constraints(path)
    except ValidationFailure as failure:
        policy.cache.put(key, Refusal.of(failure))
        raise
    policy.cache.put(key, path)
    return path


# -- per-call checks --------------------------------------------------------------------------


def _check_times(path: CertPath, at: datetime) -> None:
    for position, facts in enumerate(path.facts):
        role = "signer" if position == 0 else "CA"
        if at < facts.not_before:
            raise ValidationFailure(
                Reason.CERT_NOT_YET_VALID,
                f"{role} certificate valid from {facts.not_before.isoformat()}")
        if at > facts.not_after:
            raise ValidationFailure(
                Reason.CERT_EXPIRED,
                f"{role} certificate expired {facts.not_after.isoformat()}")


def _check_algorithms(path: Sequence[x509.Certificate], policy: TrustPolicy) -> None:
    for cert in path[:-1]:  # the root's self-signature proves nothing and is not checked
        algorithm = read_certificate(cert).signature_hash
        if algorithm is None or algorithm in _WEAK_HASHES:
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID, f"certificate signed with {algorithm or 'unknown'}")
    for cert in path[1:-1]:
        bits = read_certificate(cert).rsa_bits
        if bits is not None and bits < policy.min_rsa_bits:
            raise ValidationFailure(Reason.CERT_PATH_INVALID, f"CA key of {bits} bits")


def _check_leaf(leaf: x509.Certificate, policy: TrustPolicy) -> None:
    facts = read_certificate(leaf)
    usage = facts.key_usage
    if usage is None:
        raise ValidationFailure(Reason.CERT_KEY_USAGE_INVALID, "no keyUsage extension")
    if not (usage.digital_signature or usage.content_commitment):
        raise ValidationFailure(
            Reason.CERT_KEY_USAGE_INVALID, "neither digitalSignature nor nonRepudiation")
    if policy.policy_oids:
        if facts.policies is None:
            raise ValidationFailure(Reason.CERT_POLICY_MISSING, "no certificatePolicies extension")
        if not facts.policies & policy.policy_oids:
            raise ValidationFailure(
                Reason.CERT_POLICY_MISSING, f"policies {sorted(facts.policies)} not accepted")


def validate_chain(
    leaf: x509.Certificate,
    offered: Sequence[x509.Certificate],
    policy: TrustPolicy,
    at: datetime,
) -> CertPath:
    """Trust checks for a signer certificate at ``at``; returns the path leaf → root.

    Raises :class:`ValidationFailure` with a CERT_* reason (CERT_MALFORMED for a certificate
    that cannot be read).
    """
    path = build_path(leaf, offered, policy)
    _check_times(path, at)
    if path.refusal is not None:  # _check_algorithms, then _check_leaf, judged with the path
        raise path.refusal.failure()
    return path


@dataclass(frozen=True, slots=True)
class _Source:
    """What one revocation source (a CRL or an OCSP answer) says about one certificate."""

    name: str
    """``crl`` or ``ocsp``."""
    fresh: bool = False
    revoked: str = ""
    """Non-empty (the detail) when the source says revoked at or before ``at``."""
    on_hold: bool = False
    clear: str = ""
    """Non-empty (the evidence) when the source says not revoked at ``at``."""
    problem: str = ""
    """Why this source could not be used (missing, does not verify, unknown, stale)."""
    until: datetime | None = None
    """For a CRL that is fresh and does not list the serial at all: the last instant it stays
    fresh (what it says holds for any ``at`` up to then)."""


def _crl_source(
    cert: x509.Certificate, issuer: x509.Certificate, crls: CrlSnapshot, policy: TrustPolicy,
    at: datetime,
) -> _Source:
    facts = read_certificate(cert)
    # Exact issuer DER, as :meth:`CrlSnapshot.for_issuer` (read once with the certificate).
    entry = crls.covering(facts)
    if entry is None:
        scope = " covering this certificate" if facts.issuer_der in crls.scoped else ""
        return _Source("crl", problem=f"no CRL{scope} for {facts.issuer_text}")
    crl = entry.crl
    if not entry.signed_by(issuer):
        return _Source("crl", problem=f"CRL of {facts.issuer_text} does not verify")
    next_update = crl.next_update_utc
    fresh = entry.is_fresh(at, policy.crl_freshness)
    revoked = entry.listed(facts.serial)
    if revoked is not None and revoked.revocation_date_utc <= at:
        try:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        return _Source(
            "crl", fresh=fresh, on_hold=reason is x509.ReasonFlags.certificate_hold,
            revoked=f"revoked {revoked.revocation_date_utc.isoformat()} (CRL {entry.number})")
    if not fresh:
        return _Source(
            "crl", problem=(
                f"CRL of {facts.issuer_text} is stale (fetched "
                f"{entry.fetched_at.isoformat()}, nextUpdate "
                f"{next_update.isoformat() if next_update else 'none'})"))
    return _Source("crl", fresh=True, clear=entry.label,
                   until=entry.fresh_until(policy.crl_freshness) if revoked is None else None)


_CERT_IDS: dict[tuple[str, str], CertId] = {}
MAX_CERT_IDS = 4096
"""CertIDs remembered (then the memo starts again)."""


def _cert_id(cert: x509.Certificate, issuer: x509.Certificate) -> CertId:
    """``CertId.of(cert, issuer)``, built once per (certificate, issuer) by their DER digests
    (cryptography builds an OCSP request to compute it)."""
    key = (fingerprint(cert), fingerprint(issuer))
    found = _CERT_IDS.get(key)
    if found is None:
        found = CertId.of(cert, issuer)
        if len(_CERT_IDS) >= MAX_CERT_IDS:
            _CERT_IDS.clear()
        _CERT_IDS[key] = found
    return found


def _ocsp_source(
    cert: x509.Certificate, issuer: x509.Certificate, ocsp: OcspSnapshot, policy: TrustPolicy,
    at: datetime,
) -> _Source:
    if not ocsp.by_cert:  # the common case without OCSP: skip computing the CertID
        return _Source("ocsp", problem="no OCSP answer")
    cert_id = _cert_id(cert, issuer)
    entry = ocsp.for_cert(cert_id)
    if entry is None:
        return _Source("ocsp", problem="no OCSP answer")
    try:
        answer = read_answer(entry, cert_id, issuer, at=at, freshness=policy.crl_freshness,
                             issuer_id=fingerprint(issuer))
    except OcspUnusable as unusable:
        return _Source("ocsp", problem=f"OCSP answer unusable: {unusable}")
    when = answer.this_update.isoformat()
    if answer.status is OcspStatus.REVOKED and answer.revocation_time is not None and (
        answer.revocation_time <= at
    ):
        return _Source(
            "ocsp", fresh=answer.fresh, on_hold=answer.on_hold,
            revoked=f"revoked {answer.revocation_time.isoformat()} (OCSP answer of {when})")
    if answer.status is OcspStatus.UNKNOWN:
        return _Source("ocsp", problem="OCSP responder does not know the certificate")
    if not answer.fresh:
        next_update = answer.next_update.isoformat() if answer.next_update else "none"
        return _Source(
            "ocsp", problem=f"OCSP answer is stale (thisUpdate {when}, nextUpdate {next_update})")
    status = answer.status.value
    if answer.revocation_time is not None:  # revoked only after ``at``
        status = f"not revoked at receipt (revoked {answer.revocation_time.isoformat()})"
    return _Source("ocsp", fresh=True, clear=f"{status}@{when} by {answer.responder}")


def check_revocation(
    path: Sequence[x509.Certificate],
    crls: CrlSnapshot,
    policy: TrustPolicy,
    at: datetime,
    ocsp: OcspSnapshot | None = None,
    wanted: list[OcspQuery] | None = None,
) -> dict[str, str]:
    """Check every certificate of ``path`` but the root with the rule of this module's docstring.

    Returns evidence (the CRL numbers and OCSP answers used). Raises CERT_REVOKED (FAILED), or
    REVOCATION_UNAVAILABLE (INDETERMINATE) when some certificate's status cannot be decided;
    then the certificates that name an OCSP responder are appended to ``wanted``.
    """
    answers = ocsp if ocsp is not None else OcspSnapshot()
    # Without OCSP answers, a path these CRLs cleared stays cleared until the first of them goes
    # stale: each used CRL is fresh and lists none of the serials (revocation is judged by
    # the CRL snapshot alone, which carries this memo and is replaced when any CRL changes).
    key = (path.fingerprints if isinstance(path, CertPath)
           else tuple(fingerprint(c) for c in path), policy.crl_freshness)
    if not answers.by_cert:
        known = crls._passed.get(key)
        if known is not None and at <= known[0]:
            return dict(known[1])
    evidence: dict[str, str] = {}
    undecided: list[tuple[x509.Certificate, str]] = []
    clear_until: list[datetime] = []
    for cert, issuer in itertools.pairwise(path):
        who = "signer" if cert is path[0] else "CA"
        sources = (
            _crl_source(cert, issuer, crls, policy, at),
            _ocsp_source(cert, issuer, answers, policy, at),
        )
        if sources[0].until is not None:
            clear_until.append(sources[0].until)
        for source in sources:
            if source.revoked and (source.fresh or not source.on_hold):
                raise ValidationFailure(
                    Reason.CERT_REVOKED,
                    f"{who} certificate serial {cert.serial_number:x} {source.revoked}",
                    evidence={"revocation_source": source.name})
        clear = {s.name: s.clear for s in sources if s.clear}
        if not clear:
            undecided.append((cert, "; ".join(s.problem or f"{s.name}: on hold" for s in sources)))
            continue
        for name, value in clear.items():
            evidence[f"{name}_{who}"] = value
    if undecided:
        urls = {
            "crl_urls": " ".join(dict.fromkeys(u for c, _ in undecided
                                               for u in distribution_points(c))),
            "ocsp_urls": " ".join(dict.fromkeys(u for c, _ in undecided for u in _ocsp_urls(c))),
        }
        if wanted is not None:
            issuers = dict(itertools.pairwise(path))
            for cert, _ in undecided:
                responders = _ocsp_urls(cert)
                if responders:
                    wanted.append(OcspQuery(_cert_id(cert, issuers[cert]), responders,
                                            read_certificate(cert).subject_text))
        cert, why = undecided[0]
        who = "signer" if cert is path[0] else "CA"
        raise ValidationFailure(
            Reason.REVOCATION_UNAVAILABLE, f"{who} certificate serial {cert.serial_number:x}: {why}",
            indication=Indication.INDETERMINATE, evidence=urls)
    if not answers.by_cert and clear_until and len(clear_until) == len(path) - 1:
        if len(crls._passed) >= MAX_PASSED_MEMO:
            crls._passed.clear()
        crls._passed[key] = (min(clear_until), dict(evidence))
    return evidence
