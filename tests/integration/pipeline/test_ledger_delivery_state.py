"""The per-recipient delivery state (``ledger_deliveries``) is checked by the auditors' command.

The table is derived and not chained: a search by recipient reads it. The real pipeline writes
batches of every kind of packet (accepted envelopes to several recipients, a recall, a status, a
duplicate, refusals); the table it leaves must be exactly what :func:`deliveries.recompute`
derives from the chained rows — the writer's rule and the verifier's are one. Then each way an
operator with database access could edit the table (a row deleted, added, its state, position or
time changed, a value the hub never writes) must fail ``hub ledger verify`` with one line and
exit 1 while every chained row still verifies, and ``hub ledger migrate --rebuild-deliveries``
must repair it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.app import Hub
from hub.ledger import deliveries
from hub.ledger.search import search_documents
from hub.ops.cli import EXIT_FAILURE, EXIT_OK
from hub.ops.cli import main as hub_main
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.ledger.test_ledger_verify_distrust import Verdict
from tests.integration.pipeline.harness import (
    every_kind_of_packet,
    hub_in_process,
    plan_and_write,
)


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "deliveries") as built:
        keystore = Keystore.load(pipeline_pki.keystore)
        for start, batch in zip((1, 10), every_kind_of_packet(keystore), strict=True):
            plan_and_write(built, batch, start)
        yield built


@pytest.fixture
def cli(hub: Hub, pipeline_pki: PkiPaths, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., Verdict]:
    """``hub ledger …`` on the fixture's ledger, as an auditor with the operator's certificate
    and no settings would."""
    config = tmp_path / "auditor.toml"
    config.write_text("")
    url = hub.ledger.engine.url.render_as_string(hide_password=False)

    def run(command: str, *extra: str) -> Verdict:
        capsys.readouterr()
        operator = pipeline_pki.organizations[hub.settings.hub.operator_organ_id].cert
        trust = ["--operator-cert", str(operator)] if command == "verify" else []
        code = hub_main(["ledger", command, "--config", str(config), "--url", url, *trust,
                         *extra])
        captured = capsys.readouterr()
        return Verdict(code, captured.out, captured.err)

    return run


Statement = tuple[str, dict[str, str]]


def tamper(hub: Hub, *statements: Statement) -> None:
    with hub.ledger.engine.begin() as conn:
        for statement, params in statements:
            conn.execute(text(statement), params)


def first_pair(hub: Hub, state: str) -> tuple[str, str]:
    with hub.ledger.engine.connect() as conn:
        row = conn.execute(text("SELECT digest, organ_id FROM ledger_deliveries WHERE state = :s"
                                " ORDER BY digest, organ_id"), {"s": state}).first()
    assert row is not None, state
    return row.digest, row.organ_id


def test_the_table_the_pipeline_writes_is_the_one_the_chain_gives(hub: Hub) -> None:
    with hub.ledger.engine.connect() as conn:
        expected = deliveries.recompute(conn)
        found = deliveries.stored(conn)
    assert found == expected
    # every state the batches can leave is there: delivered, recalled, a recipient's status
    assert {state for _seq, state, _at in found.values()} >= {
        "delivered", "recalled", "status_received"}, found
    assert hub.ledger.verify().ok


@dataclass(frozen=True)
class Edit:
    name: str
    statement: Callable[[Hub], Statement]


def _pair(hub: Hub, state: str) -> dict[str, str]:
    digest, organ = first_pair(hub, state)
    return {"digest": digest, "organ": organ}


def _delete(hub: Hub) -> Statement:
    return ("DELETE FROM ledger_deliveries WHERE digest = :digest AND organ_id = :organ",
            _pair(hub, "delivered"))


def _add(hub: Hub) -> Statement:
    return ("INSERT INTO ledger_deliveries (digest, organ_id, state, updated_at, updated_seq)"
            " SELECT digest, '000.00.99.H27', state, updated_at, updated_seq"
            " FROM ledger_deliveries WHERE digest = :digest AND organ_id = :organ",
            _pair(hub, "delivered"))


def _state(hub: Hub) -> Statement:
    return ("UPDATE ledger_deliveries SET state = 'pending' WHERE digest = :digest"
            " AND organ_id = :organ", _pair(hub, "delivered"))


def _position(hub: Hub) -> Statement:
    return ("UPDATE ledger_deliveries SET updated_seq = updated_seq - 1 WHERE digest = :digest"
            " AND organ_id = :organ", _pair(hub, "recalled"))


def _time(hub: Hub) -> Statement:
    # (the pipeline's clock is pinned: every row has one time; the checkpoint's is another)
    return ("UPDATE ledger_deliveries SET updated_at = (SELECT MIN(at) FROM"
            " ledger_checkpoints) WHERE digest = :digest AND organ_id = :organ",
            _pair(hub, "status_received"))


EDITS = [
    Edit("a row deleted (the document hidden from its recipient's search)", _delete),
    Edit("a row added (a document shown to an organization it never went to)", _add),
    Edit("a delivered pair set back to pending", _state),
    Edit("a state's position moved", _position),
    Edit("a state's time moved", _time),
]


@pytest.mark.parametrize("edit", EDITS, ids=[e.name for e in EDITS])
def test_a_hand_edited_delivery_state_fails_verify_and_migrate_rebuilds_it(
    hub: Hub, cli: Callable[..., Verdict], edit: Edit
) -> None:
    tamper(hub, edit.statement(hub))
    verdict = cli("verify")
    assert (verdict.code, verdict.err) == (EXIT_FAILURE, ""), verdict
    assert verdict.out.startswith("FAILED:"), verdict.out
    assert "per-recipient delivery state (ledger_deliveries, derived) differs from the chain" \
        " for 1 document-recipient pair(s)" in verdict.out
    assert "--rebuild-deliveries" in verdict.out
    assert verdict.out.count("\n") == 1
    rebuilt = cli("migrate", "--rebuild-deliveries")
    assert rebuilt.code == EXIT_OK, rebuilt
    assert "delivery state rebuilt (" in rebuilt.out
    assert cli("verify").code == EXIT_OK
    with hub.ledger.engine.connect() as conn:
        assert deliveries.stored(conn) == deliveries.recompute(conn)


def test_a_row_deleted_hides_the_document_from_a_search_by_recipient_until_rebuilt(
    hub: Hub, cli: Callable[..., Verdict]
) -> None:
    # the harm the check guards against: what an auditor searching by recipient sees
    def found_for(organ: str) -> set[str]:
        return {d.digest for d in search_documents(hub.ledger, recipient=organ, limit=100)}

    digest, organ = first_pair(hub, "delivered")
    assert digest in found_for(organ)
    tamper(hub, _delete(hub))
    assert digest not in found_for(organ)
    assert cli("verify").code == EXIT_FAILURE
    assert cli("migrate", "--rebuild-deliveries").code == EXIT_OK
    assert digest in found_for(organ)


def test_many_differences_are_counted_and_a_few_named(
    hub: Hub, cli: Callable[..., Verdict]
) -> None:
    with hub.ledger.engine.connect() as conn:
        pairs = len(deliveries.stored(conn))
    assert pairs > 6
    tamper(hub, ("DELETE FROM ledger_deliveries", {}))
    verdict = cli("verify")
    assert verdict.code == EXIT_FAILURE
    assert f"differs from the chain for {pairs:,} document-recipient pair(s), e.g." \
        in verdict.out
    assert ": stored no row, the chain gives " in verdict.out


def test_a_value_the_hub_never_writes_in_the_table_is_a_verdict_not_an_internal_error(
    hub: Hub, cli: Callable[..., Verdict]
) -> None:
    if hub.ledger.engine.dialect.name != "sqlite":
        pytest.skip("a PostgreSQL column holds only values of its type")
    tamper(hub, ("UPDATE ledger_deliveries SET updated_seq = 'x'", {}))
    verdict = cli("verify")
    assert (verdict.code, verdict.err) == (EXIT_FAILURE, ""), verdict
    assert "ledger_deliveries, derived) holds values the hub never writes" in verdict.out
