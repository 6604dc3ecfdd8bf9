"""Dead letters in the console, on a real hub and a real RabbitMQ (pages through the ASGI app).

A dead letter is named by its key (one per letter), never by its message id, which whoever
published chose: two letters may share one. Each page says where a replay sends a letter (the
intake judges it again; a delivery goes back, untouched, to its queue), and a letter with no way
back is a refusal that names it, never "service unavailable".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from hub.broker import Delivery, Outgoing, connect
from hub.config import Settings
from hub.console.services import ConsoleServices
from hub.console.users import UserStore
from hub.console.web import create_app
from hub.ledger import EventKind
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.console.conftest import CHEAP, PASSWORD, give_crls
from tests.integration.pipeline.harness import (
    FINANCE,
    NOW,
    PROVINCE,
    RunningHub,
    running_hub,
    signed_envelope,
)
from tests.unit.console.conftest import TestClient, token_of

pytestmark = pytest.mark.broker

UNKNOWN = "000.99.99.H27"
"""An organization the directory does not know (the intake refuses letters to it)."""


@pytest.fixture
def pages(settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, ConsoleServices]]:
    """The console's pages, an operator signed in."""
    users = UserStore(tmp_path / "console-users.sqlite3", hasher=CHEAP)
    users.add("vanhanh", "operator", PASSWORD)
    services = ConsoleServices(settings, clock=lambda: NOW)
    with TestClient(create_app(services, users), base_url="https://console.test") as client:
        form = client.get("/signin").text
        client.post("/signin", data={"csrf_token": token_of(form), "name": "vanhanh",
                                     "password": PASSWORD})
        yield client, services
    services.close()
    users.close()


def publish(url: str, exchange: str, key: str, body: bytes, message_id: str,
            headers: dict[str, object] | None = None) -> None:
    conn = connect(url, "test publisher")
    try:
        conn.publish([Outgoing(exchange, key, body, dict(headers or {}), message_id=message_id,
                               user_id=unquote(urlparse(url).username or "") or None)])
    finally:
        conn.close()


def reject(url: str, queue: str) -> Delivery:
    """What an organization's system does with a letter it will not take: reject, no requeue
    (the broker dead-letters it)."""
    conn = connect(url, f"rejecting from {queue}")
    try:
        d = conn.get(queue)
        assert d is not None, f"nothing in {queue}"
        conn.channel.basic_reject(d.tag, requeue=False)
        return d
    finally:
        conn.close()


def wait_depth(url: str, queue: str, n: int, timeout: float = 15.0) -> None:
    """Until ``queue`` holds ``n`` messages (the broker dead-letters asynchronously)."""
    conn = connect(url, f"wait for {queue}")
    try:
        waited = 0.0
        while conn.queue_depth(queue) != n:
            assert waited < timeout, f"{queue} holds {conn.queue_depth(queue)}, not {n}"
            conn.sleep(0.05)
            waited += 0.05
    finally:
        conn.close()


def listed(client: TestClient) -> dict[str, str]:
    """The dead-letter page's letters: key → reason."""
    page = client.get("/dlq").text
    return dict(re.findall(r'href="/dlq/letter\?key=([0-9a-f]+)"><b>([A-Z_]+)</b>', page))


def key_of(client: TestClient, reason: str) -> str:
    [key] = [k for k, r in listed(client).items() if r == reason]
    return key


def act(client: TestClient, verb: str, key: str, note: str) -> tuple[int, str]:
    form = client.get(f"/dlq/letter/{verb}?key={key}")
    assert form.status_code == 200, form.text
    done = client.post(f"/dlq/letter/{verb}", data={"csrf_token": token_of(form.text),
                                                    "key": key, "note": note})
    return done.status_code, done.text


def test_two_letters_under_one_message_id_are_listed_apart_and_only_the_one_confirmed_goes(
    pages: tuple[TestClient, ConsoleServices], settings: Settings, console_pki: PkiPaths,
    crl_dir: Path, broker_url: str,
) -> None:
    client, services = pages
    give_crls(console_pki, crl_dir)
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(settings) as hub:
        # Given an agency's software that sent junk, then its real letter, under one message id
        # (the letter is refused until the directory knows its recipient)
        names = hub.names
        publish(broker_url, names.inbound, "envelope", b"junk, not xml", "shared-1")
        hub.wait_acked(1)
        letter = signed_envelope(keystore, PROVINCE, (UNKNOWN,), number="D1")
        publish(broker_url, names.inbound, "envelope", letter, "shared-1")
        hub.wait_acked(2)

        # When the operator opens the junk (listed apart from the letter) and discards it
        letters = listed(client)
        assert sorted(letters.values()) == ["ENVELOPE_MALFORMED", "RECIPIENT_UNKNOWN"]
        junk = key_of(client, "ENVELOPE_MALFORMED")
        page = client.get(f"/dlq/letter?key={junk}").text
        assert "ENVELOPE_MALFORMED" in page
        status, done = act(client, "discard", junk, "gói rác, không phải văn bản")

        # Then the junk alone is gone: the real letter is still there, to be replayed
        assert status == 200
        assert 'id="done"' in done
        assert list(listed(client).values()) == ["RECIPIENT_UNKNOWN"]
        [remaining] = services.dead_letters()
        assert remaining.id == "shared-1"
        discarded = hub.hub.ledger.events(kind=EventKind.DISCARDED)
        assert [(e.actor, e.reason) for e in discarded] == [("vanhanh", "ENVELOPE_MALFORMED")]


def test_a_delivery_an_organization_rejected_reads_its_reason_and_goes_back_untouched(
    pages: tuple[TestClient, ConsoleServices], settings: Settings, console_pki: PkiPaths,
    crl_dir: Path, broker_url: str,
) -> None:
    client, _services = pages
    give_crls(console_pki, crl_dir)
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(settings) as hub:
        # Given a letter Finance's system rejected (the broker dead-letters it), and one the
        # intake refused
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="R1"))
        hub.wait_acked(1)
        taken = reject(broker_url, hub.names.inbox(FINANCE))
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (UNKNOWN,), number="R2"))
        hub.wait_acked(2)
        wait_depth(broker_url, hub.names.dlq, 2)
        rejected = key_of(client, "BROKER_REJECTED")
        refused = key_of(client, "RECIPIENT_UNKNOWN")

        # Then the broker's reason reads in both languages, on the list and on the letter
        assert "Hệ thống nhận đã từ chối thư, không nhận lại" in client.get("/dlq").text
        page = client.get(f"/dlq/letter?key={rejected}").text
        assert re.search(r'id="reason-vi">Hệ thống nhận đã từ chối thư, không nhận lại<', page)
        assert re.search(r'id="reason-en">the consuming system rejected it without '
                         r"requeueing it<", page)
        assert "Gửi lại (hoặc hub dlq replay) đưa thư trở lại hàng đợi" in page  # what to do

        # And each confirmation says where the letter goes and whether it is judged again
        client.cookies.set("hub-lang", "en")
        back = client.get(f"/dlq/letter/replay?key={rejected}").text
        assert "goes back, untouched, to the queue it came from" in back
        assert hub.names.inbox(FINANCE) in back
        assert "full validation" not in back
        again = client.get(f"/dlq/letter/replay?key={refused}").text
        assert "through full validation again" in again

        # When the rejected one is replayed
        status, done = act(client, "replay", rejected, "Finance fixed its system")

        # Then the page says it went back to Finance's inbox untouched, and it is there
        assert status == 200
        assert re.search(re.escape(hub.names.inbox(FINANCE)) + r"</span> \(untouched\)", done)
        assert "full validation" not in done
        (delivered,) = hub.drain(hub.names.inbox(FINANCE))
        assert (delivered.body, delivered.message_id) == (taken.body, taken.message_id)


def no_way_back(url: str, hub: RunningHub, message_id: str) -> None:
    """A letter the broker dead-lettered from the inbox of an organization the hub no longer
    has: it has no way back."""
    gone = f"{hub.names.prefix}.org.000.00.98.H27.inbox"
    death = [{"count": 1, "reason": "rejected", "queue": gone,
              "time": datetime.now(UTC).replace(tzinfo=None), "exchange": hub.names.deliver,
              "routing-keys": ["inbox.000.00.98.H27"]}]
    publish(url, "", hub.names.dlq, b"<x/>", message_id,
            {"x-death": death, "x-hub-sender": PROVINCE})


def test_a_letter_with_no_way_back_is_refused_with_why_and_a_bulk_replay_is_partly_done(
    pages: tuple[TestClient, ConsoleServices], settings: Settings, console_pki: PkiPaths,
    crl_dir: Path, broker_url: str,
) -> None:
    client, services = pages
    give_crls(console_pki, crl_dir)
    keystore = Keystore.load(console_pki.keystore)
    with running_hub(settings) as hub:
        # Given a letter with no way back, and one Finance's system rejected
        no_way_back(broker_url, hub, "noway-1")
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="N1"))
        hub.wait_acked(1)
        reject(broker_url, hub.names.inbox(FINANCE))
        wait_depth(broker_url, hub.names.dlq, 2)
        key = next(dl.key for dl in services.dead_letters() if dl.id == "noway-1")

        # Then its confirmation says it cannot be replayed, and why, with no form to send
        form = client.get(f"/dlq/letter/replay?key={key}").text
        assert "Không gửi lại được thư này" in form
        assert "no longer holds" in form
        assert 'name="note"' not in form

        # When the operator posts its replay anyway
        posted = client.post("/dlq/letter/replay", data={"csrf_token": token_of(form),
                                                         "key": key, "note": "thử lại"})

        # Then it is a refusal naming the letter and why, not an outage; the letter stays
        assert posted.status_code == 409
        assert "Không gửi lại được: thư không xác định được nơi đến từ" in posted.text
        assert "noway-1" in posted.text
        assert "no longer holds" in posted.text
        assert "Dịch vụ tạm thời không sẵn sàng" not in posted.text
        assert len(services.dead_letters()) == 2

        # When both are replayed in bulk
        bulk = client.get("/dlq/bulk-replay?reason=BROKER_REJECTED").text
        started = client.post("/dlq/bulk-replay", data={
            "csrf_token": token_of(bulk), "reason": "BROKER_REJECTED", "note": "hàng loạt"},
            follow_redirects=False)
        job = started.headers["location"].rsplit("/", 1)[1]
        for thread in threading.enumerate():
            if thread.name == f"replay-{job}":
                thread.join(timeout=60)
        page = client.get(f"/jobs/{job}").text

        # Then the job is partly done: one sent back, the other left and named with why
        assert re.search(r'id="state"[^>]*>Xong một phần<', page), page
        assert re.search(r'id="progress">1 / 2<', page)
        assert "noway-1" in page
        assert "no longer holds" in page
        assert [dl.id for dl in services.dead_letters()] == ["noway-1"]
