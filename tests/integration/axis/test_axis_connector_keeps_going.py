"""The connector goes on when one thing keeps failing: a ledger row the database refuses, one
letter the axis keeps failing, an entry the axis lists but cannot find. In-memory broker, a
stand-in axis that answers from a script, and the real ledger on SQLite and on PostgreSQL; the
same faults over HTTP, against the simulator and the real broker, are in
``test_axis_odd_entries.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hub.axis.breaker import Breaker
from hub.axis.client import AxisUnavailable
from hub.axis.connector import AxisConnector, ConnectorOptions
from hub.axis.protocol import Answer, Listed, MessageType, StatusWord
from hub.directory import Directory
from hub.edxml.build import build_envelope, sample_header
from hub.ledger import EventKind, Ledger
from hub.messages import Headers
from hub.reasons import Reason
from hub.testing.fakebroker import FakeConnection
from hub.topology import Names
from tests.pg import fresh_schema

PROVINCE, MINISTRY, NGHE_AN = "000.00.00.H27", "000.00.00.G09", "000.00.00.H41"
NAMES = Names("edxml")
UNSTORABLE = MINISTRY + "\ud800"
"""A lone surrogate: valid JSON (``"\\ud800"``), which neither SQLite nor PostgreSQL can store
(no UTF-8 encoding exists for it)."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        yield opened
        opened.close()
        return
    with fresh_schema("axis_keeps_going") as url:
        opened = Ledger.open(url)
        yield opened
        opened.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class ScriptedAxis:
    """Lists ``listed`` every time (as an axis whose acknowledgement was lost would), serves
    ``documents`` (404 for any other id), accepts every status and every send except the
    letters whose subject is in ``failing`` (HTTP 500); every call fails while ``down()``."""

    def __init__(self, listed: list[Listed] | None = None,
                 documents: dict[str, bytes] | None = None,
                 failing: tuple[bytes, ...] = ()) -> None:
        self.listed = listed or []
        self.documents = documents or {}
        self.failing = failing
        self.down: Callable[[], bool] = lambda: False
        self.sends: list[bytes] = []
        self.lists: list[int] = []
        self.fetches: list[str] = []
        self.told: list[tuple[str, StatusWord]] = []

    def _up(self, operation: str) -> None:
        if self.down():
            raise AxisUnavailable("connection", f"{operation}: connection refused")

    def send(self, raw: bytes, *, sender: str, message_type: MessageType,
             digest: str | None = None) -> Answer:
        self._up("sendEdoc")
        self.sends.append(raw)
        if any(marker in raw for marker in self.failing):
            return Answer(500, note="Internal Server Error")
        return Answer(200, "OK", "0", "", f"doc-{len(self.sends)}")

    def received(self, limit: int) -> list[Listed]:
        self._up("getReceivedEdocList")
        self.lists.append(limit)
        return self.listed[:limit]

    def fetch(self, doc_id: str) -> bytes:
        self._up("getEdoc")
        self.fetches.append(doc_id)
        if doc_id not in self.documents:
            raise AxisUnavailable("not_found", "getEdoc: HTTP 404, FAIL, NOT_FOUND")
        return self.documents[doc_id]

    def update_status(self, doc_id: str, word: StatusWord) -> Answer:
        self._up("updateStatus")
        self.told.append((doc_id, word))
        return Answer(200, "OK")


class ClockedConnection(FakeConnection):
    """The in-memory connection, where a pump lets simulated time pass (nothing arrives during
    a wait: the clock jumps to its end) and stops the connector at ``until``."""

    def __init__(self, clock: Clock, until: float) -> None:
        super().__init__()
        self.clock = clock
        self.until = until
        self.connector: AxisConnector | None = None
        self.pumps = 0

    def pump(self, time_limit: float) -> None:
        super().pump(time_limit)
        self.clock.t += time_limit
        self.pumps += 1
        if self.pumps > 100_000:  # a loop that never waits would never end the test either
            raise AssertionError(f"the connector spins at t={self.clock.t}: pump(0) forever")
        if self.clock.t >= self.until and self.connector is not None:
            self.connector.stop.set()


def _letter(sender: str, to: str, subject: str) -> bytes:
    return build_envelope(sample_header(sender, (to,), number="7", subject=subject,
                                        promulgation_date=dt.date(2025, 3, 3)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _connector(axis: ScriptedAxis, ledger: Ledger, clock: Clock, **options: Any) -> AxisConnector:
    """The default ``[axis]`` timings (backoff 1 s → 60 s, 5 failures open the circuit for
    30 s, a list every 5 s)."""
    return AxisConnector(ConnectorOptions(url="amqp://fake", names=NAMES, province="H27",
                                          **options),
                         axis=axis, ledger=ledger, directory=Directory.sample(), receipts=None,
                         breaker=Breaker(threshold=5, open_s=30, base_s=1, max_s=60),
                         clock=clock)


def _events(logs: list[Any], name: str) -> list[Any]:
    return [e for e in logs if e.get("event") == name]


# -- A ledger row the database refuses --------------------------------------------------------

def test_an_entry_whose_hand_over_row_the_ledger_refuses_is_published_once_and_recorded_as_refused(
    ledger: Ledger
) -> None:
    # Given an entry whose sender no database can store, listed before a normal one, by an axis
    # that keeps listing both (its acknowledgements are lost)
    odd, normal = _letter(MINISTRY, PROVINCE, "odd"), _letter(MINISTRY, PROVINCE, "normal")
    axis = ScriptedAxis([Listed("odd-1", UNSTORABLE, (PROVINCE,), "edoc"),
                         Listed("ok-2", MINISTRY, (PROVINCE,), "edoc")],
                        {"odd-1": odd, "ok-2": normal})
    conn, clock = FakeConnection(), Clock()
    connector = _connector(axis, ledger, clock)
    # When the connector polls twice
    with capture_logs() as logs:
        connector._receive_round(conn)  # type: ignore[arg-type]
        connector._receive_round(conn)  # type: ignore[arg-type]
    # Then each document reached the intake once
    intake = [o.body for o in conn.published if o.exchange == NAMES.inbound]
    assert sorted(intake) == sorted([odd, normal])
    # and the refused row was replaced by one the ledger holds: the same kind and document,
    # reason LEDGER_ROW_REJECTED, the odd value escaped in the detail
    [received] = ledger.events(digest=_sha256(odd), kind=EventKind.AXIS_RECEIVED)
    assert received.reason == Reason.LEDGER_ROW_REJECTED.value
    assert received.organ_id is None
    assert received.detail["organ_id"] == MINISTRY + "\\ud800"
    assert received.detail["axis_doc_id"] == "odd-1"
    assert "UnicodeEncodeError" in received.detail["ledger_error"]
    [normal_row] = ledger.events(digest=_sha256(normal), kind=EventKind.AXIS_RECEIVED)
    assert (normal_row.reason, normal_row.organ_id) == (None, MINISTRY)
    # and a copy was dead-lettered once for an operator, with the stable reason
    dead = [o for o in conn.published if o.exchange == NAMES.dlx]
    assert [(o.routing_key, o.body) for o in dead] == [(Reason.LEDGER_ROW_REJECTED.value, odd)]
    assert dead[0].headers[Headers.REASON] == Reason.LEDGER_ROW_REJECTED.value
    assert dead[0].headers[Headers.DIGEST] == _sha256(odd)
    # and the axis was told the hub holds both, each round
    assert axis.told == [("odd-1", StatusWord.INBOX), ("ok-2", StatusWord.INBOX)] * 2
    assert (connector.handed_over, connector.acknowledged) == (2, 4)
    # and it was logged as an error, without the odd value
    refused = _events(logs, "ledger_row_refused")
    assert refused
    assert {e["kind"] for e in refused} == {"axis_received", "axis_acknowledged"}
    assert all("\ud800" not in str(e) for e in refused)


def test_a_refused_entry_whose_acknowledgement_row_the_ledger_refuses_is_recorded_and_the_connector_goes_on(
    ledger: Ledger
) -> None:
    # Given an unusable entry (its "to" is not a list of strings) whose sender no database can
    # store, before a normal entry
    normal = _letter(MINISTRY, PROVINCE, "normal")
    axis = ScriptedAxis([Listed("odd-1", UNSTORABLE, (), "edoc", problem='"to" is a number'),
                         Listed("ok-2", MINISTRY, (PROVINCE,), "edoc")], {"ok-2": normal})
    conn = FakeConnection()
    connector = _connector(axis, ledger, Clock())
    # When the connector polls
    connector._receive_round(conn)  # type: ignore[arg-type]
    # Then the odd entry was refused back to the axis and that is recorded, reason
    # LEDGER_ROW_REJECTED; the normal one was handed over
    assert axis.told == [("odd-1", StatusWord.FAIL), ("ok-2", StatusWord.INBOX)]
    told = ledger.events(kind=EventKind.AXIS_ACKNOWLEDGED)
    assert [(e.detail["axis_doc_id"], e.detail["status"], e.reason) for e in told] == [
        ("odd-1", "fail", Reason.LEDGER_ROW_REJECTED.value), ("ok-2", "inbox", None)]
    assert [o.body for o in conn.published if o.exchange == NAMES.inbound] == [normal]
    assert (connector.refused_entries, connector.acknowledged) == (1, 1)


# -- One letter the axis keeps failing --------------------------------------------------------

def test_one_letter_the_axis_keeps_failing_neither_stops_the_inbound_poll_nor_holds_the_queue_forever(
    ledger: Ledger
) -> None:
    # Given an axis that answers 500 to one letter only, and that letter first in the gateway
    # queue with two letters behind it
    poison = _letter(PROVINCE, MINISTRY, "poison")
    behind = [_letter(PROVINCE, MINISTRY, "first behind"), _letter(PROVINCE, NGHE_AN, "second")]
    axis = ScriptedAxis(failing=(b"poison",))
    clock = Clock()
    conn = ClockedConnection(clock, until=clock.t + 1800)  # 30 simulated minutes
    connector = _connector(axis, ledger, clock)
    conn.connector = connector
    for raw, to in ((poison, MINISTRY), (behind[0], MINISTRY), (behind[1], NGHE_AN)):
        conn.put(raw, headers={Headers.RECIPIENT: to}, message_id=f"{_sha256(raw)}:{to}")
    # When the connector serves for 30 minutes
    with capture_logs() as logs:
        connector._serve(conn)  # type: ignore[arg-type]
    # Then the list was asked for on its own schedule, every poll_interval_s (5 s)
    assert len(axis.lists) >= 1800 / 5 - 5
    # and the failing letter was dead-lettered with AXIS_UNAVAILABLE after its attempts,
    # without a signed refusal to its sender
    dead = [o for o in conn.published if o.exchange == NAMES.dlx]
    assert [(o.routing_key, o.body) for o in dead] == [(Reason.AXIS_UNAVAILABLE.value, poison)]
    attempts = axis.sends.count(poison)
    assert dead[0].headers[Headers.ATTEMPTS] == attempts
    assert dead[0].headers[Headers.FIRST_REASON] == Reason.AXIS_UNAVAILABLE.value
    assert "HTTP 500" in dead[0].headers[Headers.DETAIL]
    # (a failure counts once the axis answered another call since the letter's previous try)
    assert ConnectorOptions.send_attempts < attempts <= ConnectorOptions.send_attempts + 3
    [row] = ledger.events(digest=_sha256(poison), kind=EventKind.DEAD_LETTERED)
    assert (row.reason, row.detail["attempts"]) == (Reason.AXIS_UNAVAILABLE.value, attempts)
    assert len(ledger.events(digest=_sha256(poison), kind=EventKind.RETRY_SCHEDULED)) == (
        attempts - 1)
    assert not ledger.events(kind=EventKind.RECEIPT_ISSUED)
    assert _events(logs, "axis_send_abandoned")
    assert connector.metrics.sent.labels("attempts_exhausted")._value.get() == 1
    # and the letters behind it then left, each once, and every message was acknowledged
    assert [raw for raw in axis.sends if raw != poison] == behind
    assert conn.channel.acked_tags() == {1, 2, 3}


def test_while_nothing_of_the_axis_answers_no_letter_is_dead_lettered_and_all_leave_once_it_is_back(
    ledger: Ledger
) -> None:
    # Given an axis that answers nothing for 40 minutes, and two letters waiting for it
    letters = [_letter(PROVINCE, MINISTRY, "one"), _letter(PROVINCE, NGHE_AN, "two")]
    axis, clock = ScriptedAxis(), Clock()
    back_at = clock.t + 2400
    axis.down = lambda: clock.t < back_at
    conn = ClockedConnection(clock, until=back_at + 120)
    connector = _connector(axis, ledger, clock)
    conn.connector = connector
    for raw, to in zip(letters, (MINISTRY, NGHE_AN), strict=True):
        conn.put(raw, headers={Headers.RECIPIENT: to}, message_id=f"{_sha256(raw)}:{to}")
    # When the connector serves through the outage and two minutes after it
    connector._serve(conn)  # type: ignore[arg-type]
    # Then nothing was dead-lettered: both letters waited, then left once each and were
    # acknowledged
    assert conn.published == []
    assert axis.sends == letters
    assert conn.channel.acked_tags() == {1, 2}
    assert not ledger.events(kind=EventKind.DEAD_LETTERED)


# -- An entry the axis lists but cannot find --------------------------------------------------

def test_an_entry_the_axis_lists_but_cannot_find_is_logged_then_refused_and_the_entries_behind_it_are_fetched(
    ledger: Ledger
) -> None:
    # Given an axis whose list starts with an entry its getEdoc does not find (404), and asks
    # for one entry per list
    letter = _letter(MINISTRY, PROVINCE, "behind")
    axis = ScriptedAxis([Listed("purged-1", MINISTRY, (PROVINCE,), "edoc"),
                         Listed("good-2", MINISTRY, (PROVINCE,), "edoc")], {"good-2": letter})
    conn, clock = FakeConnection(), Clock()
    connector = _connector(axis, ledger, clock, receive_limit=1)
    # When the connector polls a few rounds
    with capture_logs() as logs:
        for _ in range(4):
            connector._receive_round(conn)  # type: ignore[arg-type]
            clock.t += 5
    # Then every miss was logged
    missing = _events(logs, "axis_entry_not_found")
    assert [(e["axis_doc_id"], e["rounds"]) for e in missing][:3] == [
        ("purged-1", 1), ("purged-1", 2), ("purged-1", 3)]
    # and the document behind it was fetched and handed over once (from the second round on)
    assert [o.body for o in conn.published if o.exchange == NAMES.inbound] == [letter]
    assert connector.handed_over == 1
    # and after three rounds the entry was refused back to the axis and that is recorded
    assert axis.told[:3] == [("good-2", StatusWord.INBOX), ("purged-1", StatusWord.FAIL),
                             ("good-2", StatusWord.INBOX)]
    refused = next(e for e in ledger.events(kind=EventKind.AXIS_ACKNOWLEDGED)
                   if e.detail["axis_doc_id"] == "purged-1")
    assert refused.detail["status"] == "fail"
    assert "404" in refused.detail["why"]
    assert connector.refused_entries >= 1
