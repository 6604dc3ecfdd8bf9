"""Every answer the console gives a person is one of its pages: requests FastAPI refuses by
itself, control characters in the ledger's search fields, and refused page views (recorded)."""

from __future__ import annotations

import pytest

from hub.console.services import ConsoleServices
from tests.unit.console.conftest import TestClient, audit, sign_in


@pytest.mark.parametrize(("method", "path", "status", "text"), [
    pytest.param("GET", "/dlq/letter", 422, "Dữ liệu nhập không hợp lệ", id="a missing key"),
    pytest.param("GET", "/no-such-page", 404, "Không tìm thấy", id="an unknown path"),
    pytest.param("PUT", "/ledger", 405, "không nhận yêu cầu kiểu này", id="a method"),
    pytest.param("GET", "/signout", 405, "không nhận yêu cầu kiểu này", id="sign-out by GET"),
])
def test_a_request_the_framework_refuses_is_the_one_line_error_page_with_its_status(
    app: tuple[TestClient, ConsoleServices], method: str, path: str, status: int, text: str
) -> None:
    client, _ = app
    sign_in(client, "vanhanh")
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text
    assert 'id="problem"' in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    if status == 405:
        assert response.headers["allow"]


@pytest.mark.parametrize("path", [
    "/ledger?document_id=%00", "/ledger?sender=a%00", "/ledger?recipient=%01x",
    "/ledger/doc/%00", "/ledger/doc/%00/evidence", "/ledger/doc/ab%0Acd"])
def test_a_control_character_in_a_ledger_search_or_document_path_is_a_bad_input_page(
    app: tuple[TestClient, ConsoleServices], path: str
) -> None:
    client, _ = app
    sign_in(client, "kiemtoan")
    response = client.get(path)
    assert response.status_code == 400
    assert "ký tự điều khiển" in response.text


def test_a_refused_page_view_is_recorded_like_a_refused_form(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    # Given an administrator and an auditor
    client, services = app
    sign_in(client, "quantri")
    # When they open pages their role does not allow
    for path in ("/ledger", "/report.csv", "/dlq/letter/raw?key=ab"):
        assert client.get(path).status_code == 403
    sign_in(client, "kiemtoan")
    assert client.get("/dlq/letter/replay?key=ab").status_code == 403
    # Then each refusal is in the ledger, with who, what and the permission missing
    refused = [(actor, d["what"], d["permission"]) for actor, d in audit(services)
               if d["action"] == "refused"]
    assert refused == [("quantri", "/ledger", "ledger"), ("quantri", "/report.csv", "report"),
                       ("quantri", "/dlq/letter/raw", "dlq"),
                       ("kiemtoan", "/dlq/letter/replay", "dlq.act")]
