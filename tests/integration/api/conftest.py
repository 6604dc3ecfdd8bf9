"""A running hub (intake consumer in a thread, real broker, real SQLite ledger) with the agency
API in front of it, plus agency systems' credentials and HTTP clients."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from hub.api.credentials import add_system
from hub.api.server import RunningApi, build_context, running_api
from hub.config import Settings, with_overrides
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    RunningHub,
    hub_settings,
    make_pki,
    running_hub,
)

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""argon2id with cheap parameters: tests only (the CLI uses the library's defaults)."""

SYSTEMS = {PROVINCE: "ubnd-eoffice", FINANCE: "stc-eoffice", HOME_AFFAIRS: "snv-eoffice"}


@pytest.fixture(scope="session")
def api_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("api-pki"))


@pytest.fixture
def keystore(api_pki: PkiPaths) -> Keystore:
    return Keystore.load(api_pki.keystore)


def api_settings(pki: PkiPaths, tmp: Path, url: str, prefix: str, **api: Any) -> Settings:
    settings = hub_settings(pki, tmp, url, prefix)
    return with_overrides(settings, api={
        "port": 0, "credentials_file": str(tmp / "api-credentials.toml"),
        "state_dir": str(tmp / "api-state"), "rate_per_s": 1000.0, "rate_burst": 1000,
        "verdict_wait_s": 20.0, **api})


def register_systems(settings: Settings) -> dict[str, str]:
    """Credentials for the three agencies; returns organization → secret."""
    path = settings.path(settings.api.credentials_file)
    return {org: add_system(path, system, org, CHEAP, dt.datetime.now(dt.UTC))
            for org, system in SYSTEMS.items()}


@dataclass
class Api:
    """The hub and its API for one test, with a client per agency."""

    hub: RunningHub
    api: RunningApi
    settings: Settings
    secrets: dict[str, str]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, org: str) -> httpx.Client:
        if org not in self.clients:
            self.clients[org] = httpx.Client(
                base_url=self.api.base_url, timeout=30.0,
                headers={"X-System-Id": SYSTEMS[org], "X-System-Secret": self.secrets[org]})
        return self.clients[org]


@pytest.fixture
def make_api(api_pki: PkiPaths, broker_url: str, names: str, tmp_path: Path
             ) -> Iterator[Any]:
    """``make_api(**api_settings)`` starts the hub and its API (stopped after the test); the
    API's clock is ``clock`` (default: always NOW)."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        def start(clock: Callable[[], dt.datetime] = lambda: NOW, **api: Any) -> Api:
            settings = api_settings(api_pki, tmp_path, broker_url, names, **api)
            secrets = register_systems(settings)
            hub = stack.enter_context(running_hub(settings))
            ctx = build_context(settings, hasher=CHEAP, clock=clock)
            running = stack.enter_context(running_api(settings, ctx))
            made = Api(hub, running, settings, secrets)
            def close_clients() -> None:
                for c in made.clients.values():
                    c.close()

            stack.callback(close_clients)
            return made

        yield start
