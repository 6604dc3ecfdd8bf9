"""Revocation data for the validators (this module does I/O; the validators stay pure).

:class:`RevocationCache` holds the CRLs the hub knows — configured files (``[trust] crls``) and
CRLs fetched over HTTP from distribution points — and hands out immutable
:class:`~hub.validators.trust.CrlSnapshot` values. A CRL is *fresh* while it was obtained less
than ``crl_freshness_s`` ago or its nextUpdate has not passed; the validators answer
INDETERMINATE (REVOCATION_UNAVAILABLE, retried by the pipeline) otherwise, and the outcome's
evidence names the distribution-point URLs to fetch (``crl_urls``), which :meth:`refresh` accepts.

A CRL file's age is its modification time (an operator copying an old file does not make it
fresh). OCSP is not implemented: the specialized CA operates OCSP, but CRLs are enough for the
hub's retry model; an OCSP responder can be added as another source behind the same snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import requests
from cryptography import x509

from hub.config import Settings
from hub.errors import ConfigurationError
from hub.validators.trust import CrlEntry, CrlSnapshot, distribution_points

MAX_CRL_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = (2.0, 5.0)
"""Connect and read timeouts (seconds): a slow CA must not stall a consumer."""
_CRL_SUFFIXES = (".crl", ".pem", ".der")


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
    ) -> None:
        """``certificates`` (e.g. the configured intermediates) seed the URLs to fetch."""
        self._files = [settings.path(p) for p in settings.trust.crls]
        self._fetch = settings.trust.fetch_crls
        self._session = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._from_files: list[CrlEntry] = []
        self._from_urls: dict[str, CrlEntry] = {}
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
            self._from_urls[url] = entry
            self.errors.pop(url, None)
        return entry

    def refresh(self, urls: Iterable[str] = ()) -> CrlSnapshot:
        """Reload files, fetch every known distribution point (plus ``urls``); new snapshot."""
        with self._lock:
            self._urls.update(u for u in urls if u.startswith(("http://", "https://")))
            known = sorted(self._urls)
        self.load_files()
        if self._fetch:
            for url in known:
                self.fetch(url)
        return self.snapshot()

    def snapshot(self) -> CrlSnapshot:
        """The CRLs known now (newest per issuer)."""
        with self._lock:
            entries = [*self._from_files, *self._from_urls.values()]
        return CrlSnapshot.of(entries)
