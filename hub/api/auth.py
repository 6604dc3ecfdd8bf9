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
share its budget).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hub.directory import Directory, OrgEntry
from hub.reasons import Reason

__all__ = ["ApiError", "Caller", "CertificateMap", "RateLimiter"]


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
