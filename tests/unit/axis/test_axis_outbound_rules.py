"""The connector's outbound rules, on the in-memory broker and a real SQLite ledger, with a
recording stand-in for the axis (the real simulator runs in tests/integration/axis)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import deque
from pathlib import Path

import pytest

from hub.axis.breaker import Breaker
from hub.axis.connector import AxisConnector, ConnectorOptions
from hub.axis.protocol import Answer, Listed, MessageType, StatusWord
from hub.directory import Directory
from hub.edxml.build import build_envelope, sample_header
from hub.ledger import EventIn, EventKind, Ledger
from hub.messages import Delivery, Headers
from hub.testing.fakebroker import FakeConnection
from hub.topology import Names

PROVINCE, MINISTRY, NGHE_AN = "000.00.00.H27", "000.00.00.G09", "000.00.00.H41"


class RecordingAxis:
    """Answers sends from a script (default: accepted) and records them."""

    def __init__(self, *answers: Answer) -> None:
        self.script = list(answers)
        self.sent: list[tuple[str, MessageType]] = []

    def send(self, raw: bytes, *, sender: str, message_type: MessageType,
             digest: str | None = None) -> Answer:
        self.sent.append((hashlib.sha256(raw).hexdigest(), message_type))
        if self.script:
            return self.script.pop(0)
        return Answer(200, "OK", "0", "", f"doc-{len(self.sent)}")

    def received(self, limit: int) -> list[Listed]:
        return []

    def fetch(self, doc_id: str) -> bytes:
        raise AssertionError("not called")

    def update_status(self, doc_id: str, word: StatusWord) -> Answer:
        raise AssertionError("not called")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")


def _letter(to: tuple[str, ...], sender: str = PROVINCE) -> bytes:
    return build_envelope(sample_header(sender, to, number="7", subject="s",
                                        promulgation_date=dt.date(2025, 3, 3)))


def _delivery(tag: int, raw: bytes, recipient: str, **headers: str) -> Delivery:
    digest = hashlib.sha256(raw).hexdigest()
    return Delivery(tag, raw, "axis.inbox", "edxml.deliver", False,
                    {Headers.RECIPIENT: recipient, **headers}, f"{digest}:{recipient}", None,
                    None, 0)


def _connector(axis: RecordingAxis, ledger: Ledger, clock: Clock) -> AxisConnector:
    return AxisConnector(ConnectorOptions(url="amqp://fake", names=Names("edxml"), province="H27"),
                         axis=axis, ledger=ledger, directory=Directory.sample(), receipts=None,
                         breaker=Breaker(threshold=3, open_s=30, base_s=1, max_s=8), clock=clock)


def _run(connector: AxisConnector, conn: FakeConnection, buffer: deque[Delivery]) -> None:
    connector._send_batch(conn, conn.settler(), buffer)  # type: ignore[arg-type]


def test_one_document_for_two_bodies_behind_the_axis_is_sent_once(ledger: Ledger) -> None:
    raw = _letter((MINISTRY, NGHE_AN))
    axis, conn, clock = RecordingAxis(), FakeConnection(), Clock()
    buffer = deque([_delivery(1, raw, MINISTRY), _delivery(2, raw, NGHE_AN)])
    _run(_connector(axis, ledger, clock), conn, buffer)
    assert len(axis.sent) == 1  # the axis fans out by To itself
    sent = ledger.events(kind=EventKind.AXIS_SENT)
    assert {(e.organ_id, e.detail["answer"]) for e in sent} == {
        (MINISTRY, "accepted"), (NGHE_AN, "already_sent")}
    assert conn.channel.acked_tags() == {1, 2}
    assert not buffer


def test_a_document_that_came_from_the_axis_is_not_sent_back_to_it(ledger: Ledger) -> None:
    # The ministry wrote to the province and to Nghệ An: the plan routes Nghệ An's copy to the
    # gateway, but the axis already delivered it.
    raw = _letter((PROVINCE, NGHE_AN), sender=MINISTRY)
    digest = hashlib.sha256(raw).hexdigest()
    ledger.write([], [EventIn(EventKind.AXIS_RECEIVED, "axis:1",
                              dt.datetime.now(dt.UTC), digest=digest)])
    axis, conn = RecordingAxis(), FakeConnection()
    _run(_connector(axis, ledger, Clock()), conn, deque([_delivery(1, raw, NGHE_AN)]))
    assert axis.sent == []
    [skipped] = ledger.events(kind=EventKind.AXIS_SKIPPED)
    assert "came from the national axis" in skipped.detail["why"]
    assert conn.channel.acked_tags() == {1}


def test_hub_evidence_receipts_stay_in_the_ledger(ledger: Ledger) -> None:
    axis, conn = RecordingAxis(), FakeConnection()
    receipt = _delivery(1, _letter((MINISTRY,)), MINISTRY, **{Headers.RECEIPT: "accepted"})
    _run(_connector(axis, ledger, Clock()), conn, deque([receipt]))
    assert axis.sent == []
    assert len(ledger.events(kind=EventKind.AXIS_SKIPPED)) == 1


def test_a_503_keeps_the_document_in_hand_unacknowledged_until_the_backoff_allows_a_retry(
    ledger: Ledger
) -> None:
    raw = _letter((MINISTRY,))
    axis = RecordingAxis(Answer(503, "FAIL", "UNAVAILABLE", "down"))
    conn, clock = FakeConnection(), Clock()
    connector = _connector(axis, ledger, clock)
    buffer = deque([_delivery(1, raw, MINISTRY), _delivery(2, _letter((NGHE_AN,)), NGHE_AN)])
    _run(connector, conn, buffer)
    assert conn.channel.acked_tags() == set()
    assert len(buffer) == 2  # nothing overtook the held document
    [retry] = ledger.events(kind=EventKind.RETRY_SCHEDULED)
    assert retry.reason == "AXIS_UNAVAILABLE"
    assert "HTTP 503" in retry.detail["answer"]
    assert not connector.breaker.allows(clock.t)
    clock.t += 1.0
    _run(connector, conn, buffer)
    assert conn.channel.acked_tags() == {1, 2}
    assert [d for d, _ in axis.sent].count(hashlib.sha256(raw).hexdigest()) == 2
    assert {e.detail["answer"] for e in ledger.events(kind=EventKind.AXIS_SENT)} == {"accepted"}


def test_refused_credentials_never_refuse_a_document(ledger: Ledger) -> None:
    axis = RecordingAxis(Answer(401, "FAIL", "UNAUTHORIZED", "bad signature"))
    conn, clock = FakeConnection(), Clock()
    connector = _connector(axis, ledger, clock)
    buffer = deque([_delivery(1, _letter((MINISTRY,)), MINISTRY)])
    _run(connector, conn, buffer)
    assert conn.published == []  # no dead letter
    assert conn.channel.acked_tags() == set()
    assert connector.breaker.state(clock.t).name == "OPEN"
