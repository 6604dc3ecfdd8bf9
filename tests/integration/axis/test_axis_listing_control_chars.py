"""A listed entry whose text carries a control character (a NUL in ``from`` or ``to``: valid
JSON, ``"\\u0000"``) is refused back to the axis like any unusable entry, on SQLite and on
PostgreSQL — which refuses a NUL in any text or JSON column, so such a field must never reach a
ledger row. Real broker, the simulator process (``listing_patch``), the real connector.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hub.config import with_overrides
from hub.edxml.build import build_envelope, sample_header
from hub.ledger.records import EventKind
from hub.testing.axis_sim import AxisSimulator
from hub.testing.pki import PkiPaths
from hub.trust.signing import sign_xml
from tests.integration.axis.harness import (
    MINISTRY,
    SYSTEM_ID,
    axis_settings,
    axis_signer,
    connector_in_thread,
    wait_until,
)
from tests.integration.pipeline.harness import FINANCE, NOW, running_hub
from tests.pg import fresh_schema

pytestmark = pytest.mark.broker


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ledger of hub and connector: each test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    with fresh_schema() as url:
        yield url


def _ministry_letter(pki: PkiPaths, number: str) -> bytes:
    header = sample_header(MINISTRY, (FINANCE,), number=number, subject="Về việc báo cáo",
                           promulgation_date=NOW.date())
    return sign_xml(build_envelope(header), axis_signer(pki, MINISTRY))


@pytest.mark.parametrize(("field", "value"), [
    ("from", MINISTRY + "\u0000"),
    ("to", [FINANCE, "000.00.00\u0000.H27"]),
])
def test_a_listed_entry_with_a_nul_is_refused_back_to_the_axis_and_the_next_document_arrives(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str,
    ledger_url: str, field: str, value: object
) -> None:
    # Given a document at the axis whose list entry carries a NUL in one field
    odd = sim.inject(_ministry_letter(pki, "1"), sender=MINISTRY, to=[FINANCE])
    sim.faults(listing_patch={odd: {field: value}})
    settings = with_overrides(axis_settings(pki, tmp_path, broker_url, names, sim.url),
                              ledger={"url": ledger_url})
    with capture_logs() as logs, running_hub(settings) as hub, \
            connector_in_thread(settings) as axis:
        # When the connector polls, then the axis lists a normal document
        wait_until(lambda: sim.stats()["statuses"].get(SYSTEM_ID, {}).get(odd) == "fail", 30,
                   "the entry with a NUL refused back to the axis")
        normal = _ministry_letter(pki, "2")
        sim.inject(normal, sender=MINISTRY, to=[FINANCE])
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        # Then the entry was refused with a reason naming the field and the character, recorded
        # (the row could be stored), never fetched nor handed over
        refused = [e for e in logs if e.get("event") == "axis_listing_entry_refused"]
        assert [e["axis_doc_id"] for e in refused] == [odd]
        assert f'"{field}"' in refused[0]["why"]
        assert "U+0000" in refused[0]["why"]
        told = [e for e in hub.hub.ledger.events(kind=EventKind.AXIS_ACKNOWLEDGED)
                if e.detail["axis_doc_id"] == odd]
        assert [e.detail["status"] for e in told] == ["fail"]
        assert "\u0000" not in told[0].detail["why"]
        received = hub.hub.ledger.events(kind=EventKind.AXIS_RECEIVED)
        assert [e.detail["axis_doc_id"] != odd for e in received] == [True]
        assert axis.connector.handed_over == 1
        # and the normal document reached its recipient
        assert [d.body for d in hub.client(FINANCE).documents(timeout=5)] == [normal]
