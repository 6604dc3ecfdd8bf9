"""An entry the axis lists but cannot find (``getEdoc`` 404: purged or expired there), against
the real broker, the simulator process and the real connector: it is logged each round and
refused back to the axis after three, and the documents listed behind it arrive meanwhile.
A ledger row the database refuses is driven through the real ledger (SQLite and PostgreSQL)
in ``test_axis_connector_keeps_going.py``: since the protocol refuses control characters and
lone surrogates in listed entries, no answer of the simulator produces one any more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hub.edxml.build import build_envelope, sample_attachment, sample_header
from hub.testing.axis_sim import AxisSimulator
from hub.testing.pki import PkiPaths
from hub.trust.signing import sign_xml
from tests.integration.axis.harness import (
    MINISTRY,
    axis_settings,
    axis_signer,
    connector_in_thread,
    wait_until,
)
from tests.integration.pipeline.harness import FINANCE, NOW, running_hub

pytestmark = pytest.mark.broker


def _ministry_letter(pki: PkiPaths, number: str) -> bytes:
    header = sample_header(MINISTRY, (FINANCE,), number=number, subject="Về việc báo cáo",
                           promulgation_date=NOW.date())
    return sign_xml(build_envelope(header), axis_signer(pki, MINISTRY))


def _events(logs: list[Any], name: str) -> list[Any]:
    return [e for e in logs if e.get("event") == name]


def test_an_entry_the_axis_lists_but_cannot_find_does_not_hide_the_documents_behind_it(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given an entry the axis lists under an id its getEdoc does not know (404), first in
    # the list, a letter behind it, and a connector asking for one entry per list
    ghost = sim.inject(_ministry_letter(pki, "4"), sender=MINISTRY, to=[FINANCE])
    sim.faults(listing_patch={ghost: {"id": "purged-1"}})
    letter = _ministry_letter(pki, "5")
    sim.inject(letter, sender=MINISTRY, to=[FINANCE])
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url, receive_limit=1)
    with capture_logs() as logs, running_hub(settings) as hub, \
            connector_in_thread(settings) as axis:
        # When the connector polls
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        wait_until(lambda: bool(_events(logs, "axis_listing_entry_refused")), 30,
                   "the entry refused back to the axis")
        # Then the letter behind the entry arrived, once
        assert [d.body for d in hub.client(FINANCE).documents(timeout=5)] == [letter]
        # and each miss was logged, then the entry was refused back to the axis
        missing = _events(logs, "axis_entry_not_found")
        assert [e["rounds"] for e in missing][:3] == [1, 2, 3]
        assert {e["axis_doc_id"] for e in missing} == {"purged-1"}
        refused = _events(logs, "axis_listing_entry_refused")
        assert refused[0]["axis_doc_id"] == "purged-1"
        assert "404" in refused[0]["why"]


def test_an_entry_too_large_to_fetch_is_refused_back_and_the_entries_behind_it_arrive(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given a hub accepting envelopes of at most 64 KiB (its axis client reads answers of at
    # most 1.5 x that + 1 MiB), a 1.3 MB letter first in the list and a small one behind it
    header = sample_header(MINISTRY, (FINANCE,), number="6", subject="Về việc báo cáo",
                           promulgation_date=NOW.date())
    big = sign_xml(build_envelope(header, attachments=[sample_attachment(
        b"%PDF-1.7\n" + b"0" * 1_300_000 + b"\n%%EOF\n")]), axis_signer(pki, MINISTRY))
    sim.inject(big, sender=MINISTRY, to=[FINANCE])
    letter = _ministry_letter(pki, "7")
    sim.inject(letter, sender=MINISTRY, to=[FINANCE])
    settings = axis_settings(pki, tmp_path, broker_url, names, sim.url, receive_limit=1)
    settings = settings.model_copy(update={"limits": settings.limits.model_copy(
        update={"max_envelope_bytes": 64 * 1024})})
    with capture_logs() as logs, running_hub(settings) as hub, \
            connector_in_thread(settings) as axis:
        # When the connector polls
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        wait_until(lambda: bool(_events(logs, "axis_listing_entry_refused")), 30,
                   "the large entry refused back to the axis")
        # Then the letter behind it arrived, and the large one was refused back at once
        assert [d.body for d in hub.client(FINANCE).documents(timeout=5)] == [letter]
        refused = _events(logs, "axis_listing_entry_refused")
        assert "larger than" in refused[0]["why"]
