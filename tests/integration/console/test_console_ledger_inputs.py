"""The ledger's pages answer a control character the same on SQLite and PostgreSQL: a bad-input
page (PostgreSQL cannot hold a NUL in a text value: the query itself failed, a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.console.services import ConsoleServices
from hub.console.web import create_app
from hub.testing.pki import PkiPaths
from tests.pg import fresh_schema
from tests.unit.console.conftest import TestClient, console_settings, open_console, sign_in


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with fresh_schema("hub_console") as url:
        yield url


@pytest.fixture
def auditor(console_pki: PkiPaths, tmp_path: Path, ledger_url: str
            ) -> Iterator[tuple[TestClient, ConsoleServices]]:
    services, users = open_console(console_settings(console_pki, tmp_path, ledger_url),
                                   tmp_path)
    with TestClient(create_app(services, users), base_url="https://console.test") as client:
        sign_in(client, "kiemtoan")
        yield client, services
    services.close()
    users.close()


@pytest.mark.parametrize("path", [
    "/ledger?document_id=%00", "/ledger?sender=a%00", "/ledger?recipient=%00",
    "/ledger/doc/%00", "/ledger/doc/%00/evidence"])
def test_a_nul_in_a_ledger_search_or_document_path_is_a_bad_input_page_on_every_database(
    auditor: tuple[TestClient, ConsoleServices], path: str
) -> None:
    client, _ = auditor
    response = client.get(path)
    assert response.status_code == 400
    assert "Dữ liệu nhập chứa ký tự điều khiển" in response.text
    assert "internal error" not in response.text


def test_a_plain_search_still_answers_on_every_database(
    auditor: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = auditor
    assert client.get("/ledger?document_id=abc&sender=000.00.01.H27").status_code == 200
    assert client.get("/ledger/doc/" + "0" * 64).status_code == 404
