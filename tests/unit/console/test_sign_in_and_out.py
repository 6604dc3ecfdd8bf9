"""Signing in and out: sign-out while the ledger is down, the per-address limit under
simultaneous sign-ins, and what a refused sign-in leaves in the ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from hub.console.services import ConsoleServices
from hub.console.throttle import AddressFailures
from hub.console.users import UserStore
from hub.console.web import create_app
from hub.testing.pki import PkiPaths
from tests.unit.console.conftest import (
    PASSWORD,
    TestClient,
    audit,
    console_settings,
    sign_in,
    token_of,
)


def test_signing_out_while_the_ledger_cannot_record_it_still_ends_the_session(
    app: tuple[TestClient, ConsoleServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a signed-in auditor, and a ledger that refuses every write from now on
    client, services = app
    sign_in(client, "kiemtoan")
    token = token_of(client.get("/ledger").text)
    cookie = client.cookies.get("__Host-hub-session")
    assert cookie

    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(services.ledger, "write", down)

    # When the auditor signs out
    with capture_logs() as logs:
        response = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)

    # Then the session is over and its cookie cleared, and the missing record is logged
    assert response.status_code == 303
    assert response.headers["location"] == "/signin"
    assert '__Host-hub-session=""' in response.headers["set-cookie"]
    client.cookies.set("__Host-hub-session", cookie)
    again = client.get("/ledger", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/signin?")
    assert [e.get("action") for e in logs if e["event"] == "console_audit_failed"] == \
        ["sign_out"]


class HeldHasher(PasswordHasher):
    """A hasher whose first ``verify`` waits until the test lets it go (at most 10 s)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.entered, self.release = threading.Event(), threading.Event()
        self.released_in_time: bool | None = None

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        if not self.entered.is_set():
            self.entered.set()
            self.released_in_time = self.release.wait(timeout=10)
        return super().verify(hash, password)


@pytest.fixture
def held(pki: PkiPaths, tmp_path: Path) -> Iterator[tuple[TestClient, HeldHasher]]:
    """The console with a per-address limit of one failure, and a held password check."""
    hasher = HeldHasher()
    users = UserStore(tmp_path / "users.sqlite3", hasher=hasher)
    users.add("vanhanh", "operator", PASSWORD)
    services = ConsoleServices(console_settings(pki, tmp_path))
    failures = AddressFailures(limit=1, window=timedelta(minutes=10))
    with TestClient(create_app(services, users, failures),
                    base_url="https://console.test") as client:
        yield client, hasher
    services.close()
    users.close()


def test_a_sign_in_made_while_another_is_being_checked_counts_against_the_address_limit(
    held: tuple[TestClient, HeldHasher]
) -> None:
    # Given a limit of one failure per address, and one wrong password being checked (held)
    client, hasher = held
    form = token_of(client.get("/signin").text)  # one browser, two tabs
    codes: list[int] = []
    guessing = threading.Thread(target=lambda: codes.append(client.post(
        "/signin", data={"csrf_token": form, "name": "vanhanh",
                         "password": "đoán thử 123456"}, follow_redirects=False).status_code))
    guessing.start()
    assert hasher.entered.wait(timeout=10)

    # When a second sign-in comes from the same address meanwhile
    second = client.post("/signin", data={"csrf_token": form, "name": "vanhanh",
                                          "password": PASSWORD}, follow_redirects=False)
    hasher.release.set()
    guessing.join(timeout=10)

    # Then it is held back at once, its password never checked (the first was still held)
    assert second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 600
    assert hasher.released_in_time is True
    assert codes == [303]


def test_simultaneous_attempts_take_the_address_slots_before_any_is_checked() -> None:
    failures = AddressFailures(limit=3, window=timedelta(minutes=10))
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    # Given three sign-ins from one address taken and still being checked
    assert [failures.attempt("10.0.0.1", at) for _ in range(3)] == [None, None, None]
    # Then a fourth is held back, another address is not
    assert failures.attempt("10.0.0.1", at) is not None
    assert failures.attempt("10.0.0.2", at) is None
    # And when one succeeds and two fail, one slot is free again, until a third failure
    failures.settle("10.0.0.1", at, failed=False)
    failures.settle("10.0.0.1", at, failed=True)
    failures.settle("10.0.0.1", at, failed=True)
    assert failures.attempt("10.0.0.1", at) is None
    failures.settle("10.0.0.1", at, failed=True)
    assert failures.attempt("10.0.0.1", at) == at + timedelta(minutes=10)


def test_a_refused_sign_in_records_the_name_only_when_it_is_an_account(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, services = app
    # Given a wrong password for an account, and a password typed into the name field
    sign_in(client, "KiemToan", password="không đúng mật khẩu")
    sign_in(client, "Mật-khẩu-bí-mật-2026", password="x")
    sign_in(client, "", password="x")
    # Then the account is named, the other attempts only marked as for no account
    refused = [d for _actor, d in audit(services) if d["action"] == "sign_in_refused"]
    assert refused == [
        {"action": "sign_in_refused", "user": "kiemtoan", "via": "console"},
        {"action": "sign_in_refused", "account": "unknown", "via": "console"},
        {"action": "sign_in_refused", "account": "unknown", "via": "console"}]
    assert "bí-mật" not in repr(services.ledger.events())
