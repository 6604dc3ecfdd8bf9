"""A recall reaches every recipient of the original, whatever became of one of them.

Found by a review: the pipeline widened a recall (update, replacement) to the original's
recipients by routing its ``To`` plus the missing ones as one envelope, and dropped the whole
widening when that envelope was refused. One recipient abolished since (the district level, on
1 July 2025) was enough for the recall to reach none of the others its ``To`` left out, silently:
they kept a document its sender withdrew. Now each recipient is reached on its own; the abolished
district gets the recall in the inbox kept for draining, next to the document it withdraws, and
nobody answers "01 đã đến" in its name.

Real pipeline, validators, receipts and ledger (SQLite and PostgreSQL), no broker; a PKI issued
on 28 June 2025, valid on both sides of the reorganization.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.app import Hub, build_hub
from hub.consumers.plan import BatchPlan
from hub.directory import Directory
from hub.edxml import parse_envelope
from hub.edxml.build import build_envelope, sample_header, sample_trace
from hub.edxml.model import BusinessDocType
from hub.ledger import EventKind
from hub.messages import Delivery, Headers
from hub.testing.pki import PkiPaths, init_pki
from hub.topology import ENVELOPE_KEY
from hub.trust.keystore import Keystore
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import (
    _KEYS,
    DISTRICT,
    FINANCE,
    HOME_AFFAIRS,
    PROVINCE,
    hub_settings,
)

ISSUED = dt.datetime(2025, 6, 28, 8, 0, tzinfo=dt.UTC)
LAST_DAY = dt.datetime(2025, 6, 30, 2, 0, tzinfo=dt.UTC)  # 09:00 on 30 June, Vietnam time
AFTER = dt.datetime(2025, 7, 2, 2, 0, tzinfo=dt.UTC)


class _Clock:
    def __init__(self) -> None:
        self.now = LAST_DAY

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return init_pki(tmp_path_factory.mktemp("reorganization-pki"), Directory.sample(),
                    now=ISSUED, keys=_KEYS)


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def hub(pki: PkiPaths, ledger_url: str, tmp_path: Path, clock: _Clock) -> Iterator[Hub]:
    built = build_hub(hub_settings(pki, tmp_path, "amqp://unused:unused@127.0.0.1:1/", "recall",
                                   ledger_url=ledger_url), clock=clock)
    try:
        yield built
    finally:
        built.close()


def _batch(hub: Hub, tag: int, body: bytes) -> BatchPlan:
    plan = hub.pipeline.process_batch([Delivery(tag, body, ENVELOPE_KEY, "inbound", False, {},
                                                f"m{tag}", "guest", None, 0)])
    hub.write_ledger(plan)
    return plan


def test_a_recall_reaches_every_original_recipient_when_one_was_abolished_since(
    hub: Hub, pki: PkiPaths, clock: _Clock
) -> None:
    keystore = Keystore.load(pki.keystore)
    province = keystore.signer(PROVINCE)
    assert province is not None
    # Given a document sent on 30 June 2025 to two departments and a district
    header = sample_header(PROVINCE, (HOME_AFFAIRS, FINANCE, DISTRICT), number="901",
                           promulgation_date=LAST_DAY.date())
    original = sign_xml(build_envelope(header), province)
    assert [o.routing_key for o in _batch(hub, 1, original).first] == [
        f"inbox.{HOME_AFFAIRS}", f"inbox.{FINANCE}", f"inbox.{DISTRICT}"]
    # When, the district level abolished, the province recalls it naming Home Affairs only
    clock.now = AFTER
    recall = sign_xml(build_envelope(
        sample_header(PROVINCE, (HOME_AFFAIRS,), number="902", promulgation_date=AFTER.date()),
        trace=sample_trace(PROVINCE, AFTER, kind=BusinessDocType.REVOCATION, reason="Sai sót",
                           replaced_document_id=header.document_id)), province)
    plan = _batch(hub, 2, recall)
    # Then Finance gets the recall too, and the district in the inbox kept for draining
    assert [d.action.value for _, d in plan.outcomes] == ["deliver"]
    assert [o.routing_key for o in plan.first] == [
        f"inbox.{HOME_AFFAIRS}", f"inbox.{FINANCE}", f"inbox.{DISTRICT}"]
    # and "01 đã đến" comes from the living recipients only, never in the district's name
    received = sorted(o.headers[Headers.ISSUER] for o in plan.receipts
                      if o.headers[Headers.RECEIPT] == "received")
    assert received == sorted([HOME_AFFAIRS, FINANCE])
    # The ledger records the recall for all three, linked to the original, nobody unreached
    digest = parse_envelope(recall).digest
    delivered = {e.organ_id for e in hub.ledger.events(digest=digest, kind=EventKind.DELIVERED)}
    assert delivered == {HOME_AFFAIRS, FINANCE, DISTRICT}
    (recalled,) = hub.ledger.events(digest=digest, kind=EventKind.RECALLED)
    assert recalled.detail["original"] == parse_envelope(original).digest
    assert "unreached" not in recalled.detail
