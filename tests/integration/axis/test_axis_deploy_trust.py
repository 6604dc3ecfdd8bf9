"""With the deployment template's trusted publishers, the axis still speaks for no local body
(docs/AXIS.md): a letter the axis brings in with the From of the province's own committee is
refused with SENDER_ACCOUNT_MISMATCH, even signed with the committee's real key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hub.config import with_overrides
from hub.messages import Headers
from hub.reasons import Reason
from hub.testing.axis_sim import AxisSimulator
from hub.testing.pki import PkiPaths
from tests.integration.axis.harness import axis_settings, connector_in_thread
from tests.integration.pipeline.harness import FINANCE, PROVINCE, running_hub, signed_envelope

pytestmark = pytest.mark.broker

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "template" / "hub.toml"


def test_with_the_templates_trusted_publishers_the_axis_cannot_speak_for_a_local_body(
    pki: PkiPaths, sim: AxisSimulator, tmp_path: Path, broker_url: str, names: str
) -> None:
    # Given the template's trusted publishers (plus the tests' own hub login, "guest")
    shipped = tomllib.loads(TEMPLATE.read_text(encoding="utf-8"))["broker"]["trusted_publishers"]
    settings = with_overrides(axis_settings(pki, tmp_path, broker_url, names, sim.url),
                              broker={"trusted_publishers": [*shipped, "guest"]})
    with running_hub(settings) as hub, connector_in_thread(settings) as axis:
        # When the axis hands over a letter whose From is the province's People's Committee
        letter = signed_envelope(hub.hub.keystore, PROVINCE, (FINANCE,), number="77")
        sim.inject(letter, sender=PROVINCE, to=[FINANCE])
        assert axis.connector.wait_for(lambda c: c.acknowledged >= 1, 30)
        hub.wait_acked(1)
        # Then it is refused as not the publisher's to send, and nobody receives it
        dead = [str(d.headers.get(Headers.REASON)) for d in hub.drain(hub.names.dlq)]
        assert dead == [Reason.SENDER_ACCOUNT_MISMATCH.value]
        assert hub.client(FINANCE).documents(timeout=1) == []
