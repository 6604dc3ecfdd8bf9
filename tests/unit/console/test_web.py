"""Console pages through the ASGI app (no broker needed): sign-in, CSRF, roles, audit, headers.

A real SQLite ledger and the test PKI; Starlette's test client speaks HTTP to the app in process.
What needs the broker (dead letters, replay) is in tests/integration/console.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from hub.config import Settings, with_overrides
from hub.console.services import ConsoleServices, FoundLetter
from hub.console.throttle import AddressFailures
from hub.console.users import UserStore
from hub.console.web import create_app
from hub.messages import Delivery
from hub.ops import dlq
from hub.testing.pki import PkiPaths
from tests.unit.console.conftest import (
    PASSWORD,
    UNREACHABLE,
    TestClient,
    audit,
    sign_in,
    token_of,
)


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = app
    response = client.get("/ledger?sender=000.00.01.H27", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fledger%3Fsender%3D000.00.01.H27"
    assert sign_in(client, "kiemtoan", next_path="/ledger?sender=000.00.01.H27") == \
        "/ledger?sender=000.00.01.H27"


def test_the_session_cookie_is_secure_http_only_and_strict(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = app
    form = client.get("/signin").text
    response = client.post("/signin", data={"csrf_token": token_of(form), "name": "kiemtoan",
                                            "password": PASSWORD}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-hub-session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower()


def test_sign_in_is_recorded_and_a_refused_one_too_with_the_name_tried(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, services = app
    assert sign_in(client, "kiemtoan", password="không đúng mật khẩu").startswith(
        "/signin?")
    assert sign_in(client, "kiemtoan") == "/ledger"
    assert audit(services) == [
        ("console", {"action": "sign_in_refused", "user": "kiemtoan", "via": "console"}),
        ("kiemtoan", {"action": "sign_in", "role": "auditor", "via": "console"})]


def test_a_sign_in_cannot_send_the_browser_to_another_site(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = app
    assert sign_in(client, "vanhanh", next_path="//evil.example/") == "/dlq"
    assert sign_in(client, "vanhanh", next_path="https://evil.example/") == "/dlq"


@pytest.mark.parametrize("path", ["/signin", "/signout", "/ledger/verify", "/dlq/letter/replay",
                                  "/dlq/bulk-replay", "/users"])
def test_every_form_post_without_its_token_is_refused(
    app: tuple[TestClient, ConsoleServices], path: str
) -> None:
    client, services = app
    sign_in(client, "quantri")
    before = len(services.ledger.events())
    response = client.post(path, data={"id": "x", "note": "n", "name": "a", "role": "admin",
                                       "password": PASSWORD})
    assert response.status_code == 403
    assert "Biểu mẫu đã hết hạn" in response.text
    assert len(services.ledger.events()) == before


def test_an_auditor_is_refused_replay_and_discard_and_the_attempt_is_recorded(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, services = app
    sign_in(client, "kiemtoan")
    token = token_of(client.get("/ledger").text)
    for verb in ("replay", "discard"):
        assert client.get(f"/dlq/letter/{verb}?key=abc").status_code == 403
        response = client.post(f"/dlq/letter/{verb}",
                               data={"key": "abc", "note": "thử", "csrf_token": token})
        assert response.status_code == 403
        assert "Vai trò của bạn không được phép" in response.text
    response = client.post("/dlq/bulk-replay", data={"reason": "CERT_REVOKED", "note": "x",
                                                     "csrf_token": token})
    assert response.status_code == 403
    refused = [d for actor, d in audit(services) if d["action"] == "refused"]
    assert [(d["what"], d["role"]) for d in refused] == [
        ("/dlq/letter/replay", "auditor"), ("/dlq/letter/replay", "auditor"),
        ("/dlq/letter/discard", "auditor"), ("/dlq/letter/discard", "auditor"),
        ("/dlq/bulk-replay", "auditor")]


@pytest.mark.parametrize(("user", "allowed", "refused"), [
    ("vanhanh", ["/ledger", "/report", "/health"], ["/users"]),
    ("kiemtoan", ["/ledger", "/report", "/health"], ["/users", "/dlq/bulk-replay"]),
    ("quantri", ["/users", "/health"], ["/ledger", "/report", "/dlq"]),
])
def test_each_role_reaches_its_pages_and_no_others(
    app: tuple[TestClient, ConsoleServices], user: str, allowed: list[str], refused: list[str]
) -> None:
    client, _ = app
    sign_in(client, user)
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in refused:
        assert client.get(path).status_code == 403, path


def test_pages_forbid_scripts_framing_and_caching(app: tuple[TestClient, ConsoleServices]
                                                  ) -> None:
    client, _ = app
    sign_in(client, "kiemtoan")
    response = client.get("/ledger")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text


def test_the_console_speaks_vietnamese_and_switches_to_english(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = app
    sign_in(client, "kiemtoan")
    assert "<h1>Sổ cái</h1>" in client.get("/ledger").text
    response = client.get("/lang/en?next=/ledger", follow_redirects=False)
    assert response.headers["location"] == "/ledger"
    client.cookies.set("hub-lang", "en")
    assert "<h1>Ledger</h1>" in client.get("/ledger").text
    client.cookies.set("hub-lang", "xx")
    assert "<h1>Sổ cái</h1>" in client.get("/ledger").text


def test_an_unreachable_broker_is_one_line_on_the_page_never_a_traceback(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = app
    sign_in(client, "vanhanh")
    response = client.get("/dlq")
    assert response.status_code == 503
    assert "BROKER_UNAVAILABLE" in response.text
    assert "Traceback" not in response.text
    health = client.get("/health")
    assert health.status_code == 200
    assert "Không kết nối được RabbitMQ" in health.text


def test_bad_inputs_are_one_line_pages(app: tuple[TestClient, ConsoleServices]) -> None:
    client, _ = app
    sign_in(client, "kiemtoan")
    for path in ("/ledger?since=2025-13-01", "/ledger?outcome=lost", "/report?period=week",
                 "/ledger/doc/" + "0" * 64):
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert "Traceback" not in response.text


def test_an_administrator_adds_an_account_and_the_change_is_recorded(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, services = app
    sign_in(client, "quantri")
    token = token_of(client.get("/users").text)
    response = client.post("/users", data={"csrf_token": token, "name": "thanhtra",
                                           "role": "auditor", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303
    assert sign_in(client, "thanhtra") == "/ledger"
    assert ("quantri", {"action": "user_added", "user": "thanhtra", "role": "auditor",
                        "via": "console"}) in audit(services)
    short = client.post("/users", data={"csrf_token": token, "name": "ngan", "role": "auditor",
                                        "password": "ngắn"})
    assert short.status_code in (400, 403)


# -- a refused account change is not in the ledger ----------------------------------------------

@pytest.mark.parametrize(("form", "problem"), [
    pytest.param({"name": "ngan", "role": "auditor", "password": "ngắn"},
                 "a password needs at least 10 characters", id="a short password"),
    pytest.param({"name": "Bad Name!", "role": "auditor", "password": PASSWORD},
                 "'Bad Name!' is not a usable login name", id="a bad name"),
    pytest.param({"name": "", "role": "auditor", "password": PASSWORD},
                 "'' is not a usable login name", id="no name"),
    pytest.param({"name": "thanhtra", "role": "root", "password": PASSWORD},
                 "'root' is not a role: operator, auditor or admin", id="a bad role"),
    pytest.param({"name": "KiemToan", "role": "auditor", "password": PASSWORD},
                 "there is already an account 'kiemtoan'", id="an account that exists"),
])
def test_an_account_the_form_refuses_says_why_and_writes_no_ledger_row(
    app: tuple[TestClient, ConsoleServices], form: dict[str, str], problem: str
) -> None:
    client, services = app
    sign_in(client, "quantri")
    client.cookies.set("hub-lang", "en")
    token = token_of(client.get("/users").text)
    before = audit(services)

    response = client.post("/users", data={"csrf_token": token, **form})

    assert response.status_code == 400
    assert problem in html.unescape(response.text)
    assert audit(services) == before
    people = [u.name for u in client.app.state.users.users()]  # type: ignore[attr-defined]
    assert people == ["kiemtoan", "quantri", "vanhanh"]


@pytest.mark.parametrize(("name", "active", "status", "problem"), [
    pytest.param("khongco", "0", 404, "no account 'khongco'", id="disable an unknown account"),
    pytest.param("khongco", "1", 404, "no account 'khongco'", id="enable an unknown account"),
    pytest.param("QuanTri", "0", 400, "an administrator cannot disable themself",
                 id="disable oneself"),
])
def test_an_enable_or_disable_that_is_refused_says_why_and_writes_no_ledger_row(
    app: tuple[TestClient, ConsoleServices], name: str, active: str, status: int, problem: str
) -> None:
    client, services = app
    sign_in(client, "quantri")
    client.cookies.set("hub-lang", "en")
    token = token_of(client.get("/users").text)
    before = audit(services)

    response = client.post(f"/users/{name}/active", data={"csrf_token": token,
                                                          "active": active})

    assert response.status_code == status
    assert problem in html.unescape(response.text)
    assert audit(services) == before
    assert sign_in(client, "quantri") == "/users"  # still active


def test_an_accepted_account_change_is_in_the_ledger_before_it_is_made(
    app: tuple[TestClient, ConsoleServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a spy that looks at the accounts when each audit row is written
    client, services = app
    store: UserStore = client.app.state.users  # type: ignore[attr-defined]
    seen: list[tuple[str, bool | None]] = []
    record = services.audit

    def spy(actor: str, action: str, **detail: Any) -> None:
        if action.startswith("user_"):
            user = store.get(str(detail["user"]))
            seen.append((action, None if user is None else user.active))
        record(actor, action, **detail)

    monkeypatch.setattr(services, "audit", spy)
    sign_in(client, "quantri")
    token = token_of(client.get("/users").text)

    # When an account is added, then disabled
    added = client.post("/users", data={"csrf_token": token, "name": "ThanhTra",
                                        "role": "Auditor", "password": PASSWORD},
                        follow_redirects=False)
    disabled = client.post("/users/thanhtra/active", data={"csrf_token": token, "active": "0"},
                           follow_redirects=False)

    # Then each row was written before its change, with the names and role as stored
    assert (added.status_code, disabled.status_code) == (303, 303)
    assert seen == [("user_added", None), ("user_disabled", True)]
    changes = [d for _, d in audit(services) if d["action"].startswith("user_")]
    assert changes == [
        {"action": "user_added", "user": "thanhtra", "role": "auditor", "via": "console"},
        {"action": "user_disabled", "user": "thanhtra", "via": "console"}]
    thanhtra = store.get("thanhtra")
    assert thanhtra is not None
    assert not thanhtra.active


# -- bad input is a clear answer, never a 500 ---------------------------------------------------

@pytest.mark.parametrize("path", ["/signin", "/signout", "/ledger/verify", "/dlq/letter/replay",
                                  "/dlq/bulk-replay", "/users"])
def test_a_form_token_that_is_not_ascii_is_refused_and_logged_like_any_wrong_token(
    app: tuple[TestClient, ConsoleServices], path: str
) -> None:
    # Given a signed-in administrator (the sign-in form also has its own token cookie)
    client, services = app
    sign_in(client, "quantri")
    client.get("/signin")
    before = len(services.ledger.events())

    # When a form comes back with a token no form of ours ever held
    with capture_logs() as logs:
        response = client.post(path, data={"csrf_token": "é", "id": "x", "note": "n",
                                           "name": "a", "role": "admin", "password": PASSWORD})

    # Then it is the usual refusal, logged, and nothing is recorded or done
    assert response.status_code == 403
    assert "Biểu mẫu đã hết hạn" in response.text
    assert [e["path"] for e in logs if e["event"] == "console_csrf_refused"] == [path]
    assert len(services.ledger.events()) == before


@pytest.mark.parametrize("path", [
    "/ledger?since=0001-01-01", "/ledger?until=0001-01-01", "/report?since=0001-01-01",
    "/report.csv?until=0001-01-01", "/report/chart.svg?since=0001-01-01",
    "/ledger?since=2025-13-01", "/ledger?before=9223372036854775808", "/ledger?before=-1",
    "/ledger?before=abc"])
def test_a_date_or_page_cursor_out_of_range_is_a_bad_input_page(
    app: tuple[TestClient, ConsoleServices], path: str
) -> None:
    client, _ = app
    sign_in(client, "kiemtoan")
    response = client.get(path)
    assert response.status_code == 400
    assert "Traceback" not in response.text
    assert "internal error" not in response.text


def test_the_largest_page_cursor_and_the_second_day_of_year_one_are_answered(
    app: tuple[TestClient, ConsoleServices]
) -> None:
    client, _ = app
    sign_in(client, "kiemtoan")
    assert client.get("/ledger?before=9223372036854775807").status_code == 200
    assert client.get("/ledger?since=0001-01-02").status_code == 200


# -- slow work never holds up the other requests ------------------------------------------------

class _HeldHasher(PasswordHasher):
    """A hasher whose ``verify`` waits until the test lets it go (or gives up after 10 s)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.entered, self.release = threading.Event(), threading.Event()
        self.released_in_time: bool | None = None

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.entered.set()
        self.released_in_time = self.release.wait(timeout=10)
        return super().verify(hash, password)


def test_a_slow_sign_in_does_not_hold_up_a_page_asked_for_meanwhile(
    app: tuple[TestClient, ConsoleServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sign-in whose password check is held until the test releases it
    client, _ = app
    hasher = _HeldHasher()
    monkeypatch.setattr(client.app.state.users, "hasher", hasher)  # type: ignore[attr-defined]
    token = token_of(client.get("/signin").text)
    signing_in = threading.Thread(target=lambda: client.post(
        "/signin", data={"csrf_token": token, "name": "kiemtoan", "password": PASSWORD},
        follow_redirects=False))
    signing_in.start()
    assert hasher.entered.wait(timeout=10)

    # When another request comes in while the check runs
    response = client.get("/static/console.css")
    hasher.release.set()
    signing_in.join(timeout=10)

    # Then it was answered while the check was still held (not after it gave up)
    assert response.status_code == 200
    assert hasher.released_in_time is True


def test_a_slow_replay_does_not_hold_up_a_page_asked_for_meanwhile(
    app: tuple[TestClient, ConsoleServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator's replay that is held (a slow broker) until the test releases it
    client, services = app
    sign_in(client, "vanhanh")
    token = token_of(client.get("/ledger").text)
    entered, release = threading.Event(), threading.Event()
    released_in_time: list[bool] = []

    def slow_replay(flt: dlq.Filter, *, actor: str, note: str,
                    most: int | None = None) -> list[dlq.DeadLetter]:
        entered.set()
        released_in_time.append(release.wait(timeout=10))
        return []

    monkeypatch.setattr(services, "replay", slow_replay)
    acting = threading.Thread(target=lambda: client.post(
        "/dlq/letter/replay", data={"csrf_token": token, "key": "ab12", "note": "thử lại"}))
    acting.start()
    assert entered.wait(timeout=10)

    # When another request comes in meanwhile
    response = client.get("/static/console.css")
    release.set()
    acting.join(timeout=10)

    # Then it was answered while the replay was still held
    assert response.status_code == 200
    assert released_in_time == [True]


# -- a single dead letter is the one named, never one whose id merely begins the same -----------

class _FakeQueue:
    """Just what :func:`hub.ops.dlq.discard` asks of a connection: ``get``, ``settler().ack``."""

    def __init__(self, ids: list[str], way_back: str = "") -> None:
        # as the pipeline dead-letters a refusal: where it was going, and who published it
        headers = {"x-hub-reason": "CERT_REVOKED", "x-hub-original-routing": way_back,
                   "x-hub-original-user": "guest"}
        self.waiting = [Delivery(n, b"<x/>", "ENVELOPE_MALFORMED", "hub.dlx", False,
                                 dict(headers), i, "guest", None, 0)
                        for n, i in enumerate(ids, 1)]
        self.acked: list[int] = []

    def get(self, queue: str) -> Delivery | None:
        return self.waiting.pop(0) if self.waiting else None

    def settler(self) -> _FakeQueue:
        return self

    def ack(self, tags: list[int]) -> None:
        self.acked.extend(tags)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("verb", ["discard", "replay"])
def test_a_letter_is_acted_on_by_its_exact_id_beside_one_whose_id_begins_with_it(
    app: tuple[TestClient, ConsoleServices], monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    # Given doc-1 and doc-10 in the dead-letter queue
    client, services = app
    names = services.topology.names
    queue = _FakeQueue(["doc-1", "doc-10"], f"{names.inbound}/envelope")
    monkeypatch.setattr(services, "_connect", lambda purpose: queue)
    monkeypatch.setattr(queue, "publish", lambda msgs: None, raising=False)
    recorded: list[str] = []
    monkeypatch.setattr(services, "_recorder", lambda kind: lambda items, actor, note:
                        recorded.extend(dl.id for dl in items))
    sign_in(client, "vanhanh")
    token = token_of(client.get("/ledger").text)

    # When the operator acts on doc-1
    key = dlq.DeadLetter.of(queue.waiting[0]).key
    response = client.post(f"/dlq/letter/{verb}",
                           data={"csrf_token": token, "key": key, "note": "gửi lại rồi"})

    # Then doc-1 alone is recorded and taken from the queue
    assert response.status_code == 200
    assert recorded == ["doc-1"]
    assert queue.acked == [1]


def test_a_raw_download_is_named_after_the_hex_of_its_digest_only(
    app: tuple[TestClient, ConsoleServices], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, services = app
    letter = dlq.DeadLetter("doc-1", "CERT_REVOKED", "", "", "", 0, "", 4,
                            {"x-hub-digest": 'ab"; x=\r\n/../cd0123456789abcdef'})
    monkeypatch.setattr(services, "dead_letter", lambda key: FoundLetter(letter, b"<x/>"))
    sign_in(client, "vanhanh")
    response = client.get("/dlq/letter/raw?key=ab12")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == \
        'attachment; filename="dead-letter-abcd0123456789ab.xml"'


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting the passwords it checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.checked = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.checked += 1
        return super().verify(hash, password)


@pytest.fixture
def sprayed(pki: PkiPaths, tmp_path: Path) -> Iterator[tuple[TestClient, ConsoleServices,
                                                             CountingHasher, list[datetime]]]:
    """The console with five accounts, a per-address limit of three failures in ten minutes,
    a clock the test moves, and a hasher that counts its checks."""
    settings = with_overrides(
        Settings(base_dir=str(tmp_path)), broker={"url": UNREACHABLE},
        trust={"roots": [str(pki.root_cert)], "fetch_crls": False},
        hub={"keystore": str(pki.keystore)},
        ledger={"url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"})
    hasher = CountingHasher()
    users = UserStore(tmp_path / "users.sqlite3", hasher=hasher)
    for n in range(5):
        users.add(f"vanhanh{n}", "operator", PASSWORD)
    now = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    services = ConsoleServices(settings, clock=lambda: now[0])
    failures = AddressFailures(limit=3, window=timedelta(minutes=10))
    with TestClient(create_app(services, users, failures),
                    base_url="https://console.test") as client:
        yield client, services, hasher, now
    services.close()
    users.close()


def post_sign_in(client: TestClient, name: str, password: str) -> Any:
    form = client.get("/signin").text
    return client.post("/signin", data={"csrf_token": token_of(form), "name": name,
                                        "password": password, "next": "/"},
                       follow_redirects=False)


def test_one_password_sprayed_over_many_accounts_is_held_back_per_address(
    sprayed: tuple[TestClient, ConsoleServices, CountingHasher, list[datetime]]
) -> None:
    client, services, hasher, _now = sprayed
    # Given three wrong passwords from one address, each at another account (none is locked)
    for n in range(3):
        assert post_sign_in(client, f"vanhanh{n}", "đoán thử 123456").status_code == 303
    checked = hasher.checked
    # Then the next sign-in from that address is refused before any password is checked,
    # even with the right one
    with capture_logs() as logs:
        held = post_sign_in(client, "vanhanh3", PASSWORD)
    assert held.status_code == 429
    assert 1 <= int(held.headers["Retry-After"]) <= 600
    assert "Quá nhiều lần đăng nhập sai từ địa chỉ này" in held.text
    assert hasher.checked == checked
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == \
        ["console_sign_in_throttled"]
    # and the ledger holds the three refusals, not the held-back attempt
    refused = [d for actor, d in audit(services) if d.get("action") == "sign_in_refused"]
    assert [d["user"] for d in refused] == ["vanhanh0", "vanhanh1", "vanhanh2"]


def test_an_address_signs_in_again_once_its_failures_leave_the_window(
    sprayed: tuple[TestClient, ConsoleServices, CountingHasher, list[datetime]]
) -> None:
    client, _services, _hasher, now = sprayed
    for n in range(3):
        post_sign_in(client, f"vanhanh{n}", "đoán thử 123456")
        now[0] += timedelta(minutes=1)
    assert post_sign_in(client, "vanhanh4", PASSWORD).status_code == 429
    # the first failure (09:00) leaves the ten-minute window at 09:10
    now[0] = datetime(2026, 12, 7, 9, 10, tzinfo=UTC)
    signed_in = post_sign_in(client, "vanhanh4", PASSWORD)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] != "/signin?next=%2F&failed=1"


def test_a_success_does_not_wipe_the_failures_of_its_address(
    sprayed: tuple[TestClient, ConsoleServices, CountingHasher, list[datetime]]
) -> None:
    # an attacker holding one account cannot reset the count between guesses at the others
    client, _services, _hasher, _now = sprayed
    post_sign_in(client, "vanhanh0", "đoán thử 123456")
    post_sign_in(client, "vanhanh1", "đoán thử 123456")
    assert post_sign_in(client, "vanhanh4", PASSWORD).status_code == 303
    post_sign_in(client, "vanhanh2", "đoán thử 123456")
    assert post_sign_in(client, "vanhanh3", "đoán thử 123456").status_code == 429


def test_the_failure_count_forgets_the_least_recent_addresses_beyond_its_bound() -> None:
    failures = AddressFailures(limit=1, window=timedelta(minutes=10), max_addresses=2)
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        failures.failed(address, at)
    assert failures.blocked_until("10.0.0.1", at) is None
    assert failures.blocked_until("10.0.0.3", at) == at + timedelta(minutes=10)


class RacingStore(UserStore):
    """A real store whose ``check_new`` waits for a second caller (at most two seconds) — what
    two administrators submitting the same account at once look like — or, with ``added_from_the_shell``, has
    the account added from the shell right after the check."""

    def __init__(self, path: Path, *, added_from_the_shell: bool = False) -> None:
        super().__init__(path, hasher=PasswordHasher(time_cost=1, memory_cost=1024,
                                                     parallelism=1))
        self.added_from_the_shell = added_from_the_shell
        self.barrier = threading.Barrier(2, timeout=2)

    def check_new(self, name: str, role: Any, password: str) -> Any:
        checked = super().check_new(name, role, password)
        if self.added_from_the_shell:
            UserStore(self.path, hasher=self.hasher).add(checked[0], "operator", PASSWORD)
        else:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()
        return checked


def racing_console(pki: PkiPaths, tmp_path: Path, store: UserStore
                   ) -> tuple[TestClient, ConsoleServices]:
    settings = with_overrides(
        Settings(base_dir=str(tmp_path)), broker={"url": UNREACHABLE},
        trust={"roots": [str(pki.root_cert)], "fetch_crls": False},
        hub={"keystore": str(pki.keystore)},
        ledger={"url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"})
    store.add("quantri", "admin", PASSWORD)
    services = ConsoleServices(settings)
    return TestClient(create_app(services, store), base_url="https://console.test"), services


def test_the_same_account_added_twice_at_once_is_added_and_recorded_once(
    pki: PkiPaths, tmp_path: Path
) -> None:
    store = RacingStore(tmp_path / "users.sqlite3")
    client, services = racing_console(pki, tmp_path, store)
    with client:
        sign_in(client, "quantri")
        token = token_of(client.get("/users").text)
        codes: list[int] = []

        def add() -> None:
            codes.append(client.post("/users", data={
                "csrf_token": token, "name": "thanhtra", "role": "auditor",
                "password": PASSWORD}, follow_redirects=False).status_code)

        threads = [threading.Thread(target=add) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(codes) == [303, 400]
    actions = [d["action"] for _actor, d in audit(services) if d["action"].startswith("user_")]
    assert actions == ["user_added"]
    services.close()
    store.close()


def test_an_account_added_from_the_shell_after_the_record_is_recorded_as_refused(
    pki: PkiPaths, tmp_path: Path
) -> None:
    store = RacingStore(tmp_path / "users.sqlite3", added_from_the_shell=True)
    client, services = racing_console(pki, tmp_path, store)
    with client:
        sign_in(client, "quantri")
        token = token_of(client.get("/users").text)
        refused = client.post("/users", data={"csrf_token": token, "name": "thanhtra",
                                              "role": "auditor", "password": PASSWORD})
    assert refused.status_code == 400
    assert "Đã có tài khoản" in refused.text
    assert [d for _actor, d in audit(services) if d["action"].startswith("user_")] == [
        {"action": "user_added", "user": "thanhtra", "role": "auditor", "via": "console"},
        {"action": "user_add_refused", "user": "thanhtra", "via": "console",
         "reason": "there is already an account 'thanhtra'"}]
    services.close()
    store.close()
