"""``hub dlq replay`` against the real broker: each letter back where it came from, as whose,
recorded, never dropped.

Found by a review: a replay sent every dead letter to the intake, where a document an inbox had
rejected, a receipt from a status queue or a letter the axis connector had parked was dropped as
a duplicate (exit 0, "replayed 1", nothing reached anyone); a letter the broker had dead-lettered
was republished under the operator's trusted login, so an agency's account could publish for a
body it does not belong to; with the ledger down the letters went out and stayed in the queue
(to go out again on the next replay); and ids that named nothing answered "replayed 0", exit 0.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from hub.app import broker_user, load_directory, topology_for
from hub.broker import Delivery, Outgoing, connect
from hub.config import Settings
from hub.ledger import EventKind
from hub.messages import Headers
from hub.ops import dlq
from hub.ops.cli import main
from hub.testing import devbroker
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY, Topology
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    COMMUNE,
    DISTRICT,
    FINANCE,
    MINISTRY,
    PROVINCE,
    RunningHub,
    agency_account,
    hub_settings,
    running_hub,
    settings_toml,
    signed_envelope,
)

pytestmark = pytest.mark.broker


def _config(tmp_path: Path, settings: Settings) -> str:
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    return str(config)


def _declared(settings: Settings) -> Topology:
    """The hub's queues, declared, with no consumer: what a replay puts in them stays."""
    topology = topology_for(settings, load_directory(settings))
    conn = connect(settings.broker.url, "declare")
    try:
        conn.declare(topology)
    finally:
        conn.close()
    return topology


def _deleted(settings: Settings, topology: Topology) -> None:
    conn = connect(settings.broker.url, "cleanup")
    try:
        conn.delete(topology)
    finally:
        conn.close()


def _wait_depth(url: str, queue: str, n: int, timeout: float = 15.0) -> None:
    """Wait until ``queue`` holds ``n`` messages (the broker dead-letters asynchronously)."""
    conn = connect(url, f"wait for {queue}")
    try:
        waited = 0.0
        while conn.queue_depth(queue) != n:
            assert waited < timeout, f"{queue} holds {conn.queue_depth(queue)}, not {n}"
            conn.sleep(0.05)
            waited += 0.05
    finally:
        conn.close()


def _depth(url: str, queue: str) -> int:
    conn = connect(url, f"depth of {queue}")
    try:
        return conn.queue_depth(queue)
    finally:
        conn.close()


def _reject(url: str, queue: str) -> Delivery:
    """What an agency's system does with a message it will not take: reject, no requeue."""
    conn = connect(url, f"rejecting from {queue}")
    try:
        d = conn.get(queue)
        assert d is not None, f"nothing in {queue}"
        conn.channel.basic_reject(d.tag, requeue=False)
        return d
    finally:
        conn.close()


def _replay(config: str, *args: str) -> int:
    return main(["--config", config, "dlq", "replay", *args, "--actor", "ops-nguyen",
                 "--note", "fixed"])


def _replays(hub: RunningHub) -> list[tuple[str | None, Any]]:
    return [(e.actor, e.detail.get("to")) for e in hub.hub.ledger.events(kind=EventKind.REPLAYED)]


def test_a_document_an_inbox_rejected_is_replayed_back_into_that_inbox(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    with running_hub(settings) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="B1"))
        hub.wait_acked(1)
        # Given Finance's system rejecting the document: the broker dead-letters it
        taken = _reject(broker_url, hub.names.inbox(FINANCE))
        _wait_depth(broker_url, hub.names.dlq, 1)
        # When an operator replays it
        assert _replay(config, "--all") == 0
        # Then it is in Finance's inbox again, the same bytes under the same id, judged by no one
        (again,) = hub.drain(hub.names.inbox(FINANCE))
        assert (again.body, again.message_id) == (taken.body, taken.message_id)
        assert again.headers[Headers.SENDER] == PROVINCE
        assert hub.consumer.stats.acked == 1
        assert _depth(broker_url, hub.names.dlq) == 0
        # And the ledger says who sent it where
        assert _replays(hub) == [("ops-nguyen", hub.names.inbox(FINANCE))]


def test_a_receipt_a_status_queue_rejected_is_replayed_back_to_that_status_queue(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    with running_hub(settings) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="B2"))
        hub.wait_acked(1)
        # Given the province's system rejecting the hub's receipt from its status queue
        taken = _reject(broker_url, hub.names.status(PROVINCE))
        _wait_depth(broker_url, hub.names.dlq, 1)
        assert _replay(config, "--all") == 0
        # Then the receipt is back with the province, and the hub sent nobody a status about it
        back = {d.message_id: d for d in hub.drain(hub.names.status(PROVINCE))}
        again = back[taken.message_id]
        assert again.body == taken.body
        assert again.headers[Headers.RECEIPT] == taken.headers[Headers.RECEIPT]
        assert hub.consumer.stats.acked == 1
        assert hub.drain(hub.names.status(FINANCE)) == []
        assert _replays(hub) == [("ops-nguyen", hub.names.status(PROVINCE))]


def test_a_letter_the_axis_connector_parked_is_replayed_to_the_gateway_queue(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
) -> None:
    from hub.axis.connector import AxisConnector, ConnectorOptions, _Effects
    from hub.edxml import parse_packet
    from hub.reasons import Reason

    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    with running_hub(settings) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (MINISTRY,), number="B3"))
        hub.wait_acked(1)
        # Given the connector parking the letter after its attempts (its own dead-lettering)
        connector = AxisConnector(ConnectorOptions(url=broker_url, names=hub.names,
                                                   province=PROVINCE),
                                  axis=None, ledger=hub.hub.ledger,  # type: ignore[arg-type]
                                  directory=hub.hub.directory, receipts=None)
        conn = connect(broker_url, "axis connector")
        try:
            d = conn.get(hub.names.gateway)
            assert d is not None
            packet = parse_packet(d.body)
            effects = _Effects()
            connector._dead_letter(d, packet, packet.digest, d.message_id or "", dt.datetime.now(dt.UTC),
                                   "AXIS_UNAVAILABLE after 10 attempts", MINISTRY, None, effects,
                                   reason=Reason.AXIS_UNAVAILABLE, attempts=10, parked=True)
            conn.publish(effects.first)
            conn.settler().ack([d.tag])
        finally:
            conn.close()
        _wait_depth(broker_url, hub.names.dlq, 1)
        # When the axis is back and an operator replays it
        assert _replay(config, "--reason", "AXIS_UNAVAILABLE") == 0
        # Then it waits in the gateway queue for the connector again, the hub judged nothing
        (again,) = hub.drain(hub.names.gateway)
        assert (again.body, again.message_id) == (d.body, d.message_id)
        assert again.headers[Headers.RECIPIENT] == MINISTRY
        assert Headers.REASON not in again.headers
        assert hub.consumer.stats.acked == 1
        assert _replays(hub) == [("ops-nguyen", hub.names.gateway)]


def test_a_letter_whose_origin_cannot_be_established_stays_in_the_queue_and_is_named(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    with running_hub(settings) as hub:
        # Given a letter put into the dead-letter queue by hand, saying nothing of where it was
        conn = connect(broker_url, "by hand")
        try:
            conn.publish([Outgoing("", hub.names.dlq, b"<x/>",
                                   {Headers.REASON: "RECIPIENT_UNKNOWN"}, message_id="lost-1")])
        finally:
            conn.close()
        capsys.readouterr()
        # When an operator replays everything
        assert _replay(config, "--all") == 1
        # Then one line names it, and it is still there
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "lost-1" in err
        assert _depth(broker_url, hub.names.dlq) == 1
        assert _replays(hub) == []
        assert hub.consumer.stats.acked == 0


def test_an_agency_letter_the_broker_expired_is_replayed_as_that_agency_and_refused_for_another_body(
    pipeline_pki: PkiPaths, rabbitmq: devbroker.RunningBroker, broker_url: str, names: str,
    ledger_url: str, tmp_path: Path,
) -> None:
    if rabbitmq.kind != "container":
        pytest.skip("the agency account is created with rabbitmqctl inside the broker container")
    keystore = Keystore.load(pipeline_pki.keystore)
    agency = agency_account(rabbitmq, COMMUNE, "commune-replay")
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    hub_login = broker_user(settings.broker.url)
    # Given the commune's account publishing letters From the district (not its body), one
    # claiming the hub's login as its publisher, both expiring before the hub takes them
    letters = [signed_envelope(keystore, DISTRICT, (PROVINCE,), number=f"X{i}") for i in (1, 2)]
    names_ = _declared(settings).names  # no consumer runs while the letters wait
    conn = connect(agency, "commune system")
    try:
        conn.publish([
            Outgoing(names_.inbound, ENVELOPE_KEY, letters[0], message_id="plain",
                     user_id=COMMUNE, expiration_ms=1),
            Outgoing(names_.inbound, ENVELOPE_KEY, letters[1], message_id="forged",
                     headers={Headers.ORIGINAL_USER: hub_login, Headers.REASON: "OK"},
                     user_id=COMMUNE, expiration_ms=1)])
    finally:
        conn.close()
    _wait_depth(broker_url, names_.dlq, 2)
    with running_hub(settings) as hub:
        # When an operator replays them
        assert _replay(config, "--reason", "BROKER_EXPIRED") == 0
        hub.wait_acked(2)
        # Then the hub judged them as the commune's: refused, delivered to no one
        assert hub.drain(hub.names.inbox(PROVINCE)) == []
        dead = hub.drain(hub.names.dlq)
        assert sorted(d.message_id or "" for d in dead) == ["forged", "plain"]
        assert {d.headers[Headers.REASON] for d in dead} == {"SENDER_ACCOUNT_MISMATCH"}
        assert {d.headers[Headers.ORIGINAL_USER] for d in dead} == {COMMUNE}


@pytest.mark.parametrize("ledger", [
    pytest.param("postgresql+psycopg2://nobody@127.0.0.1:1/test", id="postgres unreachable"),
    pytest.param("sqlite:///{tmp}/is-a-directory", id="sqlite unopenable"),
])
def test_a_replay_with_the_ledger_down_publishes_nothing(
    pipeline_pki: PkiPaths, broker_url: str, names: str, tmp_path: Path, ledger: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "is-a-directory").mkdir()
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names,
                            ledger_url=ledger.format(tmp=tmp_path))
    topology = _declared(settings)
    try:
        conn = connect(broker_url, "setup")
        try:
            conn.publish([Outgoing("", topology.names.dlq, b"<x/>", {
                Headers.REASON: "REVOCATION_UNAVAILABLE", Headers.ORIGINAL_USER: "guest",
                Headers.ORIGINAL_ROUTING: f"{topology.names.inbound}/envelope"},
                message_id=f"dl-{i}") for i in range(3)])
        finally:
            conn.close()
        capsys.readouterr()
        # When an operator replays them while the ledger is down
        code = _replay(_config(tmp_path, settings), "--all")
        # Then it fails, in one line, before anything went out: the letters are all still there
        assert code in (3, 4)
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert _depth(broker_url, topology.names.intake) == 0
        assert _depth(broker_url, topology.names.dlq) == 3
    finally:
        _deleted(settings, topology)


def test_a_ledger_that_fails_after_a_publish_is_named_with_the_letters_that_went_out(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    topo = _declared(settings)
    try:
        conn = connect(broker_url, "setup")
        conn.publish([Outgoing("", topo.names.dlq, b"<x/>", {
            Headers.ORIGINAL_USER: "guest",
            Headers.ORIGINAL_ROUTING: f"{topo.names.inbound}/envelope"},
            message_id=f"dl-{i}") for i in range(2)])
        conn.close()
        calls: list[int] = []

        def record(items: list[dlq.DeadLetter], actor: str, note: str) -> None:
            # the ledger answers the check before the first publish, then fails
            calls.append(len(items))
            if items:
                from hub.errors import TransientError
                from hub.reasons import Reason

                raise TransientError(Reason.LEDGER_UNAVAILABLE, "connection refused")

        conn = connect(broker_url, "replay")
        try:
            with pytest.raises(dlq.ReplayNotRecorded) as caught:
                dlq.replay(conn, topo.names.dlq, topo.names.intake, dlq.Filter(),
                           actor="ops-nguyen", note="n", user="guest", record=record,
                           trusted=frozenset({"guest"}))
        finally:
            conn.close()
        # Then the one line names the letters that went out and says they are not recorded
        text = str(caught.value)
        for said in ("dl-0", "dl-1", "not recorded"):
            assert said in text
        assert "\n" not in text
        assert calls == [0, 2]
        # and they went out once: in the intake, no longer in the dead-letter queue
        assert _depth(broker_url, topo.names.intake) == 2
        assert _depth(broker_url, topo.names.dlq) == 0
    finally:
        _deleted(settings, topo)


@pytest.mark.parametrize("verb", ["replay", "discard"])
def test_an_id_that_names_no_dead_letter_exits_1_naming_it(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], verb: str,
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    topology = _declared(settings)
    try:
        conn = connect(broker_url, "setup")
        try:
            conn.publish([Outgoing("", topology.names.dlq, b"<x/>", {
                Headers.REASON: "ENVELOPE_MALFORMED", Headers.ORIGINAL_USER: "guest",
                Headers.ORIGINAL_ROUTING: f"{topology.names.inbound}/envelope"},
                message_id="here-1")])
        finally:
            conn.close()
        capsys.readouterr()
        # When an operator names a letter that is gone
        assert main(["--config", config, "dlq", verb, "gone-1", "--actor", "ops",
                     "--note", "n"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "gone-1" in err
        assert _depth(broker_url, topology.names.dlq) == 1
        # And one that is there beside one that is not: the one there is acted on
        assert main(["--config", config, "dlq", verb, "here-1", "gone-2", "--actor", "ops",
                     "--note", "n"]) == 1
        out, err = capsys.readouterr()
        assert "1 message(s)" in out
        assert "gone-2" in err
        assert "here-1" not in err
        assert _depth(broker_url, topology.names.dlq) == 0
    finally:
        _deleted(settings, topology)


def _park(url: str, queue: str, n: int, size: int, reason: str = "SIGNATURE_INVALID") -> None:
    """``n`` letters of ``size`` bytes in ``queue``, as the hub dead-letters them."""
    conn = connect(url, "parking letters")
    try:
        conn.publish([Outgoing("", queue, bytes([65 + i % 26]) * size,
                               headers={Headers.REASON: reason,
                                        Headers.SENDER: FINANCE},
                               message_id=f"letter-{i}") for i in range(n)])
    finally:
        conn.close()


@pytest.mark.parametrize("command", ["ls", "discard"])
def test_listing_or_discarding_dead_letters_holds_one_letter_s_body_at_a_time(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
    command: str, capsys: pytest.CaptureFixture[str],
) -> None:
    import tracemalloc

    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = _config(tmp_path, settings)
    topology = _declared(settings)
    try:
        # Given 24 dead letters of 512 KB (12 MB)
        _park(broker_url, topology.names.dlq, 24, 512 * 1024)
        args = (["--reason", "SIGNATURE_INVALID", "--yes", "--actor", "ops-nguyen", "--note", "spam"]
                if command == "discard" else [])
        # (the command once over another letter: its modules imported, its ledger opened)
        _park(broker_url, topology.names.dlq, 1, 1024, reason="CERT_REVOKED")
        warm = ["--reason", "CERT_REVOKED", *args[2:]] if command == "discard" else \
            ["--reason", "CERT_REVOKED"]
        assert main(["--config", config, "dlq", command, *warm]) == 0
        # When an operator lists them, or discards them
        tracemalloc.start()
        try:
            assert main(["--config", config, "dlq", command, *args]) == 0
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Then every letter was seen, and the command never held more than a few bodies
        if command == "ls":
            assert "25 dead letter(s)" in capsys.readouterr().out
            assert _depth(broker_url, topology.names.dlq) == 25
        else:
            assert _depth(broker_url, topology.names.dlq) == 0
        assert peak < 4 * 512 * 1024, f"peak {peak / 1e6:.1f} MB for 12 MB of letters"
    finally:
        _deleted(settings, topology)
