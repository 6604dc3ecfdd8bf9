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

from hub.app import Hub, build_hub
from hub.edxml import Organization, parse_envelope
from hub.edxml.build import build_envelope, build_status, response_for, sample_header, sample_trace
from hub.edxml.model import BusinessDocType
from hub.ledger import chain
from hub.ledger.verify import document_entry_from_row, entries, event_entry_from_row
from hub.messages import Delivery
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY, STATUS_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    DISTRICT,
    FINANCE,
    HOME_AFFAIRS,
    NOW,
    PROVINCE,
    hub_settings,
    signed_envelope,
)


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    settings = hub_settings(pipeline_pki, tmp_path, "amqp://unused:unused@127.0.0.1:1/",
                            "canonical", ledger_url=ledger_url)
    built = build_hub(settings, clock=lambda: NOW)
    try:
        yield built
    finally:
        built.close()


def _batch(hub: Hub, bodies: list[tuple[bytes, bool]], start: int) -> None:
    deliveries = [Delivery(start + i, body, STATUS_KEY if status else ENVELOPE_KEY, "inbound",
                           False, {}, f"m{start + i}", "guest", None, 0)
                  for i, (body, status) in enumerate(bodies)]
    hub.write_ledger(hub.pipeline.process_batch(deliveries))


def test_every_ledger_entry_the_pipeline_writes_hashes_over_the_reference_bytes(
    hub: Hub, pipeline_pki: PkiPaths
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    province = keystore.signer(PROVINCE)
    finance = keystore.signer(FINANCE)
    assert province is not None
    assert finance is not None
    first = signed_envelope(keystore, PROVINCE, (FINANCE, HOME_AFFAIRS, DISTRICT), number="801",
                            subject="Về việc “chuyển đổi số” — năm 2025 \u2028 𝒜")
    second = signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="802")
    reused = signed_envelope(keystore, PROVINCE, (HOME_AFFAIRS,), number="802", subject="Khác")
    edited = first.replace("chuyển đổi số".encode(), b"chuyen doi so")
    assert edited != first
    original_header = sample_header(PROVINCE, (FINANCE,), number="803",
                                    promulgation_date=NOW.date())
    original = sign_xml(build_envelope(original_header), province)
    recall = sign_xml(build_envelope(
        sample_header(PROVINCE, (FINANCE,), number="804", promulgation_date=NOW.date()),
        trace=sample_trace(PROVINCE, NOW, kind=BusinessDocType.REVOCATION, reason="Sai sót",
                           replaced_document_id=original_header.document_id)), province)
    status = sign_xml(build_status(
        response_for=response_for(parse_envelope(first)), sender=Organization(FINANCE),
        status_code="03", timestamp=NOW, description="Đã vào sổ \"văn bản\" \\ đến"), finance)

    _batch(hub, [(first, False), (second, False), (original, False), (b"not xml \xff", False)], 1)
    _batch(hub, [(first, False), (reused, False), (edited, False), (recall, False),
                 (status, True)], 10)

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
