"""Certificate trust and revocation (pure: no I/O; the policy and CRLs are handed in).

Rules (DOMAIN.md §4):

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
  2. otherwise a fresh "good" OCSP answer, or a fresh CRL without the serial, is "not revoked";
  3. otherwise (no source, none fresh, OCSP "unknown", a source that does not verify) the check
     is INDETERMINATE (REVOCATION_UNAVAILABLE), never a silent pass: the pipeline retries later.
     The evidence names where to look: ``crl_urls`` (distribution points) and ``ocsp_urls``
     (authorityInfoAccess); :attr:`ValidationReport.ocsp_queries` carries the OCSP questions.

Path building is by issuer name plus signature check (RFC 5280 §6 in its simple form: no name
constraints or policy mappings, which the specialized hierarchy does not use). The expensive
part — finding and verifying the path — is cached per (leaf, offered intermediates); validity
times, key usage, policies and revocation are re-checked on every call because they depend on
``at`` and on the CRLs (all cheap).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hub.reasons import Reason
from hub.validators.ocsp import (
    CertId,
    OcspQuery,
    OcspSnapshot,
    OcspStatus,
    OcspUnusable,
    ocsp_urls,
    read_answer,
)
from hub.validators.outcome import Indication, ValidationFailure

MAX_PATH_LENGTH = 6
_WEAK_HASHES = (hashes.SHA1, hashes.MD5)


@functools.lru_cache(maxsize=8192)
def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate DER, hex (remembered: certificates compare by their DER)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def subject_uid(cert: x509.Certificate) -> str | None:
    """The subject's UID attribute (OID 0.9.2342.19200300.100.1.1), if any."""
    values = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(values[0].value) if values else None


def distribution_points(cert: x509.Certificate) -> tuple[str, ...]:
    """The HTTP(S) CRL distribution-point URLs of a certificate."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    urls = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith(
                ("http://", "https://")
            ):
                urls.append(name.value)
    return tuple(urls)


class ChainCache:
    """A small thread-safe LRU of path-building results, owned by a :class:`TrustPolicy`."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._data: OrderedDict[tuple[str, ...], tuple[x509.Certificate, ...] | ValidationFailure]
        self._data = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(
        self, key: tuple[str, ...]
    ) -> tuple[x509.Certificate, ...] | ValidationFailure | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(
        self, key: tuple[str, ...], value: tuple[x509.Certificate, ...] | ValidationFailure
    ) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


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
    cache: ChainCache = field(default_factory=ChainCache, init=False, compare=False, repr=False)
    """Path-building results of this policy (a changed policy, even via ``replace``, starts
    with an empty cache)."""

    @property
    def root_fingerprints(self) -> frozenset[str]:
        return frozenset(fingerprint(c) for c in self.roots)


# -- revocation data --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrlEntry:
    """One CRL as fetched, with its issuer's name and the time the hub obtained it."""

    crl: x509.CertificateRevocationList
    fetched_at: datetime
    source: str = ""
    """File path or URL it came from (for operators)."""
    _signed_by: dict[x509.Certificate, bool] = field(
        default_factory=dict, init=False, compare=False, repr=False)

    def signed_by(self, issuer: x509.Certificate) -> bool:
        """Whether ``issuer``'s (RSA) key signed this CRL: verified once per issuer and entry
        (a new CRL is a new entry), not once per envelope."""
        known = self._signed_by.get(issuer)
        if known is None:
            key = issuer.public_key()
            known = isinstance(key, rsa.RSAPublicKey) and self.crl.is_signature_valid(key)
            self._signed_by[issuer] = known
        return known

    @property
    def number(self) -> int | None:
        try:
            return self.crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            return None

    def is_fresh(self, at: datetime, freshness: timedelta) -> bool:
        """Usable at ``at``: obtained within ``freshness``, or its nextUpdate not yet passed.
        The one rule for validation, ``hub doctor`` and the readiness probe."""
        next_update = self.crl.next_update_utc
        aged = at - self.fetched_at > freshness
        expired = next_update is None or at > next_update
        return not (aged and expired)


@dataclass(frozen=True, slots=True)
class CrlSnapshot:
    """The CRLs known at one moment, by issuer name (DER). Immutable: handed to validators."""

    by_issuer: Mapping[bytes, CrlEntry] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, entries: Iterable[CrlEntry]) -> CrlSnapshot:
        """Keep the newest CRL (by thisUpdate) per issuer."""
        best: dict[bytes, CrlEntry] = {}
        for entry in entries:
            key = entry.crl.issuer.public_bytes()
            current = best.get(key)
            if current is None or entry.crl.last_update_utc >= current.crl.last_update_utc:
                best[key] = entry
        return cls(MappingProxyType(best))

    def for_issuer(self, name: x509.Name) -> CrlEntry | None:
        # Exact DER, never a cache keyed by Name: Name equality ignores the string type
        # (PrintableString and UTF8String compare equal), the DER does not.
        return self.by_issuer.get(name.public_bytes())

    @property
    def versions(self) -> tuple[str, ...]:
        """(issuer, CRL number/thisUpdate) pairs: changes whenever any CRL changes."""
        return tuple(
            sorted(
                f"{hashlib.sha256(k).hexdigest()[:16]}:{e.number}:{e.crl.last_update_utc.isoformat()}"
                for k, e in self.by_issuer.items()
            )
        )


# -- path building ----------------------------------------------------------------------------


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ku.key_cert_sign


def _build_path(
    leaf: x509.Certificate, offered: Sequence[x509.Certificate], policy: TrustPolicy
) -> tuple[x509.Certificate, ...]:
    """leaf → … → trusted root, or raise :class:`ValidationFailure` with why not."""
    roots = {fingerprint(c): c for c in policy.roots}
    public = {fingerprint(c): c for c in policy.public_roots}
    if _is_self_signed(leaf):
        if fingerprint(leaf) in public:
            raise ValidationFailure(Reason.CERT_PUBLIC_CA, "a public root used as signer")
        raise ValidationFailure(Reason.CERT_SELF_SIGNED, leaf.subject.rfc4514_string())
    pool = [*offered, *policy.intermediates, *policy.roots, *policy.public_roots]
    path = [leaf]
    current = leaf
    name_matched_but_bad = False
    while len(path) <= MAX_PATH_LENGTH:
        candidates = [c for c in pool if c.subject == current.issuer and c not in path]
        issuer = next((c for c in candidates if _issued_by(current, c)), None)
        if issuer is None:
            name_matched_but_bad = bool(candidates)
            break
        fp = fingerprint(issuer)
        if fp in roots:
            return (*path, issuer)
        if fp in public:
            raise ValidationFailure(
                Reason.CERT_PUBLIC_CA, f"chains to {issuer.subject.rfc4514_string()}")
        if not _is_ca(issuer):
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID,
                f"issuer is not a CA: {issuer.subject.rfc4514_string()}")
        if _is_self_signed(issuer):
            raise ValidationFailure(
                Reason.CERT_UNTRUSTED_ROOT, f"root {issuer.subject.rfc4514_string()}")
        path.append(issuer)
        current = issuer
    if name_matched_but_bad:
        raise ValidationFailure(
            Reason.CERT_PATH_INVALID,
            f"issuer signature does not verify: {current.issuer.rfc4514_string()}")
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationFailure(Reason.CERT_PATH_INVALID, "path too long")
    if any(current.issuer == c.subject for c in policy.public_roots):
        raise ValidationFailure(
            Reason.CERT_PUBLIC_CA, f"issued under {current.issuer.rfc4514_string()}")
    raise ValidationFailure(
        Reason.CERT_UNTRUSTED_ROOT, f"unknown issuer {current.issuer.rfc4514_string()}")


def build_path(
    leaf: x509.Certificate, offered: Sequence[x509.Certificate], policy: TrustPolicy
) -> tuple[x509.Certificate, ...]:
    """The certification path leaf → root (cached per leaf and offered intermediates)."""
    key = (fingerprint(leaf), *sorted(fingerprint(c) for c in offered))
    cached = policy.cache.get(key)
    if isinstance(cached, ValidationFailure):
        raise cached
    if cached is not None:
        return cached
    try:
        path = _build_path(leaf, offered, policy)
    except ValidationFailure as failure:
        policy.cache.put(key, failure)
        raise
    policy.cache.put(key, path)
    return path


# -- per-call checks --------------------------------------------------------------------------


def _check_times(path: Sequence[x509.Certificate], at: datetime) -> None:
    for position, cert in enumerate(path):
        role = "signer" if position == 0 else "CA"
        if at < cert.not_valid_before_utc:
            raise ValidationFailure(
                Reason.CERT_NOT_YET_VALID,
                f"{role} certificate valid from {cert.not_valid_before_utc.isoformat()}")
        if at > cert.not_valid_after_utc:
            raise ValidationFailure(
                Reason.CERT_EXPIRED,
                f"{role} certificate expired {cert.not_valid_after_utc.isoformat()}")


def _check_algorithms(path: Sequence[x509.Certificate], policy: TrustPolicy) -> None:
    for cert in path[:-1]:  # the root's self-signature proves nothing and is not checked
        algorithm = cert.signature_hash_algorithm
        if algorithm is None or isinstance(algorithm, _WEAK_HASHES):
            raise ValidationFailure(
                Reason.CERT_PATH_INVALID,
                f"certificate signed with {getattr(algorithm, 'name', 'unknown')}")
    for cert in path[1:-1]:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < policy.min_rsa_bits:
            raise ValidationFailure(Reason.CERT_PATH_INVALID, f"CA key of {key.key_size} bits")


def _check_leaf(leaf: x509.Certificate, policy: TrustPolicy) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise ValidationFailure(Reason.CERT_KEY_USAGE_INVALID, "no keyUsage extension") from None
    if not (usage.digital_signature or usage.content_commitment):
        raise ValidationFailure(
            Reason.CERT_KEY_USAGE_INVALID, "neither digitalSignature nor nonRepudiation")
    if policy.policy_oids:
        try:
            policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound:
            raise ValidationFailure(
                Reason.CERT_POLICY_MISSING, "no certificatePolicies extension") from None
        carried = {p.policy_identifier.dotted_string for p in policies}
        if not carried & policy.policy_oids:
            raise ValidationFailure(
                Reason.CERT_POLICY_MISSING, f"policies {sorted(carried)} not accepted")


def validate_chain(
    leaf: x509.Certificate,
    offered: Sequence[x509.Certificate],
    policy: TrustPolicy,
    at: datetime,
) -> tuple[x509.Certificate, ...]:
    """Trust checks for a signer certificate at ``at``; returns the path leaf → root.

    Raises :class:`ValidationFailure` with a CERT_* reason.
    """
    path = build_path(leaf, offered, policy)
    _check_times(path, at)
    _check_algorithms(path, policy)
    _check_leaf(leaf, policy)
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


def _crl_source(
    cert: x509.Certificate, issuer: x509.Certificate, crls: CrlSnapshot, policy: TrustPolicy,
    at: datetime,
) -> _Source:
    entry = crls.for_issuer(cert.issuer)
    if entry is None:
        return _Source("crl", problem=f"no CRL for {cert.issuer.rfc4514_string()}")
    crl = entry.crl
    if not entry.signed_by(issuer):
        return _Source(
            "crl", problem=f"CRL of {cert.issuer.rfc4514_string()} does not verify")
    next_update = crl.next_update_utc
    fresh = entry.is_fresh(at, policy.crl_freshness)
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
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
                f"CRL of {cert.issuer.rfc4514_string()} is stale (fetched "
                f"{entry.fetched_at.isoformat()}, nextUpdate "
                f"{next_update.isoformat() if next_update else 'none'})"))
    return _Source("crl", fresh=True, clear=f"{entry.number}@{crl.last_update_utc.isoformat()}")


def _ocsp_source(
    cert: x509.Certificate, issuer: x509.Certificate, ocsp: OcspSnapshot, policy: TrustPolicy,
    at: datetime,
) -> _Source:
    if not ocsp.by_cert:  # the common case without OCSP: skip computing the CertID
        return _Source("ocsp", problem="no OCSP answer")
    cert_id = CertId.of(cert, issuer)
    entry = ocsp.for_cert(cert_id)
    if entry is None:
        return _Source("ocsp", problem="no OCSP answer")
    try:
        answer = read_answer(entry, cert_id, issuer, at=at, freshness=policy.crl_freshness)
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
    evidence: dict[str, str] = {}
    undecided: list[tuple[x509.Certificate, str]] = []
    for cert, issuer in itertools.pairwise(path):
        who = "signer" if cert is path[0] else "CA"
        sources = (
            _crl_source(cert, issuer, crls, policy, at),
            _ocsp_source(cert, issuer, answers, policy, at),
        )
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
            "ocsp_urls": " ".join(dict.fromkeys(u for c, _ in undecided for u in ocsp_urls(c))),
        }
        if wanted is not None:
            issuers = dict(itertools.pairwise(path))
            for cert, _ in undecided:
                if ocsp_urls(cert):
                    wanted.append(OcspQuery(CertId.of(cert, issuers[cert]), ocsp_urls(cert),
                                            cert.subject.rfc4514_string()))
        cert, why = undecided[0]
        who = "signer" if cert is path[0] else "CA"
        raise ValidationFailure(
            Reason.REVOCATION_UNAVAILABLE, f"{who} certificate serial {cert.serial_number:x}: {why}",
            indication=Indication.INDETERMINATE, evidence=urls)
    return evidence
