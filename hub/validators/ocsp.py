"""OCSP answers (RFC 6960) for the revocation check (pure: no I/O; responses are handed in).

The issuing CA of the specialized hierarchy operates an OCSP responder (Circular
41/2017/TT-BTTTT Art. 8 and Decree 130/2018/NĐ-CP: revocation status comes from the CA's
CRL or OCSP). When a certificate's
authorityInfoAccess names one (id-ad-ocsp), :mod:`hub.trust.revocation` asks it and hands the answers
in as an :class:`OcspSnapshot`; this module reads them:

- **CertID** (RFC 6960 §4.1.1) is always built with **SHA-256** (never SHA-1): hash of the
  issuer's name (DER), hash of the issuer's public key (the subjectPublicKey BIT STRING) and the
  serial number. Answers are looked up by it (:class:`CertId`).
- **Who may sign an answer** (RFC 6960 §4.2.2.2): the issuing CA itself, or a *delegated*
  responder whose certificate was issued directly by that CA, carries id-kp-OCSPSigning and is
  valid at ``at`` (the time everything else is judged at). The signature must verify with that
  key, with a SHA-2 hash (SHA-1 and MD5 signatures are unusable, as everywhere in the hub). The
  delegated responder's own revocation is not checked (the CA marks such short-lived
  certificates with id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1).
- **Freshness** (RFC 6960 §3.2, points 4–5), the same window as CRLs
  (``[trust] crl_freshness_s``): an answer is fresh at ``at`` when its thisUpdate is at most
  the freshness window before ``at``, or its nextUpdate has not passed. A thisUpdate later than
  the time the hub fetched the answer (beyond a small clock skew) makes it unusable. An answer
  produced after ``at`` is fine: "good" at a later time means not revoked at ``at``.
- No nonce is sent: answers are cached (and CAs pre-produce them), which a nonce would defeat;
  replay is bounded by the freshness rule instead.

A response that cannot be used raises :class:`OcspUnusable` with why; the caller
(:func:`hub.validators.trust.check_revocation`) combines OCSP and CRL answers.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

CLOCK_SKEW = timedelta(minutes=5)
"""How far a responder's clock may run ahead of the hub's."""
_STRONG_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


def ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The HTTP(S) OCSP responder URLs named in a certificate's authorityInfoAccess (none when
    the extension is missing or cannot be read)."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return ()
    return tuple(
        d.access_location.value
        for d in access
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.startswith(("http://", "https://"))
    )


@dataclass(frozen=True, slots=True)
class CertId:
    """RFC 6960 CertID with SHA-256: what an OCSP request asks about and an answer names."""

    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    @classmethod
    def of(cls, cert: x509.Certificate, issuer: x509.Certificate) -> CertId:
        # cryptography computes the key hash over the subjectPublicKey BIT STRING, as §4.1.1 says.
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
        return cls(request.issuer_name_hash, request.issuer_key_hash, cert.serial_number)

    def request(self) -> bytes:
        """A DER OCSPRequest for this certificate (no nonce, no requestor signature)."""
        return (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                self.issuer_name_hash, self.issuer_key_hash, self.serial, hashes.SHA256())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )

    def matches(self, single: ocsp.OCSPSingleResponse) -> bool:
        try:
            algorithm = single.hash_algorithm
        except UnsupportedAlgorithm:  # an OID cryptography does not know: not a SHA-256 CertID
            return False
        return (
            isinstance(algorithm, hashes.SHA256)
            and single.issuer_name_hash == self.issuer_name_hash
            and single.issuer_key_hash == self.issuer_key_hash
            and single.serial_number == self.serial
        )

    def __str__(self) -> str:
        return f"serial {self.serial:x} (issuer key {self.issuer_key_hash.hex()[:16]})"


@dataclass(frozen=True, slots=True)
class OcspQuery:
    """A certificate whose status the validators could not establish, and where to ask.

    Returned in :attr:`hub.validators.outcome.ValidationReport.ocsp_queries`; handed to
    :meth:`hub.trust.revocation.RevocationCache.refresh`.
    """

    cert_id: CertId
    urls: tuple[str, ...]
    subject: str = ""
    """RFC 4514 subject of the certificate (for operators)."""


@dataclass(frozen=True, slots=True)
class OcspEntry:
    """One OCSP response as fetched, with the time the hub obtained it."""

    response: ocsp.OCSPResponse
    fetched_at: datetime
    source: str = ""
    """The responder URL it came from (for operators)."""
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    """What was established about this response (its answer per CertID, which keys verify its
    signature: :func:`_remembered`). Lives and dies with the entry: a new answer is a new entry."""

    @classmethod
    def from_der(cls, data: bytes, fetched_at: datetime, source: str = "") -> OcspEntry:
        """Parse a DER OCSPResponse (raises ``ValueError``)."""
        return cls(ocsp.load_der_ocsp_response(data), fetched_at, source)

    @property
    def successful(self) -> bool:
        return self.response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL

    def single(self, cert_id: CertId) -> ocsp.OCSPSingleResponse | None:
        """The answer about ``cert_id`` inside this response, if any (found once per CertID)."""
        if not self.successful:
            return None
        found: ocsp.OCSPSingleResponse | None = _remembered(
            self._memo, ("single", cert_id),
            lambda: next((s for s in self.response.responses if cert_id.matches(s)), None))
        return found

    def usable_until(self, cert_id: CertId, freshness: timedelta) -> datetime | None:
        """Until when a cache may keep this answer: as long as it is fresh by :func:`read_answer`'s
        rule — its nextUpdate or thisUpdate + the freshness window, whichever is later."""
        single = self.single(cert_id)
        if single is None:
            return None
        window_end = single.this_update_utc + freshness
        next_update = single.next_update_utc
        return window_end if next_update is None else max(next_update, window_end)


@dataclass(frozen=True, slots=True)
class OcspSnapshot:
    """The OCSP answers known at one moment, by CertID. Immutable: handed to validators."""

    by_cert: Mapping[CertId, OcspEntry] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, entries: Iterable[tuple[CertId, OcspEntry]]) -> OcspSnapshot:
        """Keep the newest answer (by thisUpdate) per certificate."""
        best: dict[CertId, tuple[datetime, OcspEntry]] = {}
        for cert_id, entry in entries:
            single = entry.single(cert_id)
            when = single.this_update_utc if single is not None else entry.fetched_at
            current = best.get(cert_id)
            if current is None or when >= current[0]:
                best[cert_id] = (when, entry)
        return cls(MappingProxyType({k: e for k, (_, e) in best.items()}))

    def for_cert(self, cert_id: CertId) -> OcspEntry | None:
        return self.by_cert.get(cert_id)

    def __len__(self) -> int:
        return len(self.by_cert)


class OcspStatus(enum.StrEnum):
    """RFC 6960 §2.2 certificate status."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    """What a verified OCSP answer says about one certificate."""

    status: OcspStatus
    fresh: bool
    this_update: datetime
    next_update: datetime | None
    responder: str
    """"issuing CA" or the delegated responder's SHA-256 fingerprint."""
    revocation_time: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None

    @property
    def on_hold(self) -> bool:
        """certificateHold is a suspension that may be lifted (RFC 5280 §5.3.1)."""
        return self.revocation_reason is x509.ReasonFlags.certificate_hold


class OcspUnusable(Exception):
    """The response says nothing the hub may rely on (the message says why)."""


MAX_MEMO = 64
"""Facts one :class:`OcspEntry` remembers (then it starts again): a response answers about
one certificate or a few, signed by one key."""


def _remembered(memo: dict[Any, Any], key: Any, compute: Callable[[], Any]) -> Any:
    """``memo[key]``, computed once. An exception is raised again on every call, never kept."""
    if key in memo:
        return memo[key]
    value = compute()
    if len(memo) >= MAX_MEMO:
        memo.clear()
    memo[key] = value
    return value


def _verify(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _verify_by(cert: x509.Certificate, signature: bytes, data: bytes,
               algorithm: hashes.HashAlgorithm) -> bool:
    return _verify(cert.public_key(), signature, data, algorithm)


def _der_digest(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _issued_for_ocsp(candidate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """RFC 6960 §4.2.2.2 but the validity time: issued directly by the CA, id-kp-OCSPSigning."""
    if candidate.issuer != issuer.subject:
        return False
    try:
        candidate.verify_directly_issued_by(issuer)
        ekus = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in ekus


def _signer(entry: OcspEntry, issuer: x509.Certificate, at: datetime,
            issuer_id: str | None = None) -> str:
    """Who signed ``entry``'s response — the issuing CA or a delegated responder — or raise.

    With ``issuer_id`` (the issuer's DER digest) the signature checks, which do not depend on
    ``at``, are remembered on the entry for that issuer; a delegated responder's validity is
    judged at ``at`` every time. The steps run in the same order either way.
    """
    response = entry.response
    try:
        algorithm = response.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise OcspUnusable("response signed with an unsupported algorithm") from None
    if not isinstance(algorithm, _STRONG_HASHES):
        raise OcspUnusable(
            f"response signed with {getattr(algorithm, 'name', 'an unsupported algorithm')}")
    data, signature = response.tbs_response_bytes, response.signature
    memo: dict[Any, Any] = entry._memo if issuer_id is not None else {}
    if _remembered(memo, ("issuer", issuer_id),
                   lambda: _verify(issuer.public_key(), signature, data, algorithm)):
        return "issuing CA"
    for n, candidate in enumerate(response.certificates):
        if not _remembered(memo, ("delegated", issuer_id, n),
                           functools.partial(_issued_for_ocsp, candidate, issuer)):
            continue
        if not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
            continue
        if _remembered(memo, ("verifies", n), functools.partial(
                _verify_by, candidate, signature, data, algorithm)):
            responder: str = _remembered(memo, ("responder", n),
                                         functools.partial(_der_digest, candidate))
            return responder
    raise OcspUnusable(
        "response signature does not verify with the issuing CA's key or a delegated "
        "responder (id-kp-OCSPSigning) it issued")


def read_answer(
    entry: OcspEntry,
    cert_id: CertId,
    issuer: x509.Certificate,
    *,
    at: datetime,
    freshness: timedelta,
    issuer_id: str | None = None,
) -> OcspAnswer:
    """Verify ``entry`` and read its answer about ``cert_id`` (issued by ``issuer``) at ``at``.

    Raises :class:`OcspUnusable` when the response is unsuccessful, names another certificate,
    is badly signed or comes from the future. Staleness is reported, not raised
    (:attr:`OcspAnswer.fresh`). ``issuer_id``: the issuer's DER digest, under which the
    entry remembers whose key verifies it (:func:`_signer`). A response is untrusted input
    whose fields ``cryptography`` reads lazily: one that cannot be read is unusable too.
    """
    try:
        return _read_answer(entry, cert_id, issuer, at, freshness, issuer_id)
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise OcspUnusable(f"response cannot be read ({type(exc).__name__})") from None


def _read_answer(entry: OcspEntry, cert_id: CertId, issuer: x509.Certificate, at: datetime,
                 freshness: timedelta, issuer_id: str | None) -> OcspAnswer:
    response = entry.response
    if not entry.successful:
        raise OcspUnusable(f"responder answered {response.response_status.name}")
    single = entry.single(cert_id)
    if single is None:
        raise OcspUnusable(f"no SHA-256 answer for {cert_id}")
    responder = _signer(entry, issuer, at, issuer_id)
    this_update = single.this_update_utc
    if this_update > entry.fetched_at + CLOCK_SKEW:
        raise OcspUnusable(f"thisUpdate {this_update.isoformat()} is in the future")
    next_update = single.next_update_utc
    fresh = at - this_update <= freshness or (next_update is not None and at <= next_update)
    status = {
        ocsp.OCSPCertStatus.GOOD: OcspStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED: OcspStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN: OcspStatus.UNKNOWN,
    }[single.certificate_status]
    revoked = status is OcspStatus.REVOKED
    return OcspAnswer(
        status=status, fresh=fresh, this_update=this_update, next_update=next_update,
        responder=responder,
        revocation_time=single.revocation_time_utc if revoked else None,
        revocation_reason=single.revocation_reason if revoked else None,
    )
