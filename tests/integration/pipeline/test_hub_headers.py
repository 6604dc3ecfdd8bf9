"""The hub's own headers (``x-hub-*``) are believed only from the hub's trusted logins.

Found by a review: an agency that published a packet with its own ``x-hub-first-failure``
(a time without a zone) made ``hub dlq ls --older-than`` exit 70 and the console's dead-letter
page answer 500 for every operator, for as long as that letter sat in the queue; it could also
back-date its dead letters, pre-count their attempts, or show a replay that never happened.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hub.broker import Outgoing, connect
from hub.ops.cli import main
from hub.ops.dlq import DeadLetter
from hub.testing import devbroker
from hub.testing.pki import PkiPaths
from hub.topology import ENVELOPE_KEY
from tests.integration.pipeline.harness import (
    COMMUNE,
    NOW,
    agency_account,
    hub_settings,
    running_hub,
    settings_toml,
)

pytestmark = pytest.mark.broker

CLAIMS = {
    "x-hub-first-failure": "2020-01-01T00:00:00",  # no zone, and years before
    "x-hub-attempts": 7,
    "x-hub-first-reason": "SIGNATURE_INVALID",
    "x-hub-replayed-by": "admin",
    "x-hub-replay-note": "approved",
}


def test_an_agency_cannot_set_the_hubs_own_headers_on_what_it_publishes(
    pipeline_pki: PkiPaths, rabbitmq: devbroker.RunningBroker, broker_url: str, names: str,
    ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    if rabbitmq.kind != "container":
        pytest.skip("the agency account is created with rabbitmqctl inside the broker container")
    agency = agency_account(rabbitmq, COMMUNE, "commune-headers")
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    config = tmp_path / "hub.toml"
    config.write_text(settings_toml(settings), encoding="utf-8")
    with running_hub(settings) as hub:
        # Given an agency publishing, from its own account, a packet the hub must refuse,
        # dressed with the headers the hub writes on its retries and replays
        conn = connect(agency, "agency with claims")
        try:
            conn.publish([Outgoing(hub.names.inbound, ENVELOPE_KEY, b"not XML at all",
                                   dict(CLAIMS), message_id="claims-1", user_id=COMMUNE)])
        finally:
            conn.close()
        hub.wait_acked(1)
        # When operators list the dead letters older than a day, on the command line (the
        # harness's hub clock is NOW, more than a day before the real one)
        assert main(["--config", str(config), "dlq", "ls", "--older-than", "1d"]) == 0
        (line,) = [x for x in capsys.readouterr().out.splitlines() if "claims-1" in x]
        assert NOW.isoformat() in line
        assert "2020-01-01" not in line
        # Then the dead letter carries the hub's facts, none of the agency's claims
        (dead,) = hub.drain(hub.names.dlq)
        assert dead.headers["x-hub-reason"] == "ENVELOPE_MALFORMED"
        assert dead.headers["x-hub-attempts"] == 1
        assert dead.headers["x-hub-first-failure"] == NOW.isoformat()
        for name in ("x-hub-first-reason", "x-hub-replayed-by", "x-hub-replay-note"):
            assert name not in dead.headers, name
        assert DeadLetter.of(dead).age(NOW + dt.timedelta(hours=1)) == dt.timedelta(hours=1)


def test_the_hubs_own_retries_keep_their_headers(
    pipeline_pki: PkiPaths, broker_url: str, names: str, ledger_url: str, tmp_path: Path,
) -> None:
    # The hub's login is trusted: a packet it republished (a retry) keeps its count and time.
    settings = hub_settings(pipeline_pki, tmp_path, broker_url, names, ledger_url=ledger_url)
    with running_hub(settings) as hub:
        user = hub.hub.pipeline.config.hub_user
        conn = connect(broker_url, "the hub's own login")
        try:
            conn.publish([Outgoing(hub.names.inbound, ENVELOPE_KEY, b"not XML either",
                                   {"x-hub-attempts": 2,
                                    "x-hub-first-failure": "2026-03-01T00:00:00+00:00",
                                    "x-hub-original-user": user or ""},
                                   message_id="retry-1", user_id=user)])
        finally:
            conn.close()
        hub.wait_acked(1)
        (dead,) = hub.drain(hub.names.dlq)
        assert dead.headers["x-hub-attempts"] == 3
        assert dead.headers["x-hub-first-failure"] == "2026-03-01T00:00:00+00:00"
