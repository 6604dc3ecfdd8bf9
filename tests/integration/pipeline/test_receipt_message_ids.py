"""The same bytes refused twice for different reasons get two receipts under two message ids.

A packet refused (RECIPIENT_UNKNOWN), then its DocumentId used by a corrected envelope that is
accepted, then the first packet again (an operator's replay, an agency's republish): the new
verdict is DOCUMENT_ID_REUSED. Its signed 02 used the message id of the first refusal's, with
other bytes; the ledger refused it (ReceiptConflict), the batch was planned again and again,
and the packet ended as five dead letters with the sender told nothing. The second refusal's
id now carries its reason; the first keeps the documented ``<digest>:rejected:<issuer>``.
Real pipeline, real ledger (SQLite and PostgreSQL), no broker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    FINANCE,
    PROVINCE,
    hub_in_process,
    plan_and_write,
    signed_envelope,
)


@pytest.fixture
def hub(pipeline_pki: PkiPaths, ledger_url: str, tmp_path: Path) -> Iterator[Hub]:
    with hub_in_process(pipeline_pki, tmp_path, ledger_url, "receiptids") as built:
        yield built


def test_a_packet_refused_again_for_another_reason_is_told_under_a_new_message_id(
    hub: Hub, pipeline_pki: PkiPaths
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    first = signed_envelope(keystore, PROVINCE, ("000.00.99.H27",), number="901")
    corrected = signed_envelope(keystore, PROVINCE, (FINANCE,), number="901")
    digest = hashlib.sha256(first).hexdigest()
    operator = hub.settings.hub.operator_organ_id
    # Given the packet refused (an unknown recipient), then its DocumentId accepted with
    # other content
    plan_and_write(hub, [(first, False)], 1)
    plan_and_write(hub, [(corrected, False)], 2)
    # When the first packet comes again
    plan_and_write(hub, [(first, False)], 3)
    # Then both refusals are recorded, each under its own message id, the first as documented
    issued = hub.ledger.issued([digest])[digest]
    rejected = sorted((r.message_id, r.reason) for r in issued if r.kind == "rejected")
    assert rejected == [
        (f"{digest}:rejected:{operator}", "RECIPIENT_UNKNOWN"),
        (f"{digest}:rejected:{operator}:DOCUMENT_ID_REUSED", "DOCUMENT_ID_REUSED")]
    # and the ledger holds the second verdict as the packet's refusal, not a refused row
    reasons = [e.reason for e in hub.ledger.events(digest=digest) if e.kind.value == "rejected"]
    assert reasons == ["RECIPIENT_UNKNOWN", "DOCUMENT_ID_REUSED"]
