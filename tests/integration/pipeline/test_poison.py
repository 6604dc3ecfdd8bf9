"""No single message can stop a consumer or keep the rest of its batch out of the ledger.

The database itself refuses one delivery's row (a trigger that raises, on SQLite and on the
real PostgreSQL): the consumer must not crash or loop, the batch's other deliveries must be
recorded, and the refused one must be dead-lettered with LEDGER_ROW_REJECTED and recorded as
such (issue 16, H1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.edxml import Limits, parse_packet
from hub.ledger import EventKind
from hub.messages import Headers
from hub.reasons import Reason
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    hub_settings,
    running_hub,
    signed_envelope,
)

pytestmark = pytest.mark.broker

_SQLITE_TRIGGER = """
CREATE TRIGGER poison BEFORE INSERT ON ledger_documents
WHEN instr(NEW.document_id, 'POISON') > 0 BEGIN SELECT RAISE(ABORT, 'poison row'); END
"""
_PG_TRIGGER = [
    """CREATE FUNCTION poison() RETURNS trigger AS $$
       BEGIN
         IF position('POISON' in NEW.document_id) > 0 THEN RAISE EXCEPTION 'poison row'; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER poison BEFORE INSERT ON ledger_documents FOR EACH ROW EXECUTE FUNCTION poison()",
]


def _arm_poison(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in ([_SQLITE_TRIGGER] if url.startswith("sqlite") else _PG_TRIGGER):
            conn.execute(text(statement))
    engine.dispose()


def test_a_row_the_database_refuses_is_isolated_and_the_rest_of_the_batch_is_recorded(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url,
                            batch_wait_ms=200)
    good = [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=f"{n}") for n in (1, 3)]
    poison = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="2POISON")
    with running_hub(settings) as hub:
        _arm_poison(hub.hub.settings.ledger.url)
        # Given three envelopes in one batch, the database refusing the middle one's row
        for body in (good[0], poison, good[1]):
            hub.client(HOME_AFFAIRS).send(body)
        # When the consumer handles them
        hub.wait_acked(3)
        # Then the consumer is still running and settled all three (no crash, no requeue loop)
        assert hub.thread.is_alive()
        # And the other two are delivered and recorded; the poison row is not in the ledger
        ledger = hub.hub.ledger
        inbox = [d.body for d in hub.drain(hub.names.inbox(FINANCE))]
        for body in good:
            assert inbox.count(body) == 1
            packet = parse_packet(body, Limits())
            assert ledger.delivered_to(packet.digest) == {FINANCE}
        assert ledger.find_document(HOME_AFFAIRS, parse_packet(poison, Limits()).document_id) is None
        # And the refused one is dead-lettered with LEDGER_ROW_REJECTED and recorded as such
        dead = hub.drain(hub.names.dlq)
        assert [d.body for d in dead] == [poison]
        assert dead[0].headers[Headers.REASON] == Reason.LEDGER_ROW_REJECTED.value
        rejected = [e for e in ledger.events() if e.kind is EventKind.REJECTED]
        assert [e.reason for e in rejected] == [Reason.LEDGER_ROW_REJECTED.value]
        assert ledger.verify().ok
