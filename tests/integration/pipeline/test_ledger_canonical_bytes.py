"""Every entry the real pipeline writes is hashed over the standard library encoder's bytes.

The hub writes the chain's canonical JSON with orjson (:func:`hub.ledger.chain.canonical_json`);
the specification names the standard library encoder (``canonical_json_reference``). Here the
real pipeline plans batches of every kind of packet (accepted envelopes to several recipients, a
recall, a status, a duplicate, a reused DocumentId, a packet edited after signing, a body that is
not XML) and the ledger writes them through the driver; then every chained entry, re-encoded
by the reference, must give the stored hash, and every stored canonical text (details, reports,
recipients, refusals, revocation lists) must be the reference's text of what it holds. On SQLite
and PostgreSQL. No broker: planning and the ledger commit run in process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.app import Hub
from hub.ledger import chain
from hub.ledger.verify import document_entry_from_row, entries, event_entry_from_row
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    every_kind_of_packet,
    hub_in_process,
    plan_and_write,
)


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "canonical") as built:
        yield built


def test_every_ledger_entry_the_pipeline_writes_hashes_over_the_reference_bytes(
    hub: Hub, pipeline_pki: PkiPaths
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    for start, batch in zip((1, 10), every_kind_of_packet(keystore), strict=True):
        plan_and_write(hub, batch, start)

    ledger = hub.ledger
    kinds: set[str] = set()
    with ledger.engine.connect() as conn:
        head = conn.execute(text("SELECT seq FROM ledger_head")).scalar_one()
        assert head > 20
        for seq, kind, row in entries(conn, head):
            entry = document_entry_from_row(row) if kind == "document" else event_entry_from_row(row)
            reference = chain.canonical_json_reference(entry)
            assert chain.canonical_json(entry) == reference, seq
            assert hashlib.sha256(reference).hexdigest() == row.entry_hash, seq
            kinds.add(row.kind)
            stored = ([row.detail] if kind == "event"
                      else [row.recipients, row.report, row.refusal, row.revocation])
            for value in stored:
                if value is not None:
                    assert value.encode() == chain.canonical_json_reference(json.loads(value)), seq
    # every kind of row was exercised
    assert {"envelope", "status", "receipt", "refused", "received", "validated", "routed",
            "delivered", "receipt_issued", "duplicate", "recalled", "rejected"} <= kinds, kinds
    assert ledger.verify().ok
