"""Building the API's objects from settings, and running it under uvicorn.

The API is a surface (layer 5): it reads the directory, the keystore and the ledger (read-only)
and talks to the broker through ``hub.broker`` in one thread (:mod:`hub.api.bridge`). It never
plans or settles a packet of the intake.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from argon2 import PasswordHasher

from hub.api.app import create_app
from hub.api.auth import (
    BoundedHasher,
    CertificateMap,
    ClientCertCheck,
    Guard,
    RateLimiter,
    SignInThrottle,
    WaitSlots,
)
from hub.api.bridge import BrokerBridge
from hub.api.credentials import CredentialStore
from hub.api.service import ApiContext
from hub.api.tls import TlsH11Protocol
from hub.app import broker_user, load_directory, load_keystore, topology_for
from hub.config import Settings
from hub.edxml import Limits
from hub.errors import ConfigurationError
from hub.ledger import Ledger, LedgerOpenError
from hub.ops.ledger_cli import ledger_url, open_ledger_url
from hub.trust.revocation import RevocationCache
from hub.trust.store import load_certificates
from hub.validators.trust import TrustPolicy

__all__ = ["RunningApi", "build_context", "build_guard", "running_api", "serve",
           "uvicorn_config"]


def api_login(settings: Settings) -> tuple[str, str]:
    """The API's broker URL and login; the login must be one the hub lets speak for others."""
    url = settings.api.broker_url or settings.broker.url
    user = broker_user(url)
    trusted = set(settings.broker.trusted_publishers) | {broker_user(settings.broker.url)}
    if not user or user not in trusted:
        raise ConfigurationError(
            f"[api] the API's broker login {user!r} must be a trusted publisher of the hub "
            "([broker] trusted_publishers): it publishes for the calling agencies")
    return url, user


def open_ledger_read_only(settings: Settings) -> Ledger:
    """The configured ledger, read-only; :class:`ConfigurationError` (one line) when it is
    missing or its URL is unusable, :class:`~hub.errors.TransientError` when it is down."""
    try:
        return open_ledger_url(ledger_url(settings),
                               blob_dir=settings.path(settings.ledger.blob_dir), read_only=True)
    except LedgerOpenError as exc:
        raise ConfigurationError(f"ledger: {exc} (start the hub first: it creates the ledger)"
                                 ) from None


def build_context(settings: Settings, *, hasher: PasswordHasher | None = None,
                  clock: Callable[[], datetime] | None = None,
                  ledger: Ledger | None = None) -> ApiContext:
    """Every long-lived object of the API (the broker thread is started by the caller)."""
    api = settings.api
    url, user = api_login(settings)
    directory = load_directory(settings)
    now = clock or (lambda: datetime.now(UTC))
    names = topology_for(settings, directory).names
    state_dir = settings.path(api.state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"[api] state_dir {state_dir}: {exc.strerror or exc}") from None
    bridge = BrokerBridge(url, names, window=api.window, state_dir=state_dir,
                          name="edxml-hub api", clock=now)
    return ApiContext(
        directory=directory,
        keystore=load_keystore(settings),
        ledger=ledger or open_ledger_read_only(settings),
        bridge=bridge,
        credentials=CredentialStore(settings.path(api.credentials_file), cache_s=api.secret_cache_s,
                                    hasher=BoundedHasher(hasher or PasswordHasher(),
                                                         api.signin_concurrency),
                                    clock=now),
        certificates=CertificateMap(directory),
        limiter=RateLimiter(api.rate_per_s, api.rate_burst),
        names=names,
        limits=Limits.from_settings(settings.limits),
        api_user=user,
        operator=settings.hub.operator_organ_id,
        max_body_bytes=api.max_body_bytes,
        verdict_wait_s=api.verdict_wait_s,
        max_wait_s=api.max_wait_s,
        sign_statuses=api.sign_statuses,
        require_client_cert=api.require_client_cert,
        clock=now,
    )


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS arguments; :class:`ConfigurationError` for settings that cannot work
    (checked before anything else starts)."""
    api = settings.api
    tls: dict[str, Any] = {}
    if api.tls_cert:
        tls = {"ssl_certfile": str(settings.path(api.tls_cert)),
               "ssl_keyfile": str(settings.path(api.tls_key or api.tls_cert))}
        if api.tls_client_ca:
            tls["ssl_ca_certs"] = str(settings.path(api.tls_client_ca))
            tls["ssl_cert_reqs"] = ssl.CERT_REQUIRED if api.require_client_cert else ssl.CERT_OPTIONAL
        elif api.require_client_cert:
            # No CA to verify client certificates with: every request would be refused.
            raise ConfigurationError("[api] require_client_cert needs tls_client_ca (the CAs "
                                     "that issue agency systems' certificates)")
    elif api.tls_client_ca or api.require_client_cert:
        raise ConfigurationError("[api] mutual TLS needs tls_cert and tls_key")
    return tls


def build_guard(settings: Settings) -> Guard:
    """The sign-in and waiting limits of ``[api]`` and, under mutual TLS, the client
    certificate check: a path from ``tls_client_ca`` (its self-signed certificates are the
    anchors, as for the TLS layer), revocation from the hub's own ``[trust]`` CRLs and OCSP."""
    api = settings.api
    guard = Guard(SignInThrottle(api.signin_failure_per_s, api.signin_failure_burst),
                  WaitSlots(api.waits_per_org))
    if not (api.tls_cert and api.tls_client_ca):
        return guard
    cas = load_certificates([settings.path(api.tls_client_ca)])
    roots = tuple(c for c in cas if c.subject == c.issuer)
    if not roots:
        raise ConfigurationError(f"[api] tls_client_ca {api.tls_client_ca}: no root (self-signed) "
                                 "certificate; put the issuing CAs and their root in it")
    trust = settings.trust
    configured = load_certificates(settings.path(p) for p in trust.intermediates)
    policy = TrustPolicy(roots=roots,
                         intermediates=(*(c for c in cas if c.subject != c.issuer), *configured),
                         min_rsa_bits=trust.min_rsa_bits,
                         crl_freshness=timedelta(seconds=trust.crl_freshness_s))
    revocation = RevocationCache(settings, certificates=policy.intermediates)
    return replace(guard, client_certs=ClientCertCheck(policy, revocation,
                                                       fetch=trust.fetch_crls))


def uvicorn_config(settings: Settings, app: Any, *, port: int | None = None) -> uvicorn.Config:
    api = settings.api
    tls = tls_options(settings)
    return uvicorn.Config(app, host=api.host, port=api.port if port is None else port,
                          http=TlsH11Protocol, ws="none", lifespan="off", log_config=None,
                          access_log=False, server_header=False, timeout_keep_alive=30, **tls)


def serve(settings: Settings) -> None:
    """Run the API until SIGTERM/SIGINT (uvicorn's own signal handling)."""
    tls_options(settings)
    guard = build_guard(settings)
    ctx = build_context(settings)
    ctx.bridge.start()
    try:
        config = uvicorn_config(settings, create_app(ctx, guard))
        try:
            config.load()
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"[api] TLS files: {exc}") from None
        uvicorn.Server(config).run()
    finally:
        ctx.bridge.close()
        ctx.ledger.close()


@dataclass
class RunningApi:
    ctx: ApiContext
    server: uvicorn.Server
    thread: threading.Thread
    port: int
    guard: Guard

    @property
    def base_url(self) -> str:
        scheme = "https" if self.server.config.is_ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


@contextmanager
def running_api(settings: Settings, ctx: ApiContext | None = None) -> Iterator[RunningApi]:
    """The API on a free port in a thread (tests, the benchmark)."""
    guard = build_guard(settings)
    ctx = ctx or build_context(settings)
    ctx.bridge.start()
    config = uvicorn_config(settings, create_app(ctx, guard), port=0)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-http", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the API server did not start")
            thread.join(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningApi(ctx, server, thread, int(port), guard)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.bridge.close()
