"""Operators: dead letters listed, shown, replayed after a fix, discarded; metrics (issue 8)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from hub.config import with_overrides
from hub.ledger import EventKind
from hub.ops.cli import main
from hub.ops.metrics import serve_metrics
from hub.testing.pki import PkiPaths
from hub.trust.keystore import Keystore
from tests.integration.pipeline.harness import (
    DISTRICT,
    FINANCE,
    PROVINCE,
    hub_settings,
    running_hub,
    settings_toml,
    signed_envelope,
)

pytestmark = pytest.mark.broker


def test_twenty_rejections_for_four_reasons_are_listed_shown_replayed_and_recorded(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keystore = Keystore.load(pipeline_pki.keystore)
    fixed = hub_settings(pipeline_pki, tmp_path, broker_url, names, delivery_limit=2, ledger_url=ledger_url)
    # Given a hub whose CRLs are missing (revocation cannot be checked) ...
    broken = with_overrides(fixed, trust={"crls": []})
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(fixed), encoding="utf-8")
    with running_hub(broken, keep_topology=True) as hub:
        for i in range(5):
            hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (FINANCE,),
                                                      number=f"R{i}"))
            tampered = signed_envelope(keystore, FINANCE, (PROVINCE,), number=f"T{i}",
                                       subject="Dự toán ngân sách")
            hub.client(FINANCE).send(tampered.replace("Dự toán".encode(), "Quyết toán".encode()))
            hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, ("000.99.99.H27",),
                                                      number=f"U{i}"))
            hub.client(PROVINCE).send(b"<edXML>not closed " + str(i).encode())
        # ... 5 retried twice, 15 refused at once
        hub.wait_acked(25)
        names_ = hub.names
        metrics = serve_metrics(hub.hub, "127.0.0.1", 0)
        metrics.consumer = hub.consumer
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/metrics") as resp:
            text = resp.read().decode()
        metrics.shutdown()
        assert 'hub_envelopes_total{outcome="dead_letter"} 20' in text
        assert 'hub_rejections_total{reason="SIGNATURE_DIGEST_MISMATCH"} 5' in text
        assert f'hub_queue_messages{{queue="{names_.dlq}"}} 20' in text
        assert 'hub_stage_seconds_count{stage="ledger"}' in text

    # When an operator lists them, all twenty are there, with four reasons
    code = main(["--config", str(config), "dlq", "ls", "--json"])
    assert code == 0, capsys.readouterr().err
    import json

    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 20
    assert {d["reason"] for d in listed} == {
        "REVOCATION_UNAVAILABLE", "SIGNATURE_DIGEST_MISMATCH", "RECIPIENT_UNKNOWN",
        "ENVELOPE_MALFORMED"}
    assert main(["--config", str(config), "dlq", "ls", "--reason", "RECIPIENT_UNKNOWN"]) == 0
    assert "5 dead letter(s)" in capsys.readouterr().out
    one = next(d for d in listed if d["reason"] == "SIGNATURE_DIGEST_MISMATCH")
    assert main(["--config", str(config), "dlq", "show", one["id"]]) == 0
    shown = capsys.readouterr().out
    assert "Nội dung đã bị thay đổi sau khi ký" in shown
    assert "The content was changed after signing" in shown

    # And, the CRLs being back, replays the revocation failures through full validation
    with running_hub(fixed) as hub:
        assert main(["--config", str(config), "dlq", "replay", "--reason",
                     "REVOCATION_UNAVAILABLE", "--actor", "ops-nguyen",
                     "--note", "CRL refreshed"]) == 0
        hub.wait_acked(5)
        assert len(hub.client(FINANCE).documents()) == 5
        replays = hub.hub.ledger.events(kind=EventKind.REPLAYED)
        assert len(replays) == 5
        assert {e.actor for e in replays} == {"ops-nguyen"}
        # And discards the malformed ones with a note, recorded too
        assert main(["--config", str(config), "dlq", "discard", "--reason",
                     "ENVELOPE_MALFORMED", "--actor", "ops-nguyen",
                     "--note", "test junk from a broken client"]) == 0
        capsys.readouterr()
        assert main(["--config", str(config), "dlq", "ls", "--json"]) == 0
        remaining = json.loads(capsys.readouterr().out)
        assert {d["reason"] for d in remaining} == {"SIGNATURE_DIGEST_MISMATCH",
                                                    "RECIPIENT_UNKNOWN"}
    from hub.ledger import Ledger

    ledger = Ledger.open(fixed.ledger.url)
    try:
        assert len(ledger.events(kind=EventKind.DISCARDED)) == 5
        assert ledger.verify().ok
    finally:
        ledger.close()


def test_a_document_for_an_abolished_district_names_the_reform_in_its_refusal(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path
) -> None:
    import datetime as dt

    keystore = Keystore.load(pipeline_pki.keystore)
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    # A clock after 1 July 2025 (the PKI is still valid then)
    later = dt.datetime(2025, 7, 2, 8, 0, tzinfo=dt.UTC)
    with running_hub(with_overrides(settings, trust={"crl_freshness_s": 10**8}),
                     clock=lambda: later) as hub:
        hub.client(PROVINCE).send(signed_envelope(keystore, PROVINCE, (DISTRICT,), number="1"))
        hub.wait_acked(1)
        dead = hub.drain(hub.names.dlq)
        assert [d.headers["x-hub-reason"] for d in dead] == ["RECIPIENT_UNKNOWN"]
