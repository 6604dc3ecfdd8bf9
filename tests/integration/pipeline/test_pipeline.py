"""The intake pipeline end to end against the real broker (issue 5 acceptance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.client import AgencyClient
from hub.ledger import EventKind
from hub.testing import devbroker
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    COMMUNE,
    DISTRICT,
    FINANCE,
    HOME_AFFAIRS,
    MINISTRY,
    PROVINCE,
    agency_account,
    hub_settings,
    running_hub,
    signed_envelope,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def keystore(pipeline_pki: PkiPaths) -> Keystore:
    return Keystore.load(pipeline_pki.keystore)


def test_an_envelope_from_a_commune_reaches_its_district_and_a_department_exactly_once(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        # Given a commune's signed envelope to its district and a provincial department
        env = signed_envelope(keystore, COMMUNE, (DISTRICT, HOME_AFFAIRS), number="15")
        # When it is published, twice (a sender retry)
        hub.client(COMMUNE).send(env)
        hub.client(COMMUNE).send(env)
        hub.wait_acked(2)
        # Then each recipient queue holds it exactly once, byte for byte
        district = hub.drain(hub.names.inbox(DISTRICT))
        department = hub.drain(hub.names.inbox(HOME_AFFAIRS))
        assert [d.body for d in district] == [env]
        assert [d.body for d in department] == [env]
        # And the ledger shows each step
        kinds = [e.kind for e in hub.hub.ledger.events()]
        assert kinds.count(EventKind.RECEIVED) == 2
        assert kinds.count(EventKind.VALIDATED) == 1
        assert kinds.count(EventKind.DELIVERED) == 2
        assert kinds.count(EventKind.DUPLICATE) == 1
        assert hub.hub.ledger.delivered_to(district[0].headers["x-hub-digest"]) == {
            DISTRICT, HOME_AFFAIRS}
        assert hub.hub.ledger.verify().ok


def test_a_document_for_another_province_goes_to_the_national_axis_gateway(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        env = signed_envelope(keystore, PROVINCE, (MINISTRY,), number="88")
        hub.client(PROVINCE).send(env)
        hub.wait_acked(1)
        gateway = hub.drain(hub.names.gateway)
        assert [d.body for d in gateway] == [env]
        assert gateway[0].headers["x-hub-via"] == "axis"


def test_an_envelope_edited_after_signing_is_dead_lettered_at_once_with_its_reason(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        env = signed_envelope(keystore, FINANCE, (PROVINCE,), subject="Tờ trình kinh phí")
        tampered = env.replace("Tờ trình kinh phí".encode(), "Tờ trình kinh phí mới".encode())
        hub.client(FINANCE).send(tampered)
        hub.wait_acked(1)
        dead = hub.drain(hub.names.dlq)
        assert len(dead) == 1
        assert dead[0].body == tampered
        assert dead[0].headers["x-hub-reason"] == "SIGNATURE_DIGEST_MISMATCH"
        assert dead[0].headers["x-hub-attempts"] == 1
        assert dead[0].headers["x-hub-reason-text-vi"]
        assert hub.drain(hub.names.inbox(PROVINCE)) == []
        # The sender gets a negative status signed by the hub operator
        receipts = hub.drain(hub.names.status(FINANCE))
        assert [r.headers["x-hub-receipt"] for r in receipts] == ["rejected"]


def test_a_body_that_is_not_xml_is_dead_lettered_once_and_never_requeued(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        hub.client(PROVINCE).send(b"plainly not xml")
        hub.wait_acked(1)
        dead = hub.drain(hub.names.dlq)
        assert [d.headers["x-hub-reason"] for d in dead] == ["ENVELOPE_MALFORMED"]
        assert hub.consumer.stats.acked == 1


def test_a_document_id_reused_for_different_content_is_refused(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        first = signed_envelope(keystore, PROVINCE, (FINANCE,), number="9", subject="Bản một")
        second = signed_envelope(keystore, PROVINCE, (FINANCE,), number="9", subject="Bản hai")
        hub.client(PROVINCE).send(first)
        hub.wait_acked(1)
        hub.client(PROVINCE).send(second)
        hub.wait_acked(2)
        assert [d.body for d in hub.drain(hub.names.inbox(FINANCE))] == [first]
        assert [d.headers["x-hub-reason"] for d in hub.drain(hub.names.dlq)] == [
            "DOCUMENT_ID_REUSED"]


@pytest.mark.parametrize("crls", ["none", "root_crl_missing"])
def test_revocation_that_cannot_be_checked_is_retried_then_parked_and_never_refused(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str,
    tmp_path: Path, crls: str
) -> None:
    # Given a hub that cannot check revocation: no CRL at all, or the issuing CA's CRL but not
    # the root's (the issuing CA's own status is unknown)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, delivery_limit=3,
                            ledger_url=ledger_url)
    from hub.config import with_overrides

    settings = with_overrides(settings, trust={
        "crls": [] if crls == "none" else [str(pipeline_pki.crl_der)]})
    with running_hub(settings) as hub:
        env = signed_envelope(keystore, PROVINCE, (FINANCE,), number="31")
        hub.client(PROVINCE).send(env)
        # Then it is tried three times (two delayed retries), and only then parked
        hub.wait_acked(3)
        dead = hub.drain(hub.names.dlq)
        assert len(dead) == 1
        assert dead[0].headers["x-hub-reason"] == "REVOCATION_UNAVAILABLE"
        assert dead[0].headers["x-hub-first-reason"] == "REVOCATION_UNAVAILABLE"
        assert dead[0].headers["x-hub-attempts"] == 3
        assert hub.drain(hub.names.inbox(FINANCE)) == []
        # And the sender is told nothing: the document is not refused, an operator decides
        assert hub.drain(hub.names.status(PROVINCE)) == []
        assert not [e for e in hub.hub.ledger.events() if e.kind is EventKind.RECEIPT_ISSUED]


def test_a_publisher_whose_account_is_not_the_senders_is_refused(
    pipeline_pki: PkiPaths, keystore: Keystore, rabbitmq: devbroker.RunningBroker,
    broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    if rabbitmq.kind != "container":
        pytest.skip("accounts are created with rabbitmqctl inside the broker container")
    # Given Finance's own broker account (the directory's broker_user for 000.00.03.H27)
    finance_url = agency_account(rabbitmq, FINANCE, "finance-test")
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        finance = AgencyClient(finance_url, FINANCE, prefix=names)
        try:
            # When Finance publishes its own document, and one the province signed
            finance.send(signed_envelope(keystore, FINANCE, (PROVINCE,), number="76"))
            finance.send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="77"))
        finally:
            finance.close()
        hub.wait_acked(2)
        # Then its own goes through and the other is refused: that login is not the province's
        assert len(hub.drain(hub.names.inbox(PROVINCE))) == 1
        assert [d.headers["x-hub-reason"] for d in hub.drain(hub.names.dlq)] == [
            "SENDER_ACCOUNT_MISMATCH"]


def test_while_the_ledger_is_locked_nothing_is_acked_and_everything_lands_once_it_is_back(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, tmp_path: Path
) -> None:
    import sqlite3

    from hub.ledger import Ledger

    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names)
    db = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(f"sqlite:///{db}", sqlite_busy_timeout_ms=50)
    with running_hub(settings, ledger=ledger) as hub:
        # Given another process holding the database's write lock
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="L1"))
            # Then the consumer holds the delivery and retries (fail closed), acking nothing
            assert hub.consumer.stats.wait_for(lambda st: st.ledger_retries >= 2, 30)
            assert hub.consumer.stats.acked == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # When the lock is released, the delivery completes exactly once
        hub.wait_acked(1)
        assert len(hub.drain(hub.names.inbox(FINANCE))) == 1
        assert hub.hub.ledger.verify().ok


def test_a_consumer_whose_first_node_is_down_fails_over_to_the_next_cluster_node(
    pipeline_pki: PkiPaths, keystore: Keystore, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    from hub.config import with_overrides

    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    # Given a first node that answers nothing (port 1) and a live second node
    settings = with_overrides(settings, broker={"url": "amqp://guest:guest@127.0.0.1:1/",
                                                "failover_urls": [broker_url]})
    with running_hub(settings, url=broker_url) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="F1"))
        # Then the consumer reached the live node and delivered
        hub.wait_acked(1)
        assert hub.consumer.stats.reconnects >= 1
        assert len(hub.drain(hub.names.inbox(FINANCE))) == 1
