"""The web console in a real browser against a real hub (issue 20 acceptance).

Debian's Chromium, driven by Playwright, signs in as each role and does what that person does;
the hub is the real pipeline on the real broker, the ledger a real SQLite file. Every page the
tests visit is photographed (see conftest.py for where the screenshots go).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from hub.ledger import EventKind
from hub.ledger.evidence import verify_bundle
from hub.ledger.verify import OperatorTrust, load_certificates
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.console.conftest import PASSWORD, RunningConsole, give_crls
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    PROVINCE,
    running_hub,
    signed_envelope,
)

pytestmark = pytest.mark.broker

SCREEN: ViewportSize = {"width": 1366, "height": 800}


def sign_in(page: Page, console: RunningConsole, name: str, shots: Path | None = None) -> None:
    page.set_viewport_size(SCREEN)
    page.goto(f"{console.url}/")
    expect(page.locator("h1")).to_have_text("Đăng nhập")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    if shots is not None:
        page.screenshot(path=str(shots / "sign-in.png"), full_page=True)
    page.click("button[type=submit]")
    expect(page.locator("header .who b")).to_have_text(name)


def csrf_token(page: Page) -> str:
    return str(page.locator("form[action='/signout'] input[name=csrf_token]").get_attribute("value"))


def test_an_operator_filters_dead_letters_replays_one_after_the_crl_came_back_and_sees_it_delivered(
    page: Page, console: RunningConsole, console_pki: PkiPaths, crl_dir: Path, shots: Path
) -> None:
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(console.settings) as hub:
        # Given a hub without CRLs: the province's letter to Finance cannot be checked and is
        # parked after three attempts; two other letters are refused for what they are
        letter = signed_envelope(keystore, PROVINCE, (FINANCE,), number="31")
        hub.client(PROVINCE).send(letter)
        tampered = signed_envelope(keystore, FINANCE, (PROVINCE,), number="7",
                                   subject="Dự toán ngân sách")
        hub.client(FINANCE).send(tampered.replace("Dự toán".encode(), "Quyết toán".encode()))
        for n in ("U1", "U2"):
            hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, ("000.99.99.H27",),
                                                      number=n))
        hub.wait_acked(6)

        # When the operator signs in and filters the dead letters by reason and sender
        sign_in(page, console, "vanhanh", shots)
        expect(page).to_have_url(re.compile(r"/dlq$"))
        expect(page.locator("#matching")).to_have_text("4")
        page.screenshot(path=str(shots / "dead-letters.png"), full_page=True)
        page.select_option("select[name=reason]", "REVOCATION_UNAVAILABLE")
        page.fill("input[name=sender]", PROVINCE)
        page.click("form.filters button[type=submit]")
        expect(page.locator("#matching")).to_have_text("1")
        rows = page.locator("#letters tr")
        expect(rows).to_have_count(2)  # the header and the one letter

        # And opens the letter: the reason in both languages, the header, the attachments
        rows.nth(1).locator("a").first.click()
        expect(page.locator("#reason-vi")).to_contain_text("thu hồi")
        expect(page.locator("#reason-en")).to_contain_text("Revocation status")
        expect(page.locator("main")).to_contain_text(PROVINCE)
        page.screenshot(path=str(shots / "dead-letter.png"), full_page=True)

        # When the CRLs are back and the operator replays it, with a note, after confirming
        give_crls(console_pki, crl_dir)
        hub.hub.revocation.refresh()  # the hub's periodic CRL reload (every 5 min in service)
        page.click("#replay")
        expect(page.locator("h1")).to_have_text("Xác nhận gửi lại")
        page.fill("#note", "CRL của CA đã được cập nhật lại")
        page.screenshot(path=str(shots / "confirm-replay.png"), full_page=True)
        page.click("#confirm")
        expect(page.locator("#done")).to_contain_text("vanhanh")
        hub.wait_acked(7)

        # Then the ledger timeline shows it delivered to Finance, replayed by the operator
        page.click("#timeline")
        expect(page.locator("#delivered")).to_have_text(FINANCE)
        expect(page.locator("#timeline tr.event-replayed")).to_contain_text("vanhanh")
        expect(page.locator("#timeline tr.event-delivered")).to_contain_text(FINANCE)
        expect(page.locator("#packets")).to_contain_text("hợp lệ")
        page.screenshot(path=str(shots / "document-timeline.png"), full_page=True)
        assert [d.body for d in hub.drain(hub.names.inbox(FINANCE))] == [letter]
        replays = hub.hub.ledger.events(kind=EventKind.REPLAYED)
        assert [(e.actor, e.detail["note"]) for e in replays] == [
            ("vanhanh", "CRL của CA đã được cập nhật lại")]

        # And a filtered set is replayed in bulk, with its progress shown
        page.goto(f"{console.url}/dlq?reason=RECIPIENT_UNKNOWN")
        expect(page.locator("#matching")).to_have_text("2")
        page.click("#bulk")
        page.fill("#note", "danh bạ đã bổ sung đơn vị nhận")
        page.click("#confirm")
        expect(page.locator("#state")).to_have_text("Xong", timeout=30_000)
        expect(page.locator("#progress")).to_have_text("2 / 2")
        page.screenshot(path=str(shots / "bulk-replay.png"), full_page=True)
        hub.wait_acked(9)  # replayed through full validation: refused again, still unknown
        assert len(hub.hub.ledger.events(kind=EventKind.REPLAYED)) == 3

        # The health page shows the CRLs fresh again and the queues
        page.click("header nav >> text=Tình trạng")
        expect(page.locator("#crls")).not_to_contain_text("THIẾU")
        expect(page.locator("#queues")).to_contain_text(hub.names.dlq)
        page.screenshot(path=str(shots / "health.png"), full_page=True)


def test_an_auditor_searches_a_document_downloads_its_evidence_and_opens_the_adoption_report(
    page: Page, console: RunningConsole, console_pki: PkiPaths, crl_dir: Path, shots: Path,
    tmp_path: Path
) -> None:
    give_crls(console_pki, crl_dir)
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(console.settings) as hub:
        # Given two delivered letters from the province
        for n in ("41", "42"):
            hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,),
                                                      number=n))
        hub.wait_acked(2)
        wanted = hub.hub.ledger.documents(kind="envelope")[1]

        # When the auditor signs in and searches its DocumentId
        sign_in(page, console, "kiemtoan")
        expect(page).to_have_url(re.compile(r"/ledger$"))
        # (and checks the hash chain: the page follows the check until it is done)
        page.click("form[action='/ledger/verify'] button")
        expect(page.locator("#chain")).to_have_text("Nguyên vẹn", timeout=30_000)
        expect(page.locator("#checkpoint")).to_be_visible()
        page.fill("input[name=document_id]", wanted.document_id)
        page.click("#search button[type=submit]")
        rows = page.locator("#documents tr")
        expect(rows).to_have_count(2)
        page.screenshot(path=str(shots / "ledger-search.png"), full_page=True)
        rows.nth(1).locator("a").click()
        expect(page.locator("#delivered")).to_have_text(HOME_AFFAIRS)

        # And downloads its evidence bundle
        with page.expect_download() as download:
            page.click("#evidence")
        bundle = tmp_path / "bundle.zip"
        download.value.save_as(bundle)

        # Then the bundle verifies offline against the operator's CA and identity
        trust = OperatorTrust(
            roots=tuple(load_certificates(console_pki.root_cert.read_bytes())),
            intermediates=tuple(load_certificates(console_pki.issuing_ca_cert.read_bytes())),
            operator_id=console.settings.hub.operator_organ_id)
        result = verify_bundle(bundle, trust=trust)
        assert result.ok, result.problems
        assert result.signer_trusted
        assert result.document == wanted.digest

        # And the adoption report for the quarter counts the province's letters, in a chart
        # and a table
        page.click("header nav >> text=Báo cáo sử dụng")
        page.fill("input[name=since]", "2025-01-01")
        page.fill("input[name=until]", "2025-04-01")
        with page.expect_response(re.compile(r"/report/chart\.svg")) as chart:
            page.click("form.filters button[type=submit]")
        assert chart.value.ok
        assert chart.value.headers["content-type"] == "image/svg+xml"
        expect(page.locator("#report")).to_contain_text(PROVINCE)
        # The response arrives before the browser decodes and lays out the image: wait for it
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 400",
                               arg=page.locator("#chart").element_handle())
        box = page.locator("#chart").bounding_box()
        assert box is not None
        assert box["width"] > 400
        page.screenshot(path=str(shots / "adoption-report.png"), full_page=True)
        with page.expect_download() as csv:
            page.click("#csv")
        assert PROVINCE in Path(csv.value.path()).read_text(encoding="utf-8")

        # And the same page reads in English
        page.click("header .who >> text=English")
        expect(page.locator("h1")).to_have_text("Signature adoption report")
        page.screenshot(path=str(shots / "adoption-report-en.png"), full_page=True)

    actions = [dict(e.detail)["action"] for e in hub.hub.ledger.events(
        kind=EventKind.OPERATOR_ACTION) if e.actor == "kiemtoan"]
    assert actions == ["sign_in", "chain_check_started", "evidence_export", "report_csv"]


def test_an_auditor_cannot_replay_or_discard_a_dead_letter(
    page: Page, console: RunningConsole, console_pki: PkiPaths, shots: Path
) -> None:
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(console.settings) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, ("000.99.99.H27",),
                                                  number="U9"))
        hub.wait_acked(1)
        [letter] = console.services.dead_letters()

        # Given an auditor on the dead letter's page: no replay or discard button
        sign_in(page, console, "kiemtoan")
        page.goto(f"{console.url}/dlq")
        page.locator("#letters a").first.click()
        expect(page.locator("#reason-en")).to_be_visible()
        expect(page.locator("#replay")).to_have_count(0)
        expect(page.locator("#discard")).to_have_count(0)

        # When the auditor posts a replay and a discard anyway, with a valid CSRF token
        for verb in ("replay", "discard"):
            response = page.request.post(
                f"{console.url}/dlq/letter/{verb}",
                form={"key": letter.key, "note": "thử", "csrf_token": csrf_token(page)})
            # Then each is refused, and recorded as refused
            assert response.status == 403
            assert "Vai trò của bạn không được phép" in response.text()
        page.goto(f"{console.url}/dlq/letter/replay?key={letter.key}")
        expect(page.locator("#problem")).to_contain_text("không được phép")
        page.screenshot(path=str(shots / "refused-to-auditor.png"), full_page=True)

        # And the letter is still there, neither replayed nor discarded
        assert [dl.id for dl in console.services.dead_letters()] == [letter.id]
        ledger = hub.hub.ledger
        assert not ledger.events(kind=EventKind.REPLAYED)
        assert not ledger.events(kind=EventKind.DISCARDED)
        refused = [dict(e.detail) for e in ledger.events(kind=EventKind.OPERATOR_ACTION)
                   if dict(e.detail)["action"] == "refused"]
        # (the two posts, and the confirmation page asked for by hand)
        assert [(r["permission"], r["role"]) for r in refused] == [("dlq.act", "auditor")] * 3


def test_a_form_post_without_the_csrf_token_is_refused(
    page: Page, console: RunningConsole, console_pki: PkiPaths, shots: Path
) -> None:
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(console.settings) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, ("000.99.99.H27",),
                                                  number="U8"))
        hub.wait_acked(1)
        [letter] = console.services.dead_letters()
        sign_in(page, console, "vanhanh")

        # When the operator's browser posts a discard without the token, or with another one
        forms: list[dict[str, str | float | bool]] = [
            {"key": letter.key, "note": "rác"},
            {"key": letter.key, "note": "rác", "csrf_token": "x" * 43}]
        for form in forms:
            response = page.request.post(f"{console.url}/dlq/letter/discard", form=form)
            # Then it is refused and nothing is discarded
            assert response.status == 403
            assert "Biểu mẫu đã hết hạn hoặc không hợp lệ" in response.text()
        assert [dl.id for dl in console.services.dead_letters()] == [letter.id]
        assert not hub.hub.ledger.events(kind=EventKind.DISCARDED)

        # And the sign-in form itself needs its token
        response = page.request.post(f"{console.url}/signin",
                                     form={"name": "vanhanh", "password": PASSWORD})
        assert response.status == 403

        # While the same discard, from the console's own form, is done
        page.goto(f"{console.url}/dlq/letter/discard?key={letter.key}")
        page.fill("#note", "thư thử nghiệm")
        page.click("#confirm")
        expect(page.locator("#done")).to_contain_text("thư thử nghiệm")
        assert console.services.dead_letters() == []
        assert [e.actor for e in hub.hub.ledger.events(kind=EventKind.DISCARDED)] == ["vanhanh"]

    # An administrator manages accounts (and only that)
    page.click("form[action='/signout'] button")
    sign_in(page, console, "quantri")
    expect(page).to_have_url(re.compile(r"/users$"))
    page.fill("form[action='/users'] input[name=name]", "thanhtra")
    page.fill("form[action='/users'] input[name=full_name]", "Phạm Thanh Tra")
    page.select_option("form[action='/users'] select[name=role]", "auditor")
    page.fill("form[action='/users'] input[name=password]", PASSWORD)
    page.click("form[action='/users'] button")
    expect(page.locator("#users")).to_contain_text("thanhtra")
    page.screenshot(path=str(shots / "users.png"), full_page=True)
    assert page.goto(f"{console.url}/ledger").status == 403  # type: ignore[union-attr]


def test_a_letter_whose_message_id_holds_a_line_feed_is_discarded_from_the_browser(
    page: Page, console: RunningConsole
) -> None:
    from hub.broker import Outgoing, connect

    with running_hub(console.settings) as hub:
        # Given a dead letter under a message id with a line feed (a browser sends a form's line
        # feed back as CRLF: the id itself cannot travel through a form)
        conn = connect(console.settings.broker.url, "by hand")
        try:
            conn.publish([Outgoing("", hub.names.dlq, b"not xml",
                                   {"x-hub-reason": "ENVELOPE_MALFORMED"},
                                   message_id="line1\nline2")])
        finally:
            conn.close()
        assert len(console.services.dead_letters()) == 1

        # When the operator opens it from the list and discards it with a note
        sign_in(page, console, "vanhanh")
        page.locator("#letters a").first.click()
        expect(page.locator("h1")).to_contain_text("ENVELOPE_MALFORMED")
        page.click("#discard")
        page.fill("#note", "gói rác")
        page.click("#confirm")

        # Then it is discarded, and gone from the queue
        expect(page.locator("#done")).to_contain_text("gói rác")
        assert console.services.dead_letters() == []
        discarded = hub.hub.ledger.events(kind=EventKind.DISCARDED)
        assert [(e.actor, e.reason) for e in discarded] == [("vanhanh", "ENVELOPE_MALFORMED")]
