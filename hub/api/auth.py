"""Who is calling: a client certificate or a system id + secret, mapped to one organization.

Both ways end in a :class:`Caller`: the organization's primary code (it names the queues the
caller reads) and its broker account (what the hub's plan binds to ``From``, exactly as the AMQP
``user_id`` of a direct publisher). The directory is the authority in both cases:

* a **client certificate** (mutual TLS, the default for production) belongs to the organization
  that lists it as one of its ``organization`` signers, by subject UID or SHA-256 fingerprint —
  the same rule that binds an envelope's seal to its ``From`` (``hub.directory.Signer.matches``);
  the TLS layer has already checked its chain against ``[api] tls_client_ca``;
* a **system id + secret** names its organization in the credentials file
  (:mod:`hub.api.credentials`), which must be a body of the directory served by this hub.

Per-agency rate limits are token buckets keyed by the organization (all systems of one agency
share its budget). What protects the API from clients that never authenticate, or from one
agency taking every request thread, is here too:

* :class:`SignInThrottle`: failed sign-ins per client address and per system id, judged
  *before* a secret is checked (argon2 is slow on purpose: an unthrottled stream of wrong
  secrets would be a denial of service). A system whose secret verified before skips it, so
  a client that keeps failing behind the same address (a NAT, a proxy) does not lock it out;
* :class:`BoundedHasher`: a few argon2 verifications at once; one more is refused at once
  (:class:`SignInBusy`) instead of queueing for a request thread;
* :class:`WaitSlots`: the requests one agency may have waiting (long polls, verdict waits);
* :class:`ClientCertCheck`: what the TLS layer does not check about a client certificate —
  the clientAuth extended key usage and revocation, with the hub's own revocation data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from hub.directory import Directory, OrgEntry
from hub.errors import ConfigurationError
from hub.logs import get_logger
from hub.reasons import Reason
from hub.trust.revocation import RevocationCache
from hub.trust.service import CRL_REFETCH_S, CrlRefresher
from hub.validators.ocsp import OcspQuery
from hub.validators.outcome import ValidationFailure
from hub.validators.trust import TrustPolicy, build_path, check_revocation

__all__ = ["ApiError", "BoundedHasher", "Caller", "CertificateMap", "ClientCertCheck", "Guard",
           "RateLimiter", "SignInBusy", "SignInThrottle", "WaitSlots", "require_client_auth"]

log = get_logger("hub.api")


class ApiError(Exception):
    """A request the API answers with an error: an HTTP status and a stable reason code."""

    def __init__(self, reason: Reason, status: int, detail: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Caller:
    organization: str
    """Primary code of the calling organization (its queues are named after it)."""
    broker_user: str
    """The organization's broker account: the identity the plan binds to ``From``."""
    system: str
    """The system id, or ``cert:<sha-256 prefix>`` for a certificate."""
    method: Literal["certificate", "secret"]


def served_entry(directory: Directory, code: str, at: datetime) -> OrgEntry | None:
    """The directory entry of a body this hub serves directly (valid at ``at``), or None."""
    entry = directory.find(code, at)
    if entry is None or entry.reach != "direct" or not entry.broker_user:
        return None
    return entry


def caller_for(entry: OrgEntry, system: str, method: Literal["certificate", "secret"]) -> Caller:
    return Caller(entry.codes[0], entry.broker_user, system, method)


class CertificateMap:
    """Client certificate (DER) → organization, through the directory's organization signers."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def organization(self, der: bytes, at: datetime) -> OrgEntry | None:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return None
        found: list[OrgEntry] = []
        for entry in self.directory.entries:
            if entry.reach != "direct" or not entry.valid_at(at):
                continue
            for signer in entry.signers_at(at):
                try:
                    if signer.role == "organization" and signer.matches(cert):
                        found.append(entry)
                        break
                except ValueError:  # an unreadable subject matches nobody
                    continue
        # A certificate two bodies claim identifies neither.
        return found[0] if len(found) == 1 else None

    @staticmethod
    def fingerprint(der: bytes) -> str:
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        return digest.finalize().hex()


class RateLimiter:
    """One token bucket per organization: ``rate`` requests/s on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead; otherwise the seconds to wait before retrying."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


# -- sign-ins ---------------------------------------------------------------------------------


class SignInThrottle:
    """Failed sign-ins: one token bucket per client address and one per system id.

    A sign-in *reserves* a token from both before its secret is checked and gets it back when
    the secret is right, so only failures spend the allowance, and a client out of it is
    refused before any argon2 work. Per address, because one client must not make the API
    hash for ever; per system id, because guesses at one system may come from many addresses.

    The cost of the per-id bucket is that someone failing at a system's id could make that
    system wait; a secret that verified before (remembered as an HMAC under a per-process key,
    never the secret, until it fails once) skips the throttle, so a running system is not
    locked out by another client behind its address or by guesses at its id. Buckets that
    are whole again are forgotten, so made-up ids do not fill the memory.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000, remember_s: float = 86_400.0) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self.remember_s = remember_s
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._good: dict[bytes, float] = {}
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def _level(self, key: tuple[str, str], now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def reserve(self, address: str, system_id: str) -> float:
        """0 when the sign-in may be checked (a token of each bucket is taken); otherwise the
        seconds to wait before trying again (nothing is taken)."""
        keys = (("address", address), ("system", system_id[:64]))
        now = self.clock()
        with self._lock:
            levels = [self._level(k, now) for k in keys]
            short = max(1.0 - level for level in levels)
            if short > 0:
                return short / self.rate
            if len(self._buckets) >= self.max_keys:
                self._forget_whole(now)
            for key, level in zip(keys, levels, strict=True):
                self._buckets[key] = (level - 1.0, now)
            return 0.0

    def succeeded(self, address: str, system_id: str) -> None:
        """Give back what :meth:`reserve` took: a right secret costs nothing."""
        now = self.clock()
        with self._lock:
            for key in (("address", address), ("system", system_id[:64])):
                if key in self._buckets:
                    self._buckets[key] = (min(self.burst, self._level(key, now) + 1.0), now)

    def _forget_whole(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all spent: start again rather than grow
            self._buckets.clear()

    def size(self) -> int:
        with self._lock:
            return len(self._buckets)

    def _token(self, system_id: str, secret: str) -> bytes:
        return hmac.new(self._key, f"{system_id}\0{secret}".encode(), hashlib.sha256).digest()

    def known(self, system_id: str, secret: str) -> bool:
        """Whether this secret verified for this system before (recently, and not failed since)."""
        token = self._token(system_id, secret)
        with self._lock:
            until = self._good.get(token)
        return until is not None and until > self.clock()

    def remember(self, system_id: str, secret: str) -> None:
        token = self._token(system_id, secret)
        with self._lock:
            if len(self._good) >= self.max_keys:
                self._good.clear()
            self._good[token] = self.clock() + self.remember_s

    def forget(self, system_id: str, secret: str) -> None:
        token = self._token(system_id, secret)
        with self._lock:
            self._good.pop(token, None)


class SignInBusy(Exception):
    """Every secret-check slot is taken: the API answers 429 at once."""


class BoundedHasher(PasswordHasher):
    """A password hasher that runs at most ``slots`` verifications at once.

    argon2 with the library's defaults takes 64 MiB and four lanes for ~0.4 s per check: the
    request threads (a pool shared by every agency) must not all be spent on it. A check
    beyond the slots raises :class:`SignInBusy` without waiting; a secret the credential store
    has cached needs no check and no slot. Hashing (``hub api credentials``) is not bounded.
    """

    def __init__(self, inner: PasswordHasher, slots: int) -> None:
        super().__init__(time_cost=inner.time_cost, memory_cost=inner.memory_cost,
                         parallelism=inner.parallelism, hash_len=inner.hash_len,
                         salt_len=inner.salt_len, encoding=inner.encoding, type=inner.type)
        self.inner = inner
        self._slots = threading.BoundedSemaphore(slots)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        return self.inner.hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        if not self._slots.acquire(blocking=False):
            raise SignInBusy
        try:
            return self.inner.verify(hash, password)
        finally:
            self._slots.release()


# -- waiting requests -------------------------------------------------------------------------


class WaitSlots:
    """The requests one agency may have waiting at once (long polls, verdict waits).

    Request handlers run on a bounded thread pool shared by every agency; the token bucket
    bounds how many requests an agency makes, not how long they hold a thread, so without
    this one agency's long polls could hold them all.
    """

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._held: dict[str, int] = {}
        self._changed = threading.Condition()

    @contextmanager
    def holding(self, key: str) -> Iterator[bool]:
        """Yields True with a slot held until the block ends, or False when ``key`` has none
        left (nothing held)."""
        with self._changed:
            taken = self._held.get(key, 0) < self.per_key
            if taken:
                self._held[key] = self._held.get(key, 0) + 1
                self._changed.notify_all()
        try:
            yield taken
        finally:
            if taken:
                with self._changed:
                    left = self._held[key] - 1
                    if left:
                        self._held[key] = left
                    else:
                        del self._held[key]
                    self._changed.notify_all()

    def held(self, key: str) -> int:
        with self._changed:
            return self._held.get(key, 0)

    def wait_for(self, key: str, count: int, timeout: float) -> bool:
        """Wait until ``key`` holds ``count`` slots (tests and the benchmark)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._held.get(key, 0) == count, timeout)


# -- client certificates ----------------------------------------------------------------------


def require_client_auth(cert: x509.Certificate) -> None:
    """The certificate is one for TLS client authentication: its extendedKeyUsage is present
    and names clientAuth (RFC 5280 §4.2.1.12; RFC 5246 §7.4.6). OpenSSL's purpose check
    refuses an EKU without clientAuth but lets a certificate with no EKU at all through.
    Real specialized certificates carry one: the personal G2 leaves seen list server and
    client authentication (DOMAIN-LAW §4.2). anyExtendedKeyUsage alone is refused, as OpenSSL
    refuses it."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise ApiError(Reason.API_CLIENT_CERT_INVALID, 403,
                       "the client certificate has no extendedKeyUsage: clientAuth is "
                       "required") from None
    except ValueError:
        raise ApiError(Reason.API_CLIENT_CERT_INVALID, 403,
                       "the client certificate's extensions cannot be read") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise ApiError(Reason.API_CLIENT_CERT_INVALID, 403,
                       "the client certificate's extendedKeyUsage lacks clientAuth")


STATUS_RETRY_S = int(CRL_REFETCH_S)
"""Retry-After of a request refused because its certificate's status is unknown: the API
fetches a CRL URL again at most this often."""


class ClientCertCheck:
    """The client certificate's revocation, with the hub's own revocation machinery.

    The TLS layer has verified the chain against ``[api] tls_client_ca`` but knows no CRL.
    This check builds the same path from those CAs (``policy``: their roots as anchors, the
    rest and ``[trust] intermediates`` as intermediates) and applies the intake's rule
    (:func:`hub.validators.trust.check_revocation`) with the :class:`RevocationCache` that
    ``hub run`` uses: ``[trust] crls`` files, CRLs fetched from distribution points and OCSP
    answers when ``[trust] fetch_crls``, the same freshness window.

    The policy is the validators': a certificate whose status cannot be decided is never let
    through (fail closed). Like :class:`~hub.trust.service.TrustService` the check first
    refreshes what the certificate points to (each CRL URL at most once a minute), then, still
    undecided, refuses for now with ``503 API_CLIENT_CERT_STATUS_UNKNOWN`` and Retry-After.
    Files and distribution points are refreshed every ``refresh_s`` in any case.
    """

    def __init__(self, policy: TrustPolicy, revocation: RevocationCache, *, fetch: bool,
                 refresh_s: float = 300.0, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.policy = policy
        self.revocation = revocation
        self.fetch = fetch
        self._monotonic = monotonic
        self._refresher = CrlRefresher(revocation, every_s=refresh_s)
        self._refreshing = threading.Lock()
        self._fetched: dict[str, float] = {}
        self._fetched_lock = threading.Lock()

    def check(self, der: bytes, at: datetime) -> None:
        """Raise :class:`ApiError` unless the certificate is for client authentication and
        not revoked at ``at``."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise ApiError(Reason.API_CLIENT_CERT_INVALID, 403,
                           "the client certificate cannot be read") from None
        require_client_auth(cert)
        if self._refreshing.acquire(blocking=False):  # one request refreshes; none waits
            try:
                self._refresher()
            finally:
                self._refreshing.release()
        try:
            path = build_path(cert, (), self.policy)
        except ValidationFailure as failure:
            raise ApiError(Reason.API_CLIENT_CERT_INVALID, 403,
                           f"no path to a CA of [api] tls_client_ca: {failure.detail}") from None
        wanted: list[OcspQuery] = []
        try:
            self._judge(path, at, wanted)
            return
        except ValidationFailure as failure:
            if failure.reason is not Reason.REVOCATION_UNAVAILABLE or not self._refetch(
                    failure, wanted):
                raise self._refusal(cert, failure) from None
        try:
            self._judge(path, at, [])
        except ValidationFailure as failure:
            raise self._refusal(cert, failure) from None

    def _judge(self, path: tuple[x509.Certificate, ...], at: datetime,
               wanted: list[OcspQuery]) -> None:
        check_revocation(path, self.revocation.snapshot(), self.policy, at,
                         ocsp=self.revocation.ocsp_snapshot(), wanted=wanted)

    def _refetch(self, failure: ValidationFailure, wanted: list[OcspQuery]) -> bool:
        """Fetch the CRLs the undecided certificates point to (each URL at most once a
        minute) and ask their OCSP responders; whether anything was asked."""
        if not self.fetch:
            return False
        now = self._monotonic()
        urls = [u for u in failure.evidence.get("crl_urls", "").split()
                if u.startswith(("http://", "https://"))]
        with self._fetched_lock:
            due = [u for u in urls if now - self._fetched.get(u, -1e9) > CRL_REFETCH_S]
            for url in due:
                self._fetched[url] = now
        if not due and not wanted:
            return False
        try:
            self.revocation.refresh(due, ocsp=wanted)
        except ConfigurationError as exc:  # a CRL file became unreadable: keep the old ones
            log.error("crl_refresh_failed", detail=str(exc)[:200])
        return True

    @staticmethod
    def _refusal(cert: x509.Certificate, failure: ValidationFailure) -> ApiError:
        fingerprint = CertificateMap.fingerprint(cert.public_bytes(
            serialization.Encoding.DER))[:16]
        if failure.reason is Reason.CERT_REVOKED:
            log.warning("api_certificate_revoked", fingerprint=fingerprint)
            return ApiError(Reason.API_CLIENT_CERT_REVOKED, 403, failure.detail)
        if failure.reason is Reason.REVOCATION_UNAVAILABLE:
            log.warning("api_certificate_status_unknown", fingerprint=fingerprint)
            return ApiError(Reason.API_CLIENT_CERT_STATUS_UNKNOWN, 503, failure.detail,
                            headers={"Retry-After": str(STATUS_RETRY_S)})
        return ApiError(Reason.API_CLIENT_CERT_INVALID, 403, failure.detail)


@dataclass(frozen=True, slots=True)
class Guard:
    """The API's protections beside the per-agency rate: built once from ``[api]`` (and
    ``[trust]`` for client certificates) by :func:`hub.api.server.build_guard`."""

    signins: SignInThrottle
    waits: WaitSlots
    client_certs: ClientCertCheck | None = None
    """None without mutual TLS (no client certificate can reach the application)."""
