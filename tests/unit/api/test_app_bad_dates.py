"""The agency API given list bounds no date holds, and a request that crashes.

The real application (``create_app(build_context(settings))``) over a real SQLite ledger,
driven in process through httpx's ASGI transport; its broker bridge is never started (the
checks here answer before the broker is needed). ``raise_app_exceptions`` stays on: an exception
that left the application (for the server to print as a traceback) fails the test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from hub.api.app import create_app
from hub.api.credentials import add_system
from hub.api.server import build_context
from hub.api.service import ApiContext
from hub.config import Settings, with_overrides
from hub.ledger import Ledger

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FINANCE = "000.00.03.H27"


@pytest.fixture
def secret(tmp_path: Path) -> str:
    """The secret of the finance department's system (registered before the API starts)."""
    return add_system(tmp_path / "credentials.toml", "stc-eoffice", FINANCE, CHEAP,
                      dt.datetime.now(dt.UTC))


@pytest.fixture
def ctx(tmp_path: Path, secret: str) -> Iterator[ApiContext]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger.open(url).close()
    settings = with_overrides(Settings(), ledger={"url": url}, api={
        "credentials_file": str(tmp_path / "credentials.toml"),
        "state_dir": str(tmp_path / "api-state")})
    context = build_context(settings, hasher=CHEAP)
    yield context
    context.ledger.close()


class Client:
    """Requests to the ASGI application as an agency system, one event loop each."""

    def __init__(self, app: Any, secret: str) -> None:
        self.app = app
        self.headers = {"X-System-Id": "stc-eoffice", "X-System-Secret": secret}

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)  # raise_app_exceptions=True
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test",
                                         headers=self.headers) as client:
                return await client.get(path, params=params)

        return anyio.run(call)


@pytest.fixture
def client(ctx: ApiContext, secret: str) -> Client:
    return Client(create_app(ctx), secret)


def assert_error_body(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "FAIL"
    assert body["errorCode"] == code
    assert body["message"]["en"]
    return body


OUT_OF_RANGE = [
    ("/api/v1/sent", "since", "9999-12-31T23:59:59-14:00"),
    ("/api/v1/sent", "until", "0001-01-01T00:00+14:00"),
    ("/api/v1/edocs", "since", "9999-12-31T23:59:59-14:00"),
    ("/api/v1/edocs", "until", "0001-01-01T00:00+14:00"),
]


@pytest.mark.parametrize(("path", "name", "value"), OUT_OF_RANGE,
                         ids=[f"{p} {n}={v}" for p, n, v in OUT_OF_RANGE])
def test_a_bound_whose_utc_form_no_date_holds_is_a_422_naming_it(
    client: Client, path: str, name: str, value: str
) -> None:
    response = client.get(path, params={name: value})
    body = assert_error_body(response, 422, "API_REQUEST_INVALID")
    assert body["detail"].startswith(f"query.{name}: ")
    assert "out of range" in body["detail"]


@pytest.mark.parametrize("path", ["/api/v1/sent", "/api/v1/edocs"])
def test_a_bound_without_an_offset_is_a_422_saying_so(
    client: Client, path: str
) -> None:
    response = client.get(path, params={"since": "2026-03-01T08:00"})
    body = assert_error_body(response, 422, "API_REQUEST_INVALID")
    assert body["detail"] == "query.since: dates need a time zone offset"


def test_the_last_and_first_instants_a_date_holds_in_utc_are_valid_bounds(
    client: Client
) -> None:
    response = client.get("/api/v1/sent", params={
        "since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


def test_a_bound_in_another_zone_is_compared_as_the_same_instant_in_utc(
    client: Client, ctx: ApiContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def documents(**kwargs: Any) -> list[Any]:
        seen.update(kwargs)
        return []

    monkeypatch.setattr(ctx.ledger, "documents", documents)
    response = client.get("/api/v1/sent", params={"since": "2026-03-01T08:00+07:00"})
    assert response.status_code == 200, response.text
    assert seen["since"] == dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
    assert seen["since"].utcoffset() == dt.timedelta(0)


def test_a_request_that_crashes_is_one_logged_event_and_a_500_error_body_never_reraised(
    client: Client, ctx: ApiContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bug in the ledger read (its text carries SQL, which must not reach the log)
    def broken(**_kwargs: Any) -> list[Any]:
        raise RuntimeError("SELECT * FROM documents WHERE sender = '000.00.03.H27'")

    monkeypatch.setattr(ctx.ledger, "documents", broken)
    # When an agency lists what it sent
    with capture_logs() as events:
        response = client.get("/api/v1/sent")
    # Then: the usual 500 body, one event naming the exception's type only, and nothing raised
    # to the server (the ASGI transport would raise it here)
    body = assert_error_body(response, 500, "INTERNAL_ERROR")
    assert "SELECT" not in body["detail"]
    crashed = [e for e in events if e["event"] == "api_request_crashed"]
    assert crashed == [{"event": "api_request_crashed", "error": "RuntimeError",
                        "log_level": "error"}]
    assert "SELECT" not in repr(events)
