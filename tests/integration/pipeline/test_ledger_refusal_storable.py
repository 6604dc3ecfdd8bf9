"""A refusal is recorded even when what the database refused was the delivery's own message id,
and a ledger the consumer cannot read for its state holds the batch instead of killing it.

Found by a review (pgfaults): when the database refused a delivery's rows, the refusal the
consumer wrote in their place carried the same message id and was refused too — the delivery
was settled with no ledger row at all (``ledger_refusal_unrecorded``). And a read refused for
the database's state (SQLSTATE 42P01 while a restore renames tables, 42501 while a DBA
tightens grants) escaped planning and stopped the consumer, while a write refused for the
same reason was held and retried.
"""

from __future__ import annotations

from pathlib import Path

import pika
import pytest
from sqlalchemy import create_engine, text

from hub.edxml import Limits, parse_packet
from hub.ledger import EventKind
from hub.messages import Headers
from hub.reasons import Reason
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    hub_settings,
    running_hub,
    signed_envelope,
)
from tests.pg import fresh_schema

pytestmark = pytest.mark.broker

_SQLITE_TRIGGER = """
CREATE TRIGGER poison BEFORE INSERT ON ledger_events
WHEN instr(NEW.message_id, 'POISON') > 0 BEGIN SELECT RAISE(ABORT, 'poison id'); END
"""
_PG_TRIGGER = [
    """CREATE FUNCTION poison() RETURNS trigger AS $$
       BEGIN
         IF position('POISON' in NEW.message_id) > 0 THEN RAISE EXCEPTION 'poison id'; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER poison BEFORE INSERT ON ledger_events FOR EACH ROW EXECUTE FUNCTION poison()",
]


def _run(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _publish(url: str, exchange: str, messages: list[tuple[bytes, str]]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body, message_id in messages:
            channel.basic_publish(exchange, ENVELOPE_KEY, body,
                                  pika.BasicProperties(message_id=message_id, user_id="guest"))
    finally:
        connection.close()


def test_a_refusal_whose_message_id_the_database_refuses_is_recorded_under_the_digest(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url,
                            batch_wait_ms=200)
    good = [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=f"{n}") for n in (41, 43)]
    poison = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="42")
    with running_hub(settings) as hub:
        # Given a database that refuses every row under one message id, and that id on the
        # middle one of three envelopes in one batch
        _run(hub.hub.settings.ledger.url,
             [_SQLITE_TRIGGER] if ledger_url.startswith("sqlite") else _PG_TRIGGER)
        _publish(hub.url, hub.names.inbound,
                 [(good[0], "m-41"), (poison, "m-POISON"), (good[1], "m-43")])
        # When the consumer handles them
        hub.wait_acked(3)
        assert hub.thread.is_alive()
        # Then the refused one is dead-lettered once with LEDGER_ROW_REJECTED
        (dead,) = hub.drain(hub.names.dlq)
        assert dead.body == poison
        assert dead.headers[Headers.REASON] == Reason.LEDGER_ROW_REJECTED.value
        # And its refusal is recorded, under the packet's digest
        ledger = hub.hub.ledger
        digest = parse_packet(poison, Limits()).digest
        rejected = [e for e in ledger.events() if e.kind is EventKind.REJECTED]
        assert [(e.message_id, e.reason) for e in rejected] == [
            (digest, Reason.LEDGER_ROW_REJECTED.value)]
        # And the others are recorded as delivered
        for body in good:
            assert ledger.delivered_to(parse_packet(body, Limits()).digest) == {FINANCE}
        assert ledger.verify().ok


@pytest.mark.postgres
def test_a_ledger_table_missing_for_a_while_holds_the_batch_and_the_consumer_goes_on(
    pipeline_pki: PkiPaths, broker_url: str, names: str, tmp_path: Path,
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    first, second = (signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=n)
                     for n in ("51", "52"))
    with fresh_schema() as url, running_hub(
            hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=url)) as hub:
        hub.client(HOME_AFFAIRS).send(first)
        hub.wait_acked(1)
        # Given the documents table renamed away (a restore in progress: SQLSTATE 42P01)
        _run(url, ["ALTER TABLE ledger_documents RENAME TO ledger_documents_restoring"])
        # When an envelope comes, Then the consumer holds it and retries, still running
        hub.client(HOME_AFFAIRS).send(second)
        assert hub.consumer.stats.wait_for(lambda st: st.ledger_retries >= 2, 30)
        assert hub.thread.is_alive()
        assert hub.consumer.stats.acked == 1
        # And once the table is back, it is planned, delivered and recorded
        _run(url, ["ALTER TABLE ledger_documents_restoring RENAME TO ledger_documents"])
        hub.wait_acked(2)
        assert hub.consumer.stats.reconnects == 0
        digest = parse_packet(second, Limits()).digest
        assert hub.hub.ledger.delivered_to(digest) == {FINANCE}
