"""Revocation data for the validators (this module does I/O; the validators stay pure).

:class:`RevocationCache` holds the CRLs the hub knows — configured files (``[trust] crls``) and
CRLs fetched over HTTP from distribution points — and hands out immutable
:class:`~hub.validators.trust.CrlSnapshot` values. A CRL is *fresh* until its nextUpdate, or,
obtained less than ``crl_freshness_s`` ago, at most ``crl_freshness_s`` past it
(:meth:`~hub.validators.trust.CrlEntry.fresh_until`); the validators answer INDETERMINATE
(REVOCATION_UNAVAILABLE, retried by the pipeline) otherwise, and the outcome's evidence names
the distribution-point URLs to fetch (``crl_urls``), which :meth:`refresh` accepts. A
distribution point that serves an older CRL of its issuer than the one held (earlier
thisUpdate or lower CRL number) does not replace it.

A CRL file's age is its modification time (an operator copying an old file does not make it
fresh).

OCSP (RFC 6960) when the certificate names a responder: :class:`OcspCache` asks it — a DER
request with a SHA-256 CertID, POSTed over HTTP (Appendix A.1) with a short timeout, no
redirects, and a size limit on the answer — and keeps each answer per certificate (CertID:
issuer hashes + serial) until its nextUpdate or the freshness window, whichever is later.
Answers are *not* trusted here: the validators verify the responder's signature and judge
freshness (:mod:`hub.validators.ocsp`); the cache only parses them. The validators say what to
ask in :attr:`~hub.validators.outcome.ValidationReport.ocsp_queries` when revocation is
undecided; :meth:`RevocationCache.refresh` takes them next to the CRL URLs, and
:meth:`RevocationCache.ocsp_snapshot` hands the answers back as an immutable
:class:`~hub.validators.ocsp.OcspSnapshot`. The same question is asked of a responder at most
once per ``retry_after`` (a failing or misbehaving responder is not hammered by every packet).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import requests
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from hub.config import Settings
from hub.errors import ConfigurationError
from hub.validators.ocsp import CertId, OcspEntry, OcspQuery, OcspSnapshot
from hub.validators.trust import CrlEntry, CrlSnapshot, distribution_points

MAX_CRL_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = (2.0, 5.0)
"""Connect and read timeouts (seconds): a slow CA must not stall a consumer."""
_CRL_SUFFIXES = (".crl", ".pem", ".der")
MAX_OCSP_BYTES = 64 * 1024
"""An OCSP answer for one certificate is a few KB (with a delegated responder certificate)."""
OCSP_TIMEOUT = (2.0, 3.0)
"""Connect and read timeouts (seconds) for an OCSP responder."""
OCSP_RETRY_AFTER = timedelta(seconds=60)
"""Ask the same responder about the same certificate at most this often."""
OCSP_MAX_ENTRIES = 100_000


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL in DER or PEM form (raises ``ValueError``)."""
    if b"-----BEGIN X509 CRL" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _now() -> datetime:
    return datetime.now(UTC)


class RevocationCache:
    """Configured and fetched CRLs; thread-safe; snapshots are immutable."""

    def __init__(
        self,
        settings: Settings,
        *,
        certificates: Iterable[x509.Certificate] = (),
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = _now,
        fetch_ocsp: bool | None = None,
    ) -> None:
        """``certificates`` (e.g. the configured intermediates) seed the URLs to fetch.

        ``fetch_ocsp`` (default: ``[trust] fetch_crls``) lets the hub ask OCSP responders.
        """
        self._files = [settings.path(p) for p in settings.trust.crls]
        self._fetch = settings.trust.fetch_crls
        self._session = session or requests.Session()
        self.ocsp = OcspCache(
            session=self._session, clock=clock,
            freshness=timedelta(seconds=settings.trust.crl_freshness_s),
            enabled=self._fetch if fetch_ocsp is None else fetch_ocsp,
        )
        """The OCSP answers (:class:`OcspCache`)."""
        self._clock = clock
        self._lock = threading.Lock()
        self._from_files: list[CrlEntry] = []
        self._from_urls: dict[str, CrlEntry] = {}
        self._snapshot: CrlSnapshot | None = None
        """The last snapshot, kept until the CRLs change (one per envelope cost ~0.1 ms)."""
        self._urls: set[str] = set()
        for cert in certificates:
            self._urls.update(distribution_points(cert))
        self.errors: dict[str, str] = {}
        """Last failure per source (for ``hub doctor``); never raised to consumers."""
        self.load_files()

    def load_files(self) -> None:
        """(Re)read the configured CRL files; a missing or unreadable one is a config error."""
        entries: list[CrlEntry] = []
        for path in self._files:
            files = (
                sorted(p for p in path.iterdir() if p.suffix.lower() in _CRL_SUFFIXES)
                if path.is_dir()
                else [path]
            )
            for file in files:
                try:
                    crl = parse_crl(file.read_bytes())
                    mtime = datetime.fromtimestamp(file.stat().st_mtime, UTC)
                except (OSError, ValueError) as exc:
                    raise ConfigurationError(f"{file}: cannot read CRL ({exc})") from None
                entries.append(CrlEntry(crl, fetched_at=mtime, source=str(file)))
        with self._lock:
            self._from_files = entries
            self._snapshot = None

    def fetch(self, url: str) -> CrlEntry | None:
        """Fetch one CRL over HTTP; on failure record the error and return None."""
        try:
            response = self._session.get(url, timeout=FETCH_TIMEOUT, stream=True)
            response.raise_for_status()
            data = response.raw.read(MAX_CRL_BYTES + 1, decode_content=True)
            if len(data) > MAX_CRL_BYTES:
                raise ValueError("CRL larger than the limit")
            entry = CrlEntry(parse_crl(data), fetched_at=self._clock(), source=url)
        except (requests.RequestException, ValueError, OSError) as exc:
            with self._lock:
                self.errors[url] = f"{type(exc).__name__}: {exc}"[:300]
            return None
        with self._lock:
            held = self._from_urls.get(url)
            if held is not None and _older(entry, held):
                # A distribution point never takes the hub back to an older CRL of the same
                # issuer (a replay on plain HTTP, a stale mirror): the newer one is kept.
                self.errors[url] = (
                    f"served CRL {entry.label}, older than the CRL {held.label} held: kept the"
                    " newer")
                return held
            self._from_urls[url] = entry
            self._snapshot = None
            self.errors.pop(url, None)
        return entry

    def refresh(self, urls: Iterable[str] = (), ocsp: Iterable[OcspQuery] = ()) -> CrlSnapshot:
        """Reload files, fetch every known distribution point (plus ``urls``) and ask the OCSP
        questions ``ocsp`` (from :attr:`ValidationReport.ocsp_queries`); new CRL snapshot (the
        OCSP answers are in :meth:`ocsp_snapshot`)."""
        with self._lock:
            self._urls.update(u for u in urls if u.startswith(("http://", "https://")))
            known = sorted(self._urls)
        self.load_files()
        if self._fetch:
            for url in known:
                self.fetch(url)
        self.ocsp.refresh(ocsp)
        return self.snapshot()

    def ocsp_snapshot(self) -> OcspSnapshot:
        """The OCSP answers known now (still within their nextUpdate or freshness window)."""
        return self.ocsp.snapshot()

    def snapshot(self) -> CrlSnapshot:
        """The CRLs known now (newest per issuer)."""
        with self._lock:
            if self._snapshot is None:
                self._snapshot = CrlSnapshot.of([*self._from_files, *self._from_urls.values()])
            return self._snapshot


def _older(entry: CrlEntry, held: CrlEntry) -> bool:
    """Whether ``entry`` is an older CRL of ``held``'s issuer: an earlier thisUpdate, or a
    lower CRL number (RFC 5280 §5.2.3: numbers only increase)."""
    if entry.crl.issuer.public_bytes() != held.crl.issuer.public_bytes():
        return False
    if entry.crl.last_update_utc < held.crl.last_update_utc:
        return True
    return entry.number is not None and held.number is not None and entry.number < held.number


class OcspCache:
    """OCSP answers fetched over HTTP, one per certificate; thread-safe; snapshots immutable."""

    def __init__(
        self,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = _now,
        freshness: timedelta = timedelta(hours=1),
        enabled: bool = True,
        retry_after: timedelta = OCSP_RETRY_AFTER,
        max_entries: int = OCSP_MAX_ENTRIES,
    ) -> None:
        self._session = session or requests.Session()
        self._clock = clock
        self._freshness = freshness
        self._enabled = enabled
        self._retry_after = retry_after
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[CertId, tuple[datetime, OcspEntry]] = {}
        self._snapshot: tuple[OcspSnapshot, datetime | None] | None = None
        """The last snapshot and the first instant one of its answers expires (None: it has
        none): handed out again until then, or until the answers change (one per envelope
        cost a pass over every answer)."""
        self._asked: dict[tuple[str, CertId], datetime] = {}
        self.errors: dict[str, str] = {}
        """Last failure per responder URL (for ``hub doctor``); never raised to consumers."""
        self.requests = 0
        """HTTP requests made (for tests and metrics)."""

    def _due(self, url: str, cert_id: CertId, now: datetime) -> bool:
        with self._lock:
            last = self._asked.get((url, cert_id))
            if last is not None and now - last < self._retry_after:
                return False
            self._asked[(url, cert_id)] = now
            if len(self._asked) > self._max_entries:
                self._asked = {k: t for k, t in self._asked.items()
                               if now - t < self._retry_after}
            return True

    def _failed(self, url: str, detail: str) -> None:
        with self._lock:
            self.errors[url] = detail[:300]

    def _post(self, url: str, request: bytes) -> bytes:
        with self._lock:
            self.requests += 1
        response = self._session.post(
            url, data=request, timeout=OCSP_TIMEOUT, stream=True, allow_redirects=False,
            headers={"Content-Type": "application/ocsp-request",
                     "Accept": "application/ocsp-response"})
        try:
            response.raise_for_status()
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            data: bytes = response.raw.read(MAX_OCSP_BYTES + 1, decode_content=True)
        finally:
            response.close()
        if len(data) > MAX_OCSP_BYTES:
            raise ValueError("OCSP response larger than the limit")
        return data

    def fetch(self, query: OcspQuery) -> OcspEntry | None:
        """Ask the responders of ``query`` in turn; keep and return the first usable answer.

        "Usable" here means parsed, successful and naming the certificate; the signature and
        freshness are judged by the validators. Failures are recorded, never raised.
        """
        if not self._enabled:
            return None
        cert_id = query.cert_id
        for url in query.urls:
            now = self._clock()
            if not url.startswith(("http://", "https://")) or not self._due(url, cert_id, now):
                continue
            try:
                entry = OcspEntry.from_der(self._post(url, cert_id.request()), now, url)
                # Read here, where an answer cryptography cannot read is one more failure.
                status = entry.response.response_status
                until = entry.usable_until(cert_id, self._freshness) if entry.successful else None
            except (requests.RequestException, ValueError, OSError, UnsupportedAlgorithm) as exc:
                self._failed(url, f"{type(exc).__name__}: {exc}")
                continue
            if not entry.successful:
                self._failed(url, f"responder answered {status.name}")
                continue
            if until is None:
                self._failed(url, f"no SHA-256 answer for {cert_id}")
                continue
            if until < now:
                self._failed(url, f"stale answer for {cert_id} (usable until {until.isoformat()})")
                continue
            with self._lock:
                self._entries[cert_id] = (until, entry)
                self._snapshot = None
                self.errors.pop(url, None)
                if len(self._entries) > self._max_entries:
                    self._prune(now)
            return entry
        return None

    def refresh(self, queries: Iterable[OcspQuery]) -> OcspSnapshot:
        """Ask every question in ``queries`` (each at most once per ``retry_after``)."""
        for query in {q.cert_id: q for q in queries}.values():
            self.fetch(query)
        return self.snapshot()

    def _prune(self, now: datetime) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
        while len(self._entries) > self._max_entries:  # still too many: drop the oldest kept
            self._entries.pop(next(iter(self._entries)))
        self._snapshot = None

    def snapshot(self) -> OcspSnapshot:
        """The answers still within their nextUpdate or freshness window now (the same
        snapshot object while none of its answers expired and none was added)."""
        now = self._clock()
        with self._lock:
            if self._snapshot is not None:
                snapshot, expires = self._snapshot
                if expires is None or now <= expires:
                    return snapshot
            self._prune(now)
            kept = [(k, e) for k, (_, e) in self._entries.items()]
            expires = min((until for until, _ in self._entries.values()), default=None)
            snapshot = OcspSnapshot.of(kept)
            self._snapshot = (snapshot, expires)
        return snapshot
