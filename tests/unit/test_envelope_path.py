"""One accepted envelope, from the delivery callback to the ack, traced in process.

The consumer runs against :class:`hub.testing.fakebroker.FakeConnection` (an in-memory stand-in
for :class:`hub.broker.Connection`; the real-broker tests in ``tests/integration`` cover
RabbitMQ itself) with the real pipeline, trust service, receipts and SQLite ledger. The trace
records which ``hub`` units run and who calls whom, and docs/ARCHITECTURE.md's list of the
path is checked against it, so the document cannot drift from the code.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from hub.app import Hub, build_hub
from hub.consumers.intake import IntakeConsumer, IntakeOptions
from hub.consumers.plan import BatchPlan
from hub.consumers.settlement import Action
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_status, response_for
from hub.ledger.records import digest_is_of_raw
from hub.messages import Delivery
from hub.testing.fakebroker import FakeConnection
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    hub_settings,
    make_pki,
    signed_envelope,
)
from tests.unit.test_boundaries import LAYERS

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"
MAX_UNITS = 12


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("path-pki"))


@pytest.fixture
def hub(pki: PkiPaths, tmp_path: Path) -> Iterator[Hub]:
    built = build_hub(hub_settings(pki, tmp_path, "amqp://fake:fake@127.0.0.1:1/", "path"),
                      clock=lambda: NOW)
    try:
        yield built
    finally:
        built.close()


def _consume(hub: Hub, bodies: list[bytes], user: str | None = "guest") -> FakeConnection:
    """Run the real intake consumer over ``bodies`` until each one is acked, then stop."""
    stop = threading.Event()

    def stop_when_all_acked(c: FakeConnection) -> None:
        if len(c.channel.acked_tags()) >= len(bodies):
            stop.set()

    conn = FakeConnection(on_idle=stop_when_all_acked)
    for i, body in enumerate(bodies):
        conn.put(body, message_id=f"m{i}", user_id=user)
    consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake"), hub.pipeline,
                              hub.ledger, topology=hub.topology, stop=stop,
                              connector=lambda _url, _name: conn)
    consumer.run()
    return conn


def _unit(filename: str) -> str | None:
    path = Path(filename)
    if not path.is_relative_to(HUB):
        return None
    parts = path.relative_to(HUB).with_suffix("").parts
    unit = parts[0]
    return "broker" if parts == ("testing", "fakebroker") else unit


def _trace(hub: Hub, body: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    order: list[str] = []
    calls: set[tuple[str, str]] = set()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call":
            return
        callee = _unit(frame.f_code.co_filename)
        if callee is None:
            return
        if callee not in order:
            order.append(callee)
        caller_frame = frame.f_back
        while caller_frame is not None and _unit(caller_frame.f_code.co_filename) is None:
            caller_frame = caller_frame.f_back  # through library frames (lxml, sqlalchemy …)
        if caller_frame is not None:
            caller = _unit(caller_frame.f_code.co_filename)
            assert caller is not None
            if caller != callee:
                calls.add((caller, callee))

    sys.setprofile(profile)
    try:
        _consume(hub, [body])
    finally:
        sys.setprofile(None)
    return order, sorted(calls)


def _documented_path() -> list[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("<!-- envelope-path -->")[1].split("<!-- /envelope-path -->")[0]
    return re.findall(r"^\d+\. `hub/([a-z_]+)", section, flags=re.MULTILINE)


def test_an_accepted_envelope_is_delivered_recorded_and_acked_through_the_fake_broker(
        hub: Hub, pki: PkiPaths) -> None:
    body = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,))
    conn = _consume(hub, [body])
    assert conn.channel.acked_tags() == {1}
    deliveries = [o for o in conn.published if o.body == body]
    assert [o.headers["x-hub-recipient"] for o in deliveries] == [FINANCE]
    assert hub.ledger.find_document(HOME_AFFAIRS, deliveries[0].headers["x-hub-document-id"])


def _planned(hub: Hub, tag: int, body: bytes, key: str) -> BatchPlan:
    """The plan of a batch of one delivery of ``body`` under routing key ``key``."""
    return hub.pipeline.process_batch(
        [Delivery(tag, body, key, "path.inbound", False, {}, f"m-{tag}", "guest", None, 0)])


def _assert_recorded_with_the_parsers_digest(plan: BatchPlan, kind: str, body: bytes) -> None:
    # The ledger then takes that digest instead of hashing the bytes again (of_packet).
    [document] = [d for d in plan.documents if d.kind == kind]
    assert digest_is_of_raw(document)
    assert document.raw == body
    assert document.digest == hashlib.sha256(body).hexdigest()


def test_the_planned_envelope_document_carries_the_parsers_digest_of_its_very_bytes(
        hub: Hub, pki: PkiPaths) -> None:
    body = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,), number="7")
    _assert_recorded_with_the_parsers_digest(_planned(hub, 1, body, ENVELOPE_KEY), "envelope", body)


def test_the_planned_status_document_carries_the_parsers_digest_of_its_very_bytes(
        hub: Hub, pki: PkiPaths) -> None:
    keystore = Keystore.load(pki.keystore)
    env = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="8")
    hub.write_ledger(_planned(hub, 1, env, ENVELOPE_KEY))
    finance = keystore.signer(FINANCE)
    assert finance is not None
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(env)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ"), finance)
    _assert_recorded_with_the_parsers_digest(_planned(hub, 2, status, STATUS_KEY), "status", status)


def test_a_second_delivery_of_the_same_envelope_is_acked_and_not_delivered_again(
        hub: Hub, pki: PkiPaths) -> None:
    body = signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,))
    first = _consume(hub, [body])
    again = _consume(hub, [body])
    assert again.channel.acked_tags() == {1}
    assert sum(o.body == body for o in first.published) == 1
    assert not any(o.body == body for o in again.published)


def test_nothing_is_acked_when_the_broker_refuses_the_batch(hub: Hub, pki: PkiPaths) -> None:
    stop = threading.Event()
    conn = FakeConnection(fail_sends=True)
    conn.put(signed_envelope(Keystore.load(pki.keystore), HOME_AFFAIRS, (FINANCE,)),
             message_id="m0", user_id="guest")
    connects = 0

    def connector(_url: str, _name: str) -> FakeConnection:
        nonlocal connects
        connects += 1
        if connects > 1:
            stop.set()  # the consumer reconnects after the failure: end the test there
        return conn

    consumer = IntakeConsumer(IntakeOptions(url="amqp://fake", queue="intake",
                                            reconnect_max_s=0.01),
                              hub.pipeline, hub.ledger, stop=stop, connector=connector)
    consumer.run()
    assert conn.channel.acked == []
    assert consumer.stats.reconnects >= 1
    assert not consumer.stats.by_outcome.get(Action.DELIVER.value)


def test_one_envelope_s_path_touches_at_most_twelve_units_in_the_documented_order(
        hub: Hub, pki: PkiPaths) -> None:
    keystore = Keystore.load(pki.keystore)
    _consume(hub, [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="warm-up")])
    order, _calls = _trace(hub, signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="2"))
    assert len(order) <= MAX_UNITS, order
    assert order == _documented_path()


def test_no_unit_on_the_path_is_entered_from_a_layer_below_it(hub: Hub, pki: PkiPaths) -> None:
    keystore = Keystore.load(pki.keystore)
    _consume(hub, [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="warm-up")])
    _order, calls = _trace(hub, signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="3"))
    upward = [(a, b) for a, b in calls if LAYERS[a] < LAYERS[b]]
    assert upward == []
