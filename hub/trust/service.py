"""The trust service: validate a packet, and on INDETERMINATE refresh once and validate again.

One typed object owns the rule that used to be a closure in the wiring: a report that is
INDETERMINATE because revocation data is missing or stale makes the service fetch the CRLs the
certificates point to (at most once a minute per URL) and ask the OCSP responders they name
(rate-limited by :class:`~hub.trust.revocation.OcspCache`), then judge again. Still missing:
the report stays INDETERMINATE and the plan retries later (transient, never a refusal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from hub.directory import Directory
from hub.edxml.model import Envelope, StatusPacket
from hub.errors import ConfigurationError
from hub.logs import get_logger
from hub.trust.revocation import RevocationCache
from hub.validators import ValidationReport, validate_packet
from hub.validators.trust import TrustPolicy

log = get_logger("hub.trust")

CRL_REFETCH_S = 60.0
"""A CRL URL is fetched again for an INDETERMINATE report at most this often."""


class TrustService:
    """Satisfies :class:`hub.consumers.plan.Validator`: ``service(packet, at) -> report``."""

    def __init__(self, policy: TrustPolicy, directory: Directory, revocation: RevocationCache,
                 *, fetch_crls: bool, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.directory = directory
        self.revocation = revocation
        self.fetch_crls = fetch_crls
        self._monotonic = monotonic
        self._fetched: dict[str, float] = {}

    def _judge(self, packet: Envelope | StatusPacket, at: datetime) -> ValidationReport:
        return validate_packet(packet, at=at, policy=self.policy, directory=self.directory,
                               crls=self.revocation.snapshot(),
                               ocsp=self.revocation.ocsp_snapshot())

    def __call__(self, packet: Envelope | StatusPacket, at: datetime) -> ValidationReport:
        report = self._judge(packet, at)
        if not (self.fetch_crls and report.indeterminate):
            return report
        now = self._monotonic()
        urls = {u for c in report.checks for u in str(c.evidence.get("crl_urls", "")).split()
                if u.startswith(("http://", "https://"))}
        due = {u for u in urls if now - self._fetched.get(u, -1e9) > CRL_REFETCH_S}
        if not due and not report.ocsp_queries:
            return report
        for u in due:
            self._fetched[u] = now
        self.revocation.refresh(due, ocsp=report.ocsp_queries)
        return self._judge(packet, at)


class CrlRefresher:
    """Refresh CRLs from files and distribution points when idle, at most every ``every_s``."""

    def __init__(self, cache: RevocationCache, every_s: float = 300.0) -> None:
        self.cache = cache
        self.every_s = every_s
        self._last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        try:
            self.cache.refresh()
        except ConfigurationError as exc:  # a CRL file became unreadable: keep the old ones
            log.error("crl_refresh_failed", detail=str(exc)[:200])
