"""An exception the axis client was never meant to raise (a bug of ours, or an answer no check
foresaw) is logged with its type and handled as the axis misbehaving — backoff, the message
kept in hand — never the connector thread's death. In-memory broker, real SQLite ledger; the
odd answers of a real HTTP peer are in tests/integration/axis/test_axis_odd_answers.py."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import deque
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hub.axis.breaker import Breaker
from hub.axis.connector import AxisConnector, ConnectorOptions
from hub.axis.protocol import Answer, Listed, MessageType, StatusWord
from hub.directory import Directory
from hub.edxml.build import build_envelope, sample_header
from hub.ledger import EventKind, Ledger
from hub.messages import Delivery, Headers
from hub.testing.fakebroker import FakeConnection
from hub.topology import Names

PROVINCE, MINISTRY = "000.00.00.H27", "000.00.00.G09"


class BuggyAxis:
    """Raises ``KeyError`` from its first call of each operation, then answers normally."""

    def __init__(self, letter: bytes) -> None:
        self.letter = letter
        self.calls: list[str] = []

    def _first_time(self, operation: str) -> None:
        self.calls.append(operation)
        if self.calls.count(operation) == 1:
            raise KeyError("DocID")

    def send(self, raw: bytes, *, sender: str, message_type: MessageType,
             digest: str | None = None) -> Answer:
        self._first_time("send")
        return Answer(200, "OK", "0", "", "doc-1")

    def received(self, limit: int) -> list[Listed]:
        self._first_time("received")
        return [Listed("in-1", MINISTRY, (PROVINCE,), "edoc")]

    def fetch(self, doc_id: str) -> bytes:
        return self.letter

    def update_status(self, doc_id: str, word: StatusWord) -> Answer:
        return Answer(200, "OK")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")


def _letter(sender: str, to: str) -> bytes:
    return build_envelope(sample_header(sender, (to,), number="7", subject="s",
                                        promulgation_date=dt.date(2025, 3, 3)))


def _connector(axis: BuggyAxis, ledger: Ledger, clock: Clock) -> AxisConnector:
    return AxisConnector(ConnectorOptions(url="amqp://fake", names=Names("edxml"), province="H27"),
                         axis=axis, ledger=ledger, directory=Directory.sample(), receipts=None,
                         breaker=Breaker(threshold=3, open_s=30, base_s=1, max_s=8), clock=clock)


def test_an_unexpected_error_while_listing_is_logged_with_its_type_then_backed_off_and_the_next_round_works(
    ledger: Ledger
) -> None:
    axis, conn, clock = BuggyAxis(_letter(MINISTRY, PROVINCE)), FakeConnection(), Clock()
    connector = _connector(axis, ledger, clock)
    # When the client raises something it should not
    with capture_logs() as logs:
        connector._receive_round(conn)  # type: ignore[arg-type]
    # Then it is logged with its type and where, and the axis counts as unavailable
    [failed] = [e for e in logs if e["event"] == "axis_call_failed"]
    assert (failed["operation"], failed["error_type"]) == ("received", "KeyError")
    assert failed["log_level"] == "error"
    assert "test_axis_unexpected_errors.py" in failed["where"]  # where it was raised
    assert [e["kind"] for e in logs if e["event"] == "axis_unavailable"] == ["unexpected"]
    assert not connector.breaker.allows(clock.t)
    # and after the backoff the next round hands the document over
    clock.t += 1.0
    connector._receive_round(conn)  # type: ignore[arg-type]
    assert (connector.handed_over, connector.acknowledged) == (1, 1)
    assert len(conn.published) == 1


def test_an_unexpected_error_while_sending_keeps_the_message_in_hand_and_the_retry_sends_it(
    ledger: Ledger
) -> None:
    raw = _letter(PROVINCE, MINISTRY)
    axis, conn, clock = BuggyAxis(raw), FakeConnection(), Clock()
    connector = _connector(axis, ledger, clock)
    digest = hashlib.sha256(raw).hexdigest()
    buffer = deque([Delivery(1, raw, "axis.inbox", "edxml.deliver", False,
                             {Headers.RECIPIENT: MINISTRY}, f"{digest}:{MINISTRY}", None, None,
                             0)])
    with capture_logs() as logs:
        connector._send_batch(conn, conn.settler(), buffer)  # type: ignore[arg-type]
    assert [(e["operation"], e["error_type"]) for e in logs
            if e["event"] == "axis_call_failed"] == [("send", "KeyError")]
    assert conn.channel.acked_tags() == set()
    assert len(buffer) == 1
    [retry] = ledger.events(kind=EventKind.RETRY_SCHEDULED)
    assert (retry.reason, retry.detail["kind"]) == ("AXIS_UNAVAILABLE", "unexpected")
    assert "KeyError" in retry.detail["answer"]
    clock.t += 1.0
    connector._send_batch(conn, conn.settler(), buffer)  # type: ignore[arg-type]
    assert conn.channel.acked_tags() == {1}
    assert [e.detail["answer"] for e in ledger.events(kind=EventKind.AXIS_SENT)] == ["accepted"]
