"""What the console's page tests share: the test PKI, a console on a real SQLite ledger (or on
the ledger a test names), sign-in and the audit rows.

A real ledger and the test PKI; Starlette's test client speaks HTTP to the app in process.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from hub.config import Settings, with_overrides
from hub.console.services import ConsoleServices
from hub.console.users import UserStore
from hub.console.web import create_app
from hub.directory import Directory
from hub.ledger import EventKind
from hub.testing.pki import KeyCache, PkiPaths, init_pki

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["PASSWORD", "UNREACHABLE", "TestClient", "audit", "console_settings", "open_console",
           "sign_in", "token_of"]

PASSWORD = "mật khẩu đủ dài 2026"
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return init_pki(tmp_path_factory.mktemp("pki"), Directory.sample(), keys=KeyCache())


def console_settings(pki: PkiPaths, tmp_path: Path, ledger_url: str | None = None,
                     broker_url: str = UNREACHABLE) -> Settings:
    return with_overrides(
        Settings(base_dir=str(tmp_path)), broker={"url": broker_url},
        trust={"roots": [str(pki.root_cert)], "intermediates": [str(pki.issuing_ca_cert)],
               "crls": [str(pki.crl_der), str(pki.root_crl_der)], "fetch_crls": False},
        hub={"keystore": str(pki.keystore)},
        ledger={"url": ledger_url or f"sqlite:///{tmp_path / 'ledger.sqlite3'}"})


def open_console(settings: Settings, tmp_path: Path, **kwargs: object
                 ) -> tuple[ConsoleServices, UserStore]:
    """The console's services and accounts (vanhanh, kiemtoan, quantri)."""
    users = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    for name, role in (("vanhanh", "operator"), ("kiemtoan", "auditor"), ("quantri", "admin")):
        users.add(name, role, PASSWORD)
    return ConsoleServices(settings, **kwargs), users  # type: ignore[arg-type]


@pytest.fixture
def app(pki: PkiPaths, tmp_path: Path) -> Iterator[tuple[TestClient, ConsoleServices]]:
    services, users = open_console(console_settings(pki, tmp_path), tmp_path)
    with TestClient(create_app(services, users), base_url="https://console.test") as client:
        yield client, services
    services.close()
    users.close()


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD, next_path: str = "/"
            ) -> str:
    form = client.get("/signin").text
    response = client.post("/signin", data={"csrf_token": token_of(form), "name": name,
                                            "password": password, "next": next_path},
                           follow_redirects=False)
    return str(response.headers["location"])


def audit(services: ConsoleServices) -> list[tuple[str, dict[str, str]]]:
    return [(e.actor, dict(e.detail)) for e in services.ledger.events(
        kind=EventKind.OPERATOR_ACTION)]
