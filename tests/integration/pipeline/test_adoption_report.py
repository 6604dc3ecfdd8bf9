"""The adoption report through the real pipeline, and refused bytes that outlive the DLQ.

Issue 17 acceptance: N accepted and M refused packets (several reasons, one unparseable)
published on the real broker, some by agency accounts → the report shows the exact counts per
organization, an organization with only refusals included; after ``hub dlq discard`` every
refused packet's exact bytes are still in the ledger. Issue 20: the figures come from the rollup
the pipeline's ledger writes keep, and equal a count from the documents. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub.client import AgencyClient
from hub.ledger.report import PERIODS, adoption_report, adoption_report_scan
from hub.ops.cli import main
from hub.testing import devbroker
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    COMMUNE,
    FINANCE,
    HOME_AFFAIRS,
    PROVINCE,
    agency_account,
    hub_settings,
    running_hub,
    settings_toml,
    signed_envelope,
)

pytestmark = pytest.mark.broker


def test_the_report_counts_what_the_pipeline_accepted_and_refused_per_organization(
    pipeline_pki: PkiPaths, rabbitmq: devbroker.RunningBroker, broker_url: str, names: str,
    ledger_url: str, tmp_path: Path
) -> None:
    if rabbitmq.kind != "container":
        pytest.skip("accounts are created with rabbitmqctl inside the broker container")
    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    home_affairs = agency_account(rabbitmq, HOME_AFFAIRS, "ha-report")
    commune = agency_account(rabbitmq, COMMUNE, "commune-report")
    accepted = [signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number=str(n))
                for n in (201, 202, 203)]
    tampered = signed_envelope(keystore, HOME_AFFAIRS, (FINANCE,), number="204").replace(
        "Về việc".encode(), b"Ve viec", 1)
    nobody = signed_envelope(keystore, HOME_AFFAIRS, ("000.00.99.H27",), number="205")
    garbage = b"this is not XML at all"
    refused = {tampered: "signature", nobody: "routing", garbage: "format"}
    with running_hub(settings) as hub:
        # Given Home Affairs publishing 3 good and 2 bad envelopes from its own account, the
        # province one good envelope, and a commune only an unparseable packet
        ha = AgencyClient(home_affairs, HOME_AFFAIRS, prefix=names)
        co = AgencyClient(commune, COMMUNE, prefix=names)
        try:
            for body in (*accepted, tampered, nobody):
                ha.send(body)
            co.send(garbage)
        finally:
            ha.close()
            co.close()
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,), number="206"))
        hub.wait_acked(7)
        # When the operator discards every dead letter
        for reason in ("SIGNATURE_DIGEST_MISMATCH", "RECIPIENT_UNKNOWN", "ENVELOPE_MALFORMED"):
            assert main(["--config", str(config), "dlq", "discard", "--reason", reason,
                         "--note", "seen by the report test"]) == 0
        assert hub.drain(hub.names.dlq) == []
        # Then the report counts each organization exactly
        rows = {r.organ_id: r for r in adoption_report(hub.hub.ledger)}
        assert set(rows) == {HOME_AFFAIRS, PROVINCE, COMMUNE}
        ha_row, co_row, pr_row = rows[HOME_AFFAIRS], rows[COMMUNE], rows[PROVINCE]
        assert (ha_row.sent, ha_row.accepted, ha_row.refused_total) == (5, 3, 2)
        assert ha_row.refused["signature"] == 1
        assert ha_row.refused["routing"] == 1
        assert ha_row.signed_valid == 3
        assert (pr_row.sent, pr_row.accepted, pr_row.refused_total) == (1, 1, 0)
        assert (co_row.sent, co_row.accepted, co_row.refused_total) == (1, 0, 1)
        assert co_row.refused["format"] == 1
        assert co_row.reasons == {"ENVELOPE_MALFORMED": 1}
        # And the rollup the pipeline's writes kept says what the documents say
        for period in PERIODS:
            assert (adoption_report(hub.hub.ledger, period=period)
                    == adoption_report_scan(hub.hub.ledger, period=period)), period
        # And every refused packet's exact bytes are still in the ledger
        for body in refused:
            assert hub.hub.ledger.raw(hashlib.sha256(body).hexdigest()) == body
        assert hub.hub.ledger.verify().ok
