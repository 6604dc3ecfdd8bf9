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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from argon2 import PasswordHasher

from hub.api.app import create_app
from hub.api.auth import CertificateMap, RateLimiter
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

__all__ = ["RunningApi", "build_context", "running_api", "serve", "uvicorn_config"]


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
                                    hasher=hasher, clock=now),
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


def uvicorn_config(settings: Settings, app: Any, *, port: int | None = None) -> uvicorn.Config:
    api = settings.api
    tls: dict[str, Any] = {}
    if api.tls_cert:
        tls = {"ssl_certfile": str(settings.path(api.tls_cert)),
               "ssl_keyfile": str(settings.path(api.tls_key or api.tls_cert))}
        if api.tls_client_ca:
            tls["ssl_ca_certs"] = str(settings.path(api.tls_client_ca))
            tls["ssl_cert_reqs"] = ssl.CERT_REQUIRED if api.require_client_cert else ssl.CERT_OPTIONAL
    elif api.tls_client_ca or api.require_client_cert:
        raise ConfigurationError("[api] mutual TLS needs tls_cert and tls_key")
    return uvicorn.Config(app, host=api.host, port=api.port if port is None else port,
                          http=TlsH11Protocol, ws="none", lifespan="off", log_config=None,
                          access_log=False, server_header=False, timeout_keep_alive=30, **tls)


def serve(settings: Settings) -> None:
    """Run the API until SIGTERM/SIGINT (uvicorn's own signal handling)."""
    ctx = build_context(settings)
    ctx.bridge.start()
    try:
        config = uvicorn_config(settings, create_app(ctx))
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

    @property
    def base_url(self) -> str:
        scheme = "https" if self.server.config.is_ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


@contextmanager
def running_api(settings: Settings, ctx: ApiContext | None = None) -> Iterator[RunningApi]:
    """The API on a free port in a thread (tests, the benchmark)."""
    ctx = ctx or build_context(settings)
    ctx.bridge.start()
    config = uvicorn_config(settings, create_app(ctx), port=0)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-http", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the API server did not start")
            thread.join(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningApi(ctx, server, thread, int(port))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.bridge.close()
