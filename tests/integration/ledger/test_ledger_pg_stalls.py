"""PostgreSQL that stalls or refuses for its state is LEDGER_UNAVAILABLE, never a hang or a crash.

Found by a review (pgfaults): the ledger set no connect timeout, no TCP keepalives and no
statement timeout, so a consumer waited without end on a database that stopped answering (its
broker heartbeats unserved meanwhile); and a read refused for the database's state (a table
renamed away during a restore, SQLSTATE 42P01) escaped as a ProgrammingError where a write
refused alike was LEDGER_UNAVAILABLE.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from hub.errors import TransientError
from hub.ledger import Ledger
from hub.ledger.store import PG_CONNECT_TIMEOUT_S
from hub.reasons import Reason
from tests.integration.ledger.ledger_samples import sample_batch

pytestmark = pytest.mark.postgres


def test_a_statement_held_longer_than_the_timeout_is_cancelled_and_transient(
    postgres_url: str,
) -> None:
    # Given a ledger whose statements may take 300 ms, and another session holding the
    # chain-head lock
    with Ledger.open(postgres_url, statement_timeout_s=0.3) as ledger:
        with ledger.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
            dsn = conn.connection.dbapi_connection.get_dsn_parameters()  # type: ignore[union-attr]
        assert dsn["connect_timeout"] == str(PG_CONNECT_TIMEOUT_S)
        assert dsn["keepalives"] == "1"
        blocker = create_engine(postgres_url)
        with blocker.connect() as conn, conn.begin():
            conn.execute(text("SELECT * FROM ledger_head WHERE id = 1 FOR UPDATE"))
            # When the ledger writes, Then the database cancels the wait (57014): retried later
            with pytest.raises(TransientError) as caught:
                ledger.write(*sample_batch(0, 1))
        blocker.dispose()
        assert caught.value.reason is Reason.LEDGER_UNAVAILABLE
        # And the same write succeeds once the lock is free
        ledger.write(*sample_batch(0, 1))
        assert ledger.verify().ok


def test_a_statement_timeout_the_url_sets_wins(postgres_url: str) -> None:
    url = postgres_url + "%20-cstatement_timeout%3D1234"
    with Ledger.open(url, statement_timeout_s=0.3) as ledger, ledger.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "1234ms"


def test_a_read_of_a_table_renamed_away_is_transient_not_an_error(postgres_url: str) -> None:
    with Ledger.open(postgres_url) as ledger:
        documents, events = sample_batch(0, 1)
        ledger.write(documents, events)
        # Given the documents table renamed away (a restore in progress: SQLSTATE 42P01)
        admin = create_engine(postgres_url)
        with admin.begin() as conn:
            conn.execute(text("ALTER TABLE ledger_documents RENAME TO ledger_documents_old"))
        # When the ledger is read, Then it is LEDGER_UNAVAILABLE (the consumer holds and retries)
        with pytest.raises(TransientError) as caught:
            ledger.find_documents([(documents[0].sender, documents[0].document_id)])
        assert caught.value.reason is Reason.LEDGER_UNAVAILABLE
        # And once it is back, the read answers
        with admin.begin() as conn:
            conn.execute(text("ALTER TABLE ledger_documents_old RENAME TO ledger_documents"))
        admin.dispose()
        found = ledger.find_documents([(documents[0].sender, documents[0].document_id)])
        assert len(found) == 1
