"""The adoption report's page, chart and CSV show one set of figures; every word the console
shows has its Vietnamese and English text."""

from __future__ import annotations

import csv
import html
import io
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.console.i18n import ACTIONS_VI, TEXTS, action_text
from hub.console.services import REPORT_TTL, ConsoleServices
from hub.console.web import create_app
from hub.ledger import EventKind
from hub.ops import dlq
from hub.reasons import Reason
from hub.testing.pki import PkiPaths
from tests.integration.ledger.ledger_samples import refused_packet
from tests.unit.console.conftest import (
    TestClient,
    console_settings,
    open_console,
    sign_in,
    token_of,
)

PROVINCE = "000.00.01.H27"
QUERY = "since=2026-12-01&until=&period=month"


@pytest.fixture
def clocked(pki: PkiPaths, tmp_path: Path
            ) -> Iterator[tuple[TestClient, ConsoleServices, list[datetime]]]:
    """The console with a clock the test moves."""
    now = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    services, users = open_console(console_settings(pki, tmp_path), tmp_path,
                                   clock=lambda: now[0])
    with TestClient(create_app(services, users), base_url="https://console.test") as client:
        yield client, services, now
    services.close()
    users.close()


def refuse(services: ConsoleServices, n: int, at: datetime, first: int = 0) -> list[str]:
    """``n`` packets from the province refused (unknown recipient), as the pipeline records
    them; their digests."""
    digests = []
    for i in range(first, first + n):
        document, events = refused_packet(f"<edXML n='{i}'/>".encode(),
                                          Reason.RECIPIENT_UNKNOWN, organization=PROVINCE,
                                          account="vp-ubnd", at=at)
        services.ledger.write([document], events)
        digests.append(document.digest)
    return digests


def sent_on_page(page: str) -> int:
    found = re.search(r"<tr><td>" + re.escape(PROVINCE) + r"<div[^>]*>[^<]*</div></td>"
                      r"<td>[^<]*</td><td class=\"num\">(\d+)</td>", page)
    assert found is not None, page
    return int(found.group(1))


def test_the_report_s_chart_and_csv_show_the_figures_of_the_page_they_came_from(
    clocked: tuple[TestClient, ConsoleServices, list[datetime]]
) -> None:
    client, services, now = clocked
    refuse(services, 2, now[0])
    sign_in(client, "kiemtoan")
    # Given a report read once, then two more refusals and its figures more than a minute old
    assert sent_on_page(client.get(f"/report?{QUERY}").text) == 2
    refuse(services, 2, now[0], first=2)
    now[0] += REPORT_TTL + timedelta(seconds=1)

    # When the page is read again (its old figures, newer ones computed in the background)
    page = client.get(f"/report?{QUERY}").text
    for thread in threading.enumerate():
        if thread.name == "adoption-report":
            thread.join(timeout=30)
    chart = re.search(r'<img class="chart" id="chart" src="([^"]+)"', page)
    link = re.search(r'<a class="button secondary" id="csv" href="([^"]+)"', page)
    assert chart is not None
    assert link is not None

    # Then its chart and CSV are the figures of that page, not the newer ones
    shown = sent_on_page(page)
    assert shown == 2
    rows = list(csv.DictReader(io.StringIO(client.get(html.unescape(link.group(1))).text)))
    assert [int(r["sent"]) for r in rows if r["organ_id"] == PROVINCE] == [shown]
    svg = client.get(html.unescape(chart.group(1))).text
    assert re.search(rf">\s*{shown} · ", svg), svg[:2000]
    # And the next reader gets the newer figures, with their own chart
    fresh = client.get(f"/report?{QUERY}").text
    assert sent_on_page(fresh) == 4


def test_figures_this_console_no_longer_has_are_a_clear_page(
    clocked: tuple[TestClient, ConsoleServices, list[datetime]]
) -> None:
    client, _services, _now = clocked
    sign_in(client, "kiemtoan")
    response = client.get(f"/report.csv?{QUERY}&v=0123456789abcdef")
    assert response.status_code == 410
    assert "hãy tải lại trang báo cáo" in response.text


def test_every_ledger_event_kind_has_a_text_in_both_languages() -> None:
    for kind in EventKind:
        vi, en = TEXTS[f"kind.{kind.value}"]
        assert vi, kind
        assert en, kind


def test_every_operator_action_has_a_vietnamese_text() -> None:
    actions = {r.info.action for r in Reason} | {dlq.BROKER_ACTION, dlq.UNKNOWN_ACTION}
    assert sorted(a for a in actions if a not in ACTIONS_VI) == []
    assert action_text("None.", "vi") == "Không cần làm gì."
    assert action_text("None.", "en") == "None."


def test_the_timeline_of_a_letter_sent_through_the_national_axis_reads_in_words(
    clocked: tuple[TestClient, ConsoleServices, list[datetime]]
) -> None:
    from hub.ledger import EventIn

    client, services, now = clocked
    [digest] = refuse(services, 1, now[0])
    services.ledger.write([], [EventIn(EventKind(k), "m-axis", now[0], digest,
                                       organ_id=PROVINCE)
                               for k in ("axis_sent", "axis_skipped", "axis_received",
                                         "axis_acknowledged")])
    sign_in(client, "kiemtoan")
    for lang, word in (("vi", "Đã gửi lên trục liên thông"), ("en", "Sent to the national axis")):
        client.cookies.set("hub-lang", lang)
        page = client.get(f"/ledger/doc/{digest}").text
        assert word in page
        assert ">kind." not in page


def test_the_users_page_says_what_is_wrong_in_vietnamese(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _services = app
    sign_in(client, "quantri")
    token = token_of(client.get("/users").text)
    short = client.post("/users", data={"csrf_token": token, "name": "ngan", "role": "auditor",
                                        "password": "ngắn"})
    assert short.status_code == 400
    assert "Mật khẩu cần ít nhất 10 ký tự" in short.text
    taken = client.post("/users", data={"csrf_token": token, "name": "KiemToan",
                                        "role": "auditor", "password": "mật khẩu đủ dài 2026"})
    assert "Đã có tài khoản &#39;kiemtoan&#39;" in taken.text
    unknown = client.post("/users/khongco/active", data={"csrf_token": token, "active": "0"})
    assert unknown.status_code == 404
    assert "Không có tài khoản" in unknown.text
