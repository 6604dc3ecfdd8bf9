"""Wiring only: build every long-lived object once from :class:`~hub.config.Settings`.

Nothing here is global: ``main()`` loads settings, calls :func:`build_hub`, and hands the
objects down: no global settings, no singletons. Keys are loaded once (an RSA load costs
~36 ms); the trust policy is built once; validators and signxml verifiers are built per message
inside the validators.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.broker import Connection
from hub.config import Settings
from hub.consumers.intake import IntakeConsumer, IntakeOptions, write_plan
from hub.consumers.plan import BatchPlan, Pipeline, PipelineConfig
from hub.consumers.settlement import RetryPolicy
from hub.consumers.signing import ReceiptSigning
from hub.directory import Directory
from hub.edxml import Limits
from hub.errors import ConfigurationError, TransientError
from hub.ledger import Ledger
from hub.logs import get_logger
from hub.receipts import HubReceipts
from hub.topology import Topology, build_topology
from hub.trust.keystore import Keystore, OrgSigner
from hub.trust.revocation import RevocationCache
from hub.trust.service import CrlRefresher, TrustService
from hub.trust.signer_pool import SignerPool, SignerSpec, signer_processes, usable_cores
from hub.trust.signer_thread import SignerThread, holds_token_keys
from hub.trust.store import load_policy
from hub.validators.pdf import HEX_READER_PYHANKO, install_hex_reader

log = get_logger("hub.app")


@dataclass
class Hub:
    settings: Settings
    directory: Directory
    keystore: Keystore
    ledger: Ledger
    revocation: RevocationCache
    topology: Topology
    pipeline: Pipeline
    trust: TrustService

    def write_ledger(self, plan: BatchPlan) -> None:
        write_plan(self.ledger, plan)

    def declare(self, conn: Connection) -> None:
        conn.declare(self.topology)

    def consumer(self, *, name: str = "edxml-hub intake", stop: Any = None) -> IntakeConsumer:
        """The intake consumer; with ``[hub] signer_processes`` its receipts are signed by
        signer processes it starts when it runs (and stops when it returns)."""
        b = self.settings.broker
        opts = IntakeOptions(url=b.url, failover_urls=b.failover_urls,
                             queue=self.topology.names.intake, prefetch=b.prefetch,
                             batch_max=b.batch_max, batch_wait_ms=b.batch_wait_ms,
                             reconnect_max_s=b.reconnect_max_s, name=name)
        return IntakeConsumer(opts, self.pipeline, self.ledger, topology=self.topology,
                              between_batches=CrlRefresher(self.revocation), stop=stop,
                              signing=self.receipt_signing())

    def receipt_signing(self) -> ReceiptSigning | None:
        """The signer of the pipeline's receipts (not started): signer processes; with
        ``signer_processes = 0``, a thread of this process when a second core is usable and
        no key is on a token (:mod:`hub.trust.signer_thread`); None — signed in the consumer's
        thread while planning — otherwise, or with no key to sign with."""
        h = self.settings.hub
        receipts = self.pipeline.receipts
        if not isinstance(receipts, HubReceipts) or not self.keystore:
            return None
        cores = usable_cores()
        processes = signer_processes(h.signer_processes, cores)
        if not processes:
            if cores < 2 or holds_token_keys(self.keystore):
                # A token key's session is shared with the ledger's checkpoint signature in
                # this process: a token hung in the thread could not be given up (a signer
                # process is killed and opens a session of its own).
                return None
            return ReceiptSigning(receipts, SignerThread(self.keystore,
                                                         timeout_s=h.signer_timeout_s))
        spec = SignerSpec(keystore=str(self.settings.path(h.keystore)),
                          passphrase_env=h.key_passphrase_env,
                          log_format=self.settings.log.format, log_level=self.settings.log.level)
        pool = SignerPool(spec, processes, timeout_s=h.signer_timeout_s,
                          expected={org: s.fingerprint for org, s in self.keystore.items()})
        return ReceiptSigning(receipts, pool)

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


def retry_policy(settings: Settings) -> RetryPolicy:
    """The one retry policy: the plan's delays and the topology's delay queues come from it."""
    b = settings.broker
    return RetryPolicy(limit=b.delivery_limit, base_ms=b.retry_base_ms, max_ms=b.retry_max_ms)


def topology_for(settings: Settings, directory: Directory) -> Topology:
    """The topology every process of these settings declares (identical arguments)."""
    b = settings.broker
    return build_topology(directory, prefix=b.prefix, quorum=b.quorum,
                          delivery_limit=b.delivery_limit,
                          retry_delays_ms=retry_policy(settings).steps())


def load_directory(settings: Settings) -> Directory:
    if settings.hub.directory:
        return Directory.load(settings.path(settings.hub.directory))
    return Directory.sample()


def load_keystore(settings: Settings) -> Keystore:
    """The configured keystore, loaded once. A token that is not there (unplugged, its daemon
    restarting) raises :class:`~hub.trust.token.TokenUnavailable`, transient: ``hub run`` then
    exits 4 and its service manager starts it again, where a configuration error (exit 3)
    would keep it down once the token is back."""
    if not settings.hub.keystore:
        return Keystore({})
    import os

    from hub.trust.token import TokenAbsent, TokenUnavailable

    passphrase = os.environ.get(settings.hub.key_passphrase_env)
    try:
        return Keystore.load(settings.path(settings.hub.keystore),
                             passphrase.encode() if passphrase else None)
    except TokenAbsent as exc:
        raise TokenUnavailable(str(exc)) from None


def build_hub(settings: Settings, *, clock: Callable[[], datetime] | None = None,
              ledger: Ledger | None = None) -> Hub:
    """Build the hub's objects once. Raises :class:`ConfigurationError` on unusable settings."""
    # The hub's one change to pyHanko (a faster, equal hex-string reader), made here,
    # explicitly, and only on the pyHanko release it was proven against.
    if not install_hex_reader():
        log.warning("pdf_hex_reader_not_installed", proven_on=sorted(HEX_READER_PYHANKO))
    directory = load_directory(settings)
    keystore = load_keystore(settings)
    # Issuing CAs seed the CRL distribution points fetched over HTTP (when enabled).
    policy = load_policy(settings)
    revocation = RevocationCache(settings, certificates=policy.intermediates)
    topology = topology_for(settings, directory)
    if ledger is None:
        ledger = open_ledger(settings, keystore.signer(settings.hub.operator_organ_id))
    b = settings.broker
    config = PipelineConfig(
        names=topology.names,
        limits=Limits.from_settings(settings.limits),
        retry=retry_policy(settings),
        province=settings.hub.province,
        check_user_id=b.check_user_id,
        trusted_publishers=frozenset(b.trusted_publishers),
        hub_user=broker_user(b.url),
    )
    trust = TrustService(policy, directory, revocation, fetch_crls=settings.trust.fetch_crls)
    pipeline = Pipeline(config, directory=directory, ledger=ledger, validate=trust,
                        receipts=HubReceipts(keystore, settings.hub.operator_organ_id),
                        clock=clock or (lambda: datetime.now(UTC)))
    return Hub(settings, directory, keystore, ledger, revocation, topology, pipeline, trust)


def open_ledger(settings: Settings, operator: OrgSigner | None) -> Ledger:
    """The configured ledger; with ``operator``, its checkpoints are signed with the operator's
    key — each signature verified under the certificate before it is stored — and stored with
    that certificate followed by its issuing chain (the path an auditor checks against the
    operator CA root alone)."""
    from cryptography.hazmat.primitives import serialization

    from hub.trust.signing import sign_checked

    url = settings.ledger.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = settings.path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    signer: Callable[[bytes], bytes] | None = None
    cert_pem: bytes | None = None
    if operator is not None:
        operator_signer = operator

        def signer(data: bytes) -> bytes:
            return sign_checked(operator_signer, data)

        cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                            for c in (operator.cert, *operator.chain))
    try:
        return Ledger.open(url, blob_dir=settings.path(settings.ledger.blob_dir),
                           blob_threshold=settings.ledger.blob_threshold,
                           checkpoint_every=settings.ledger.checkpoint_every,
                           checkpoint_interval_s=settings.ledger.checkpoint_interval_s,
                           checkpoint_signer=signer, checkpoint_cert_pem=cert_pem,
                           sqlite_wal_checkpoints=settings.ledger.sqlite_wal_checkpoints,
                           statement_timeout_s=settings.ledger.statement_timeout_s)
    except (ConfigurationError, TransientError):
        raise  # a database that is down is not a configuration error: EXIT_UNAVAILABLE
    except Exception as exc:
        raise ConfigurationError(f"ledger {settings.ledger.url}: {exc}") from None


def default_state_dir() -> Path:
    return Path.cwd() / ".hub-demo"
