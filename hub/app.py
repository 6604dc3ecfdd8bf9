"""Assembly: build every long-lived object once from :class:`~hub.config.Settings`.

Nothing here is global: ``main()`` loads settings, calls :func:`build_hub`, and hands the
objects down (STYLE §7). Keys are loaded once (an RSA load costs ~36 ms); the trust policy is
built once; validators and signxml verifiers are built per message inside the validators.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.broker import Connection
from hub.config import Settings
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.directory import Directory
from hub.edxml import Limits
from hub.edxml.model import Envelope, StatusPacket
from hub.errors import ConfigurationError, TransientError
from hub.keystore import Keystore, OrgSigner
from hub.ledger import Ledger
from hub.logs import get_logger
from hub.pipeline import BatchPlan, Pipeline, PipelineConfig
from hub.reasons import Reason
from hub.revocation import RevocationCache
from hub.settlement import RetryPolicy
from hub.signing import sign_tree
from hub.topology import Topology, build_topology
from hub.trust_store import load_policy
from hub.validators import validate_packet

log = get_logger("hub.app")


class HubReceipts:
    """Issues the hub's signed receipts (issue 6): organization signatures, keys held once."""

    def __init__(self, keystore: Keystore, operator: str) -> None:
        self.keystore = keystore
        self.operator = operator

    def _operator(self) -> OrgSigner | None:
        return self.keystore.signer(self.operator)

    def _build(self, kind: str, env: Envelope | StatusPacket, reporter: str, at: datetime,
               reason: Reason | None = None, status_code: str | None = None) -> Any:
        """The unsigned receipt tree (signed in memory by :func:`sign_tree`: no re-parse)."""
        from hub.receipts import build_receipt_tree, signature_value_of

        # Read from the tree the parser already built: no cache needed (a few microseconds).
        sig = signature_value_of(env.raw, env.tree)
        code = env.header.code.text if isinstance(env, Envelope) else env.response_for.code
        document_id = env.document_id if isinstance(env, Envelope) else env.response_for.document_id
        # ResponseFor names the original document's sender: for a forwarded status that is
        # the body the status is about, not the reporter.
        sender = env.sender.organ_id if isinstance(env, Envelope) else env.response_for.organ_id
        return build_receipt_tree(
            kind, envelope_raw=env.raw, signature_value=sig, sender=sender,
            document_id=document_id, code=code, reporter=reporter, at=at, reason=reason,
            envelope_digest=env.digest, status_code=status_code,
        )

    def accepted(self, envelope: Envelope, at: datetime) -> tuple[str, bytes] | None:
        signer = self._operator()
        if signer is None:
            return None
        return self.operator, sign_tree(self._build("accepted", envelope, self.operator, at),
                                        signer)

    def rejected(self, raw: bytes, packet: Envelope | StatusPacket | None, reason: Reason,
                 at: datetime) -> tuple[str, bytes] | None:
        signer = self._operator()
        if signer is None or packet is None:
            return None
        return self.operator, sign_tree(
            self._build("rejected", packet, self.operator, at, reason=reason), signer)

    def received(self, envelope: Envelope, recipient: str, at: datetime) -> bytes | None:
        signer = self.keystore.signer(recipient)
        if signer is None:
            return None
        return sign_tree(self._build("received", envelope, recipient, at), signer)

    def countersign(self, status: StatusPacket, at: datetime) -> bytes | None:
        signer = self._operator()
        if signer is None:
            return None
        return sign_tree(self._build("countersigned", status, self.operator, at), signer)


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


@dataclass
class Hub:
    settings: Settings
    directory: Directory
    keystore: Keystore
    ledger: Ledger
    revocation: RevocationCache
    topology: Topology
    pipeline: Pipeline

    def write_ledger(self, plan: BatchPlan) -> None:
        if plan.documents or plan.events:
            self.ledger.write(plan.documents, plan.events)

    def declare(self, conn: Connection) -> None:
        conn.declare(self.topology)

    def consumer(self, *, name: str = "edxml-hub intake", stop: Any = None) -> IntakeConsumer:
        b = self.settings.broker
        opts = IntakeOptions(url=b.url, failover_urls=b.failover_urls,
                             queue=self.topology.names.intake, prefetch=b.prefetch,
                             batch_max=b.batch_max, batch_wait_ms=b.batch_wait_ms,
                             reconnect_max_s=b.reconnect_max_s, name=name)
        return IntakeConsumer(opts, self.pipeline, self.write_ledger, on_connect=self.declare,
                              between_batches=CrlRefresher(self.revocation), stop=stop)

    def close(self) -> None:
        # Sign the chain head on the way out, so what was recorded is covered by a checkpoint.
        if self.ledger.can_sign:
            with contextlib.suppress(TransientError):
                self.ledger.checkpoint()
        self.ledger.close()


def broker_user(url: str) -> str | None:
    """The login in an AMQP URL (the hub republishes retries under it)."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).username or "") or None


def retry_delays(settings: Settings) -> tuple[int, ...]:
    """Bounded exponential backoff steps: base, 2·base, … capped at max (one queue each)."""
    b = settings.broker
    steps = {min(b.retry_max_ms, b.retry_base_ms * 2**i) for i in range(max(1, b.delivery_limit))}
    return tuple(sorted(steps))


def load_directory(settings: Settings) -> Directory:
    if settings.hub.directory:
        return Directory.load(settings.path(settings.hub.directory))
    return Directory.sample()


def load_keystore(settings: Settings) -> Keystore:
    if not settings.hub.keystore:
        return Keystore({})
    import os

    passphrase = os.environ.get(settings.hub.key_passphrase_env)
    return Keystore.load(settings.path(settings.hub.keystore),
                         passphrase.encode() if passphrase else None)


def build_hub(settings: Settings, *, clock: Callable[[], datetime] | None = None,
              ledger: Ledger | None = None) -> Hub:
    """Build the hub's objects once. Raises :class:`ConfigurationError` on unusable settings."""
    directory = load_directory(settings)
    keystore = load_keystore(settings)
    policy = load_policy(settings)
    # Issuing CAs seed the CRL distribution points fetched over HTTP (when enabled).
    revocation = RevocationCache(settings, certificates=policy.intermediates)
    b = settings.broker
    topology = build_topology(directory, prefix=b.prefix, quorum=b.quorum,
                              delivery_limit=b.delivery_limit,
                              retry_delays_ms=retry_delays(settings))
    if ledger is None:
        operator = keystore.signer(settings.hub.operator_organ_id)
        ledger = open_ledger(settings, operator)
    config = PipelineConfig(
        names=topology.names,
        limits=Limits.from_settings(settings.limits),
        retry=RetryPolicy(limit=b.delivery_limit, base_ms=b.retry_base_ms, max_ms=b.retry_max_ms),
        province=settings.hub.province,
        delay_for=topology.retry_delay_ms,
        check_user_id=b.check_user_id,
        trusted_publishers=frozenset(b.trusted_publishers),
        hub_user=broker_user(b.url),
    )

    fetched: dict[str, float] = {}

    def validate(packet: Envelope | StatusPacket, at: datetime) -> Any:
        report = validate_packet(packet, at=at, policy=policy, directory=directory,
                                 crls=revocation.snapshot(), ocsp=revocation.ocsp_snapshot())
        if not (report.indeterminate and settings.trust.fetch_crls):
            return report
        # Revocation data missing or stale: fetch the CRLs the certificates point to (at most
        # once a minute per URL), then judge again; still missing -> retried later (transient).
        urls = {u for c in report.checks for u in str(c.evidence.get("crl_urls", "")).split()
                if u.startswith(("http://", "https://"))}
        due = {u for u in urls if time.monotonic() - fetched.get(u, -1e9) > 60}
        if not due and not report.ocsp_queries:
            return report
        for u in due:
            fetched[u] = time.monotonic()
        revocation.refresh(due, ocsp=report.ocsp_queries)  # OCSP is rate-limited in its cache
        return validate_packet(packet, at=at, policy=policy, directory=directory,
                               crls=revocation.snapshot(), ocsp=revocation.ocsp_snapshot())

    pipeline = Pipeline(config, directory=directory, ledger=ledger, validate=validate,
                        receipts=HubReceipts(keystore, settings.hub.operator_organ_id),
                        clock=clock or (lambda: datetime.now(UTC)))
    return Hub(settings, directory, keystore, ledger, revocation, topology, pipeline)


def open_ledger(settings: Settings, operator: OrgSigner | None) -> Ledger:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    url = settings.ledger.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = settings.path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    signer: Callable[[bytes], bytes] | None = None
    cert_pem: bytes | None = None
    if operator is not None:
        key = operator.key

        def signer(data: bytes) -> bytes:
            return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

        cert_pem = operator.cert.public_bytes(serialization.Encoding.PEM)
    try:
        return Ledger.open(url, blob_dir=settings.path(settings.ledger.blob_dir),
                           blob_threshold=settings.ledger.blob_threshold,
                           checkpoint_every=settings.ledger.checkpoint_every,
                           checkpoint_interval_s=settings.ledger.checkpoint_interval_s,
                           checkpoint_signer=signer, checkpoint_cert_pem=cert_pem)
    except (ConfigurationError, TransientError):
        raise  # a database that is down is not a configuration error: EXIT_UNAVAILABLE
    except Exception as exc:
        raise ConfigurationError(f"ledger {settings.ledger.url}: {exc}") from None


def default_state_dir() -> Path:
    return Path.cwd() / ".hub-demo"
